//! Feeds assembled from items each written once: a short is listed by the
//! site's feed, its track's and each of its tags', so its markup is cut once
//! per format and spliced into every feed that lists it.
//!
//! Knows nothing of any format's syntax: what an item adds is cut from the
//! writers' own output, and a feed whose splice would differ from what its
//! writer gives is written whole instead.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use super::{Entry, Feed, FeedError, FeedFormat};
use crate::config::Config;
use crate::render::key::{Key, KeyHasher};
use crate::render::{Piece, Previous};

/// Feeds of one format assembled from items each written once.
///
/// The writers lay items out one after another, so a feed of items
/// `[a, b, c]` is the feed of `[a]` with the bytes that item `b` adds, then
/// those `c` adds, inserted after `a`. What an item adds (its markup, with
/// the separator or indentation before it) is cut from the difference
/// between a one-item and a two-item document. Each feed is checked on its
/// first two items against the writer's own output and written whole if
/// they differ.
pub(super) struct Spliced<'a> {
    pub(super) format: &'static FeedFormat,
    /// What each entry adds after another one, by permalink, with the key
    /// it is recorded under.
    added: HashMap<&'a str, (Key, Vec<u8>)>,
}

/// A feed file's bytes, and where each spliced entry's piece sits in them.
pub(super) type Document = (Vec<u8>, Vec<Piece>);

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

impl<'a> Spliced<'a> {
    /// Cuts every entry of `feeds` once, or takes its piece from the last
    /// build's feeds where that wrote it from the same inputs. Entries are
    /// shared between feeds, so the site's feed (which lists them all) and
    /// the rest are scanned.
    pub(super) fn pieces(
        format: &'static FeedFormat,
        feeds: &[&Feed<'a>],
        sources: &Sources<'_>,
        config: &Config,
    ) -> Self {
        let mut unique: Vec<&'a Entry<'a>> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for entry in feeds.iter().flat_map(|feed| feed.entries.iter().copied()) {
            if seen.insert(entry.url.as_ref()) {
                unique.push(entry);
            }
        }
        let keyed: Vec<(&'a Entry<'a>, Key)> = unique
            .into_iter()
            .map(|entry| (entry, sources.piece_key(entry, format)))
            .collect();
        let (mut added, to_cut): (HashMap<_, _>, Vec<_>) = {
            let found: Vec<_> = keyed
                .into_par_iter()
                .map(|(entry, key)| (entry, key, sources.previous.piece(&key)))
                .collect();
            let mut added = HashMap::new();
            let mut to_cut = Vec::new();
            for (entry, key, bytes) in found {
                match bytes {
                    Some(bytes) => {
                        added.insert(entry.url.as_ref(), (key, bytes));
                    }
                    None => to_cut.push((entry, key)),
                }
            }
            (added, to_cut)
        };
        added.extend(cut(format, feeds.first().copied(), &to_cut, config));
        Spliced { format, added }
    }

    /// `feed` in this format: spliced where that gives the writer's bytes
    /// (with where each entry's piece sits in it), else written whole.
    pub(super) fn document(&self, feed: &Feed<'_>, config: &Config) -> Result<Document, FeedError> {
        match self.splice(feed, config)? {
            Some(spliced) => Ok(spliced),
            None => Ok((self.format.document(feed, config)?, Vec::new())),
        }
    }

    fn splice(&self, feed: &Feed<'_>, config: &Config) -> Result<Option<Document>, FeedError> {
        let [first, second, ..] = feed.entries[..] else {
            return Ok(None);
        };
        let with = |entries| self.format.document(&feed.listing(entries), config);
        let one = with(vec![first])?;
        let Some((at, _)) = inserted(&one, &with(vec![first, first])?) else {
            return Ok(None);
        };
        let assemble = |rest: &[&Entry<'_>]| -> Option<Document> {
            let added: Vec<&(Key, Vec<u8>)> = rest
                .iter()
                .map(|e| self.added.get(e.url.as_ref()))
                .collect::<Option<_>>()?;
            let size = one.len() + added.iter().map(|(_, a)| a.len()).sum::<usize>();
            let mut out = Vec::with_capacity(size);
            let mut pieces = Vec::with_capacity(added.len());
            out.extend_from_slice(&one[..at]);
            for (key, bytes) in added {
                pieces.push(Piece {
                    key: *key,
                    start: out.len() as u64,
                    len: bytes.len() as u64,
                });
                out.extend_from_slice(bytes);
            }
            out.extend_from_slice(&one[at..]);
            Some((out, pieces))
        };
        let checked = assemble(&[second]).map(|(bytes, _)| bytes);
        if checked != Some(with(vec![first, second])?) {
            tracing::debug!(feed = %feed.dir, format = self.format.label, "items cannot be spliced; writing the feed whole");
            return Ok(None);
        }
        Ok(assemble(&feed.entries[1..]))
    }
}

/// What each of `entries` adds after another one in `format`, cut from the
/// difference between a one-item and a two-item document of `probe_feed`.
fn cut<'a>(
    format: &FeedFormat,
    probe_feed: Option<&Feed<'_>>,
    entries: &[(&'a Entry<'a>, Key)],
    config: &Config,
) -> HashMap<&'a str, (Key, Vec<u8>)> {
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
            Some((entry.url.as_ref(), (key, added.to_vec())))
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
