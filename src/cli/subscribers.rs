//! `shorts subscribers add|pause|resume|remove|list|import|export|show|unsuppress|copy`.

use std::path::{Path, PathBuf};

use shorts::diagnostics::{Problem, display_path};
use shorts::lock::RunLock;
use shorts::model::Subscriber;
use shorts::store::{Database, Event, Location, Saved, Store};
use shorts::subscribers;

use super::error::OnInvalid;
use super::terminal::out;
use super::{CliError, Ctx};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add a subscriber (active at once), or update the one with this address.
    Add {
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Comma-separated track slugs (default: every track, unless --tags is given).
        #[arg(long, default_value = "")]
        tracks: String,
        /// Comma-separated tag slugs: their shorts too, whatever the track
        /// (with no --tracks: only shorts with one of these tags).
        #[arg(long, default_value = "")]
        tags: String,
        /// How often they get the digest: a cadence the config offers
        /// (default: the default cadence for a new subscriber; unchanged for one already there).
        #[arg(long, value_name = "NAME")]
        cadence: Option<String>,
    },
    /// Pause a subscriber's digests until `resume`.
    Pause { email: String },
    /// Resume a paused subscriber: their next digest brings what is published from now on.
    Resume {
        email: String,
        /// Bring what was published while they were paused, too.
        #[arg(long)]
        catch_up: bool,
    },
    /// Delete a subscriber and their delivery records.
    Remove { email: String },
    /// Print every subscriber.
    List,
    /// Import a CSV file with columns email,name,tracks,tags,status,cadence; bad rows are reported and skipped.
    Import { file: PathBuf },
    /// Write every subscriber as CSV (email,name,tracks,tags,status,cadence,suppressed) to stdout.
    Export,
    /// Print one subscriber: standing, consent, every delivery and everything that came back.
    Show { email: String },
    /// Take an address off the suppression list (after a complaint or hard bounce),
    /// so that it can be added or sign up again; changes no subscriber.
    Unsuppress { email: String },
    /// Copy everything the database holds (subscribers with their status, consent and
    /// cadence; digests and every delivery; events; the suppression list; the email
    /// queue) into another, empty one: to move the list from SQLite to PostgreSQL or back.
    #[command(
        after_help = "Stop `serve`, `schedule` and cron's `publish` first: what they write to the old \
database after the copy is not in the new one. Then point [build] database (or \
SHORTS_DATABASE_URL) at the new one."
    )]
    Copy {
        /// The target: an SQLite file (created) or postgres://user:password@host:port/database.
        #[arg(long, value_name = "DATABASE")]
        to: String,
    },
}

pub fn run(ctx: &Ctx<'_>, command: &Command) -> Result<(), CliError> {
    if let Command::Copy { to } = command {
        return copy(ctx, to);
    }
    let store = Database::open(&ctx.config.database)?;
    match command {
        Command::Add {
            email,
            name,
            tracks,
            tags,
            cadence,
        } => {
            let fields = subscribers::Fields {
                email,
                name,
                tracks,
                tags,
                cadence: cadence.as_deref(),
                ..Default::default()
            };
            add(ctx, &store, &fields)
        }
        Command::Pause { email } => pause(ctx, &store, email, None),
        Command::Resume { email, catch_up } => pause(ctx, &store, email, Some(*catch_up)),
        Command::Remove { email } => remove(ctx, &store, email),
        Command::List => list(ctx, &store),
        Command::Import { file } => import(ctx, &store, file),
        Command::Export => Ok(subscribers::export(
            &store,
            ctx.config,
            std::io::stdout().lock(),
        )?),
        Command::Show { email } => show(&store, email),
        Command::Unsuppress { email } => unsuppress(ctx, &store, email),
        // Run above, before the config's own database is opened.
        Command::Copy { .. } => Ok(()),
    }
}

