//! Where everything lives on the site: every output path, and every path a
//! link points at (pages, feeds, assets and `shorts serve`'s endpoints),
//! below the site root; `Site::url` makes one absolute.
//!
//! Folders end in `/` and hold an `index.html`; a feed's files sit in the
//! folder of the page it belongs to. Paths are returned as written to disk;
//! [`href`] percent-encodes one for a relative link. Nothing here renders,
//! writes or knows the feed formats (their file names are in
//! `feeds::FEED_FORMATS`).

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// The root page, which only sends readers on to [`INDEX`].
pub const HOME: &str = "";
/// The shorts index; each short's page is below it.
pub const INDEX: &str = "shorts/";
/// The list of tracks; each track's page is below it.
pub const TRACKS: &str = "tracks/";
/// The list of tags; each tag's page is below it.
pub const TAGS: &str = "tags/";
/// The digest archive, with its feeds; each digest's page is below it.
pub const DIGESTS: &str = "digests/";
/// The folder of the whole site's feeds.
pub const SITE_FEEDS: &str = "";
/// The file name of a folder's page.
pub const PAGE_FILE: &str = "index.html";
/// The page served for any missing path.
pub const NOT_FOUND: &str = "404.html";
pub const SITEMAP: &str = "sitemap.xml";
/// The stylesheet of a feed opened in a browser: the page [`FEED_TRANSFORM`]
/// makes of it, or the XML itself where the browser has no XSLT.
pub const FEED_STYLESHEET: &str = "feed.css";
/// The XSLT stylesheet that turns an XML feed opened in a browser into a page.
pub const FEED_TRANSFORM: &str = "feed.xsl";
/// That page, written beside each feed's files for browsers without XSLT.
pub const FEED_PAGE: &str = "feed.html";
/// The search index the index page's script loads, next to that page.
pub const SEARCH_INDEX_FILE: &str = "search.json";
/// What `serve` needs to draw its pages like the site's (written by the
/// build, never served): see `server::pages`.
pub const SERVER_PAGE_CONTEXT: &str = ".shorts/page-context.json";
/// Every address the build published (short slugs and their aliases) with
/// the id of the short there, switched live with the build: see
/// `crate::published`.
pub const PUBLISHED: &str = ".shorts/published.tsv";
/// The output folder `serve` never serves from.
pub const PRIVATE_OUTPUT_DIR: &str = ".shorts";
/// `shorts serve`'s endpoints, below the site root: the sign-up form posts
/// to the first, the emails link the rest with a signed `token`.
pub const SUBSCRIBE: &str = "subscribe";
pub const CONFIRM: &str = "confirm";
pub const UNSUBSCRIBE: &str = "unsubscribe";
pub const PREFERENCES: &str = "preferences";
/// Where relays report bounces and complaints (`[inbound.webhooks]`).
pub const WEBHOOK_POSTMARK: &str = "webhooks/postmark";
pub const WEBHOOK_SES: &str = "webhooks/ses";

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

/// The page of the short `slug`.
pub fn short(slug: &str) -> String {
    format!("{INDEX}{slug}/")
}

/// The folder of archive document `page` (1 the oldest) of the feed in
/// `dir`: RFC 5005 feed history.
pub fn feed_archive(dir: &str, page: usize) -> String {
    format!("{dir}archive/{page}/")
}

/// The page and feeds of the track `slug`.
pub fn track(slug: &str) -> String {
    format!("{TRACKS}{slug}/")
}

/// The page and feeds of the tag `slug`.
pub fn tag(slug: &str) -> String {
    format!("{TAGS}{slug}/")
}

/// The archive page of digest number `number`.
pub fn digest(number: i64) -> String {
    format!("{DIGESTS}{number}/")
}

/// The search index: [`SEARCH_INDEX_FILE`] in the shorts index's folder.
pub fn search_index() -> String {
    format!("{INDEX}{SEARCH_INDEX_FILE}")
}

/// A page asset (stylesheet, script) by file name.
pub fn asset(name: &str) -> String {
    format!("assets/{name}")
}

/// The feed file `file` of the feeds in folder `dir` (one of [`SITE_FEEDS`],
/// [`track`], [`tag`], [`DIGESTS`]).
pub fn feed_file(dir: &str, file: &str) -> String {
    format!("{dir}{file}")
}

/// The file a page is written to: [`PAGE_FILE`] in a folder, else `path` itself.
pub fn page_file(path: &str) -> String {
    if path.is_empty() || path.ends_with('/') {
        format!("{path}{PAGE_FILE}")
    } else {
        path.to_string()
    }
}

/// The folder whose page `file` is, if it is one.
pub fn page_folder(file: &str) -> Option<&str> {
    file.strip_suffix(PAGE_FILE)
}

/// `../` once per folder between `file` and the site root: what a relative
/// link from `file` starts with.
pub fn up_to_root(file: &str) -> String {
    "../".repeat(file.matches('/').count())
}

/// `path` with each segment percent-encoded, for use in an `href`.
pub fn href(path: &str) -> String {
    path.split('/')
        .map(|segment| utf8_percent_encode(segment, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// The page that asks before unsubscribing; the form posts back to it.
pub fn unsubscribe(token: &str) -> String {
    with_token(UNSUBSCRIBE, token)
}

/// The page where a subscriber picks tracks; the form posts back to it.
pub fn preferences(token: &str) -> String {
    with_token(PREFERENCES, token)
}

/// The link in the confirmation email.
pub fn confirm(token: &str) -> String {
    with_token(CONFIRM, token)
}

fn with_token(endpoint: &str, token: &str) -> String {
    format!("{endpoint}?token={token}")
}

/// The server's route for `endpoint`: the site root is the server's root.
pub fn route(endpoint: &str) -> String {
    format!("/{endpoint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_root_climbs_one_level_per_folder() {
        assert_eq!(up_to_root("index.html"), "");
        assert_eq!(up_to_root("shorts/index.html"), "../");
        assert_eq!(up_to_root("shorts/kv-cache/index.html"), "../../");
    }

    #[test]
    fn paths_are_percent_encoded_for_hrefs() {
        assert_eq!(href(&tag("kv-cache")), "tags/kv-cache/");
        assert_eq!(href(&tag("ünï")), "tags/%C3%BCn%C3%AF/");
    }

    #[test]
    fn pages_are_folders_with_an_index() {
        assert_eq!(page_file(HOME), "index.html");
        assert_eq!(page_file(&short("a")), "shorts/a/index.html");
        assert_eq!(page_file(NOT_FOUND), "404.html");
        assert_eq!(page_folder("shorts/a/index.html"), Some("shorts/a/"));
        assert_eq!(search_index(), "shorts/search.json");
        assert_eq!(digest(7), "digests/7/");
        assert_eq!(unsubscribe("t"), "unsubscribe?token=t");
        assert_eq!(route(CONFIRM), "/confirm");
    }
}
