//! The web pages the feeds and digests link to: the shorts index, a page per
//! short, per track and per tag, the digest archive with its feed, plus the
//! search index, the sitemap and the page assets.
//!
//! Pages come from Tera templates (built in, each replaceable by a file of
//! the same name in `templates/`). Links between pages are relative, so the
//! site works under any path and from `shorts serve`; canonical, Open Graph
//! and feed links are absolute. Every path comes from `paths`, and feed links
//! list `feeds::FEED_FORMATS`, so no format is named here. Pure: no I/O
//! beyond loading the templates, no clock, no database (the caller passes
//! the archived digests).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tera::{Context, Tera};

use super::feeds::{self, Entry, FEED_FORMATS, Feed, History};
use super::key::{Key, KeyHasher};
use super::templates::{self, BuiltIn};
use super::{Output, OutputFile, Previous, Sink, display_date, escape_html, join_words};
use crate::config::Config;
use crate::diagnostics::Problems;
use crate::model::{Collection, Short, Tag};
use crate::paths;
use crate::published::Published;

/// Cards show this many tags, then "+N".
const CARD_TAGS: usize = 4;

const TEMPLATES: [BuiltIn; 17] = [
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
    // Drawn by `serve`, compiled with the rest so a build finds their mistakes.
    (
        "serve/page.html",
        include_str!("../../templates/serve/page.html"),
    ),
    (
        "serve/message.html",
        include_str!("../../templates/serve/message.html"),
    ),
    (
        "serve/confirm.html",
        include_str!("../../templates/serve/confirm.html"),
    ),
    (
        "serve/unsubscribe.html",
        include_str!("../../templates/serve/unsubscribe.html"),
    ),
    (
        "serve/preferences.html",
        include_str!("../../templates/serve/preferences.html"),
    ),
];

/// Files copied as they are, below `assets/`; their links carry a content hash.
const ASSETS: [BuiltIn; 2] = [
    ("style.css", include_str!("../../templates/style.css")),
    ("search.js", include_str!("../../templates/search.js")),
];

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
    /// Ids of the shorts it carried (see `Short::id`).
    pub short_ids: Vec<String>,
    /// The author's note, as the email showed it.
    pub note: Option<crate::model::DigestNote>,
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

    /// Renders one of the templates with a context the caller made (`serve`'s
    /// pages); the error says what Tera said.
    pub fn render(&self, template: &str, context: &Context) -> Result<String, String> {
        self.tera
            .render(template, context)
            .map_err(|e| crate::config::tera_message(&e))
    }

    /// What a site-wide page's context has when no build has said more (no
    /// feeds, no track list): for `serve` before the site is built with
    /// this version. The build's own is [`Site::server_page_context`]'s.
    pub fn context_without_build(&self, config: &Config) -> Context {
        let mut context = Context::new();
        context.insert("site", &site_view(config));
        context.insert("root", config.site.base_url.path());
        context.insert("path", "");
        context.insert("paths", &PATHS_VIEW);
        context.insert("canonical", &config.site.url(""));
        context.insert("assets", &asset_paths(self));
        context.insert("nav_tracks", &Vec::<()>::new());
        context.insert("site_feed", &None::<()>);
        context.insert("feeds", &Vec::<()>::new());
        context.insert("subscribe", &config.digest.is_some());
        context.insert("page_title", &config.site.title);
        context.insert("description", &config.site.description);
        context
    }
}

/// A page's own values, as a struct made on the spot: each `name: value`
/// becomes the template variable `name`. One struct gives both the page's
/// context and its key, so the key hashes exactly what the template sees.
macro_rules! values {
    ($($name:ident : $value:expr),* $(,)?) => {{
        #[allow(non_camel_case_types)]
        struct Values<$($name),*> { $($name: $name),* }
        #[allow(non_camel_case_types)]
        impl<$($name: Serialize),*> Serialize for Values<$($name),*> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                #[allow(unused_mut)] // no values: nothing to add
                let mut map = serializer.serialize_map(None)?;
                $(map.serialize_entry(stringify!($name), &self.$name)?;)*
                map.end()
            }
        }
        Values { $($name: $value),* }
    }};
}

