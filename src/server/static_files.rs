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
//! inside `public/` once symlinks are resolved; anything else is a 404.
//! What a path names is remembered while its generation is live
//! ([`super::file_cache`]), so a new build is served at once.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::encoding::{self, Encoding};
use super::file_cache::LiveFile;
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

/// A request path in the one form all its spellings share (percent-decoded,
/// empty segments dropped, a trailing `/` kept), if it may name a file at
/// all: no `..`, backslash or NUL, nothing in the build's private folder.
/// `/tags/x/`, `//tags//x/` and `/tags/%78/` are all `tags/x/`.
pub fn normal_form(request_path: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(request_path)
        .decode_utf8()
        .ok()?;
    if decoded.contains(['\\', '\0']) {
        return None;
    }
    let relative = Path::new(decoded.trim_start_matches('/'));
    let mut normal = String::with_capacity(decoded.len());
    for component in relative.components() {
        let Component::Normal(name) = component else {
            return None;
        };
        if !normal.is_empty() {
            normal.push('/');
        }
        normal.push_str(name.to_str()?);
    }
    if relative.starts_with(paths::PRIVATE_OUTPUT_DIR) {
        return None;
    }
    if request_path.ends_with('/') {
        normal.push('/');
    }
    Some(normal)
}

/// The file (or folder) that `normal` (a [`normal_form`]) names inside
/// `root`, whose symbolic links resolve to `real_root`.
pub fn resolve(root: &Path, real_root: &Path, normal: &str) -> Option<Resolved> {
    let mut path = root.join(normal.trim_end_matches('/'));
    let folder = path.is_dir();
    if folder {
        path.push(paths::PAGE_FILE);
    }
    // Symlinks may point anywhere: what counts is where the file really is.
    let real = path.canonicalize().ok()?;
    if !(real.starts_with(real_root) && real.is_file()) {
        return None;
    }
    if folder && !normal.is_empty() && !normal.ends_with('/') {
        return Some(Resolved::AddSlash);
    }
    Some(Resolved::File(real))
}

/// For an XML feed at `path`, the page shown to a browser opening it:
/// `feed.html` beside it, if there is one inside `real_root`.
pub fn feed_page(path: &Path, real_root: &Path) -> Option<PathBuf> {
    feed_format(path).filter(|feed| negotiated(feed))?;
    let page = path.with_file_name(paths::FEED_PAGE).canonicalize().ok()?;
    (page.starts_with(real_root) && page.is_file()).then_some(page)
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
        let q = encoding::weight(parts);
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

/// A file's headers, made once for as long as its generation is live:
/// every answer for it picks from these.
pub struct FileHeaders {
    /// Indexed by [`etag_index`]: for feed readers or browsers, whole or
    /// compressed.
    etags: [HeaderValue; 4],
    last_modified: HeaderValue,
    modified_secs: u64,
    length: HeaderValue,
    content_type: HeaderValue,
    /// An XML feed, answered to browsers with its page (or as
    /// `application/xml` without one).
    negotiated: Option<&'static FeedFormat>,
    compressible: bool,
}

impl FileHeaders {
    pub fn of(path: &Path, len: u64, modified: SystemTime) -> FileHeaders {
        let etag_value = |variant, weak| {
            let tag = etag(len, modified, variant);
            let tag = if weak { format!("W/{tag}") } else { tag };
            HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""))
        };
        let kind = content_type(path);
        FileHeaders {
            etags: [
                etag_value("", false),
                etag_value("", true),
                etag_value("-browser", false),
                etag_value("-browser", true),
            ],
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(modified))
                .unwrap_or(HeaderValue::from_static("")),
            modified_secs: modified
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            length: HeaderValue::from(len),
            content_type: HeaderValue::from_str(&kind)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            negotiated: feed_format(path).filter(|feed| negotiated(feed)),
            compressible: kind.starts_with("text/")
                || kind.contains("xml")
                || kind.contains("json"),
        }
    }
}

fn etag_index(for_browser: bool, compressed: bool) -> usize {
    usize::from(for_browser) * 2 + usize::from(compressed)
}

fn not_modified(request: &HeaderMap, etag: &HeaderValue, modified_secs: u64) -> bool {
    if let Some(tags) = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2), and
        // compares weakly (§13.1.2).
        let ours = etag.to_str().unwrap_or("").trim_start_matches("W/");
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
    since.is_some_and(|since| {
        since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) >= modified_secs
    })
}

