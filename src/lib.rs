//! integrity-loader: turns on the kernel integrity subsystem (IMA/EVM) from
//! the initramfs. The binary's commands share these modules, so `check` runs
//! exactly the parsing and validation that `load` runs.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
// Every unsafe block says why it is sound, tests included.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod arena;
pub mod audit;
pub mod base64;
pub mod cli;
pub mod cmdline;
pub mod commands;
pub mod config;
pub(crate) mod der;
pub(crate) mod dir;
pub mod efi;
pub mod encrypted_key;
pub(crate) mod evm;
pub(crate) mod hex;
pub mod ima_policy;
pub mod keyring;
pub mod logging;
pub(crate) mod pcr_choice;
pub mod pem;
pub mod pins;
pub(crate) mod plan;
pub(crate) mod random;
pub(crate) mod rcu;
pub mod recovery;
pub mod rootfs;
pub(crate) mod runner;
pub mod secret;
pub(crate) mod securityfs;
pub mod startup;
pub(crate) mod steps;
pub mod sysconfig;
pub mod tpm;
pub mod x509;

/// What unit tests of several modules share.
#[cfg(test)]
pub(crate) mod test_support {
    /// Runs openssl, the independent implementation tests check our
    /// crypto against; its stdout. A failure fails the test with its stderr.
    #[allow(clippy::expect_used)]
    pub fn openssl(args: &[&str]) -> Vec<u8> {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl must be installed (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A fresh absolute directory under the temp dir, unique per process and call.
    #[allow(clippy::unwrap_used)]
    pub fn temp_dir(tag: &str) -> std::path::PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("integrity-loader-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.canonicalize().unwrap()
    }

    /// Writes `bytes` to `path` (absolute, as seen on the root) under
    /// `root`, making its directories.
    #[allow(clippy::unwrap_used)]
    pub fn put(root: &std::path::Path, path: &str, bytes: &[u8]) {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}