/// Every page of the site, each handed to `sink` as soon as it is rendered
/// (or kept, when the last build rendered it from the same values).
/// `feeds` is the site's feed plan, for autodiscovery; `build` the key every
/// page is rendered under (see [`key::build_key`]).
#[allow(clippy::too_many_arguments)]
pub fn render<E: From<PageError> + Send>(
    templates: &PageTemplates,
    collection: &Collection,
    feeds: &[Feed<'_>],
    digests: &[ArchivedDigest],
    config: &Config,
    now: DateTime<Utc>,
    build: Key,
    sink: &Sink<'_, E>,
) -> Result<(), E> {
    let site = Site::new(
        templates,
        collection,
        feeds,
        config,
        now,
        build,
        sink.previous,
    );
    let mut out = Emitter {
        sink,
        paths: Vec::new(),
    };
    for (name, text) in &templates.assets {
        out.file(OutputFile::new(paths::asset(name), text.as_bytes()))?;
    }
    out.one(site.page(paths::HOME, "home.html", "", &values! {})?)?;
    out.one(site.index()?)?;
    out.file(OutputFile::new(
        paths::search_index(),
        search_index(&site.shorts),
    ))?;
    out.each(site.shorts.len(), &|i| site.short_page(i))?;
    for short in &site.shorts {
        for alias in &short.short.aliases {
            sink.file(redirect_page(alias, short.short, config))?;
        }
    }
    out.one(site.tracks_page()?)?;
    for track in &site.tracks {
        out.one(site.track_page(track)?)?;
    }
    out.one(site.tags_page()?)?;
    out.each(site.tags.len(), &|i| site.tag_page(&site.tags[i]))?;
    render_archive(&site, digests, config, &mut out)?;
    out.one(site.not_found_page()?)?;
    sink.file(site.server_page_context()?)?;
    sink.file(OutputFile::new(
        paths::PUBLISHED,
        Published::of(collection, now).to_bytes(),
    ))?;
    sink.file(OutputFile::new(
        paths::SITEMAP,
        sitemap(out.paths.iter(), config),
    ))
}

/// The page at an earlier slug of `short`: sends browsers on at once, and
/// search engines by its canonical link; `serve` answers such an address
/// with a 301 before this page is read. It is not in the sitemap.
fn redirect_page(alias: &str, short: &Short, config: &Config) -> OutputFile {
    let url = escape_html(&short.permalink);
    let title = escape_html(&short.title);
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Moved: {title}</title>\n<link rel=\"canonical\" href=\"{url}\">\n\
         <meta name=\"robots\" content=\"noindex\">\n\
         <meta http-equiv=\"refresh\" content=\"0; url={url}\">\n</head>\n<body>\n\
         <main>\n<h1>Moved</h1>\n<p>This short is now at <a href=\"{url}\">{title}</a>.</p>\n</main>\n</body>\n</html>\n",
        lang = escape_html(&config.site.language),
    );
    OutputFile::new(
        format!("{}index.html", paths::short(alias)),
        html.into_bytes(),
    )
}

/// The digest archive's page, a page per digest, and the archive's feed.
fn render_archive<E: From<PageError> + Send>(
    site: &Site<'_>,
    digests: &[ArchivedDigest],
    config: &Config,
    out: &mut Emitter<'_, E>,
) -> Result<(), E> {
    let archive = archive(digests, site, config);
    out.one(site.digests_page(&archive)?)?;
    for digest in &archive {
        out.one(site.digest_page(digest)?)?;
    }
    for file in digest_feed(&archive, site, config)? {
        out.file(file)?;
    }
    Ok(())
}

/// Hands each file to the sink as soon as it is rendered and keeps its path,
/// in site order, for the sitemap; the files themselves are not kept.
struct Emitter<'s, E> {
    sink: &'s Sink<'s, E>,
    paths: Vec<String>,
}

