//! The `shorts` binary: see `cli` for the commands and `shorts --help`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cli::Cli::try_parse() {
        Ok(cli) => cli.run(),
        Err(e) => {
            // --help and --version are "errors" that go to stdout and succeed.
            let _ = e.print();
            if e.use_stderr() {
                ExitCode::from(cli::exit::USAGE)
            } else {
                ExitCode::from(cli::exit::OK)
            }
        }
    }
}
