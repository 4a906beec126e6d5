//! The web pages the feeds and digests link to: the shorts index, a page per
//! short, per track and per tag, the digest archive with its feed, plus the
//! search index, the sitemap and the page assets.
//!
//! Pages come from Tera templates (built in, each replaceable by a file of
//! the same name in `templates/`). Links between pages are relative, so the
//! site works under any path and from `shorts serve`; canonical, Open Graph
//! and feed links are absolute. Pure: no I/O beyond loading the templates,
//! no clock, no database (the caller passes the archived digests).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tera::{Context, Tera};

use super::feeds::{self, Entry, Feed};
use super::templates::{self, BuiltIn};
use super::{OutputFile, display_date, escape_html, join_words};
use crate::config::Config;
use crate::diagnostics::Problems;
use crate::model::{Collection, Short};

/// The shorts index, below the site root.
pub const INDEX_PATH: &str = "shorts/";
/// The digest archive, below the site root.
pub const DIGESTS_PATH: &str = "digests/";
/// The search index the index page's script loads, below the site root.
pub const SEARCH_INDEX: &str = "shorts/search.json";

/// Cards show this many tags, then "+N".
const CARD_TAGS: usize = 4;

const TEMPLATES: [BuiltIn; 12] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("index.html", include_str!("../../templates/index.html")),
    ("short.html", include_str!("../../templates/short.html")),
    ("tracks.html", include_str!("../../templates/tracks.html")),
    ("track.html", include_str!("../../templates/track.html")),
    ("tags.html", include_str!("../../templates/tags.html")),
    ("tag.html", include_str!("../../templates/tag.html")),
    ("digests.html", include_str!("../../templates/digests.html")),
    (
        "digest_page.html",
        include_str!("../../templates/digest_page.html"),
    ),
    ("404.html", include_str!("../../templates/404.html")),
];

/// Files copied as they are, below `assets/`; their links carry a content hash.
const ASSETS: [BuiltIn; 2] = [
    ("style.css", include_str!("../../templates/style.css")),
    ("search.js", include_str!("../../templates/search.js")),
];

/// What a path segment may hold unescaped in an `href`.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/');

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    Templates(Problems),
    #[error("rendering {page} with template {template}: {message}")]
    Render {
        page: String,
        template: &'static str,
        message: String,
    },
    #[error(transparent)]
    Feed(#[from] feeds::FeedError),
}

/// A digest as the archive shows it: what the ledger recorded.
#[derive(Debug, Clone)]
pub struct ArchivedDigest {
    pub number: i64,
    pub slot: DateTime<Utc>,
    /// Slugs of the shorts it carried.
    pub slugs: Vec<String>,
}

