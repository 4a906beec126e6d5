//! `shorts digest send` against a real SMTP server scripted to fail (see
//! `common/faulty_smtp.rs`): temporary and permanent answers at `RCPT` and at
//! the end of `DATA`, connections dropped mid-message or stalled past the
//! timeout, a slow server. Every case ends with each subscriber's message
//! accepted exactly once (or recorded as failed), and the ledger agreeing.

mod common;
#[path = "common/faulty_smtp.rs"]
mod faulty_smtp;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{delivery_states, shorts_at, stderr, stdout};
use faulty_smtp::{Fault, FaultySmtp};
use shorts::store::DeliveryState;

/// Monday 2026-06-08, right after the 08:00 Berlin slot.
const WEEK_1: &str = "2026-06-08T08:00:00Z";

fn site_for(server: &FaultySmtp, smtp: &str) -> tempfile::TempDir {
    common::smtp_digest_site(server.port, &format!("backoff_ms = 20\n{smtp}"))
}

fn subscribe(site: &Path, count: usize) -> Vec<String> {
    let csv: String = std::iter::once("email\n".to_string())
        .chain((0..count).map(|i| format!("reader{i}@example.org\n")))
        .collect();
    let file = site.join("readers.csv");
    std::fs::write(&file, csv).expect("write CSV");
    let out = shorts_at(site, WEEK_1, &["subscribers", "import", "readers.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    (0..count)
        .map(|i| format!("reader{i}@example.org"))
        .collect()
}

fn assert_each_once(server: &FaultySmtp, readers: &[String], except: &[&str]) {
    let counts = server.per_recipient();
    for reader in readers {
        let expected = usize::from(!except.contains(&reader.as_str()));
        assert_eq!(
            counts.get(reader).copied().unwrap_or(0),
            expected,
            "{reader}: {counts:?}"
        );
    }
}

/// A broken server that answers 354 to a pipelined `DATA` after refusing
/// the only `RCPT` gets no message: the client stops at the refusal and
/// closes the connection without the final dot.
#[test]
fn a_server_taking_data_after_refusing_every_recipient_gets_no_message() {
    let server = FaultySmtp::start();
    server.take_data_without_recipients();
    let site = site_for(&server, "");
    let readers = subscribe(site.path(), 4);
    server.script(&readers[2], &[Fault::Rcpt(550)]);
    let out = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(server.pipelined() >= 4, "pipelined: {}", server.pipelined());
    let accepted = server.accepted();
    assert!(accepted.iter().all(|m| !m.to.is_empty()), "{accepted:?}");
    assert_each_once(&server, &readers, &[readers[2].as_str()]);
    assert!(
        stdout(&out).contains(": 3 sent, 0 skipped (nothing new in their tracks), 1 failed"),
        "{}",
        stdout(&out)
    );
}

/// With PIPELINING (RFC 2920) offered, each message's envelope goes in one
/// write (two round trips a message instead of four); without it, command
/// by command. Either way, refusals at RCPT land on the right recipients.
#[test]
fn the_envelope_is_pipelined_only_where_the_server_offers_it() {
    for offered in [true, false] {
        let server = FaultySmtp::start();
        if !offered {
            server.without_pipelining();
        }
        let site = site_for(&server, "");
        let readers = subscribe(site.path(), 6);
        server.script(&readers[1], &[Fault::Rcpt(550)]);
        server.script(&readers[2], &[Fault::Rcpt(451)]);
        let out = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).contains(": 5 sent, 0 skipped (nothing new in their tracks), 1 failed"),
            "{}",
            stdout(&out)
        );
        assert_each_once(&server, &readers, &[readers[1].as_str()]);
        // Every MAIL: six first tries and the retry of the 451.
        let expected = if offered { 7 } else { 0 };
        assert_eq!(server.pipelined(), expected, "offered: {offered}");
    }
}

