//! Thin entry point: parse arguments, start the logger, run one command,
//! turn its result into an exit code. This binary goes into the initramfs
//! and carries only what a boot runs (`load`); the installed system's
//! commands (check, status, seal, reseal, sign-policy) run the sibling
//! `integrity-admin`, the audit `integrity-audit`, with the same arguments.

use integrity_loader::cli::{self, Parsed};
use integrity_loader::{commands, logging};
use std::process::ExitCode;

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
    let (command, options) = match cli::parse_args(&args) {
        Ok(Parsed::Run(c, o)) => (c, o),
        Ok(Parsed::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("integrity-loader {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("integrity-loader: {e}\nTry 'integrity-loader --help'.");
            return ExitCode::from(2);
        }
    };
    if command.is_admin() {
        return ExitCode::from(commands::sibling::exec_admin(command.name(), &args));
    }
    let sink = match command {
        // status and check answer the person at the terminal.
        cli::Command::Load(_) => logging::choose_sink(),
        _ => logging::Sink::Stderr,
    };
    logging::init(sink, logging::level_for(options.verbosity));
    if let Err(e) = protected {
        log::warn!(
            "cannot keep secrets out of core dumps ({}): a crash could write the kmk to disk",
            e.desc()
        );
    }
    ExitCode::from(commands::finish(commands::run(command, &options)))
}
