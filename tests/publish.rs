//! `shorts publish` and `shorts schedule` with a fake clock: one digest per
//! slot however often cron runs, one run at a time, daylight-saving slots
//! once each, missed slots caught up within the grace period; and on the real
//! clock, a scheduled short in the pages and feeds seconds after its time.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use common::{shorts_at, stderr, stdout};
use shorts::config::Config;
use shorts::daemon::Daemon;
use shorts::delivery::{Outbox, Transport};
use shorts::digest::Sent;
use shorts::publish::{PublishReport, publish};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The fixture site with an outbox digest on `schedule` in `timezone`.
fn site(schedule: &str, timezone: &str) -> tempfile::TempDir {
    let site = common::site_from("site");
    common::edit_config(
        site.path(),
        "timezone = \"Europe/Berlin\"",
        &format!("timezone = \"{timezone}\""),
    );
    common::append_config(
        site.path(),
        &format!(
            "[digest]\nschedule = \"{schedule}\"\nfrom = \"Digest <digest@example.com>\"\npostal_address = \"1 Test Street\"\n"
        ),
    );
    for who in ["a@example.com", "b@example.com"] {
        let out = shorts_at(
            site.path(),
            "2026-01-01T00:00:00Z",
            &["subscribers", "add", who],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    site
}

fn write_short(site: &Path, slug: &str, date: &str) {
    write_short_with(site, slug, date, "");
}

/// A short titled `slug`, with `more` front-matter lines after its date.
fn write_short_with(site: &Path, slug: &str, date: &str, more: &str) {
    let text = format!(
        "+++\ntitle = \"{slug}\"\ndate = {date}\n{more}summary = \"S\"\ntrack = \"llm\"\n+++\nBody.\n"
    );
    std::fs::write(site.join(format!("content/shorts/{slug}.md")), text).unwrap();
}

/// An instant as front matter takes it, to the second.
fn front_matter_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Runs publish in-process at `now`.
fn publish_at(site: &Path, now: DateTime<Utc>) -> PublishReport {
    let mut config = Config::load(&site.join("config.toml")).unwrap();
    // What `shorts` would take from SHORTS_DATABASE_URL in this test run.
    config.database = common::site_database(site);
    // Run in-process, publish reads SHORTS_SECRET from this process's
    // environment, as `shorts` does from its own.
    if common::on_postgres() {
        assert_eq!(
            std::env::var(shorts::tokens::SECRET_ENV).ok().as_deref(),
            Some(common::SHARED_SECRET),
            "on PostgreSQL, run these tests with SHORTS_SECRET=\"{}\" (as .ci/run does)",
            common::SHARED_SECRET
        );
    }
    let outbox = config.delivery.outbox_dir.clone();
    let cancel = AtomicBool::new(false);
    let transport = || -> Result<Box<dyn Transport>, shorts::delivery::SmtpSetupError> {
        Ok(Box::new(Outbox {
            dir: outbox.clone(),
        }))
    };
    // Other tests in this process fork children; a fork can briefly share our
    // lock's file descriptor until its exec, so a refused lock is retried.
    for _ in 0..50 {
        match publish(&config, now, &cancel, &transport, &|_, _, _| {}) {
            Err(shorts::publish::PublishError::Locked(_)) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other.unwrap(),
        }
    }
    panic!("the run lock stayed held");
}

/// Every digest number that went out, once per message.
fn digests_sent(report: &PublishReport) -> Vec<(i64, usize)> {
    match &report.digest {
        Some(Sent::Digests(reports)) => reports.iter().map(|r| (r.number, r.sent)).collect(),
        _ => Vec::new(),
    }
}

/// Outbox messages per digest folder, sorted.
fn outbox(site: &Path) -> Vec<(String, usize)> {
    let Ok(entries) = std::fs::read_dir(site.join("outbox")) else {
        return Vec::new();
    };
    let mut counts: Vec<(String, usize)> = entries
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_dir(e.path()).unwrap().count(),
            )
        })
        .collect();
    counts.sort();
    counts
}

/// Publishes every `step` from `from` to `to`; returns (instant, digest number) for each send.
fn run_every(site: &Path, from: &str, to: &str, step: Duration) -> Vec<(DateTime<Utc>, i64)> {
    let mut sends = Vec::new();
    let mut now = utc(from);
    while now < utc(to) {
        for (number, sent) in digests_sent(&publish_at(site, now)) {
            assert_eq!(sent, 2, "both subscribers, once");
            sends.push((now, number));
        }
        now += step;
    }
    sends
}

