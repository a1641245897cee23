//! `integrity-audit`: the audit as its own binary, so the initramfs's
//! `integrity-loader` does not carry its code (see the README).

use integrity_loader::{audit, commands, logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    logging::init(logging::Sink::Stderr, logging::level_for(0));
    ExitCode::from(commands::finish(audit::run(&args)))
}
