//! RSS 2.0, Atom 1.0 and JSON Feed 1.1 for the whole collection, each track
//! and each tag.
//!
//! [`FEED_FORMATS`] is the one list of formats: the writer here, the pages'
//! autodiscovery links and `serve`'s media types all loop over it, so a new
//! format is a row there and its writer module next to `rss`, `atom` and
//! `json`. XML comes from the `rss` and `atom_syndication` writers and JSON
//! from serde, never from text templates, so escaping is the writers' job.
//! Every URL is absolute, every id is the short's first permalink (the same in
//! every format), and every date comes from the content, so the same content
//! always gives the same bytes. Feeds know nothing of the pages that link them.
//! Past `[feeds] limit`, each feed pages back through archive documents
//! (RFC 5005, [`History`]).
//!
//! A feed opened in a browser reads as a page: the XML feeds link `feed.xsl`
//! (a page with each item's title as a link and its date as people write it)
//! and `feed.css` (its style, and the XML's own where a browser has no XSLT).
//! Beside each feed's files, `feed.html` is that page written at build time
//! (Chromium is removing XSLT): `serve` shows it to a browser opening an
//! XML feed. Which answer a browser gets is `serve`'s business.

mod atom;
mod json;
mod page;
mod rss;
mod splice;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use rayon::prelude::*;
use tera::{Context, Tera};
use url::Url;

use super::key::{Key, KeyHasher};
use super::{Output, OutputFile, Recorded, Sink, SiteView, TrackView, escape_html};
use crate::config::{Config, Site, tera_message};
use crate::model::{Collection, Short, Tag};
use crate::paths;
use splice::{Document, Sources, Spliced};

const GENERATOR: &str = "shorts";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One format every feed is written in.
#[derive(Debug)]
pub struct FeedFormat {
    /// The file name inside a feed's folder, e.g. `rss.xml`.
    pub file: &'static str,
    /// Without parameters, as `<link rel="alternate" type>` takes it.
    pub media_type: &'static str,
    /// The name readers know it by, e.g. `JSON Feed`.
    pub label: &'static str,
    /// The name where space is short, e.g. `JSON`.
    pub short_label: &'static str,
    write: fn(&Feed<'_>, &FeedFormat, &Config) -> Result<Vec<u8>, FeedError>,
}

/// Every format each feed is written in; the first is [`MAIN_FORMAT`].
pub const FEED_FORMATS: &[FeedFormat] = &[
    FeedFormat {
        file: "rss.xml",
        media_type: "application/rss+xml",
        label: "RSS",
        short_label: "RSS",
        write: rss::write,
    },
    FeedFormat {
        file: "atom.xml",
        media_type: "application/atom+xml",
        label: "Atom",
        short_label: "Atom",
        write: atom::write,
    },
    FeedFormat {
        file: "feed.json",
        media_type: "application/feed+json",
        label: "JSON Feed",
        short_label: "JSON",
        write: json::write,
    },
];

/// The format a single link to a feed points at.
pub const MAIN_FORMAT: &FeedFormat = &FEED_FORMATS[0];

/// The media type a link of relation `rel` from a document in `format`
/// names: the format's own for `self` and the history links (documents of
/// the same feed), none for a WebSub hub (not a document).
fn link_type(rel: &str, format: &FeedFormat) -> Option<&'static str> {
    (rel != "hub").then_some(format.media_type)
}

/// Whether the file at `path` (below the site root) is a feed document to
/// subscribe to, not a page or an archive document (`…/archive/<n>/`): a
/// WebSub topic when `[feeds] websub_hubs` is set.
pub fn is_subscription_feed(path: &str) -> bool {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    FeedFormat::for_file(file).is_some() && !is_archive_folder(dir)
}

/// Whether `dir` (without its trailing slash) is an archive document's
/// folder, `…archive/<n>` ([`paths::feed_archive`]).
fn is_archive_folder(dir: &str) -> bool {
    let (up, page) = dir.rsplit_once('/').unwrap_or(("", dir));
    let numbered = !page.is_empty() && page.bytes().all(|b| b.is_ascii_digit());
    numbered && (up == "archive" || up.ends_with("/archive"))
}