/// `copy --to`: every row into an empty database, counted on both sides.
fn copy(ctx: &Ctx<'_>, to: &str) -> Result<(), CliError> {
    // No send or build of this site writes the source meanwhile.
    let _lock = RunLock::acquire(ctx.config.data_dir())?;
    let target = Location::parse(to, Path::new("."));
    target.check().map_err(CliError::invalid_message)?;
    if target == ctx.config.database {
        return Err(CliError::invalid_message(format!(
            "--to {target} is the database the config already uses"
        )));
    }
    let source = Database::open(&ctx.config.database)?;
    let copied = shorts::store::copy_all(&source, &Database::open(&target)?)?;
    let rows: Vec<String> = copied
        .iter()
        .map(|(table, n)| format!("{n} {}", table.replace('_', " ")))
        .collect();
    ctx.say(&format!(
        "copied {} to {target}: {}",
        ctx.config.database,
        rows.join(", ")
    ));
    let key_file = ctx.config.data_dir().join(shorts::tokens::SECRET_FILE);
    if matches!(target, Location::Postgres(_))
        && std::env::var_os(shorts::tokens::SECRET_ENV).is_none()
        && key_file.exists()
    {
        // Without the same key, every link in the emails already sent
        // (unsubscribe, preferences) would stop working after the move.
        ctx.say(&format!(
            "the links in emails already sent are signed with {key}: to keep them working, give every host SHORTS_SECRET=base64:$(base64 -w0 {key})",
            key = display_path(&key_file)
        ));
    }
    Ok(())
}

/// `pause` (`resume` = `None`) or `resume` (with or without catching up).
fn pause(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    email: &str,
    resume: Option<bool>,
) -> Result<(), CliError> {
    let email = email.trim();
    let Some(subscriber) = store.subscriber_by_email(email)? else {
        return Err(CliError::invalid_message(format!(
            "{email} is not a subscriber; see `shorts subscribers list`"
        )));
    };
    match resume {
        None => {
            store.pause(subscriber.id, ctx.now)?;
            ctx.say(&format!(
                "paused {email}: no digest goes to them until `shorts subscribers resume`"
            ));
        }
        Some(catch_up) => {
            store.resume(subscriber.id, catch_up, ctx.now)?;
            let from = if catch_up {
                "with what was published while they were paused"
            } else {
                "with what is published from now on"
            };
            ctx.say(&format!("resumed {email}: their next digest starts {from}"));
        }
    }
    Ok(())
}

fn add(ctx: &Ctx<'_>, store: &dyn Store, fields: &subscribers::Fields<'_>) -> Result<(), CliError> {
    let new = subscribers::validate(fields, ctx.config, "cli")
        .map_err(|message| Problem::new(Path::new("subscribers add"), None, message))
        .on_invalid("nothing was added")?;
    let verb = match store.save_subscriber(&new, ctx.now)? {
        Saved::Added => "added",
        Saved::Updated => "updated",
        Saved::Unchanged => "unchanged:",
        Saved::Suppressed(why) => {
            return Err(CliError::invalid_message(format!(
                "{} is suppressed ({}): it is never mailed again; nothing was added",
                new.email,
                subscribers::describe_suppression(&why)
            )));
        }
    };
    ctx.say(&format!(
        "{verb} {} ({})",
        new.email,
        describe_follows(&new.tracks, &new.tags)
    ));
    Ok(())
}

fn remove(ctx: &Ctx<'_>, store: &dyn Store, email: &str) -> Result<(), CliError> {
    if store.remove_subscriber(email.trim())? {
        ctx.say(&format!("removed {email} and their delivery records"));
    } else {
        ctx.say(&format!("{email} was not a subscriber"));
    }
    Ok(())
}

fn list(ctx: &Ctx<'_>, store: &dyn Store) -> Result<(), CliError> {
    let all = store.subscribers()?;
    for subscriber in &all {
        out!("{}", list_line(subscriber));
    }
    ctx.say(&format!("{} subscribers", all.len()));
    Ok(())
}

/// "every track", or "llm, retrieval", "tags gqa, rust" or both joined by "; ".
fn describe_follows(tracks: &[String], tags: &[String]) -> String {
    if tracks.is_empty() && tags.is_empty() {
        return "every track".to_string();
    }
    let mut parts = Vec::new();
    if !tracks.is_empty() {
        parts.push(tracks.join(", "));
    }
    if !tags.is_empty() {
        parts.push(format!("tags {}", tags.join(", ")));
    }
    parts.join("; ")
}

fn list_line(s: &Subscriber) -> String {
    // "*" is every track; tags follow the tracks, each with its "#".
    let mut follows = if s.follows_everything() {
        "*".to_string()
    } else {
        s.tracks.join(",")
    };
    if !s.tags.is_empty() {
        let tags: Vec<String> = s.tags.iter().map(|t| format!("#{t}")).collect();
        if !follows.is_empty() {
            follows.push(' ');
        }
        follows.push_str(&tags.join(","));
    }
    let status = match (s.status, s.paused) {
        (shorts::model::SubscriberStatus::Active, true) => "paused",
        (status, _) => status.as_str(),
    };
    let cadence = match s.cadence.as_str() {
        "" => String::new(),
        key => format!(" [{key}]"),
    };
    format!(
        "{:<13} {:<40} {:<24} {}{cadence}",
        status, s.email, follows, s.name
    )
}

