//! Expedited RCU grace periods for the one kernel call that waits on one.
//!
//! The kernel publishes a new IMA policy when its file is closed, and first
//! waits for an RCU grace period (`ima_update_policy` splices the rules in
//! with `synchronize_rcu`). A normal grace period waits for the scheduler
//! ticks of every CPU: ~10 ms at HZ=250, on hardware as in a VM, while the
//! boot waits for the loader. An expedited one forces the quiescent states
//! with IPIs and ends in well under a millisecond. The kernel expedites
//! every grace period itself until it starts init and stops before the
//! initramfs runs; Android's init turns `rcu_expedited` on for its whole
//! boot. We turn it on for the close only and put back what was there.
//!
//! The knob is `/sys/kernel/rcu_expedited`, the sibling of securityfs's
//! mount point, so a test's stand-in securityfs directory brings its own
//! stand-in knob (or none) and the host's is never touched.

use std::io::{Read, Write};
use std::path::Path;

/// The knob's file name, next to securityfs's mount point.
pub const KNOB: &str = "rcu_expedited";

/// Runs `f` with expedited grace periods when the kernel has the knob and
/// it is off, then turns it off again; runs `f` as it is otherwise (no knob:
/// TINY_RCU kernels, whose grace periods on one CPU end at once anyway;
/// `rcu_expedited` already on; no write access). Returns what `f` returns
/// and whether grace periods were expedited for it.
pub fn expedited<T>(knob: &Path, f: impl FnOnce() -> T) -> (T, bool) {
    let turned_on = turn_on(knob);
    let result = f();
    if turned_on {
        // Nothing to report if this fails: the kernel has a knob it let us
        // write a moment ago, and expedited grace periods are correct, only
        // more IPIs than a quiet system needs.
        let _ = write_knob(knob, b"0\n");
    }
    (result, turned_on)
}

/// Turns the knob on when it reads "0"; whether it did.
fn turn_on(knob: &Path) -> bool {
    let mut now = [0u8; 16];
    let Ok(n) = std::fs::File::open(knob).and_then(|mut f| f.read(&mut now)) else {
        return false;
    };
    now.get(..n).map(|s| s.trim_ascii()) == Some(b"0") && write_knob(knob, b"1\n").is_ok()
}

fn write_knob(knob: &Path, value: &[u8]) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(knob)?
        .write_all(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::temp_dir;

    fn knob_in(dir: &Path, value: &str) -> std::path::PathBuf {
        let knob = dir.join(KNOB);
        std::fs::write(&knob, value).unwrap();
        knob
    }

    #[test]
    fn grace_periods_are_expedited_for_the_call_and_the_knob_put_back() {
        let knob = knob_in(&temp_dir("rcu-on"), "0\n");
        let (seen, expedited) = expedited(&knob, || std::fs::read_to_string(&knob).unwrap());
        assert_eq!(seen, "1\n");
        assert!(expedited);
        assert_eq!(std::fs::read_to_string(&knob).unwrap(), "0\n");
    }

    #[test]
    fn an_admin_s_expedited_setting_is_left_alone() {
        let knob = knob_in(&temp_dir("rcu-admin"), "1\n");
        let ((), expedited) = expedited(&knob, || ());
        assert!(!expedited);
        assert_eq!(std::fs::read_to_string(&knob).unwrap(), "1\n");
    }

    #[test]
    fn without_the_knob_the_call_runs_as_it_is() {
        let dir = temp_dir("rcu-none");
        let (value, expedited) = expedited(&dir.join(KNOB), || 7);
        assert_eq!((value, expedited), (7, false));
        assert!(!dir.join(KNOB).exists(), "the knob must not be created");
    }

    #[test]
    fn a_knob_that_cannot_be_read_leaves_the_call_unexpedited() {
        let dir = temp_dir("rcu-dir");
        std::fs::create_dir(dir.join(KNOB)).unwrap();
        let ((), expedited) = expedited(&dir.join(KNOB), || ());
        assert!(!expedited);
    }
}
