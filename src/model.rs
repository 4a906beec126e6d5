//! The domain types the rest of the code trusts: [`Short`], [`Track`], [`Tag`],
//! [`Collection`], [`Subscriber`], and what a digest holds for a reader
//! ([`sections`]).
//!
//! Values of these types are only made by the loaders in `config` and
//! `content`, which validate at the boundary; nothing here reads files or
//! checks user input again.

mod digest;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, Utc};

pub use digest::{Section, sections};

/// A track: the one subject area a short belongs to (LLMs, Retrieval, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// URL-safe identifier used in front matter and paths (`llm`).
    pub slug: String,
    pub title: String,
    pub description: String,
}

/// A topic tag as the author wrote it, with the slug used in paths.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Tag {
    pub slug: String,
    pub name: String,
}

/// One published or draft short, validated.
#[derive(Debug, Clone)]
pub struct Short {
    /// The last part of the short's address (`shorts/<slug>/`).
    pub slug: String,
    /// What feeds, the digest ledger and the archive know the short by,
    /// whatever its slug becomes: front matter `id`, else the id it was
    /// published under before (`published`), else its oldest alias, else
    /// its slug.
    pub id: String,
    /// Whether `id` was set in the front matter, and so is never inferred.
    pub id_is_declared: bool,
    /// Slugs the short was published under before, oldest first; each
    /// address answers with a redirect to the short's page.
    pub aliases: Vec<String>,
    pub title: String,
    pub summary: String,
    pub date: DateTime<FixedOffset>,
    pub updated: Option<DateTime<FixedOffset>>,
    pub track: String,
    pub tags: Vec<Tag>,
    pub draft: bool,
    /// The body rendered to HTML with every URL absolute, shared by every output.
    pub body_html: String,
    pub reading_minutes: u32,
    /// The absolute URL of the short's page; also its id in every feed.
    pub permalink: String,
    pub source: PathBuf,
}

impl Short {
    /// A published short for unit tests: title and summary from the slug, the
    /// permalink on `https://example.com/`.
    #[cfg(test)]
    pub(crate) fn sample(slug: &str, track: &str, date: DateTime<FixedOffset>) -> Short {
        Short {
            slug: slug.to_string(),
            id: slug.to_string(),
            id_is_declared: false,
            aliases: Vec::new(),
            title: format!("Short {slug}"),
            summary: format!("About {slug}."),
            date,
            updated: None,
            track: track.to_string(),
            tags: Vec::new(),
            draft: false,
            body_html: String::new(),
            reading_minutes: 1,
            permalink: format!("https://example.com/shorts/{slug}/"),
            source: Default::default(),
        }
    }

    /// The last time the content changed: `updated` if set, else `date`.
    pub fn last_modified(&self) -> DateTime<FixedOffset> {
        self.updated.unwrap_or(self.date)
    }

    /// Published: not a draft and not dated in the future.
    pub fn is_published(&self, now: DateTime<Utc>) -> bool {
        !self.draft && self.date.with_timezone(&Utc) <= now
    }

    /// `updated` as readers may see it at `now`: one still in the future is
    /// not claimed until it passes, so no feed announces a change ahead of time.
    pub fn updated_by(&self, now: DateTime<Utc>) -> Option<DateTime<FixedOffset>> {
        self.updated.filter(|updated| updated.to_utc() <= now)
    }

    /// The order shorts are listed in everywhere: newest first, ties broken
    /// by slug so every build orders alike.
    pub fn newest_first(a: &Short, b: &Short) -> Ordering {
        b.date.cmp(&a.date).then_with(|| a.slug.cmp(&b.slug))
    }
}

/// Every short of the site, newest first, with the tracks in config order.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    pub tracks: Vec<Track>,
    pub shorts: Vec<Short>,
}

impl Collection {
    /// Sorts the shorts [newest first](Short::newest_first).
    pub fn new(tracks: Vec<Track>, mut shorts: Vec<Short>) -> Self {
        shorts.sort_by(Short::newest_first);
        Collection { tracks, shorts }
    }