impl FeedFormat {
    /// The format whose files are called `file`, if any.
    pub fn for_file(file: &str) -> Option<&'static FeedFormat> {
        FEED_FORMATS.iter().find(|format| format.file == file)
    }

    /// `feed` written whole by this format's writer.
    pub fn document(&self, feed: &Feed<'_>, config: &Config) -> Result<Vec<u8>, FeedError> {
        (self.write)(feed, self, config)
    }
}

/// One item of a feed, the same in every format. Made once per short
/// (or digest) and shared by every feed that lists it.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The permalink.
    pub url: Cow<'a, str>,
    /// The entry's id in every format, which never changes: the permalink
    /// under the short's first slug, which redirects to its page.
    pub id: Cow<'a, str>,
    pub title: Cow<'a, str>,
    pub summary: Cow<'a, str>,
    pub content_html: Cow<'a, str>,
    pub published: DateTime<FixedOffset>,
    pub updated: DateTime<FixedOffset>,
    pub categories: Vec<Category<'a>>,
}

/// A category with the URL of its scheme (`…/tracks/` or `…/tags/`).
#[derive(Debug, Clone)]
pub struct Category<'a> {
    pub scheme: String,
    pub term: &'a str,
    pub label: &'a str,
}

impl<'a> Entry<'a> {
    /// Everything a writer reads of this entry, hashed.
    pub(super) fn key(&self) -> Key {
        let Entry {
            url,
            id,
            title,
            summary,
            content_html,
            published,
            updated,
            categories,
        } = self;
        let mut hash = KeyHasher::new();
        hash.text(url)
            .text(id)
            .text(title)
            .text(summary)
            .text(content_html)
            .text(&published.to_rfc3339())
            .text(&updated.to_rfc3339());
        for Category {
            scheme,
            term,
            label,
        } in categories
        {
            hash.text(scheme).text(term).text(label);
        }
        hash.finish()
    }

    /// A short as a feed item: its track, then its tags, as categories.
    pub fn of_short(short: &'a Short, config: &'a Config) -> Self {
        let id = if short.id == short.slug {
            Cow::Borrowed(short.permalink.as_str())
        } else {
            Cow::Owned(
                crate::content::short::short_url(&config.site.base_url, &short.id).to_string(),
            )
        };
        Entry {
            url: Cow::Borrowed(&short.permalink),
            id,
            title: Cow::Borrowed(&short.title),
            summary: Cow::Borrowed(&short.summary),
            content_html: Cow::Borrowed(&short.body_html),
            published: short.date,
            updated: short.last_modified(),
            categories: categories(short, config).collect(),
        }
    }
}

/// One feed, before it is written in any format.
#[derive(Debug, Clone)]
pub struct Feed<'a> {
    pub title: String,
    pub description: String,
    /// Folder of the feed files below the site root: "", "tracks/llm/", "tags/kv-cache/".
    pub dir: String,
    /// The HTML page the feed belongs to.
    pub page_url: Url,
    /// Newest first, already cut to the configured limit.
    pub entries: Vec<&'a Entry<'a>>,
    /// The newest change among `entries`; for an empty feed, the newest change
    /// on the whole site (or the time of the first build), so even an empty
    /// feed is plausible.
    pub updated: DateTime<FixedOffset>,
    /// Where this document sits in its feed's history (RFC 5005).
    pub history: History,
}

/// A feed document's place in its feed's history (RFC 5005, "Feed Paging
/// and Archiving"): a subscription document lists the newest entries and
/// links the newest archive document; each archive document lists one page
/// of older entries, links the subscription document (`current`) and its
/// neighbours, and is marked `fh:archive`. Pages are filled oldest first, so
/// every archive document but the newest keeps its entries, bytes and URL
/// for as long as the shorts in it do not change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// For an archive document, the folder of its subscription document.
    pub current: Option<String>,
    /// The folder of the next older archive document.
    pub prev_archive: Option<String>,
    /// The folder of the next newer archive document.
    pub next_archive: Option<String>,
    /// The document lists every entry of its feed (`fh:complete`): feeds
    /// with no `[feeds] limit`.
    pub complete: bool,
}

