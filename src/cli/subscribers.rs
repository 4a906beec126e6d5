//! `shorts subscribers add|remove|list|import|export`.

use std::path::{Path, PathBuf};

use shorts::diagnostics::{Problem, display_path};
use shorts::model::Subscriber;
use shorts::store::{Saved, Sqlite, Store};
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

pub fn run(ctx: &Ctx<'_>, command: &Command) -> Result<(), CliError> {
    let store = Sqlite::open(&ctx.config.database)?;
    match command {
        Command::Add {
            email,
            name,
            tracks,
        } => add(ctx, &store, email, name, tracks),
        Command::Remove { email } => remove(ctx, &store, email),
        Command::List => list(ctx, &store),
        Command::Import { file } => import(ctx, &store, file),
        Command::Export => Ok(subscribers::export(&store, std::io::stdout().lock())?),
    }
}

fn add(
    ctx: &Ctx<'_>,
    store: &dyn Store,
    email: &str,
    name: &str,
    tracks: &str,
) -> Result<(), CliError> {
    let new = subscribers::validate(email, name, tracks, "", ctx.config, "cli")
        .map_err(|message| Problem::new(Path::new("subscribers add"), None, message))
        .on_invalid("nothing was added")?;
    let verb = match store.save_subscriber(&new, ctx.now)? {
        Saved::Added => "added",
        Saved::Updated => "updated",
        Saved::Unchanged => "unchanged:",
    };
    let tracks = if new.tracks.is_empty() {
        "every track".to_string()
    } else {
        new.tracks.join(", ")
    };
    ctx.say(&format!("{verb} {} ({tracks})", new.email));
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

fn list_line(s: &Subscriber) -> String {
    let tracks = if s.tracks.is_empty() {
        "*".to_string()
    } else {
        s.tracks.join(",")
    };
    format!(
        "{:<13} {:<40} {:<24} {}",
        s.status.as_str(),
        s.email,
        tracks,
        s.name
    )
}

fn import(ctx: &Ctx<'_>, store: &dyn Store, file: &Path) -> Result<(), CliError> {
    let report =
        subscribers::import(store, ctx.config, file, ctx.now).on_invalid("nothing was imported")?;
    ctx.say(&format!(
        "imported {}: {} added, {} updated, {} unchanged, {} bad rows",
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
