//! The author's note for one digest: an optional Markdown file,
//! `content/digests/<YYYY-MM-DD>.md`, named for the day (site time zone)
//! of the digest's slot. It is shown above the sections in the email and on
//! the digest's archive page.
//!
//! Reads and renders only; which digest a note belongs to, and what a bad
//! one stops, is the caller's.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

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
    let path = file_for(config, slot);
    let markdown = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|e| Problem::new(&path, None, format!("the digest note is not UTF-8: {e}")))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Problem::new(
                &path,
                None,
                format!("cannot read the digest note: {e}"),
            ));
        }
    };
    let markdown = markdown.trim();
    if markdown.is_empty() {
        return Ok(None);
    }
    let page = url::Url::parse(&config.site.url(&paths::digest(number)))
        .unwrap_or_else(|_| config.site.base_url.clone());
    Ok(Some(DigestNote {
        html: super::markdown::to_html(markdown, &page, config.highlight_code),
        text: markdown.to_string(),
    }))
}