/// The namespace of RFC 5005's elements, and the prefix written for it.
pub const FEED_HISTORY_NS: &str = "http://purl.org/syndication/history/1.0";
const FEED_HISTORY_PREFIX: &str = "fh";

impl History {
    /// The links of the document in `format`: (relation, URL).
    fn links(&self, site: &Site, format: &FeedFormat) -> Vec<(&'static str, String)> {
        [
            ("current", &self.current),
            ("prev-archive", &self.prev_archive),
            ("next-archive", &self.next_archive),
        ]
        .into_iter()
        .filter_map(|(rel, dir)| Some((rel, Feed::history_url(site, dir.as_ref()?, format))))
        .collect()
    }

    /// The `fh:` element the document carries, if any: `archive` or `complete`.
    fn marker(&self) -> Option<&'static str> {
        match (self.current.is_some(), self.complete) {
            (true, _) => Some("archive"),
            (false, true) => Some("complete"),
            (false, false) => None,
        }
    }

    /// The marker as an XML writer's extension map (prefix, then local
    /// name), its element made by `element` from the qualified name; the
    /// `rss` and `atom_syndication` crates each have their own element type.
    fn marker_extension<E>(
        &self,
        element: impl Fn(String) -> E,
    ) -> BTreeMap<String, BTreeMap<String, Vec<E>>> {
        let Some(name) = self.marker() else {
            return BTreeMap::new();
        };
        let qualified = element(format!("{FEED_HISTORY_PREFIX}:{name}"));
        BTreeMap::from([(
            FEED_HISTORY_PREFIX.to_string(),
            BTreeMap::from([(name.to_string(), vec![qualified])]),
        )])
    }

    /// The namespaces the marker needs declared.
    fn namespaces(&self) -> BTreeMap<String, String> {
        match self.marker() {
            Some(_) => BTreeMap::from([(FEED_HISTORY_PREFIX.into(), FEED_HISTORY_NS.into())]),
            None => BTreeMap::new(),
        }
    }
}

impl<'a> Feed<'a> {
    /// This feed's file in `format`, below the site root.
    pub fn path(&self, format: &FeedFormat) -> String {
        paths::feed_file(&self.dir, format.file)
    }

    /// The absolute URL of this feed in `format`.
    pub fn url(&self, site: &Site, format: &FeedFormat) -> String {
        site.url(&self.path(format))
    }

    /// The absolute URL of the document in `format` in folder `dir`, one of
    /// this feed's history links.
    pub fn history_url(site: &Site, dir: &str, format: &FeedFormat) -> String {
        site.url(&paths::feed_file(dir, format.file))
    }

    /// The links of the document in `format` besides its page: (relation,
    /// URL). `self`; a subscription document's WebSub hubs (W3C WebSub §4:
    /// subscribers find the hubs and the topic URL here); the history links.
    fn links(&self, config: &Config, format: &FeedFormat) -> Vec<(&'static str, String)> {
        let mut links = vec![("self", self.url(&config.site, format))];
        if !self.is_archive() {
            links.extend(
                config
                    .feeds
                    .websub_hubs
                    .iter()
                    .map(|hub| ("hub", hub.clone())),
            );
        }
        links.extend(self.history.links(&config.site, format));
        links
    }

    /// Whether this is an archive document rather than one to subscribe to.
    pub fn is_archive(&self) -> bool {
        self.history.current.is_some()
    }

