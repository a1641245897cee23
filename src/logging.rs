//! Log sink: /dev/kmsg (written directly) with the `integrity-loader` tag when
//! running in the initramfs, so messages land in the boot log next to the
//! kernel's; stderr otherwise. `INTEGRITY_LOADER_LOG=stderr|kmsg` overrides.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

pub const TAG: &str = "integrity-loader";

/// Log target of the lines that say what went as it should (each step's
/// result, each certificate loaded). Into the kernel log they go at debug
/// priority: `dmesg` and the journal keep them, the console does not show
/// them at the default log level. printk waits for the console, and a
/// 115200-baud serial console (every cloud image has one) prints ~11
/// characters a millisecond: a boot's ~1,400 characters of detail were
/// ~120 ms. The console gets the run's one summary line, warnings and
/// errors. On stderr (a run by hand) they print like any info line.
pub const DETAIL: &str = "detail";

/// A duration in milliseconds to a tenth ("12.3"), printed from integers:
/// formatting an `f64` costs some 10 KB of the binary.
pub struct Ms(pub std::time::Duration);

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // u64, not the u128 of as_micros: one integer formatter fewer.
        let micros = u64::try_from(self.0.as_micros()).unwrap_or(u64::MAX);
        let tenths = micros.saturating_add(50) / 100;
        write!(f, "{}.{}", tenths / 10, tenths % 10)
    }
}

/// A duration in seconds: "30s", "1.5s" (to a tenth).
pub struct Secs(pub std::time::Duration);

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let millis = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        let tenths = millis.saturating_add(50) / 100;
        match tenths % 10 {
            0 if self.0.subsec_millis() == 0 => write!(f, "{}s", self.0.as_secs()),
            t => write!(f, "{}.{t}s", tenths / 10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stderr,
    Kmsg,
}

/// Kmsg inside an initramfs (dracut sets NEWROOT for its hooks; both dracut
/// flavours ship /etc/initrd-release), stderr elsewhere.
pub fn choose_sink() -> Sink {
    match std::env::var("INTEGRITY_LOADER_LOG").as_deref() {
        Ok("stderr") => return Sink::Stderr,
        Ok("kmsg") => return Sink::Kmsg,
        _ => {}
    }
    if std::env::var_os("NEWROOT").is_some() || std::path::Path::new("/etc/initrd-release").exists()
    {
        Sink::Kmsg
    } else {
        Sink::Stderr
    }
}

pub fn level_for(verbosity: i8) -> LevelFilter {
    match verbosity {
        i8::MIN..=-1 => LevelFilter::Error,
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

struct StderrLog;

impl Log for StderrLog {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let prefix = match r.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        // One write a line: stderr is unbuffered, and formatting straight
        // to it made a syscall of each piece.
        let line = format!("{TAG}: {prefix}{}\n", r.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
    fn flush(&self) {}
}

/// One record per open of /dev/kmsg: the kernel rate-limits each open file
/// to 10 records per 5 s (printk.devkmsg=ratelimit, the default) and drops
/// the rest, and refuses a record over 1024 bytes whole (EINVAL).
struct KmsgLog;

/// Room for the text of one record after `<N>integrity-loader[PID]: `.
const KMSG_TEXT_MAX: usize = 960;

impl Log for KmsgLog {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let priority = kmsg_priority(r.level(), r.target());
        let text = r.args().to_string();
        let mut cut = text.len().min(KMSG_TEXT_MAX);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let more = if cut < text.len() { "..." } else { "" };
        let line = format!(
            "<{priority}>{TAG}[{}]: {}{more}\n",
            std::process::id(),
            text.get(..cut).unwrap_or_default()
        );
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/kmsg")
            .and_then(|mut k| k.write_all(line.as_bytes()));
        if written.is_err() {
            let _ = writeln!(std::io::stderr().lock(), "{TAG}: {text}");
        }
    }
    fn flush(&self) {}
}

/// The kernel log priority of a record: `<N>` of its /dev/kmsg line.
fn kmsg_priority(level: Level, target: &str) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info if target == DETAIL => 7,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Installs the logger; falls back to stderr when /dev/kmsg cannot be opened.
pub fn init(sink: Sink, level: LevelFilter) {
    let logger: &'static dyn Log = match sink {
        Sink::Kmsg if std::path::Path::new("/dev/kmsg").exists() => &KmsgLog,
        Sink::Kmsg => &StderrLog,
        Sink::Stderr => &StderrLog,
    };
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::{DETAIL, Ms, Secs, kmsg_priority};
    use log::Level;
    use std::time::Duration;

    #[test]
    fn durations_print_without_floats() {
        assert_eq!(Ms(Duration::from_micros(12_345)).to_string(), "12.3");
        assert_eq!(Ms(Duration::from_micros(99_960)).to_string(), "100.0");
        assert_eq!(Ms(Duration::ZERO).to_string(), "0.0");
        assert_eq!(Secs(Duration::from_secs(20)).to_string(), "20s");
        assert_eq!(Secs(Duration::from_millis(2500)).to_string(), "2.5s");
        assert_eq!(Secs(Duration::from_millis(250)).to_string(), "0.3s");
    }

    #[test]
    fn details_stay_off_the_console_and_the_rest_reaches_it() {
        // The console prints priorities below its level (7 by default).
        assert_eq!(kmsg_priority(Level::Info, DETAIL), 7);
        assert_eq!(
            kmsg_priority(Level::Info, "integrity_loader::commands::load"),
            6
        );
        assert_eq!(kmsg_priority(Level::Warn, DETAIL), 4);
        assert_eq!(kmsg_priority(Level::Error, DETAIL), 3);
        assert_eq!(kmsg_priority(Level::Debug, "x"), 7);
    }
}
