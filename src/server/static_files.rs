//! Files from `public/` as a well-run static server sends them: the right
//! `Content-Type`, a strong `ETag` and `Last-Modified`, `304 Not Modified`
//! for conditional requests, `Cache-Control` from config.
//!
//! RSS and Atom are sent as their own types to feed readers, but as
//! `application/xml` to a browser opening them (`Sec-Fetch-Dest: document`,
//! or an `Accept` preferring HTML): Chromium shows the feed types as plain
//! text and applies the feed's stylesheets only to XML. Both answers carry
//! `Vary`, and each has its own `ETag`, so caches keep them apart.
//!
//! A path is percent-decoded, must not contain `..` or a backslash, must
//! not be in the build's private folder (`.shorts/`), and must still be
//! inside `public/` once symlinks are resolved; anything else is a 404. Files are read at request time, so a new build is served at once.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::paths;
use crate::render::feeds::FeedFormat;

/// What a request path names inside `root`.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    File(PathBuf),
    /// A folder asked for without its trailing slash: the page's relative
    /// links only work from `path/`, so the client is sent there.
    AddSlash,
}

/// `root` with its symbolic links resolved. `public` is a link to the
/// current generation, so the answer changes only when a build switches it:
/// it is kept until the link's target changes, one `readlink` a request
/// instead of a walk of the whole path.
fn canonical_root(root: &Path) -> Option<PathBuf> {
    static KNOWN: Mutex<Option<(PathBuf, Option<PathBuf>, PathBuf)>> = Mutex::new(None);
    let target = std::fs::read_link(root).ok();
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((path, seen, canonical)) = known.as_ref()
        && path == root
        && *seen == target
        && target.is_some()
    {
        return Some(canonical.clone());
    }
    let canonical = root.canonicalize().ok()?;
    *known = Some((root.to_path_buf(), target, canonical.clone()));
    Some(canonical)
}

/// The file (or folder) for a request path, if it is inside `root`.
pub fn resolve(root: &Path, request_path: &str) -> Option<Resolved> {
    let decoded = percent_encoding::percent_decode_str(request_path)
        .decode_utf8()
        .ok()?;
    if decoded.contains(['\\', '\0']) {
        return None;
    }
    let relative = Path::new(decoded.trim_start_matches('/'));
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        || relative.starts_with(paths::PRIVATE_OUTPUT_DIR)
    {
        return None;
    }
    let mut path = root.join(relative);
    let folder = path.is_dir();
    if folder {
        path.push(paths::PAGE_FILE);
    }
    // Symlinks may point anywhere: what counts is where the file really is.
    let real = path.canonicalize().ok()?;
    let real_root = canonical_root(root)?;
    if !(real.starts_with(&real_root) && real.is_file()) {
        return None;
    }
    if folder && !request_path.ends_with('/') {
        return Some(Resolved::AddSlash);
    }
    Some(Resolved::File(real))
}

/// The media type for a file name: a feed's own (every feed is UTF-8),
/// else by extension.
pub fn content_type(path: &Path) -> Cow<'static, str> {
    match feed_format(path) {
        Some(feed) => format!("{}; charset=utf-8", feed.media_type).into(),
        None => by_extension(path).into(),
    }
}

fn feed_format(path: &Path) -> Option<&'static FeedFormat> {
    FeedFormat::for_file(path.file_name().and_then(|n| n.to_str()).unwrap_or(""))
}

/// What a browser gets for an XML feed it opens: a type it renders as XML,
/// through the feed's `<?xml-stylesheet?>`.
const FEED_FOR_BROWSERS: &str = "application/xml; charset=utf-8";
/// The request headers that choose between a feed's two answers.
const FEED_VARY: &str = "Accept, Sec-Fetch-Dest";

/// The XML feed formats, whose type Chromium shows as text; a JSON Feed
/// reads the same either way.
fn negotiated(feed: &FeedFormat) -> bool {
    feed.media_type.ends_with("+xml")
}