/// Whether [`serve_file`] gives `request` its final answer for `file`:
/// all but a large text file to a client that takes it compressed, which
/// the compression layer compresses as it is sent.
pub fn answered_whole(file: &LiveFile, request: &HeaderMap) -> bool {
    let whole = |file: &LiveFile| file.bytes.is_some() || !file.headers.compressible;
    (whole(file) && file.page.as_deref().is_none_or(whole))
        || encoding::preferred(request).is_none()
}

/// Answers a GET or HEAD request for `file`. A browser opening an XML feed
/// gets the feed's page (`feed.html`, written by the build) at the feed's
/// address, or, from an older build without one, the feed as
/// `application/xml` so its XSLT applies.
pub async fn serve_file(
    file: &LiveFile,
    request: &HeaderMap,
    cache_control: &HeaderValue,
) -> Response {
    let for_browser = file
        .headers
        .negotiated
        .is_some_and(|feed| opened_in_browser(request, feed));
    let (sent, xml_to_browser) = match (&file.page, for_browser) {
        (Some(page), true) => (page.as_ref(), false),
        (None, true) => (file, true),
        (_, false) => (file, false),
    };
    let made = &sent.headers;
    let encoding = encoding::preferred(request).filter(|_| made.compressible);
    // A compressed copy is not byte-identical, so its validator is weak (as
    // nginx does); conditional requests compare weakly and still match.
    let etag = &made.etags[etag_index(for_browser, encoding.is_some())];
    let mut headers = HeaderMap::with_capacity(10);
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::LAST_MODIFIED, made.last_modified.clone());
    headers.insert(header::CACHE_CONTROL, cache_control.clone());
    if file.headers.negotiated.is_some() {
        headers.append(header::VARY, HeaderValue::from_static(FEED_VARY));
    }
    if made.compressible {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if not_modified(request, etag, made.modified_secs) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let content_type = if xml_to_browser {
        HeaderValue::from_static(FEED_FOR_BROWSERS)
    } else {
        made.content_type.clone()
    };
    headers.insert(header::CONTENT_TYPE, content_type);
    // HEAD gets GET's headers; hyper sends no body for it.
    match body_of(sent, encoding, &mut headers).await {
        Some(body) => (StatusCode::OK, headers, body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `file`'s bytes as sent, in `encoding` if it has a copy in it, with the
/// headers that say so; `None` if a large file cannot be opened.
async fn body_of(
    file: &LiveFile,
    encoding: Option<Encoding>,
    headers: &mut HeaderMap,
) -> Option<Body> {
    let copy = match encoding {
        Some(encoding) => file.compressed(encoding).await.map(|copy| (encoding, copy)),
        None => None,
    };
    let length = file.headers.length.clone();
    Some(match (copy, &file.bytes) {
        (Some((encoding, copy)), _) => {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(encoding.name()),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(copy.len()));
            Body::from(copy)
        }
        (None, Some(bytes)) => {
            headers.insert(header::CONTENT_LENGTH, length);
            Body::from(bytes.clone())
        }
        // Read as it is sent: a large file is never all in memory.
        (None, None) => {
            let opened = tokio::fs::File::open(&file.path).await.ok()?;
            headers.insert(header::CONTENT_LENGTH, length);
            Body::from_stream(tokio_util::io::ReaderStream::new(opened))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("public");
        let resolve = |path| {
            normal_form(path)
                .and_then(|normal| resolve(&public, &public.canonicalize().unwrap(), &normal))
        };
        let root = public.clone();
        std::fs::create_dir_all(root.join("tags/x")).unwrap();
        std::fs::write(root.join("rss.xml"), "x").unwrap();
        std::fs::write(root.join("tags/x/index.html"), "x").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "no").unwrap();
        std::fs::create_dir_all(root.join(".shorts")).unwrap();
        std::fs::write(root.join(paths::SERVER_PAGE_CONTEXT), "{}").unwrap();
        assert!(resolve("/rss.xml").is_some());
        assert_eq!(
            resolve("/tags/x/"),
            Some(Resolved::File(
                root.join("tags/x/index.html").canonicalize().unwrap()
            )),
            "folders serve index.html"
        );
        assert_eq!(resolve("/tags/x"), Some(Resolved::AddSlash));
        assert_eq!(resolve("/tags"), None, "no index.html, no page");
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
            assert!(resolve(bad).is_none(), "{bad}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt"))
                .unwrap();
            assert!(
                resolve("/link.txt").is_none(),
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
