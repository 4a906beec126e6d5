//! `shorts init` and `shorts new` from an empty folder to a built, served
//! site and a sent digest, and what they refuse: writing over a file, an
//! unknown track, a title that makes no slug.

mod common;
#[path = "common/server.rs"]
mod server;

use std::path::Path;

use common::{shorts_at, stderr, stdout};
use server::Server;

/// A Wednesday; the site's first digest slot is the Monday after.
const WEDNESDAY: &str = "2026-06-03T10:00:00Z";
/// Monday 2026-06-08 08:00 in Berlin.
const FIRST_SLOT: &str = "2026-06-08T06:00:00Z";

fn init(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["init"];
    all.extend_from_slice(args);
    shorts_at(dir, WEDNESDAY, &all)
}

fn ok(out: &std::process::Output) {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A writer's first hour: init, check, a new short (a draft), build, publish
/// the draft, serve, and a digest to themselves.
#[test]
fn a_site_from_nothing_builds_serves_and_sends() {
    let dir = tempfile::tempdir().unwrap();
    ok(&init(
        dir.path(),
        &["blog", "--timezone", "Europe/Berlin", "--author", "Ada"],
    ));
    let site = dir.path().join("blog");
    ok(&shorts_at(&site, WEDNESDAY, &["check"]));

    let new = shorts_at(
        &site,
        WEDNESDAY,
        &["new", "Why the KV cache grows", "--tags", "llm,memory"],
    );
    ok(&new);
    let path = site.join("content/shorts/why-the-kv-cache-grows.md");
    assert!(
        stdout(&new).contains("content/shorts/why-the-kv-cache-grows.md"),
        "{}",
        stdout(&new)
    );
    let text = read(&path);
    for line in [
        "title = \"Why the KV cache grows\"",
        "date = 2026-06-03T12:00:00+02:00",
        "track = \"notes\"",
        "tags = [\"llm\", \"memory\"]",
        "draft = true",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "{line} in {text}"
        );
    }

    ok(&shorts_at(&site, WEDNESDAY, &["build"]));
    let page = site.join("public/shorts/why-the-kv-cache-grows/index.html");
    assert!(site.join("public/shorts/hello-shorts/index.html").is_file());
    assert!(!page.exists(), "a draft is not published");

    let published: String = text
        .lines()
        .filter(|l| !l.starts_with("draft"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, published).unwrap();
    ok(&shorts_at(&site, WEDNESDAY, &["build"]));
    assert!(page.is_file());

    let server = Server::start(&site, WEDNESDAY);
    let index = reqwest::blocking::get(server.url("/shorts/")).unwrap();
    assert_eq!(index.status(), 200);
    let index = index.text().unwrap();
    assert!(
        index.contains("Hello, shorts") && index.contains("Why the KV cache grows"),
        "{index}"
    );
    let short = reqwest::blocking::get(server.url("/shorts/why-the-kv-cache-grows/")).unwrap();
    assert_eq!(short.status(), 200);
    // The example shows what a short can hold: coloured code and a formula.
    let hello = reqwest::blocking::get(server.url("/shorts/hello-shorts/"))
        .unwrap()
        .text()
        .unwrap();
    assert!(hello.contains("<span class=\"hl-"), "{hello}");
    assert!(hello.contains("<math display=\"inline\""), "{hello}");
    drop(server);

    ok(&shorts_at(
        &site,
        WEDNESDAY,
        &["subscribers", "add", "ada@example.org"],
    ));
    ok(&shorts_at(&site, FIRST_SLOT, &["publish"]));
    let sent: Vec<_> = std::fs::read_dir(site.join("outbox/digest-1"))
        .unwrap()
        .collect();
    assert_eq!(sent.len(), 1);
    let message = read(&sent[0].as_ref().unwrap().path());
    assert!(message.contains("To: ada@example.org"), "{message}");
    assert!(message.contains("Why the KV cache grows"), "{message}");
    assert!(
        message.contains("From: Ada <digest@example.org>"),
        "{message}"
    );
}

#[test]
fn init_writes_nothing_where_any_of_its_files_exists() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    std::fs::write(dir.path().join("templates/README.md"), "mine").unwrap();
    let out = init(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        "error: ./templates/README.md already exists; nothing was written (shorts never writes over a file)"
    );
    assert!(!dir.path().join("config.toml").exists());
    assert_eq!(read(&dir.path().join("templates/README.md")), "mine");

    std::fs::remove_file(dir.path().join("templates/README.md")).unwrap();
    ok(&init(dir.path(), &[]));
    let again = init(dir.path(), &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("./config.toml, ./content/shorts/hello-shorts.md, ./templates/README.md, ./.gitignore already exist"), "{}", stderr(&again));
}