#[test]
fn publishing_every_five_minutes_for_nine_days_sends_one_digest_per_slot() {
    let site = site("0 8 * * MON", "Europe/Berlin");
    // A short in each week; the week-2 one appears mid-week.
    write_short(site.path(), "week-two", "2026-06-10T12:00:00Z");
    let sends = run_every(
        site.path(),
        "2026-06-07T00:00:00Z",
        "2026-06-16T00:00:00Z",
        Duration::minutes(5),
    );
    // 08:00 Berlin is 06:00 UTC in summer.
    assert_eq!(
        sends,
        [
            (utc("2026-06-08T06:00:00Z"), 1),
            (utc("2026-06-15T06:00:00Z"), 2)
        ]
    );
    assert_eq!(
        outbox(site.path()),
        [("digest-1".to_string(), 2), ("digest-2".to_string(), 2)]
    );
}

#[test]
fn daylight_saving_slots_fire_once_each() {
    // (zone, daily schedule, days around a change): a slot in a skipped hour,
    // and a slot in a repeated hour.
    let cases = [
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2026-03-28T00:00:00Z",
            "2026-03-31T00:00:00Z",
        ),
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2026-10-24T00:00:00Z",
            "2026-10-27T00:00:00Z",
        ),
        (
            "America/New_York",
            "30 2 * * *",
            "2026-03-07T05:00:00Z",
            "2026-03-10T05:00:00Z",
        ),
        (
            "America/New_York",
            "30 1 * * *",
            "2026-10-31T04:00:00Z",
            "2026-11-03T05:00:00Z",
        ),
    ];
    for (zone, schedule, from, to) in cases {
        let site = site(schedule, zone);
        // Something new every day, so every slot has a digest to send.
        let mut day = utc(from) - Duration::days(1);
        while day < utc(to) {
            write_short(
                site.path(),
                &format!("day-{}", day.format("%m-%d")),
                &day.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            );
            day += Duration::hours(12);
        }
        let sends = run_every(site.path(), from, to, Duration::minutes(10));
        let days: Vec<String> = sends
            .iter()
            .map(|(t, _)| t.format("%m-%d").to_string())
            .collect();
        let mut unique = days.clone();
        unique.dedup();
        assert_eq!(
            days, unique,
            "{zone} {schedule}: a slot fired twice: {sends:?}"
        );
        assert_eq!(
            sends.len(),
            3,
            "{zone} {schedule}: one digest a day: {sends:?}"
        );
    }
}

#[test]
fn a_slot_missed_within_the_grace_period_is_caught_up_an_older_one_is_skipped() {
    let site = site("0 8 * * MON", "Europe/Berlin");
    // Down over the slot; back 20 hours later: within the default 24 h.
    let report = publish_at(site.path(), utc("2026-06-09T02:00:00Z"));
    assert_eq!(digests_sent(&report), [(1, 2)], "{report}");

    let late = self::site("0 8 * * MON", "Europe/Berlin");
    assert_eq!(
        digests_sent(&publish_at(late.path(), utc("2026-06-08T06:30:00Z"))),
        [(1, 2)]
    );
    write_short(late.path(), "week-two", "2026-06-10T12:00:00Z");
    // Back 30 hours after the next slot: skipped, with the reason.
    let report = publish_at(late.path(), utc("2026-06-16T12:00:00Z"));
    match &report.digest {
        Some(Sent::Nothing(reason)) => {
            assert!(
                reason.contains("missed by more than the grace period (24 h)"),
                "{reason}"
            )
        }
        other => panic!("expected a skip, got {other:?}"),
    }
    // Its shorts go out with the next digest instead.
    let report = publish_at(late.path(), utc("2026-06-22T06:30:00Z"));
    assert_eq!(digests_sent(&report), [(2, 2)], "{report}");
    let text = std::fs::read_to_string(
        late.path()
            .join("outbox/digest-2/digest-2.s1@example.com.eml"),
    )
    .unwrap();
    assert!(
        text.contains("week-two"),
        "the skipped week's short is in the next digest"
    );
}