    /// The shorts readers may see at `now`, newest first.
    pub fn published(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Short> {
        self.shorts.iter().filter(move |s| s.is_published(now))
    }

    /// The collection as readers see it at `now`: every `updated` still in
    /// the future left out ([`Short::updated_by`]). Borrowed when there is none.
    pub fn as_of(&self, now: DateTime<Utc>) -> Cow<'_, Collection> {
        if self.shorts.iter().all(|s| s.updated == s.updated_by(now)) {
            return Cow::Borrowed(self);
        }
        let mut collection = self.clone();
        for short in &mut collection.shorts {
            short.updated = short.updated_by(now);
        }
        Cow::Owned(collection)
    }

    pub fn track(&self, slug: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.slug == slug)
    }
}

/// Text as one clean line, as titles, names and header values must be:
/// control characters other than whitespace dropped, then every run of
/// whitespace (including line breaks) made one space, with none at the ends.
pub fn one_line(text: &str) -> String {
    let visible: String = text
        .chars()
        .filter(|c| c.is_whitespace() || !c.is_control())
        .collect();
    visible.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Turns a name into a URL path segment: lower-case letters, digits and single
/// hyphens. Letters outside ASCII are kept, so a tag in another script still
/// gets a readable path (URLs percent-encode it), composed (NFC) first, so
/// that `café` typed either way is one slug.
pub fn slugify(name: &str) -> String {
    let name = nfc(name);
    let mut slug = String::with_capacity(name.len());
    let push_word = |slug: &mut String, word: &str| {
        if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        slug.push_str(word);
        slug.push('-');
    };
    for c in name.chars().flat_map(char::to_lowercase) {
        match c {
            // So "C++" and "C#" do not both become "c".
            '+' => push_word(&mut slug, "plus"),
            '#' => push_word(&mut slug, "sharp"),
            c if c.is_alphanumeric() => slug.push(c),
            _ if !slug.is_empty() && !slug.ends_with('-') => slug.push('-'),
            _ => {}
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// `text` in Unicode's composed form (NFC): what most systems type, and
/// what macOS file names (decomposed, NFD) become, so both name one thing.
pub fn nfc(text: &str) -> std::borrow::Cow<'_, str> {
    icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(text)
}

/// A slug names a folder on disk, where file systems allow 255 bytes; the
/// rest is kept for what tools add to a name.
pub const MAX_SLUG_BYTES: usize = 200;

/// Whether `s` is already a slug as [`slugify`] would write it.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty() && slugify(s) == s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_drops_controls_before_collapsing_whitespace() {
        assert_eq!(one_line("  a\r\n b\tc\u{7}  "), "a b c");
        assert_eq!(one_line("\u{7f}\r\nax"), "ax");
        assert_eq!(one_line("a \u{7} b\u{2028}c"), "a b c");
    }

    #[test]
    fn slugify_makes_path_segments() {
        assert_eq!(slugify("KV Cache"), "kv-cache");
        assert_eq!(slugify("  C++ & Rust!  "), "c-plus-plus-rust");
        assert_eq!(slugify("C#"), "c-sharp");
        assert_eq!(slugify("time-series"), "time-series");
        assert_eq!(slugify("Ünïcode"), "ünïcode");
        // Decomposed (NFD, as macOS names files) and composed are one slug.
        assert_eq!(slugify("Cafe\u{301}"), "caf\u{e9}");
        assert_eq!(slugify("Caf\u{e9}"), "caf\u{e9}");
        assert_eq!(slugify("---"), "");
        assert!(is_slug("kv-cache"));
        assert!(!is_slug("KV-cache"));
        assert!(!is_slug("a--b"));
    }

    fn follower(tracks: &[&str], tags: &[&str]) -> Subscriber {
        Subscriber {
            tracks: tracks.iter().map(|t| t.to_string()).collect(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Subscriber::sample()
        }
    }

    #[test]
    fn a_short_is_followed_by_its_track_or_one_of_its_tags() {
        let date = DateTime::parse_from_rfc3339("2026-06-01T08:00:00Z").expect("a test date");
        let mut tagged = Short::sample("gqa", "llm", date);
        tagged.tags = vec![Tag {
            slug: "kv-cache".into(),
            name: "KV cache".into(),
        }];
        let untagged = Short::sample("bm25", "rag", date);
        // (tracks, tags) → (follows the llm short tagged kv-cache, the untagged rag short)
        let table: [(&[&str], &[&str], bool, bool); 8] = [
            (&[], &[], true, true),
            (&["llm"], &[], true, false),
            (&["rag"], &[], false, true),
            (&[], &["kv-cache"], true, false),
            (&[], &["gqa"], false, false),
            (&["rag"], &["kv-cache"], true, true),
            (&["ops"], &["attention"], false, false),
            (&["llm", "rag"], &["kv-cache"], true, true),
        ];
        for (tracks, tags, follows_tagged, follows_untagged) in table {
            let reader = follower(tracks, tags);
            assert_eq!(
                (
                    reader.follows_short(&tagged),
                    reader.follows_short(&untagged)
                ),
                (follows_tagged, follows_untagged),
                "tracks {tracks:?}, tags {tags:?}"
            );
        }
        assert!(follower(&[], &[]).wants("added-later"));
        assert!(
            !follower(&[], &["kv-cache"]).wants("llm"),
            "tags alone are not every track"
        );
    }
}

/// The author's note for one digest, shown above its sections.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DigestNote {
    /// Rendered, links absolute.
    pub html: String,
    /// The Markdown as written, for the text part.
    pub text: String,
}

/// Where a subscriber stands. Only `Active` subscribers get digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriberStatus {
    /// Signed up, not yet confirmed (double opt-in): gets nothing.
    Pending,
    Active,
    Unsubscribed,
    /// Too many permanent delivery failures in a row.
    Bounced,
}