/// Whether the request is a browser opening `feed` to read it: a
/// navigation (`Sec-Fetch-Dest: document`), or, from a browser too old to
/// say so, an `Accept` that ranks HTML above the feed's type. A reader
/// that sends no `Accept`, or `*/*`, gets the feed.
fn opened_in_browser(request: &HeaderMap, feed: &FeedFormat) -> bool {
    let value = |name| request.get(name).and_then(|v| v.to_str().ok());
    if value("sec-fetch-dest").is_some_and(|d| d.trim().eq_ignore_ascii_case("document")) {
        return true;
    }
    value(header::ACCEPT.as_str())
        .is_some_and(|accept| quality(accept, "text/html") > quality(accept, feed.media_type))
}

/// The weight `accept` gives `media_type` (RFC 9110 §12.5.1): that of the
/// most specific range that matches it, 0 if none does.
fn quality(accept: &str, media_type: &str) -> f32 {
    let (kind, _) = media_type.split_once('/').unwrap_or((media_type, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let specificity = if name == media_type {
            3
        } else if name.strip_suffix("/*") == Some(kind) {
            2
        } else if name == "*/*" {
            1
        } else {
            continue;
        };
        // A weight that does not parse counts as the default, 1.
        let q = parts
            .filter_map(|p| {
                let p = p.trim();
                p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
            })
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

fn by_extension(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" | "xsl" => "application/xml; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// `"<size>-<mtime in ns><variant>"`, like nginx: it changes whenever the
/// bytes do, because `shorts build` rewrites a file only when its bytes
/// change. `variant` tells a feed's answer to browsers from its own.
fn etag(len: u64, modified: SystemTime, variant: &str) -> String {
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}{variant}\"")
}

/// How a file is sent: its type and, for an XML feed, which of its two
/// answers and the headers that chose it.
struct Representation {
    content_type: Cow<'static, str>,
    etag_variant: &'static str,
    vary: Option<&'static str>,
}

fn representation(path: &Path, request: &HeaderMap) -> Representation {
    match feed_format(path).filter(|feed| negotiated(feed)) {
        Some(feed) if opened_in_browser(request, feed) => Representation {
            content_type: FEED_FOR_BROWSERS.into(),
            etag_variant: "-xml",
            vary: Some(FEED_VARY),
        },
        feed => Representation {
            content_type: content_type(path),
            etag_variant: "",
            vary: feed.map(|_| FEED_VARY),
        },
    }
}

fn accepts_compression(request: &HeaderMap) -> bool {
    request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| matches!(e.split(';').next().map(str::trim), Some("gzip" | "br")))
        })
}

/// What the compression layer compresses: text, XML and JSON.
fn compressible(path: &Path) -> bool {
    let kind = content_type(path);
    kind.starts_with("text/") || kind.contains("xml") || kind.contains("json")
}

fn not_modified(request: &HeaderMap, etag: &str, modified: SystemTime) -> bool {
    if let Some(tags) = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2), and
        // compares weakly (§13.1.2).
        let ours = etag.trim_start_matches("W/");
        return tags == "*"
            || tags
                .split(',')
                .any(|t| t.trim().trim_start_matches("W/") == ours);
    }
    let since = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    // HTTP dates have whole seconds.
    let modified_secs = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    since.is_some_and(|since| {
        since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) >= modified_secs
    })
}

