//! `shorts serve` over real HTTP (reqwest, and raw TCP where a client would
//! tidy the path): conditional GET, traversal, and the whole subscription
//! flow with the confirmation and digest going through a real SMTP server.

mod common;
#[path = "common/server.rs"]
mod server;
#[path = "common/smtp.rs"]
mod smtp;

use std::io::{Read, Write};
use std::time::Duration;

use common::{shorts_at, stderr, stdout};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use server::Server;
use shorts::tokens::Purpose;
use smtp::SmtpServer;

const WEEK_1: &str = "2026-06-08T08:00:00Z";

impl Server {
    /// The status line for a request sent byte for byte as given.
    fn raw_status(&self, request_target: &str) -> String {
        let head = self.raw_head(&format!("GET {request_target} HTTP/1.1\r\n"));
        head.lines().next().unwrap_or("").to_string()
    }

    /// The status line and headers of a response to `request` (request line and
    /// headers, without Host and the final blank line), sent byte for byte.
    fn raw_head(&self, request: &str) -> String {
        let address = self.base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "{request}Host: {address}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        text.split("\r\n\r\n").next().unwrap_or("").to_string() + "\r\n"
    }
}

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn feeds_are_served_with_validators_and_304s() {
    let site = common::built("site");
    let server = Server::start(site.path(), WEEK_1);
    let http = client();
    let first = http.get(server.url("/tracks/llm/atom.xml")).send().unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let headers = first.headers().clone();
    assert_eq!(
        headers["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "a strong ETag: {etag}"
    );
    let last_modified = headers["last-modified"].to_str().unwrap().to_string();
    let body = first.text().unwrap();
    assert!(body.contains("<feed"));

    let by_etag = http
        .get(server.url("/tracks/llm/atom.xml"))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(by_etag.status(), StatusCode::NOT_MODIFIED);
    assert!(by_etag.bytes().unwrap().is_empty());
    let by_date = http
        .get(server.url("/tracks/llm/atom.xml"))
        .header("If-Modified-Since", &last_modified)
        .send()
        .unwrap();
    assert_eq!(by_date.status(), StatusCode::NOT_MODIFIED);
    let stale = http
        .get(server.url("/tracks/llm/atom.xml"))
        .header("If-None-Match", "\"other\"")
        .send()
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);

    let head = http.head(server.url("/feed.json")).send().unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-type"],
        "application/feed+json; charset=utf-8"
    );
    assert!(head.bytes().unwrap().is_empty());
    let rss = http.get(server.url("/rss.xml")).send().unwrap();
    assert_eq!(
        rss.headers()["content-type"],
        "application/rss+xml; charset=utf-8"
    );

    // A new build is served without a restart, with a new validator.
    std::fs::remove_file(site.path().join("content/shorts/escaping.md")).unwrap();
    assert!(shorts_at(site.path(), WEEK_1, &["build"]).status.success());
    let after = http
        .get(server.url("/tracks/llm/atom.xml"))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(after.status(), StatusCode::OK);
    assert_ne!(after.headers()["etag"].to_str().unwrap(), etag);
}

/// What Chromium sends when it opens a link (Firefox and Safari send the
/// same `Accept` without the `q=0.7` part, and Safari before 16.4 no
/// `Sec-Fetch-Dest`).
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,\
    image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";
const FEED_VARY: &str = "Accept, Sec-Fetch-Dest";
/// What a browser opening an XML feed is sent: the feed's page.
const PAGE: &str = "text/html; charset=utf-8";
const READER_ACCEPT: &str =
    "application/rss+xml, application/atom+xml;q=0.9, application/xml;q=0.8, */*;q=0.1";

