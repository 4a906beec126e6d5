//! RSS 2.0, Atom 1.0 and JSON Feed 1.1 for the whole collection, each track
//! and each tag.
//!
//! XML comes from the `rss` and `atom_syndication` writers and JSON from serde,
//! never from text templates, so escaping is the writers' job. Every URL is
//! absolute, every id is the short's permalink (the same in all three formats),
//! and every date comes from the content, so the same content always gives the
//! same bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
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

impl Feed<'_> {
    /// The absolute URL of this feed in one format (`RSS_FILE`, …).
    pub fn url(&self, site: &Site, file: &str) -> String {
        site.url(&format!("{}{}", self.dir, file))
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

/// Every feed in `feeds` in all three formats, plus the stylesheet.
pub fn render(feeds: &[Feed<'_>], config: &Config) -> Result<Vec<OutputFile>, FeedError> {
    let mut files = Vec::with_capacity(feeds.len() * 3 + 1);
    for feed in feeds {
        files.extend(write(feed, config)?);
    }
    if config.feeds.stylesheet {
        files.push(OutputFile::new(STYLESHEET_FILE, include_str!("feed.css")));
    }
    Ok(files)
}

/// One feed's three files.
pub fn write(feed: &Feed<'_>, config: &Config) -> Result<[OutputFile; 3], FeedError> {
    Ok([
        OutputFile::new(format!("{}{RSS_FILE}", feed.dir), rss(feed, config)?),
        OutputFile::new(format!("{}{ATOM_FILE}", feed.dir), atom(feed, config)?),
        OutputFile::new(format!("{}{JSON_FILE}", feed.dir), json(feed, config)?),
    ])
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
