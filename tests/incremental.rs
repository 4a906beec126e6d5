//! Incremental builds: after any edit, a build renders only the files whose
//! inputs changed, and the site it leaves is byte for byte the site a build
//! from nothing gives for the same content. One test per kind of edit a
//! writer makes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use shorts::config::Config;
use shorts::site::{self, BuildReport};

const TRACKS: [&str; 2] = ["llm", "retrieval"];

fn now() -> DateTime<Utc> {
    common::NOW.parse().expect("NOW is RFC 3339")
}

/// The fixture site with `count` more shorts, a day apart in two tracks and
/// a few shared tags, so each short has neighbours and lists to be in.
fn site_with_shorts(count: usize) -> tempfile::TempDir {
    let site = common::site_from("site");
    for i in 0..count {
        write_short(
            site.path(),
            i,
            &format!("Generated {i}"),
            TRACKS[i % 2],
            &[&format!("t{}", i % 3), "shared"],
        );
    }
    site
}

fn short_file(site: &Path, i: usize) -> PathBuf {
    site.join(format!("content/shorts/gen-{i}.md"))
}

fn write_short(site: &Path, i: usize, title: &str, track: &str, tags: &[&str]) {
    let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
    let text = format!(
        "+++\ntitle = \"{title}\"\ndate = 2026-05-{:02}T10:00:00Z\nsummary = \"Short number {i}.\"\n\
         track = \"{track}\"\ntags = [{}]\n+++\n\nThe body of short {i}, with *emphasis*.\n",
        1 + i,
        tags.join(", ")
    );
    std::fs::write(short_file(site, i), text).expect("write short");
}

/// Replaces `from` by `to` in the file at `path`, which must hold `from`.
fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read file");
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write file");
}

fn build_at(site: &Path, now: DateTime<Utc>) -> BuildReport {
    let config = Config::load(&site.join("config.toml")).expect("config loads");
    site::build(&config, now).expect("the site builds")
}

/// The site's inputs (config, content, templates) built in a new folder.
fn built_from_nothing(site: &Path, now: DateTime<Utc>) -> BTreeMap<PathBuf, Vec<u8>> {
    let fresh = tempfile::tempdir().expect("temporary folder");
    std::fs::copy(site.join("config.toml"), fresh.path().join("config.toml")).expect("copy config");
    for folder in ["content", "templates"] {
        if site.join(folder).exists() {
            common::copy_tree(&site.join(folder), &fresh.path().join(folder));
        }
    }
    build_at(fresh.path(), now);
    common::every_file(&fresh.path().join("public"))
}

/// [`site_with_shorts`], built twice with an edit between, so the next
/// build brings an older generation up to date in place, as most builds do.
fn built_site(count: usize) -> tempfile::TempDir {
    let site = site_with_shorts(count);
    build_at(site.path(), now());
    replace_in(
        &short_file(site.path(), 0),
        "Generated 0\"",
        "Generated zero\"",
    );
    build_at(site.path(), now());
    site
}

/// Applies `edit`, builds again and checks the result against a build from
/// nothing. Returns that build's report.
fn edit_and_compare(site: &Path, edit: impl FnOnce(&Path)) -> BuildReport {
    edit(site);
    let report = build_at(site, now());
    let incremental = common::every_file(&site.join("public"));
    let fresh = built_from_nothing(site, now());
    assert_same_site(&incremental, &fresh);
    report
}

fn assert_same_site(incremental: &BTreeMap<PathBuf, Vec<u8>>, fresh: &BTreeMap<PathBuf, Vec<u8>>) {
    let names = |files: &BTreeMap<PathBuf, Vec<u8>>| files.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(incremental), names(fresh), "the files differ");
    for (path, bytes) in fresh {
        assert!(
            incremental[path] == *bytes,
            "{} differs from a build from nothing:\n--- incremental\n{}\n--- from nothing\n{}",
            path.display(),
            String::from_utf8_lossy(&incremental[path]),
            String::from_utf8_lossy(bytes)
        );
    }
}

/// Checks that the build kept most files without rendering them, and
/// rendered some: an edit that reached nothing, or everything, would mean
/// the keys record the wrong dependencies.
fn assert_rendered_only_some(report: &BuildReport) {
    assert_kept_between(report, 1, 2);
}

/// Checks that the build kept more than `numerator / denominator` of the
/// files, and not all.
fn assert_kept_between(report: &BuildReport, numerator: usize, denominator: usize) {
    let files = &report.files;
    let total = files.written + files.unchanged;
    assert!(
        files.kept * denominator > total * numerator && files.kept < total,
        "kept {} of {total} files without rendering",
        files.kept
    );
}

/// A short more or less in a track changes the track counts every page's
/// context has (`nav_tracks`), so every page renders again; the feeds the
/// short is not in are kept.
fn assert_kept_only_unrelated_feeds(report: &BuildReport) {
    assert_kept_between(report, 1, 4);
}

#[test]
fn an_edited_body_renders_its_page_and_feeds_again() {
    let site = built_site(12);
    let report = edit_and_compare(site.path(), |site| {
        replace_in(
            &short_file(site, 5),
            "with *emphasis*",
            "with **strong** words",
        );
    });
    assert_rendered_only_some(&report);
    assert!(report.files.written > 0);
}

#[test]
fn an_edited_title_reaches_its_neighbours_and_lists() {
    let site = built_site(12);
    let report = edit_and_compare(site.path(), |site| {
        replace_in(
            &short_file(site, 6),
            "Generated 6\"",
            "A new <title> & more\"",
        );
    });
    assert_rendered_only_some(&report);
}

