//! PostgreSQL as the store, and the faults an SQLite file cannot have: a
//! server that cannot be reached, a read replica's URL given by mistake,
//! the connection dropped in the middle of a send, and a shared database
//! without a shared signing key.
//!
//! The tests that need a server use the one in `SHORTS_TEST_POSTGRES`
//! (`.ci/run` starts one); without it they say why and pass, unless
//! `SHORTS_REQUIRE_POSTGRES` is set.

mod common;
#[path = "common/faulty_smtp.rs"]
mod faulty_smtp;
#[path = "common/server.rs"]
mod server;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use shorts::config::DATABASE_URL_ENV;
use shorts::store::{Database, DeliveryState, Ledger, Location, MailQueue, Store, SubscriberStore};
use shorts::tokens::SECRET_ENV;

const WEEK_1: &str = "2026-06-08T08:00:00Z";

/// A new, empty database (a scratch schema) on the test server, or `None`
/// after saying why there is none.
fn scratch_database() -> Option<String> {
    let Some(server) = std::env::var("SHORTS_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        assert!(
            std::env::var_os("SHORTS_REQUIRE_POSTGRES").is_none(),
            "SHORTS_REQUIRE_POSTGRES is set but SHORTS_TEST_POSTGRES names no server"
        );
        eprintln!("skipped: SHORTS_TEST_POSTGRES names no PostgreSQL server (.ci/run starts one)");
        return None;
    };
    Some(shorts::store::postgres_scratch_schema(&server).expect("a scratch schema"))
}

