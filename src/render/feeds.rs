//! RSS 2.0, Atom 1.0 and JSON Feed 1.1 for the whole collection, each track
//! and each tag.
//!
//! XML comes from the `rss` and `atom_syndication` writers and JSON from serde,
//! never from text templates, so escaping is the writers' job. Every URL is
//! absolute, every id is the short's permalink (the same in all three formats),
//! and every date comes from the content, so the same content always gives the
//! same bytes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, FixedOffset, Utc};
use rayon::prelude::*;
use serde::Serialize;
use tera::{Context, Tera};
use url::Url;

use super::{OutputFile, SiteView, TrackView, escape_html};
use crate::config::{Config, Site, tera_message};
use crate::model::{Collection, Short, Tag};

/// File names of the three formats inside a feed's folder.
pub const RSS_FILE: &str = "rss.xml";
pub const ATOM_FILE: &str = "atom.xml";
pub const JSON_FILE: &str = "feed.json";
/// The stylesheet browsers use to show the XML feeds as a page.
pub const STYLESHEET_FILE: &str = "feed.css";

const GENERATOR: &str = "shorts";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One item of a feed, the same in all three formats. Made once per short
/// (or digest) and shared by every feed that lists it.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The permalink; also the entry's id in every format.
    pub url: Cow<'a, str>,
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
    /// A short as a feed item: its track, then its tags, as categories.
    pub fn of_short(short: &'a Short, config: &'a Config) -> Self {
        Entry {
            url: Cow::Borrowed(&short.permalink),
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
    /// The absolute URL of this feed in one format (`RSS_FILE`, …).
    pub fn url(&self, site: &Site, file: &str) -> String {
        site.url(&format!("{}{}", self.dir, file))
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

/// Every feed in `feeds` in all three formats, plus the stylesheet, each
/// file handed to `sink` as soon as it is written, so the biggest feeds are
/// never all in memory at once.
///
/// A short is listed by the site's feed, its track's and each of its tags',
/// so each item is written once per format and spliced into every feed that
/// lists it (see [`Spliced`]): the same bytes the writers give for the whole
/// feed, for a fraction of the work.
pub fn render<E: From<FeedError> + Send>(
    feeds: &[Feed<'_>],
    config: &Config,
    sink: &(dyn Fn(OutputFile) -> Result<(), E> + Sync),
) -> Result<(), E> {
    let pieces = Format::ALL.map(|format| Spliced::pieces(format, feeds, config));
    let jobs: Vec<(&Feed<'_>, Format, &Spliced<'_>)> = feeds
        .iter()
        .flat_map(|feed| Format::ALL.into_iter().map(move |format| (feed, format)))
        .map(|(feed, format)| (feed, format, &pieces[format as usize]))
        .collect();
    jobs.into_par_iter()
        .try_for_each(|(feed, format, pieces)| {
            let bytes = pieces.document(feed, config)?;
            sink(OutputFile::new(
                format!("{}{}", feed.dir, format.file()),
                bytes,
            ))
        })?;
    if config.feeds.stylesheet {
        sink(OutputFile::new(STYLESHEET_FILE, include_str!("feed.css")))?;
    }
    Ok(())
}

/// One feed's three files, each written whole by its writer.
pub fn write(feed: &Feed<'_>, config: &Config) -> Result<[OutputFile; 3], FeedError> {
    let file = |format: Format| -> Result<OutputFile, FeedError> {
        let bytes = format.document(feed, config)?;
        Ok(OutputFile::new(
            format!("{}{}", feed.dir, format.file()),
            bytes,
        ))
    };
    Ok([file(Format::Rss)?, file(Format::Atom)?, file(Format::Json)?])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Rss = 0,
    Atom = 1,
    Json = 2,
}

impl Format {
    const ALL: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

    fn file(self) -> &'static str {
        match self {
            Format::Rss => RSS_FILE,
            Format::Atom => ATOM_FILE,
            Format::Json => JSON_FILE,
        }
    }

    /// `feed` written whole by this format's writer.
    fn document(self, feed: &Feed<'_>, config: &Config) -> Result<Vec<u8>, FeedError> {
        match self {
            Format::Rss => rss(feed, config),
            Format::Atom => atom(feed, config),
            Format::Json => json(feed, config),
        }
    }
}

/// Feeds of one format assembled from items each written once.
///
/// The writers lay items out one after another, so a feed of items
/// `[a, b, c]` is the feed of `[a]` with the bytes that item `b` adds, then
/// those `c` adds, inserted after `a`. What an item adds (its markup, with
/// the separator or indentation before it) is cut from the difference
/// between a one-item and a two-item document. No knowledge of the formats'
/// syntax is needed; each feed is checked on its first two items against the
/// writer's own output and written whole if they differ.
struct Spliced<'a> {
    format: Format,
    /// What each entry adds after another one, by permalink.
    added: HashMap<&'a str, Vec<u8>>,
}

impl<'a> Spliced<'a> {
    /// Cuts every entry of `feeds` once. Entries are shared between feeds,
    /// so the site's feed (which lists them all) and the rest are scanned.
    fn pieces(format: Format, feeds: &[Feed<'a>], config: &Config) -> Self {
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
        let (Some(probe_feed), Some(&first)) = (feeds.first(), smallest) else {
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
    fn document(&self, feed: &Feed<'_>, config: &Config) -> Result<Vec<u8>, FeedError> {
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
            tracing::debug!(feed = %feed.dir, format = ?self.format, "items cannot be spliced; writing the feed whole");
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

/// Which feeds exist and what each holds: the whole collection, then each
/// track in config order, then each tag by slug. `entries` comes from [`entries`].
pub fn plan<'a>(
    entries: &'a [(&'a Short, Entry<'a>)],
    collection: &Collection,
    config: &Config,
) -> Result<Vec<Feed<'a>>, FeedError> {
    let texts = FeedTexts::compile(config)?;
    let newest = |items: &[&Entry<'_>]| items.iter().map(|e| e.updated).max();
    let all: Vec<&Entry<'a>> = entries.iter().map(|(_, e)| e).collect();
    let site_updated = newest(&all).unwrap_or_else(|| DateTime::<Utc>::UNIX_EPOCH.fixed_offset());
    let limit = |items: Vec<&'a Entry<'a>>| -> (Vec<&'a Entry<'a>>, DateTime<FixedOffset>) {
        let updated = newest(&items).unwrap_or(site_updated);
        match config.feeds.limit {
            0 => (items, updated),
            n => (items.into_iter().take(n).collect(), updated),
        }
    };
    let mut context = texts.site_context(config);
    let (items, updated) = limit(all);
    let mut feeds = vec![Feed {
        title: texts.render("title", &context)?,
        description: texts.render("description", &context)?,
        dir: String::new(),
        page_url: page_url(config, super::pages::INDEX_PATH),
        entries: items,
        updated,
    }];
    for track in &collection.tracks {
        context.insert("track", &TrackView::new(track, config));
        // Every configured track has feeds, even before its first short, so
        // readers can subscribe to a track as soon as it is announced.
        let in_track = entries
            .iter()
            .filter(|(s, _)| s.track == track.slug)
            .map(|(_, e)| e);
        let (items, updated) = limit(in_track.collect());
        let dir = format!("tracks/{}/", track.slug);
        feeds.push(Feed {
            title: texts.render("track_title", &context)?,
            description: texts.render("track_description", &context)?,
            page_url: page_url(config, &dir),
            dir,
            entries: items,
            updated,
        });
    }
    context.remove("track");
    for (tag, items) in by_tag(entries) {
        context.insert("tag", tag);
        let dir = format!("tags/{}/", tag.slug);
        let (items, updated) = limit(items);
        feeds.push(Feed {
            title: texts.render("tag_title", &context)?,
            description: texts.render("tag_description", &context)?,
            page_url: page_url(config, &dir),
            dir,
            entries: items,
            updated,
        });
    }
    Ok(feeds)
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

/// `email (Name)` as RSS `<author>` requires, when the author has an email.
fn rss_person(config: &Config) -> Option<String> {
    let author = &config.site.author;
    author
        .email
        .as_ref()
        .map(|email| format!("{email} ({})", author.name))
}

fn rss(feed: &Feed<'_>, config: &Config) -> Result<Vec<u8>, FeedError> {
    use rss::extension::atom::{AtomExtension, Link};
    use rss::extension::dublincore::DublinCoreExtension;
    use rss::{Category, Channel, Guid, Item};

    let self_url = feed.url(&config.site, RSS_FILE);
    let by_email = rss_person(config);
    let creator = match by_email {
        Some(_) => None,
        None => Some(DublinCoreExtension {
            creators: vec![config.site.author.name.clone()],
            ..Default::default()
        }),
    };
    let items = feed
        .entries
        .iter()
        .map(|entry| Item {
            title: Some(entry.title.to_string()),
            link: Some(entry.url.to_string()),
            description: Some(escape_html(&entry.summary)),
            author: by_email.clone(),
            dublin_core_ext: creator.clone(),
            categories: entry
                .categories
                .iter()
                .map(|c| Category {
                    name: c.label.to_string(),
                    domain: Some(c.scheme.clone()),
                })
                .collect(),
            guid: Some(Guid {
                value: entry.url.to_string(),
                permalink: true,
            }),
            pub_date: Some(entry.published.to_rfc2822()),
            content: Some(entry.content_html.to_string()),
            ..Default::default()
        })
        .collect();
    let channel = Channel {
        title: feed.title.clone(),
        link: feed.page_url.to_string(),
        description: feed.description.clone(),
        language: Some(config.site.language.clone()),
        managing_editor: by_email.clone(),
        webmaster: by_email,
        pub_date: feed.entries.first().map(|e| e.published.to_rfc2822()),
        last_build_date: Some(feed.updated.to_rfc2822()),
        generator: Some(format!("{GENERATOR} {VERSION}")),
        docs: Some("https://www.rssboard.org/rss-specification".to_string()),
        atom_ext: Some(AtomExtension {
            links: vec![Link {
                href: self_url,
                rel: "self".to_string(),
                mime_type: Some("application/rss+xml".to_string()),
                ..Default::default()
            }],
        }),
        items,
        ..Default::default()
    };
    let bytes = channel
        .pretty_write_to(Vec::new(), b' ', 2)
        .map_err(|e| FeedError::Write {
            path: format!("{}{RSS_FILE}", feed.dir),
            message: e.to_string(),
        })?;
    Ok(with_stylesheet(bytes, config))
}

fn atom(feed: &Feed<'_>, config: &Config) -> Result<Vec<u8>, FeedError> {
    use atom_syndication::{
        Category, Content, Entry as AtomEntry, Feed as AtomFeed, Generator, Link, Person, Text,
    };

    let base = &config.site.base_url;
    let author = &config.site.author;
    let person = Person {
        name: author.name.clone(),
        email: author.email.clone(),
        uri: Some(author.url.clone().unwrap_or_else(|| base.to_string())),
        ..Default::default()
    };
    let link = |href: String, rel: &str, mime: &str| Link {
        href,
        rel: rel.to_string(),
        mime_type: Some(mime.to_string()),
        ..Default::default()
    };
    let entries = feed
        .entries
        .iter()
        .map(|entry| AtomEntry {
            title: Text::plain(entry.title.to_string()),
            id: entry.url.to_string(),
            updated: entry.updated,
            published: Some(entry.published),
            authors: vec![person.clone()],
            categories: entry
                .categories
                .iter()
                .map(|c| Category {
                    term: c.term.to_string(),
                    scheme: Some(c.scheme.clone()),
                    label: Some(c.label.to_string()),
                })
                .collect(),
            links: vec![link(entry.url.to_string(), "alternate", "text/html")],
            summary: Some(Text::plain(entry.summary.to_string())),
            content: Some(Content {
                value: Some(entry.content_html.to_string()),
                content_type: Some("html".to_string()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let self_url = feed.url(&config.site, ATOM_FILE);
    let atom = AtomFeed {
        title: Text::plain(feed.title.clone()),
        subtitle: Some(Text::plain(feed.description.clone())),
        id: self_url.clone(),
        updated: feed.updated,
        authors: vec![person],
        generator: Some(Generator {
            value: GENERATOR.to_string(),
            uri: None,
            version: Some(VERSION.to_string()),
        }),
        links: vec![
            link(self_url, "self", "application/atom+xml"),
            link(feed.page_url.to_string(), "alternate", "text/html"),
        ],
        lang: Some(config.site.language.clone()),
        entries,
        ..Default::default()
    };
    let mut bytes = Vec::new();
    atom.write_with_config(
        &mut bytes,
        atom_syndication::WriteConfig {
            write_document_declaration: true,
            indent_size: Some(2),
        },
    )
    .map_err(|e| FeedError::Write {
        path: format!("{}{ATOM_FILE}", feed.dir),
        message: e.to_string(),
    })?;
    Ok(with_stylesheet(bytes, config))
}

/// The short's track and each of its tags.
fn categories<'s>(short: &'s Short, config: &'s Config) -> impl Iterator<Item = Category<'s>> {
    let track_label = config
        .track(&short.track)
        .map_or(short.track.as_str(), |t| t.title.as_str());
    let tags_scheme = config.site.url("tags/");
    std::iter::once(Category {
        scheme: config.site.url("tracks/"),
        term: short.track.as_str(),
        label: track_label,
    })
    .chain(short.tags.iter().map(move |tag| Category {
        scheme: tags_scheme.clone(),
        term: tag.slug.as_str(),
        label: tag.name.as_str(),
    }))
}

/// JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/).
#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: String,
    feed_url: String,
    description: &'a str,
    language: &'a str,
    authors: Vec<JsonAuthor<'a>>,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize, Clone)]
struct JsonAuthor<'a> {
    name: &'a str,
    url: String,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    id: &'a str,
    url: &'a str,
    title: &'a str,
    summary: &'a str,
    content_html: &'a str,
    date_published: String,
    date_modified: String,
    tags: Vec<&'a str>,
}

fn json(feed: &Feed<'_>, config: &Config) -> Result<Vec<u8>, FeedError> {
    let base = &config.site.base_url;
    let author = &config.site.author;
    let items = feed
        .entries
        .iter()
        .map(|entry| {
            let mut tags: Vec<&str> = Vec::with_capacity(entry.categories.len());
            for category in &entry.categories {
                if !tags.contains(&category.label) {
                    tags.push(category.label);
                }
            }
            JsonItem {
                id: &entry.url,
                url: &entry.url,
                title: &entry.title,
                summary: &entry.summary,
                content_html: &entry.content_html,
                date_published: entry.published.to_rfc3339(),
                date_modified: entry.updated.to_rfc3339(),
                tags,
            }
        })
        .collect();
    let document = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: &feed.title,
        home_page_url: feed.page_url.to_string(),
        feed_url: feed.url(&config.site, JSON_FILE),
        description: &feed.description,
        language: &config.site.language,
        authors: vec![JsonAuthor {
            name: &author.name,
            url: author.url.clone().unwrap_or_else(|| base.to_string()),
        }],
        items,
    };
    let mut bytes = serde_json::to_vec_pretty(&document).map_err(|e| FeedError::Write {
        path: format!("{}{JSON_FILE}", feed.dir),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Adds `<?xml-stylesheet?>` after the XML declaration, pointing at the site's
/// `feed.css` by absolute path: browsers refuse stylesheets from another origin,
/// so a full URL would break previews served from anywhere but `base_url`.
fn with_stylesheet(mut xml: Vec<u8>, config: &Config) -> Vec<u8> {
    if !config.feeds.stylesheet {
        xml.push(b'\n');
        return xml;
    }
    let instruction = format!(
        "\n<?xml-stylesheet type=\"text/css\" href=\"{}{STYLESHEET_FILE}\"?>",
        config.site.base_url.path()
    );
    let end_of_declaration = xml.windows(2).position(|w| w == b"?>").map_or(0, |i| i + 2);
    xml.splice(
        end_of_declaration..end_of_declaration,
        instruction.into_bytes(),
    );
    xml.push(b'\n');
    xml
}
