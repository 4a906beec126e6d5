//! Helpers shared by the end-to-end tests: copy a fixture site into a temporary
//! folder and run the real `shorts` binary in it.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shorts::store::{Database, Delivery, DeliveryState, Location, Store};

/// The instant the fixture builds are made at, so "future" and "published" are fixed.
pub const NOW: &str = "2026-07-01T00:00:00Z";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A copy of `tests/fixtures/<name>` (without any `public/`) in a temporary folder.
pub fn site_from(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    copy_tree(&fixture(name), dir.path());
    dir
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_name() == "public" {
            continue;
        }
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// Runs `shorts ARGS` in `dir` with the clock pinned to [`NOW`].
pub fn shorts(dir: &Path, args: &[&str]) -> Output {
    shorts_at(dir, NOW, args)
}

/// Runs `shorts ARGS` in `dir` with the clock pinned to `now` (RFC 3339).
pub fn shorts_at(dir: &Path, now: &str, args: &[&str]) -> Output {
    shorts_command(dir, now)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run shorts")
}

/// The `shorts` binary, to run in the site `dir` with the clock pinned to
/// `now`, on the engine this test run is on (see [`site_database`]).
pub fn shorts_command(dir: &Path, now: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shorts"));
    command.current_dir(dir).env("SHORTS_NOW", now);
    match site_database(dir) {
        Location::Postgres(url) => command
            .env(shorts::config::DATABASE_URL_ENV, url)
            .env(shorts::tokens::SECRET_ENV, SHARED_SECRET),
        Location::File(_) => command.env_remove(shorts::config::DATABASE_URL_ENV),
    };
    command
}

/// What the tests give `shorts` as `SHORTS_SECRET` when the database is
/// shared (PostgreSQL), where a key file in `data/` is refused.
pub const SHARED_SECRET: &str = "the same long random value on every host";

/// The key the site in `dir` signs its links with.
pub fn site_secret(dir: &Path) -> shorts::tokens::Secret {
    match site_database(dir) {
        Location::Postgres(_) => shorts::tokens::Secret::from_bytes(SHARED_SECRET.as_bytes()),
        own @ Location::File(_) => {
            shorts::tokens::Secret::load(&dir.join("data"), &own).expect("the site's secret")
        }
    }
}

/// `at` (RFC 3339) `n` claim leases later, a minute more each: when a run
/// may take over the claims of runs that died on a shared ledger
/// (PostgreSQL), which keeps them from other senders until then.
pub fn leases_after(at: &str, n: usize) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(at).expect("an RFC 3339 time");
    let lease = shorts::store::CLAIM_LEASE + chrono::Duration::minutes(1);
    (at.to_utc() + lease * i32::try_from(n).expect("a few leases"))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Which engine the end-to-end tests run on: SQLite (each site's own file,
/// the default), or PostgreSQL when `SHORTS_TEST_ENGINE=postgres`, on the
/// server in `SHORTS_TEST_POSTGRES` (which `.ci/run` starts and runs the
/// store, digest, serve and crash tests against a second time).
pub fn on_postgres() -> bool {
    std::env::var("SHORTS_TEST_ENGINE").is_ok_and(|engine| engine == "postgres")
}

/// The store of the site in `dir`: its SQLite file, or on PostgreSQL a
/// scratch schema of its own, made on first use and named in a file beside
/// the site (not in it: tests list what a command wrote there), so every
/// run of `shorts` there uses the same one.
pub fn site_database(dir: &Path) -> Location {
    if !on_postgres() {
        return Location::File(dir.join("data/shorts.db"));
    }
    let named = dir.with_extension("database-url");
    if let Ok(url) = std::fs::read_to_string(&named) {
        return Location::Postgres(url);
    }
    let server = std::env::var("SHORTS_TEST_POSTGRES")
        .expect("SHORTS_TEST_ENGINE=postgres needs SHORTS_TEST_POSTGRES, a server URL");
    let url = shorts::store::postgres_scratch_schema(&server).expect("a scratch schema");
    std::fs::write(&named, &url).expect("name the site's database");
    Location::Postgres(url)
}

/// A loopback port nothing listens on (bound, then released), for a
/// server that cannot be reached.
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("its address")
        .port()
}

/// Adds `text` (whole TOML tables) at the end of the site's config.toml.
pub fn append_config(site: &Path, text: &str) {
    let path = site.join("config.toml");
    let mut config = std::fs::read_to_string(&path).expect("read config.toml");
    config.push('\n');
    config.push_str(text);
    std::fs::write(&path, config).expect("write config.toml");
}

/// Replaces `from` by `to` in the site's config.toml; `from` must occur.
pub fn edit_config(site: &Path, from: &str, to: &str) {
    let path = site.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("read config.toml");
    assert!(text.contains(from), "config.toml has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write config.toml");
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Builds a copy of fixture `name`; returns the folder (kept alive by the guard).
pub fn built(name: &str) -> tempfile::TempDir {
    let site = site_from(name);
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "build failed: {}", stderr(&out));
    site
}

/// A copy of the bundled sample site (the repository's own config.toml,
/// content/ and templates/), as the README's first command builds it.
pub fn sample_site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("config.toml"), dir.path().join("config.toml"))
        .expect("copy config.toml");
    copy_tree(&root.join("content"), &dir.path().join("content"));
    copy_tree(&root.join("templates"), &dir.path().join("templates"));
    dir
}

