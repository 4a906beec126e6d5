//! Cadences end to end, with the real binary and its outbox: the issue's
//! own example, a reader switching from weekly to daily mid-week, and an
//! instant reader, each getting every short once (the property test in
//! `src/digest/model_tests.rs` covers every other history).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{shorts_at, stderr};

fn run(site: &Path, now: &str, args: &[&str]) {
    let out = shorts_at(site, now, args);
    assert!(out.status.success(), "{args:?} at {now}: {}", stderr(&out));
}

fn write_short(site: &Path, slug: &str, date: &str) {
    let text = format!(
        "+++\ntitle = \"{slug}\"\ndate = {date}\nsummary = \"S\"\ntrack = \"llm\"\n+++\nBody.\n"
    );
    std::fs::write(site.join(format!("content/shorts/{slug}.md")), text).unwrap();
}

/// Every message in the outbox: (recipient, subject, the `new-…` shorts in it).
fn outbox(site: &Path) -> Vec<(String, String, Vec<String>)> {
    let mut messages = Vec::new();
    for folder in std::fs::read_dir(site.join("outbox")).unwrap() {
        for file in std::fs::read_dir(folder.unwrap().path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            let mail = mailparse::parse_mail(&bytes).unwrap();
            let header = |name: &str| {
                mailparse::MailHeaderMap::get_first_value(&mail.headers[..], name).unwrap()
            };
            let text = mail.subparts[0].get_body().unwrap();
            let mut shorts: Vec<String> = text
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                .filter(|w| w.starts_with("new-"))
                .map(String::from)
                .collect();
            shorts.sort();
            shorts.dedup();
            messages.push((header("To"), header("Subject"), shorts));
        }
    }
    messages
}

/// Who got which `new-…` short, and how many times.
fn received(site: &Path) -> BTreeMap<(String, String), usize> {
    let mut got = BTreeMap::new();
    for (to, _, shorts) in outbox(site) {
        for short in shorts {
            *got.entry((to.clone(), short)).or_default() += 1;
        }
    }
    got
}

/// Weekly to daily on a Wednesday brings the week's shorts so far in the
/// next daily, and Monday's weekly does not bring them again; an instant
/// reader gets each short in the first run after its date; a paused reader
/// who resumes gets nothing published meanwhile.
#[test]
fn a_reader_who_switches_to_daily_mid_week_gets_the_week_so_far_once() {
    let site = common::cadences_site();
    let site = site.path();
    let monday = "2026-06-08T09:00:00Z";
    for (who, cadence) in [
        ("stays", "weekly"),
        ("moves", "weekly"),
        ("now", "instant"),
        ("away", "daily"),
    ] {
        run(
            site,
            monday,
            &[
                "subscribers",
                "add",
                &format!("{who}@example.com"),
                "--cadence",
                cadence,
            ],
        );
    }
    run(site, monday, &["publish"]);
    write_short(site, "new-tuesday", "2026-06-09T07:00:00Z");
    run(site, "2026-06-09T07:05:00Z", &["publish"]);
    run(
        site,
        "2026-06-09T09:00:00Z",
        &["subscribers", "pause", "away@example.com"],
    );
    // Wednesday: `moves` switches to daily; Thursday's daily brings Tuesday's short.
    run(
        site,
        "2026-06-10T10:00:00Z",
        &[
            "subscribers",
            "add",
            "moves@example.com",
            "--cadence",
            "daily",
        ],
    );
    write_short(site, "new-backdated", "2026-06-07T12:00:00Z");
    run(site, "2026-06-11T09:00:00Z", &["publish"]);
    run(
        site,
        "2026-06-12T09:00:00Z",
        &["subscribers", "resume", "away@example.com"],
    );
    write_short(site, "new-friday", "2026-06-12T10:00:00Z");
    run(site, "2026-06-12T10:01:00Z", &["publish"]);
    run(site, "2026-06-15T09:00:00Z", &["publish"]);

    let got = received(site);
    let once = |who: &str, short: &str| {
        got.get(&(format!("{who}@example.com"), short.to_string()))
            .copied()
    };
    for short in ["new-tuesday", "new-backdated", "new-friday"] {
        for who in ["stays", "moves", "now"] {
            assert_eq!(
                once(who, short),
                Some(1),
                "{who} gets {short} once: {got:?}"
            );
        }
    }
    assert_eq!(
        once("away", "new-tuesday"),
        None,
        "paused when it went out: {got:?}"
    );
    assert_eq!(
        once("away", "new-backdated"),
        None,
        "published while paused: {got:?}"
    );
    assert_eq!(
        once("away", "new-friday"),
        Some(1),
        "published after resuming: {got:?}"
    );
    let subjects: Vec<String> = outbox(site)
        .into_iter()
        .filter(|(to, _, shorts)| {
            to == "moves@example.com" && shorts.contains(&"new-tuesday".to_string())
        })
        .map(|(_, subject, _)| subject)
        .collect();
    assert!(
        subjects.len() == 1 && subjects[0].contains("Daily #"),
        "Tuesday's short reaches `moves` in a daily digest: {subjects:?}"
    );
}