#[test]
fn temporary_answers_at_rcpt_and_data_are_retried_and_deliver_exactly_once() {
    let server = FaultySmtp::start();
    let site = site_for(&server, "pool_size = 2\nattempts = 4");
    let readers = subscribe(site.path(), 12);
    server.script(&readers[1], &[Fault::Rcpt(421)]);
    server.script(&readers[2], &[Fault::Rcpt(451), Fault::Rcpt(452)]);
    server.script(&readers[3], &[Fault::Data(451)]);
    server.script(&readers[4], &[Fault::Data(452), Fault::Data(421)]);
    server.script(
        &readers[5],
        &[Fault::Rcpt(421), Fault::Data(451), Fault::Rcpt(452)],
    );
    let out = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_each_once(&server, &readers, &[]);
    assert_eq!(server.faults_injected(), 9);
    assert_eq!(delivery_states(site.path()), [(DeliveryState::Sent, 12)]);
    assert!(
        stdout(&out).starts_with("digest #1: 12 sent,"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn permanent_answers_fail_those_recipients_and_no_one_else() {
    let server = FaultySmtp::start();
    let site = site_for(&server, "pool_size = 2\nattempts = 3");
    let readers = subscribe(site.path(), 10);
    server.script(&readers[0], &[Fault::Rcpt(550)]);
    server.script(&readers[4], &[Fault::Rcpt(553)]);
    server.script(&readers[7], &[Fault::Data(554)]);
    let out = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let failed = [
        readers[0].as_str(),
        readers[4].as_str(),
        readers[7].as_str(),
    ];
    assert_each_once(&server, &readers, &failed);
    assert_eq!(
        delivery_states(site.path()),
        [(DeliveryState::Failed, 3), (DeliveryState::Sent, 7)]
    );
    assert!(stdout(&out).contains("7 sent"), "{}", stdout(&out));
    assert!(stdout(&out).contains("3 failed"), "{}", stdout(&out));
    // Not retried within the run: one attempt each.
    let rerun = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_each_once(&server, &readers, &failed);
}

#[test]
fn dropped_and_stalled_connections_are_reopened_and_only_the_unaccepted_resent() {
    let server = FaultySmtp::start();
    let site = site_for(&server, "pool_size = 2\nattempts = 4\ntimeout_secs = 1");
    let readers = subscribe(site.path(), 10);
    server.script(&readers[1], &[Fault::DropInData]);
    server.script(&readers[3], &[Fault::Stall(Duration::from_secs(3))]);
    server.script(&readers[6], &[Fault::DropInData, Fault::DropInData]);
    let started = Instant::now();
    let out = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_each_once(&server, &readers, &[]);
    assert_eq!(delivery_states(site.path()), [(DeliveryState::Sent, 10)]);
    assert!(
        server.sessions() > 2,
        "a broken connection is replaced: {} sessions",
        server.sessions()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the stall cost about the timeout, not forever: {:?}",
        started.elapsed()
    );
    assert!(
        stdout(&out).starts_with("digest #1: 10 sent,"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_slow_server_keeps_the_pool_size_and_the_rate_limit() {
    let server = FaultySmtp::start();
    server.slow(Duration::from_millis(150));
    let site = site_for(&server, "pool_size = 3\nrate_limit = 20");
    let readers = subscribe(site.path(), 24);
    let started = Instant::now();
    let out = shorts_at(site.path(), WEEK_1, &["digest", "send"]);
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_each_once(&server, &readers, &[]);
    assert!(
        server.most_concurrent_sessions() <= 3,
        "{} sessions at once with pool_size = 3",
        server.most_concurrent_sessions()
    );
    // 24 messages at 150 ms each over 3 connections: at least 8 × 150 ms;
    // at 20 per second: at least 23 / 20 s.
    assert!(elapsed >= Duration::from_millis(1_150), "{elapsed:?}");
}

/// Runs `digest send` and samples its peak resident memory (Linux `VmHWM`).
#[cfg(target_os = "linux")]
fn send_measuring_peak_kib(site: &Path) -> (std::process::ExitStatus, u64) {
    let mut child = common::shorts_command(site, WEEK_1)
        .args(["digest", "send", "-q"])
        .spawn()
        .expect("start digest send");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("poll") {
            return (status, peak);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn memory_stays_flat_as_subscribers_grow_on_a_slow_server() {
    let mut peaks = Vec::new();
    for count in [60, 600] {
        let server = FaultySmtp::start();
        server.slow(Duration::from_millis(1));
        let site = site_for(&server, "pool_size = 4");
        let readers = subscribe(site.path(), count);
        let (status, peak) = send_measuring_peak_kib(site.path());
        assert!(status.success());
        assert_each_once(&server, &readers, &[]);
        peaks.push(peak);
    }
    // Ten times the subscribers may not cost more than a few MiB more
    // (holding every rendered 20 KB message would add about 11 MiB).
    assert!(
        peaks[1] < peaks[0] + 4 * 1024,
        "peak memory grew from {} KiB to {} KiB",
        peaks[0],
        peaks[1]
    );
    eprintln!(
        "peak RSS: {} KiB at 60 subscribers, {} KiB at 600",
        peaks[0], peaks[1]
    );
}