/// The status, `Content-Type`, `Vary` and `ETag` of a GET with `headers`.
fn feed_answer(
    http: &Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String, String, String, Vec<u8>) {
    let mut request = http.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    let header = |name| {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (status, kind, vary, etag) = (
        response.status(),
        header("content-type"),
        header("vary"),
        header("etag"),
    );
    (status, kind, vary, etag, response.bytes().unwrap().to_vec())
}

#[test]
fn a_feed_opened_in_a_browser_comes_as_its_page_and_each_answer_revalidates_alone() {
    let site = common::built("site");
    let server = Server::start(site.path(), WEEK_1);
    let http = client();
    let navigation = [("Sec-Fetch-Dest", "document"), ("Accept", BROWSER_ACCEPT)];
    for (path, own) in [
        ("/rss.xml", "application/rss+xml; charset=utf-8"),
        (
            "/tracks/llm/atom.xml",
            "application/atom+xml; charset=utf-8",
        ),
    ] {
        let url = server.url(path);
        let reader = feed_answer(&http, &url, &[("Accept", READER_ACCEPT)]);
        assert_eq!(
            (reader.0, reader.1.as_str()),
            (StatusCode::OK, own),
            "{path}"
        );
        assert!(reader.2.starts_with(FEED_VARY), "{path}: Vary {}", reader.2);
        let browser = feed_answer(&http, &url, &navigation);
        assert_eq!(
            (browser.0, browser.1.as_str()),
            (StatusCode::OK, PAGE),
            "{path}: the feed's page, not XML for an XSLT Chromium is removing"
        );
        assert!(
            browser.2.starts_with(FEED_VARY),
            "{path}: Vary {}",
            browser.2
        );
        let page = path
            .replace("rss.xml", "feed.html")
            .replace("atom.xml", "feed.html");
        let page = std::fs::read(site.path().join("public").join(&page[1..])).unwrap();
        assert!(browser.4 == page, "{path}: the folder's feed.html");
        assert_ne!(browser.3, reader.3, "{path}: each answer has its own ETag");
        // A browser that sends no Sec-Fetch-Dest, by its Accept alone; a
        // client that says nothing gets the feed.
        let old_browser = feed_answer(&http, &url, &[("Accept", BROWSER_ACCEPT)]);
        assert_eq!(old_browser.1, PAGE, "{path}");
        assert_eq!(feed_answer(&http, &url, &[]).1, own, "{path}");

        // 304 only for the answer the validator came with.
        let as_reader = [("Accept", READER_ACCEPT)];
        for (headers, ours, theirs, kind) in [
            (&navigation[..], &browser.3, &reader.3, PAGE),
            (&as_reader[..], &reader.3, &browser.3, own),
        ] {
            let with = |etag: &str| {
                let mut all = headers.to_vec();
                all.push(("If-None-Match", etag));
                feed_answer(&http, &url, &all)
            };
            let again = with(ours);
            assert_eq!(again.0, StatusCode::NOT_MODIFIED, "{path} {headers:?}");
            assert_eq!(&again.3, ours, "{path}: ETag");
            assert!(again.2.starts_with(FEED_VARY), "{path}: Vary {}", again.2);
            let not_ours = with(theirs);
            assert_eq!(
                (not_ours.0, not_ours.1.as_str()),
                (StatusCode::OK, kind),
                "{path}: the other answer's ETag does not validate this one"
            );
        }
        let head = http
            .head(&url)
            .header("Sec-Fetch-Dest", "document")
            .send()
            .unwrap();
        assert_eq!(head.headers()["content-type"], PAGE);
    }

    // Compressed for a browser: both Vary headers and a weak validator.
    let head = server.raw_head(&format!(
        "GET /rss.xml HTTP/1.1\r\nSec-Fetch-Dest: document\r\nAccept: {BROWSER_ACCEPT}\r\n\
         Accept-Encoding: gzip\r\n"
    ));
    assert!(
        head.contains(&format!("\r\ncontent-type: {PAGE}\r\n")),
        "{head}"
    );
    assert!(
        head.contains("\r\nvary: Accept, Sec-Fetch-Dest\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nvary: accept-encoding\r\n"), "{head}");
    assert!(head.contains("\r\netag: W/\""), "{head}");

    // The JSON Feed reads the same in a browser; the stylesheets are XML and CSS.
    let json = feed_answer(&http, &server.url("/feed.json"), &navigation);
    assert_eq!(json.1, "application/feed+json; charset=utf-8");
    assert!(
        !json.2.contains("Sec-Fetch-Dest"),
        "nothing to vary on: {}",
        json.2
    );
    for (file, kind) in [
        ("/feed.xsl", "application/xml; charset=utf-8"),
        ("/feed.css", "text/css; charset=utf-8"),
    ] {
        let answer = feed_answer(&http, &server.url(file), &navigation);
        assert_eq!(
            (answer.0, answer.1.as_str()),
            (StatusCode::OK, kind),
            "{file}"
        );
    }
}

#[test]
fn text_is_compressed_for_clients_that_accept_it() {
    let site = common::built("site");
    let server = Server::start(site.path(), WEEK_1);
    let plain = client().get(server.url("/rss.xml")).send().unwrap();
    let etag = plain.headers()["etag"].to_str().unwrap().to_string();
    // HEAD answers as GET does: the same encoding, `Vary` and validator.
    for (encoding, method) in [
        ("gzip", "GET"),
        ("br", "GET"),
        ("gzip", "HEAD"),
        ("br", "HEAD"),
    ] {
        let head = server.raw_head(&format!(
            "{method} /rss.xml HTTP/1.1\r\nAccept-Encoding: {encoding}\r\n"
        ));
        assert!(
            head.contains(&format!("\r\ncontent-encoding: {encoding}\r\n")),
            "{method}: {head}"
        );
        assert!(
            head.contains("\r\nvary: accept-encoding\r\n"),
            "{method}: {head}"
        );
        // A copy made once for the build, so its length is known.
        assert!(head.contains("\r\ncontent-length: "), "{method}: {head}");
        let weak = format!("W/{etag}");
        assert!(
            head.contains(&format!("\r\netag: {weak}\r\n")),
            "a compressed copy has a weak validator: {head}"
        );
        let again = server.raw_head(&format!(
            "GET /rss.xml HTTP/1.1\r\nAccept-Encoding: {encoding}\r\nIf-None-Match: {weak}\r\n"
        ));
        assert!(again.starts_with("HTTP/1.1 304"), "{again}");
    }
    // The copies hold the file's bytes, in as few as the header says.
    let plain = client().get(server.url("/rss.xml")).send().unwrap();
    let plain = plain.bytes().unwrap().to_vec();
    for encoding in ["gzip", "br"] {
        let answer = client()
            .get(server.url("/rss.xml"))
            .header("accept-encoding", encoding)
            .send()
            .unwrap();
        let length: usize = answer.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let copy = answer.bytes().unwrap().to_vec();
        assert_eq!(copy.len(), length, "{encoding}");
        assert!(
            copy.len() < plain.len() / 2,
            "{encoding}: {} bytes",
            copy.len()
        );
        let mut back = Vec::new();
        if encoding == "gzip" {
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&copy[..]), &mut back)
                .unwrap();
        } else {
            brotli::BrotliDecompress(&mut &copy[..], &mut back).unwrap();
        }
        assert!(back == plain, "{encoding}: the copy is the file");
    }
}

#[test]
fn nothing_outside_public_is_served() {
    let site = common::built("site");
    std::fs::write(site.path().join("secret.txt"), "secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        site.path().join("secret.txt"),
        site.path().join("public/link.txt"),
    )
    .unwrap();
    let server = Server::start(site.path(), WEEK_1);
    for target in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/tags/../../secret.txt",
        "/..%5csecret.txt",
        "/link.txt",
        "/../config.toml",
    ] {
        let status = server.raw_status(target);
        assert!(
            status.contains(" 404 ") || status.contains(" 400 "),
            "{target}: {status}"
        );
    }
    assert!(server.raw_status("/rss.xml").contains(" 200 "));
}

