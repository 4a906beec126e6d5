//! The index in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, through fantoccini) against `shorts serve` on the built
//! sample site. Filters by track and tag, searches, checks what is shown,
//! subscribes through the form, and saves screenshots of the index and of a
//! short's page (phone and desktop) under the target folder. Opens the
//! feeds from the nav as a reader would, with and without XSLT.
//!
//! Skipped, with a message, where Chromium or chromedriver is not installed;
//! `.ci/run` installs both and sets `SHORTS_REQUIRE_BROWSER=1`, which turns
//! the skip into a failure.

mod common;
#[path = "common/server.rs"]
mod server;
#[path = "common/skip.rs"]
mod skip;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use server::Server;
use shorts::model::Short;

const NOW: &str = "2026-07-01T00:00:00Z";

fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().find_map(|name| {
        let path = Path::new(name);
        if path.is_absolute() {
            return path.is_file().then(|| path.to_path_buf());
        }
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    })
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(program: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    browser_with(driver, chromium, profile, &[]).await
}

/// A Chromium session with `extra` command-line flags.
async fn browser_with(driver: &Driver, chromium: &Path, profile: &Path, extra: &[&str]) -> Client {
    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,1800".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_string(),
        json!({
            "binary": chromium,
            // Without the background-networking flags Chromium keeps dialling
            // Google's hosts, which a closed network refuses.
            "args": args,
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// Slugs of the cards the reader can see, in page order.
async fn visible(client: &Client) -> Vec<String> {
    let value = client
        .execute(
            "return Array.from(document.querySelectorAll('#shorts > li'))
               .filter(li => !li.hidden && li.offsetParent !== null)
               .map(li => li.querySelector('[data-slug]').dataset.slug);",
            vec![],
        )
        .await
        .expect("run script");
    serde_json::from_value(value).expect("a list of slugs")
}

async fn count_line(client: &Client) -> String {
    let element = client
        .find(Locator::Css("#shorts-count"))
        .await
        .expect("count");
    element.text().await.expect("count text")
}

async fn set_query(client: &Client, words: &str) {
    let field = client
        .find(Locator::Css("#filter-q"))
        .await
        .expect("search");
    field.clear().await.expect("clear");
    field.send_keys(words).await.expect("type");
}

async fn choose(client: &Client, field: &str, value: &str) {
    let select = client.find(Locator::Css(field)).await.expect("select");
    select.select_by_value(value).await.expect("choose");
}

async fn reset(client: &Client) {
    client
        .find(Locator::Css("#filters button[type=reset]"))
        .await
        .expect("reset")
        .click()
        .await
        .expect("click reset");
    wait_for(client, "everything listed again", |slugs, _| {
        slugs.len() == 25
    })
    .await;
}

/// Polls until the page shows what `done` wants (the script runs on input events).
async fn wait_for(client: &Client, what: &str, done: impl Fn(&[String], &str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let slugs = visible(client).await;
        let count = count_line(client).await;
        if done(&slugs, &count) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still showing {count:?} {slugs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn slugs<'a>(shorts: impl Iterator<Item = &'a Short>) -> Vec<String> {
    shorts.map(|s| s.slug.clone()).collect()
}

/// What a search for `words` must show: every word in the title, summary,
/// tags or track title, ignoring case.
fn matching(shorts: &[Short], config: &shorts::config::Config, words: &str) -> Vec<String> {
    let words: Vec<String> = words.split_whitespace().map(str::to_lowercase).collect();
    slugs(shorts.iter().filter(|s| {
        let track = config.track(&s.track).map_or("", |t| t.title.as_str());
        let names: Vec<&str> = s
            .tags
            .iter()
            .flat_map(|t| [t.name.as_str(), t.slug.as_str()])
            .collect();
        let haystack =
            format!("{} {} {} {}", s.title, s.summary, track, names.join(" ")).to_lowercase();
        words.iter().all(|w| haystack.contains(w))
    }))
}

/// axe-core, the accessibility checker, when installed (`.ci/run` does).
fn axe_script() -> Option<String> {
    let path = std::env::var_os("SHORTS_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/ci-npm/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(path).ok()
}

/// WCAG 2 A and AA violations axe-core finds on the current page.
async fn accessibility_violations(client: &Client, axe: &str) -> Vec<String> {
    client.execute(axe, vec![]).await.expect("load axe-core");
    let result = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] })
               .then(r => done(r.violations.map(v =>
                 v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .expect("run axe-core");
    serde_json::from_value(result).expect("a list of violations")
}

/// At a phone's width the page does not scroll sideways; saved as `name`.
async fn assert_fits_a_phone(client: &Client, name: &str) {
    client.set_window_size(390, 844).await.expect("phone size");
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .expect("measure");
    assert_eq!(
        overflow,
        Value::from(0),
        "{name}: it scrolls sideways on a phone"
    );
    save_screenshot(client, name).await;
}

async fn save_screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is a PNG");
    assert!(png.len() > 20_000, "{name} is only {} bytes", png.len());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    let path = dir.join(name);
    std::fs::write(&path, png).expect("write screenshot");
    path
}

/// Chromium and chromedriver, or `None` (with the reason printed) where
/// they are not installed and `SHORTS_REQUIRE_BROWSER` is not set.
fn chromium_and_driver() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = find_program(&["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        skip::skip(
            "SHORTS_REQUIRE_BROWSER",
            "chromium or chromedriver is missing (Debian: apt install chromium chromium-driver; .ci/run installs them)",
        );
        return None;
    };
    Some((chromium, chromedriver))
}

/// The sample site, built at [`NOW`] and served (the folder lives as long
/// as the first value).
fn served_sample() -> (tempfile::TempDir, Server) {
    served_sample_with("")
}

/// [`served_sample`] with `extra` appended to its config.
fn served_sample_with(extra: &str) -> (tempfile::TempDir, Server) {
    let site = common::sample_site();
    common::append_config(site.path(), extra);
    let out = common::shorts_at(site.path(), NOW, &["build"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let server = Server::start(site.path(), NOW);
    (site, server)
}

/// The accessibility check of the pages at `paths`, or a printed skip where
/// axe-core is not installed (a failure under `SHORTS_REQUIRE_BROWSER`).
async fn assert_accessible(client: &Client, server: &Server, paths: &[String]) {
    let Some(axe) = axe_script() else {
        skip::skip(
            "SHORTS_REQUIRE_BROWSER",
            "axe-core is not installed, so the accessibility check is skipped (npm install axe-core; see .ci/run)",
        );
        return;
    };
    for path in paths {
        client.goto(&server.url(path)).await.expect("open page");
        let violations = accessibility_violations(client, &axe).await;
        assert!(violations.is_empty(), "{path}: {violations:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_narrow_the_index_by_track_tag_and_text_in_chromium() {
    let Some((chromium, chromedriver)) = chromium_and_driver() else {
        return;
    };
    let site = common::sample_site();
    let out = common::shorts_at(site.path(), NOW, &["build"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let config = shorts::config::Config::load(&site.path().join("config.toml")).expect("config");
    let collection = shorts::content::load(&config).expect("content");
    let all = &collection.shorts;

    let server = Server::start(site.path(), NOW);
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().expect("profile folder");
    let client = browser(&driver, &chromium, profile.path()).await;

    client
        .goto(&server.url("/shorts/"))
        .await
        .expect("open the index");
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("form#filters:not([data-pending])"))
        .await
        .expect("the script shows the filters once search.json loaded");
    assert_eq!(visible(&client).await, slugs(all.iter()));
    assert_eq!(count_line(&client).await, "25 shorts");
    // The stylesheet loaded through its relative link.
    let radius = client
        .execute(
            "return getComputedStyle(document.querySelector('.card')).borderTopLeftRadius;",
            vec![],
        )
        .await
        .expect("style");
    assert_eq!(radius, Value::from("10px"));
    // The form kept its place while the script loaded: showing it moves nothing.
    let shift = client
        .execute(
            "const form = document.getElementById('filters');
             const top = () => document.getElementById('shorts').getBoundingClientRect().top;
             form.setAttribute('data-pending', '');
             const pending = top();
             form.removeAttribute('data-pending');
             return [pending, top(), form.getBoundingClientRect().height];",
            vec![],
        )
        .await
        .expect("measure");
    let shift: Vec<f64> = serde_json::from_value(shift).expect("numbers");
    assert_eq!(
        shift[0], shift[1],
        "the cards move when the search form appears"
    );
    assert!(shift[2] > 40.0, "the form has its height: {shift:?}");
    // Track names as the author wrote them ("LLMs", not "LLMS").
    let kicker = client
        .execute(
            "const k = document.querySelector('.kicker');
             return [getComputedStyle(k).textTransform, k.innerText];",
            vec![],
        )
        .await
        .expect("kicker");
    assert_eq!(kicker, json!(["none", "LLMs"]));

    // By track.
    choose(&client, "#filter-track", "time-series").await;
    let in_track = slugs(all.iter().filter(|s| s.track == "time-series"));
    let expected_count = format!("{} of 25 shorts", in_track.len());
    wait_for(&client, "track filter", |shown, count| {
        shown == in_track.as_slice() && count == expected_count
    })
    .await;
    let url = client.current_url().await.expect("url");
    assert_eq!(
        url.query(),
        Some("track=time-series"),
        "the filter is in the address"
    );

    // By track and tag together, then by tag alone.
    choose(&client, "#filter-tag", "preprocessing").await;
    let both =
        slugs(all.iter().filter(|s| {
            s.track == "time-series" && s.tags.iter().any(|t| t.slug == "preprocessing")
        }));
    assert!(!both.is_empty());
    wait_for(&client, "track and tag", |shown, _| {
        shown == both.as_slice()
    })
    .await;
    choose(&client, "#filter-track", "").await;
    choose(&client, "#filter-tag", "kv-cache").await;
    let tagged = slugs(
        all.iter()
            .filter(|s| s.tags.iter().any(|t| t.slug == "kv-cache")),
    );
    wait_for(&client, "tag filter", |shown, _| shown == tagged.as_slice()).await;
    reset(&client).await;

    // Text search: every word must match, case and order aside.
    for words in ["cache", "Attention KERNEL", "time series", "bm25"] {
        set_query(&client, words).await;
        let expected = matching(all, &config, words);
        assert!(!expected.is_empty(), "{words}");
        wait_for(&client, words, |shown, _| shown == expected.as_slice()).await;
    }
    set_query(&client, "zzzz-nothing").await;
    wait_for(&client, "no match", |shown, count| {
        shown.is_empty() && count == "0 of 25 shorts"
    })
    .await;
    let no_match = client
        .find(Locator::Css("#no-match"))
        .await
        .expect("no-match");
    assert!(no_match.is_displayed().await.expect("displayed"));
    client
        .find(Locator::Css("#clear-filters"))
        .await
        .expect("show all")
        .click()
        .await
        .expect("click");
    wait_for(&client, "show all", |shown, _| shown.len() == 25).await;

    // A shared link with filters opens filtered.
    client
        .goto(&server.url("/shorts/?tag=kv-cache&q=attention"))
        .await
        .expect("open filtered");
    let linked: Vec<String> = matching(all, &config, "attention")
        .into_iter()
        .filter(|slug| tagged.contains(slug))
        .collect();
    wait_for(&client, "filters from the address", |shown, _| {
        shown == linked.as_slice()
    })
    .await;

    client.goto(&server.url("/shorts/")).await.expect("index");
    wait_for(&client, "index again", |shown, _| shown.len() == 25).await;
    let index_png = save_screenshot(&client, "index.png").await;

    // Landmarks, labels, names and contrast as axe-core checks them.
    let pages = [
        "/shorts/".to_string(),
        format!("/shorts/{}/", all[0].slug),
        "/tracks/llm/".to_string(),
        "/tags/".to_string(),
        "/digests/".to_string(),
    ];
    assert_accessible(&client, &server, &pages).await;

    // A short's page, on a desktop and on a phone: nothing wider than the screen.
    let short = &all[1];
    client
        .goto(&server.url(&format!("/shorts/{}/", short.slug)))
        .await
        .expect("short page");
    let title = client.find(Locator::Css("h1")).await.expect("h1");
    assert_eq!(title.text().await.expect("title"), short.title);
    save_screenshot(&client, "short.png").await;
    assert_fits_a_phone(&client, "short-phone.png").await;

    // The page's own form subscribes through `shorts serve`.
    let email = client
        .find(Locator::Css("#subscribe-email"))
        .await
        .expect("email field");
    email
        .send_keys("reader@example.org")
        .await
        .expect("type email");
    client
        .find(Locator::Css(".subscribe button[type=submit]"))
        .await
        .expect("subscribe button")
        .click()
        .await
        .expect("submit");
    let heading = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//h1[normalize-space()='Check your inbox']"))
        .await
        .expect("the confirmation page");
    assert!(heading.is_displayed().await.expect("shown"));
    client.close().await.expect("close the browser");
    common::mail_queue_drained(site.path());
    drop(server);

    let listed = common::shorts_at(site.path(), NOW, &["subscribers", "list"]);
    let listed = common::stdout(&listed);
    assert!(
        listed.contains("reader@example.org") && listed.contains("pending"),
        "{listed}"
    );
    eprintln!(
        "screenshots in {}",
        index_png
            .parent()
            .map_or_else(String::new, |p| p.display().to_string())
    );
}

/// The site-relative link containing `needle` in the newest `.eml` the
/// outbox holds for `kind` (`confirm-…`, `welcome-…`).
fn outbox_link(site: &Path, kind: &str, needle: &str) -> String {
    let folder = site.join("outbox/subscriptions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("the outbox folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(kind))
        })
        .collect();
    files.sort();
    let bytes = std::fs::read(files.last().expect("an email of that kind")).expect("read it");
    let mail = mailparse::parse_mail(&bytes).expect("a message");
    let text = mail.subparts[0].get_body().expect("its text");
    let link = text
        .split_whitespace()
        .find(|w| w.contains(needle))
        .unwrap_or_else(|| panic!("no {needle} in {text}"));
    link[link.find(needle).expect("the needle")..].to_string()
}

async fn click_submit(client: &Client) {
    client
        .find(Locator::Css("main button[type=submit]"))
        .await
        .expect("the page's button")
        .click()
        .await
        .expect("click");
}

async fn heading_is(client: &Client, text: &str) {
    let found = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&format!("//h1[normalize-space()='{text}']")))
        .await;
    if found.is_err() {
        let source = client.source().await.unwrap_or_default();
        panic!("a page headed {text:?}, not:\n{source}");
    }
}

/// The cadences the preferences test offers besides the sample's weekly one.
const CADENCES: &str = "
[[digest.cadences]]
name = \"daily\"
schedule = \"0 8 * * *\"

[[digest.cadences]]
name = \"instant\"
schedule = \"instant\"
label = \"As soon as a short is out\"
";

/// A reader follows the confirmation link (a page, not yet a subscription),
/// presses the button, opens the welcome email's preferences link and
/// changes what they get and how often, and pauses; each page looks like
/// the site and passes axe-core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_confirms_and_chooses_tracks_tags_and_cadence_in_chromium() {
    let Some((chromium, chromedriver)) = chromium_and_driver() else {
        return;
    };
    let (site, server) = served_sample_with(CADENCES);
    let http = reqwest::Client::new();
    let signup = http
        .post(server.url("/subscribe"))
        .form(&[
            ("email", "reader@example.org"),
            ("tracks", "llm"),
            ("cadence", "daily"),
        ])
        .send()
        .await
        .expect("sign up");
    assert!(signup.status().is_success());
    common::mail_queue_drained(site.path());
    let confirm = outbox_link(site.path(), "confirm-", "/confirm?token=");

    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().expect("profile folder");
    let client = browser(&driver, &chromium, profile.path()).await;
    client
        .goto(&server.url(&confirm))
        .await
        .expect("open the link");
    heading_is(&client, "Confirm your subscription").await;
    // The site's stylesheet applies: the button is the site's, not the browser's.
    let radius = client
        .execute(
            "return getComputedStyle(document.querySelector('main button')).borderTopLeftRadius;",
            vec![],
        )
        .await
        .expect("style");
    assert_eq!(radius, Value::from("8px"));
    save_screenshot(&client, "confirm.png").await;
    let listed = common::stdout(&common::shorts_at(
        site.path(),
        NOW,
        &["subscribers", "list"],
    ));
    assert!(
        listed.starts_with("pending"),
        "opening the link confirms nothing: {listed}"
    );
    click_submit(&client).await;
    heading_is(&client, "You are subscribed").await;
    common::mail_queue_drained(site.path());

    let preferences = outbox_link(site.path(), "welcome-", "/preferences?token=");
    client
        .goto(&server.url(&preferences))
        .await
        .expect("preferences");
    heading_is(&client, "Your tracks").await;
    let checked = |selector: &'static str| {
        let client = client.clone();
        async move {
            let value = client
                .execute(
                    &format!("return Array.from(document.querySelectorAll('{selector}:checked')).map(e => e.value);"),
                    vec![],
                )
                .await
                .expect("read the boxes");
            serde_json::from_value::<Vec<String>>(value).expect("values")
        }
    };
    assert_eq!(checked("input[name=tracks]").await, ["llm"]);
    assert!(checked("input[name=tags]").await.is_empty());
    assert_eq!(
        checked("input[name=cadence]").await,
        ["daily"],
        "as signed up"
    );
    assert!(checked("input[name=paused]").await.is_empty());
    for choice in [
        "input[name=tracks][value=time-series]",
        "input[name=tags][value=kv-cache]",
        "input[name=cadence][value=instant]",
        "input[name=paused]",
    ] {
        client
            .find(Locator::Css(choice))
            .await
            .expect("a box to tick")
            .click()
            .await
            .expect("tick it");
    }
    click_submit(&client).await;
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//p[@role='status' and normalize-space()='Saved.']",
        ))
        .await
        .expect("saved");
    assert_eq!(checked("input[name=tracks]").await, ["llm", "time-series"]);
    assert_eq!(checked("input[name=tags]").await, ["kv-cache"]);
    assert_eq!(checked("input[name=cadence]").await, ["instant"]);
    assert_eq!(checked("input[name=paused]").await, ["yes"]);
    // Paused, the page offers to bring what was missed on resuming.
    assert!(checked("input[name=catch_up]").await.is_empty());
    save_screenshot(&client, "preferences.png").await;
    let unsubscribe = format!(
        "/{}",
        client
            .find(Locator::XPath("//a[normalize-space()='unsubscribe']"))
            .await
            .expect("the unsubscribe link")
            .attr("href")
            .await
            .expect("its href")
            .expect("an href")
    );
    assert_accessible(
        &client,
        &server,
        &[
            confirm.clone(),
            preferences.clone(),
            unsubscribe,
            "/confirm?token=bad".to_string(),
        ],
    )
    .await;
    client.close().await.expect("close the browser");
    let reader = common::store(site.path())
        .subscriber_by_email("reader@example.org")
        .expect("read")
        .expect("the reader");
    assert_eq!(reader.tracks, ["llm", "time-series"]);
    assert_eq!(reader.tags, ["kv-cache"]);
    assert_eq!((reader.cadence.as_str(), reader.paused), ("instant", true));
}

/// The digest email as a newsletter, in Chromium: desktop, phone and dark.
/// The preheader is in the message but not shown; the heading says the year
/// once; the author's note is above the sections; nothing is wider than a
/// phone; in dark mode the background is dark. Screenshots
/// `digest-desktop.png`, `digest-phone.png`, `digest-dark.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_reads_as_a_newsletter_on_desktop_phone_and_dark_in_chromium() {
    let Some((chromium, chromedriver)) = chromium_and_driver() else {
        return;
    };
    let site = common::sample_site();
    let notes = site.path().join("content/digests");
    std::fs::create_dir_all(&notes).expect("notes folder");
    std::fs::write(
        notes.join("2026-06-08.md"),
        "A note from the author, **above** the sections.\n",
    )
    .expect("write the note");
    let out = common::shorts_at(site.path(), "2026-06-08T09:00:00Z", &["digest", "preview"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let html = std::fs::read_dir(site.path().join("preview"))
        .expect("the preview folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "html"))
        .expect("the preview's HTML");
    let url = format!("file://{}", html.display());
    let driver = Driver::start(&chromedriver);

    let profile = tempfile::tempdir().expect("profile folder");
    let client = browser(&driver, &chromium, profile.path()).await;
    client.goto(&url).await.expect("open the digest");
    let seen = client
        .execute(
            "const pre = document.querySelector('.preheader');
             const note = document.querySelector('.note');
             const firstSection = document.querySelector('h2');
             return [getComputedStyle(pre).display, pre.textContent.trim().slice(0, 7),
                     document.querySelector('h1').innerText,
                     note.innerText.trim(),
                     !!(note.compareDocumentPosition(firstSection) & Node.DOCUMENT_POSITION_FOLLOWING),
                     document.body.innerText.includes(pre.textContent.trim().slice(0, 40))];",
            vec![],
        )
        .await
        .expect("inspect the digest");
    assert_eq!(
        seen,
        json!([
            "none",
            "New in ",
            "15 new shorts, Jun 1 – 8, 2026",
            "A note from the author, above the sections.",
            true,
            false
        ])
    );
    save_screenshot(&client, "digest-desktop.png").await;
    assert_fits_a_phone(&client, "digest-phone.png").await;
    client.close().await.expect("close the browser");

    let dark_profile = tempfile::tempdir().expect("profile folder");
    let dark = browser_with(
        &driver,
        &chromium,
        dark_profile.path(),
        &[
            "--force-dark-mode",
            "--blink-settings=preferredColorScheme=0",
        ],
    )
    .await;
    dark.goto(&url).await.expect("open the digest");
    let background = dark
        .execute(
            "return [matchMedia('(prefers-color-scheme: dark)').matches, getComputedStyle(document.body).backgroundColor];",
            vec![],
        )
        .await
        .expect("colours");
    assert_eq!(background, json!([true, "rgb(20, 20, 22)"]));
    save_screenshot(&dark, "digest-dark.png").await;
    dark.close().await.expect("close the browser");
}

/// Strings a script returns.
async fn strings(client: &Client, script: &str) -> Vec<String> {
    let value = client.execute(script, vec![]).await.expect("run script");
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}: {script}"))
}

/// What a feed opened in a browser must read as, whoever made the page.
struct FeedPage {
    title: String,
    /// Each short's title and permalink, newest first.
    shorts: Vec<(String, String)>,
    /// The newest short's publication, as the page must and must not write it.
    newest: chrono::DateTime<chrono::FixedOffset>,
    /// Each short's publication day, newest first.
    published: Vec<String>,
}

impl FeedPage {
    /// The page at `path` (already open): the feed's title, feed.css applied,
    /// each short's title linking its page, its day as the pages write it,
    /// its summary with no escaped entity shown, and the feed's address kept.
    async fn check(&self, client: &Client, path: &str) {
        let heading = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("main h1"))
            .await
            .unwrap_or_else(|_| panic!("{path}: no page made of the feed"));
        assert_eq!(heading.text().await.expect("h1"), self.title, "{path}");
        assert!(
            client
                .current_url()
                .await
                .expect("url")
                .path()
                .ends_with(path),
            "{path}: the address stays the feed's, to copy into a reader"
        );
        // feed.css applies: the column and the heading are its.
        let style = strings(
            client,
            "const main = getComputedStyle(document.querySelector('main'));
             const h2 = getComputedStyle(document.querySelector('.feed-items h2'));
             return [main.maxWidth, h2.fontWeight];",
        )
        .await;
        assert_eq!(style, ["672px", "650"], "{path}: feed.css");
        let links = strings(
            client,
            "return Array.from(document.querySelectorAll('.feed-items h2 a'))
               .flatMap(a => [a.textContent, a.href]);",
        )
        .await;
        let expected: Vec<String> = self
            .shorts
            .iter()
            .flat_map(|(t, u)| [t.clone(), u.clone()])
            .collect();
        assert_eq!(links, expected, "{path}: each short's title links its page");
        let text = strings(client, "return [document.body.innerText];")
            .await
            .remove(0);
        assert!(text.contains("isn't"), "{path}: the summaries are there");
        for raw in ["&#39;", "&amp;", "&quot;", "&lt;"] {
            assert!(
                !text.contains(raw),
                "{path}: {raw} shown literally:\n{text}"
            );
        }
        let day = self.newest.format("%b %-d, %Y").to_string();
        assert!(text.contains(&day), "{path}: the date as {day:?}:\n{text}");
        for machine in [self.newest.to_rfc2822(), self.newest.to_rfc3339()] {
            assert!(!text.contains(&machine), "{path}: {machine} shown:\n{text}");
        }
        let dates = strings(
            client,
            "return Array.from(document.querySelectorAll('.feed-date time')).map(t => t.dateTime);",
        )
        .await;
        assert_eq!(
            dates, self.published,
            "{path}: each <time> says when it was published"
        );
    }
}

/// The nav's "Feed" link and atom.xml opened in Chromium read as pages:
/// `serve` answers the navigation with the feed's `feed.html` (Chromium is
/// removing XSLT and puts a warning over pages that use it). A host without
/// that page still gets one from feed.xsl where the browser has XSLT, and
/// without XSLT feed.css styles the XML itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_opened_in_chromium_read_as_pages() {
    let Some((chromium, chromedriver)) = chromium_and_driver() else {
        return;
    };
    let site = common::sample_site();
    // A short edited after it was published shows when it was published.
    let edited = site.path().join("content/shorts/arima-and-sarima.md");
    let text = std::fs::read_to_string(&edited).expect("the ARIMA short");
    let text = text.replacen(
        "\ntrack = ",
        "\nupdated = 2026-06-20T10:00:00+02:00\ntrack = ",
        1,
    );
    std::fs::write(&edited, text).expect("edit it");
    let out = common::shorts_at(site.path(), NOW, &["build"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let config = shorts::config::Config::load(&site.path().join("config.toml")).expect("config");
    let collection = shorts::content::load(&config).expect("content");
    assert!(collection.shorts.iter().any(|s| s.updated.is_some()));
    let rss = std::fs::read_to_string(site.path().join("public/rss.xml")).expect("rss.xml");
    let expected = FeedPage {
        title: roxmltree::Document::parse(&rss)
            .expect("XML")
            .descendants()
            .find(|n| n.has_tag_name("title"))
            .and_then(|n| n.text().map(str::to_string))
            .expect("the channel's title"),
        shorts: collection
            .shorts
            .iter()
            .map(|s| (s.title.clone(), s.permalink.clone()))
            .collect(),
        newest: collection.shorts[0].date,
        published: collection
            .shorts
            .iter()
            .map(|s| s.date.format("%Y-%m-%d").to_string())
            .collect(),
    };

    let server = Server::start(site.path(), NOW);
    let driver = Driver::start(&chromedriver);
    let profile = tempfile::tempdir().expect("profile folder");
    let client = browser(&driver, &chromium, profile.path()).await;
    client
        .goto(&server.url("/shorts/"))
        .await
        .expect("open the index");
    let feed_link = client
        .find(Locator::XPath("//nav//a[normalize-space()='Feed']"))
        .await
        .expect("the nav's Feed link");
    assert!(
        feed_link
            .attr("href")
            .await
            .expect("href")
            .is_some_and(|h| h.ends_with("rss.xml")),
        "the nav links rss.xml"
    );
    feed_link.click().await.expect("follow it");
    for (path, png) in [("/rss.xml", "feed-rss.png"), ("/atom.xml", "feed-atom.png")] {
        if path != "/rss.xml" {
            client.goto(&server.url(path)).await.expect("open the feed");
        }
        expected.check(&client, path).await;
        let addresses = strings(
            &client,
            "return Array.from(document.querySelectorAll('.feed-about code')).map(c => c.textContent);",
        )
        .await;
        assert_eq!(
            addresses.len(),
            3,
            "{path}: the addresses to copy: {addresses:?}"
        );
        assert!(addresses.iter().any(|a| a.ends_with(path)), "{addresses:?}");
        save_screenshot(&client, png).await;
    }
    let feeds = ["/rss.xml".to_string(), "/atom.xml".to_string()];
    assert_accessible(&client, &server, &feeds).await;
    client.close().await.expect("close the browser");
    drop(server);

    // A host without the pages (a build with `feed.html` gone, as an older
    // build had): the XML goes to the browser, and feed.xsl makes the page.
    for page in ["feed.html", "tracks/llm/feed.html"] {
        std::fs::remove_file(site.path().join("public").join(page)).expect(page);
    }
    let server = Server::start(site.path(), NOW);
    let profile = tempfile::tempdir().expect("profile folder");
    let client = browser(&driver, &chromium, profile.path()).await;
    client
        .goto(&server.url("/atom.xml"))
        .await
        .expect("open the feed");
    expected.check(&client, "/atom.xml").await;
    save_screenshot(&client, "feed-atom-xslt.png").await;
    client.close().await.expect("close the browser");

    // Without XSLT either, feed.css on the XML: still a page, no `&#39;`.
    let profile = tempfile::tempdir().expect("profile folder");
    let client = browser_with(
        &driver,
        &chromium,
        profile.path(),
        &["--disable-blink-features=XSLT"],
    )
    .await;
    client
        .goto(&server.url("/rss.xml"))
        .await
        .expect("open the feed");
    let shown = strings(
        &client,
        "const title = document.querySelector('channel > title');
         const style = title && getComputedStyle(title);
         return [document.documentElement.localName, style ? style.display : '',
                 style ? style.fontWeight : '',
                 Array.from(document.querySelectorAll('item > description')).map(d => d.textContent).join('\\n')];",
    )
    .await;
    assert_eq!(
        shown[0], "rss",
        "--disable-blink-features=XSLT no longer turns XSLT off in this Chromium"
    );
    assert_eq!(
        (shown[1].as_str(), shown[2].as_str()),
        ("block", "700"),
        "feed.css styles the XML"
    );
    assert!(
        shown[3].contains("isn't") && !shown[3].contains("&#39;"),
        "{}",
        shown[3]
    );
    save_screenshot(&client, "feed-rss-without-xslt.png").await;
    client.close().await.expect("close the browser");
}

/// Highlighted code and formulas on the shorts' pages: code spans get the
/// stylesheet's colours, a fraction in a formula is laid out as MathML (taller
/// than a line of text, not a run of letters), and both pages pass axe-core
/// (contrast included) in the light and in the dark scheme. Screenshots
/// `code-light.png`, `code-dark.png`, `math-light.png`, `math-dark.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn highlighted_code_and_formulas_pass_axe_core_in_light_and_dark_in_chromium() {
    let Some((chromium, chromedriver)) = chromium_and_driver() else {
        return;
    };
    let (_site, server) = served_sample();
    let driver = Driver::start(&chromedriver);
    let code_page = "/shorts/bm25-vs-dense-embeddings/".to_string();
    let math_page = "/shorts/why-kl-divergence-is-everywhere/".to_string();
    let colours = "return [...document.querySelectorAll('pre.code span[class^=hl-]')]
        .map(s => s.className + ' ' + getComputedStyle(s).color)
        .filter((v, i, all) => all.indexOf(v) === i).sort();";
    let fraction = "const f = document.querySelector('math[display=block] mfrac');
        const size = parseFloat(getComputedStyle(f.closest('p')).fontSize);
        return [f.getBoundingClientRect().height, size,
                document.querySelectorAll('article math').length];";
    let mut seen = Vec::new();
    for (scheme, extra) in [
        ("light", &[][..]),
        (
            "dark",
            &[
                "--force-dark-mode",
                "--blink-settings=preferredColorScheme=0",
            ][..],
        ),
    ] {
        let profile = tempfile::tempdir().expect("profile folder");
        let client = browser_with(&driver, &chromium, profile.path(), extra).await;
        client
            .goto(&server.url(&code_page))
            .await
            .expect("open the short with code");
        let spans = client.execute(colours, vec![]).await.expect("colours");
        let spans: Vec<String> = serde_json::from_value(spans).expect("a list");
        assert!(
            spans.iter().any(|s| s.starts_with("hl-keyword ")),
            "{scheme}: {spans:?}"
        );
        assert!(
            spans.iter().any(|s| s.starts_with("hl-comment ")),
            "{scheme}: {spans:?}"
        );
        save_screenshot(&client, &format!("code-{scheme}.png")).await;
        client
            .goto(&server.url(&math_page))
            .await
            .expect("open the short with formulas");
        let measured = client.execute(fraction, vec![]).await.expect("fraction");
        let (height, font_size, formulas): (f64, f64, usize) =
            serde_json::from_value(measured).expect("three numbers");
        assert!(
            height > 1.6 * font_size,
            "{scheme}: the fraction is {height}px tall at a {font_size}px font: not laid out as MathML"
        );
        assert_eq!(formulas, 5, "{scheme}: formulas on the page");
        save_screenshot(&client, &format!("math-{scheme}.png")).await;
        assert_accessible(&client, &server, &[code_page.clone(), math_page.clone()]).await;
        client.close().await.expect("close the browser");
        seen.push(spans);
    }
    assert_ne!(seen[0], seen[1], "the dark scheme has colours of its own");
}
