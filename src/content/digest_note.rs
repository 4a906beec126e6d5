//! The author's note for one digest: an optional Markdown file,
//! `content/digests/<YYYY-MM-DD>.md`, named for the day (site time zone)
//! of the digest's slot. It is shown above the sections in the email and on
//! the digest's archive page.
//!
//! Reads, renders and checks only; which digest a note belongs to, and what
//! a bad one stops, is the caller's.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use super::markdown::{self, Features};
use crate::config::Config;
use crate::diagnostics::Problem;
use crate::model::DigestNote;
use crate::paths;

/// Where the note of the digest at `slot` is, whether or not it exists.
pub fn file_for(config: &Config, slot: DateTime<Utc>) -> PathBuf {
    let day = slot.with_timezone(&config.site.timezone).format("%Y-%m-%d");
    config.content_dir.join("digests").join(format!("{day}.md"))
}

/// The note of digest `number` (slot `slot`), if the author wrote one. Its
/// links are made absolute against the digest's archive page, as a short's
/// are against its own.
pub fn load(
    config: &Config,
    number: i64,
    slot: DateTime<Utc>,
) -> Result<Option<DigestNote>, Problem> {
    let page = url::Url::parse(&config.site.url(&paths::digest(number)))
        .unwrap_or_else(|_| config.site.base_url.clone());
    read(config, &file_for(config, slot), &page)
}

/// Every note in `content/digests/`, read and rendered as a send would, so
/// that `check` finds a bad one before its digest is due, and a note no
/// digest will ever pick up for its name.
pub fn check_all(config: &Config) -> Vec<Problem> {
    let dir = config.content_dir.join("digests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    paths.sort();
    let mut problems = Vec::new();
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        if !is_named_for_a_day(path) {
            problems.push(Problem::new(
                path,
                None,
                "a digest note is named for the day of its digest in the site's time zone, `YYYY-MM-DD.md` (e.g. `2026-06-08.md`); no digest would pick this one up",
            ));
        } else if let Err(problem) = read(config, path, &config.site.base_url) {
            problems.push(problem);
        }
    }
    problems
}

fn is_named_for_a_day(path: &Path) -> bool {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .is_some_and(|stem| NaiveDate::parse_from_str(stem, "%Y-%m-%d").is_ok() && stem.len() == 10)
}

/// The note at `path` rendered against `page`; `None` when there is none
/// or it is blank.
fn read(config: &Config, path: &Path, page: &url::Url) -> Result<Option<DigestNote>, Problem> {
    let markdown = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|e| Problem::new(path, None, format!("the digest note is not UTF-8: {e}")))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Problem::new(
                path,
                None,
                format!("cannot read the digest note: {e}"),
            ));
        }
    };
    let trimmed = markdown.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let rendered = markdown::to_html(trimmed, page, Features::of(config));
    if let Some(error) = rendered.math_errors.first() {
        let leading = &markdown[..markdown.len() - markdown.trim_start().len()];
        let line = error.line(trimmed, 1 + leading.matches('\n').count());
        return Err(Problem::new(path, Some(line), error.message.clone()));
    }
    Ok(Some(DigestNote {
        html: rendered.html,
        text: trimmed.to_string(),
    }))
}
