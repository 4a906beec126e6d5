//! A short renamed after it went out: its id stays (feeds, the ledger, the
//! archive), the next digest through a real SMTP server does not carry it
//! again, its old address redirects (a page in the output, a 301 from
//! `serve`), and `check` warns when an old address is dropped.

mod common;
#[path = "common/server.rs"]
mod server;
#[path = "common/smtp.rs"]
mod smtp;

use std::path::Path;

use common::{shorts_at, stderr};
use smtp::SmtpServer;

const WEEK_1: &str = "2026-06-08T08:00:00Z";
const WEEK_2: &str = "2026-06-15T08:00:00Z";

fn ok(site: &Path, now: &str, args: &[&str]) -> String {
    let out = shorts_at(site, now, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stderr(&out)
}

/// The entries' (id, link) of a built feed, by feed-rs.
fn feed_entries(site: &Path, file: &str) -> Vec<(String, String)> {
    let bytes = std::fs::read(site.join("public").join(file)).expect(file);
    let feed = feed_rs::parser::parse(bytes.as_slice()).expect("parses");
    feed.entries
        .into_iter()
        .map(|e| {
            (
                e.id,
                e.links.first().map(|l| l.href.clone()).unwrap_or_default(),
            )
        })
        .collect()
}

/// Renames `content/shorts/<from>.md` to `<to>.md`, listing `aliases`.
fn rename(site: &Path, from: &str, to: &str, aliases: &[&str]) {
    let shorts = site.join("content/shorts");
    let text = std::fs::read_to_string(shorts.join(format!("{from}.md"))).unwrap();
    let list: Vec<String> = aliases.iter().map(|a| format!("{a:?}")).collect();
    let text: String = text
        .lines()
        .filter(|line| !line.starts_with("aliases = "))
        .map(|line| format!("{line}\n"))
        .collect();
    let text = if aliases.is_empty() {
        text
    } else {
        text.replacen(
            "\ntrack = ",
            &format!("\naliases = [{}]\ntrack = ", list.join(", ")),
            1,
        )
    };
    std::fs::remove_file(shorts.join(format!("{from}.md"))).unwrap();
    std::fs::write(shorts.join(format!("{to}.md")), text).unwrap();
}

#[test]
fn a_renamed_short_keeps_its_id_goes_out_once_and_its_old_address_redirects() {
    let smtp = SmtpServer::start();
    let site = common::smtp_digest_site(smtp.port, "timeout_secs = 5");
    let site = site.path();
    ok(site, WEEK_1, &["subscribers", "add", "reader@example.org"]);
    ok(site, WEEK_1, &["publish"]);
    assert_eq!(smtp.received().len(), 1, "digest 1");
    let old_url = "https://example.com/notes/shorts/escaping/";
    let new_url = "https://example.com/notes/shorts/escaping-in-feeds/";
    let before = feed_entries(site, "atom.xml");
    assert!(
        before.contains(&(old_url.to_string(), old_url.to_string())),
        "{before:?}"
    );

    // Renamed without an alias: check says the old address would be a 404.
    rename(site, "escaping", "escaping-in-feeds", &[]);
    let warned = ok(site, WEEK_2, &["check"]);
    assert!(
        warned.contains("warning: `shorts/escaping/` was published and would now answer 404: if its short was renamed, add `aliases = [\"escaping\"]`"),
        "{warned}"
    );
    // With the alias, and one new short in week 2.
    rename(
        site,
        "escaping-in-feeds",
        "escaping-in-feeds",
        &["escaping"],
    );
    let quiet = ok(site, WEEK_2, &["check"]);
    assert!(!quiet.contains("warning"), "{quiet}");
    std::fs::write(
        site.join("content/shorts/new-this-week.md"),
        "+++\ntitle = \"New this week\"\ndate = 2026-06-10\nsummary = \"New.\"\ntrack = \"llm\"\n+++\nBody.\n",
    )
    .unwrap();
    ok(site, WEEK_2, &["publish"]);

    let received = smtp.received();
    assert_eq!(received.len(), 2, "digest 2");
    let digest_2 = String::from_utf8_lossy(&received[1].data).into_owned();
    assert!(digest_2.contains("New this week"), "{digest_2}");
    assert!(
        !digest_2.contains("escaping-in-feeds") && !digest_2.contains("Tom &"),
        "the renamed short is not sent again: {digest_2}"
    );

    // Same id in every feed, the new address as its link.
    let after = feed_entries(site, "atom.xml");
    assert!(
        after.contains(&(old_url.to_string(), new_url.to_string())),
        "{after:?}"
    );
    let rss = feed_entries(site, "rss.xml");
    assert!(
        rss.iter()
            .any(|(id, link)| id == old_url && link == new_url),
        "{rss:?}"
    );
    let json = std::fs::read_to_string(site.join("public/feed.json")).unwrap();
    assert!(json.contains(&format!("\"id\": \"{old_url}\"")), "{json}");
    // The archive of digest 1 still lists it, at its new address.
    let archive = std::fs::read_to_string(site.join("public/digests/1/index.html")).unwrap();
    assert!(archive.contains("shorts/escaping-in-feeds/"), "{archive}");
    // The old address: a page that sends readers on, and not in the sitemap.
    let page = std::fs::read_to_string(site.join("public/shorts/escaping/index.html")).unwrap();
    assert!(
        page.contains(&format!(
            "<meta http-equiv=\"refresh\" content=\"0; url={new_url}\">"
        )),
        "{page}"
    );
    let sitemap = std::fs::read_to_string(site.join("public/sitemap.xml")).unwrap();
    assert!(!sitemap.contains("shorts/escaping/"), "{sitemap}");

    // `serve` answers the old address, however spelt, with a 301.
    let served = server::Server::start(site, WEEK_2);
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/shorts/escaping/",
        "/shorts/escaping",
        "/shorts/escaping/index.html",
        "/shorts/%65scaping/",
    ] {
        let response = client.get(served.url(path)).send().unwrap();
        assert_eq!(response.status(), 301, "{path}");
        assert_eq!(
            response.headers()["location"].to_str().unwrap(),
            new_url,
            "{path}"
        );
    }
    let page = client
        .get(served.url("/shorts/escaping-in-feeds/"))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
}

