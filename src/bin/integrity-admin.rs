//! `integrity-admin`: the installed system's commands (check, status, seal,
//! reseal, sign-policy) as their own binary, so the initramfs's
//! `integrity-loader` carries only `load`; `integrity-loader check ...`
//! runs this with the same arguments.

use integrity_loader::{commands, logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Before anything that could hold a secret; logged once the logger runs.
    let protected = integrity_loader::secret::protect_process();
    let (command, options) = match commands::parse_or_exit("integrity-admin", &args) {
        Ok(parsed) => parsed,
        Err(code) => return ExitCode::from(code),
    };
    // These answer the person at the terminal.
    commands::start_logging(logging::Sink::Stderr, &options, protected);
    ExitCode::from(commands::finish(commands::run_admin(command, &options)))
}
