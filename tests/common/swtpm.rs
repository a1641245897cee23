//! A private swtpm per test: its own state directory and loopback ports (or
//! unix sockets), stopped on drop. A missing swtpm or tpm2-tools is a
//! failure, never a skip. The one harness: the integration tests include it
//! as a module, and so do the transport's unit tests (`src/tpm/transport/mod.rs`).
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where the swtpm listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Data on 127.0.0.1:P, control on P+1: `swtpm:host=127.0.0.1,port=P`,
    /// which tpm2-tools (`TPM2TOOLS_TCTI`) can use too.
    Tcp,
    /// Data on STATE/swtpm.sock, control on STATE/swtpm.sock.ctrl (where
    /// tpm2-tss looks for it): `swtpm:path=STATE/swtpm.sock`.
    Unix,
    /// Data on 127.0.0.1:P, control on a unix socket, leaving P+1 to the
    /// test (say, a fake mssim platform port).
    TcpCtrlOnUnix,
}

pub struct Swtpm {
    /// The data port (unused with [`Listen::Unix`]).
    pub port: u16,
    pub state: PathBuf,
    listen: Listen,
    child: Child,
}

/// A port P with P and P+1 free on 127.0.0.1 at the time of the call: data
/// and control channel.
pub fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < 65000 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair on loopback");
}

/// A fresh state directory, unique per process, name and call.
fn state_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let state = std::env::temp_dir().join(format!("il-swtpm-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).unwrap();
    state
}

/// swtpm on `port` (unless unix) with its state, sockets and log in `state`,
/// accepting connections when this returns. Err when it exits (its port was
/// taken) or does not accept within 10 s.
fn spawn(listen: Listen, port: u16, state: &Path) -> Result<Child, String> {
    let tcp = |p: u16| format!("type=tcp,port={p},bindaddr=127.0.0.1");
    let unix = |p: &Path| format!("type=unixio,path={}", p.display());
    let (server, ctrl) = match listen {
        Listen::Tcp => (tcp(port), tcp(port + 1)),
        Listen::Unix => (
            unix(&state.join("swtpm.sock")),
            unix(&state.join("swtpm.sock.ctrl")),
        ),
        Listen::TcpCtrlOnUnix => (tcp(port), unix(&state.join("ctrl.sock"))),
    };
    let log_path = state.join("swtpm.log");
    let log = File::create(&log_path).unwrap();
    let mut child = Command::new("swtpm")
        .args(["socket", "--tpm2"])
        .args(["--server", &server, "--ctrl", &ctrl])
        .arg("--tpmstate")
        .arg(format!("dir={}", state.display()))
        .args(["--flags", "not-need-init,startup-clear"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("run swtpm (apt-get install swtpm swtpm-tools): {e}"))?;
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("swtpm exited ({status}): {}", log()));
        }
        let up = match listen {
            Listen::Unix => UnixStream::connect(state.join("swtpm.sock")).is_ok(),
            Listen::Tcp | Listen::TcpCtrlOnUnix => TcpStream::connect(("127.0.0.1", port)).is_ok(),
        };
        if up {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("swtpm did not accept within 10 s: {}", log()));
        }
    }
}

impl Swtpm {
    /// A fresh swtpm on loopback TCP.
    pub fn start(name: &str) -> Swtpm {
        Swtpm::start_listening(name, Listen::Tcp)
    }

    /// A fresh swtpm listening as `listen`; another port pair when swtpm
    /// finds its ports taken.
    pub fn start_listening(name: &str, listen: Listen) -> Swtpm {
        let mut last = String::new();
        for _ in 0..10 {
            match Swtpm::try_start_on(name, listen, free_port_pair()) {
                Ok(swtpm) => return swtpm,
                Err(e) => last = e,
            }
        }
        panic!("cannot start swtpm: {last}");
    }

    /// A fresh swtpm on the chosen `port` (unused for [`Listen::Unix`]).
    pub fn try_start_on(name: &str, listen: Listen, port: u16) -> Result<Swtpm, String> {
        let state = state_dir(name);
        match spawn(listen, port, &state) {
            Ok(child) => Ok(Swtpm {
                port,
                state,
                listen,
                child,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&state);
                Err(e)
            }
        }
    }

    /// A TPM manufactured by swtpm_setup with only the PCR banks `banks`
    /// allocated (e.g. "sha1").
    pub fn start_with_banks(name: &str, banks: &str) -> Swtpm {
        let state = state_dir(name);
        let out = Command::new("swtpm_setup")
            .args(["--tpm2", "--overwrite", "--pcr-banks", banks, "--tpmstate"])
            .arg(&state)
            .output()
            .expect("swtpm_setup must be installed (apt-get install swtpm-tools)");
        assert!(
            out.status.success(),
            "swtpm_setup --pcr-banks {banks}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port_pair();
        let child = spawn(Listen::Tcp, port, &state).unwrap();
        Swtpm {
            port,
            state,
            listen: Listen::Tcp,
            child,
        }
    }

    /// A reboot: the TPM stops and starts again on its state, so persistent
    /// objects stay and the PCRs start from zero.
    pub fn reboot(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.listen, self.port, &self.state).unwrap();
    }

    /// The tpm2-tss TCTI string that reaches this swtpm.
    pub fn tcti(&self) -> String {
        match self.listen {
            Listen::Unix => format!("swtpm:path={}", self.state.join("swtpm.sock").display()),
            Listen::Tcp | Listen::TcpCtrlOnUnix => {
                format!("swtpm:host=127.0.0.1,port={}", self.port)
            }
        }
    }

