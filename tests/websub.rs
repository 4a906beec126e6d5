//! WebSub end to end: a real hub (PyPI's Flask-WebSub, started by
//! `tests/websub_hub.py`), the site served by `shorts serve`, and a
//! subscriber callback in this test. `publish` and `schedule` ping the hub
//! for exactly the feeds whose bytes changed; the hub fetches each from
//! `serve` (and refuses to deliver one not served with `Link` headers naming
//! the hub and itself) and pushes it to its subscribers.
//!
//! Skips when Flask-WebSub is not installed; `.ci/run` installs it and sets
//! `SHORTS_REQUIRE_WEBSUB_HUB`, which makes a missing hub a failure.

mod common;
#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/server.rs"]
mod server;
#[path = "common/skip.rs"]
mod skip;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{NOW, append_config, edit_config, every_file, shorts, site_from, stderr, stdout};
use daemon::{free_port, poll_until};
use server::Server;
use skip::skip;

const REQUIRED: &str = "SHORTS_REQUIRE_WEBSUB_HUB";

/// The Python that has Flask-WebSub: `SHORTS_WEBSUB_PYTHON`, else `python3`.
fn hub_python() -> Option<String> {
    let python = std::env::var("SHORTS_WEBSUB_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_hub = Command::new(&python)
        .args(["-c", "import flask_websub, celery"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    has_hub.then_some(python)
}

/// The hub, stopped on drop (and by itself when this process ends: it
/// exits when its standard input closes).
struct Hub {
    child: Child,
    url: String,
    port: u16,
}

impl Hub {
    fn start(python: &str, state: &Path, port: u16) -> Hub {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/websub_hub.py");
        let mut child = Command::new(python)
            .arg(script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(match std::env::var_os("SHORTS_TEST_HUB_LOG") {
                Some(_) => Stdio::inherit(),
                None => Stdio::null(),
            })
            .spawn()
            .expect("start the hub");
        let mut line = String::new();
        let out = child.stdout.as_mut().expect("the hub's stdout");
        BufReader::new(out)
            .read_line(&mut line)
            .expect("the hub's first line");
        let url = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("the hub said {line:?}"))
            .trim()
            .to_string();
        let port = url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok());
        Hub {
            child,
            port: port.expect("the hub's port"),
            url,
        }
    }

    /// Subscribes `callback` to `topic`; the hub checks the subscriber's
    /// intent before it answers.
    fn subscribe(&self, topic: &str, callback: &str) {
        let answer = reqwest::blocking::Client::new()
            .post(&self.url)
            .form(&[
                ("hub.mode", "subscribe"),
                ("hub.topic", topic),
                ("hub.callback", callback),
            ])
            .send()
            .expect("subscribe");
        assert_eq!(answer.status().as_u16(), 202, "{:?}", answer.text());
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the hub pushed to a callback.
#[derive(Debug, Clone)]
struct Pushed {
    /// The callback's path: which subscription it was.
    callback: String,
    link: String,
    body: String,
}

/// A subscriber's callback endpoint: answers the hub's intent checks by
/// echoing `hub.challenge`, and keeps every delivery.
struct Callback {
    port: u16,
    pushed: Arc<Mutex<Vec<Pushed>>>,
    verified: Arc<Mutex<Vec<String>>>,
}

impl Callback {
    fn start() -> Callback {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the callback");
        let port = listener.local_addr().expect("its address").port();
        let callback = Callback {
            port,
            pushed: Arc::default(),
            verified: Arc::default(),
        };
        let (pushed, verified) = (callback.pushed.clone(), callback.verified.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, &pushed, &verified);
            }
        });
        callback
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    /// The deliveries so far, taken.
    fn take(&self) -> Vec<Pushed> {
        std::mem::take(&mut *self.pushed.lock().unwrap())
    }
}

/// One HTTP/1.1 request as the tests' small servers read it.
struct HttpRequest {
    method: String,
    path: String,
    query: String,
    link: String,
    body: Vec<u8>,
}

/// Reads one request from `stream`; `None` if the client went away.
fn read_request(stream: &TcpStream) -> Option<HttpRequest> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let (mut length, mut link) = (0, String::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "link" => link = value.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next()?, parts.next()?);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Some(HttpRequest {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        link,
        body,
    })
}

/// The value of form field `name` in `form`.
fn form_field(form: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(form)
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.into_owned())
}

