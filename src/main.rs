//! Thin entry point: parse arguments, start the logger, run one command,
//! turn its result into an exit code. This binary goes into the initramfs
//! and carries only what a boot runs (`load`); the installed system's
//! commands (check, status, seal, reseal, sign-policy) run the sibling
//! `integrity-admin`, the audit `integrity-audit`, with the same arguments.

use integrity_loader::{commands, logging};
use std::process::ExitCode;

/// A boot on the demo root allocates 36 KiB in all; the arena leaves ample
/// room (its untouched pages cost nothing), and past it the C library
/// serves.
#[global_allocator]
static ALLOCATOR: integrity_loader::arena::Arena<{ 1024 * 1024 }> =
    integrity_loader::arena::Arena::new();

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args
        .first()
        .is_some_and(|a| commands::sibling::is_sibling_command(a))
    {
        return ExitCode::from(commands::sibling::exec_audit(&args));
    }
    // Before anything that could hold a secret; logged once the logger runs.
    let protected = integrity_loader::secret::protect_process();
    let (command, options) = match commands::parse_or_exit("integrity-loader", &args) {
        Ok(parsed) => parsed,
        Err(code) => return ExitCode::from(code),
    };
    if command.is_admin() {
        return ExitCode::from(commands::sibling::exec_admin(command.name(), &args));
    }
    // load: the kernel log in the initramfs, else stderr.
    commands::start_logging(logging::choose_sink(), &options, protected);
    ExitCode::from(commands::finish(commands::run(command, &options)))
}
