//! Command-line arguments to library calls: parses flags with clap, runs the
//! command, prints its summary or its errors once, and maps the outcome to an
//! exit code. No pipeline logic lives here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use shorts::clock;
use shorts::config::Config;
use shorts::diagnostics::{Problems, display_path};
use shorts::site::{self, BuildError};

/// Exit codes, as documented in the README.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The input (config.toml, a short, a template) has problems; nothing was written.
    pub const INVALID_INPUT: u8 = 1;
    /// The command line itself is wrong (clap's own code).
    pub const USAGE: u8 = 2;
    /// The input is fine but the work failed (disk full, permissions, …).
    pub const FAILURE: u8 = 3;
}

const AFTER_HELP: &str = "\
Exit codes: 0 success · 1 problems in config, content or templates (nothing written) · \
2 bad command line · 3 the work failed (e.g. the output folder is not writable).

Paths inside config.toml are relative to the config file's folder.";

/// Feeds, pages and a weekly digest from a folder of single-idea Markdown notes.
#[derive(Debug, Parser)]
#[command(name = "shorts", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// The site's config file.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "config.toml"
    )]
    config: PathBuf,

    /// Print nothing on success; errors still go to stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    /// Log more: -v for each step, -vv for details.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate config.toml and every short; print every problem as `path:line: message`.
    Check,
    /// Write the feeds into the output folder (`public/`); all or nothing.
    Build,
}

impl Cli {
    pub fn run(self) -> ExitCode {
        init_logging(self.quiet, self.verbose);
        let config = match Config::load(&self.config) {
            Ok(config) => config,
            Err(problems) => return report_problems(&problems, "nothing was done"),
        };
        let now = match clock::now() {
            Ok(now) => now,
            Err(e) => return fail(&e.to_string()),
        };
        match self.command {
            Command::Check => match site::check(&config, now) {
                Ok(shorts) => {
                    self.say(&format!("ok: config.toml and {shorts} shorts are valid"));
                    ExitCode::from(exit::OK)
                }
                Err(e) => report_build_error(e, "fix them and run `shorts check` again"),
            },
            Command::Build => match site::build(&config, now) {
                Ok(report) => {
                    self.say(&format!(
                        "built {} shorts ({} published) into {}: {} files written, {} unchanged, {} removed in {} ms",
                        report.shorts,
                        report.published,
                        display_path(&config.output_dir),
                        report.files.written,
                        report.files.unchanged,
                        report.files.removed,
                        report.elapsed.as_millis()
                    ));
                    ExitCode::from(exit::OK)
                }
                Err(e) => {
                    report_build_error(e, "nothing was written; the previous output is unchanged")
                }
            },
        }
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            println!("{line}");
        }
    }
}

fn report_build_error(error: BuildError, consequence: &str) -> ExitCode {
    match error {
        BuildError::Invalid(problems) => report_problems(&problems, consequence),
        other => fail(&format!("{other}")),
    }
}

fn report_problems(problems: &Problems, consequence: &str) -> ExitCode {
    for problem in problems.iter() {
        eprintln!("{problem}");
    }
    let n = problems.len();
    eprintln!(
        "error: {n} problem{} found; {consequence}",
        if n == 1 { "" } else { "s" }
    );
    ExitCode::from(exit::INVALID_INPUT)
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(exit::FAILURE)
}

/// Logs go to stderr; colour only on a terminal.
fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::WARN,
        (false, 1) => tracing::Level::INFO,
        (false, 2) => tracing::Level::DEBUG,
        (false, _) => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
