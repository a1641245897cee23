//! `integrity-admin`: the installed system's commands (check, status, seal,
//! reseal, sign-policy) as their own binary, so the initramfs's
//! `integrity-loader` carries only `load`; `integrity-loader check ...`
//! runs this with the same arguments.

use integrity_loader::cli::{self, Parsed};
use integrity_loader::{commands, logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Before anything that could hold a secret; logged once the logger runs.
    let protected = integrity_loader::secret::protect_process();
    let (command, options) = match cli::parse_args(&args) {
        Ok(Parsed::Run(c, o)) => (c, o),
        Ok(Parsed::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("integrity-admin {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("integrity-loader: {e}\nTry 'integrity-loader --help'.");
            return ExitCode::from(2);
        }
    };
    logging::init(logging::Sink::Stderr, logging::level_for(options.verbosity));
    if let Err(e) = protected {
        log::warn!(
            "cannot keep secrets out of core dumps ({}): a crash could write the kmk to disk",
            e.desc()
        );
    }
    ExitCode::from(commands::finish(commands::run_admin(command, &options)))
}
