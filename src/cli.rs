//! Command-line arguments to library calls: parses flags with clap, runs the
//! command, prints its summary or its errors once, and maps the outcome to an
//! exit code. No pipeline logic lives here.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use clap::{Args, Parser, Subcommand};

use shorts::clock;
use shorts::config::{Config, DigestConfig, Transport as TransportConfig};
use shorts::delivery::compose::Signer;
use shorts::delivery::{Outbox, Smtp, Transport};
use shorts::diagnostics::{Problem, Problems, display_path};
use shorts::digest::{self, Plan, Sender};
use shorts::model::{Collection, Subscriber, SubscriberStatus};
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
    /// A temporary failure (SMTP down or deferring): run again later; nothing is lost.
    pub const TEMPORARY: u8 = 75;
}

const AFTER_HELP: &str = "\
Exit codes: 0 success · 1 problems in config, content, templates or a CSV file · \
2 bad command line · 3 the work failed (e.g. the output folder is not writable) · \
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

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate config.toml, every short and every template; print every problem as `path:line: message`.
    Check,
    /// Write the feeds into the output folder (`public/`); all or nothing.
    Build,
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
}

impl Cli {
    pub fn run(self) -> ExitCode {
        init_logging(self.quiet, self.verbose);
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
        }
    }

    fn say(&self, line: &str) {
        if !self.quiet {
            println!("{line}");
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
        let inputs = match DigestInputs::load(config)? {
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
        let secret = Secret::load_without_creating(data_dir(config));
        let sender = inputs.sender(config, &store, &secret, now);
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
        let inputs = match DigestInputs::load(config)? {
            Ok(inputs) => inputs,
            Err(problems) => return Ok(Outcome::Invalid(problems, "nothing was sent")),
        };
        let store = Store::open(&config.database)?;
        let secret = Secret::load(data_dir(config)).context("loading the signing secret")?;
        let sender = inputs.sender(config, &store, &secret, now);
        // An unfinished digest is finished first; then the due one, if any.
        for round in 0..2 {
            let (content, resumed) = match digest::plan(config, &store, &inputs.collection, at)? {
                Plan::Nothing(reason) => {
                    if round == 0 {
                        self.say(&format!("nothing to send: {reason}"));
                    }
                    return Ok(Outcome::Done);
                }
                Plan::Resume(content) => (content, true),
                Plan::New(content) => (content, false),
            };
            if dry_run {
                self.dry_run(&sender, &content)?;
                return Ok(Outcome::Done);
            }
            if !resumed {
                digest::record_new(&store, &content, now)?;
            }
            let transport = make_transport(config)?;
            let total = store.active_subscriber_count()?;
            let bar = self.progress_bar(total as u64, content.number);
            let report = digest::send(&sender, &content, transport.as_ref(), &|n| {
                bar.set_position(n as u64)
            })?;
            bar.finish_and_clear();
            self.say(&format!(
                "digest #{}{}: {} sent, {} skipped (nothing new in their tracks), {} failed{}{}",
                report.number,
                if resumed { " (resumed)" } else { "" },
                report.sent,
                report.skipped,
                report.failed,
                if report.bounced > 0 {
                    format!(" ({} now bounced)", report.bounced)
                } else {
                    String::new()
                },
                if report.already > 0 {
                    format!(", {} sent earlier", report.already)
                } else {
                    String::new()
                },
            ));
            if let Some(fatal) = report.fatal {
                return Ok(Outcome::Temporary(format!(
                    "digest #{} stopped: {fatal}; {} deliveries wait for the next run",
                    report.number, report.deferred
                )));
            }
            if report.deferred > 0 {
                return Ok(Outcome::Temporary(format!(
                    "digest #{}: {} deliveries failed temporarily; run `shorts digest send` again to retry them",
                    report.number, report.deferred
                )));
            }
            if !resumed {
                break;
            }
        }
        Ok(Outcome::Done)
    }

    fn dry_run(
        &self,
        sender: &Sender<'_>,
        content: &shorts::render::digest::DigestContent<'_>,
    ) -> anyhow::Result<()> {
        println!(
            "digest #{} would carry {} shorts: {}",
            content.number,
            content.shorts.len(),
            content
                .shorts
                .iter()
                .map(|s| s.slug.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut after = 0;
        loop {
            let ids = sender.store.active_subscriber_ids(after, 500)?;
            let Some(&last) = ids.last() else { break };
            after = last;
            for id in ids {
                let Some(subscriber) = sender.store.subscriber_by_id(id)? else {
                    continue;
                };
                if sender
                    .store
                    .delivery_state(content.number, id)?
                    .is_some_and(|s| s.is_final())
                {
                    println!("  already done  {}", subscriber.email);
                    continue;
                }
                match sender.prepare(content, subscriber)? {
                    digest::Prepared {
                        subscriber,
                        message: Some((rendered, _)),
                    } => println!(
                        "  would send    {}: \"{}\" ({} shorts)",
                        subscriber.email, rendered.subject, rendered.count
                    ),
                    digest::Prepared {
                        subscriber,
                        message: None,
                    } => {
                        println!(
                            "  would skip    {}: nothing new in their tracks",
                            subscriber.email
                        )
                    }
                }
            }
        }
        println!("dry run: nothing was sent or recorded");
        Ok(())
    }

    fn progress_bar(&self, total: u64, number: i64) -> indicatif::ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("digest #{number}"));
        bar
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
                    println!(
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

/// What every digest command loads from the site.
struct DigestInputs<'c> {
    digest_config: &'c DigestConfig,
    collection: Collection,
    templates: DigestTemplates,
    signer: Option<Signer>,
}

impl<'c> DigestInputs<'c> {
    /// The inputs, or every problem in the content and templates.
    fn load(config: &'c Config) -> anyhow::Result<Result<DigestInputs<'c>, Problems>> {
        let digest_config = config
            .digest
            .as_ref()
            .ok_or(digest::DigestError::NotConfigured)?;
        let signer = config
            .delivery
            .dkim
            .as_ref()
            .map(Signer::load)
            .transpose()?;
        let mut problems = Problems::default();
        let collection = shorts::content::load(config)
            .map_err(|p| problems.extend(p))
            .ok();
        let templates = DigestTemplates::load(config)
            .map_err(|p| problems.extend(p))
            .ok();
        Ok(match (collection, templates) {
            (Some(collection), Some(templates)) => Ok(DigestInputs {
                digest_config,
                collection,
                templates,
                signer,
            }),
            _ => Err(problems),
        })
    }

    fn sender<'a>(
        &'a self,
        config: &'a Config,
        store: &'a Store,
        secret: &'a Secret,
        now: DateTime<Utc>,
    ) -> Sender<'a> {
        Sender {
            config,
            digest_config: self.digest_config,
            templates: &self.templates,
            store,
            secret,
            signer: self.signer.as_ref(),
            now,
        }
    }
}

fn data_dir(config: &Config) -> &Path {
    config.database.parent().unwrap_or(Path::new("."))
}

fn make_transport(config: &Config) -> anyhow::Result<Box<dyn Transport>> {
    Ok(match &config.delivery.transport {
        TransportConfig::Outbox => Box::new(Outbox {
            dir: config.delivery.outbox_dir.clone(),
        }),
        TransportConfig::Smtp(smtp) => Box::new(Smtp::new(smtp)?),
    })
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