#[test]
fn folders_get_their_slash_and_misses_get_the_sites_404_page() {
    let site = common::built("site");
    let server = Server::start(site.path(), WEEK_1);
    let http = client();
    let moved = http.get(server.url("/shorts?tag=rust")).send().unwrap();
    assert_eq!(moved.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(moved.headers()["location"], "/shorts/?tag=rust");
    let index = http.get(server.url("/shorts/")).send().unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert!(index.text().unwrap().contains("<h1>Shorts</h1>"));

    let missing = http
        .get(server.url("/shorts/no-such-short/"))
        .send()
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = missing.text().unwrap();
    assert!(page.contains("<h1>Page not found</h1>"), "{page}");
    // Served at any depth, so its stylesheet link starts at the site's root path.
    assert!(page.contains("href=\"/notes/assets/style.css?v="), "{page}");
}

/// What [`served_reader`] sets up.
type ServedReader = (
    tempfile::TempDir,
    Server,
    Box<dyn shorts::store::Store>,
    shorts::model::Subscriber,
    String,
);

/// A served site with one reader, the database open beside `serve` (as
/// another process would have it), and that reader's preferences page.
fn served_reader() -> ServedReader {
    served_reader_on(common::serve_site(1), &[])
}

/// [`served_reader`] on `site`, the reader added with `follows`
/// (`--tracks …`, `--tags …`).
fn served_reader_on(site: tempfile::TempDir, follows: &[&str]) -> ServedReader {
    let added = shorts_at(
        site.path(),
        WEEK_1,
        &[&["subscribers", "add", "reader@example.org"], follows].concat(),
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let server = Server::start(site.path(), WEEK_1);
    let store = common::store(site.path());
    let reader = store
        .subscriber_by_email("reader@example.org")
        .unwrap()
        .unwrap();
    let secret = common::site_secret(site.path());
    let token = secret.sign(Purpose::Preferences, &reader.token_id, None);
    let url = server.url(&format!("/preferences?token={token}"));
    (site, server, store, reader, url)
}

#[test]
fn static_files_are_served_while_the_database_is_locked() {
    let (_site, server, store, reader, url) = served_reader();

    // Another process (a digest send, an import) holds the write lock.
    let batch = store.batch().unwrap();
    let now = chrono::DateTime::parse_from_rfc3339(WEEK_1)
        .unwrap()
        .to_utc();
    store.set_follows(reader.id, &[], &[], now).unwrap();
    // More writes waiting for it than the server has async workers.
    let waiting = std::thread::available_parallelism().map_or(4, |n| n.get()) + 2;
    let saves: Vec<_> = (0..waiting)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let saved = client()
                    .post(url)
                    .form(&[("tracks", "llm")])
                    .send()
                    .unwrap();
                (saved.status(), saved.text().unwrap())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let feeds = Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut took = Vec::new();
    let mut status = None;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        status = feeds
            .get(server.url("/rss.xml"))
            .send()
            .map(|f| f.status())
            .ok();
        took.push(started.elapsed());
    }
    drop(batch);
    took.sort();
    assert!(
        took[2] < Duration::from_millis(100),
        "a static file waited behind the database: {took:?}"
    );
    assert_eq!(
        status,
        Some(StatusCode::OK),
        "a static file waited behind the database"
    );
    for save in saves {
        let (status, page) = save.join().unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Saved."), "{page}");
    }
}

#[test]
fn subscribe_confirm_digest_one_click_unsubscribe() {
    let smtp = SmtpServer::start();
    let site = common::serve_site(smtp.port);
    let server = Server::start(site.path(), "2026-06-07T12:00:00Z");
    let http = client();

    let signup = http
        .post(server.url("/subscribe"))
        .form(&[("email", "new@example.com"), ("tracks", "llm")])
        .send()
        .unwrap();
    assert_eq!(signup.status(), StatusCode::OK);
    let answer = signup.text().unwrap();
    assert!(answer.contains("Check your inbox"));
    // The same answer for an address that is already there: no enumeration.
    let again = http
        .post(server.url("/subscribe"))
        .form(&[("email", "new@example.com")])
        .send()
        .unwrap();
    assert_eq!(again.text().unwrap(), answer);
    common::mail_queue_drained(site.path());

    let confirmation = smtp
        .received()
        .into_iter()
        .find(|m| m.to == ["new@example.com"])
        .expect("a confirmation email");
    let mail = mailparse::parse_mail(&confirmation.data).unwrap();
    let text = mail.subparts[0].get_body().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/confirm?token="))
        .unwrap()
        .to_string();
    let path = &link[link.find("/confirm").unwrap()..];
    let list = shorts_at(site.path(), WEEK_1, &["subscribers", "list"]);
    assert!(
        stdout(&list).starts_with("pending"),
        "unconfirmed: {}",
        stdout(&list)
    );

    // Consent is recorded: when, from where, and which version of the form's text.
    let store = common::store(site.path());
    let new = store
        .subscriber_by_email("new@example.com")
        .unwrap()
        .unwrap();
    let consent = store.consent(new.id).unwrap().unwrap();
    assert_eq!(
        (consent.source.as_str(), consent.text.as_str()),
        ("web", "1")
    );
    assert!(consent.at.is_some());
    drop(store);
    // A mail scanner fetching the link (GET) confirms nothing: only the button does.
    let confirm_path = path.to_string();
    let scanned = http.get(server.url(&confirm_path)).send().unwrap();
    assert_eq!(scanned.status(), StatusCode::OK);
    assert!(
        scanned
            .text()
            .unwrap()
            .contains("<button type=\"submit\">Confirm my subscription</button>")
    );
    let list = shorts_at(site.path(), WEEK_1, &["subscribers", "list"]);
    assert!(stdout(&list).starts_with("pending"), "{}", stdout(&list));
    let confirmed = http.post(server.url(&confirm_path)).send().unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(confirmed.text().unwrap().contains("You are subscribed"));
    let list = shorts_at(site.path(), WEEK_1, &["subscribers", "list"]);
    assert!(
        stdout(&list).starts_with("active        new@example.com"),
        "{}",
        stdout(&list)
    );

    let out = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let digest = smtp
        .received()
        .into_iter()
        .find(|m| {
            m.to == ["new@example.com"] && m.data.windows(17).any(|w| w == b"List-Unsubscribe:")
        })
        .unwrap();
    let digest = mailparse::parse_mail(&digest.data).unwrap();
    use mailparse::MailHeaderMap;
    let header = digest.headers.get_first_value("List-Unsubscribe").unwrap();
    let https = header
        .split(['<', '>'])
        .find(|p| p.starts_with("https://"))
        .unwrap();
    let path = &https[https.find("/unsubscribe").unwrap()..];

    // The footer's link lets them change tracks.
    let text = digest.subparts[0].get_body().unwrap();
    let preferences = text
        .split_whitespace()
        .find(|w| w.contains("/preferences?token="))
        .unwrap();
    let preferences = &preferences[preferences.find("/preferences").unwrap()..];
    let form = http
        .get(server.url(preferences))
        .send()
        .unwrap()
        .text()
        .unwrap();
    // The second sign-up (no tracks: every track) was the latest choice.
    assert!(
        form.contains("value=\"llm\" checked") && form.contains("value=\"empty-track\" checked"),
        "{form}"
    );
    let saved = http
        .post(server.url(preferences))
        .form(&[("tracks", "retrieval"), ("tracks", "llm")])
        .send()
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    assert!(saved.text().unwrap().contains("Saved."));
    let list = stdout(&shorts_at(site.path(), WEEK_1, &["subscribers", "list"]));
    assert!(
        list.contains("new@example.com                          llm,retrieval"),
        "{list}"
    );
    let none = http
        .post(server.url(preferences))
        .form(&[("other", "x")])
        .send()
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A GET (a link scanner) changes nothing.
    let page = http.get(server.url(path)).send().unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .unwrap()
            .contains("<button type=\"submit\">Unsubscribe</button>")
    );
    assert!(
        stdout(&shorts_at(site.path(), WEEK_1, &["subscribers", "list"])).starts_with("active")
    );
    // RFC 8058 one-click, twice: 200 both times, no redirect.
    for _ in 0..2 {
        assert_eq!(common::one_click(&http, &server.url(path)), StatusCode::OK);
    }
    assert!(
        stdout(&shorts_at(site.path(), WEEK_1, &["subscribers", "list"]))
            .starts_with("unsubscribed")
    );
    // The confirmation link, still within its 48 hours, does not bring them back.
    for used in [
        http.get(server.url(&confirm_path)).send().unwrap(),
        http.post(server.url(&confirm_path)).send().unwrap(),
    ] {
        assert_eq!(used.status(), StatusCode::OK);
        assert!(
            used.text()
                .unwrap()
                .contains("This confirmation link was already used")
        );
    }
    assert!(
        stdout(&shorts_at(site.path(), WEEK_1, &["subscribers", "list"]))
            .starts_with("unsubscribed")
    );

    // The next digest does not reach them.
    let late = "+++\ntitle = \"Week two\"\ndate = 2026-06-10\nsummary = \"S\"\ntrack = \"llm\"\n+++\nBody.\n";
    std::fs::write(site.path().join("content/shorts/week-two.md"), late).unwrap();
    let before = smtp.received().len();
    let out = shorts_at(site.path(), "2026-06-15T08:00:00Z", &["digest", "send"]);
    assert_eq!(stdout(&out), "nothing to send: no active subscribers\n");
    assert_eq!(smtp.received().len(), before);
}