    /// The same feed listing only `entries`.
    fn listing<'b>(&self, entries: Vec<&'b Entry<'b>>) -> Feed<'b> {
        Feed {
            title: self.title.clone(),
            description: self.description.clone(),
            dir: self.dir.clone(),
            page_url: self.page_url.clone(),
            entries,
            updated: self.updated,
            history: self.history.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("rendering `feeds.{key}` from config.toml: {message}")]
    Template { key: &'static str, message: String },
    #[error("writing {path}: {message}")]
    Write { path: String, message: String },
}

/// The published shorts at `now` as feed entries, newest first, in the
/// collection's order; [`plan`] picks from these.
pub fn entries<'a>(
    collection: &'a Collection,
    config: &'a Config,
    now: DateTime<Utc>,
) -> Vec<(&'a Short, Entry<'a>)> {
    collection
        .published(now)
        .map(|short| (short, Entry::of_short(short, config)))
        .collect()
}

/// Every feed in `feeds` in every format, plus the stylesheet, each file
/// handed to `sink` as soon as it is written, so the biggest feeds are never
/// all in memory at once. A feed file the last build wrote from the same
/// texts and entries (under the same `build` key) is kept, not written again.
///
/// A short is listed by the site's feed, its track's and each of its tags',
/// so each item is written once per format and spliced into every feed that
/// lists it (see [`Spliced`]): the same bytes the writers give for the whole
/// feed, for a fraction of the work.
pub fn render<E: From<FeedError> + Send>(
    feeds: &[Feed<'_>],
    config: &Config,
    build: Key,
    sink: &Sink<'_, E>,
) -> Result<(), E> {
    let entry_keys = entry_keys(feeds);
    let keys = feed_keys(feeds, &entry_keys, build);
    let previous = sink.previous;
    let sources = Sources {
        entry_keys: &entry_keys,
        build,
        previous,
    };
    for format in FEED_FORMATS {
        let file_key = |i: usize| KeyHasher::new().key(&keys[i]).text(format.file).finish();
        let (kept, stale): (Vec<_>, Vec<_>) = feeds
            .iter()
            .enumerate()
            .map(|(i, feed)| (feed, feed.path(format), file_key(i)))
            .partition(|(_, path, key)| previous.is_current(path, key));
        for (_, path, key) in kept {
            sink.emit(Output::Kept { path, key })?;
        }
        let to_write: Vec<&Feed<'_>> = stale.iter().map(|(feed, _, _)| *feed).collect();
        let spliced = Spliced::pieces(format, &to_write, &sources, config);
        stale.into_par_iter().try_for_each(|(feed, path, key)| {
            let output = match spliced.document(feed, &path, config)? {
                Document::Whole(bytes) => Output::keyed(OutputFile::new(path, bytes), key),
                Document::Spliced {
                    chunks,
                    pieces,
                    size,
                } => Output::Assembled {
                    path,
                    chunks,
                    recorded: Recorded { key, size, pieces },
                },
            };
            sink.emit(output)
        })?;
    }
    if config.feeds.stylesheet {
        browser_pages(feeds, &keys, config, sink)?;
    }
    Ok(())
}

/// What a browser opening a feed gets: `feed.html` beside each
/// subscription document, and the stylesheets the XML links.
fn browser_pages<E: From<FeedError> + Send>(
    feeds: &[Feed<'_>],
    keys: &[Key],
    config: &Config,
    sink: &Sink<'_, E>,
) -> Result<(), E> {
    // Archive documents are for readers paging back, not for people: no
    // page of their own (a browser gets the XML with its stylesheet).
    let subscribed = feeds
        .par_iter()
        .zip(keys)
        .filter(|(feed, _)| !feed.is_archive());
    subscribed.try_for_each(|(feed, key)| {
        let path = paths::feed_file(&feed.dir, paths::FEED_PAGE);
        let key = KeyHasher::new().key(key).text(paths::FEED_PAGE).finish();
        let render = || Ok::<_, FeedError>(page::write(feed, config).into_bytes());
        sink.emit(sink.previous.output(path, key, render)?)
    })?;
    sink.file(OutputFile::new(
        paths::FEED_STYLESHEET,
        include_str!("feed.css"),
    ))?;
    sink.file(OutputFile::new(paths::FEED_TRANSFORM, transform(config)))
}

/// The key of every entry of `feeds`, by permalink. Entries are shared
/// between feeds, so each is hashed once.
fn entry_keys<'a>(feeds: &'a [Feed<'_>]) -> HashMap<&'a str, Key> {
    let mut unique: HashMap<&str, &Entry<'_>> = HashMap::new();
    for entry in feeds.iter().flat_map(|feed| feed.entries.iter().copied()) {
        unique.entry(entry.url.as_ref()).or_insert(entry);
    }
    unique
        .into_par_iter()
        .map(|(url, entry)| (url, entry.key()))
        .collect()
}

/// Each feed's key, in the order of `feeds`: its own texts and the keys of
/// its entries, in order, under `build`.
fn feed_keys(feeds: &[Feed<'_>], entry_keys: &HashMap<&str, Key>, build: Key) -> Vec<Key> {
    feeds
        .par_iter()
        .map(|feed| {
            let Feed {
                title,
                description,
                dir,
                page_url,
                entries,
                updated,
                history,
            } = feed;
            let mut hash = KeyHasher::new();
            hash.key(&build)
                .text(title)
                .text(description)
                .text(dir)
                .text(page_url.as_str())
                .text(&updated.to_rfc3339())
                .text(&format!("{history:?}"));
            for entry in entries {
                hash.key(&entry_keys[entry.url.as_ref()]);
            }
            hash.finish()
        })
        .collect()
}

/// `feed.xsl`, linking `feed.css` by the site's root path like the feeds do.
fn transform(config: &Config) -> String {
    let css = stylesheet_href(config, paths::FEED_STYLESHEET);
    // In an attribute of the result, braces would be XSLT expressions.
    let css = escape_html(&css).replace('{', "{{").replace('}', "}}");
    include_str!("feed.xsl").replace("@FEED_CSS@", &css)
}

/// `file` of the site's root by absolute path: browsers refuse stylesheets
/// from another origin, so a full URL would break previews served from
/// anywhere but `base_url`.
fn stylesheet_href(config: &Config, file: &str) -> String {
    format!("{}{file}", config.site.base_url.path())
}

/// One feed's files, one per format, each written whole by its writer.
pub fn write(feed: &Feed<'_>, config: &Config) -> Result<Vec<OutputFile>, FeedError> {
    FEED_FORMATS
        .iter()
        .map(|format| {
            let bytes = format.document(feed, config)?;
            Ok(OutputFile::new(feed.path(format), bytes))
        })
        .collect()
}

/// The `[feeds]` templates of a feed's title and description.
type TextKeys = (&'static str, &'static str);
const SITE_TEXTS: TextKeys = ("title", "description");
const TRACK_TEXTS: TextKeys = ("track_title", "track_description");
const TAG_TEXTS: TextKeys = ("tag_title", "tag_description");

/// Which feeds exist and what each holds: the whole collection, then each
/// track in config order, then each tag by slug. `entries` comes from [`entries`].
pub fn plan<'a>(
    entries: &'a [(&'a Short, Entry<'a>)],
    collection: &Collection,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<Feed<'a>>, FeedError> {
    let all: Vec<&Entry<'a>> = entries.iter().map(|(_, e)| e).collect();
    let planner = Planner {
        texts: FeedTexts::compile(config)?,
        config,
        // A site with nothing published yet was last changed now, not in
        // 1970 (which validators call implausible).
        site_updated: newest(&all).unwrap_or_else(|| now.trunc_subsecs(0).fixed_offset()),
    };
    let mut context = planner.texts.site_context(config);
    // The whole collection's subscription document first: pages date the
    // digest archive's feed by it.
    let mut feeds = planner.feed(SITE_TEXTS, &context, paths::SITE_FEEDS, paths::INDEX, all)?;
    for track in &collection.tracks {
        context.insert("track", &TrackView::new(track, config));
        // Every configured track has feeds, even before its first short, so
        // readers can subscribe to a track as soon as it is announced.
        let in_track = entries
            .iter()
            .filter(|(s, _)| s.track == track.slug)
            .map(|(_, e)| e);
        let dir = paths::track(&track.slug);
        feeds.extend(planner.feed(TRACK_TEXTS, &context, &dir, &dir, in_track.collect())?);
    }
    context.remove("track");
    for (tag, items) in by_tag(entries) {
        context.insert("tag", tag);
        let dir = paths::tag(&tag.slug);
        feeds.extend(planner.feed(TAG_TEXTS, &context, &dir, &dir, items)?);
    }
    Ok(feeds)
}

fn newest(items: &[&Entry<'_>]) -> Option<DateTime<FixedOffset>> {
    items.iter().map(|e| e.updated).max()
}

/// What every feed of the plan shares.
struct Planner<'c> {
    texts: FeedTexts,
    config: &'c Config,
    /// The newest change on the whole site: what an empty feed says.
    site_updated: DateTime<FixedOffset>,
}

impl Planner<'_> {
    /// The feed in folder `dir` of `items` (newest first) for the page at
    /// `page`, with its texts from `keys`: its subscription document, then
    /// its archive documents, oldest first ([`History`]).
    fn feed<'a>(
        &self,
        (title, description): TextKeys,
        context: &Context,
        dir: &str,
        page: &str,
        items: Vec<&'a Entry<'a>>,
    ) -> Result<Vec<Feed<'a>>, FeedError> {
        let document = |dir: String, entries: Vec<&'a Entry<'a>>, history: History| Feed {
            title: String::new(),
            description: String::new(),
            dir,
            page_url: page_url(self.config, page),
            updated: newest(&entries).unwrap_or(self.site_updated),
            entries,
            history,
        };
        let (title, description) = (
            self.texts.render(title, context)?,
            self.texts.render(description, context)?,
        );
        let pages = archive_pages(&items, self.config.feeds.limit);
        let archive_dir = |page: usize| paths::feed_archive(dir, page);
        let subscription = History {
            prev_archive: pages.last().map(|_| archive_dir(pages.len())),
            complete: self.config.feeds.limit == 0,
            ..History::default()
        };
        let newest = items.len() - pages.iter().map(Vec::len).sum::<usize>();
        let mut feeds = vec![document(
            dir.to_string(),
            items[..newest].to_vec(),
            subscription,
        )];
        for (i, entries) in pages.into_iter().enumerate() {
            let number = i + 1;
            let history = History {
                current: Some(dir.to_string()),
                prev_archive: (number > 1).then(|| archive_dir(number - 1)),
                next_archive: Some(archive_dir(number + 1)),
                complete: false,
            };
            feeds.push(document(archive_dir(number), entries, history));
        }
        // The newest archive document has no newer one but the subscription.
        if let Some(newest_archive) = feeds.last_mut().filter(|f| f.is_archive()) {
            newest_archive.history.next_archive = None;
        }
        for feed in &mut feeds {
            feed.title.clone_from(&title);
            feed.description.clone_from(&description);
        }
        Ok(feeds)
    }
}

/// The archive pages of a feed of `items` (newest first) whose subscription
/// document lists the newest `limit`: the rest in pages of `limit` entries
/// filled from the oldest, each newest first, oldest page first. Only the
/// newest page can be partly filled, so only it changes as entries leave
/// the subscription document. None when there is no limit.
fn archive_pages<'a>(items: &[&'a Entry<'a>], limit: usize) -> Vec<Vec<&'a Entry<'a>>> {
    if limit == 0 || items.len() <= limit {
        return Vec::new();
    }
    let archived = items.len() - limit;
    let oldest_first: Vec<&'a Entry<'a>> = items[items.len() - archived..]
        .iter()
        .rev()
        .copied()
        .collect();
    oldest_first
        .chunks(limit)
        .map(|page| page.iter().rev().copied().collect())
        .collect()
}