/// Imports `reader0@example.org` and on, `n` of them, into the database at `url`.
fn import_readers(site: &Path, url: &str, n: usize) {
    let csv: String = std::iter::once("email\n".to_string())
        .chain((0..n).map(|i| format!("reader{i}@example.org\n")))
        .collect();
    std::fs::write(site.join("readers.csv"), csv).expect("write CSV");
    let out = shorts_on(site, url, &["subscribers", "import", "readers.csv"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
}

/// How many of the `readers` the server got nothing for, and how many
/// messages it got beyond one each.
fn missing_and_twice(smtp: &faulty_smtp::FaultySmtp, readers: usize) -> (usize, usize) {
    let counts = smtp.per_recipient();
    let missing = (0..readers)
        .filter(|i| !counts.contains_key(&format!("reader{i}@example.org")))
        .count();
    (missing, counts.values().map(|n| n - 1).sum())
}

/// Runs `shorts ARGS` in `site` on the database at `url`.
fn shorts_on(site: &Path, url: &str, args: &[&str]) -> Output {
    on_database(site, WEEK_1, url)
        .args(args)
        .output()
        .expect("run shorts")
}

/// The path and query of the unsubscribe link in a message's
/// `List-Unsubscribe` header.
fn unsubscribe_path(message: &[u8]) -> String {
    use mailparse::MailHeaderMap;
    let mail = mailparse::parse_mail(message).expect("a message");
    let header = mail
        .headers
        .get_first_value("List-Unsubscribe")
        .expect("List-Unsubscribe");
    let start = header
        .find("/unsubscribe?token=")
        .expect("an unsubscribe link");
    header[start..]
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// `shorts` in `site` at `now` on the shared database at `url`, with the
/// `SHORTS_SECRET` a shared database needs.
fn on_database(site: &Path, now: &str, url: &str) -> Command {
    let mut command = common::shorts_command(site, now);
    command
        .env(DATABASE_URL_ENV, url)
        .env(SECRET_ENV, common::SHARED_SECRET);
    command
}

/// A server that is down at the start of a run is a temporary failure
/// (75, as for an SMTP server that is down), named without its password.
#[test]
fn commands_against_a_database_that_cannot_be_reached_exit_75_and_say_where() {
    let site = common::smtp_digest_site(common::unused_port(), "");
    let port = common::unused_port();
    let url = format!("postgres://shorts:s3cret@127.0.0.1:{port}/list?connect_timeout=3");
    for args in [
        &["digest", "send"][..],
        &["publish"],
        &["subscribers", "add", "a@example.com"],
    ] {
        let out = shorts_on(site.path(), &url, args);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(75), "{args:?}: {err}");
        assert!(
            err.contains(&format!("postgres://shorts:***@127.0.0.1:{port}/list"))
                && err.contains("cannot connect")
                && !err.contains("s3cret"),
            "{args:?}: {err}"
        );
    }
}

/// A read replica's URL given by mistake is refused before anything is
/// tried, with what to give instead; so is a database the server does not
/// have (exit 1 for both: the setting is wrong, waiting will not help).
#[test]
fn a_url_that_takes_no_writes_or_names_no_database_is_refused_as_a_setting() {
    let Some(url) = scratch_database() else {
        return;
    };
    let site = common::smtp_digest_site(common::unused_port(), "");
    let read_only = format!("{url}%20-c%20default_transaction_read_only%3Don");
    let out = shorts_on(
        site.path(),
        &read_only,
        &["subscribers", "add", "a@example.com"],
    );
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("takes no writes") && err.contains("give the primary's URL"),
        "{err}"
    );

    // So is a database the server does not have: no run would get past it.
    let missing = url.replacen("/shorts?", "/no_such_database?", 1);
    let out = shorts_on(site.path(), &missing, &["digest", "send"]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("database \"no_such_database\" does not exist"),
        "{err}"
    );
}

/// The database connection dropped while a digest goes out (a failover, a
/// restart, an administrator's kill): the run stops with 75, nothing is
/// lost, and the next run sends the rest; only messages in flight when it
/// dropped may arrive twice.
#[test]
fn a_connection_dropped_mid_send_stops_the_run_and_the_next_one_delivers_the_rest() {
    let Some(url) = scratch_database() else {
        return;
    };
    let smtp = faulty_smtp::FaultySmtp::start();
    smtp.slow(Duration::from_millis(5));
    let pool_size = 2;
    let site = common::smtp_digest_site(smtp.port, &format!("pool_size = {pool_size}"));
    let readers = 400;
    import_readers(site.path(), &url, readers);

    // Its own application name, so only this run's connection is dropped.
    let name = format!("shorts_drop_{}", std::process::id());
    let sender_url = format!("{url}&application_name={name}");
    let child = on_database(site.path(), WEEK_1, &sender_url)
        .args(["digest", "send"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start digest send");
    let deadline = Instant::now() + Duration::from_secs(60);
    while smtp.accepted().len() < 50 {
        assert!(Instant::now() < deadline, "the send never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    let dropped = drop_connections(&url, &name);
    assert!(dropped >= 1, "no connection named {name} to drop");
    let out = child.wait_with_output().expect("digest send ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains("the next run resumes"), "{err}");
    let before = smtp.accepted().len();
    assert!(
        before < readers,
        "the run went on after the drop: {before} sent"
    );

    // The dropped run's claims are held for their lease: the run after it
    // (cron's, a lease later) takes them over.
    let out = on_database(site.path(), &common::leases_after(WEEK_1, 1), &url)
        .args(["digest", "send"])
        .output()
        .expect("run shorts");
    assert!(out.status.success(), "{}", common::stderr(&out));
    let (missing, twice) = missing_and_twice(&smtp, readers);
    assert_eq!(missing, 0, "every reader got the digest");
    // In flight: the message each connection had in hand when the database
    // went, and at most one more each that it took before the run noticed
    // (at its next write, within milliseconds) and halted them.
    let in_flight = 2 * pool_size;
    assert!(
        twice <= in_flight,
        "{twice} sent twice; at most {in_flight} were in flight"
    );
    let store = Database::open(Location::Postgres(url)).expect("open the store");
    let deliveries = store.deliveries(1).expect("deliveries");
    assert!(
        deliveries.len() == readers && deliveries.iter().all(|d| d.state == DeliveryState::Sent),
        "every delivery recorded sent"
    );
    assert_eq!(store.integrity_check().expect("check"), "ok");
    eprintln!("dropped after {before} messages; {twice} sent twice, 0 missing");
}

/// Ends every connection called `name` on the server, as an administrator
/// (or a failover) would; how many there were.
fn drop_connections(url: &str, name: &str) -> u64 {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    let rows = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .expect("terminate");
    rows.len() as u64
}

/// A list moved from SQLite to PostgreSQL with `subscribers copy` keeps
/// every subscriber, status, consent record and delivery: the digest sent
/// before the move is not sent again after it, the next one goes to the
/// same readers, and a new sign-up is numbered after the copied ones.
#[test]
fn a_list_copied_from_sqlite_to_postgres_goes_on_where_it_was() {
    let Some(url) = scratch_database() else {
        return;
    };
    let smtp = faulty_smtp::FaultySmtp::start();
    let site = common::smtp_digest_site(smtp.port, "");
    let on_sqlite = |args: &[&str], now: &str| {
        let out = common::shorts_command(site.path(), now)
            .env_remove(DATABASE_URL_ENV)
            .args(args)
            .output()
            .expect("run shorts");
        assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
    };
    for who in ["a@example.com", "b@example.com", "c@example.com"] {
        on_sqlite(&["subscribers", "add", who, "--tracks", "llm"], WEEK_1);
    }
    on_sqlite(&["digest", "send"], WEEK_1);
    assert_eq!(smtp.accepted().len(), 3);
    let sqlite = Database::open(&site.path().join("data/shorts.db")).expect("open SQLite");

    let out = common::shorts_command(site.path(), WEEK_1)
        .env_remove(DATABASE_URL_ENV)
        .args(["subscribers", "copy", "--to", &url])
        .output()
        .expect("run copy");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        said.contains("3 subscribers") && said.contains("3 deliveries"),
        "{said}"
    );
    let postgres = Database::open(Location::Postgres(url.clone())).expect("open PostgreSQL");
    assert_eq!(
        postgres.subscribers().unwrap(),
        sqlite.subscribers().unwrap()
    );
    for subscriber in sqlite.subscribers().unwrap() {
        assert_eq!(
            postgres.consent(subscriber.id).unwrap(),
            sqlite.consent(subscriber.id).unwrap()
        );
    }
    assert_eq!(
        postgres.deliveries(1).unwrap(),
        sqlite.deliveries(1).unwrap()
    );
    assert_eq!(postgres.row_counts().unwrap(), sqlite.row_counts().unwrap());

    // The links in the emails already sent keep working with the key
    // carried over as the copy says; with no key, nothing runs.
    assert!(
        said.contains("SHORTS_SECRET=base64:$(base64 -w0 data/secret.key)"),
        "{said}"
    );
    for args in [
        &["digest", "send"][..],
        &["publish"],
        &["serve", "--bind", "127.0.0.1:0"],
        &["schedule"],
    ] {
        let out = common::shorts_command(site.path(), WEEK_1)
            .env(DATABASE_URL_ENV, &url)
            .env_remove(SECRET_ENV)
            .args(args)
            .output()
            .expect("run shorts");
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("set SHORTS_SECRET to the same long random value"),
            "{args:?}: {err}"
        );
    }
    let key = std::fs::read(site.path().join("data/secret.key")).expect("the key file");
    let carried = format!(
        "base64:{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let sent_before = unsubscribe_path(&smtp.accepted()[0].data);
    for (secret, works) in [(carried.as_str(), true), (common::SHARED_SECRET, false)] {
        let env = [(DATABASE_URL_ENV, url.as_str()), (SECRET_ENV, secret)];
        let serve = server::Server::start_with(site.path(), WEEK_1, &env);
        let page = reqwest::blocking::get(serve.url(&sent_before)).expect("GET the link");
        assert_eq!(
            page.status().is_success(),
            works,
            "{secret}: {}",
            page.status()
        );
    }

    // On PostgreSQL from now on: the week's digest is not sent again...
    let out = shorts_on(site.path(), &url, &["digest", "send"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(smtp.accepted().len(), 3, "nothing sent twice");
    // ...and a new subscriber is numbered after the copied ones.
    let out = shorts_on(site.path(), &url, &["subscribers", "add", "d@example.com"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let d = postgres
        .subscriber_by_email("d@example.com")
        .unwrap()
        .unwrap();
    assert_eq!(d.id, 4, "after the copied ids 1 to 3");

    // A second copy into the same database is refused: it is not empty.
    let out = common::shorts_command(site.path(), WEEK_1)
        .env_remove(DATABASE_URL_ENV)
        .args(["subscribers", "copy", "--to", &url])
        .output()
        .expect("run copy");
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("a copy goes only into an empty one"));
}

/// Three senders (here three copies of the site, as on three hosts) share
/// one digest through the database, and random ones are SIGKILLed, round
/// after round, more than 20 times: every reader gets the digest, and twice
/// only for a message a killed sender had in flight. Each round starts a
/// claim lease after the last, as cron on three hosts would, so the dead
/// senders' claims are taken over; the senders of one round share a clock.
#[test]
fn three_senders_killed_again_and_again_deliver_each_message_once_between_them() {
    let Some(url) = scratch_database() else {
        return;
    };
    let smtp = faulty_smtp::FaultySmtp::start();
    smtp.slow(Duration::from_millis(2));
    let pool_size = 2;
    let first = common::smtp_digest_site(smtp.port, &format!("pool_size = {pool_size}"));
    let copies: Vec<tempfile::TempDir> = (0..2)
        .map(|_| {
            let copy = tempfile::tempdir().expect("temporary folder");
            common::copy_tree(first.path(), copy.path());
            copy
        })
        .collect();
    let hosts: Vec<&Path> = std::iter::once(first.path())
        .chain(copies.iter().map(|c| c.path()))
        .collect();
    let readers = 3_000;
    import_readers(first.path(), &url, readers);

    let mut random = 0x5eed_u64;
    let mut kills = 0;
    let mut round = 0;
    while kills < 21 {
        kills += send_round(&hosts, &url, round, Some(&mut random));
        round += 1;
        assert!(round < 200, "never got 21 kills in");
    }
    send_round(&hosts, &url, round, None);

    let (missing, twice) = missing_and_twice(&smtp, readers);
    assert_eq!(missing, 0, "every reader got the digest");
    assert!(
        twice <= kills * pool_size,
        "{twice} sent twice after {kills} kills: more than the {pool_size} in flight at each"
    );
    let store = Database::open(Location::Postgres(url)).expect("open the store");
    let digests = store.digests().expect("digests");
    assert_eq!(
        digests.len(),
        1,
        "one digest, however many senders planned it"
    );
    assert!(digests[0].completed, "completed by the last sender");
    let deliveries = store.deliveries(1).expect("deliveries");
    let unsent: Vec<_> = deliveries
        .iter()
        .filter(|d| d.state != DeliveryState::Sent)
        .collect();
    assert!(unsent.is_empty(), "recorded but not sent: {unsent:?}");
    assert_eq!(deliveries.len(), readers);
    eprintln!(
        "{readers} readers, 3 senders, {kills} SIGKILLs in {round} rounds: 0 missing, {twice} sent twice"
    );
}

/// One round: a `digest send` from each host at once, at the round's time;
/// with `random`, each is SIGKILLed after a random 50-500 ms unless it ended
/// first. Returns how many were killed; a sender that ends must succeed.
fn send_round(hosts: &[&Path], url: &str, round: usize, random: Option<&mut u64>) -> usize {
    let now = common::leases_after(WEEK_1, round);
    let mut children: Vec<_> = hosts
        .iter()
        .map(|host| {
            on_database(host, &now, url)
                .args(["digest", "send", "-q"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start digest send")
        })
        .collect();
    let deadlines: Vec<Instant> = match random {
        Some(random) => (0..children.len())
            .map(|_| {
                *random ^= *random << 13;
                *random ^= *random >> 7;
                *random ^= *random << 17;
                Instant::now() + Duration::from_millis(50 + *random % 450)
            })
            .collect(),
        None => vec![Instant::now() + Duration::from_secs(600); children.len()],
    };
    let mut killed = 0;
    for (child, deadline) in children.iter_mut().zip(deadlines) {
        loop {
            if let Some(status) = child.try_wait().expect("poll") {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
                }
                assert!(status.success(), "a sender failed in round {round}: {err}");
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill(); // SIGKILL
                let _ = child.wait();
                killed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    killed
}

/// A restart or failover of the database breaks `serve`'s connection: a
/// request that finds it broken is answered 503 with `Retry-After` (try
/// again), never 500, and the requests after it are served on a new
/// connection, without restarting `serve`.
#[test]
fn serve_connects_again_after_its_database_connection_breaks() {
    let Some(url) = scratch_database() else {
        return;
    };
    let smtp = faulty_smtp::FaultySmtp::start();
    let site = common::serve_site(smtp.port);
    let name = format!("shorts_serve_{}", std::process::id());
    let serve_url = format!("{url}&application_name={name}");
    let env = [
        (DATABASE_URL_ENV, serve_url.as_str()),
        (SECRET_ENV, common::SHARED_SECRET),
    ];
    let server = server::Server::start_with(site.path(), WEEK_1, &env);
    let http = reqwest::blocking::Client::new();
    let sign_up = |email: &str| {
        http.post(server.url("/subscribe"))
            .form(&[("email", email)])
            .send()
            .expect("post a sign-up")
    };
    assert_eq!(sign_up("a@example.com").status(), 200);

    assert!(drop_connections(&url, &name) >= 1, "serve's connection");
    let first = sign_up("b0@example.com");
    if first.status() != 200 {
        assert_eq!(first.status(), 503);
        assert_eq!(first.headers()["retry-after"], "5");
    }
    for i in 1..3 {
        assert_eq!(sign_up(&format!("b{i}@example.com")).status(), 200);
    }
    let store = Database::open(Location::Postgres(url)).expect("open the database");
    let counts = store.mail_queue_counts().expect("the queue");
    let queued = counts.queued + counts.sending + counts.sent + counts.failed + counts.dropped;
    assert!(
        queued >= 3,
        "the sign-ups after the break were recorded: {counts:?}"
    );
}