#[test]
fn a_held_lock_makes_publish_exit_73_and_do_nothing() {
    let site = site("0 8 * * MON", "Europe/Berlin");
    let lock = shorts::lock::RunLock::acquire(&site.path().join("data")).unwrap();
    let out = shorts_at(site.path(), "2026-06-08T07:00:00Z", &["publish"]);
    assert_eq!(out.status.code(), Some(73), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: another shorts run holds"),
        "{}",
        stderr(&out)
    );
    for other in [&["digest", "send"][..], &["build"][..]] {
        let out = shorts_at(site.path(), "2026-06-08T07:00:00Z", other);
        assert_eq!(out.status.code(), Some(73), "{other:?}: {}", stderr(&out));
    }
    assert!(!site.path().join("public").exists() && outbox(site.path()).is_empty());
    drop(lock);
    let out = shorts_at(site.path(), "2026-06-08T07:00:00Z", &["publish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("; digest #1: 2 sent"),
        "{}",
        stdout(&out)
    );
    let quiet = shorts_at(site.path(), "2026-06-08T07:05:00Z", &["publish", "-q"]);
    assert!(quiet.status.success() && stdout(&quiet).is_empty() && stderr(&quiet).is_empty());
}

#[test]
fn concurrent_publish_processes_send_each_digest_once() {
    let site = site("0 8 * * MON", "Europe/Berlin");
    let mut now = utc("2026-06-08T06:00:00Z");
    for week in 0..4 {
        write_short(
            site.path(),
            &format!("w{week}"),
            &now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        let at = (now + Duration::minutes(1)).to_rfc3339();
        let children: Vec<_> = (0..3)
            .map(|_| {
                common::shorts_command(site.path(), &at)
                    .args(["publish", "-q"])
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            let code = child.wait().unwrap().code();
            assert!(matches!(code, Some(0) | Some(73)), "exit {code:?}");
        }
        now += Duration::weeks(1);
    }
    let expected: Vec<(String, usize)> = (1..=4).map(|n| (format!("digest-{n}"), 2)).collect();
    assert_eq!(outbox(site.path()), expected);
}

#[test]
fn with_smtp_down_publish_builds_the_feeds_and_the_digest_stays_due() {
    let site = site("0 8 * * MON", "Europe/Berlin");
    let port = common::unused_port();
    common::append_config(
        site.path(),
        &format!(
            "[delivery]\ntransport = \"smtp\"\n[delivery.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nattempts = 2\nbackoff_ms = 10\n"
        ),
    );
    let out = shorts_at(site.path(), "2026-06-08T07:00:00Z", &["publish"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        site.path().join("public/rss.xml").exists(),
        "the feeds were built"
    );
    let again = shorts_at(
        site.path(),
        "2026-06-08T07:05:00Z",
        &["digest", "send", "--dry-run"],
    );
    assert!(
        stdout(&again).contains("would send    a@example.com"),
        "still due: {}",
        stdout(&again)
    );
}

/// The daemon, for real: started three seconds before a slot, it publishes at
/// the slot, rebuilds when a short is added, and stops cleanly on SIGTERM.
#[test]
fn schedule_runs_at_the_slot_rebuilds_on_change_and_stops_on_sigterm() {
    let site = site("0 8 * * MON", "Europe/Berlin");
    let mut daemon = common::shorts_command(site.path(), "2026-06-08T05:59:57Z")
        .args(["schedule"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waited = wait_for(|| outbox(site.path()) == [("digest-1".to_string(), 2)], 20);
    assert!(waited, "the digest went out at the slot");
    write_short(site.path(), "added-while-running", "2026-06-08T05:00:00Z");
    let rss = site.path().join("public/rss.xml");
    let rebuilt = wait_for(
        || std::fs::read_to_string(&rss).is_ok_and(|t| t.contains("added-while-running")),
        20,
    );
    assert!(rebuilt, "a new short is in the feeds within seconds");
    // SAFETY of the test: kill(2) with a child pid we own.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = daemon.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(daemon.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert_eq!(exit.code(), Some(0), "{log}");
    assert!(log.contains("shorts schedule stopped"), "{log}");
}

/// Under cron, each `publish` builds the site as of its run: a short dated
/// between two runs is in the pages and feeds from the first run at or after
/// its date, and its `updated` shows from the first run after that.
#[test]
fn publish_after_a_shorts_date_includes_it_and_after_its_update_shows_it() {
    let site = site("0 8 * * MON", "Europe/Berlin");
    let s = site.path();
    write_short_with(
        s,
        "scheduled",
        "2026-06-10T10:00:00Z",
        "updated = 2026-06-11T10:00:00Z\n",
    );
    let page = "shorts/scheduled/index.html";
    // (cron run at, published, updated)
    let runs = [
        ("2026-06-10T09:55:00Z", false, false),
        ("2026-06-10T10:00:00Z", true, false),
        ("2026-06-10T10:05:00Z", true, false),
        ("2026-06-11T09:55:00Z", true, false),
        ("2026-06-11T10:00:00Z", true, true),
    ];
    for (at, published, updated) in runs {
        let out = shorts_at(s, at, &["publish"]);
        assert!(out.status.success(), "{at}: {}", stderr(&out));
        let listed = public(s, "shorts/index.html").contains(">scheduled<");
        let in_feeds = ["rss.xml", "atom.xml", "feed.json"]
            .map(|feed| public(s, feed).contains("/shorts/scheduled/"));
        assert_eq!(
            (listed, in_feeds, public(s, page).contains("<h1")),
            (published, [published; 3], published),
            "{at}: listed, in the feeds, its page"
        );
        assert_eq!(
            public(s, page).contains("Updated <time"),
            updated,
            "{at}: the page says it was updated"
        );
        let entry_updated = if updated {
            "2026-06-11T10:00:00Z"
        } else {
            "2026-06-10T10:00:00Z"
        };
        if published {
            assert_eq!(
                atom_updated(s, "scheduled"),
                Some(utc(entry_updated)),
                "{at}: the Atom entry's <updated>"
            );
        }
    }
}

/// The daemon on the real clock: a short dated a few seconds ahead, written
/// before it starts, is in the page and the feeds seconds after its time, and
/// the log said the daemon would wake for it. A far-off short whose date is
/// edited to a few seconds ahead while it waits goes live then too, and an
/// update dated ahead shows when it passes. A draft dated ahead never wakes it.
#[test]
fn schedule_builds_when_a_scheduled_short_is_due() {
    let site = site("0 8 * * MON", "Europe/Berlin");
    let s = site.path();
    let due = whole_seconds_from_now(4);
    write_short(s, "scheduled", &front_matter_time(due));
    write_short(s, "moved", &front_matter_time(due + Duration::days(1)));
    let draft_due = front_matter_time(due - Duration::seconds(2));
    write_short_with(s, "draft", &draft_due, "draft = true\n");
    let daemon = Scheduler::start(s);
    let said = |reason: &str| daemon.log().contains(&format!("reason=\"{reason}\""));
    assert!(
        wait_for(|| said("short scheduled is published"), 20),
        "the log says it wakes for the short:\n{}",
        daemon.log()
    );
    let page = "shorts/scheduled/index.html";
    let live = |slug: &str| public(s, "rss.xml").contains(&format!("/shorts/{slug}/"));
    if real_clock() < due {
        assert!(public(s, "rss.xml").contains("<rss"), "{}", daemon.log());
        assert!(!live("scheduled") && public(s, page).is_empty(), "not yet");
    }
    assert!(
        wait_for(|| live("scheduled") && public(s, page).contains("<h1"), 20),
        "in the page and the feed after its time:\n{}",
        daemon.log()
    );
    assert!(real_clock() >= due, "not before its time");

    // While it waits: the far-off short is moved to a few seconds from now,
    // and the first one gets an update dated just before that.
    let updated = whole_seconds_from_now(2);
    let more = format!("updated = {}\n", front_matter_time(updated));
    write_short_with(s, "scheduled", &front_matter_time(due), &more);
    write_short(
        s,
        "moved",
        &front_matter_time(updated + Duration::seconds(1)),
    );
    assert!(
        wait_for(|| said("short scheduled is updated") && live("moved"), 20),
        "the edited date and the update are learnt from the rebuild:\n{}",
        daemon.log()
    );
    assert!(said("short moved is published"), "{}", daemon.log());
    assert!(
        wait_for(|| public(s, page).contains("Updated <time"), 20),
        "{}",
        daemon.log()
    );
    assert_eq!(atom_updated(s, "scheduled"), Some(updated));
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !log.contains("short draft"),
        "a draft never wakes it:\n{log}"
    );
    assert!(log.contains("shorts schedule stopped"), "{log}");
}

/// The daemon's clock jumps a day forward (a machine resumed from sleep, a
/// clock stepped): a short dated within that day goes live at once, not a
/// day of real time later.
#[test]
fn schedule_follows_a_clock_that_jumps_forward() {
    let site = site("0 8 * * MON", "Europe/Berlin");
    let s = site.path();
    write_short(s, "tomorrow", "2026-06-11T09:00:00Z");
    let started = std::time::Instant::now();
    let jumped = AtomicBool::new(false);
    let clock = || {
        let ahead = if jumped.load(Ordering::SeqCst) {
            Duration::days(1)
        } else {
            Duration::zero()
        };
        utc("2026-06-10T12:00:00Z") + Duration::from_std(started.elapsed()).unwrap() + ahead
    };
    let config = Config::load(&s.join("config.toml")).unwrap();
    let outbox = config.delivery.outbox_dir.clone();
    let transport = || -> Result<Box<dyn Transport>, shorts::delivery::SmtpSetupError> {
        Ok(Box::new(Outbox {
            dir: outbox.clone(),
        }))
    };
    let cancel = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            Daemon {
                config: &config,
                cancel: &cancel,
                clock: &clock,
                transport: &transport,
            }
            .run()
        });
        let stop = StopOnDrop(&cancel);
        assert!(wait_for(|| public(s, "rss.xml").contains("<rss"), 20));
        assert!(!public(s, "rss.xml").contains("/shorts/tomorrow/"));
        jumped.store(true, Ordering::SeqCst);
        assert!(
            wait_for(|| public(s, "rss.xml").contains("/shorts/tomorrow/"), 10),
            "published once the clock passed its date"
        );
        drop(stop);
        running.join().unwrap().unwrap();
    });
}

/// Stops an in-process daemon when dropped, also when an assertion fails,
/// so the scope that runs it can end.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `public/<path>` of the site, empty while it is not there.
fn public(site: &Path, path: &str) -> String {
    std::fs::read_to_string(site.join("public").join(path)).unwrap_or_default()
}

/// The `<updated>` of the short's entry in the site's Atom feed.
fn atom_updated(site: &Path, slug: &str) -> Option<DateTime<Utc>> {
    let feed = feed_rs::parser::parse(public(site, "atom.xml").as_bytes()).ok()?;
    let entry = feed.entries.into_iter().find(|e| {
        e.links
            .iter()
            .any(|l| l.href.ends_with(&format!("/shorts/{slug}/")))
    })?;
    entry.updated
}

/// The daemons below run on the real clock, and so does the test that checks them.
#[allow(clippy::disallowed_methods)]
fn real_clock() -> DateTime<Utc> {
    Utc::now()
}

/// A whole second at least `seconds` from now, as an author would write it.
fn whole_seconds_from_now(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(real_clock().timestamp() + seconds + 1, 0).unwrap()
}

/// `shorts schedule` on the real clock, its log read while it runs; killed
/// on drop if the test fails first.
struct Scheduler {
    child: std::process::Child,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Scheduler {
    fn start(site: &Path) -> Scheduler {
        let mut child = common::shorts_command(site, "")
            .args(["schedule"])
            .env_remove("SHORTS_NOW")
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Scheduler {
            child,
            log,
            reader: Some(reader),
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM; the exit code and the whole log.
    fn stop(mut self) -> (Option<i32>, String) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap().code();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (code, self.log())
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(mut done: impl FnMut() -> bool, seconds: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    done()
}

/// What the commands say on the fixture (a draft, a short dated 2099, three
/// published): why shorts are not on the site, a first digest's "nothing
/// new" that does not speak of a last digest, and a preview that says which
/// `--period` shows the newest short.
#[test]
fn build_publish_and_preview_say_what_happened_in_plain_words() {
    let site = common::site_from("site");
    let at = "2026-07-01T00:00:00Z";
    let out = common::shorts_at(site.path(), at, &["build"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let said = common::stdout(&out);
    assert!(
        said.starts_with("built 5 shorts (3 published, 1 draft, 1 scheduled) into "),
        "{said}"
    );
    common::append_config(
        site.path(),
        "[digest]\nschedule = \"0 8 * * MON\"\nfrom = \"Digest <digest@example.com>\"\npostal_address = \"1 Test Street\"\n",
    );
    let said = common::stdout(&common::shorts_at(site.path(), at, &["publish"]));
    assert!(
        said.contains("; no digest: no shorts published since 2026-06-22 08:00 CEST, when the first digest's period starts (no digest has been sent yet"),
        "{said}"
    );
    assert!(!said.contains("last digest"), "{said}");
    let said = common::stdout(&common::shorts_at(site.path(), at, &["digest", "preview"]));
    assert!(
        said.contains("the newest short (escaping, 2026-06-07) is in the digest of 2026-06-08: `shorts digest preview --period 2026-06-08`"),
        "{said}"
    );
    // Log lines carry their time to the second.
    let out = common::shorts_at(site.path(), at, &["-v", "publish"]);
    let log = common::stderr(&out);
    let first = log.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("2026-07-01T00:00:0") && first.as_bytes().get(19) == Some(&b'Z'),
        "{log}"
    );
    let out = common::shorts_at(
        site.path(),
        at,
        &["digest", "preview", "--period", "2026-06-08"],
    );
    assert!(
        common::stdout(&out).starts_with("digest #1 for reader@example.org (2 shorts)"),
        "{}",
        common::stdout(&out)
    );
}
