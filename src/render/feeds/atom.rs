//! Atom 1.0, written by the `atom_syndication` crate; the feed's id is its
//! own URL. Writes one feed; which feeds exist and where their files go is
//! the parent module's business.

use atom_syndication::extension::Extension;
use atom_syndication::{
    Category, Content, Entry as AtomEntry, Feed as AtomFeed, Generator, Link, Person, Text,
    WriteConfig,
};

use super::{Entry, Feed, FeedError, FeedFormat, GENERATOR, VERSION, link_type, with_stylesheet};
use crate::config::Config;

/// `feed` as an Atom document.
pub(super) fn write(
    feed: &Feed<'_>,
    format: &FeedFormat,
    config: &Config,
) -> Result<Vec<u8>, FeedError> {
    let person = person(config);
    let entries = feed
        .entries
        .iter()
        .map(|entry| self::entry(entry, &person))
        .collect();
    let atom = AtomFeed {
        title: Text::plain(feed.title.clone()),
        subtitle: Some(Text::plain(feed.description.clone())),
        id: feed.url(&config.site, format),
        updated: feed.updated,
        authors: vec![person],
        generator: Some(Generator {
            value: GENERATOR.to_string(),
            uri: None,
            version: Some(VERSION.to_string()),
        }),
        links: links(feed, config, format),
        lang: Some(config.site.language.clone()),
        entries,
        extensions: feed.history.marker_extension(|name| Extension {
            name,
            ..Default::default()
        }),
        namespaces: feed.history.namespaces(),
        ..Default::default()
    };
    let mut bytes = Vec::new();
    let layout = WriteConfig {
        write_document_declaration: true,
        indent_size: Some(2),
    };
    atom.write_with_config(&mut bytes, layout)
        .map_err(|e| FeedError::Write {
            path: feed.path(format),
            message: e.to_string(),
        })?;
    Ok(with_stylesheet(bytes, config))
}

/// The feed's links: `self`, the page it belongs to, then the rest.
fn links(feed: &Feed<'_>, config: &Config, format: &FeedFormat) -> Vec<Link> {
    let mut links: Vec<Link> = feed
        .links(config, format)
        .into_iter()
        .map(|(rel, url)| link(url, rel, link_type(rel, format)))
        .collect();
    let page = link(feed.page_url.to_string(), "alternate", Some("text/html"));
    links.insert(1.min(links.len()), page);
    links
}

/// The site's author, linking the author's page or else the site.
fn person(config: &Config) -> Person {
    let author = &config.site.author;
    Person {
        name: author.name.clone(),
        email: author.email.clone(),
        uri: Some(
            author
                .url
                .clone()
                .unwrap_or_else(|| config.site.base_url.to_string()),
        ),
        ..Default::default()
    }
}

fn link(href: String, rel: &str, mime: Option<&str>) -> Link {
    Link {
        href,
        rel: rel.to_string(),
        mime_type: mime.map(str::to_string),
        ..Default::default()
    }
}

fn entry(entry: &Entry<'_>, person: &Person) -> AtomEntry {
    AtomEntry {
        title: Text::plain(entry.title.to_string()),
        id: entry.id.to_string(),
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
        links: vec![link(entry.url.to_string(), "alternate", Some("text/html"))],
        summary: Some(Text::plain(entry.summary.to_string())),
        content: Some(Content {
            value: Some(entry.content_html.to_string()),
            content_type: Some("html".to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}