/// Titles and names with TOML's and email's special characters are written
/// so that they read back as typed.
#[test]
fn quotes_and_backslashes_survive_into_the_site() {
    let dir = tempfile::tempdir().unwrap();
    ok(&init(
        dir.path(),
        &[
            "--title",
            "Notes \"from\" C:\\work",
            "--author",
            "Doe, Jane",
        ],
    ));
    let config: toml::Table = read(&dir.path().join("config.toml")).parse().unwrap();
    assert_eq!(
        config["site"]["title"].as_str(),
        Some("Notes \"from\" C:\\work")
    );
    assert_eq!(
        config["digest"]["from"].as_str(),
        Some("\"Doe, Jane\" <digest@example.org>")
    );
    let title = r#"Why "=" is not "==" \o/"#;
    ok(&shorts_at(
        dir.path(),
        WEDNESDAY,
        &["new", title, "--summary", "Quotes \"here\"."],
    ));
    ok(&shorts_at(dir.path(), WEDNESDAY, &["check"]));
    let text = read(&dir.path().join("content/shorts/why-is-not-o.md"));
    let front: toml::Table = text.split("+++").nth(1).unwrap().parse().unwrap();
    assert_eq!(front["title"].as_str(), Some(title));
    assert_eq!(front["summary"].as_str(), Some("Quotes \"here\"."));
}

#[test]
fn new_refuses_with_what_to_do_instead() {
    let dir = tempfile::tempdir().unwrap();
    ok(&init(dir.path(), &[]));
    let site = dir.path();
    let refused = |args: &[&str]| {
        let mut all = vec!["new"];
        all.extend_from_slice(args);
        let out = shorts_at(site, WEDNESDAY, &all);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        stderr(&out).trim().to_string()
    };
    assert_eq!(
        refused(&["Hello, shorts"]),
        format!(
            "error: {} already exists; nothing was written (shorts never writes over a file)",
            site.join("content/shorts/hello-shorts.md").display()
        )
    );
    let config = site.join("config.toml").canonicalize().unwrap();
    assert_eq!(
        refused(&["A", "--track", "nots"]),
        format!(
            "error: unknown track `nots`; did you mean `notes`? Expected one of: notes (the [[tracks]] of {})",
            config.display()
        )
    );
    assert_eq!(
        refused(&["?!"]),
        "error: cannot make a slug from the title; give one with --slug"
    );
    assert_eq!(
        refused(&["A", "--slug", "Not A Slug"]),
        "error: --slug \"Not A Slug\" is not a slug; expected lower-case letters, digits and single hyphens, like \"not-a-slug\""
    );
    assert_eq!(
        refused(&["   "]),
        "error: the title must be one line of text, like \"Why the KV cache grows\""
    );
    let long = "word ".repeat(60);
    assert_eq!(
        refused(&[&long]),
        "error: the slug would be 299 bytes long; at most 200 (it names a folder); give a shorter one with --slug"
    );
    assert_eq!(
        refused(&["A", "--tags", "ok,!!"]),
        "error: tag \"!!\" has no letters or digits"
    );
    common::append_config(site, "[[tracks]]\nslug = \"maths\"\ntitle = \"Maths\"\n");
    assert_eq!(
        refused(&["A new one"]),
        "error: say which track with --track; this site has notes, maths"
    );
    ok(&shorts_at(
        site,
        WEDNESDAY,
        &["new", "A new one", "-t", "maths", "--tags", " a,,b "],
    ));
    let text = read(&site.join("content/shorts/a-new-one.md"));
    assert!(text.contains("\ntags = [\"a\", \"b\"]\n"), "{text}");

    std::fs::write(site.join("a-file"), "").unwrap();
    let out = shorts_at(site, WEDNESDAY, &["init", "a-file"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: a-file is a file; shorts init makes a site in a folder"
    );
}
