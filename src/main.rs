//! Thin entry point: parse arguments, start the logger, run one command,
//! turn its result into an exit code.

use integrity_loader::cli::{self, Parsed};
use integrity_loader::{commands, logging};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    let sink = match command {
        // status and check answer the person at the terminal.
        cli::Command::Load => logging::choose_sink(),
        _ => logging::Sink::Stderr,
    };
    logging::init(sink, logging::level_for(options.verbosity));
    ExitCode::from(commands::run(command, &options))
}
