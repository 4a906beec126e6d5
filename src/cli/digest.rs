//! `shorts digest preview` and `shorts digest send` (`status` is in `digest_status`).

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

use shorts::config::{Cadence, Config, DigestConfig};
use shorts::delivery;
use shorts::diagnostics::display_path;
use shorts::digest::{self, DryRunLine, Inputs, Plan, Planned, Sender, Sent};
use shorts::lock::RunLock;
use shorts::model::Subscriber;
use shorts::render::digest::DigestContent;
use shorts::site;
use shorts::site::plural;
use shorts::store::{Database, Ledger as _, SubscriberStore};
use shorts::tokens::Secret;

use super::error::OnInvalid;
use super::terminal::{ProgressLine, out, stop_on_signals};
use super::{CliError, Ctx};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write the due digest as .eml, .html and .txt files; sends nothing, records nothing.
    Preview {
        #[command(flatten)]
        period: Period,
        /// Render the copy of this subscriber (default: a sample reader of every track).
        #[arg(long, value_name = "EMAIL")]
        subscriber: Option<String>,
        /// The digest of this cadence (default: the subscriber's, or the default cadence).
        #[arg(long, value_name = "NAME")]
        cadence: Option<String>,
    },
    /// Send the due digest to every active subscriber; resumes an unfinished one.
    Send {
        #[command(flatten)]
        period: Period,
        /// Say what would go to whom; send and record nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// What happened to each digest: sent, deferred, failed, bounces, complaints, unsubscribes.
    Status(super::digest_status::Args),
}

#[derive(Debug, clap::Args)]
pub struct Period {
    /// The digest of the latest slot at or before this date (end of day, site time zone)
    /// or RFC 3339 date-time, instead of now.
    #[arg(long, value_name = "WHEN", value_parser = when)]
    period: Option<When>,
}

/// `--period`, as typed: a day or an instant.
#[derive(Debug, Clone, Copy)]
enum When {
    Day(NaiveDate),
    Instant(DateTime<Utc>),
}

/// Parses `--period` while the command line is read, so a bad one exits 2.
fn when(text: &str) -> Result<When, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(When::Instant(t.with_timezone(&Utc)));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(When::Day)
        .map_err(|_| format!("{text:?}: expected a date like 2026-06-08 or an RFC 3339 date-time"))
}

impl Period {
    /// The instant the digest is chosen for.
    fn resolve(&self, config: &Config, now: DateTime<Utc>) -> Result<DateTime<Utc>, CliError> {
        let day = match self.period {
            None => return Ok(now),
            Some(When::Instant(t)) => return Ok(t),
            Some(When::Day(day)) => day,
        };
        let end_of_day = day.and_hms_opt(23, 59, 59).unwrap_or_default();
        config
            .site
            .timezone
            .from_local_datetime(&end_of_day)
            .latest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| {
                CliError::usage(format!(
                    "--period {day}: no such time in the site's time zone"
                ))
            })
    }
}

pub fn run(ctx: &Ctx<'_>, command: &Command) -> Result<(), CliError> {
    match command {
        Command::Preview {
            period,
            subscriber,
            cadence,
        } => {
            let at = period.resolve(ctx.config, ctx.now)?;
            let asked = Asked {
                email: subscriber.as_deref(),
                cadence: cadence.as_deref(),
                next: period.period.is_none(),
            };
            preview(ctx, at, asked)
        }
        Command::Send { period, dry_run } => {
            let at = period.resolve(ctx.config, ctx.now)?;
            send(ctx, at, *dry_run)
        }
        Command::Status(args) => super::digest_status::run(ctx, args),
    }
}

/// What `digest preview` was asked for.
struct Asked<'a> {
    email: Option<&'a str>,
    cadence: Option<&'a str>,
    /// No `--period` was given, so when nothing is due now the preview is
    /// of the next digest, as the shorts stand.
    next: bool,
}