impl SubscriberStatus {
    pub const ALL: [SubscriberStatus; 4] = [
        SubscriberStatus::Pending,
        SubscriberStatus::Active,
        SubscriberStatus::Unsubscribed,
        SubscriberStatus::Bounced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberStatus::Pending => "pending",
            SubscriberStatus::Active => "active",
            SubscriberStatus::Unsubscribed => "unsubscribed",
            SubscriberStatus::Bounced => "bounced",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim().to_ascii_lowercase())
    }
}

/// An email subscriber, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// Track slugs, in config order. With `tags` also empty: every track,
    /// including tracks added later.
    pub tracks: Vec<String>,
    /// Tag slugs, sorted: shorts carrying one of them are in the digest
    /// whatever their track.
    pub tags: Vec<String>,
    pub status: SubscriberStatus,
    /// Random, secret, per subscriber: signed links name it, so rotating it
    /// revokes every link ever sent to this subscriber.
    pub token_id: String,
    /// The key of the cadence they chose ("" for the default; see
    /// [`crate::config::Cadence::key`]).
    pub cadence: String,
    /// Paused: no digest goes to them until they resume.
    pub paused: bool,
}

impl Subscriber {
    /// Whether every short is in the subscriber's digest: nothing chosen
    /// means everything, so a track added later reaches them too.
    pub fn follows_everything(&self) -> bool {
        self.tracks.is_empty() && self.tags.is_empty()
    }

    /// Whether every short of the track with this slug is in the subscriber's
    /// digest (some of its shorts may be through a tag even when not).
    pub fn wants(&self, track: &str) -> bool {
        self.follows_everything() || self.tracks.iter().any(|t| t == track)
    }

    /// Whether `short` is in the subscriber's digest: its track is followed
    /// or one of its tags is. The one rule every digest copy, skip and
    /// shared-copy key comes from (through [`sections`]).
    pub fn follows_short(&self, short: &Short) -> bool {
        self.wants(&short.track) || short.tags.iter().any(|tag| self.tags.contains(&tag.slug))
    }

    /// A reader of every track, for previews and for checking templates.
    pub fn sample() -> Subscriber {
        Subscriber {
            id: 0,
            email: "reader@example.org".to_string(),
            name: "Sample Reader".to_string(),
            tracks: Vec::new(),
            tags: Vec::new(),
            status: SubscriberStatus::Active,
            token_id: "preview".to_string(),
            cadence: String::new(),
            paused: false,
        }
    }
}