/// The compiled page templates and assets.
pub struct PageTemplates {
    tera: Tera,
    assets: Vec<(&'static str, String)>,
}

impl PageTemplates {
    /// The built-in templates, each replaced by the site's file of the same name.
    pub fn load(config: &Config) -> Result<Self, Problems> {
        let mut tera = templates::load(config, &TEMPLATES)?;
        // Tera's own escaping also turns `/` into `&#x2F;`, which bloats every URL.
        tera.set_escape_fn(escape_html);
        let assets = ASSETS
            .iter()
            .map(|&file| Ok((file.0, templates::asset(config, file)?)))
            .collect::<Result<_, Problems>>()?;
        Ok(PageTemplates { tera, assets })
    }
}

/// Every page of the site, each handed to `sink` as soon as it is rendered.
/// `feeds` is the site's feed plan, for autodiscovery.
pub fn render<E: From<PageError> + Send>(
    templates: &PageTemplates,
    collection: &Collection,
    feeds: &[Feed<'_>],
    digests: &[ArchivedDigest],
    config: &Config,
    now: DateTime<Utc>,
    sink: &(dyn Fn(OutputFile) -> Result<(), E> + Sync),
) -> Result<(), E> {
    let site = Site::new(templates, collection, feeds, config, now);
    // Paths in site order, for the sitemap; the pages themselves are not kept.
    let emit = |paths: &mut Vec<String>, file: OutputFile| -> Result<(), E> {
        paths.push(file.path.clone());
        sink(file)
    };
    // Rendered on every core; each page goes to `sink` as soon as it is done.
    let emit_each = |render: &(dyn Fn(usize) -> Result<OutputFile, PageError> + Sync),
                     count: usize|
     -> Result<Vec<String>, E> {
        (0..count)
            .into_par_iter()
            .map(|i| {
                let page = render(i)?;
                let path = page.path.clone();
                sink(page)?;
                Ok(path)
            })
            .collect()
    };
    let mut first = Vec::new();
    for (name, text) in &templates.assets {
        emit(
            &mut first,
            OutputFile::new(format!("assets/{name}"), text.as_bytes()),
        )?;
    }
    emit(&mut first, site.page("", "home.html", "", Context::new())?)?;
    emit(&mut first, site.index()?)?;
    emit(
        &mut first,
        OutputFile::new(SEARCH_INDEX, search_index(&site.shorts)),
    )?;
    let short_pages = emit_each(&|i| site.short_page(i), site.shorts.len())?;
    let mut middle = Vec::new();
    emit(&mut middle, site.tracks_page()?)?;
    for track in &site.tracks {
        emit(&mut middle, site.track_page(track)?)?;
    }
    emit(&mut middle, site.tags_page()?)?;
    let tag_pages = emit_each(&|i| site.tag_page(&site.tags[i]), site.tags.len())?;
    let mut last = Vec::new();
    let archive = archive(digests, &site, config);
    emit(&mut last, site.digests_page(&archive)?)?;
    for digest in &archive {
        emit(&mut last, site.digest_page(digest)?)?;
    }
    for file in digest_feed(&archive, &site, config)? {
        emit(&mut last, file)?;
    }
    emit(&mut last, site.not_found_page()?)?;
    let listed = [first, short_pages, middle, tag_pages, last];
    sink(OutputFile::new(
        "sitemap.xml",
        sitemap(listed.iter().flatten(), config),
    ))
}

/// What every template sees of the site.
#[derive(Serialize)]
struct SiteView<'a> {
    title: &'a str,
    description: &'a str,
    base_url: &'a str,
    language: &'a str,
    author: &'a str,
    /// `[pages] name`, else the title.
    name: &'a str,
    heading: &'a str,
    tagline: &'a str,
    intro: &'a str,
}

/// A link to a track or tag page, with how many shorts it lists.
#[derive(Serialize, Clone)]
struct Link {
    slug: String,
    title: String,
    description: String,
    /// Below the site root; templates prefix `root`.
    path: String,
    count: usize,
}

#[derive(Serialize, Clone)]
struct TagLink<'a> {
    slug: &'a str,
    name: &'a str,
    path: String,
}

/// A short as cards and pages show it.
#[derive(Serialize)]
struct ShortView<'a> {
    slug: &'a str,
    title: &'a str,
    summary: &'a str,
    path: String,
    url: &'a str,
    date: String,
    date_iso: String,
    updated: Option<String>,
    updated_iso: Option<String>,
    reading_minutes: u32,
    track: TagLink<'a>,
    tags: Vec<TagLink<'a>>,
    /// Tags past the few a card shows, as "+N" with their names in a tooltip.
    more_tags: usize,
    more_tag_names: String,
    #[serde(skip)]
    short: &'a Short,
}

/// Autodiscovery links of one feed.
#[derive(Serialize, Clone)]
struct FeedLinks {
    title: String,
    rss: String,
    atom: String,
    json: String,
    /// The feed's RSS file below the site root, for visible links.
    path: String,
}

/// Everything the pages share, computed once.
struct Site<'a> {
    templates: &'a PageTemplates,
    config: &'a Config,
    view: SiteView<'a>,
    shorts: Vec<ShortView<'a>>,
    tracks: Vec<Link>,
    tags: Vec<Link>,
    feeds: HashMap<String, FeedLinks>,
    asset_paths: BTreeMap<&'static str, String>,
}