/// Entries grouped by tag slug, each list newest first.
fn by_tag<'a>(entries: &'a [(&'a Short, Entry<'a>)]) -> Vec<(&'a Tag, Vec<&'a Entry<'a>>)> {
    let mut groups: BTreeMap<&str, (&Tag, Vec<&Entry<'a>>)> = BTreeMap::new();
    for (short, entry) in entries {
        for tag in &short.tags {
            groups
                .entry(tag.slug.as_str())
                .or_insert_with(|| (tag, Vec::new()))
                .1
                .push(entry);
        }
    }
    groups.into_values().collect()
}

fn page_url(config: &Config, path: &str) -> Url {
    let base = &config.site.base_url;
    base.join(path).unwrap_or_else(|_| base.clone())
}

/// The `[feeds]` title and description templates, compiled once.
struct FeedTexts {
    tera: Tera,
}

impl FeedTexts {
    fn compile(config: &Config) -> Result<Self, FeedError> {
        let mut tera = Tera::default();
        for (key, template) in config.feeds.templates() {
            tera.add_raw_template(key, template)
                .map_err(|e| FeedError::Template {
                    key,
                    message: tera_message(&e),
                })?;
        }
        Ok(FeedTexts { tera })
    }

    fn site_context(&self, config: &Config) -> Context {
        let mut context = Context::new();
        context.insert("site", &SiteView::new(config));
        context
    }

    fn render(&self, key: &'static str, context: &Context) -> Result<String, FeedError> {
        let text = self
            .tera
            .render(key, context)
            .map_err(|e| FeedError::Template {
                key,
                message: tera_message(&e),
            })?;
        Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

/// The short's track and each of its tags.
fn categories<'s>(short: &'s Short, config: &'s Config) -> impl Iterator<Item = Category<'s>> {
    let track_label = config
        .track(&short.track)
        .map_or(short.track.as_str(), |t| t.title.as_str());
    let tags_scheme = config.site.url(paths::TAGS);
    std::iter::once(Category {
        scheme: config.site.url(paths::TRACKS),
        term: short.track.as_str(),
        label: track_label,
    })
    .chain(short.tags.iter().map(move |tag| Category {
        scheme: tags_scheme.clone(),
        term: tag.slug.as_str(),
        label: tag.name.as_str(),
    }))
}

/// Adds `<?xml-stylesheet?>` instructions after the XML declaration: first
/// `feed.xsl`, which turns the feed into a page in browsers with XSLT, then
/// `feed.css`, which a browser without XSLT (Chromium is removing it) applies
/// to the XML itself. Feed readers ignore both.
fn with_stylesheet(mut xml: Vec<u8>, config: &Config) -> Vec<u8> {
    if !config.feeds.stylesheet {
        xml.push(b'\n');
        return xml;
    }
    let mut instructions = String::new();
    for (kind, file) in [
        ("text/xsl", paths::FEED_TRANSFORM),
        ("text/css", paths::FEED_STYLESHEET),
    ] {
        // A URL path has no `"` (it is percent-encoded) and nothing in a
        // processing instruction is unescaped, so the path goes in as it is.
        let href = stylesheet_href(config, file);
        instructions.push_str(&format!(
            "\n<?xml-stylesheet type=\"{kind}\" href=\"{href}\"?>"
        ));
    }
    let end_of_declaration = xml.windows(2).position(|w| w == b"?>").map_or(0, |i| i + 2);
    xml.splice(
        end_of_declaration..end_of_declaration,
        instructions.into_bytes(),
    );
    xml.push(b'\n');
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_feeds_are_told_from_archive_documents_and_pages() {
        let archive =
            |dir: &str, page| paths::feed_file(&paths::feed_archive(dir, page), "atom.xml");
        for path in [
            "atom.xml",
            "rss.xml",
            "tracks/llm/feed.json",
            "tags/archive/rss.xml",
            "digests/atom.xml",
        ] {
            assert!(is_subscription_feed(path), "{path}");
        }
        for path in [
            archive("", 1),
            archive(&paths::tag("kv-cache"), 12),
            archive(&paths::tag("archive"), 3),
            "tracks/llm/feed.html".to_string(),
            "tracks/llm/index.html".to_string(),
            "sitemap.xml".to_string(),
        ] {
            assert!(!is_subscription_feed(&path), "{path}");
        }
    }
}