impl<E: From<PageError> + Send> Emitter<'_, E> {
    fn one(&mut self, output: Output) -> Result<(), E> {
        self.paths.push(output.path().to_string());
        self.sink.emit(output)
    }

    fn file(&mut self, file: OutputFile) -> Result<(), E> {
        self.one(Output::Rendered(file, None))
    }

    /// Pages `0..count`, rendered on every core, listed in index order.
    fn each(
        &mut self,
        count: usize,
        render: &(dyn Fn(usize) -> Result<Output, PageError> + Sync),
    ) -> Result<(), E> {
        let sink = self.sink;
        let paths: Vec<String> = (0..count)
            .into_par_iter()
            .map(|i| {
                let page = render(i)?;
                let path = page.path().to_string();
                sink.emit(page)?;
                Ok(path)
            })
            .collect::<Result<_, E>>()?;
        self.paths.extend(paths);
        Ok(())
    }
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
    /// The cadences a reader may choose between, default first; none when
    /// there is only one (the sign-up form then asks nothing).
    cadences: Vec<CadenceView<'a>>,
}

/// A cadence on a form: its name (the value sent) and its label.
#[derive(Serialize)]
pub(crate) struct CadenceView<'a> {
    pub(crate) name: &'a str,
    pub(crate) label: &'a str,
}

/// The cadences a reader may choose between; none when there is no choice.
pub(crate) fn cadence_views(config: &Config) -> Vec<CadenceView<'_>> {
    let cadences = config.digest.as_ref().map_or(&[][..], |d| &d.cadences[..]);
    if cadences.len() < 2 {
        return Vec::new();
    }
    cadences
        .iter()
        .map(|c| CadenceView {
            name: &c.name,
            label: &c.label,
        })
        .collect()
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

/// Links to one feed: one per format, for autodiscovery, and the first
/// format's on its own, where one link stands for the feed.
#[derive(Serialize, Clone)]
struct FeedLinks {
    title: String,
    /// The first format's absolute URL.
    url: String,
    /// The first format's file below the site root, for visible links.
    path: String,
    formats: Vec<FormatLink>,
}

/// A feed in one format.
#[derive(Serialize, Clone)]
struct FormatLink {
    label: &'static str,
    short_label: &'static str,
    media_type: &'static str,
    url: String,
}

/// Where the site's sections are below the root, for templates' links.
#[derive(Serialize)]
struct PathsView {
    index: &'static str,
    tracks: &'static str,
    tags: &'static str,
    digests: &'static str,
    subscribe: &'static str,
}

const PATHS_VIEW: PathsView = PathsView {
    index: paths::INDEX,
    tracks: paths::TRACKS,
    tags: paths::TAGS,
    digests: paths::DIGESTS,
    subscribe: paths::SUBSCRIBE,
};

/// Everything the pages share, computed once.
struct Site<'a> {
    templates: &'a PageTemplates,
    config: &'a Config,
    view: SiteView<'a>,
    shorts: Vec<ShortView<'a>>,
    tracks: Vec<Link>,
    tags: Vec<Link>,
    feeds: HashMap<String, FeedLinks>,
    /// The whole collection's feed date: what the digest archive's feed
    /// says before the first digest.
    updated: DateTime<FixedOffset>,
    /// What every page with a feed folder's links has in common, by that folder.
    common: HashMap<String, Common>,
    previous: Previous<'a>,
}

/// The part of a page's context that pages share: the site, its navigation,
/// assets and the feed links of one folder, with its key.
struct Common {
    context: Context,
    key: Key,
}

