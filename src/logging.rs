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

/// kernlog names messages by the record's target; ours all say `integrity-loader`.
struct KmsgLog(kernlog::KernelLog);

impl Log for KmsgLog {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        self.0.log(
            &Record::builder()
                .args(*r.args())
                .level(r.level())
                .target(TAG)
                .build(),
        );
    }
    fn flush(&self) {
        self.0.flush();
    }
}

/// Installs the logger; falls back to stderr when /dev/kmsg cannot be opened.
pub fn init(sink: Sink, level: LevelFilter) {
    let logger: Box<dyn Log> = match sink {
        Sink::Kmsg => match kernlog::KernelLog::with_level(level) {
            Ok(k) => Box::new(KmsgLog(k)),
            Err(_) => Box::new(StderrLog),
        },
        Sink::Stderr => Box::new(StderrLog),
    };
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}
