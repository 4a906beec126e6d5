//! Command-line arguments to library calls: clap parses the flags, one
//! `match` hands each command to its module's `run`, and a [`CliError`]
//! decides the exit code and prints the error once. No pipeline logic lives
//! here: each command module only calls the library and says what it did.

mod build;
mod check;
mod digest;
mod digest_status;
mod error;
mod inbound;
mod init;
mod new;
mod publish;
mod schedule;
mod serve;
mod subscribers;
mod terminal;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use shorts::clock;
use shorts::config::Config;

pub use error::CliError;

/// Exit codes, as documented in the README.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The input (config.toml, a short, a template, a CSV row) has problems.
    pub const INVALID_INPUT: u8 = 1;
    /// The command line itself is wrong (clap's own code).
    pub const USAGE: u8 = 2;
    /// The input is fine but the work failed (disk full, permissions, …).
    pub const FAILURE: u8 = 3;
    /// Another run holds the lock; this one did nothing.
    pub const LOCKED: u8 = 73;
    /// A temporary failure (SMTP down or deferring): run again later; nothing is lost.
    pub const TEMPORARY: u8 = 75;
}

const AFTER_HELP: &str = "\
Exit codes: 0 success · 1 problems in config, content, templates or a CSV file · \
2 bad command line · 3 the work failed (e.g. the output folder is not writable) · \
73 another run holds the lock (nothing done) · \
75 temporary failure (e.g. SMTP down): run again later, nothing is lost.

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

    /// Log lines as text for people or JSON for machines (one object per line).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a new site in DIR: config.toml, one track, one short; never over a file.
    Init(init::Args),
    /// Write a new short, a draft dated now, into content/shorts/; never over a file.
    New(new::Args),
    /// Validate config.toml, every short and every template; print every problem as `path:line: message`.
    Check(check::Args),
    /// Write the feeds into the output folder (`public/`); all or nothing.
    Build,
    /// What cron runs: build, tell WebSub hubs what changed, send the digest if one is due; one run at a time.
    Publish,
    /// Stay running: publish at every slot of [digest] schedule, rebuild when content changes.
    Schedule,
    /// Serve public/ over HTTP with the subscribe, confirm, unsubscribe and preferences endpoints.
    Serve(serve::Args),
    /// Preview or send the weekly digest email.
    #[command(subcommand)]
    Digest(digest::Command),
    /// Manage email subscribers (stored in the database: SQLite, or PostgreSQL).
    #[command(subcommand)]
    Subscribers(subscribers::Command),
    /// Act on mail that came back (bounces, spam complaints, mailto: unsubscribes), from stdin or a Maildir.
    #[command(after_help = inbound::AFTER_HELP)]
    Inbound(inbound::Args),
}

/// What every command gets: the loaded config, the time it runs at, and how
/// much to say.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub now: DateTime<Utc>,
    pub quiet: bool,
}

impl Ctx<'_> {
    /// A line of the command's summary on stdout, unless `--quiet`.
    pub fn say(&self, line: &str) {
        if !self.quiet {
            terminal::print_line(format_args!("{line}"));
        }
    }
}

impl Cli {
    pub fn run(self) -> ExitCode {
        init_logging(
            self.quiet,
            self.verbose,
            self.log_format,
            matches!(self.command, Command::Schedule | Command::Serve(_)),
        );
        match self.execute() {
            Ok(()) => ExitCode::from(exit::OK),
            // A mail server keeps a message only on 75; any other failure
            // would bounce it, and a bounce of a bounce is lost.
            Err(error) if matches!(&self.command, Command::Inbound(args) if args.reads_stdin()) => {
                error.with_exit_code(exit::TEMPORARY).report()
            }
            Err(error) => error.report(),
        }
    }

    fn execute(&self) -> Result<(), CliError> {
        if let Command::Init(args) = &self.command {
            return init::run(args, clock::now()?, self.quiet);
        }
        let config = Config::load(&self.config).map_err(CliError::invalid)?;
        let ctx = Ctx {
            config: &config,
            now: clock::now()?,
            quiet: self.quiet,
        };
        match &self.command {
            // Returned above, before a config exists to load.
            Command::Init(args) => init::run(args, ctx.now, ctx.quiet),
            Command::New(args) => new::run(&ctx, args),
            Command::Check(args) => check::run(&ctx, args),
            Command::Build => build::run(&ctx),
            Command::Publish => publish::run(&ctx),
            Command::Schedule => schedule::run(&ctx),
            Command::Serve(args) => serve::run(&ctx, args),
            Command::Digest(command) => digest::run(&ctx, command),
            Command::Subscribers(command) => subscribers::run(&ctx, command),
            Command::Inbound(args) => inbound::run(&ctx, args),
        }
    }
}

/// Log times to the second, in UTC, on the run's clock (`SHORTS_NOW` in
/// tests): nanoseconds are noise in a cron log.
struct Seconds;

impl tracing_subscriber::fmt::time::FormatTime for Seconds {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match shorts::clock::now() {
            Ok(now) => write!(w, "{}", now.format("%Y-%m-%dT%H:%M:%SZ")),
            // A bad SHORTS_NOW is reported as the command's error.
            Err(_) => Ok(()),
        }
    }
}

/// Logs go to stderr; colour only on a terminal. The long-running commands
/// (`schedule`, `serve`) log at info level by default, since their log is
/// the only trace they leave.
fn init_logging(quiet: bool, verbose: u8, format: LogFormat, daemon: bool) {
    let level = match (quiet, verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) if daemon => tracing::Level::INFO,
        (false, 0) => tracing::Level::WARN,
        (false, 1) => tracing::Level::INFO,
        (false, 2) => tracing::Level::DEBUG,
        (false, _) => tracing::Level::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_timer(Seconds)
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}