fn reply(stream: &TcpStream, status: &str, body: &str) {
    let _ = write!(
        &*stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Answers one request to the callback, then closes the connection.
fn answer(stream: TcpStream, pushed: &Mutex<Vec<Pushed>>, verified: &Mutex<Vec<String>>) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    if request.method == "GET" {
        verified.lock().unwrap().push(request.path);
        let challenge = form_field(request.query.as_bytes(), "hub.challenge");
        return reply(&stream, "200 OK", &challenge.unwrap_or_default());
    }
    pushed.lock().unwrap().push(Pushed {
        callback: request.path.trim_start_matches('/').to_string(),
        link: request.link,
        body: String::from_utf8_lossy(&request.body).into_owned(),
    });
    reply(&stream, "200 OK", "");
}

/// Every subscription feed of the output folder, below its root.
fn subscription_feeds(public: &Path) -> BTreeSet<String> {
    every_file(public)
        .into_keys()
        .filter_map(|path: PathBuf| Some(path.to_str()?.to_string()))
        .filter(|path| shorts::render::feeds::is_subscription_feed(path))
        .collect()
}

/// The subscription feeds whose bytes differ between two snapshots.
fn changed_feeds(
    before: &std::collections::BTreeMap<PathBuf, Vec<u8>>,
    after: &std::collections::BTreeMap<PathBuf, Vec<u8>>,
) -> BTreeSet<String> {
    after
        .iter()
        .filter(|(path, bytes)| before.get(*path) != Some(*bytes))
        .filter_map(|(path, _)| Some(path.to_str()?.to_string()))
        .filter(|path| shorts::render::feeds::is_subscription_feed(path))
        .collect()
}

fn retitle(site: &Path, title: &str) {
    let path = site.join("content/shorts/plain.md");
    let text = std::fs::read_to_string(&path).expect("read plain.md");
    let start = text.find("title = ").expect("a title");
    let end = start + text[start..].find('\n').expect("its line");
    let text = format!("{}title = {title:?}{}", &text[..start], &text[end..]);
    std::fs::write(&path, text).expect("write plain.md");
}

/// The callbacks the deliveries went to, once each is there.
fn callbacks(pushed: &[Pushed]) -> BTreeSet<&str> {
    pushed.iter().map(|p| p.callback.as_str()).collect()
}

/// The site's subscriptions, by callback name: the whole site's Atom feed,
/// the retrieval track's RSS and the `rust` tag's JSON Feed (all three
/// carry `plain.md`, which the test edits), and the llm track's Atom
/// feed, which does not.
const SUBSCRIPTIONS: [(&str, &str); 4] = [
    ("site-atom", "atom.xml"),
    ("retrieval-rss", "tracks/retrieval/rss.xml"),
    ("rust-json", "tags/rust/feed.json"),
    ("llm-atom", "tracks/llm/atom.xml"),
];
const CHANGED_BY_THE_EDIT: [&str; 3] = ["retrieval-rss", "rust-json", "site-atom"];

#[test]
fn a_real_hub_pushes_exactly_the_feeds_that_changed_to_its_subscribers() {
    let Some(python) = hub_python() else {
        skip(REQUIRED, "Flask-WebSub is not installed (see .ci/run)");
        return;
    };
    let hub_state = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(&python, hub_state.path(), 0);
    let site = site_from("site");
    let dir = site.path();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}/");
    edit_config(
        dir,
        "base_url = \"https://example.com/notes\"",
        &format!("base_url = {base:?}"),
    );
    append_config(dir, &format!("[feeds]\nwebsub_hubs = [{:?}]\n", hub.url));

    // The first build makes every feed: each is a change to tell.
    let out = shorts(dir, &["publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let feeds = subscription_feeds(&dir.join("public"));
    assert!(feeds.len() > 20, "{feeds:?}");
    assert!(
        stdout(&out).contains(&format!("WebSub: {} pings taken", feeds.len())),
        "{}",
        stdout(&out)
    );
    assert!(
        !dir.join("websub-pending.tsv").exists()
            && !dir.join(".shorts/websub-pending.tsv").exists()
    );

    let _serve = Server::start_on(dir, NOW, &[], port);
    discovery_is_in_the_headers_and_the_documents(&base, &hub.url);
    let callback = Callback::start();
    for (name, feed) in SUBSCRIPTIONS {
        hub.subscribe(&format!("{base}{feed}"), &callback.url(name));
    }
    assert_eq!(
        callback.verified.lock().unwrap().len(),
        4,
        "every intent was checked"
    );

    // One edit: the hub is told of exactly the feeds whose bytes changed,
    // and pushes them, new title and all, with the hub and self links.
    let before = every_file(&dir.join("public"));
    retitle(dir, "A plain short, retitled");
    let out = shorts(dir, &["publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let changed = changed_feeds(&before, &every_file(&dir.join("public")));
    assert!(
        changed.contains("atom.xml") && !changed.contains("tracks/llm/atom.xml"),
        "{changed:?}"
    );
    let said = stdout(&out);
    assert!(
        said.contains(&format!("WebSub: {} pings taken", changed.len())),
        "{said}"
    );
    let pushed = callback.take();
    assert_eq!(
        callbacks(&pushed),
        BTreeSet::from(CHANGED_BY_THE_EDIT),
        "{pushed:#?}"
    );
    assert_eq!(pushed.len(), 3, "each once: {pushed:#?}");
    for push in &pushed {
        let (_, feed) = SUBSCRIPTIONS
            .iter()
            .find(|(name, _)| *name == push.callback)
            .unwrap();
        assert!(
            push.body.contains("A plain short, retitled"),
            "{}",
            push.body
        );
        assert_eq!(
            push.body.as_bytes(),
            std::fs::read(dir.join("public").join(feed)).unwrap()
        );
        assert!(
            push.link.contains(&format!("<{}>; rel=\"hub\"", hub.url)),
            "{}",
            push.link
        );
        assert!(
            push.link.contains(&format!("<{base}{feed}>; rel=\"self\"")),
            "{}",
            push.link
        );
    }

    // Nothing changed: nothing to tell, nothing pushed.
    let out = shorts(dir, &["publish"]);
    assert!(
        out.status.success() && !stdout(&out).contains("WebSub"),
        "{}",
        stdout(&out)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(callback.take().is_empty());

    // The hub is down: the build goes on, the pings wait for the next run.
    let hub_port = hub.port;
    drop(hub);
    retitle(dir, "A plain short, retitled while the hub was down");
    let out = shorts(dir, &["publish"]);
    assert!(
        out.status.success(),
        "a hub that is down fails nothing: {}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("left for the next run"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("did not take the ping"),
        "{}",
        stderr(&out)
    );
    hub = Hub::start(&python, hub_state.path(), hub_port);
    let out = shorts(dir, &["publish"]);
    assert!(
        stdout(&out).contains("pings taken") && !stdout(&out).contains("left"),
        "{}",
        stdout(&out)
    );
    let pushed = callback.take();
    assert_eq!(
        callbacks(&pushed),
        BTreeSet::from(CHANGED_BY_THE_EDIT),
        "{pushed:#?}"
    );
    assert!(
        pushed
            .iter()
            .all(|p| p.body.contains("while the hub was down"))
    );

    // `schedule` tells the hub as soon as it has rebuilt after an edit.
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_shorts"))
        .arg("schedule")
        .current_dir(dir)
        .env("SHORTS_NOW", NOW)
        .stderr(Stdio::null())
        .spawn()
        .expect("start shorts schedule");
    std::thread::sleep(Duration::from_millis(500));
    retitle(dir, "A plain short, retitled under schedule");
    let arrived = poll_until(Duration::from_secs(20), || {
        callback.pushed.lock().unwrap().len() >= 3
    });
    let _ = daemon.kill();
    let _ = daemon.wait();
    let pushed = callback.take();
    assert!(arrived, "{pushed:#?}");
    assert_eq!(
        callbacks(&pushed),
        BTreeSet::from(CHANGED_BY_THE_EDIT),
        "{pushed:#?}"
    );
    assert!(pushed.iter().all(|p| p.body.contains("under schedule")));
    drop(hub);
}

/// Subscribers find the hub and the feed's own URL in its `Link` headers
/// and in the document, in all three formats; pages name no hub.
fn discovery_is_in_the_headers_and_the_documents(base: &str, hub: &str) {
    let client = reqwest::blocking::Client::new();
    for feed in [
        "atom.xml",
        "tracks/llm/rss.xml",
        "tags/rust/feed.json",
        "digests/atom.xml",
    ] {
        let answer = client
            .get(format!("{base}{feed}"))
            .send()
            .expect("GET the feed");
        let links: Vec<&str> = answer
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(
            links,
            [format!(
                "<{hub}>; rel=\"hub\", <{base}{feed}>; rel=\"self\""
            )],
            "{feed}"
        );
        let text = answer.text().expect("its body");
        let named = match feed.ends_with(".json") {
            true => text.contains(&format!(
                "\"hubs\": [\n    {{\n      \"type\": \"WebSub\",\n      \"url\": \"{hub}\""
            )),
            false => {
                text.contains(&format!("href=\"{hub}\" rel=\"hub\""))
                    && text.contains(&format!("href=\"{base}{feed}\" rel=\"self\""))
            }
        };
        assert!(named, "{feed}: {text}");
    }
    let page = client
        .get(format!("{base}shorts/"))
        .send()
        .expect("GET a page");
    assert!(page.headers().get("link").is_none());
}

/// A hub that takes every ping, slowly, and remembers each feed it was
/// told of: a `publish` killed mid-ping is caught in the act.
fn slow_hub(delay: Duration) -> (String, Arc<Mutex<BTreeSet<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hub");
    let url = format!("http://{}/", listener.local_addr().expect("its address"));
    let told = Arc::new(Mutex::new(BTreeSet::new()));
    let seen = told.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let Some(request) = read_request(&stream) else {
                    return;
                };
                std::thread::sleep(delay);
                if let Some(feed) = form_field(&request.body, "hub.topic") {
                    seen.lock().unwrap().insert(feed);
                }
                reply(&stream, "202 Accepted", "");
            });
        }
    });
    (url, told)
}

