//! JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/), serialised by
//! serde. Writes one feed; which feeds exist and where their files go is the
//! parent module's business.

use serde::Serialize;

use super::{Entry, Feed, FeedError, FeedFormat};
use crate::config::Config;

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: String,
    feed_url: String,
    description: &'a str,
    language: &'a str,
    authors: Vec<JsonAuthor<'a>>,
    /// The next older page of items (the feed's newest archive document,
    /// or the next older one), as JSON Feed pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<String>,
    /// The WebSub hubs of a subscription document.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<JsonHub>,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize, Clone)]
struct JsonAuthor<'a> {
    name: &'a str,
    url: String,
}

#[derive(Serialize)]
struct JsonHub {
    #[serde(rename = "type")]
    kind: &'static str,
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

/// `feed` as a JSON Feed document.
pub(super) fn write(
    feed: &Feed<'_>,
    format: &FeedFormat,
    config: &Config,
) -> Result<Vec<u8>, FeedError> {
    let author = &config.site.author;
    let document = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: &feed.title,
        home_page_url: feed.page_url.to_string(),
        feed_url: feed.url(&config.site, format),
        description: &feed.description,
        language: &config.site.language,
        authors: vec![JsonAuthor {
            name: &author.name,
            url: author
                .url
                .clone()
                .unwrap_or_else(|| config.site.base_url.to_string()),
        }],
        next_url: feed
            .history
            .prev_archive
            .as_deref()
            .map(|dir| Feed::history_url(&config.site, dir, format)),
        hubs: hubs(feed, config, format),
        items: feed.entries.iter().map(|entry| item(entry)).collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&document).map_err(|e| FeedError::Write {
        path: feed.path(format),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The hubs the document names (JSON Feed 1.1 `hubs`): its `hub` links.
fn hubs(feed: &Feed<'_>, config: &Config, format: &FeedFormat) -> Vec<JsonHub> {
    let links = feed.links(config, format).into_iter();
    let hubs = links.filter(|(rel, _)| *rel == "hub");
    hubs.map(|(_, url)| JsonHub {
        kind: "WebSub",
        url,
    })
    .collect()
}

/// An entry with its categories' labels as tags, each once.
fn item<'a>(entry: &'a Entry<'a>) -> JsonItem<'a> {
    let mut tags: Vec<&str> = Vec::with_capacity(entry.categories.len());
    for category in &entry.categories {
        if !tags.contains(&category.label) {
            tags.push(category.label);
        }
    }
    JsonItem {
        id: &entry.id,
        url: &entry.url,
        title: &entry.title,
        summary: &entry.summary,
        content_html: &entry.content_html,
        date_published: entry.published.to_rfc3339(),
        date_modified: entry.updated.to_rfc3339(),
        tags,
    }
}