impl<'a> Site<'a> {
    fn new(
        templates: &'a PageTemplates,
        collection: &'a Collection,
        feeds: &[Feed<'_>],
        config: &'a Config,
        now: DateTime<Utc>,
        build: Key,
        previous: Previous<'a>,
    ) -> Self {
        let shorts: Vec<ShortView<'a>> = collection
            .published(now)
            .map(|short| short_view(short, collection, config))
            .collect();
        let view = site_view(config);
        let mut site = Site {
            templates,
            config,
            tracks: track_links(collection, &shorts),
            tags: tag_links(&shorts),
            feeds: feed_links_by_dir(feeds, view.name, config),
            updated: feeds
                .first()
                .map_or_else(|| now.trunc_subsecs(0).fixed_offset(), |feed| feed.updated),
            common: HashMap::new(),
            previous,
            view,
            shorts,
        };
        let assets = asset_paths(templates);
        site.common = std::iter::once("")
            .chain(site.feeds.keys().map(String::as_str))
            .map(|dir| (dir.to_string(), site.common_for(dir, &assets, build)))
            .collect();
        site
    }

    /// What every page's context has, whatever its template, but for what
    /// names the page itself (its path and links to the root).
    fn common_for(
        &self,
        feed_dir: &str,
        assets: &BTreeMap<&'static str, String>,
        build: Key,
    ) -> Common {
        let mut context = Context::new();
        context.insert("site", &self.view);
        context.insert("paths", &PATHS_VIEW);
        context.insert("assets", assets);
        context.insert("nav_tracks", &self.tracks);
        context.insert("site_feed", &self.feeds.get(paths::SITE_FEEDS));
        let mut page_feeds: Vec<&FeedLinks> = Vec::new();
        if !feed_dir.is_empty()
            && let Some(feed) = self.feeds.get(feed_dir)
        {
            page_feeds.push(feed);
        }
        page_feeds.extend(self.feeds.get(paths::SITE_FEEDS));
        context.insert("feeds", &page_feeds);
        context.insert("subscribe", &self.config.digest.is_some());
        context.insert("page_title", &self.view.title);
        context.insert("description", &self.view.description);
        let key = KeyHasher::new()
            .key(&build)
            .serde(&context.clone().into_json())
            .finish();
        Common { context, key }
    }

    fn common(&self, feed_dir: &str) -> &Common {
        self.common
            .get(feed_dir)
            .or_else(|| self.common.get(""))
            .expect("Site::new makes the common part of the site's root")
    }

    /// Renders `template` to `<path>index.html` (or to `path` itself when it
    /// names a file) with `values` and what every page has, unless the last
    /// build rendered that file from the same: then it is kept. `path` is
    /// as written to disk (`shorts/café/`); links get it percent-encoded.
    fn page(
        &self,
        path: &str,
        template: &'static str,
        feed_dir: &str,
        values: &impl Serialize,
    ) -> Result<Output, PageError> {
        let file = paths::page_file(path);
        let common = self.common(feed_dir);
        let key = KeyHasher::new()
            .key(&common.key)
            .text(template)
            .text(path)
            .serde(values)
            .finish();
        let render = || {
            let context = self.context(common, path, &file, values)?;
            self.templates
                .tera
                .render(template, &context)
                .map(String::into_bytes)
                .map_err(|e| crate::config::tera_message(&e))
        };
        self.previous
            .output(file.clone(), key, render)
            .map_err(|message| PageError::Render {
                page: file,
                template,
                message,
            })
    }

    /// The whole context of the page at `path` (file `file`): the common
    /// part, then the page's `values` over it.
    fn context(
        &self,
        common: &Common,
        path: &str,
        file: &str,
        values: &impl Serialize,
    ) -> Result<Context, String> {
        let mut context = common.context.clone();
        let href = paths::href(path);
        context.insert("canonical", &self.config.site.url(&href));
        context.insert("path", &href);
        context.insert("root", &paths::up_to_root(file));
        let own = Context::from_serialize(values).map_err(|e| crate::config::tera_message(&e))?;
        context.extend(own);
        Ok(context)
    }

    /// The context of a site-wide page as JSON, for `serve` to draw its own
    /// pages (confirm, unsubscribe, preferences) with the site's `base.html`:
    /// the same navigation, feeds and stylesheet as the pages of this build.
    /// Links start at the site's root path, as the 404 page's do.
    fn server_page_context(&self) -> Result<OutputFile, PageError> {
        let root = self.config.site.base_url.path();
        let error = |message: String| PageError::Render {
            page: paths::SERVER_PAGE_CONTEXT.to_string(),
            template: "base.html",
            message,
        };
        let context = self
            .context(self.common(""), "", "", &values! { root: root })
            .map_err(error)?;
        let json = serde_json::to_vec(&context.into_json()).map_err(|e| error(e.to_string()))?;
        Ok(OutputFile::new(paths::SERVER_PAGE_CONTEXT, json))
    }

    /// Served for any missing path, so its links start at the site's root path.
    fn not_found_page(&self) -> Result<Output, PageError> {
        let values = values! {
            root: self.config.site.base_url.path(),
            page_title: format!("Page not found · {}", self.view.name),
        };
        self.page(paths::NOT_FOUND, "404.html", "", &values)
    }

    fn index(&self) -> Result<Output, PageError> {
        let values = values! {
            shorts: &self.shorts,
            tags: &self.tags,
            search_index: paths::SEARCH_INDEX_FILE,
            page_title: format!("{} · {}", self.view.heading, self.view.name),
            description: self.view.intro,
        };
        self.page(paths::INDEX, "index.html", "", &values)
    }

    fn short_page(&self, i: usize) -> Result<Output, PageError> {
        let short = &self.shorts[i];
        // Neighbours in the track by date: `shorts` is newest first.
        let in_track = |s: &&ShortView<'_>| s.track.slug == short.track.slug;
        let values = values! {
            short: short,
            body: &short.short.body_html,
            previous: self.shorts[i + 1..].iter().find(in_track),
            next: self.shorts[..i].iter().rev().find(in_track),
            track: self.track_link(short.track.slug),
            page_title: format!("{} · {}", short.title, self.view.name),
            description: short.summary,
        };
        let feed_dir = paths::track(&short.short.track);
        let path = paths::short(&short.short.slug);
        self.page(&path, "short.html", &feed_dir, &values)
    }

    fn track_link(&self, slug: &str) -> Option<&Link> {
        self.tracks.iter().find(|t| t.slug == slug)
    }

    fn listing(&self, keep: impl Fn(&ShortView<'_>) -> bool) -> Vec<&ShortView<'a>> {
        self.shorts.iter().filter(|s| keep(s)).collect()
    }

    fn tracks_page(&self) -> Result<Output, PageError> {
        let values = values! { page_title: format!("Tracks · {}", self.view.name) };
        self.page(paths::TRACKS, "tracks.html", "", &values)
    }

    fn track_page(&self, track: &Link) -> Result<Output, PageError> {
        // Without a description of its own, the page keeps the site's.
        let description = match track.description.as_str() {
            "" => self.view.description,
            own => own,
        };
        let values = values! {
            track: track,
            shorts: self.listing(|s| s.track.slug == track.slug),
            page_title: format!("{} · {}", track.title, self.view.name),
            description: description,
        };
        let dir = paths::track(&track.slug);
        self.page(&dir, "track.html", &dir, &values)
    }

    fn tags_page(&self) -> Result<Output, PageError> {
        let values = values! {
            tags: &self.tags,
            page_title: format!("Tags · {}", self.view.name),
        };
        self.page(paths::TAGS, "tags.html", "", &values)
    }

    fn tag_page(&self, tag: &Link) -> Result<Output, PageError> {
        let values = values! {
            tag: tag,
            shorts: self.listing(|s| s.short.tags.iter().any(|t| t.slug == tag.slug)),
            page_title: format!("#{} · {}", tag.title, self.view.name),
            description: format!("Shorts tagged {} on {}", tag.title, self.view.name),
        };
        let dir = paths::tag(&tag.slug);
        self.page(&dir, "tag.html", &dir, &values)
    }

    fn digests_page(&self, archive: &[DigestView<'_>]) -> Result<Output, PageError> {
        let values = values! {
            digests: archive,
            page_title: format!("Digests · {}", self.view.name),
            description: format!("Every weekly digest of {}, as sent.", self.view.name),
        };
        self.page(paths::DIGESTS, "digests.html", paths::DIGESTS, &values)
    }

    fn digest_page(&self, digest: &DigestView<'_>) -> Result<Output, PageError> {
        let values = values! {
            digest: digest,
            page_title: format!("{} · {}", digest.title, self.view.name),
            description: &digest.summary,
        };
        self.page(&digest.path, "digest_page.html", paths::DIGESTS, &values)
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
        path: paths::href(&paths::short(&short.slug)),
        url: &short.permalink,
        date: display_date(short.date.to_utc(), tz),
        date_iso: short.date.to_rfc3339(),
        updated: short.updated.map(|u| display_date(u.to_utc(), tz)),
        updated_iso: short.updated.map(|u| u.to_rfc3339()),
        reading_minutes: short.reading_minutes,
        track: TagLink {
            slug: &short.track,
            name: track_title,
            path: paths::href(&paths::track(&short.track)),
        },
        tags: short
            .tags
            .iter()
            .map(|t| TagLink {
                slug: &t.slug,
                name: &t.name,
                path: paths::href(&paths::tag(&t.slug)),
            })
            .collect(),
        more_tags: more.len(),
        more_tag_names: more.join(", "),
        short,
    }
}

fn site_view(config: &Config) -> SiteView<'_> {
    let pages = &config.pages;
    SiteView {
        title: &config.site.title,
        description: &config.site.description,
        base_url: config.site.base_url.as_str(),
        language: &config.site.language,
        author: &config.site.author.name,
        name: pages.name.as_deref().unwrap_or(&config.site.title),
        heading: &pages.heading,
        tagline: &pages.tagline,
        intro: pages.intro.as_deref().unwrap_or(&config.site.description),
        cadences: cadence_views(config),
    }
}

/// Every track in config order, with how many of `shorts` it holds.
fn track_links(collection: &Collection, shorts: &[ShortView<'_>]) -> Vec<Link> {
    collection
        .tracks
        .iter()
        .map(|track| Link {
            slug: track.slug.clone(),
            title: track.title.clone(),
            description: track.description.clone(),
            path: paths::href(&paths::track(&track.slug)),
            count: shorts.iter().filter(|s| s.track.slug == track.slug).count(),
        })
        .collect()
}

/// Every tag of `shorts` by slug, with how many of them carry it.
fn tag_links(shorts: &[ShortView<'_>]) -> Vec<Link> {
    let mut tags: BTreeMap<&str, Link> = BTreeMap::new();
    for short in shorts {
        for tag in &short.short.tags {
            tags.entry(&tag.slug)
                .or_insert_with(|| Link {
                    slug: tag.slug.clone(),
                    title: tag.name.clone(),
                    description: String::new(),
                    path: paths::href(&paths::tag(&tag.slug)),
                    count: 0,
                })
                .count += 1;
        }
    }
    tags.into_values().collect()
}

/// The links of every feed by its folder, the digest archive's included;
/// `name` is the site's.
fn feed_links_by_dir(
    feeds: &[Feed<'_>],
    name: &str,
    config: &Config,
) -> HashMap<String, FeedLinks> {
    let archive_feed = archive_feed_shell(name, config);
    // Archive documents are reached from their feed, never linked by a page.
    feeds
        .iter()
        .filter(|feed| !feed.is_archive())
        .chain([&archive_feed])
        .map(|feed| (feed.dir.clone(), feed_links(feed, config)))
        .collect()
}

/// Each asset's path with its content hash.
fn asset_paths(templates: &PageTemplates) -> BTreeMap<&'static str, String> {
    templates
        .assets
        .iter()
        .map(|(name, text)| {
            let path = format!("{}?v={}", paths::asset(name), short_hash(text));
            (*name, path)
        })
        .collect()
}

fn feed_links(feed: &Feed<'_>, config: &Config) -> FeedLinks {
    let url = |format| feed.url(&config.site, format);
    let main = feeds::MAIN_FORMAT;
    FeedLinks {
        title: feed.title.clone(),
        url: url(main),
        path: paths::href(&feed.path(main)),
        formats: FEED_FORMATS
            .iter()
            .map(|format| FormatLink {
                label: format.label,
                short_label: format.short_label,
                media_type: format.media_type,
                url: url(format),
            })
            .collect(),
    }
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

/// Every tag in a search index that [`search_index`] wrote, by slug, once
/// each, with the name of its first use. `shorts serve` offers these on the
/// preferences page: read from what `publish` last built, they follow every
/// build without a restart and without loading the content.
pub fn search_index_tags(index: &[u8]) -> Result<Vec<Tag>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Item {
        tags: Vec<String>,
        tag_names: Vec<String>,
    }
    let items: Vec<Item> = serde_json::from_slice(index)?;
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    for item in items {
        for (slug, name) in item.tags.into_iter().zip(item.tag_names) {
            tags.entry(slug).or_insert(name);
        }
    }
    Ok(tags
        .into_iter()
        .map(|(slug, name)| Tag { slug, name })
        .collect())
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
    /// The author's note, rendered (`note.html`).
    note: Option<&'a crate::model::DigestNote>,
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
    digests: &'a [ArchivedDigest],
    site: &'a Site<'a>,
    config: &Config,
) -> Vec<DigestView<'a>> {
    digests
        .iter()
        .rev()
        .map(|digest| {
            let ids: HashSet<&str> = digest.short_ids.iter().map(String::as_str).collect();
            let carried: Vec<&ShortView<'a>> = site
                .shorts
                .iter()
                .filter(|s| ids.contains(s.short.id.as_str()))
                .collect();
            let sections = archive_sections(&carried, site, config);
            let path = paths::digest(digest.number);
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
                note: digest.note.as_ref(),
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

/// The archive as a feed: one entry per digest, linking its page; every
/// digest, so the feed says it is complete (RFC 5005 `fh:complete`) and a
/// reader that keeps entries can drop the ones no longer there.
fn digest_feed(
    archive: &[DigestView<'_>],
    site: &Site<'_>,
    config: &Config,
) -> Result<Vec<OutputFile>, PageError> {
    let entries: Vec<Entry<'_>> = archive
        .iter()
        .map(|digest| {
            let published = digest.slot;
            Entry {
                url: digest.url.as_str().into(),
                id: digest.url.as_str().into(),
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
        .unwrap_or(site.updated);
    let feed = Feed {
        entries: entries.iter().collect(),
        updated,
        history: History {
            complete: true,
            ..History::default()
        },
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
        dir: paths::DIGESTS.to_string(),
        page_url: base.join(paths::DIGESTS).unwrap_or_else(|_| base.clone()),
        entries: Vec::new(),
        // Only `digest_feed` writes a date; autodiscovery has none.
        updated: DateTime::<Utc>::MIN_UTC.fixed_offset(),
        history: History::default(),
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
        let Some(dir) = paths::page_folder(path) else {
            continue;
        };
        if dir.is_empty() {
            continue; // the root only sends readers on to the index
        }
        xml.push_str(&format!(
            "  <url><loc>{}</loc></url>\n",
            escape_html(&config.site.url(&paths::href(dir)))
        ));
    }
    xml.push_str("</urlset>\n");
    xml.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_index_gives_each_tag_once_by_slug() {
        let index = br#"[{"slug":"a","title":"A","summary":"","track":"llm","track_title":"LLMs","tags":["rust","kv-cache"],"tag_names":["Rust","KV cache"]},
            {"slug":"b","title":"B","summary":"","track":"rag","track_title":"RAG","tags":["rust"],"tag_names":["rust"]}]"#;
        let tag = |slug: &str, name: &str| Tag {
            slug: slug.into(),
            name: name.into(),
        };
        assert_eq!(
            search_index_tags(index).unwrap(),
            [tag("kv-cache", "KV cache"), tag("rust", "Rust")]
        );
        assert_eq!(search_index_tags(b"[]\n").unwrap(), []);
        assert!(search_index_tags(b"{\"tags\": 1}").is_err());
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