    /// Runs a tpm2-tools command against this TPM, then flushes what the
    /// tools leave behind (no resource manager here).
    pub fn tool(&self, args: &[&str]) -> String {
        let out = Command::new(args[0])
            .args(&args[1..])
            .env("TPM2TOOLS_TCTI", self.tcti())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (apt-get install tpm2-tools)", args[0]));
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for flag in ["-t", "-l", "-s"] {
            let _ = Command::new("tpm2_flushcontext")
                .arg(flag)
                .env("TPM2TOOLS_TCTI", self.tcti())
                .output();
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn path(&self, name: &str) -> String {
        self.state.join(name).display().to_string()
    }

    /// The SRK (ECC P-256) made persistent at 0x81000001, as a user would.
    pub fn provision_srk(&self) {
        self.provision_primary("ecc", "0x81000001");
    }

    /// Seals `secret` with tpm2-tools to the current values of `pcrs`
    /// (e.g. "sha256:7,11"); returns the TSS2 PEM, and leaves seal.pub and
    /// seal.priv in the state directory.
    pub fn seal_with_tools(&self, secret: &[u8], pcrs: &str) -> Vec<u8> {
        self.seal_under("0x81000001", "seal", secret, pcrs)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(Path::new(&self.state).join(name)).unwrap()
    }

    /// The dictionary-attack failure counter.
    pub fn lockout_counter(&self) -> u32 {
        let out = self.tool(&["tpm2_getcap", "properties-variable"]);
        let mut lines = out.lines();
        while let Some(l) = lines.next() {
            if l.trim_start().starts_with("TPM2_PT_LOCKOUT_COUNTER") {
                let v = lines.next().unwrap_or_default();
                let v = v.trim().trim_start_matches("raw:").trim();
                return u32::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or(u32::MAX);
            }
        }
        panic!("no TPM2_PT_LOCKOUT_COUNTER in tpm2_getcap output:\n{out}");
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

// ---- Other storage keys, sealing under them (tss_interop.rs) ----

impl Swtpm {
    /// A storage key of type `alg` (tpm2-tools' spelling: rsa2048, rsa3072,
    /// ecc...) made by tpm2-tools with its defaults (for RSA: exponent 0,
    /// AES-128-CFB, attributes 0x30072) and made persistent at `handle`.
    pub fn provision_primary(&self, alg: &str, handle: &str) {
        self.provision_primary_with(alg, handle, &[]);
    }

    /// `provision_primary` with more tpm2_createprimary options (e.g.
    /// `-a ATTRIBUTES`).
    pub fn provision_primary_with(&self, alg: &str, handle: &str, extra: &[&str]) {
        let ctx = self.path(&format!("{handle}.ctx"));
        let mut args = vec![
            "tpm2_createprimary",
            "-Q",
            "-C",
            "o",
            "-G",
            alg,
            "-g",
            "sha256",
            "-c",
            &ctx,
        ];
        args.extend_from_slice(extra);
        self.tool(&args);
        self.persist(&ctx, handle);
    }

    /// Makes the loaded object in context file `ctx` persistent at `handle`.
    pub fn persist(&self, ctx: &str, handle: &str) {
        self.tool(&["tpm2_evictcontrol", "-Q", "-C", "o", "-c", ctx, handle]);
    }

    /// `seal_with_tools` under the persistent `parent` instead of
    /// 0x81000001: the TSS2 PEM, and parent.pub / parent.priv left in the
    /// state directory (named after the parent, e.g. 0x81000002.pub).
    pub fn seal_with_tools_under(&self, parent: &str, secret: &[u8], pcrs: &str) -> Vec<u8> {
        self.seal_under(parent, parent, secret, pcrs)
    }

    /// Seals under `parent`, leaving STEM.pub, STEM.priv and STEM.pem in the
    /// state directory; returns the PEM.
    fn seal_under(&self, parent: &str, stem: &str, secret: &[u8], pcrs: &str) -> Vec<u8> {
        let (public, private, pem) = (
            self.path(&format!("{stem}.pub")),
            self.path(&format!("{stem}.priv")),
            self.path(&format!("{stem}.pem")),
        );
        std::fs::write(self.state.join("secret"), secret).unwrap();
        self.tool(&["tpm2_pcrread", "-Q", "-o", &self.path("pcr.bin"), pcrs]);
        self.tool(&[
            "tpm2_createpolicy",
            "-Q",
            "--policy-pcr",
            "-l",
            pcrs,
            "-f",
            &self.path("pcr.bin"),
            "-L",
            &self.path("policy.digest"),
        ]);
        self.tool(&[
            "tpm2_create",
            "-Q",
            "-C",
            parent,
            "-L",
            &self.path("policy.digest"),
            "-a",
            "fixedtpm|fixedparent|noda",
            "-i",
            &self.path("secret"),
            "-u",
            &public,
            "-r",
            &private,
        ]);
        self.tool(&[
            "tpm2_encodeobject",
            "-C",
            parent,
            "-u",
            &public,
            "-r",
            &private,
            "-o",
            &pem,
        ]);
        std::fs::remove_file(self.state.join("secret")).unwrap();
        std::fs::read(&pem).unwrap()
    }
}
