//! RSS 2.0, written by the `rss` crate, with Atom `self` and history links
//! (RFC 5005 uses Atom's link element in RSS too) and, when
//! the author has no email, `dc:creator`. Writes one feed; which feeds exist
//! and where their files go is the parent module's business.

use ::rss::extension::Extension;
use ::rss::extension::atom::{AtomExtension, Link};
use ::rss::extension::dublincore::DublinCoreExtension;
use ::rss::{Category, Channel, Guid, Item};

use super::{Entry, Feed, FeedError, FeedFormat, GENERATOR, VERSION, link_type, with_stylesheet};
use crate::config::Config;

/// `feed` as an RSS document.
pub(super) fn write(
    feed: &Feed<'_>,
    format: &FeedFormat,
    config: &Config,
) -> Result<Vec<u8>, FeedError> {
    let by_email = person(config);
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
        .map(|entry| item(entry, &by_email, &creator))
        .collect();
    let bytes = channel(feed, format, config, by_email, items)
        .pretty_write_to(Vec::new(), b' ', 2)
        .map_err(|e| FeedError::Write {
            path: feed.path(format),
            message: e.to_string(),
        })?;
    Ok(with_stylesheet(bytes, config))
}

/// `email (Name)` as RSS `<author>` requires, when the author has an email.
fn person(config: &Config) -> Option<String> {
    let author = &config.site.author;
    author
        .email
        .as_ref()
        .map(|email| format!("{email} ({})", author.name))
}

fn channel(
    feed: &Feed<'_>,
    format: &FeedFormat,
    config: &Config,
    by_email: Option<String>,
    items: Vec<Item>,
) -> Channel {
    Channel {
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
            links: feed
                .links(config, format)
                .into_iter()
                .map(|(rel, href)| Link {
                    href,
                    rel: rel.to_string(),
                    mime_type: link_type(rel, format).map(str::to_string),
                    ..Default::default()
                })
                .collect(),
        }),
        items,
        extensions: feed.history.marker_extension(|name| Extension {
            name,
            ..Default::default()
        }),
        namespaces: feed.history.namespaces(),
        ..Default::default()
    }
}

fn item(
    entry: &Entry<'_>,
    by_email: &Option<String>,
    creator: &Option<DublinCoreExtension>,
) -> Item {
    Item {
        title: Some(entry.title.to_string()),
        link: Some(entry.url.to_string()),
        description: Some(summary_html(&entry.summary)),
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
            value: entry.id.to_string(),
            // A renamed short's id is its first address, which redirects.
            permalink: entry.id == entry.url,
        }),
        pub_date: Some(entry.published.to_rfc2822()),
        content: Some(entry.content_html.to_string()),
        ..Default::default()
    }
}

/// The plain-text summary as the HTML an RSS description is: only `&`, `<`
/// and `>` mean anything in HTML text. Quotes stay as they are, since a
/// browser without XSLT shows the description's text as it stands, where
/// `&#39;` would be read literally.
fn summary_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}