impl<'a> Site<'a> {
    fn new(
        templates: &'a PageTemplates,
        collection: &'a Collection,
        feeds: &[Feed<'_>],
        config: &'a Config,
        now: DateTime<Utc>,
    ) -> Self {
        let shorts: Vec<ShortView<'a>> = collection
            .published(now)
            .map(|short| short_view(short, collection, config))
            .collect();
        let tracks = collection
            .tracks
            .iter()
            .map(|track| Link {
                slug: track.slug.clone(),
                title: track.title.clone(),
                description: track.description.clone(),
                path: dir_path("tracks", &track.slug),
                count: shorts.iter().filter(|s| s.track.slug == track.slug).count(),
            })
            .collect();
        let mut tags: BTreeMap<&str, Link> = BTreeMap::new();
        for short in &shorts {
            for tag in &short.short.tags {
                tags.entry(&tag.slug)
                    .or_insert_with(|| Link {
                        slug: tag.slug.clone(),
                        title: tag.name.clone(),
                        description: String::new(),
                        path: dir_path("tags", &tag.slug),
                        count: 0,
                    })
                    .count += 1;
            }
        }
        let mut feeds: HashMap<String, FeedLinks> = feeds
            .iter()
            .map(|feed| (feed.dir.clone(), feed_links(feed, config)))
            .collect();
        let pages = &config.pages;
        let name = pages.name.as_deref().unwrap_or(&config.site.title);
        let archive_feed = archive_feed_shell(name, config);
        feeds.insert(archive_feed.dir.clone(), feed_links(&archive_feed, config));
        let asset_paths = templates
            .assets
            .iter()
            .map(|(name, text)| (*name, format!("assets/{name}?v={}", short_hash(text))))
            .collect();
        Site {
            templates,
            config,
            view: SiteView {
                title: &config.site.title,
                description: &config.site.description,
                base_url: config.site.base_url.as_str(),
                language: &config.site.language,
                author: &config.site.author.name,
                name,
                heading: &pages.heading,
                tagline: &pages.tagline,
                intro: pages.intro.as_deref().unwrap_or(&config.site.description),
            },
            shorts,
            tracks,
            tags: tags.into_values().collect(),
            feeds,
            asset_paths,
        }
    }

    /// Renders `template` to `<path>index.html` (or to `path` itself when it
    /// names a file), with the context every page gets added to `context`.
    fn page(
        &self,
        path: &str,
        template: &'static str,
        feed_dir: &str,
        mut context: Context,
    ) -> Result<OutputFile, PageError> {
        let file = if path.is_empty() || path.ends_with('/') {
            format!("{path}index.html")
        } else {
            path.to_string()
        };
        context.insert("site", &self.view);
        if !context.contains_key("root") {
            context.insert("root", &relative_root(&file));
        }
        context.insert("path", path);
        context.insert("canonical", &self.config.site.url(path));
        context.insert("assets", &self.asset_paths);
        context.insert("nav_tracks", &self.tracks);
        context.insert("site_feed", &self.feeds.get(""));
        let mut page_feeds: Vec<&FeedLinks> = Vec::new();
        if !feed_dir.is_empty()
            && let Some(feed) = self.feeds.get(feed_dir)
        {
            page_feeds.push(feed);
        }
        page_feeds.extend(self.feeds.get(""));
        context.insert("feeds", &page_feeds);
        context.insert("subscribe", &self.config.digest.is_some());
        if !context.contains_key("page_title") {
            context.insert("page_title", &self.view.title);
        }
        if !context.contains_key("description") {
            context.insert("description", &self.view.description);
        }
        let html = self
            .templates
            .tera
            .render(template, &context)
            .map_err(|e| PageError::Render {
                page: file.clone(),
                template,
                message: crate::config::tera_message(&e),
            })?;
        Ok(OutputFile::new(file, html))
    }

    /// Served for any missing path, so its links start at the site's root path.
    fn not_found_page(&self) -> Result<OutputFile, PageError> {
        let mut context = Context::new();
        context.insert("root", self.config.site.base_url.path());
        context.insert(
            "page_title",
            &format!("Page not found · {}", self.view.name),
        );
        self.page("404.html", "404.html", "", context)
    }

    fn index(&self) -> Result<OutputFile, PageError> {
        let mut context = Context::new();
        context.insert("shorts", &self.shorts);
        context.insert("tags", &self.tags);
        context.insert("search_index", "search.json");
        context.insert(
            "page_title",
            &format!("{} · {}", self.view.heading, self.view.name),
        );
        context.insert("description", &self.view.intro);
        self.page(INDEX_PATH, "index.html", "", context)
    }

    fn short_page(&self, i: usize) -> Result<OutputFile, PageError> {
        let short = &self.shorts[i];
        // Neighbours in the track by date: `shorts` is newest first.
        let in_track = |s: &&ShortView<'_>| s.track.slug == short.track.slug;
        let newer = self.shorts[..i].iter().rev().find(in_track);
        let older = self.shorts[i + 1..].iter().find(in_track);
        let mut context = Context::new();
        context.insert("short", short);
        context.insert("body", &short.short.body_html);
        context.insert("previous", &older);
        context.insert("next", &newer);
        context.insert("track", &self.track_link(short.track.slug));
        context.insert(
            "page_title",
            &format!("{} · {}", short.title, self.view.name),
        );
        context.insert("description", short.summary);
        let feed_dir = format!("tracks/{}/", short.short.track);
        self.page(&short.path, "short.html", &feed_dir, context)
    }

    fn track_link(&self, slug: &str) -> Option<&Link> {
        self.tracks.iter().find(|t| t.slug == slug)
    }

    fn listing(&self, keep: impl Fn(&ShortView<'_>) -> bool) -> Vec<&ShortView<'a>> {
        self.shorts.iter().filter(|s| keep(s)).collect()
    }

    fn tracks_page(&self) -> Result<OutputFile, PageError> {
        let mut context = Context::new();
        context.insert("page_title", &format!("Tracks · {}", self.view.name));
        self.page("tracks/", "tracks.html", "", context)
    }

    fn track_page(&self, track: &Link) -> Result<OutputFile, PageError> {
        let mut context = Context::new();
        context.insert("track", track);
        context.insert("shorts", &self.listing(|s| s.track.slug == track.slug));
        context.insert(
            "page_title",
            &format!("{} · {}", track.title, self.view.name),
        );
        if !track.description.is_empty() {
            context.insert("description", &track.description);
        }
        let dir = format!("tracks/{}/", track.slug);
        self.page(&track.path, "track.html", &dir, context)
    }

    fn tags_page(&self) -> Result<OutputFile, PageError> {
        let mut context = Context::new();
        context.insert("tags", &self.tags);
        context.insert("page_title", &format!("Tags · {}", self.view.name));
        self.page("tags/", "tags.html", "", context)
    }

    fn tag_page(&self, tag: &Link) -> Result<OutputFile, PageError> {
        let mut context = Context::new();
        context.insert("tag", tag);
        context.insert(
            "shorts",
            &self.listing(|s| s.short.tags.iter().any(|t| t.slug == tag.slug)),
        );
        context.insert(
            "page_title",
            &format!("#{} · {}", tag.title, self.view.name),
        );
        context.insert(
            "description",
            &format!("Shorts tagged {} on {}", tag.title, self.view.name),
        );
        let dir = format!("tags/{}/", tag.slug);
        self.page(&tag.path, "tag.html", &dir, context)
    }

    fn digests_page(&self, archive: &[DigestView<'_>]) -> Result<OutputFile, PageError> {
        let mut context = Context::new();
        context.insert("digests", archive);
        context.insert("page_title", &format!("Digests · {}", self.view.name));
        context.insert(
            "description",
            &format!("Every weekly digest of {}, as sent.", self.view.name),
        );
        self.page(DIGESTS_PATH, "digests.html", DIGESTS_PATH, context)
    }

    fn digest_page(&self, digest: &DigestView<'_>) -> Result<OutputFile, PageError> {
        let mut context = Context::new();
        context.insert("digest", digest);
        context.insert(
            "page_title",
            &format!("{} · {}", digest.title, self.view.name),
        );
        context.insert("description", &digest.summary);
        self.page(&digest.path, "digest_page.html", DIGESTS_PATH, context)
    }
}

fn short_view<'a>(short: &'a Short, collection: &'a Collection, config: &Config) -> ShortView<'a> {
    let tz = config.site.timezone;
    let track_title = collection
        .track(&short.track)
        .map_or(short.track.as_str(), |t| t.title.as_str());
    let more: Vec<&str> = short
        .tags
        .iter()
        .skip(CARD_TAGS)
        .map(|t| t.name.as_str())
        .collect();
    ShortView {
        slug: &short.slug,
        title: &short.title,
        summary: &short.summary,
        path: dir_path("shorts", &short.slug),
        url: &short.permalink,
        date: display_date(short.date.to_utc(), tz),
        date_iso: short.date.to_rfc3339(),
        updated: short.updated.map(|u| display_date(u.to_utc(), tz)),
        updated_iso: short.updated.map(|u| u.to_rfc3339()),
        reading_minutes: short.reading_minutes,
        track: TagLink {
            slug: &short.track,
            name: track_title,
            path: dir_path("tracks", &short.track),
        },
        tags: short
            .tags
            .iter()
            .map(|t| TagLink {
                slug: &t.slug,
                name: &t.name,
                path: dir_path("tags", &t.slug),
            })
            .collect(),
        more_tags: more.len(),
        more_tag_names: more.join(", "),
        short,
    }
}

fn feed_links(feed: &Feed<'_>, config: &Config) -> FeedLinks {
    let site = &config.site;
    FeedLinks {
        title: feed.title.clone(),
        rss: feed.url(site, feeds::RSS_FILE),
        atom: feed.url(site, feeds::ATOM_FILE),
        json: feed.url(site, feeds::JSON_FILE),
        path: format!("{}{}", encode_path(&feed.dir), feeds::RSS_FILE),
    }
}

/// `<kind>/<slug>/` with the slug percent-encoded for use in an `href`.
fn dir_path(kind: &str, slug: &str) -> String {
    format!("{kind}/{}/", utf8_percent_encode(slug, SEGMENT))
}

fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| utf8_percent_encode(segment, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// `../` once per folder between `file` and the site root.
fn relative_root(file: &str) -> String {
    "../".repeat(file.matches('/').count())
}

/// Eight hex digits of the content's hash: changes whenever the file does,
/// so browsers never keep a stale stylesheet or script.
fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// One entry per short for the index page's script: what the search and
/// the filters match on.
fn search_index(shorts: &[ShortView<'_>]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Item<'a> {
        slug: &'a str,
        title: &'a str,
        summary: &'a str,
        track: &'a str,
        track_title: &'a str,
        tags: Vec<&'a str>,
        tag_names: Vec<&'a str>,
    }
    let items: Vec<Item<'_>> = shorts
        .iter()
        .map(|s| Item {
            slug: s.slug,
            title: s.title,
            summary: s.summary,
            track: s.track.slug,
            track_title: s.track.name,
            tags: s.short.tags.iter().map(|t| t.slug.as_str()).collect(),
            tag_names: s.short.tags.iter().map(|t| t.name.as_str()).collect(),
        })
        .collect();
    // A Vec of plain strings always serialises.
    let mut bytes = serde_json::to_vec(&items).unwrap_or_else(|_| b"[]".to_vec());
    bytes.push(b'\n');
    bytes
}

/// A digest as its archive page shows it.
#[derive(Serialize)]
struct DigestView<'a> {
    number: i64,
    title: String,
    summary: String,
    date: String,
    date_iso: String,
    path: String,
    url: String,
    count: usize,
    sections: Vec<Section<'a>>,
    #[serde(skip)]
    slot: chrono::DateTime<chrono::FixedOffset>,
}

#[derive(Serialize)]
struct Section<'a> {
    track: &'a Link,
    shorts: Vec<&'a ShortView<'a>>,
}

/// The archived digests newest first, each with the shorts it carried that
/// are still published, in the sections of a reader who follows every track.
fn archive<'a>(
    digests: &[ArchivedDigest],
    site: &'a Site<'a>,
    config: &Config,
) -> Vec<DigestView<'a>> {
    digests
        .iter()
        .rev()
        .map(|digest| {
            let slugs: HashSet<&str> = digest.slugs.iter().map(String::as_str).collect();
            let carried: Vec<&ShortView<'a>> = site
                .shorts
                .iter()
                .filter(|s| slugs.contains(s.slug))
                .collect();
            let sections = archive_sections(&carried, site, config);
            let path = format!("{DIGESTS_PATH}{}/", digest.number);
            let date = display_date(digest.slot, config.site.timezone);
            DigestView {
                number: digest.number,
                title: format!("Digest #{} · {date}", digest.number),
                summary: digest_summary(&sections, carried.len()),
                date,
                date_iso: digest.slot.to_rfc3339(),
                url: config.site.url(&path),
                path,
                count: carried.len(),
                sections,
                slot: digest.slot.fixed_offset(),
            }
        })
        .collect()
}

/// The [sections](crate::model::sections) of `carried` for a reader who
/// follows every track, as the pages show them.
fn archive_sections<'a>(
    carried: &[&'a ShortView<'a>],
    site: &'a Site<'a>,
    config: &Config,
) -> Vec<Section<'a>> {
    let views: HashMap<&str, &'a ShortView<'a>> = carried.iter().map(|s| (s.slug, *s)).collect();
    let shorts: Vec<&Short> = carried.iter().map(|s| s.short).collect();
    crate::model::sections(&shorts, &config.tracks, |_| true)
        .into_iter()
        .filter_map(|section| {
            let track = site.tracks.iter().find(|t| t.slug == section.track.slug)?;
            let shorts = section
                .shorts
                .iter()
                .filter_map(|s| views.get(s.slug.as_str()).copied())
                .collect();
            Some(Section { track, shorts })
        })
        .collect()
}