/// The `<label>` of the checkbox `name`=`value` on a preferences page.
fn checkbox<'a>(page: &'a str, name: &str, value: &str) -> Option<&'a str> {
    let at = page.find(&format!("name=\"{name}\" value=\"{value}\""))?;
    let end = at + page[at..].find('>')?;
    Some(&page[at..=end])
}

fn is_checked(page: &str, name: &str, value: &str) -> bool {
    checkbox(page, name, value)
        .unwrap_or_else(|| panic!("no {name} box {value:?} in {page}"))
        .contains("checked")
}

#[test]
fn preferences_follow_tags_the_site_uses_and_the_digest_honours_them() {
    let smtp = SmtpServer::start();
    let (site, _server, store, reader, url) = served_reader_on(
        common::serve_site(smtp.port),
        &["--tracks", "llm", "--tags", "gone-tag"],
    );
    let http = client();
    let get = || http.get(&url).send().unwrap().text().unwrap();

    // Every tag of a published short, and the reader's own tag no short uses.
    let form = get();
    assert!(form.contains("<legend>Tags</legend>"), "{form}");
    for tag in ["c-plus-plus", "kv-cache", "rust", "yaml"] {
        assert!(!is_checked(&form, "tags", tag), "{tag}: {form}");
    }
    assert!(
        form.contains("value=\"yaml\"> YAML</label>"),
        "the tag's name: {form}"
    );
    assert!(is_checked(&form, "tags", "gone-tag"));
    assert!(
        checkbox(&form, "tags", "future-only").is_none()
            && checkbox(&form, "tags", "draft-only").is_none()
    );
    assert!(is_checked(&form, "tracks", "llm") && !is_checked(&form, "tracks", "retrieval"));

    let post = |form: &[(&str, &str)]| http.post(&url).form(form).send().unwrap();
    let unknown = post(&[("tags", "yaml"), ("tags", "future-only")]);
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown
            .text()
            .unwrap()
            .contains("Unknown tag &quot;future-only&quot;")
    );
    let nothing = post(&[("other", "x")]);
    assert_eq!(nothing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        nothing
            .text()
            .unwrap()
            .contains("Choose at least one track or tag")
    );
    assert_eq!(
        store.subscriber_by_id(reader.id).unwrap().unwrap(),
        reader,
        "nothing changed"
    );

    // Tags alone, one of them no longer used by any short but still followed.
    let saved = post(&[("tags", "yaml"), ("tags", "gone-tag")]);
    assert_eq!(saved.status(), StatusCode::OK);
    assert!(saved.text().unwrap().contains("Saved."));
    let form = get();
    assert!(
        is_checked(&form, "tags", "yaml") && is_checked(&form, "tags", "gone-tag"),
        "{form}"
    );
    assert!(
        !is_checked(&form, "tracks", "llm") && !is_checked(&form, "tags", "kv-cache"),
        "{form}"
    );
    let saved = post(&[("tags", "yaml")]);
    assert_eq!(saved.status(), StatusCode::OK);
    let now = store.subscriber_by_id(reader.id).unwrap().unwrap();
    assert_eq!((now.tracks.len(), now.tags), (0, vec!["yaml".to_string()]));
    assert!(
        checkbox(&get(), "tags", "gone-tag").is_none(),
        "unused and no longer followed"
    );

    // A build while serve runs: its new tag is offered without a restart.
    let fresh = "+++\ntitle = \"Fresh\"\ndate = 2026-06-08\nsummary = \"S\"\ntrack = \"llm\"\ntags = [\"Fresh tag\"]\n+++\nBody.\n";
    std::fs::write(site.path().join("content/shorts/fresh.md"), fresh).unwrap();
    let built = shorts_at(site.path(), WEEK_1, &["build"]);
    assert!(built.status.success(), "{}", stderr(&built));
    let form = get();
    assert!(
        !is_checked(&form, "tags", "fresh-tag") && is_checked(&form, "tags", "yaml"),
        "{form}"
    );

    // The digest: only the short tagged yaml, in its track's section.
    let out = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let digest = smtp
        .received()
        .into_iter()
        .find(|m| m.to == ["reader@example.org"])
        .expect("a digest");
    let text = mailparse::parse_mail(&digest.data).unwrap().subparts[0]
        .get_body()
        .unwrap();
    assert!(text.contains("== Retrieval & embeddings =="), "{text}");
    assert!(
        text.contains("YAML front matter") && !text.contains("== LLMs =="),
        "{text}"
    );
    assert!(
        !text.contains("Fresh") && !text.contains("Tom & Jerry"),
        "{text}"
    );
    assert!(text.contains("subscribed to tags: YAML of"), "{text}");
}

