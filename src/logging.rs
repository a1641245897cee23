//! Log sink: /dev/kmsg (through kernlog) with the `integrity-loader` tag when
//! running in the initramfs, so messages land in the boot log next to the
//! kernel's; stderr otherwise. `INTEGRITY_LOADER_LOG=stderr|kmsg` overrides.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

pub const TAG: &str = "integrity-loader";

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
        let _ = writeln!(std::io::stderr().lock(), "{TAG}: {prefix}{}", r.args());
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
        let priority = match r.level() {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug | Level::Trace => 7,
        };
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

/// Installs the logger; falls back to stderr when /dev/kmsg cannot be opened.
pub fn init(sink: Sink, level: LevelFilter) {
    let logger: Box<dyn Log> = match sink {
        Sink::Kmsg if std::path::Path::new("/dev/kmsg").exists() => Box::new(KmsgLog),
        Sink::Kmsg => Box::new(StderrLog),
        Sink::Stderr => Box::new(StderrLog),
    };
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
