//! Feeds assembled from items each written once: a short is listed by the
//! site's feed, its track's and each of its tags', so its markup is cut once
//! per format and spliced into every feed that lists it.
//!
//! Knows nothing of any format's syntax: what an item adds is cut from the
//! writers' own output, and a feed whose splice would differ from what its
//! writer gives is written whole instead.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;

use super::{Entry, Feed, FeedError, FeedFormat};
use crate::config::Config;
use crate::render::key::{Key, KeyHasher};
use crate::render::{Chunk, Piece, Previous};

/// Feeds of one format assembled from items each written once.
///
/// The writers lay items out one after another, so a feed of items
/// `[a, b, c]` is the feed of `[a]` with the bytes that item `b` adds, then
/// those `c` adds, inserted after `a`. What an item adds (its markup, with
/// the separator or indentation before it) is cut from the difference
/// between a one-item and a two-item document, or taken from where the last
/// build's feeds have it. Each feed is checked on its first two items
/// against the writer's own output and written whole if they differ.
pub(super) struct Spliced<'a, 'k> {
    pub(super) format: &'static FeedFormat,
    /// What each entry adds after another one, by permalink, with the key
    /// it is recorded under.
    added: HashMap<&'a str, (Key, Chunk)>,
    previous: Previous<'k>,
}

/// A feed file as its writer gives it whole, or as parts with where each
/// spliced entry's piece sits in them.
pub(super) enum Document {
    Whole(Vec<u8>),
    Spliced {
        chunks: Vec<Chunk>,
        pieces: Vec<Piece>,
        size: u64,
    },
}

/// Where one format's entry pieces come from: their keys (the entry's key
/// under the build's) and the last build's feeds.
pub(super) struct Sources<'k> {
    pub entry_keys: &'k HashMap<&'k str, Key>,
    pub build: Key,
    pub previous: Previous<'k>,
}

impl Sources<'_> {
    fn piece_key(&self, entry: &Entry<'_>, format: &FeedFormat) -> Key {
        let entry_key = match self.entry_keys.get(entry.url.as_ref()) {
            Some(key) => *key,
            None => entry.key(),
        };
        let mut hash = KeyHasher::new();
        hash.key(&self.build).text(format.file).key(&entry_key);
        hash.finish()
    }
}