/// Serves `path` (already resolved) for a GET or HEAD request.
pub async fn serve_file(path: &Path, request: &HeaderMap, cache_control: &str) -> Response {
    // A stat of a local file: cheaper inline than a hop to the blocking pool.
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let modified = metadata.modified().unwrap_or(UNIX_EPOCH);
    let sent = representation(path, request);
    let mut tag = etag(metadata.len(), modified, sent.etag_variant);
    // A compressed copy is not byte-identical, so its validator is weak (as
    // nginx does); conditional requests compare weakly and still match.
    if accepts_compression(request) && compressible(path) {
        tag.insert_str(0, "W/");
    }
    let mut headers = HeaderMap::new();
    set(&mut headers, header::ETAG, &tag);
    set(
        &mut headers,
        header::LAST_MODIFIED,
        &httpdate::fmt_http_date(modified),
    );
    set(&mut headers, header::CACHE_CONTROL, cache_control);
    if let Some(vary) = sent.vary {
        set(&mut headers, header::VARY, vary);
    }
    if not_modified(request, &tag, modified) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    set(&mut headers, header::CONTENT_TYPE, &sent.content_type);
    set(
        &mut headers,
        header::CONTENT_LENGTH,
        &metadata.len().to_string(),
    );
    // HEAD gets GET's answer: hyper sends no body for it, and the
    // compression layer then says the same `Content-Encoding` and `Vary`
    // as for a GET, which it cannot for an empty body.
    match read_small_or_off_thread(path, metadata.len()).await {
        Ok(bytes) => (StatusCode::OK, headers, Body::from(bytes)).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Files up to this size are read on the async worker: from the page
/// cache that takes microseconds, where a hop to the blocking pool costs
/// more than the read (measured: 1.5× the requests per second).
const READ_INLINE: u64 = 256 * 1024;

async fn read_small_or_off_thread(path: &Path, len: u64) -> std::io::Result<Vec<u8>> {
    if len <= READ_INLINE {
        std::fs::read(path)
    } else {
        tokio::fs::read(path).await
    }
}

fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("public");
        std::fs::create_dir_all(root.join("tags/x")).unwrap();
        std::fs::write(root.join("rss.xml"), "x").unwrap();
        std::fs::write(root.join("tags/x/index.html"), "x").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "no").unwrap();
        std::fs::create_dir_all(root.join(".shorts")).unwrap();
        std::fs::write(root.join(paths::SERVER_PAGE_CONTEXT), "{}").unwrap();
        assert!(resolve(&root, "/rss.xml").is_some());
        assert_eq!(
            resolve(&root, "/tags/x/"),
            Some(Resolved::File(
                root.join("tags/x/index.html").canonicalize().unwrap()
            )),
            "folders serve index.html"
        );
        assert_eq!(resolve(&root, "/tags/x"), Some(Resolved::AddSlash));
        assert_eq!(resolve(&root, "/tags"), None, "no index.html, no page");
        for bad in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/tags/../../secret.txt",
            "/..%2fsecret.txt",
            "/%5c..%5csecret.txt",
            "/rss.xml%00",
            "/.shorts/page-context.json",
            "/%2eshorts/page-context.json",
        ] {
            assert!(resolve(&root, bad).is_none(), "{bad}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt"))
                .unwrap();
            assert!(
                resolve(&root, "/link.txt").is_none(),
                "a symlink out of public/ is not followed"
            );
        }
    }

    #[test]
    fn feed_types() {
        assert_eq!(
            content_type(Path::new("tags/x/rss.xml")),
            "application/rss+xml; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("atom.xml")),
            "application/atom+xml; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("feed.json")),
            "application/feed+json; charset=utf-8"
        );
    }

    fn request(headers: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn browsers_opening_a_feed_are_told_from_feed_readers() {
        let rss = FeedFormat::for_file("rss.xml").unwrap();
        let browsers = [
            // Chromium 148, Firefox and Safari navigating, as they send it.
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,\
             image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "text/html, */*;Q=0.5",
        ];
        for accept in browsers {
            assert!(
                opened_in_browser(&request(&[("accept", accept)]), rss),
                "{accept}"
            );
        }
        assert!(opened_in_browser(
            &request(&[("sec-fetch-dest", "document"), ("accept", "*/*")]),
            rss
        ));
        let readers = [
            "application/rss+xml, application/atom+xml;q=0.9, application/xml;q=0.8, */*;q=0.1",
            "application/rss+xml, text/html",
            "*/*",
            "application/xml, text/xml;q=0.9, */*;q=0.8",
            "text/html;q=0.1, application/*",
            "not a media range",
        ];
        for accept in readers {
            assert!(
                !opened_in_browser(&request(&[("accept", accept)]), rss),
                "{accept}"
            );
        }
        assert!(!opened_in_browser(&request(&[]), rss), "no Accept is */*");
        assert!(!opened_in_browser(
            &request(&[("sec-fetch-dest", "empty"), ("accept", "*/*")]),
            rss
        ));
    }

    #[test]
    fn only_xml_feeds_are_negotiated() {
        let negotiated: Vec<&str> = crate::render::feeds::FEED_FORMATS
            .iter()
            .filter(|f| negotiated(f))
            .map(|f| f.file)
            .collect();
        assert_eq!(negotiated, ["rss.xml", "atom.xml"]);
    }
}