fn preview(ctx: &Ctx<'_>, at: DateTime<Utc>, asked: Asked<'_>) -> Result<(), CliError> {
    let config = ctx.config;
    let inputs = Inputs::load(config).on_invalid("nothing was previewed")?;
    // Read only: a preview must leave no trace in the ledger.
    let store = match Database::open_read_only(&config.database)? {
        Some(store) => store,
        None => Database::in_memory()?,
    };
    let subscriber = match asked.email {
        Some(email) => Some(store.subscriber_by_email(email)?.ok_or_else(|| {
            CliError::usage(format!(
                "--subscriber {email}: no such subscriber; see `shorts subscribers list`"
            ))
        })?),
        None => None,
    };
    let cadence = preview_cadence(inputs.digest_config, &asked, subscriber.as_ref())?;
    let collection = &inputs.collection;
    let mut plan = digest::plan_preview(config, &store, collection, cadence, at)?;
    if let (Plan::Nothing(_), true) = (&plan, asked.next)
        && let Some((slot, upcoming)) = digest::plan_next(config, &store, collection, cadence, at)?
        && !matches!(upcoming, Plan::Nothing(_))
    {
        let slot = slot.with_timezone(&config.site.timezone);
        ctx.say(&format!(
            "nothing is due now; previewing the next {}, due {}, as the shorts stand",
            digest::digest_name(cadence),
            slot.format("%Y-%m-%d %H:%M %Z")
        ));
        plan = upcoming;
    }
    let planned = match plan {
        Plan::Resume(planned) | Plan::New(planned) => planned,
        Plan::Nothing(reason) => {
            let hint = newest_digest_hint(config, collection, at)
                .unwrap_or_else(|| "`--period DATE` previews the digest of another week".into());
            ctx.say(&format!("nothing to preview: {reason}; {hint}"));
            return Ok(());
        }
    };
    // A subscriber's own copy starts at their watermark; the sample reader's is the issue.
    let watermark = match &subscriber {
        Some(subscriber) => store.watermark(subscriber.id)?,
        None => None,
    };
    let subscriber = subscriber.unwrap_or_else(Subscriber::sample);
    let Some(since) = planned.window_for(watermark) else {
        ctx.say(&format!(
            "nothing to preview: {} has had everything digest #{} carries",
            subscriber.email, planned.content.number
        ));
        return Ok(());
    };
    let secret = Secret::load_without_creating(config.data_dir());
    let sender = inputs.sender(config, &store, &secret, ctx.now, stop_on_signals());
    write_preview(ctx, &sender, &planned.copy(since), subscriber)
}

/// The cadence `--cadence` names, else the subscriber's, else the default.
fn preview_cadence<'c>(
    digest: &'c DigestConfig,
    asked: &Asked<'_>,
    subscriber: Option<&Subscriber>,
) -> Result<&'c Cadence, CliError> {
    match (asked.cadence, subscriber) {
        (Some(name), _) => digest.cadence_named(name).ok_or_else(|| {
            CliError::usage(format!(
                "--cadence {name}: no such cadence; the config offers {}",
                cadence_names(digest)
            ))
        }),
        (None, Some(subscriber)) => Ok(digest.cadence_of(&subscriber.cadence)),
        (None, None) => Ok(digest.default_cadence()),
    }
}

/// "weekly, daily and instant".
pub fn cadence_names(digest: &DigestConfig) -> String {
    let names: Vec<&str> = digest.cadences.iter().map(|c| c.name.as_str()).collect();
    shorts::render::join_words(&names)
}

/// Where the newest short went out, as the `--period` that previews it
/// ("the newest short, … of 2026-06-07, was in the digest of 2026-06-08: …").
fn newest_digest_hint(
    config: &Config,
    collection: &shorts::model::Collection,
    at: DateTime<Utc>,
) -> Option<String> {
    let digest = config.digest.as_ref()?;
    let newest = collection.published(at).next()?;
    let schedule = shorts::schedule::Schedule::new(digest.schedule.clone(), config.site.timezone);
    let slot = schedule.next_slot(newest.date.with_timezone(&Utc))?;
    let day = |t: DateTime<Utc>| t.with_timezone(&config.site.timezone).format("%Y-%m-%d");
    Some(format!(
        "the newest short ({}, {}) is in the digest of {}: `shorts digest preview --period {}`",
        newest.slug,
        day(newest.date.with_timezone(&Utc)),
        day(slot),
        day(slot)
    ))
}

