//! RSS 2.0, Atom 1.0 and JSON Feed 1.1 for the whole collection, each track
//! and each tag.
//!
//! XML comes from the `rss` and `atom_syndication` writers and JSON from serde,
//! never from text templates, so escaping is the writers' job. Every URL is
//! absolute, every id is the short's permalink (the same in all three formats),
//! and every date comes from the content, so the same content always gives the
//! same bytes.

use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;
use tera::{Context, Tera};
use url::Url;

use super::{OutputFile, SiteView, TrackView, escape_html};
use crate::config::{Config, Site, tera_message};
use crate::model::{Collection, Short};

/// File names of the three formats inside a feed's folder.
pub const RSS_FILE: &str = "rss.xml";
pub const ATOM_FILE: &str = "atom.xml";
pub const JSON_FILE: &str = "feed.json";
/// The stylesheet browsers use to show the XML feeds as a page.
pub const STYLESHEET_FILE: &str = "feed.css";

const GENERATOR: &str = "shorts";
const VERSION: &str = env!("CARGO_PKG_VERSION");

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
    pub shorts: Vec<&'a Short>,
    /// The newest change among `shorts`; for an empty feed, the newest change
    /// on the whole site (or the epoch), so even an empty feed is reproducible.
    pub updated: DateTime<FixedOffset>,
}

impl Feed<'_> {
    fn url(&self, site: &Site, file: &str) -> String {
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

/// Every feed of the site at `now`, in all three formats, plus the stylesheet.
pub fn render(
    collection: &Collection,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<OutputFile>, FeedError> {
    let feeds = plan(collection, config, now)?;
    let mut files = Vec::with_capacity(feeds.len() * 3 + 1);
    for feed in &feeds {
        files.push(OutputFile::new(
            format!("{}{RSS_FILE}", feed.dir),
            rss(feed, config)?,
        ));
        files.push(OutputFile::new(
            format!("{}{ATOM_FILE}", feed.dir),
            atom(feed, config)?,
        ));
        files.push(OutputFile::new(
            format!("{}{JSON_FILE}", feed.dir),
            json(feed, config)?,
        ));
    }
    if config.feeds.stylesheet {
        files.push(OutputFile::new(STYLESHEET_FILE, include_str!("feed.css")));
    }
    Ok(files)
}

/// Which feeds exist and what each holds: the whole collection, then each
/// track in config order, then each tag by slug.
pub fn plan<'a>(
    collection: &'a Collection,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<Feed<'a>>, FeedError> {
    let texts = FeedTexts::compile(config)?;
    let base = &config.site.base_url;
    let published: Vec<&Short> = collection.published(now).collect();
    let newest = |shorts: &[&Short]| shorts.iter().map(|s| s.last_modified()).max();
    let site_updated =
        newest(&published).unwrap_or_else(|| DateTime::<Utc>::UNIX_EPOCH.fixed_offset());
    let limit = |shorts: Vec<&'a Short>| -> (Vec<&'a Short>, DateTime<FixedOffset>) {
        let updated = newest(&shorts).unwrap_or(site_updated);
        match config.feeds.limit {
            0 => (shorts, updated),
            n => (shorts.into_iter().take(n).collect(), updated),
        }
    };
    let mut context = texts.site_context(config);
    let (shorts, updated) = limit(published.clone());
    let mut feeds = vec![Feed {
        title: texts.render("title", &context)?,
        description: texts.render("description", &context)?,
        dir: String::new(),
        page_url: base.clone(),
        shorts,
        updated,
    }];
    for track in &collection.tracks {
        context.insert("track", &TrackView::new(track, config));
        // Every configured track has feeds, even before its first short, so
        // readers can subscribe to a track as soon as it is announced.
        let in_track = published.iter().copied().filter(|s| s.track == track.slug);
        let (shorts, updated) = limit(in_track.collect());
        let dir = format!("tracks/{}/", track.slug);
        feeds.push(Feed {
            title: texts.render("track_title", &context)?,
            description: texts.render("track_description", &context)?,
            page_url: base.join(&dir).unwrap_or_else(|_| base.clone()),
            dir,
            shorts,
            updated,
        });
    }
    context.remove("track");
    for (tag, shorts) in collection.published_by_tag(now) {
        context.insert("tag", tag);
        let dir = format!("tags/{}/", tag.slug);
        let (shorts, updated) = limit(shorts);
        feeds.push(Feed {
            title: texts.render("tag_title", &context)?,
            description: texts.render("tag_description", &context)?,
            page_url: base.join(&dir).unwrap_or_else(|_| base.clone()),
            dir,
            shorts,
            updated,
        });
    }
    Ok(feeds)
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
        .shorts
        .iter()
        .map(|short| Item {
            title: Some(short.title.clone()),
            link: Some(short.permalink.clone()),
            description: Some(escape_html(&short.summary)),
            author: by_email.clone(),
            dublin_core_ext: creator.clone(),
            categories: categories(short, config)
                .map(|(scheme, _, label)| Category {
                    name: label.to_string(),
                    domain: Some(scheme),
                })
                .collect(),
            guid: Some(Guid {
                value: short.permalink.clone(),
                permalink: true,
            }),
            pub_date: Some(short.date.to_rfc2822()),
            content: Some(short.body_html.clone()),
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
        pub_date: feed.shorts.first().map(|s| s.date.to_rfc2822()),
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
        Category, Content, Entry, Feed as AtomFeed, Generator, Link, Person, Text,
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
        .shorts
        .iter()
        .map(|short| Entry {
            title: Text::plain(short.title.clone()),
            id: short.permalink.clone(),
            updated: short.last_modified(),
            published: Some(short.date),
            authors: vec![person.clone()],
            categories: categories(short, config)
                .map(|(scheme, term, label)| Category {
                    term: term.to_string(),
                    scheme: Some(scheme),
                    label: Some(label.to_string()),
                })
                .collect(),
            links: vec![link(short.permalink.clone(), "alternate", "text/html")],
            summary: Some(Text::plain(short.summary.clone())),
            content: Some(Content {
                value: Some(short.body_html.clone()),
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

/// (scheme URL, term, label) for the short's track and each of its tags.
fn categories<'s>(
    short: &'s Short,
    config: &'s Config,
) -> impl Iterator<Item = (String, &'s str, &'s str)> {
    let track_label = config
        .track(&short.track)
        .map_or(short.track.as_str(), |t| t.title.as_str());
    let tags_scheme = config.site.url("tags/");
    std::iter::once((
        config.site.url("tracks/"),
        short.track.as_str(),
        track_label,
    ))
    .chain(
        short
            .tags
            .iter()
            .map(move |tag| (tags_scheme.clone(), tag.slug.as_str(), tag.name.as_str())),
    )
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
        .shorts
        .iter()
        .map(|short| {
            let mut tags: Vec<&str> = Vec::with_capacity(short.tags.len() + 1);
            for (_, _, label) in categories(short, config) {
                if !tags.contains(&label) {
                    tags.push(label);
                }
            }
            JsonItem {
                id: &short.permalink,
                url: &short.permalink,
                title: &short.title,
                summary: &short.summary,
                content_html: &short.body_html,
                date_published: short.date.to_rfc3339(),
                date_modified: short.last_modified().to_rfc3339(),
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
