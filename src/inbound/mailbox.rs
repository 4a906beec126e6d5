//! Where messages that came back are read from and kept: Maildir folders.
//!
//! `shorts inbound --maildir DIR` reads every message in `DIR/new` and
//! `DIR/cur`, and moves each, once handled, into the Maildir++ sub-folder
//! `DIR/.processed` or `DIR/.unrecognised` (which mail clients show as
//! folders). A message is never deleted, and is moved only after its event
//! is committed, so a crash in between means it is read again: a replay,
//! which changes nothing. Messages from standard input that were not acted
//! on are delivered into a Maildir of their own with [`keep`].

use std::path::{Path, PathBuf};

use super::act::{Context, Effect, Handled, handle};
use crate::store::StoreError;

/// The sub-folder of handled messages.
pub const PROCESSED: &str = ".processed";
/// The sub-folder of messages that were not acted on.
pub const UNRECOGNISED: &str = ".unrecognised";

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MailboxError + '_ {
    move |source| MailboxError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One message handled from a Maildir, and where it went.
#[derive(Debug)]
pub struct Moved {
    pub handled: Handled,
    pub to: PathBuf,
}

/// Handles every message in the Maildir `dir`, oldest first, calling
/// `each` after each one is moved.
pub fn process_maildir(
    dir: &Path,
    ctx: &Context<'_>,
    mut each: impl FnMut(&Moved),
) -> Result<Vec<Moved>, MailboxError> {
    for sub in ["new", "cur", "tmp"] {
        if !dir.join(sub).is_dir() {
            return Err(MailboxError::Io {
                path: dir.display().to_string(),
                source: std::io::Error::other(
                    "not a Maildir: it has no new/, cur/ and tmp/ folders",
                ),
            });
        }
    }
    let mut done = Vec::new();
    for path in waiting_messages(dir)? {
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            // Taken by another run between listing and reading.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&path)(e)),
        };
        let name = file_name(&path);
        let handled = handle(&raw, &format!("maildir:{name}"), ctx)?;
        let folder = match handled.effect {
            Effect::Unrecognised(_) => UNRECOGNISED,
            _ => PROCESSED,
        };
        let Some(to) = move_into(dir, folder, &path)? else {
            continue;
        };
        let moved = Moved { handled, to };
        each(&moved);
        done.push(moved);
    }
    Ok(done)
}

/// The messages in `new/` and `cur/`, oldest (by name) first.
fn waiting_messages(dir: &Path) -> Result<Vec<PathBuf>, MailboxError> {
    let mut paths = Vec::new();
    for sub in ["new", "cur"] {
        let folder = dir.join(sub);
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let entry = entry.map_err(io(&folder))?;
            let is_file = entry.file_type().map_err(io(&folder))?.is_file();
            if is_file && !entry.file_name().to_string_lossy().starts_with('.') {
                paths.push(entry.path());
            }
        }
    }
    paths.sort_by_key(|p| file_name(p));
    Ok(paths)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Moves `path` into `dir/<folder>/cur`, creating the sub-Maildir; `None`
/// when another run moved it first.
fn move_into(dir: &Path, folder: &str, path: &Path) -> Result<Option<PathBuf>, MailboxError> {
    let sub = dir.join(folder);
    create_maildir(&sub)?;
    let mut name = file_name(path);
    if !name.contains(":2,") {
        name.push_str(":2,");
    }
    let to = sub.join("cur").join(name);
    match std::fs::rename(path, &to) {
        Ok(()) => Ok(Some(to)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

fn create_maildir(dir: &Path) -> Result<(), MailboxError> {
    for sub in ["tmp", "new", "cur"] {
        let path = dir.join(sub);
        crate::private::create_dir(&path).map_err(io(&path))?;
    }
    Ok(())
}

/// Delivers `raw` into the Maildir `dir` the way an MTA does (written to
/// `tmp/`, synced, renamed into `new/`), so it is never seen half-written.
pub fn keep(
    dir: &Path,
    raw: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PathBuf, MailboxError> {
    use std::io::Write;
    create_maildir(dir)?;
    let name = format!(
        "{}.P{}R{}.shorts",
        now.timestamp(),
        std::process::id(),
        crate::tokens::random_id()
    );
    let tmp = dir.join("tmp").join(&name);
    let mut file = crate::private::create_new_file(&tmp).map_err(io(&tmp))?;
    file.write_all(raw).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    let new = dir.join("new").join(&name);
    std::fs::rename(&tmp, &new).map_err(io(&new))?;
    Ok(new)
}
