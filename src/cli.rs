//! Command-line arguments to library calls: parses flags with clap, runs the
//! command, prints its summary or its errors once, and maps the outcome to an
//! exit code. No pipeline logic lives here.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use clap::{Args, Parser, Subcommand};

use shorts::clock;
use shorts::config::Config;
use shorts::daemon::Daemon;
use shorts::delivery;
use shorts::diagnostics::{Problem, Problems, display_path};
use shorts::digest::{self, DryRunLine, Inputs, InputsError, Plan, Sender, Sent};
use shorts::lock::{LockError, RunLock};
use shorts::model::{Subscriber, SubscriberStatus};
use shorts::publish::{self, PublishError};
use shorts::render::digest::DigestTemplates;
use shorts::site::{self, BuildError};
use shorts::store::{Saved, Store};
use shorts::subscribers;
use shorts::tokens::Secret;

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

/// `println!` for a command's output that goes quiet once the reader has
/// gone away, as in `shorts digest send --dry-run | head`, instead of
/// panicking on the broken pipe; the command still ends with its own exit code.
macro_rules! out {
    ($($arg:tt)*) => {
        print_line(format_args!($($arg)*))
    };
}

fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    static READER_GONE: AtomicBool = AtomicBool::new(false);
    if READER_GONE.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = writeln!(std::io::stdout().lock(), "{line}")
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        READER_GONE.store(true, Ordering::Relaxed);
    }
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
    /// Validate config.toml, every short and every template; print every problem as `path:line: message`.
    Check,
    /// Write the feeds into the output folder (`public/`); all or nothing.
    Build,
    /// What cron runs: build, then send the digest if one is due; one run at a time.
    Publish,
    /// Stay running: publish at every slot of [digest] schedule, rebuild when content changes.
    Schedule,
    /// Serve public/ over HTTP with the subscribe, confirm, unsubscribe and preferences endpoints.
    Serve {
        /// Address to listen on (default: [server] bind, 127.0.0.1:8080); port 0 picks a free one.
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Preview or send the weekly digest email.
    #[command(subcommand)]
    Digest(DigestCommand),
    /// Manage email subscribers (stored in the SQLite database).
    #[command(subcommand)]
    Subscribers(SubscribersCommand),
}

