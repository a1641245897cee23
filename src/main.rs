//! Thin entry point: parse arguments, start the logger, run one command,
//! turn its result into an exit code. This binary goes into the initramfs
//! and carries only what a boot runs (`load`); the installed system's
//! commands (check, status, seal, reseal, sign-policy) run the sibling
//! `integrity-admin`, the audit `integrity-audit`, with the same arguments.
//!
//! It runs on every boot, so it starts as a C program (`no_main`) without
//! std's runtime start: `startup` says what that leaves out and keeps.

#![cfg_attr(not(test), no_main)]

use integrity_loader::{commands, logging};

/// A boot on the demo root allocates 36 KiB in all; the arena leaves ample
/// room (its untouched pages cost nothing), and past it the C library
/// serves.
#[global_allocator]
static ALLOCATOR: integrity_loader::arena::Arena<{ 1024 * 1024 }> =
    integrity_loader::arena::Arena::new();

/// The C entry point: musl's start calls it with the process's arguments.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    use integrity_loader::startup;
    use std::io::Write;
    startup::prepare_process();
    // SAFETY: argc and argv as the C runtime passes them.
    let code = match unsafe { startup::arguments(argc, argv) } {
        Ok(args) => run(&args),
        Err(n) => {
            eprintln!("integrity-loader: argument {n} is not UTF-8; no option takes such a value");
            commands::EXIT_USAGE
        }
    };
    // std's exit path flushed stdout; a C return does not.
    let _ = std::io::stdout().flush();
    std::ffi::c_int::from(code)
}

#[cfg_attr(test, allow(dead_code))]
fn run(args: &[String]) -> u8 {
    if args
        .first()
        .is_some_and(|a| commands::sibling::is_sibling_command(a))
    {
        return commands::sibling::exec_audit(args);
    }
    // Before anything that could hold a secret; logged once the logger runs.
    let protected = integrity_loader::secret::protect_process();
    let (command, options) = match commands::parse_or_exit("integrity-loader", args) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    if command.is_admin() {
        return commands::sibling::exec_admin(command.name(), args);
    }
    // load: the kernel log in the initramfs, else stderr.
    commands::start_logging(logging::choose_sink(), &options, protected);
    commands::finish(commands::run(command, &options))
}