#[test]
fn a_date_that_moves_a_short_past_its_neighbours() {
    let site = built_site(12);
    let report = edit_and_compare(site.path(), |site| {
        replace_in(&short_file(site, 2), "2026-05-03T10", "2026-05-10T11");
    });
    assert_rendered_only_some(&report);
}

#[test]
fn a_tag_added_and_then_removed() {
    let site = built_site(12);
    let report = edit_and_compare(site.path(), |site| {
        replace_in(
            &short_file(site, 4),
            "\"shared\"]",
            "\"shared\", \"brand-new\"]",
        );
    });
    assert_rendered_only_some(&report);
    let public = site.path().join("public");
    assert!(public.join("tags/brand-new/rss.xml").is_file());
    let report = edit_and_compare(site.path(), |site| {
        replace_in(&short_file(site, 4), ", \"brand-new\"]", "]");
    });
    assert_rendered_only_some(&report);
    assert!(!public.join("tags/brand-new").exists());
}

#[test]
fn a_short_moved_to_another_track() {
    let site = built_site(12);
    let report = edit_and_compare(site.path(), |site| {
        replace_in(
            &short_file(site, 3),
            "track = \"retrieval\"",
            "track = \"llm\"",
        );
    });
    assert_kept_only_unrelated_feeds(&report);
}

#[test]
fn a_new_short_and_a_deleted_one() {
    let site = built_site(12);
    let report = edit_and_compare(site.path(), |site| {
        write_short(site, 20, "Brand new", "llm", &["t1"]);
    });
    assert_kept_only_unrelated_feeds(&report);
    let report = edit_and_compare(site.path(), |site| {
        std::fs::remove_file(short_file(site, 7)).expect("delete short");
    });
    assert_kept_only_unrelated_feeds(&report);
    assert!(!site.path().join("public/shorts/gen-7").exists());
}

#[test]
fn a_changed_template_renders_every_page_again() {
    let site = built_site(6);
    let report = edit_and_compare(site.path(), |site| {
        let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/short.html");
        let text = std::fs::read_to_string(builtin).expect("read built-in template");
        std::fs::create_dir_all(site.join("templates")).expect("templates folder");
        let edited = format!("{{# the writer's own copy #}}\n{text}");
        std::fs::write(site.join("templates/short.html"), edited).expect("write template");
    });
    assert_eq!(
        report.files.kept, 0,
        "a template edit must render everything"
    );
}

#[test]
fn a_changed_config_renders_every_page_again() {
    let site = built_site(6);
    let report = edit_and_compare(site.path(), |site| {
        common::edit_config(site, "Fixture <Site> & Co", "Fixture <Site> & Friends");
    });
    assert_eq!(report.files.kept, 0, "a config edit must render everything");
}

#[test]
fn time_passing_publishes_a_scheduled_short() {
    let site = built_site(6);
    let later: DateTime<Utc> = "2100-01-01T00:00:00Z".parse().expect("date");
    let report = build_at(site.path(), later);
    assert_same_site(
        &common::every_file(&site.path().join("public")),
        &built_from_nothing(site.path(), later),
    );
    assert_kept_only_unrelated_feeds(&report);
}

/// Builds with `-vv` and returns how many shorts were parsed and how many
/// came from the content cache, from the debug log.
fn parsed_and_cached(site: &Path) -> (usize, usize) {
    let output = common::shorts(site, &["-vv", "build"]);
    assert!(output.status.success(), "{}", common::stderr(&output));
    let log = common::stderr(&output);
    let line = log
        .lines()
        .find(|l| l.contains("shorts read"))
        .unwrap_or_else(|| panic!("no `shorts read` line in:\n{log}"));
    let number = |name: &str| -> usize {
        let at = line.find(&format!("{name}=")).expect(name) + name.len() + 1;
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().expect("a count")
    };
    (number("parsed"), number("cached"))
}

#[test]
fn the_content_cache_reads_only_changed_files_and_misses_no_change() {
    let site = site_with_shorts(30);
    let count = std::fs::read_dir(site.path().join("content/shorts"))
        .expect("list")
        .count();
    // Files changed within two seconds of the cache being written are not
    // trusted by their times; let them settle first.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(
        parsed_and_cached(site.path()),
        (count, 0),
        "a first build parses all"
    );
    assert_eq!(parsed_and_cached(site.path()), (0, count), "then none");
    // Same size, and the modification time put back: only the change
    // time tells, and it does.
    let file = short_file(site.path(), 3);
    let before = std::fs::metadata(&file)
        .expect("stat")
        .modified()
        .expect("mtime");
    replace_in(&file, "Generated 3\"", "Generated X\"");
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(before))
        .expect("set the time back");
    assert_eq!(parsed_and_cached(site.path()).0, 1);
    let page = std::fs::read_to_string(site.path().join("public/shorts/gen-3/index.html"))
        .expect("the short's page");
    assert!(page.contains("Generated X"), "the edit is on the page");
    // An edit right after that build, same size again: too fresh to trust
    // its times, so parsed, whatever they say.
    replace_in(&file, "Generated X\"", "Generated Y\"");
    assert_eq!(parsed_and_cached(site.path()).0, 1);
    let page = std::fs::read_to_string(site.path().join("public/shorts/gen-3/index.html"))
        .expect("the short's page");
    assert!(page.contains("Generated Y"));
}
