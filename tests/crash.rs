//! Crashes: `shorts` killed with SIGKILL at random moments, then checked for
//! what PRODUCT.md promises: the published site is the old one or the new
//! one, never a mix or a truncated file; a digest reaches every subscriber,
//! and twice only if its message was in flight at a kill; a reader who
//! switches cadence between killed sends gets each short once.

mod common;
#[path = "common/faulty_smtp.rs"]
mod faulty_smtp;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use shorts::store::DeliveryState;

/// A small deterministic generator (xorshift), so a failing kill schedule repeats.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Adds `count` ordinary shorts, so a build takes long enough to be killed in the middle.
fn add_shorts(site: &Path, count: usize) {
    let folder = site.join("content/shorts");
    let paragraph = "Words that make the body long enough to matter. ".repeat(40);
    for i in 0..count {
        let text = format!(
            "+++\ntitle = \"Generated short {i}\"\ndate = 2026-05-{:02}T10:00:00Z\nsummary = \"Number {i}.\"\ntrack = \"{}\"\ntags = [\"gen-{}\", \"bulk\"]\n+++\n\n{paragraph}\n\n{paragraph}\n",
            1 + i % 28,
            if i % 2 == 0 { "llm" } else { "retrieval" },
            i % 40
        );
        std::fs::write(folder.join(format!("generated-{i}.md")), text).expect("write short");
    }
}

fn build(site: &Path) -> std::process::Child {
    common::shorts_command(site, common::NOW)
        .args(["build", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start shorts build")
}

/// Which version every feed and the index are at; panics on a mix or a broken file.
fn published_version(public: &Path) -> &'static str {
    let mut versions = std::collections::BTreeSet::new();
    let mut feeds = 0;
    for (path, bytes) in common::every_file(public) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !["rss.xml", "atom.xml", "feed.json"].contains(&name)
            || path.parent().is_some_and(|p| p.ends_with("digests"))
        {
            continue;
        }
        let feed = feed_rs::parser::parse(bytes.as_slice())
            .unwrap_or_else(|e| panic!("{}: broken feed: {e}", path.display()));
        let title = feed.title.map(|t| t.content).unwrap_or_default();
        versions.insert(if title.starts_with("Version one") {
            "one"
        } else if title.starts_with("Version two") {
            "two"
        } else {
            panic!("{}: unexpected title {title:?}", path.display())
        });
        feeds += 1;
    }
    let index = std::fs::read_to_string(public.join("shorts/index.html")).expect("index");
    versions.insert(if index.contains("Version one") {
        "one"
    } else {
        "two"
    });
    assert!(feeds > 100, "only {feeds} feeds");
    assert_eq!(versions.len(), 1, "a mix of versions: {versions:?}");
    versions.into_iter().next().unwrap_or("none")
}

