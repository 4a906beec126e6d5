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
    /// What each entry adds after another one, by permalink.
    added: HashMap<&'a str, Vec<u8>>,
}

impl<'a> Spliced<'a> {
    /// Cuts every entry of `feeds` once. Entries are shared between feeds,
    /// so the site's feed (which lists them all) and the rest are scanned.
    pub(super) fn pieces(
        format: &'static FeedFormat,
        feeds: &[&Feed<'a>],
        config: &Config,
    ) -> Self {
        let mut unique: Vec<&'a Entry<'a>> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for entry in feeds.iter().flat_map(|feed| feed.entries.iter().copied()) {
            if seen.insert(entry.url.as_ref()) {
                unique.push(entry);
            }
        }
        let mut spliced = Spliced {
            format,
            added: HashMap::new(),
        };
        // Every cut renders the probe item too, so the smallest one serves.
        let smallest = unique
            .iter()
            .min_by_key(|e| e.content_html.len() + e.summary.len());
        let (Some(&probe_feed), Some(&first)) = (feeds.first(), smallest) else {
            return spliced;
        };
        let with = |entries| probe_feed.listing(entries);
        let Ok(one) = format.document(&with(vec![first]), config) else {
            return spliced;
        };
        spliced.added = unique
            .par_iter()
            .filter_map(|&entry| {
                let two = format.document(&with(vec![first, entry]), config).ok()?;
                let (_, added) = inserted(&one, &two)?;
                Some((entry.url.as_ref(), added.to_vec()))
            })
            .collect();
        spliced
    }

    /// `feed` in this format: spliced where that gives the writer's bytes,
    /// else written whole.
    pub(super) fn document(&self, feed: &Feed<'_>, config: &Config) -> Result<Vec<u8>, FeedError> {
        match self.splice(feed, config)? {
            Some(bytes) => Ok(bytes),
            None => self.format.document(feed, config),
        }
    }

    fn splice(&self, feed: &Feed<'_>, config: &Config) -> Result<Option<Vec<u8>>, FeedError> {
        let [first, second, ..] = feed.entries[..] else {
            return Ok(None);
        };
        let with = |entries| self.format.document(&feed.listing(entries), config);
        let one = with(vec![first])?;
        let Some((at, _)) = inserted(&one, &with(vec![first, first])?) else {
            return Ok(None);
        };
        let assemble = |rest: &[&Entry<'_>]| -> Option<Vec<u8>> {
            let added: Vec<&[u8]> = rest
                .iter()
                .map(|e| self.added.get(e.url.as_ref()).map(Vec::as_slice))
                .collect::<Option<_>>()?;
            let size = one.len() + added.iter().map(|a| a.len()).sum::<usize>();
            let mut out = Vec::with_capacity(size);
            out.extend_from_slice(&one[..at]);
            added.iter().for_each(|a| out.extend_from_slice(a));
            out.extend_from_slice(&one[at..]);
            Some(out)
        };
        if assemble(&[second]) != Some(with(vec![first, second])?) {
            tracing::debug!(feed = %feed.dir, format = self.format.label, "items cannot be spliced; writing the feed whole");
            return Ok(None);
        }
        Ok(assemble(&feed.entries[1..]))
    }
}

/// Where and what `with` has inserted into `without`: `with` is
/// `without[..at]`, then the returned bytes, then `without[at..]`.
fn inserted<'w>(without: &[u8], with: &'w [u8]) -> Option<(usize, &'w [u8])> {
    let at = without.iter().zip(with).take_while(|(a, b)| a == b).count();
    let tail = without.len() - at;
    let end = with.len().checked_sub(tail)?;
    (end >= at && with[end..] == without[at..]).then(|| (at, &with[at..end]))
}