/// SIGKILL at any moment of a `publish` (mid-build, between the switch and
/// the pings, mid-ping) loses no ping: the changed feeds were recorded
/// before the switch, so the next run tells the hub of every one, even
/// when it has nothing new to build.
#[test]
fn a_publish_killed_at_any_moment_loses_no_ping() {
    let (hub, told) = slow_hub(Duration::from_millis(40));
    let site = site_from("site");
    let dir = site.path();
    append_config(dir, &format!("[feeds]\nwebsub_hubs = [{hub:?}]\n"));
    let out = shorts(dir, &["publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (base, owed) = (
        "https://example.com/notes/",
        dir.join("data/websub-pending.tsv"),
    );
    let mut killed_with_pings_owed = 0;
    let kill_after_ms = [20u64, 60, 100, 140, 180, 230, 280, 340, 420, 520, 650, 800];
    for (round, after_ms) in kill_after_ms.into_iter().enumerate() {
        let before = every_file(&dir.join("public"));
        told.lock().unwrap().clear();
        retitle(dir, &format!("A plain short, round {round}"));
        let mut publish = Command::new(env!("CARGO_BIN_EXE_shorts"))
            .arg("publish")
            .current_dir(dir)
            .env("SHORTS_NOW", NOW)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start publish");
        std::thread::sleep(Duration::from_millis(after_ms));
        let _ = publish.kill();
        let _ = publish.wait();
        killed_with_pings_owed += usize::from(owed.exists());
        let out = shorts(dir, &["publish"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!owed.exists(), "round {round}: nothing left owed");
        let changed = changed_feeds(&before, &every_file(&dir.join("public")));
        let told = told.lock().unwrap();
        let missed: Vec<_> = changed
            .iter()
            .filter(|f| !told.contains(&format!("{base}{f}")))
            .collect();
        assert!(changed.len() >= 9, "round {round}: {changed:?}");
        assert!(
            missed.is_empty(),
            "round {round} (killed after {after_ms} ms): never told of {missed:?}"
        );
    }
    assert!(
        killed_with_pings_owed > 0,
        "no kill landed while pings were owed: the test proved nothing"
    );
}