/// "3 new shorts in LLMs and Time series."
fn digest_summary(sections: &[Section<'_>], count: usize) -> String {
    let tracks: Vec<&str> = sections.iter().map(|s| s.track.title.as_str()).collect();
    let noun = if count == 1 { "short" } else { "shorts" };
    if tracks.is_empty() {
        format!("{count} {noun}.")
    } else {
        format!("{count} new {noun} in {}.", join_words(&tracks))
    }
}

/// The archive as a feed: one entry per digest, linking its page.
fn digest_feed(
    archive: &[DigestView<'_>],
    site: &Site<'_>,
    config: &Config,
) -> Result<[OutputFile; 3], PageError> {
    let entries: Vec<Entry<'_>> = archive
        .iter()
        .map(|digest| {
            let published = digest.slot;
            Entry {
                url: digest.url.as_str().into(),
                title: digest.title.as_str().into(),
                summary: digest.summary.as_str().into(),
                content_html: digest_html(digest).into(),
                published,
                updated: published,
                categories: Vec::new(),
            }
        })
        .collect();
    let updated = entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or_else(|| DateTime::<Utc>::UNIX_EPOCH.fixed_offset());
    let feed = Feed {
        entries: entries.iter().collect(),
        updated,
        ..archive_feed_shell(site.view.name, config)
    };
    Ok(feeds::write(&feed, config)?)
}

/// The digest archive's feed without its entries: what autodiscovery needs.
fn archive_feed_shell<'a>(name: &str, config: &Config) -> Feed<'a> {
    let base = &config.site.base_url;
    Feed {
        title: format!("{name}: digests"),
        description: format!("Every weekly digest of {name}, as sent."),
        dir: DIGESTS_PATH.to_string(),
        page_url: base.join(DIGESTS_PATH).unwrap_or_else(|_| base.clone()),
        entries: Vec::new(),
        updated: DateTime::<Utc>::UNIX_EPOCH.fixed_offset(),
    }
}

/// A digest's feed content: its sections as headed lists of links.
fn digest_html(digest: &DigestView<'_>) -> String {
    let mut html = String::new();
    for section in &digest.sections {
        html.push_str(&format!(
            "<h2>{}</h2>\n<ul>\n",
            escape_html(&section.track.title)
        ));
        for short in &section.shorts {
            html.push_str(&format!(
                "<li><a href=\"{}\">{}</a>: {}</li>\n",
                escape_html(short.url),
                escape_html(short.title),
                escape_html(short.summary)
            ));
        }
        html.push_str("</ul>\n");
    }
    html
}

/// Every page's canonical URL, for search engines.
fn sitemap<'p>(paths: impl Iterator<Item = &'p String>, config: &Config) -> Vec<u8> {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for path in paths {
        let Some(dir) = path.strip_suffix("index.html") else {
            continue;
        };
        if dir.is_empty() {
            continue; // the root only sends readers on to the index
        }
        xml.push_str(&format!(
            "  <url><loc>{}</loc></url>\n",
            escape_html(&config.site.url(&encode_path(dir)))
        ));
    }
    xml.push_str("</urlset>\n");
    xml.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_root_climbs_one_level_per_folder() {
        assert_eq!(relative_root("index.html"), "");
        assert_eq!(relative_root("shorts/index.html"), "../");
        assert_eq!(relative_root("shorts/kv-cache/index.html"), "../../");
    }

    #[test]
    fn paths_are_percent_encoded_for_hrefs() {
        assert_eq!(dir_path("tags", "kv-cache"), "tags/kv-cache/");
        assert_eq!(dir_path("tags", "ünï"), "tags/%C3%BCn%C3%AF/");
    }

    #[test]
    fn digest_summary_names_the_tracks() {
        let link = |title: &str| Link {
            slug: String::new(),
            title: title.into(),
            description: String::new(),
            path: String::new(),
            count: 0,
        };
        let (a, b) = (link("LLMs"), link("Time series"));
        let sections = [
            Section {
                track: &a,
                shorts: vec![],
            },
            Section {
                track: &b,
                shorts: vec![],
            },
        ];
        assert_eq!(
            digest_summary(&sections, 3),
            "3 new shorts in LLMs and Time series."
        );
        assert_eq!(digest_summary(&sections[..1], 1), "1 new short in LLMs.");
    }
}
