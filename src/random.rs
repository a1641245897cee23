//! Random bytes from the kernel's generator (getrandom(2)), the only source
//! of session secrets and nonces. Early in a boot on hardware without a
//! fast entropy source (no RDRAND, no virtio-rng) the generator is not
//! seeded yet and getrandom blocks, for about a second in a VM: that is a
//! real boot delay, so the first call that has to wait says so and for how
//! long. Nothing weaker than the seeded generator is ever used.

use nix::errno::Errno;
use nix::libc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Set once a call found the generator seeded (or waited for it): later
/// calls never wait, so they skip the probe.
static SEEDED: AtomicBool = AtomicBool::new(false);

/// Fills `buf` from the kernel's generator, blocking until it is seeded.
pub fn fill(buf: &mut [u8]) -> Result<(), Errno> {
    if !SEEDED.load(Ordering::Relaxed) {
        match getrandom(buf, libc::GRND_NONBLOCK) {
            Ok(()) => {}
            Err(Errno::EAGAIN) => {
                log::info!("waiting for the kernel's random generator to be seeded");
                let start = Instant::now();
                getrandom(buf, 0)?;
                log::info!(
                    "the kernel's random generator was seeded after {} ms of waiting (a hardware RNG, RDRAND or virtio-rng, avoids this)",
                    start.elapsed().as_millis()
                );
            }
            Err(e) => return Err(e),
        }
        SEEDED.store(true, Ordering::Relaxed);
        return Ok(());
    }
    getrandom(buf, 0)
}

/// getrandom(2) until `buf` is full: a call may return fewer bytes than
/// asked (above 256 bytes, or when a signal arrives).
fn getrandom(buf: &mut [u8], flags: libc::c_uint) -> Result<(), Errno> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..) {
        if rest.is_empty() {
            break;
        }
        // SAFETY: `rest` is valid for writes of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), flags) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        done += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_long_buffers_with_something_other_than_zeros() {
        // Longer than one getrandom call returns at once.
        let mut a = vec![0u8; 1000];
        let mut b = vec![0u8; 1000];
        fill(&mut a).unwrap();
        fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert!(a.iter().rev().take(64).any(|&x| x != 0));
    }
}
