//! Shared pieces of the host integration tests: a temp root tree, a fake
//! securityfs (plain files `evm` and `ima/policy`), a private session keyring
//! per test thread (the kernel keeps session keyrings per thread, so tests
//! run in parallel without seeing each other's keys), and the built binary.
#![allow(dead_code)]

use integrity_loader::keyring::{self, KeySerial};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_integrity-loader");
pub const CERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/certs");

/// A 32-byte binary kmk with a newline and a NUL byte in it: dracut's
/// `read -r` would cut it, we must load it whole.
pub const BINARY_KMK: [u8; 32] = [
    0x5a, 0x0a, 0x00, 0x13, 0x37, 0xc0, 0xff, 0xee, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
];

pub struct Fixture {
    pub dir: PathBuf,
    pub session: KeySerial,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    pub fn assert_contains(&self, needle: &str) {
        assert!(
            self.output().contains(needle),
            "expected {needle:?} in output:\n{}",
            self.output()
        );
    }
}

impl Fixture {
    /// A fresh tree and a fresh session keyring for the calling thread.
    pub fn new(name: &str) -> Fixture {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("il-test-{}-{name}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root/etc")).unwrap();
        fs::create_dir_all(dir.join("sfs/ima")).unwrap();
        fs::write(dir.join("sfs/evm"), b"").unwrap();
        fs::write(dir.join("sfs/ima/policy"), b"").unwrap();
        fs::write(dir.join("cmdline"), b"BOOT_IMAGE=/vmlinuz ro quiet\n").unwrap();
        let session = keyring::join_new_session().expect("join a new session keyring");
        Fixture { dir, session }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Writes a file inside the root, creating directories.
    pub fn write(&self, path: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.root().join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        p
    }

    pub fn copy_cert(&self, fixture: &str, dest: &str) {
        self.write(dest, fs::read(Path::new(CERTS).join(fixture)).unwrap());
    }

    pub fn set_cmdline(&self, text: &str) {
        fs::write(self.dir.join("cmdline"), text).unwrap();
    }

    pub fn sfs(&self, name: &str) -> Vec<u8> {
        fs::read(self.dir.join("sfs").join(name)).unwrap_or_default()
    }

    pub fn sfs_text(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.sfs(name)).into_owned()
    }

    /// Runs the binary on this tree with keys going to the test's session.
    pub fn run(&self, args: &[&str]) -> Run {
        finished(self.command(args).output().expect("run integrity-loader"))
    }

    /// Everything observable: the session keyring's keys (recursively, as
    /// type, description and payload length) and the securityfs files.
    pub fn snapshot(&self) -> Snapshot {
        let mut keys = Vec::new();
        walk(self.session, "", &mut keys);
        keys.sort();
        Snapshot {
            keys,
            evm: self.sfs("evm"),
            policy: self.sfs("ima/policy"),
        }
    }

    /// Keys in the session keyring as "type:description".
    pub fn keys(&self) -> Vec<String> {
        self.snapshot().keys
    }

    pub fn find(&self, key_type: &str, desc: &str) -> Option<KeySerial> {
        keyring::search(self.session, key_type, desc).unwrap()
    }

    /// Certificates in the `_evm`/`_ima` keyring under the session.
    pub fn certs_in(&self, ring: &str) -> Vec<String> {
        let Some(id) = self.find("keyring", ring) else {
            return vec![];
        };
        keyring::list(id)
            .unwrap()
            .into_iter()
            .map(|k| keyring::describe(k).unwrap())
            .filter(|k| k.key_type == "asymmetric")
            .map(|k| k.description)
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub keys: Vec<String>,
    pub evm: Vec<u8>,
    pub policy: Vec<u8>,
}

fn walk(ring: KeySerial, prefix: &str, out: &mut Vec<String>) {
    for id in keyring::list(ring).unwrap_or_default() {
        let Ok(k) = keyring::describe(id) else {
            continue;
        };
        let len = if k.key_type == "keyring" {
            String::new()
        } else {
            format!(":{}", keyring::read(id).map(|p| p.len()).unwrap_or(0))
        };
        out.push(format!("{prefix}{}:{}{len}", k.key_type, k.description));
        if k.key_type == "keyring" {
            walk(id, &format!("{prefix}{}/", k.description), out);
        }
    }
}

/// Exports an evm-key sealed by a `user` master key `kmk_name` holding
/// `kmk`, made by the real kernel in a throw-away thread (its own session
/// keyring), so the test's keyring stays empty.
pub fn make_evm_blob(kmk: &[u8], kmk_name: &str) -> String {
    let kmk = kmk.to_vec();
    let kmk_name = kmk_name.to_string();
    std::thread::spawn(move || {
        let s = keyring::join_new_session().unwrap();
        keyring::add_key("user", Some(&kmk_name), &kmk, s).unwrap();
        let payload = format!("new user:{kmk_name} 32");
        let id = keyring::add_key("encrypted", Some("evm-key"), payload.as_bytes(), s).unwrap();
        String::from_utf8(keyring::read(id).unwrap()).unwrap()
    })
    .join()
    .unwrap()
}