impl<'a, 'k> Spliced<'a, 'k> {
    /// Cuts every entry of `feeds` once, or finds its piece in the last
    /// build's feeds where that wrote it from the same inputs. Entries are
    /// shared between feeds, so the site's feed (which lists them all) and
    /// the rest are scanned.
    pub(super) fn pieces(
        format: &'static FeedFormat,
        feeds: &[&Feed<'a>],
        sources: &Sources<'k>,
        config: &Config,
    ) -> Self {
        let mut unique: Vec<&'a Entry<'a>> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for entry in feeds.iter().flat_map(|feed| feed.entries.iter().copied()) {
            if seen.insert(entry.url.as_ref()) {
                unique.push(entry);
            }
        }
        let near = feeds
            .first()
            .map(|feed| feed.path(format))
            .unwrap_or_default();
        let mut added = HashMap::new();
        let mut to_cut = Vec::new();
        for entry in unique {
            let key = sources.piece_key(entry, format);
            match sources.previous.piece(&key, &near) {
                Some(range) => {
                    added.insert(entry.url.as_ref(), (key, Chunk::Live(range)));
                }
                None => to_cut.push((entry, key)),
            }
        }
        added.extend(cut(format, feeds.first().copied(), &to_cut, config));
        Spliced {
            format,
            added,
            previous: sources.previous,
        }
    }

    /// `feed` in this format, at `path`: spliced where that gives the
    /// writer's bytes, else written whole.
    pub(super) fn document(
        &self,
        feed: &Feed<'_>,
        path: &str,
        config: &Config,
    ) -> Result<Document, FeedError> {
        match self.splice(feed, path, config)? {
            Some(spliced) => Ok(spliced),
            None => Ok(Document::Whole(self.format.document(feed, config)?)),
        }
    }

    /// The piece of `entry`, with its key: from the last version of the
    /// file at `path` where it is there, so runs of pieces copy in one go.
    fn piece(&self, entry: &Entry<'_>, path: &str) -> Option<(Key, Chunk)> {
        let (key, chunk) = self.added.get(entry.url.as_ref())?;
        let chunk = match chunk {
            Chunk::Live(_) => self
                .previous
                .piece(key, path)
                .map_or_else(|| chunk.clone(), Chunk::Live),
            Chunk::Own(_) => chunk.clone(),
        };
        Some((*key, chunk))
    }

    fn splice(
        &self,
        feed: &Feed<'_>,
        path: &str,
        config: &Config,
    ) -> Result<Option<Document>, FeedError> {
        let [first, second, ..] = feed.entries[..] else {
            return Ok(None);
        };
        let with = |entries| self.format.document(&feed.listing(entries), config);
        let one = with(vec![first])?;
        let Some((at, _)) = inserted(&one, &with(vec![first, first])?) else {
            return Ok(None);
        };
        let Some((_, second_piece)) = self.piece(second, path) else {
            return Ok(None);
        };
        let Some(second_bytes) = bytes_of(&second_piece) else {
            return Ok(None);
        };
        if [&one[..at], &second_bytes, &one[at..]].concat() != with(vec![first, second])? {
            tracing::debug!(feed = %feed.dir, format = self.format.label, "items cannot be spliced; writing the feed whole");
            return Ok(None);
        }
        let mut chunks = Vec::with_capacity(feed.entries.len() + 1);
        let mut pieces = Vec::with_capacity(feed.entries.len() - 1);
        let mut size = at as u64;
        chunks.push(Chunk::Own(Arc::from(&one[..at])));
        for entry in &feed.entries[1..] {
            let Some((key, chunk)) = self.piece(entry, path) else {
                return Ok(None);
            };
            pieces.push(Piece {
                key,
                start: size,
                len: chunk.size(),
            });
            size += chunk.size();
            chunks.push(chunk);
        }
        chunks.push(Chunk::Own(Arc::from(&one[at..])));
        size += (one.len() - at) as u64;
        Ok(Some(Document::Spliced {
            chunks,
            pieces,
            size,
        }))
    }
}

/// The bytes of one piece, read if the last build's file holds them.
fn bytes_of(chunk: &Chunk) -> Option<Vec<u8>> {
    match chunk {
        Chunk::Own(bytes) => Some(bytes.to_vec()),
        Chunk::Live(range) => range.read().ok(),
    }
}

/// What each of `entries` adds after another one in `format`, cut from the
/// difference between a one-item and a two-item document of `probe_feed`.
fn cut<'a>(
    format: &FeedFormat,
    probe_feed: Option<&Feed<'_>>,
    entries: &[(&'a Entry<'a>, Key)],
    config: &Config,
) -> HashMap<&'a str, (Key, Chunk)> {
    // Every cut renders the probe item too, so the smallest one serves.
    let smallest = entries
        .iter()
        .map(|(entry, _)| *entry)
        .min_by_key(|e| e.content_html.len() + e.summary.len());
    let (Some(probe_feed), Some(first)) = (probe_feed, smallest) else {
        return HashMap::new();
    };
    let with = |entries| probe_feed.listing(entries);
    let Ok(one) = format.document(&with(vec![first]), config) else {
        return HashMap::new();
    };
    entries
        .par_iter()
        .filter_map(|&(entry, key)| {
            let two = format.document(&with(vec![first, entry]), config).ok()?;
            let (_, added) = inserted(&one, &two)?;
            Some((entry.url.as_ref(), (key, Chunk::Own(Arc::from(added)))))
        })
        .collect()
}

/// Where and what `with` has inserted into `without`: `with` is
/// `without[..at]`, then the returned bytes, then `without[at..]`.
fn inserted<'w>(without: &[u8], with: &'w [u8]) -> Option<(usize, &'w [u8])> {
    let at = without.iter().zip(with).take_while(|(a, b)| a == b).count();
    let tail = without.len() - at;
    let end = with.len().checked_sub(tail)?;
    (end >= at && with[end..] == without[at..]).then(|| (at, &with[at..end]))
}