#[derive(Debug, Subcommand)]
enum DigestCommand {
    /// Write the due digest as .eml, .html and .txt files; sends nothing, records nothing.
    Preview {
        #[command(flatten)]
        period: Period,
        /// Render the copy of this subscriber (default: a sample reader of every track).
        #[arg(long, value_name = "EMAIL")]
        subscriber: Option<String>,
    },
    /// Send the due digest to every active subscriber; resumes an unfinished one.
    Send {
        #[command(flatten)]
        period: Period,
        /// Say what would go to whom; send and record nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
struct Period {
    /// The digest of the latest slot at or before this date (end of day, site time zone)
    /// or RFC 3339 date-time, instead of now.
    #[arg(long, value_name = "WHEN")]
    period: Option<String>,
}

#[derive(Debug, Subcommand)]
enum SubscribersCommand {
    /// Add a subscriber (active at once), or update the one with this address.
    Add {
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Comma-separated track slugs (default: every track).
        #[arg(long, default_value = "")]
        tracks: String,
    },
    /// Delete a subscriber and their delivery records.
    Remove { email: String },
    /// Print every subscriber.
    List,
    /// Import a CSV file with columns email,name,tracks,status; bad rows are reported and skipped.
    Import { file: PathBuf },
    /// Write every subscriber as CSV (email,name,tracks,status) to stdout.
    Export,
}

/// How a command ended, before it becomes an exit code.
enum Outcome {
    Done,
    Invalid(Problems, &'static str),
    Temporary(String),
    Locked(String),
}

/// Exit 75 when a digest is left for the next run.
fn outcome_of(sent: &Sent) -> Outcome {
    let Sent::Digests(reports) = sent else {
        return Outcome::Done;
    };
    match reports.iter().find(|r| r.is_temporary_failure()) {
        Some(report) => Outcome::Temporary(match &report.fatal {
            Some(fatal) => format!(
                "digest #{} stopped: {fatal}; {} deliveries wait for the next run",
                report.number, report.deferred
            ),
            None => format!(
                "digest #{}: {} deliveries failed temporarily; run `shorts digest send` again to retry them",
                report.number, report.deferred
            ),
        }),
        None => Outcome::Done,
    }
}

/// Resolves on SIGTERM or SIGINT, for a graceful shutdown.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

/// A progress bar on stderr when it is a terminal; nothing under cron.
struct ProgressLine {
    enabled: bool,
    bar: std::sync::OnceLock<indicatif::ProgressBar>,
}

impl ProgressLine {
    fn new(quiet: bool) -> Self {
        ProgressLine {
            enabled: !quiet && std::io::stderr().is_terminal(),
            bar: std::sync::OnceLock::new(),
        }
    }

    fn update(&self, number: i64, done: usize, total: usize) {
        if !self.enabled {
            return;
        }
        let bar = self.bar.get_or_init(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        bar.set_message(format!("digest #{number}"));
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

/// SIGTERM and SIGINT set the returned flag (a send then finishes the message
/// in flight and stops); a second SIGINT exits at once.
fn stop_on_signals() -> &'static AtomicBool {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            let _ = signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&flag));
            let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
        }
        flag
    })
}

impl Cli {
    pub fn run(self) -> ExitCode {
        init_logging(
            self.quiet,
            self.verbose,
            self.log_format,
            matches!(self.command, Command::Schedule),
        );
        let config = match Config::load(&self.config) {
            Ok(config) => config,
            Err(problems) => return report_problems(&problems, "nothing was done"),
        };
        let result = clock::now().and_then(|now| self.dispatch(&config, now));
        match result {
            Ok(Outcome::Done) => ExitCode::from(exit::OK),
            Ok(Outcome::Invalid(problems, consequence)) => report_problems(&problems, consequence),
            Ok(Outcome::Temporary(message)) => {
                eprintln!("error: {message}");
                ExitCode::from(exit::TEMPORARY)
            }
            Ok(Outcome::Locked(message)) => {
                eprintln!("error: {message}");
                ExitCode::from(exit::LOCKED)
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(exit::FAILURE)
            }
        }
    }

    fn dispatch(&self, config: &Config, now: DateTime<Utc>) -> anyhow::Result<Outcome> {
        match &self.command {
            Command::Check => self.check(config, now),
            Command::Build => self.build(config, now),
            Command::Digest(DigestCommand::Preview { period, subscriber }) => {
                self.preview(config, now, period, subscriber.as_deref())
            }
            Command::Digest(DigestCommand::Send { period, dry_run }) => {
                self.send(config, now, period, *dry_run)
            }
            Command::Subscribers(command) => self.subscribers(config, now, command),
            Command::Publish => self.publish(config, now),
            Command::Schedule => self.schedule(config),
            Command::Serve { bind } => self.serve(config, bind.as_deref()),
        }
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            out!("{line}");
        }
    }

    fn check(&self, config: &Config, now: DateTime<Utc>) -> anyhow::Result<Outcome> {
        let mut problems = Problems::default();
        let shorts = match site::check(config, now) {
            Ok(shorts) => shorts,
            Err(BuildError::Invalid(p)) => {
                problems.extend(p);
                0
            }
            Err(other) => return Err(other.into()),
        };
        if let Err(p) = DigestTemplates::load(config) {
            problems.extend(p);
        }
        // A DKIM key that cannot be read would otherwise only show at send time.
        if let Some(dkim) = &config.delivery.dkim
            && let Err(e) = delivery::compose::Signer::load(dkim)
        {
            problems.push(Problem::new(
                &config.path,
                None,
                format!("[delivery.dkim]: {e}"),
            ));
        }
        if !problems.is_empty() {
            return Ok(Outcome::Invalid(
                problems.sorted(),
                "fix them and run `shorts check` again",
            ));
        }
        self.say(&format!(
            "ok: config.toml, {shorts} shorts and the digest templates are valid"
        ));
        Ok(Outcome::Done)
    }

    fn build(&self, config: &Config, now: DateTime<Utc>) -> anyhow::Result<Outcome> {
        // The same lock as publish and the daemon's rebuilds: two writers to
        // public/ at once could leave a mix of both.
        let _lock = match run_lock(config)? {
            Ok(lock) => lock,
            Err(held) => return Ok(held),
        };
        match site::build(config, now) {
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
                Ok(Outcome::Done)
            }
            Err(BuildError::Invalid(problems)) => Ok(Outcome::Invalid(
                problems,
                "nothing was written; the previous output is unchanged",
            )),
            Err(other) => Err(other.into()),
        }
    }