#[test]
fn a_build_killed_at_any_moment_leaves_the_old_site_or_the_new_one() {
    let site = common::site_from("site");
    add_shorts(site.path(), 600);
    common::edit_config(
        site.path(),
        "title = \"Fixture <Site> & Co\"",
        "title = \"Version one\"",
    );
    let started = Instant::now();
    assert!(build(site.path()).wait().expect("build").success());
    let full = started.elapsed();
    let public = site.path().join("public");
    assert_eq!(published_version(&public), "one");

    common::edit_config(
        site.path(),
        "title = \"Version one\"",
        "title = \"Version two\"",
    );
    let mut random = Random(0x5eed_cafe);
    let (mut old, mut new) = (0, 0);
    let kills = 20;
    for _ in 0..kills {
        let mut child = build(site.path());
        let at = Duration::from_millis(random.below(full.as_millis() as u64 * 11 / 10));
        std::thread::sleep(at);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if published_version(&public) == "one" {
            old += 1;
        } else {
            new += 1;
            // The new site went live before the kill: start from the old one again.
            common::edit_config(
                site.path(),
                "title = \"Version two\"",
                "title = \"Version one\"",
            );
            assert!(build(site.path()).wait().expect("build").success());
            common::edit_config(
                site.path(),
                "title = \"Version one\"",
                "title = \"Version two\"",
            );
        }
    }
    assert!(build(site.path()).wait().expect("build").success());
    assert_eq!(published_version(&public), "two");
    let generations = std::fs::read_dir(site.path().join(".public.generations"))
        .expect("generations")
        .filter(|entry| entry.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count();
    assert!(generations <= 2, "{generations} generations left behind");
    // Generations are brought up to date in place, over what killed builds
    // left: the result is still the site a build from nothing writes.
    let fresh = tempfile::tempdir().expect("fresh site");
    common::copy_tree(site.path(), fresh.path());
    for leftover in ["public", ".public.generations"] {
        let path = fresh.path().join(leftover);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_dir_all(&path);
    }
    assert!(build(fresh.path()).wait().expect("build").success());
    assert!(
        common::every_file(&public) == common::every_file(&fresh.path().join("public")),
        "the site after the kills differs from one built from nothing"
    );
    eprintln!(
        "{kills} kills during a {full:?} build: the site was whole after each ({old} old, {new} new)"
    );
}

#[test]
fn a_digest_send_killed_again_and_again_reaches_everyone_and_repeats_only_what_was_in_flight() {
    let server = faulty_smtp::FaultySmtp::start();
    let pool_size = 4;
    let site = common::smtp_digest_site(server.port, &format!("pool_size = {pool_size}"));
    // `SHORTS_KILL_READERS` and `SHORTS_KILLS` make a longer run by hand.
    let env_number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let readers = env_number("SHORTS_KILL_READERS", 1_500);
    let target_kills = env_number("SHORTS_KILLS", 24);
    let csv: String = std::iter::once("email\n".to_string())
        .chain((0..readers).map(|i| format!("reader{i}@example.org\n")))
        .collect();
    std::fs::write(site.path().join("readers.csv"), csv).expect("write CSV");
    let week_1 = "2026-06-08T08:00:00Z";
    let out = common::shorts_at(
        site.path(),
        week_1,
        &["subscribers", "import", "readers.csv"],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));

    let mut random = Random(0xd1ce_5eed);
    let mut window = 300;
    let mut kills = 0;
    let finished = loop {
        let before = server.accepted().len();
        let mut child = common::shorts_command(site.path(), &after_kills(week_1, kills))
            .args(["digest", "send", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start digest send");
        // After the last planned kill the run is left to finish.
        let wait = if kills < target_kills {
            50 + random.below(window)
        } else {
            600_000
        };
        let deadline = Instant::now() + Duration::from_millis(wait);
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        match status {
            Some(status) => {
                assert!(status.success(), "digest send failed after {kills} kills");
                break status;
            }
            None => {
                let _ = child.kill(); // SIGKILL
                let _ = child.wait();
                kills += 1;
                if server.accepted().len() == before {
                    window *= 2; // the run died before sending: give the next one longer
                }
            }
        }
        assert!(kills < 500, "never finished");
    };
    assert!(finished.success());

    let counts = server.per_recipient();
    let missing = (0..readers)
        .filter(|i| !counts.contains_key(&format!("reader{i}@example.org")))
        .count();
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    assert_eq!(missing, 0, "every subscriber got the digest");
    assert!(
        duplicates <= kills * pool_size,
        "{duplicates} duplicates after {kills} kills: more than the {pool_size} in flight at each"
    );
    assert!(kills >= target_kills.min(20), "only {kills} kills");
    let store = common::store(site.path());
    assert_eq!(store.integrity_check().expect("integrity_check"), "ok");
    let sent = common::all_deliveries(store.as_ref())
        .iter()
        .filter(|d| d.state == DeliveryState::Sent)
        .count();
    assert_eq!(sent, readers);
    let digests = store.digests().expect("digests");
    assert_eq!(digests.iter().filter(|d| d.completed).count(), 1);
    eprintln!(
        "{readers} subscribers, {kills} SIGKILLs: 0 missing, {duplicates} sent twice (in flight at a kill)"
    );
}

/// Runs `digest send` at `now` until a run finishes, SIGKILLing it after a
/// random 20–300 ms up to `kills` times; returns how many kills there were.
/// When the run after `kills` SIGKILLs starts: at `start` on SQLite, whose
/// run lock lets a rerun take over a dead run's claims at once; on
/// PostgreSQL, a claim lease later for each kill, since a shared ledger
/// keeps other senders off a claim until its lease runs out.
fn after_kills(start: &str, kills: usize) -> String {
    match common::on_postgres() {
        true => common::leases_after(start, kills),
        false => start.to_string(),
    }
}

fn send_killed(site: &Path, now: &str, kills: usize, random: &mut Random) -> usize {
    let mut killed = 0;
    loop {
        let mut child = common::shorts_command(site, &after_kills(now, killed))
            .args(["digest", "send", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start digest send");
        let wait = match killed < kills {
            true => 20 + random.below(280),
            false => 600_000,
        };
        let deadline = Instant::now() + Duration::from_millis(wait);
        loop {
            if let Some(status) = child.try_wait().expect("poll") {
                assert!(
                    status.success(),
                    "digest send at {now} failed after {killed} kills"
                );
                return killed;
            }
            if Instant::now() >= deadline {
                let _ = child.kill(); // SIGKILL
                let _ = child.wait();
                killed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Each message's recipient, digest number (from its Message-ID) and the
/// `killday` shorts it carries.
fn read_messages(accepted: &[faulty_smtp::Accepted]) -> Vec<(String, i64, Vec<String>)> {
    accepted
        .iter()
        .map(|message| {
            let mail = mailparse::parse_mail(&message.data).expect("a message");
            let id = mailparse::MailHeaderMap::get_first_value(&mail.headers[..], "Message-ID")
                .expect("a Message-ID");
            let digest = id
                .trim_start_matches("<digest-")
                .split('.')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("a digest's Message-ID");
            let text = mail.subparts[0].get_body().expect("a text part");
            let shorts = text
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                .filter(|word| word.starts_with("killday"))
                .map(String::from)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            (message.to[0].clone(), digest, shorts)
        })
        .collect()
}

/// A week of days; each day a short is published (every other day a second
/// one, backdated three days), a third of the readers switch cadence
/// (weekly, daily, instant) and `digest send` runs, killed up to three
/// times before a run finishes. Every reader follows everything throughout,
/// so each must get each short exactly once, whatever their cadences: no
/// short in two digests for one reader, and the same digest twice only for
/// messages in flight at a kill.
#[test]
fn readers_switching_cadence_between_killed_sends_get_each_short_once() {
    let server = faulty_smtp::FaultySmtp::start();
    let pool_size = 4;
    let site = common::smtp_digest_site(server.port, &format!("pool_size = {pool_size}"));
    common::append_config(
        site.path(),
        "\n[[digest.cadences]]\nname = \"daily\"\nschedule = \"0 8 * * *\"\n\n[[digest.cadences]]\nname = \"instant\"\nschedule = \"instant\"\n",
    );
    let cadences = ["weekly", "daily", "instant"];
    let readers = 60;
    let mut random = Random(0xcade_9ce5);
    let (mut kills, mut written) = (0, Vec::new());
    for day in 0..7u32 {
        let now = format!("2026-06-{:02}T09:00:00Z", 8 + day);
        let csv: String = std::iter::once("email,cadence\n".to_string())
            .chain(
                (0..readers)
                    .filter(|i| day == 0 || (i + day as usize).is_multiple_of(3))
                    .map(|i| {
                        let cadence = cadences[(i + random.below(3) as usize) % 3];
                        format!("reader{i}@example.org,{cadence}\n")
                    }),
            )
            .collect();
        std::fs::write(site.path().join("switch.csv"), csv).expect("write CSV");
        let out = common::shorts_at(site.path(), &now, &["subscribers", "import", "switch.csv"]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        let mut dates = vec![(
            format!("killday{day}a"),
            format!("2026-06-{:02}T07:00:00Z", 8 + day),
        )];
        if day % 2 == 1 {
            dates.push((
                format!("killday{day}b"),
                format!("2026-06-{:02}T07:00:00Z", 5 + day),
            ));
        }
        for (slug, date) in dates {
            let text = format!(
                "+++\ntitle = \"{slug}\"\ndate = {date}\nsummary = \"S.\"\ntrack = \"llm\"\n+++\n\nBody.\n"
            );
            std::fs::write(site.path().join(format!("content/shorts/{slug}.md")), text)
                .expect("write short");
            written.push(slug);
        }
        kills += send_killed(site.path(), &now, 3, &mut random);
    }
    // The next weekly and daily digests bring whatever is still owed.
    kills += send_killed(site.path(), "2026-06-15T09:00:00Z", 0, &mut random);
    kills += send_killed(site.path(), "2026-06-16T09:00:00Z", 0, &mut random);

    let mut got: std::collections::BTreeMap<(String, String), Vec<i64>> = Default::default();
    for (to, digest, shorts) in read_messages(&server.accepted()) {
        for short in shorts {
            got.entry((to.clone(), short)).or_default().push(digest);
        }
    }
    let mut duplicates = 0;
    for ((to, short), digests) in &got {
        let distinct: std::collections::BTreeSet<&i64> = digests.iter().collect();
        assert_eq!(distinct.len(), 1, "{to} got {short} in digests {digests:?}");
        duplicates += digests.len() - 1;
    }
    for i in 0..readers {
        for short in &written {
            let to = format!("reader{i}@example.org");
            assert!(
                got.contains_key(&(to.clone(), short.clone())),
                "{to} never got {short}"
            );
        }
    }
    assert!(
        duplicates <= kills * pool_size,
        "{duplicates} duplicates after {kills} kills: more than the {pool_size} in flight at each"
    );
    assert!(kills >= 8, "only {kills} kills");
    let store = common::store(site.path());
    assert_eq!(store.integrity_check().expect("integrity_check"), "ok");
    eprintln!(
        "{readers} readers switching between 3 cadences over 7 days, {kills} SIGKILLs: each of {} shorts once to each, {duplicates} in flight at a kill sent twice",
        written.len()
    );
}
