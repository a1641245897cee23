//! Clocks read with clock_gettime(2) as a plain system call.
//!
//! `std::time::Instant` and `SystemTime` go through musl's clock_gettime,
//! whose first call looks its vDSO symbol up (~200 instructions) and then
//! runs the vDSO's code, mapped at a new address in each process: a boot
//! runs both once, and an emulator translates both once. A boot reads the
//! clock some 30 times; as system calls that costs less than the lookup.

use std::time::Duration;

/// A reading of CLOCK_MONOTONIC, as `std::time::Instant` (whose API this
/// mirrors, as far as the loader uses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    pub fn now() -> Instant {
        Instant(read(nix::libc::CLOCK_MONOTONIC))
    }

    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(*self)
    }

    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }

    pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    pub fn checked_add(&self, d: Duration) -> Option<Instant> {
        self.0.checked_add(d).map(Instant)
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates instead of panicking: a deadline past the clock's range
    /// is a deadline never reached.
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }
}

impl std::ops::Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// Seconds since 1970 by CLOCK_REALTIME (negative before it, as a clock
/// without an RTC can be).
pub fn unix_seconds() -> i64 {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    gettime(nix::libc::CLOCK_REALTIME, &mut ts);
    ts.tv_sec
}

fn read(clock: nix::libc::clockid_t) -> Duration {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    gettime(clock, &mut ts);
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

fn gettime(clock: nix::libc::clockid_t, ts: &mut nix::libc::timespec) {
    // SAFETY: a valid clock id and a timespec the kernel may write. It
    // cannot fail for these clocks; were it to, the zeros stay.
    unsafe {
        nix::libc::syscall(
            nix::libc::SYS_clock_gettime,
            clock,
            ts as *mut nix::libc::timespec,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::{Instant, unix_seconds};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn it_reads_the_clocks_std_reads() {
        let (std_before, ours, std_after) = (
            std::time::Instant::now(),
            Instant::now(),
            std::time::Instant::now(),
        );
        std::thread::sleep(Duration::from_millis(20));
        let (ours_took, std_took) = (ours.elapsed(), std_after.elapsed());
        assert!(ours_took >= Duration::from_millis(20));
        // The same clock: what ours measured lies within std's two readings.
        assert!(ours_took <= std_before.elapsed(), "{ours_took:?}");
        assert!(ours_took + Duration::from_millis(5) >= std_took);
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(unix_seconds().abs_diff(unix.as_secs() as i64) <= 1);
    }

    #[test]
    fn arithmetic_saturates() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        assert_eq!(later - now, Duration::from_secs(5));
        assert_eq!(now - later, Duration::ZERO);
        assert!(later > now);
        assert_eq!(now + Duration::MAX, Instant(Duration::MAX));
        assert_eq!(now.checked_add(Duration::MAX), None);
    }
}