    fn preview(
        &self,
        config: &Config,
        now: DateTime<Utc>,
        period: &Period,
        email: Option<&str>,
    ) -> anyhow::Result<Outcome> {
        let at = period.resolve(config, now)?;
        let inputs = match load_inputs(config)? {
            Ok(inputs) => inputs,
            Err(problems) => return Ok(Outcome::Invalid(problems, "nothing was previewed")),
        };
        // Read only: a preview must leave no trace in the ledger.
        let store = match Store::open_read_only(&config.database)? {
            Some(store) => store,
            None => Store::in_memory()?,
        };
        let content = match digest::plan_preview(config, &store, &inputs.collection, at)? {
            Plan::Resume(content) | Plan::New(content) => content,
            Plan::Nothing(reason) => {
                self.say(&format!("nothing to preview: {reason}"));
                return Ok(Outcome::Done);
            }
        };
        let subscriber = match email {
            Some(email) => store
                .subscriber_by_email(email)?
                .with_context(|| format!("no subscriber {email}; see `shorts subscribers list`"))?,
            None => sample_reader(),
        };
        let secret = Secret::load_without_creating(config.data_dir());
        let sender = inputs.sender(config, &store, &secret, now, stop_on_signals());
        let prepared = sender.prepare(&content, subscriber)?;
        let Some((rendered, composed)) = prepared.message else {
            self.say(&format!(
                "nothing to preview: digest #{} has nothing in the tracks of {}",
                content.number, prepared.subscriber.email
            ));
            return Ok(Outcome::Done);
        };
        let dir = &config.preview_dir;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stem = format!(
            "digest-{}-{}",
            content.number,
            file_safe(&prepared.subscriber.email)
        );
        for (extension, bytes) in [
            ("eml", composed.bytes.as_slice()),
            ("html", rendered.html.as_bytes()),
            ("txt", rendered.text.as_bytes()),
        ] {
            let path = dir.join(format!("{stem}.{extension}"));
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        self.say(&format!(
            "digest #{} for {} ({} shorts): \"{}\"\nwrote {}/{stem}.eml, .html and .txt",
            content.number,
            prepared.subscriber.email,
            rendered.count,
            rendered.subject,
            display_path(dir)
        ));
        Ok(Outcome::Done)
    }

    fn send(
        &self,
        config: &Config,
        now: DateTime<Utc>,
        period: &Period,
        dry_run: bool,
    ) -> anyhow::Result<Outcome> {
        let at = period.resolve(config, now)?;
        let inputs = match load_inputs(config)? {
            Ok(inputs) => inputs,
            Err(problems) => return Ok(Outcome::Invalid(problems, "nothing was sent")),
        };
        let _lock = match run_lock(config)? {
            Ok(lock) => lock,
            Err(held) => return Ok(held),
        };
        let store = Store::open(&config.database)?;
        let secret = Secret::load(config.data_dir()).context("loading the signing secret")?;
        let cancel = stop_on_signals();
        let sender = inputs.sender(config, &store, &secret, now, cancel);
        if dry_run {
            return match digest::plan(config, &store, &inputs.collection, at)? {
                Plan::Nothing(reason) => {
                    self.say(&format!("nothing to send: {reason}"));
                    Ok(Outcome::Done)
                }
                Plan::Resume(content) | Plan::New(content) => {
                    self.dry_run(&sender, &content)?;
                    Ok(Outcome::Done)
                }
            };
        }
        let bar = ProgressLine::new(self.quiet);
        let sent = digest::send_due(
            &sender,
            &inputs.collection,
            &|| delivery::from_config(config),
            at,
            None,
            &|n, done, total| bar.update(n, done, total),
        )?;
        bar.finish();
        // A site that was never built stays unbuilt: `digest send` sends mail.
        if sent.reached_anyone() && config.output_dir.exists() {
            site::refresh_archive(config, &inputs.collection, now)
                .context("updating the digest archive pages")?;
        }
        Ok(self.report_sent(&sent))
    }

    fn report_sent(&self, sent: &Sent) -> Outcome {
        match sent {
            Sent::Nothing(reason) => self.say(&format!("nothing to send: {reason}")),
            Sent::Digests(reports) => reports.iter().for_each(|r| self.say(&r.to_string())),
        }
        outcome_of(sent)
    }

    fn publish(&self, config: &Config, now: DateTime<Utc>) -> anyhow::Result<Outcome> {
        let cancel = stop_on_signals();
        let bar = ProgressLine::new(self.quiet);
        let result = publish::publish(
            config,
            now,
            cancel,
            &|| delivery::from_config(config),
            &|n, done, total| bar.update(n, done, total),
        );
        bar.finish();
        match result {
            Ok(report) => {
                self.say(&report.to_string());
                Ok(report.digest.as_ref().map_or(Outcome::Done, outcome_of))
            }
            Err(PublishError::Build(BuildError::Invalid(problems)))
            | Err(PublishError::Inputs(InputsError::Invalid(problems))) => Ok(Outcome::Invalid(
                problems,
                "nothing was written or sent; the previous output is unchanged",
            )),
            Err(PublishError::Locked(e @ LockError::Held { .. })) => {
                Ok(Outcome::Locked(e.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn serve(&self, config: &Config, bind: Option<&str>) -> anyhow::Result<Outcome> {
        let bind = bind.unwrap_or(&config.server.bind).to_string();
        let store = Store::open(&config.database)?;
        let secret = Secret::load(config.data_dir()).context("loading the signing secret")?;
        let clock = Box::new(|| clock::now().unwrap_or(DateTime::<Utc>::UNIX_EPOCH));
        let app = Arc::new(shorts::server::App::new(
            config.clone(),
            store,
            secret,
            clock,
        ));
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(&bind)
                .await
                .with_context(|| format!("listening on {bind}"))?;
            let address = listener.local_addr()?;
            self.say(&format!(
                "listening on http://{address}/ (serving {})",
                display_path(&config.output_dir)
            ));
            shorts::server::serve(app, listener, shutdown_signal()).await?;
            anyhow::Ok(())
        })?;
        Ok(Outcome::Done)
    }

    fn schedule(&self, config: &Config) -> anyhow::Result<Outcome> {
        let cancel = stop_on_signals();
        let clock = || clock::now().unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let daemon = Daemon {
            config,
            cancel,
            clock: &clock,
            transport: &|| delivery::from_config(config),
        };
        daemon.run().context("watching content/ and templates/")?;
        Ok(Outcome::Done)
    }

    fn dry_run(
        &self,
        sender: &Sender<'_>,
        content: &shorts::render::digest::DigestContent<'_>,
    ) -> anyhow::Result<()> {
        digest::dry_run(sender, content, &mut |line| match line {
            DryRunLine::Carries { number, slugs } => out!(
                "digest #{number} would carry {} shorts: {}",
                slugs.len(),
                slugs.join(", ")
            ),
            DryRunLine::AlreadyDone { email } => out!("  already done  {email}"),
            DryRunLine::WouldSend {
                email,
                subject,
                count,
            } => out!("  would send    {email}: \"{subject}\" ({count} shorts)"),
            DryRunLine::WouldSkip { email } => {
                out!("  would skip    {email}: nothing new in their tracks")
            }
        })?;
        out!("dry run: nothing was sent or recorded");
        Ok(())
    }

    fn subscribers(
        &self,
        config: &Config,
        now: DateTime<Utc>,
        command: &SubscribersCommand,
    ) -> anyhow::Result<Outcome> {
        let store = Store::open(&config.database)?;
        match command {
            SubscribersCommand::Add {
                email,
                name,
                tracks,
            } => {
                let new = match subscribers::validate(email, name, tracks, "", config, "cli") {
                    Ok(new) => new,
                    Err(message) => {
                        let problem = Problem::new(Path::new("subscribers add"), None, message);
                        return Ok(Outcome::Invalid(
                            Problems(vec![problem]),
                            "nothing was added",
                        ));
                    }
                };
                let saved = store.save_subscriber(&new, now)?;
                let verb = match saved {
                    Saved::Added => "added",
                    Saved::Updated => "updated",
                    Saved::Unchanged => "unchanged:",
                };
                let tracks = if new.tracks.is_empty() {
                    "every track".to_string()
                } else {
                    new.tracks.join(", ")
                };
                self.say(&format!("{verb} {} ({tracks})", new.email));
            }
            SubscribersCommand::Remove { email } => {
                if store.remove_subscriber(email.trim())? {
                    self.say(&format!("removed {email} and their delivery records"));
                } else {
                    self.say(&format!("{email} was not a subscriber"));
                }
            }
            SubscribersCommand::List => {
                let all = store.subscribers()?;
                for s in &all {
                    let tracks = if s.tracks.is_empty() {
                        "*".to_string()
                    } else {
                        s.tracks.join(",")
                    };
                    out!(
                        "{:<13} {:<40} {:<24} {}",
                        s.status.as_str(),
                        s.email,
                        tracks,
                        s.name
                    );
                }
                self.say(&format!("{} subscribers", all.len()));
            }
            SubscribersCommand::Import { file } => {
                let report = subscribers::import(&store, config, file, now)?;
                self.say(&format!(
                    "imported {}: {} added, {} updated, {} unchanged, {} bad rows",
                    display_path(file),
                    report.added,
                    report.updated,
                    report.unchanged,
                    report.problems.len()
                ));
                if !report.problems.is_empty() {
                    return Ok(Outcome::Invalid(
                        report.problems,
                        "the other rows were imported",
                    ));
                }
            }
            SubscribersCommand::Export => subscribers::export(&store, std::io::stdout().lock())?,
        }
        Ok(Outcome::Done)
    }
}

impl Period {
    /// The instant the digest is chosen for.
    fn resolve(&self, config: &Config, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
        let Some(text) = &self.period else {
            return Ok(now);
        };
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok(t.with_timezone(&Utc));
        }
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            anyhow::anyhow!(
                "--period {text:?}: expected a date like 2026-06-08 or an RFC 3339 date-time"
            )
        })?;
        let end_of_day = date.and_hms_opt(23, 59, 59).unwrap_or_default();
        config
            .site
            .timezone
            .from_local_datetime(&end_of_day)
            .latest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| {
                anyhow::anyhow!("--period {text:?}: no such time in the site's time zone")
            })
    }
}

/// The run lock, or the outcome (exit 73) when another run holds it.
fn run_lock(config: &Config) -> anyhow::Result<Result<RunLock, Outcome>> {
    match RunLock::acquire(config.data_dir()) {
        Ok(lock) => Ok(Ok(lock)),
        Err(e @ LockError::Held { .. }) => Ok(Err(Outcome::Locked(e.to_string()))),
        Err(e) => Err(e.into()),
    }
}

/// The digest inputs, or the problems in them (exit 1).
fn load_inputs(config: &Config) -> anyhow::Result<Result<Inputs<'_>, Problems>> {
    match Inputs::load(config) {
        Ok(inputs) => Ok(Ok(inputs)),
        Err(InputsError::Invalid(problems)) => Ok(Err(problems)),
        Err(e) => Err(e.into()),
    }
}

fn sample_reader() -> Subscriber {
    Subscriber {
        id: 0,
        email: "reader@example.org".to_string(),
        name: "Sample Reader".to_string(),
        tracks: Vec::new(),
        status: SubscriberStatus::Active,
        token_id: "preview".to_string(),
    }
}

fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
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

/// Logs go to stderr; colour only on a terminal. The daemon logs its runs at
/// info level by default, since its log is the only trace it leaves.
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