#[test]
fn bad_requests_get_clear_4xx_pages() {
    let smtp = SmtpServer::start();
    let site = common::serve_site(smtp.port);
    let server = Server::start(site.path(), WEEK_1);
    let http = client();
    let status = |response: reqwest::blocking::Response| response.status();

    assert_eq!(
        status(http.get(server.url("/unsubscribe")).send().unwrap()),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(
            http.get(server.url("/unsubscribe?token=u.abc..forged"))
                .send()
                .unwrap()
        ),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(
            http.post(server.url("/unsubscribe?token=nonsense"))
                .send()
                .unwrap()
        ),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(
            http.get(server.url("/preferences?token=p.x..y"))
                .send()
                .unwrap()
        ),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(http.get(server.url("/confirm?token=")).send().unwrap()),
        StatusCode::BAD_REQUEST
    );
    let missing = http
        .post(server.url("/subscribe"))
        .form(&[("tracks", "llm")])
        .send()
        .unwrap();
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad_track = http
        .post(server.url("/subscribe"))
        .form(&[("email", "x@example.com"), ("tracks", "nope")])
        .send()
        .unwrap();
    assert_eq!(bad_track.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = bad_track.text().unwrap();
    assert!(page.contains("<p role=\"alert\">Unknown track"), "{page}");
    let cross_site = http
        .post(server.url("/subscribe"))
        .header("Origin", "https://evil.example")
        .form(&[("email", "x@example.com")])
        .send()
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let huge = "email=".to_string() + &"a".repeat(100_000);
    // Its own client: the server closes a connection whose body it refused.
    let oversized = client()
        .post(server.url("/subscribe"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .unwrap();
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(oversized.text().unwrap().contains("<h1>Too large</h1>"));
    assert_eq!(
        status(http.post(server.url("/rss.xml")).send().unwrap()),
        StatusCode::METHOD_NOT_ALLOWED
    );
    // Sign-ups from one address are rate limited.
    let codes: Vec<StatusCode> = (0..8)
        .map(|i| {
            status(
                http.post(server.url("/subscribe"))
                    .form(&[("email", format!("r{i}@example.com"))])
                    .send()
                    .unwrap(),
            )
        })
        .collect();
    assert!(codes.contains(&StatusCode::TOO_MANY_REQUESTS), "{codes:?}");
}

#[test]
fn confirmation_links_expire() {
    let smtp = SmtpServer::start();
    let site = common::serve_site(smtp.port);
    let http = client();
    let link = {
        let server = Server::start(site.path(), WEEK_1);
        http.post(server.url("/subscribe"))
            .form(&[("email", "slow@example.com")])
            .send()
            .unwrap();
        common::mail_queue_drained(site.path());
        let received = smtp.received();
        let mail = mailparse::parse_mail(&received[0].data).unwrap();
        let text = mail.subparts[0].get_body().unwrap();
        let link = text
            .split_whitespace()
            .find(|w| w.contains("/confirm?token="))
            .unwrap()
            .to_string();
        link[link.find("/confirm").unwrap()..].to_string()
    };
    let three_days_later = Server::start(site.path(), "2026-06-11T08:00:00Z");
    let response = http.get(three_days_later.url(&link)).send().unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().unwrap().contains("expired"));
}

/// Five sign-ups from `forwarded_for` (sent as `X-Forwarded-For`), then the sixth's status.
fn sixth_sign_up(
    http: &reqwest::blocking::Client,
    server: &Server,
    forwarded_for: &str,
) -> StatusCode {
    for i in 0..5 {
        let answer = http
            .post(server.url("/subscribe"))
            .header("X-Forwarded-For", forwarded_for)
            .form(&[("email", format!("{i}.{forwarded_for}@example.com"))])
            .send()
            .unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "sign-up {i} from {forwarded_for}"
        );
    }
    http.post(server.url("/subscribe"))
        .header("X-Forwarded-For", forwarded_for)
        .form(&[("email", format!("6.{forwarded_for}@example.com"))])
        .send()
        .unwrap()
        .status()
}

#[test]
fn behind_a_trusted_proxy_the_sign_up_limit_is_per_client_and_forged_hops_are_ignored() {
    let smtp = SmtpServer::start();
    let site = common::serve_site(smtp.port);
    common::edit_config(
        site.path(),
        "[site]",
        "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n\n[site]",
    );
    let server = Server::start(site.path(), WEEK_1);
    let http = client();
    // The test's connections come from 127.0.0.1, a trusted proxy: each
    // forwarded client has its own five sign-ups, not the site's five.
    assert_eq!(
        sixth_sign_up(&http, &server, "198.51.100.1"),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        sixth_sign_up(&http, &server, "198.51.100.2"),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A client that forges a left-most hop is still itself (its own proxy added the right-most).
    let forged = http
        .post(server.url("/subscribe"))
        .header("X-Forwarded-For", "203.0.113.50, 198.51.100.1")
        .form(&[("email", "forger@example.com")])
        .send()
        .unwrap();
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(server);

    // Without trusted proxies, the same headers are ignored: one peer, one limit.
    let plain = common::serve_site(smtp.port);
    let server = Server::start(plain.path(), WEEK_1);
    let codes: Vec<StatusCode> = (0..6)
        .map(|i| {
            http.post(server.url("/subscribe"))
                .header("X-Forwarded-For", format!("198.51.100.{i}"))
                .form(&[("email", format!("p{i}@example.com"))])
                .send()
                .unwrap()
                .status()
        })
        .collect();
    assert_eq!(codes[5], StatusCode::TOO_MANY_REQUESTS, "{codes:?}");
}

/// A client over the limit that goes on posting is refused from memory,
/// without a write to the database each time: even while another process
/// holds the database's write lock, it gets its 429 at once, where a new
/// client waits for the lock (503 on SQLite).
#[test]
fn a_client_over_the_limit_is_refused_without_the_database() {
    let smtp = SmtpServer::start();
    let site = common::serve_site_behind_proxy(smtp.port);
    let server = Server::start(site.path(), WEEK_1);
    let http = client();
    assert_eq!(
        sixth_sign_up(&http, &server, "198.51.100.1"),
        StatusCode::TOO_MANY_REQUESTS
    );
    let store = common::store(site.path());
    // On SQLite, BEGIN IMMEDIATE: the write lock, held until dropped.
    let batch = store.batch().unwrap();
    let form = [("email", "again@example.com")];
    let started = std::time::Instant::now();
    let again = sign_up(&http, &server, &form, Some("198.51.100.1")).0;
    assert_eq!(again, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    if !common::on_postgres() {
        let new = sign_up(&http, &server, &form, Some("198.51.100.2")).0;
        assert_eq!(
            new,
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is locked"
        );
    }
    drop(batch);
}

/// A sign-up posting `form`, from `forwarded_for` when given (as
/// `X-Forwarded-For`): its status and page.
fn sign_up(
    http: &Client,
    server: &Server,
    form: &[(&str, &str)],
    forwarded_for: Option<&str>,
) -> (StatusCode, String) {
    let mut request = http.post(server.url("/subscribe")).form(form);
    if let Some(client) = forwarded_for {
        request = request.header("X-Forwarded-For", client);
    }
    let response = request.send().unwrap();
    (response.status(), response.text().unwrap())
}

/// The site-relative confirmation link in a confirmation email.
fn confirm_path(message: &smtp::Received) -> String {
    let mail = mailparse::parse_mail(&message.data).unwrap();
    let text = mail.subparts[0].get_body().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/confirm?token="))
        .unwrap();
    link[link.find("/confirm").unwrap()..].to_string()
}

fn mails_to(smtp: &SmtpServer, address: &str) -> usize {
    smtp.received()
        .iter()
        .filter(|m| m.to.iter().any(|to| to.eq_ignore_ascii_case(address)))
        .count()
}

#[test]
fn twenty_sign_ups_of_one_address_from_four_clients_send_three_confirmations() {
    let smtp = SmtpServer::start();
    let site = common::serve_site(smtp.port);
    common::edit_config(
        site.path(),
        "[site]",
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n\n[site]",
    );
    let server = Server::start(site.path(), WEEK_1);
    let http = client();
    let answers: Vec<(StatusCode, String)> = (0..20)
        .map(|i| {
            let client = format!("198.51.100.{}", i % 4 + 1);
            // The same address, spelt differently now and then.
            let email = if i % 5 == 0 {
                "Victim@Example.com"
            } else {
                "victim@example.com"
            };
            sign_up(&http, &server, &[("email", email)], Some(&client))
        })
        .collect();
    assert_eq!(answers[0].0, StatusCode::OK);
    assert!(
        answers[0].1.contains("Check your inbox"),
        "{}",
        answers[0].1
    );
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "every answer is the same"
    );
    common::mail_queue_drained(site.path());
    assert_eq!(mails_to(&smtp, "victim@example.com"), 3);
    // The per-client limit still holds: each client has had its five.
    let (status, _) = sign_up(
        &http,
        &server,
        &[("email", "other@example.com")],
        Some("198.51.100.1"),
    );
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    drop(server);

    // The count is in the database: a restarted server sends no fourth.
    let server = Server::start(site.path(), "2026-06-08T20:00:00Z");
    let again = sign_up(
        &http,
        &server,
        &[("email", "victim@example.com")],
        Some("198.51.100.9"),
    );
    assert_eq!(again, answers[0]);
    common::mail_queue_drained(site.path());
    assert_eq!(mails_to(&smtp, "victim@example.com"), 3);
    drop(server);
    // A day after the first three, one more may go.
    let server = Server::start(site.path(), "2026-06-09T08:00:01Z");
    sign_up(&http, &server, &[("email", "victim@example.com")], None);
    common::mail_queue_drained(site.path());
    assert_eq!(mails_to(&smtp, "victim@example.com"), 4);
}

#[test]
fn a_filled_in_honeypot_is_answered_as_usual_and_records_and_sends_nothing() {
    let smtp = SmtpServer::start();
    let site = common::serve_site(smtp.port);
    let index = std::fs::read_to_string(site.path().join("public/shorts/index.html")).unwrap();
    assert!(
        index.contains(
            "<input id=\"subscribe-website\" type=\"text\" name=\"website\" tabindex=\"-1\" autocomplete=\"off\">"
        ),
        "the form has the honeypot field"
    );
    let server = Server::start(site.path(), WEEK_1);
    let http = client();
    let real = sign_up(&http, &server, &[("email", "person@example.com")], None);
    let robot = sign_up(
        &http,
        &server,
        &[
            ("email", "robot@example.com"),
            ("tracks", "llm"),
            ("website", "https://spam.example/"),
        ],
        None,
    );
    assert_eq!(real.0, StatusCode::OK);
    assert_eq!(robot, real, "answered exactly as a real sign-up");
    common::mail_queue_drained(site.path());
    assert_eq!(mails_to(&smtp, "person@example.com"), 1);
    assert_eq!(mails_to(&smtp, "robot@example.com"), 0);
    let store = common::store(site.path());
    assert!(
        store
            .subscriber_by_email("robot@example.com")
            .unwrap()
            .is_none()
    );
    // An empty one, as a person's browser sends it, is a sign-up like any other.
    sign_up(
        &http,
        &server,
        &[("email", "human@example.com"), ("website", "")],
        None,
    );
    common::mail_queue_drained(site.path());
    assert_eq!(mails_to(&smtp, "human@example.com"), 1);
}

#[test]
fn nothing_typed_but_the_address_reaches_the_confirmation_email() {
    let smtp = SmtpServer::start();
    let site = common::serve_site(smtp.port);
    let server = Server::start(site.path(), WEEK_1);
    let http = client();
    let name = "<a href=\"https://evil.example/\">Win a prize</a>\r\nBcc: bcc@evil.example";
    let referrer = "https://evil.example/<script>alert(1)</script>\r\nX-Injected: yes";
    let (status, page) = sign_up(
        &http,
        &server,
        &[
            ("email", "reader@example.com"),
            ("name", name),
            ("referrer", referrer),
        ],
        None,
    );
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("evil.example"), "{page}");
    common::mail_queue_drained(site.path());
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, ["reader@example.com"]);
    // The message as sent, and each part decoded (quoted-printable folds lines).
    let data = &received[0].data;
    let mail = mailparse::parse_mail(data).unwrap();
    let mut text = String::from_utf8_lossy(data).into_owned();
    for part in &mail.subparts {
        text.push_str(&part.get_body().unwrap());
    }
    let text = text.to_lowercase();
    for planted in [
        "evil.example",
        "prize",
        "<script",
        "alert(1)",
        "x-injected",
        "bcc",
    ] {
        assert!(!text.contains(planted), "{planted:?} in the email:\n{text}");
    }
    let store = common::store(site.path());
    let reader = store
        .subscriber_by_email("reader@example.com")
        .unwrap()
        .unwrap();
    assert_eq!(reader.name, "", "the name is not stored either");

    // An address with a header smuggled in is refused, and nothing is sent.
    let (status, _) = sign_up(
        &http,
        &server,
        &[("email", "reader2@example.com\r\nBcc: bcc@evil.example")],
        None,
    );
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(smtp.received().len(), 1);
}