/// A complete dracut-style setup: user kmk, evm-key, EVM and IMA certs, a
/// policy with signature-appraise rules.
pub fn dracut_setup(f: &Fixture) {
    f.write("/etc/sysconfig/masterkey", "MASTERKEYTYPE=user\n");
    f.write("/etc/keys/kmk-user.blob", BINARY_KMK);
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm-user.blob\n");
    f.write(
        "/etc/keys/evm-user.blob",
        make_evm_blob(&BINARY_KMK, "kmk-user"),
    );
    f.copy_cert("rsa2048.der", "/etc/keys/x509_evm.der");
    f.copy_cert("ecdsa-p256.pem", "/etc/keys/ima/ecdsa.pem");
    f.copy_cert("rsa2048.pem", "/etc/keys/ima/rsa.pem");
    f.write("/etc/sysconfig/ima-policy", POLICY);
}

pub const POLICY: &str = "\
# test policy
dont_measure fsmagic=0x9fa0
dont_appraise fsmagic=0x62656572
measure func=BPRM_CHECK mask=MAY_EXEC
appraise func=BPRM_CHECK appraise_type=imasig
";

pub const POLICY_RULES: &str = "\
dont_measure fsmagic=0x9fa0
dont_appraise fsmagic=0x62656572
measure func=BPRM_CHECK mask=MAY_EXEC
appraise func=BPRM_CHECK appraise_type=imasig
";

pub fn make_private(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o000)).unwrap();
}

// ---- Shared by hostile_matrix.rs, secret_hygiene.rs and concurrency.rs ----

impl Fixture {
    /// The command `run` runs, for a test that changes it before starting
    /// it (spawns it, sets its environment or its privileges).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .arg("--root")
            .arg(self.root())
            .arg("--securityfs")
            .arg(self.dir.join("sfs"))
            .arg("--cmdline")
            .arg(self.dir.join("cmdline"))
            .arg("--keyring")
            .arg("@s")
            .arg("--run-dir")
            .arg(self.dir.join("run"))
            // Never the host's: no UKI unless a test makes one, and the
            // host's systemd measure log left alone.
            .arg("--efivars")
            .arg(self.dir.join("efivars"))
            .env(
                "SYSTEMD_MEASURE_LOG_USERSPACE",
                self.dir.join("tpm2-measure.log"),
            )
            .env("INTEGRITY_LOADER_LOG", "stderr")
            .env_remove("NEWROOT");
        cmd
    }

    /// Runs `args` with the debug build's crash hook set to abort right
    /// after rename `n`: `None` when the run finished without reaching it,
    /// else its stderr, once it is checked that the hook's abort ended it.
    pub fn run_crashing_after_rename(&self, args: &[&str], n: usize) -> Option<String> {
        use std::os::unix::process::ExitStatusExt;
        let out = self
            .command(args)
            .env("INTEGRITY_LOADER_CRASH_AFTER_RENAME", n.to_string())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            return None;
        }
        assert_eq!(
            out.status.signal(),
            Some(nix::sys::signal::Signal::SIGABRT as i32),
            "{args:?} crash point {n}: {stderr}"
        );
        Some(stderr)
    }

    /// A `reseal` (or `seal`) cut short by the crash hook right after rename
    /// `n`, once it has switched the configuration: checks that
    /// /etc/integrity-loader.conf now names `MASTERKEY=/<blob>.next`, the
    /// blob the run wrote beside `blob` (a path under the root, no leading /).
    pub fn crash_past_the_switch(&self, args: &[&str], n: usize, blob: &str) {
        self.run_crashing_after_rename(args, n)
            .unwrap_or_else(|| panic!("the run reaches rename {n}"));
        let conf = fs::read_to_string(self.root().join("etc/integrity-loader.conf")).unwrap();
        assert!(
            conf.contains(&format!("MASTERKEY=/{blob}.next\n")),
            "{conf}"
        );
    }
}

/// A finished command as a `Run`.
pub fn finished(out: std::process::Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Standard base64 with padding (RFC 4648 section 4), the loader's own.
pub fn base64_encode(data: &[u8]) -> String {
    integrity_loader::base64::encode(data)
}

/// Decodes standard base64, skipping whitespace; panics on anything else.
pub fn base64_decode(text: &[u8]) -> Vec<u8> {
    let chars: Vec<u8> = text
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    integrity_loader::base64::decode(&chars)
        .unwrap_or_else(|at| panic!("not base64 at character {at}"))
}

/// The DER inside a PEM file (the lines between BEGIN and END).
pub fn pem_body(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    base64_decode(body.as_bytes())
}
