//! RSS 2.0, Atom 1.0 and JSON Feed 1.1 for the whole collection, each track
//! and each tag.
//!
//! [`FEED_FORMATS`] is the one list of formats: the writer here, the pages'
//! autodiscovery links and `serve`'s media types all loop over it, so a new
//! format is a row there and its writer module next to `rss`, `atom` and
//! `json`. XML comes from the `rss` and `atom_syndication` writers and JSON
//! from serde, never from text templates, so escaping is the writers' job.
//! Every URL is absolute, every id is the short's permalink (the same in
//! every format), and every date comes from the content, so the same content
//! always gives the same bytes. Feeds know nothing of the pages that link them.
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
    /// on the whole site (or the epoch), so even an empty feed is reproducible.
    pub updated: DateTime<FixedOffset>,
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

    /// The same feed listing only `entries`.
    fn listing<'b>(&self, entries: Vec<&'b Entry<'b>>) -> Feed<'b> {
        Feed {
            title: self.title.clone(),
            description: self.description.clone(),
            dir: self.dir.clone(),
            page_url: self.page_url.clone(),
            entries,
            updated: self.updated,
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
        feeds.par_iter().zip(&keys).try_for_each(|(feed, key)| {
            let path = paths::feed_file(&feed.dir, paths::FEED_PAGE);
            let key = KeyHasher::new().key(key).text(paths::FEED_PAGE).finish();
            let render = || Ok::<_, FeedError>(page::write(feed, config).into_bytes());
            sink.emit(previous.output(path, key, render)?)
        })?;
        sink.file(OutputFile::new(
            paths::FEED_STYLESHEET,
            include_str!("feed.css"),
        ))?;
        sink.file(OutputFile::new(paths::FEED_TRANSFORM, transform(config)))?;
    }
    Ok(())
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
            } = feed;
            let mut hash = KeyHasher::new();
            hash.key(&build)
                .text(title)
                .text(description)
                .text(dir)
                .text(page_url.as_str())
                .text(&updated.to_rfc3339());
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
    let site = planner.feed(SITE_TEXTS, &context, paths::SITE_FEEDS, paths::INDEX, all)?;
    let mut feeds = vec![site];
    for track in &collection.tracks {
        context.insert("track", &TrackView::new(track, config));
        // Every configured track has feeds, even before its first short, so
        // readers can subscribe to a track as soon as it is announced.
        let in_track = entries
            .iter()
            .filter(|(s, _)| s.track == track.slug)
            .map(|(_, e)| e);
        let dir = paths::track(&track.slug);
        feeds.push(planner.feed(TRACK_TEXTS, &context, &dir, &dir, in_track.collect())?);
    }
    context.remove("track");
    for (tag, items) in by_tag(entries) {
        context.insert("tag", tag);
        let dir = paths::tag(&tag.slug);
        feeds.push(planner.feed(TAG_TEXTS, &context, &dir, &dir, items)?);
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
    /// `page`, cut to `[feeds] limit`, with its texts from `keys`.
    fn feed<'a>(
        &self,
        (title, description): TextKeys,
        context: &Context,
        dir: &str,
        page: &str,
        items: Vec<&'a Entry<'a>>,
    ) -> Result<Feed<'a>, FeedError> {
        let updated = newest(&items).unwrap_or(self.site_updated);
        let entries = match self.config.feeds.limit {
            0 => items,
            n => items.into_iter().take(n).collect(),
        };
        Ok(Feed {
            title: self.texts.render(title, context)?,
            description: self.texts.render(description, context)?,
            dir: dir.to_string(),
            page_url: page_url(self.config, page),
            entries,
            updated,
        })
    }
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