#[test]
fn publish_deletes_pending_sign_ups_older_than_seven_days_and_nothing_else() {
    let smtp = SmtpServer::start();
    let site = common::serve_site(smtp.port);
    let http = client();
    let start = "2026-06-01T12:00:00Z";
    std::fs::write(
        site.path().join("readers.csv"),
        "email,name,tracks,status\nactive@example.com,,,active\nleft@example.com,,,unsubscribed\nbounced@example.com,,,bounced\n",
    )
    .unwrap();
    let imported = shorts_at(
        site.path(),
        start,
        &["subscribers", "import", "readers.csv"],
    );
    assert!(imported.status.success(), "{}", stderr(&imported));
    let old_link = {
        let server = Server::start(site.path(), start);
        sign_up(&http, &server, &[("email", "old@example.com")], None);
        common::mail_queue_drained(site.path());
        confirm_path(&smtp.received()[0])
    };
    {
        let server = Server::start(site.path(), "2026-06-08T12:00:00Z");
        sign_up(&http, &server, &[("email", "recent@example.com")], None);
        common::mail_queue_drained(site.path());
    }
    let listed =
        |when: &str| -> String { stdout(&shorts_at(site.path(), when, &["subscribers", "list"])) };
    // Seven days old to the second: not yet.
    let out = shorts_at(site.path(), "2026-06-08T12:00:00Z", &["-v", "publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(listed(start).contains("old@example.com"));

    let out = shorts_at(site.path(), "2026-06-09T12:00:00Z", &["-v", "publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("deleted 1 pending sign-ups older than 7 days"),
        "{}",
        stderr(&out)
    );
    let list = listed(start);
    assert!(!list.contains("old@example.com"), "{list}");
    for kept in [
        "active@example.com",
        "left@example.com",
        "bounced@example.com",
        "recent@example.com",
    ] {
        assert!(list.contains(kept), "{kept} was deleted:\n{list}");
    }
    // Its confirmation link (still valid, to a server whose clock is at the
    // sign-up) says the subscription is gone.
    let server = Server::start(site.path(), start);
    for response in [
        http.get(server.url(&old_link)).send().unwrap(),
        http.post(server.url(&old_link)).send().unwrap(),
    ] {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(
            response
                .text()
                .unwrap()
                .contains("This subscription no longer exists"),
        );
    }
}

#[test]
fn the_servers_pages_look_like_the_site_and_come_from_its_templates() {
    let smtp = SmtpServer::start();
    let site = common::serve_site(smtp.port);
    let http = client();
    {
        let server = Server::start(site.path(), WEEK_1);
        let response = http
            .get(server.url("/confirm?token=c.x..y"))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let page = response.text().unwrap();
        for expected in [
            // The site's stylesheet, navigation and feed link, as the last
            // build drew them, linked relative to the page.
            "<link rel=\"stylesheet\" href=\"assets/style.css?v=",
            "<a class=\"brand\" href=\"shorts/\">Fixture &lt;Site&gt; &amp; Co</a>",
            "<li><a href=\"rss.xml\">Feed</a></li>",
            "<meta name=\"robots\" content=\"noindex\">",
            "<meta name=\"referrer\" content=\"same-origin\">",
            "<title>This link does not work · Fixture &lt;Site&gt; &amp; Co</title>",
            "<p role=\"alert\">The link",
        ] {
            assert!(page.contains(expected), "{expected} in:\n{page}");
        }
        // The build's context for these pages is not served.
        let private = http
            .get(server.url("/.shorts/page-context.json"))
            .send()
            .unwrap();
        assert_eq!(private.status(), StatusCode::NOT_FOUND);
    }

    // An unsubscribed reader's old link does not ask them to unsubscribe again.
    std::fs::write(
        site.path().join("gone.csv"),
        "email,name,tracks,status\ngone@example.com,,,unsubscribed\n",
    )
    .unwrap();
    let added = shorts_at(site.path(), WEEK_1, &["subscribers", "import", "gone.csv"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let gone = common::store(site.path())
        .subscriber_by_email("gone@example.com")
        .unwrap()
        .unwrap();
    let secret = common::site_secret(site.path());
    let token = secret.sign(Purpose::Unsubscribe, &gone.token_id, None);
    let server = Server::start(site.path(), WEEK_1);
    let page = http
        .get(server.url(&format!("/unsubscribe?token={token}")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("is not subscribed: there is nothing to stop"),
        "{page}"
    );
    assert!(!page.contains("<button"), "{page}");
    drop(server);

    // The site's own template replaces the built-in one.
    let templates = site.path().join("templates/serve");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("message.html"),
        "{% extends \"serve/page.html\" %}{% block content %}<p class=\"mine\">{{ message }}</p>{% endblock content %}",
    )
    .unwrap();
    let server = Server::start(site.path(), WEEK_1);
    let page = http
        .get(server.url("/unsubscribe"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("<p class=\"mine\">The link has no token."),
        "{page}"
    );
    drop(server);

    // A template that cannot render stops `serve` at start, naming the file.
    std::fs::write(
        templates.join("confirm.html"),
        "{% extends \"serve/page.html\" %}{% block content %}{{ emial }}{% endblock content %}",
    )
    .unwrap();
    let out = common::shorts(site.path(), &["serve", "--bind", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("templates/serve/confirm.html:1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn before_any_build_every_page_says_to_build_first() {
    let site = common::site_from("site");
    let server = Server::start(site.path(), WEEK_1);
    let response = client().get(server.url("/shorts/")).send().unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let page = response.text().unwrap();
    assert!(page.contains("<h1>Nothing built yet</h1>"), "{page}");
    assert!(
        page.contains("run `shorts build` (or `shorts publish`)"),
        "{page}"
    );
}

#[test]
fn redirects_stay_on_the_site_and_answers_carry_the_security_headers() {
    let smtp = SmtpServer::start();
    let site = common::serve_site(smtp.port);
    let server = Server::start(site.path(), WEEK_1);
    // `//shorts/` in Location would send the browser to the host "shorts".
    for target in ["//shorts", "///shorts", "/shorts"] {
        let head = server.raw_head(&format!("GET {target} HTTP/1.1\r\n"));
        assert!(head.starts_with("HTTP/1.1 301"), "{target}: {head}");
        assert!(
            head.to_lowercase().contains("\r\nlocation: /shorts/\r\n"),
            "{target}: {head}"
        );
    }
    let http = client();
    let page = http.get(server.url("/shorts/")).send().unwrap();
    let header = |r: &reqwest::blocking::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        header(&page, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(header(&page, "x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(
        header(&page, "content-security-policy").as_deref(),
        Some(shorts::config::DEFAULT_CSP)
    );
    assert_eq!(
        header(&page, "referrer-policy").as_deref(),
        Some("strict-origin-when-cross-origin")
    );
    let feed = http.get(server.url("/rss.xml")).send().unwrap();
    assert_eq!(
        header(&feed, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        header(&feed, "content-security-policy"),
        None,
        "for HTML only"
    );
    // Pages reached by a token are neither cached nor named to other sites.
    for path in [
        "/confirm?token=c.x..y",
        "/unsubscribe?token=u.x..y",
        "/preferences?token=p.x..y",
    ] {
        let private = http.get(server.url(path)).send().unwrap();
        assert_eq!(
            header(&private, "cache-control").as_deref(),
            Some("no-store"),
            "{path}"
        );
        assert_eq!(
            header(&private, "referrer-policy").as_deref(),
            Some("same-origin"),
            "{path}"
        );
    }
    let refused = http.post(server.url("/rss.xml")).send().unwrap();
    assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&refused, "allow").as_deref(), Some("GET, HEAD"));
    drop(server);

    // A site that embeds another's videos turns the policy off.
    common::edit_config(
        site.path(),
        "[site]",
        "[server]\ncontent_security_policy = \"\"\n\n[site]",
    );
    let server = Server::start(site.path(), WEEK_1);
    let page = http.get(server.url("/shorts/")).send().unwrap();
    assert_eq!(header(&page, "content-security-policy"), None);
}

#[test]
fn a_database_locked_for_long_is_a_quick_503_with_retry_after() {
    let (_site, _server, store, reader, url) = served_reader();
    // Another process holds the write lock for longer than serve waits (2 s).
    let batch = store.batch().unwrap();
    let now = chrono::DateTime::parse_from_rfc3339(WEEK_1)
        .unwrap()
        .to_utc();
    store.set_follows(reader.id, &[], &[], now).unwrap();
    let started = std::time::Instant::now();
    let saved = client()
        .post(url)
        .form(&[("tracks", "llm")])
        .send()
        .unwrap();
    let took = started.elapsed();
    drop(batch);
    assert_eq!(saved.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        saved
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("5")
    );
    assert!(saved.text().unwrap().contains("try again in a few seconds"));
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
}

/// `public` is a link to the current generation, and `serve` keeps that
/// link's resolved target: a build that switches it is served at once.
#[test]
fn a_new_build_is_served_at_once() {
    let site = common::built("site");
    let server = Server::start(site.path(), WEEK_1);
    let http = client();
    let index = || {
        http.get(server.url("/shorts/"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    assert!(index().contains("A plain short"));
    let short = site.path().join("content/shorts/plain.md");
    let text = std::fs::read_to_string(&short).unwrap();
    std::fs::write(&short, text.replace("A plain short", "A retitled short")).unwrap();
    let built = shorts_at(site.path(), common::NOW, &["build"]);
    assert!(built.status.success(), "{}", stderr(&built));
    let after = index();
    assert!(after.contains("A retitled short"), "{after}");
    assert!(!after.contains("A plain short"));
}

/// A file in `public/` at a route's path does not hide the route: the
/// static files answered before the router stop at the routes.
#[test]
fn a_file_at_a_route_path_does_not_hide_the_route() {
    let site = common::built("site");
    for route in ["confirm", "unsubscribe", "preferences"] {
        std::fs::write(site.path().join("public").join(route), "a stray file").unwrap();
    }
    let server = Server::start(site.path(), WEEK_1);
    for route in ["confirm", "unsubscribe", "preferences"] {
        let answer = client()
            .get(server.url(&format!("/{route}")))
            .send()
            .unwrap();
        assert_eq!(answer.headers()["cache-control"], "no-store", "/{route}");
        assert!(!answer.text().unwrap().contains("a stray file"), "/{route}");
    }
}

/// A file too large to keep in memory is read as it is sent, whole, and
/// compressed as it goes for a client that takes it so.
#[test]
fn a_large_file_is_sent_whole_plain_or_compressed() {
    let site = common::built("site");
    let line = "<p>A line of a large page, repeated.</p>\n";
    let page: String = (0..20_000).map(|i| format!("{i} {line}")).collect();
    assert!(page.len() > 512 * 1024);
    std::fs::write(site.path().join("public/large.html"), &page).unwrap();
    let server = Server::start(site.path(), WEEK_1);
    let plain = client().get(server.url("/large.html")).send().unwrap();
    assert_eq!(
        plain.headers()["content-length"],
        page.len().to_string().as_str()
    );
    assert!(
        plain.text().unwrap() == page,
        "the plain answer is the file"
    );
    let compressed = client()
        .get(server.url("/large.html"))
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    let copy = compressed.bytes().unwrap().to_vec();
    let mut back = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&copy[..]), &mut back).unwrap();
    assert!(back == page, "the compressed answer is the file");
}

/// From a build without the feeds' pages (an older one), a browser gets
/// the feed itself as `application/xml`, which it renders through the
/// feed's XSLT, with an ETag of its own.
#[test]
fn without_its_page_a_feed_goes_to_browsers_as_xml() {
    let site = common::built("site");
    std::fs::remove_file(site.path().join("public/feed.html")).unwrap();
    let server = Server::start(site.path(), WEEK_1);
    let http = client();
    let url = server.url("/rss.xml");
    let reader = feed_answer(&http, &url, &[("Accept", READER_ACCEPT)]);
    let browser = feed_answer(&http, &url, &[("Sec-Fetch-Dest", "document")]);
    assert_eq!(browser.1, "application/xml; charset=utf-8");
    assert!(browser.2.starts_with(FEED_VARY), "Vary {}", browser.2);
    assert!(browser.4 == reader.4, "the same bytes");
    assert_ne!(browser.3, reader.3, "each answer has its own ETag");
}

/// The metrics line `line` (name, labels and value), or a panic showing them all.
fn assert_metric(exposition: &str, line: &str) {
    assert!(
        exposition.lines().any(|l| l == line),
        "no {line:?} in the metrics:\n{exposition}"
    );
}

/// `serve`'s Prometheus metrics, on their own address: what it answered
/// (requests by route and status, sign-ups by outcome, confirmations,
/// unsubscribes) and what the database holds (the email queue, the last
/// digest), in OpenMetrics text that Prometheus's own parser reads.
#[test]
fn metrics_count_the_answers_and_show_the_queue_and_the_last_digest() {
    let smtp = SmtpServer::start();
    let site = common::serve_site(smtp.port);
    let added = shorts_at(
        site.path(),
        WEEK_1,
        &["subscribers", "add", "reader@example.com"],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let sent = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let server = Server::start_with_metrics(site.path(), WEEK_1);
    let metrics = server.metrics.clone().expect("the metrics' address");
    let http = client();

    let form = |email: &'static str| vec![("email", email), ("tracks", "llm")];
    assert_eq!(
        sign_up(&http, &server, &form("new@example.com"), None).0,
        StatusCode::OK
    );
    let robot = [
        ("email", "robot@example.com"),
        ("website", "http://spam.example"),
    ];
    assert_eq!(sign_up(&http, &server, &robot, None).0, StatusCode::OK);
    let invalid = sign_up(&http, &server, &form("not an address"), None).0;
    assert_eq!(invalid, StatusCode::UNPROCESSABLE_ENTITY);
    let cross_site = http
        .post(server.url("/subscribe"))
        .header("Origin", "https://evil.example")
        .form(&form("victim@example.com"))
        .send()
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    common::mail_queue_drained(site.path());
    let confirmation = smtp
        .received()
        .into_iter()
        .find(|m| m.to == ["new@example.com"])
        .expect("a confirmation");
    let confirmed = http
        .post(server.url(&confirm_path(&confirmation)))
        .send()
        .unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);
    common::mail_queue_drained(site.path());
    // Unsubscribing twice is one unsubscribe.
    let reader = common::store(site.path())
        .subscriber_by_email("reader@example.com")
        .unwrap()
        .unwrap();
    let token = common::site_secret(site.path()).sign(Purpose::Unsubscribe, &reader.token_id, None);
    for _ in 0..2 {
        assert_eq!(
            common::one_click(&http, &server.url(&format!("/unsubscribe?token={token}"))),
            StatusCode::OK
        );
    }
    let page = http.get(server.url("/shorts/")).send().unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    // The site has no metrics, and the metrics' address no site.
    assert_eq!(
        http.get(server.url("/metrics")).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let elsewhere = metrics.replace("/metrics", "/shorts/");
    assert_eq!(
        http.get(&elsewhere).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let scraped = http.get(&metrics).send().unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(
        scraped.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0"),
    );
    let text = scraped.text().unwrap();
    for line in [
        "shorts_sign_ups_total{outcome=\"accepted\"} 1",
        "shorts_sign_ups_total{outcome=\"honeypot\"} 1",
        "shorts_sign_ups_total{outcome=\"invalid\"} 1",
        "shorts_sign_ups_total{outcome=\"cross_site\"} 1",
        "shorts_confirmations_total 1",
        "shorts_unsubscribes_total 1",
        "shorts_http_requests_total{route=\"subscribe\",status=\"200\"} 2",
        "shorts_http_requests_total{route=\"subscribe\",status=\"422\"} 1",
        "shorts_http_requests_total{route=\"subscribe\",status=\"403\"} 1",
        "shorts_http_requests_total{route=\"confirm\",status=\"200\"} 1",
        "shorts_http_requests_total{route=\"unsubscribe\",status=\"200\"} 2",
        "shorts_http_requests_total{route=\"static\",status=\"200\"} 1",
        "shorts_http_requests_total{route=\"static\",status=\"404\"} 1",
        "shorts_http_request_duration_seconds_count{route=\"subscribe\"} 4",
        "shorts_mail_queue{state=\"sent\"} 2",
        "shorts_mail_queue{state=\"queued\"} 0",
        "shorts_database_up 1",
        "shorts_last_digest_number{cadence=\"weekly\"} 1",
        "shorts_last_digest_completed{cadence=\"weekly\"} 1",
        "shorts_last_digest_messages{cadence=\"weekly\",state=\"sent\"} 1",
        "shorts_last_digest_messages{cadence=\"weekly\",state=\"failed\"} 0",
        "shorts_last_digest_events{cadence=\"weekly\",kind=\"unsubscribe\"} 0",
    ] {
        assert_metric(&text, line);
    }
    common::parse_openmetrics(&text);
}
