//! `shorts digest status [N] [--json]`: what happened to each digest —
//! deliveries by state, and the bounces, complaints and unsubscribes that
//! came back about it.

use serde::Serialize;
use shorts::store::{Database, DigestCounts, DigestRecord, Events, Ledger};

use super::terminal::out;
use super::{CliError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The digest's number (default: every digest).
    number: Option<i64>,
    /// Print JSON for scripts: one object for N, else an array.
    #[arg(long)]
    json: bool,
}

/// One digest's line of the report.
#[derive(Debug, Serialize)]
struct Status {
    number: i64,
    /// Its cadence ("" for the default) and its number among that cadence's digests.
    cadence: String,
    issue: i64,
    /// The slot it was sent for (RFC 3339).
    slot: String,
    completed: bool,
    #[serde(flatten)]
    counts: DigestCounts,
}

pub fn run(ctx: &Ctx<'_>, args: &Args) -> Result<(), CliError> {
    // Read only: a status query must not create or migrate the database.
    let Some(store) = Database::open_read_only(&ctx.config.database)? else {
        return finish(args, Vec::new());
    };
    let digests: Vec<DigestRecord> = store
        .digests()?
        .into_iter()
        .filter(|d| args.number.is_none_or(|n| n == d.number))
        .collect();
    if let (Some(n), true) = (args.number, digests.is_empty()) {
        return Err(CliError::invalid_message(format!(
            "there is no digest {n}; `shorts digest status` lists them all"
        )));
    }
    let statuses = digests
        .into_iter()
        .map(|d| status(&store, d))
        .collect::<Result<Vec<_>, CliError>>()?;
    if statuses.is_empty() && !args.json {
        ctx.say("no digest has been sent yet");
    }
    finish(args, statuses)
}

fn status(store: &Database, digest: DigestRecord) -> Result<Status, CliError> {
    Ok(Status {
        number: digest.number,
        cadence: digest.cadence.clone(),
        issue: digest.issue,
        slot: digest
            .slot
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        completed: digest.completed,
        counts: store.digest_counts(digest.number)?,
    })
}

fn finish(args: &Args, statuses: Vec<Status>) -> Result<(), CliError> {
    if args.json {
        let json = match (args.number, statuses.first()) {
            (Some(_), Some(one)) => serde_json::to_string_pretty(one),
            _ => serde_json::to_string_pretty(&statuses),
        };
        out!("{}", json.map_err(CliError::failure)?);
        return Ok(());
    }
    if !statuses.is_empty() {
        out!(
            "digest  slot                  sent  deferred  failed  hard bounces  soft bounces  complaints  unsubscribes"
        );
    }
    for s in &statuses {
        let c = &s.counts;
        out!(
            "{:<7} {:<21} {:>4}  {:>8}  {:>6}  {:>12}  {:>12}  {:>10}  {:>12}{}",
            s.number,
            s.slot,
            c.sent,
            c.deferred + c.sending,
            c.failed,
            c.hard_bounces,
            c.soft_bounces,
            c.complaints,
            c.unsubscribes,
            match (s.cadence.as_str(), s.completed) {
                ("", true) => String::new(),
                ("", false) => "  (unfinished)".to_string(),
                (cadence, true) => format!("  ({cadence} #{})", s.issue),
                (cadence, false) => format!("  ({cadence} #{}, unfinished)", s.issue),
            }
        );
    }
    Ok(())
}