fn import(ctx: &Ctx<'_>, store: &dyn Store, file: &Path) -> Result<(), CliError> {
    let report =
        subscribers::import(store, ctx.config, file, ctx.now).on_invalid("nothing was imported")?;
    for why in &report.suppressed {
        ctx.say(&format!(
            "skipped {}: suppressed ({})",
            why.email,
            subscribers::describe_suppression(why)
        ));
    }
    let suppressed = match report.suppressed.len() {
        0 => String::new(),
        n => format!("{n} suppressed, "),
    };
    ctx.say(&format!(
        "imported {}: {} added, {} updated, {} unchanged, {suppressed}{} bad rows",
        display_path(file),
        report.added,
        report.updated,
        report.unchanged,
        report.problems.len()
    ));
    if !report.problems.is_empty() {
        return Err(CliError::invalid(report.problems).consequence("the other rows were imported"));
    }
    Ok(())
}

fn unsuppress(ctx: &Ctx<'_>, store: &dyn Store, email: &str) -> Result<(), CliError> {
    let email = email.trim();
    let Some(why) = store.suppression(email)? else {
        return Err(CliError::invalid_message(format!(
            "{email} is not suppressed"
        )));
    };
    store.unsuppress(email)?;
    ctx.say(&format!(
        "{email} is no longer suppressed (was: {}); add it or let it sign up again",
        subscribers::describe_suppression(&why)
    ));
    Ok(())
}

/// `subscribers show EMAIL`: who, where they stand, and their history.
fn show(store: &dyn Store, email: &str) -> Result<(), CliError> {
    let email = email.trim();
    let subscriber = store.subscriber_by_email(email)?;
    let suppression = store.suppression(email)?;
    let events = store.events_for(email)?;
    if subscriber.is_none() && suppression.is_none() && events.is_empty() {
        return Err(CliError::invalid_message(format!(
            "{email} is not a subscriber and has no history"
        )));
    }
    match &subscriber {
        Some(s) => show_subscriber(store, s)?,
        None => out!("{email}: not a subscriber (removed)"),
    }
    if let Some(why) = &suppression {
        out!("suppressed: {}", subscribers::describe_suppression(why));
    }
    out!(
        "came back:{}",
        if events.is_empty() { " nothing" } else { "" }
    );
    for event in &events {
        out!("  {}", event_line(event));
    }
    Ok(())
}

fn show_subscriber(store: &dyn Store, s: &Subscriber) -> Result<(), CliError> {
    out!("{} {}", s.email, s.name);
    let tracks = if s.follows_everything() {
        "every track".to_string()
    } else if s.tracks.is_empty() {
        "none".to_string()
    } else {
        s.tracks.join(", ")
    };
    let tags = if s.tags.is_empty() {
        String::new()
    } else {
        format!("; tags: {}", s.tags.join(", "))
    };
    out!("status: {}; tracks: {tracks}{tags}", s.status.as_str());
    if !s.cadence.is_empty() || s.paused {
        let cadence = if s.cadence.is_empty() {
            "the default"
        } else {
            &s.cadence
        };
        let paused = if s.paused { " (paused)" } else { "" };
        out!("cadence: {cadence}{paused}");
    }
    if let Some(consent) = store.consent(s.id)? {
        let at = consent
            .at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| "unknown time".into());
        out!(
            "consent: {} at {at} (text {:?})",
            consent.source,
            consent.text
        );
    }
    let deliveries = store.subscriber_deliveries(s.id)?;
    out!(
        "deliveries:{}",
        if deliveries.is_empty() { " none" } else { "" }
    );
    for (digest, d) in &deliveries {
        let error = d
            .last_error
            .as_deref()
            .map(|e| format!(" — {e}"))
            .unwrap_or_default();
        out!(
            "  digest {digest}: {:?}, {} attempts{error}",
            d.state,
            d.attempts
        );
    }
    Ok(())
}

fn event_line(event: &Event) -> String {
    let digest = event
        .digest
        .map(|d| format!(" digest {d}"))
        .unwrap_or_default();
    let status = event
        .status
        .as_deref()
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    format!(
        "{} {}{digest}{status}: {} ({}, {})",
        event
            .received_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        event.kind.replace('_', " "),
        event.diagnostic,
        event.source,
        event.message_id
    )
}