/// Writes one subscriber's copy as `.eml`, `.html` and `.txt` files.
fn write_preview(
    ctx: &Ctx<'_>,
    sender: &Sender<'_>,
    content: &DigestContent<'_>,
    subscriber: Subscriber,
) -> Result<(), CliError> {
    let prepared = sender.prepare(content, subscriber)?;
    let email = &prepared.subscriber.email;
    let Some((rendered, composed)) = prepared.message else {
        ctx.say(&format!(
            "nothing to preview: digest #{} has nothing in the tracks of {email}",
            content.number
        ));
        return Ok(());
    };
    let dir = &ctx.config.preview_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stem = format!("digest-{}-{}", content.number, file_safe(email));
    for (extension, bytes) in [
        ("eml", composed.bytes.as_slice()),
        ("html", rendered.html.as_bytes()),
        ("txt", rendered.text.as_bytes()),
    ] {
        let path = dir.join(format!("{stem}.{extension}"));
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    ctx.say(&format!(
        "digest #{} for {email} ({}): \"{}\"\nwrote {}/{stem}.eml, .html and .txt",
        content.number,
        plural(rendered.count, "short", "shorts"),
        rendered.subject,
        display_path(dir)
    ));
    Ok(())
}

fn send(ctx: &Ctx<'_>, at: DateTime<Utc>, dry_run: bool) -> Result<(), CliError> {
    let config = ctx.config;
    let inputs = Inputs::load(config).on_invalid("nothing was sent")?;
    let _lock = RunLock::acquire(config.data_dir())?;
    let secret = Secret::load(config.data_dir(), &config.database)?;
    let store = Database::open(&config.database)?;
    let sender = inputs.sender(config, &store, &secret, ctx.now, stop_on_signals());
    if dry_run {
        return plan_dry_run(ctx, &sender, &inputs, at);
    }
    let bar = ProgressLine::new(ctx.quiet);
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
        site::refresh_archive(config, &inputs.collection, ctx.now)
            .context("updating the digest archive pages")?;
    }
    report_sent(ctx, &sent)
}

fn report_sent(ctx: &Ctx<'_>, sent: &Sent) -> Result<(), CliError> {
    match sent {
        Sent::Nothing(reason) => ctx.say(&format!("nothing to send: {reason}")),
        Sent::Digests(reports) => reports.iter().for_each(|r| ctx.say(&r.to_string())),
    }
    match unfinished_digest(sent) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The error for a digest left unfinished: exit 75, or 3 when what stopped it
/// is the SMTP settings, which running again will not fix.
/// "1 delivery waits", "3 deliveries wait".
fn waiting(n: usize) -> String {
    match n {
        1 => "1 delivery waits".to_string(),
        n => format!("{n} deliveries wait"),
    }
}

pub fn unfinished_digest(sent: &Sent) -> Option<CliError> {
    let Sent::Digests(reports) = sent else {
        return None;
    };
    let report = reports.iter().find(|r| r.is_temporary_failure())?;
    let (number, deferred) = (report.number, report.deferred);
    Some(match &report.fatal {
        Some(fatal) if report.misconfigured => CliError::failure(anyhow::anyhow!(
            "digest #{number} stopped: {fatal}; {} until the settings are fixed and `shorts digest send` runs again",
            waiting(deferred)
        )),
        Some(fatal) => CliError::temporary(format!(
            "digest #{number} stopped: {fatal}; {} for the next run",
            waiting(deferred)
        )),
        None => CliError::temporary(format!(
            "digest #{number}: {} failed temporarily; run `shorts digest send` again to retry {}",
            plural(deferred, "delivery", "deliveries"),
            if deferred == 1 { "it" } else { "them" }
        )),
    })
}

fn plan_dry_run(
    ctx: &Ctx<'_>,
    sender: &Sender<'_>,
    inputs: &Inputs<'_>,
    at: DateTime<Utc>,
) -> Result<(), CliError> {
    for cadence in &inputs.digest_config.cadences {
        match digest::plan(ctx.config, sender.store, &inputs.collection, cadence, at)? {
            Plan::Nothing(reason) => match inputs.digest_config.cadences.len() {
                1 => ctx.say(&format!("nothing to send: {reason}")),
                _ => ctx.say(&format!("nothing to send: {}: {reason}", cadence.name)),
            },
            Plan::Resume(planned) | Plan::New(planned) => dry_run(sender, &planned)?,
        }
    }
    out!("dry run: nothing was sent or recorded");
    Ok(())
}

fn dry_run(sender: &Sender<'_>, planned: &Planned<'_>) -> Result<(), CliError> {
    digest::dry_run(sender, planned, &mut |line| match line {
        DryRunLine::Carries {
            name,
            number,
            slugs,
        } => out!(
            "{name} #{number} would carry {}: {}",
            plural(slugs.len(), "short", "shorts"),
            slugs.join(", ")
        ),
        DryRunLine::AlreadyDone { email } => out!("  already done  {email}"),
        DryRunLine::WouldSend {
            email,
            subject,
            count,
        } => out!(
            "  would send    {email}: \"{subject}\" ({})",
            plural(count, "short", "shorts")
        ),
        DryRunLine::WouldSkip { email } => {
            out!("  would skip    {email}: nothing new in their tracks")
        }
    })?;
    Ok(())
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
