//! A buffer for key material (the kmk, unsealed data): zeroized on drop, never printed.

use std::fmt;
use zeroize::Zeroize;

/// Keeps this process's memory out of core dumps and away from other
/// processes of the same user (ptrace, /proc/PID/mem): a crash or a
/// `gcore` while the loader waits on the TPM after Unseal would otherwise
/// write the kmk to disk. Called first thing in `main`, before any secret
/// exists. Both calls only lower privileges; a failure is returned for the
/// caller to log, and the boot goes on.
pub fn protect_process() -> Result<(), nix::errno::Errno> {
    use nix::sys::resource::{Resource, setrlimit};
    // Non-dumpable: no core file whatever the core limit, and /proc/PID's
    // files belong to root, so only root can ptrace or read our memory.
    nix::sys::prctl::set_dumpable(false)?;
    // And a core limit of 0 that children (none today) inherit too.
    setrlimit(Resource::RLIMIT_CORE, 0, 0)
}

/// Secret bytes. `Debug` shows only the length, there is no `Display`, and the
/// buffer is overwritten with zeros when dropped.
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes ownership of `bytes`. The caller must not keep other copies.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// A zero-filled secret buffer of `len` bytes, allocated once so that
    /// filling it never reallocates (a reallocation would leave a copy behind).
    pub fn zeroed(len: usize) -> Self {
        Secret(vec![0; len])
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Shortens the secret in place; the cut-off tail is zeroized first.
    pub fn truncate(&mut self, len: usize) {
        if len < self.0.len() {
            if let Some(tail) = self.0.get_mut(len..) {
                tail.zeroize();
            }
            self.0.truncate(len);
        }
    }

    /// Compares in time independent of where the first difference is.
    pub fn constant_time_eq(&self, other: &[u8]) -> bool {
        if self.0.len() != other.len() {
            return false;
        }
        let mut diff = 0u8;
        for (a, b) in self.0.iter().zip(other) {
            diff |= a ^ b;
        }
        diff == 0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_contents() {
        let s = Secret::new(b"topsecret".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(9 bytes)");
    }

    #[test]
    fn truncate_and_compare() {
        let mut s = Secret::new(b"abcdef".to_vec());
        s.truncate(3);
        assert!(s.constant_time_eq(b"abc"));
        assert!(!s.constant_time_eq(b"abd"));
        assert!(!s.constant_time_eq(b"ab"));
    }
}
