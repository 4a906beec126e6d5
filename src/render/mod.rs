//! Pure rendering: from the validated model to the bytes of every output file.
//!
//! Nothing here reads or writes files or the clock; callers pass `now` and
//! write the returned [`OutputFile`]s (see `output`). A feed written again
//! may hand over ranges of the live generation's files ([`Chunk::Live`],
//! found through [`Earlier`]) instead of their bytes: `output` copies them.

pub mod digest;
pub mod feeds;
pub mod key;
pub mod pages;
pub mod subscription_mail;
pub mod templates;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::Config;
use crate::model::Track;
use crate::paths;
pub use key::{Key, Keys, Piece, Recorded};

/// What templates see of the site.
#[derive(Debug, Serialize)]
pub struct SiteView<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub base_url: &'a str,
    pub language: &'a str,
}

impl<'a> SiteView<'a> {
    pub fn new(config: &'a Config) -> Self {
        SiteView {
            title: &config.site.title,
            description: &config.site.description,
            base_url: config.site.base_url.as_str(),
            language: &config.site.language,
        }
    }
}

/// What templates see of a track; `url` is its page.
#[derive(Debug, Serialize)]
pub struct TrackView<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub url: String,
}

impl<'a> TrackView<'a> {
    pub fn new(track: &'a Track, config: &Config) -> Self {
        TrackView {
            slug: &track.slug,
            title: &track.title,
            description: &track.description,
            url: config.site.url(&paths::track(&track.slug)),
        }
    }
}

/// One file of the built site, by its path below the output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Relative, `/`-separated, e.g. `tracks/llm/rss.xml`.
    pub path: String,
    pub bytes: Vec<u8>,
}

impl OutputFile {
    pub fn new(path: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        OutputFile {
            path: path.into(),
            bytes: bytes.into(),
        }
    }
}

/// One file of the build as a renderer hands it over.
#[derive(Debug)]
pub enum Output {
    /// Rendered by this build; `recorded` is what it was rendered from,
    /// when the file is one that is rendered only when that changes.
    Rendered(OutputFile, Option<Recorded>),
    /// Rendered by this build as parts, some of them ranges of the last
    /// build's files, so that a large feed is never whole in memory.
    Assembled {
        path: String,
        chunks: Vec<Chunk>,
        recorded: Recorded,
    },
    /// Not rendered: the last build's file at `path` was rendered from the
    /// same `key`, so it is kept as it is.
    Kept { path: String, key: Key },
}

/// Part of an assembled file: bytes of this build's, or a range of a file
/// the live generation holds, which only `output` reads (and copies without
/// bringing it into memory where the file system can).
#[derive(Debug, Clone)]
pub enum Chunk {
    Own(Arc<[u8]>),
    Live(LiveRange),
}

impl Chunk {
    /// How many bytes it puts in the file.
    pub fn size(&self) -> u64 {
        match self {
            Chunk::Own(bytes) => bytes.len() as u64,
            Chunk::Live(range) => range.len,
        }
    }
}

/// `len` bytes at `start` of a file of the live generation, open for reading.
#[derive(Debug, Clone)]
pub struct LiveRange {
    pub file: Arc<std::fs::File>,
    pub start: u64,
    pub len: u64,
}

impl Output {
    pub fn path(&self) -> &str {
        match self {
            Output::Rendered(file, _) => &file.path,
            Output::Assembled { path, .. } | Output::Kept { path, .. } => path,
        }
    }

    /// `file`, rendered from `key`.
    pub fn keyed(file: OutputFile, key: Key) -> Output {
        let recorded = Recorded {
            key,
            size: file.bytes.len() as u64,
            pieces: Vec::new(),
        };
        Output::Rendered(file, Some(recorded))
    }
}

/// What the last build left that a renderer may use instead of rendering.
pub trait Earlier: Sync {
    /// Whether the last build's file at `path` was rendered from `key` and
    /// is still there.
    fn is_current(&self, path: &str, key: &Key) -> bool;

    /// Where the last build wrote the feed piece recorded with `key`, if
    /// it wrote one: in the file at `near` if it is there too, so that a
    /// feed written again takes runs of pieces from its own last version.
    /// (A piece's key names its format: pieces of one entry in RSS and in
    /// Atom have different keys.)
    fn piece(&self, key: &Key, near: &str) -> Option<LiveRange>;
}

/// No earlier build: everything is rendered.
struct Nothing;

impl Earlier for Nothing {
    fn is_current(&self, _: &str, _: &Key) -> bool {
        false
    }

    fn piece(&self, _: &Key, _: &str) -> Option<LiveRange> {
        None
    }
}

/// What the last build rendered, as renderers see it.
#[derive(Clone, Copy)]
pub struct Previous<'s>(&'s dyn Earlier);

impl<'s> Previous<'s> {
    pub fn new(earlier: &'s dyn Earlier) -> Self {
        Previous(earlier)
    }

    /// No earlier build: everything is rendered.
    pub fn none() -> Previous<'static> {
        Previous(&Nothing)
    }

    pub fn is_current(self, path: &str, key: &Key) -> bool {
        self.0.is_current(path, key)
    }

    pub fn piece(self, key: &Key, near: &str) -> Option<LiveRange> {
        self.0.piece(key, near)
    }

    /// `path` as `render` makes it, or kept from the last build when that
    /// rendered it from the same `key`.
    pub fn output<R>(
        self,
        path: String,
        key: Key,
        render: impl FnOnce() -> Result<Vec<u8>, R>,
    ) -> Result<Output, R> {
        if self.is_current(&path, &key) {
            return Ok(Output::Kept { path, key });
        }
        Ok(Output::keyed(OutputFile::new(path, render()?), key))
    }
}

/// Where renderers hand their files as soon as each is ready, and what
/// tells them a file need not be rendered again.
pub struct Sink<'s, E> {
    pub previous: Previous<'s>,
    emit: &'s (dyn Fn(Output) -> Result<(), E> + Sync),
}

impl<'s, E> Sink<'s, E> {
    pub fn new(previous: Previous<'s>, emit: &'s (dyn Fn(Output) -> Result<(), E> + Sync)) -> Self {
        Sink { previous, emit }
    }

    pub fn emit(&self, output: Output) -> Result<(), E> {
        (self.emit)(output)
    }

    /// A file rendered whatever the last build made (cheap ones).
    pub fn file(&self, file: OutputFile) -> Result<(), E> {
        self.emit(Output::Rendered(file, None))
    }
}

/// A date as readers see it, in the site's time zone: `Jun 7, 2026`.
pub fn display_date(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%b %-d, %Y").to_string()
}

/// Words joined as prose: "A", "A and B", "A, B and C".
pub fn join_words(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    push_escaped_html(&mut out, text);
    out
}

/// [`escape_html`] onto the end of `out`.
pub fn push_escaped_html(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_html_escapes_the_five() {
        assert_eq!(
            super::escape_html(r#"<a & 'b' "c">"#),
            "&lt;a &amp; &#39;b&#39; &quot;c&quot;&gt;"
        );
    }
}
