//! A private swtpm per test: its own state directory and loopback ports,
//! stopped on drop. A missing swtpm or tpm2-tools is a failure, never a skip.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Swtpm {
    pub port: u16,
    pub state: PathBuf,
    child: Child,
}

fn free_port_pair() -> u16 {
    // Two consecutive free ports: data and control channel.
    for _ in 0..50 {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < 65000 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair on loopback");
}

/// swtpm on `port` (data) and `port + 1` (control), listening when this
/// returns.
fn spawn(port: u16, state: &Path) -> Child {
    let child = Command::new("swtpm")
        .args(["socket", "--tpm2"])
        .arg("--server")
        .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
        .arg("--ctrl")
        .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
        .arg("--tpmstate")
        .arg(format!("dir={}", state.display()))
        .args(["--flags", "not-need-init,startup-clear"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("swtpm must be installed (apt-get install swtpm swtpm-tools)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "swtpm did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Swtpm {
    pub fn start(name: &str) -> Swtpm {
        let state = std::env::temp_dir().join(format!("il-swtpm-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let port = free_port_pair();
        let child = spawn(port, &state);
        Swtpm { port, state, child }
    }

    /// A TPM manufactured by swtpm_setup with only the PCR banks `banks`
    /// allocated (e.g. "sha1").
    pub fn start_with_banks(name: &str, banks: &str) -> Swtpm {
        let state = std::env::temp_dir().join(format!("il-swtpm-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
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
        let child = spawn(port, &state);
        Swtpm { port, state, child }
    }

    /// A reboot: the TPM stops and starts again on its state, so persistent
    /// objects stay and the PCRs start from zero.
    pub fn reboot(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.port, &self.state);
    }

    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
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