/// A copy of the fixture site with a weekly `[digest]` sent through the SMTP
/// server on loopback `port`; `smtp` adds keys to `[delivery.smtp]`.
pub fn smtp_digest_site(port: u16, smtp: &str) -> tempfile::TempDir {
    let site = site_from("site");
    append_config(
        site.path(),
        &format!(
            r#"
[digest]
schedule = "0 8 * * MON"
from = "Fixture Digest <digest@example.com>"
postal_address = "Fixture Ltd, 1 Test Street, Testville"

[delivery]
transport = "smtp"

[delivery.smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
{smtp}
"#
        ),
    );
    site
}

/// A copy of the fixture site with a weekly outbox digest and two more
/// cadences on offer, `daily` and `instant` ("As published").
pub fn cadences_site() -> tempfile::TempDir {
    let site = site_from("site");
    append_config(
        site.path(),
        r#"
[digest]
schedule = "0 8 * * MON"
from = "Fixture Digest <digest@example.com>"
postal_address = "Fixture Ltd, 1 Test Street, Testville"

[[digest.cadences]]
name = "daily"
schedule = "0 8 * * *"

[[digest.cadences]]
name = "instant"
schedule = "instant"
label = "As published"
"#,
    );
    site
}

/// The site's database, opened through the store as `shorts` opens it.
pub fn store(site: &Path) -> Box<dyn Store> {
    Box::new(Database::open(site_database(site)).expect("open the database"))
}

/// Runs `statement` on the site's database as it is, on either engine:
/// for a test that makes the ledger look like a crash left it.
pub fn execute_sql(site: &Path, statement: &str) {
    match site_database(site) {
        Location::File(path) => {
            let db = rusqlite::Connection::open(path).expect("open the database");
            db.execute_batch(statement).expect("run the statement");
        }
        Location::Postgres(url) => {
            let mut db = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            db.batch_execute(statement).expect("run the statement");
        }
    }
}

/// Every delivery of every digest.
pub fn all_deliveries(store: &dyn Store) -> Vec<Delivery> {
    // Digests are numbered from 1 without gaps.
    let digests = store.digest_count().expect("count the digests");
    (1..=digests)
        .flat_map(|number| store.deliveries(number).expect("read the deliveries"))
        .collect()
}

/// How many deliveries, of every digest, are in each state; states with
/// none left out, the others in the order of their names.
pub fn delivery_states(site: &Path) -> Vec<(DeliveryState, usize)> {
    let mut counts: Vec<(DeliveryState, usize)> = Vec::new();
    for delivery in all_deliveries(store(site).as_ref()) {
        match counts
            .iter_mut()
            .find(|(state, _)| *state == delivery.state)
        {
            Some((_, n)) => *n += 1,
            None => counts.push((delivery.state, 1)),
        }
    }
    counts.sort_by_key(|(state, _)| match state {
        DeliveryState::Deferred => 0,
        DeliveryState::Failed => 1,
        DeliveryState::Sending => 2,
        DeliveryState::Sent => 3,
        DeliveryState::Skipped => 4,
    });
    counts
}

/// The fixture site, built, with a weekly `[digest]` sent through the SMTP
/// server on loopback `smtp_port`: what `shorts serve`'s sign-up needs.
pub fn serve_site(smtp_port: u16) -> tempfile::TempDir {
    let site = site_from("site");
    append_config(
        site.path(),
        &format!(
            "[digest]\nschedule = \"0 8 * * MON\"\nfrom = \"Digest <digest@example.com>\"\npostal_address = \"1 Test Street\"\n\
             [delivery]\ntransport = \"smtp\"\n[delivery.smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\n"
        ),
    );
    let out = shorts_at(site.path(), "2026-06-08T08:00:00Z", &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    site
}

/// [`serve_site`] trusting 127.0.0.1 as its proxy: a reverse proxy on
/// loopback, or tests that give each sign-up its own client address in
/// `X-Forwarded-For`.
pub fn serve_site_behind_proxy(smtp_port: u16) -> tempfile::TempDir {
    let site = serve_site(smtp_port);
    edit_config(
        site.path(),
        "[site]",
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n\n[site]",
    );
    site
}

/// An RFC 8058 one-click unsubscribe posted to `url`, as a mail client
/// sends it; its status.
pub fn one_click(http: &reqwest::blocking::Client, url: &str) -> reqwest::StatusCode {
    http.post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .expect("post the one-click unsubscribe")
        .status()
}

/// Parses `text` (`serve`'s metrics) with the Prometheus project's own
/// OpenMetrics parser (tests/check_metrics.py): the Python in
/// `SHORTS_OPENMETRICS_PYTHON`, else `python3`. Skipped where the parser is
/// not installed, unless `SHORTS_REQUIRE_OPENMETRICS_PARSER` is set (as
/// `.ci/run`, which installs it, does).
pub fn parse_openmetrics(text: &str) {
    use std::io::Write as _;
    let python = std::env::var("SHORTS_OPENMETRICS_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_metrics.py");
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {python}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the metrics");
    let out = child.wait_with_output().expect("the parser's answer");
    if out.status.code() == Some(3) {
        let reason = format!("{}: pip install prometheus-client", stderr(&out).trim());
        assert!(
            std::env::var_os("SHORTS_REQUIRE_OPENMETRICS_PARSER").is_none(),
            "SHORTS_REQUIRE_OPENMETRICS_PARSER is set but {reason}"
        );
        eprintln!("SKIPPED the OpenMetrics parser: {reason}");
        return;
    }
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
}

/// Waits until `shorts serve`'s background sender has nothing queued or in
/// flight: every sign-up answered so far has had its email sent (or dropped).
pub fn mail_queue_drained(site: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let counts = store(site)
            .mail_queue_counts()
            .expect("read the mail queue");
        if counts.queued + counts.sending == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the mail queue is still {counts:?} after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every file below `public` (links followed) and its bytes.
pub fn every_file(public: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut folders = vec![public.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read public/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let relative = path.strip_prefix(public).expect("inside").to_path_buf();
                files.insert(relative, std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}