/// A chain of renames keeps the first id, and a clash of addresses is refused.
#[test]
fn renames_chain_and_addresses_cannot_clash() {
    let site = common::site_from("site");
    let site = site.path();
    ok(site, WEEK_1, &["build"]);
    rename(site, "plain", "plain-2", &["plain"]);
    ok(site, WEEK_1, &["build"]);
    // The second rename lists only the slug before: the record of the
    // live site still knows whose id that was.
    rename(site, "plain-2", "plain-3", &["plain-2"]);
    let warned = ok(site, WEEK_1, &["build"]);
    assert!(warned.contains("`shorts/plain/` was published"), "{warned}");
    let entries = feed_entries(site, "atom.xml");
    assert!(
        entries
            .iter()
            .any(|(id, link)| id.ends_with("/shorts/plain/") && link.ends_with("/shorts/plain-3/")),
        "{entries:?}"
    );

    rename(site, "escaping", "escaping", &["plain-3"]);
    let clash = shorts_at(site, WEEK_1, &["check"]);
    assert_eq!(clash.status.code(), Some(1));
    assert!(
        stderr(&clash).contains("content/shorts/escaping.md:1: alias `plain-3` is also the slug of content/shorts/plain-3.md; an address leads to one short"),
        "{}",
        stderr(&clash)
    );
    let text = std::fs::read_to_string(site.join("content/shorts/escaping.md")).unwrap();
    let text = text.replace("aliases = [\"plain-3\"]", "id = \"plain-3\"");
    std::fs::write(site.join("content/shorts/escaping.md"), text).unwrap();
    let clash = shorts_at(site, WEEK_1, &["check"]);
    assert_eq!(
        stderr(&clash),
        "content/shorts/escaping.md:1: id `plain-3` is the slug of content/shorts/plain-3.md: a feed would give this short that page's address; set another `id`\n\
         error: 1 problem found; fix them and run `shorts check` again\n"
    );
}
