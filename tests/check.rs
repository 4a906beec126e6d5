//! `shorts check` on broken shorts: one fixture per kind of problem under
//! `tests/fixtures/check/`, each reported as `path:line: message` with exit 1.

mod common;

use common::{fixture, shorts, stderr};
use std::path::Path;

/// A site with the fixtures' config.toml and only the named shorts.
fn site_with(shorts_files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("content/shorts");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(fixture("check/config.toml"), dir.path().join("config.toml")).unwrap();
    for name in shorts_files {
        std::fs::copy(fixture("check").join(name), folder.join(name)).unwrap();
    }
    dir
}

/// (fixture, line, the message users see after `path:line: `)
const CASES: &[(&str, usize, &str)] = &[
    ("missing-field.md", 1, "missing required field `summary`"),
    (
        "unknown-field.md",
        6,
        "unknown field `tag`; did you mean `tags`? Expected one of: title, date, summary, track, tags, slug, updated, draft, extra",
    ),
    (
        "bad-date.md",
        5,
        "`date`: \"2026-02-30\" is not a valid date; expected a date like 2026-06-07 or an RFC 3339 date-time like 2026-06-07T09:30:00+02:00",
    ),
    (
        "date-out-of-range.md",
        4,
        "`date`: \"0999-01-01\" is out of range; expected a year from 1000 to 9999",
    ),
    (
        "wrong-type.md",
        2,
        "`title` must be a string, found an integer",
    ),
    (
        "unknown-track.md",
        5,
        "unknown track `llms`; did you mean `llm`? Expected one of: llm, retrieval (defined in config.toml)",
    ),
    (
        "empty-body.md",
        7,
        "the body is empty; write the short in Markdown after the closing front-matter line",
    ),
    (
        "unclosed-front-matter.md",
        1,
        "the front matter opened here is never closed; expected a line `+++` after it",
    ),
    (
        "no-front-matter.md",
        1,
        "expected front matter: the first line must be `+++` (TOML) or `---` (YAML)",
    ),
    (
        "malformed-toml.md",
        4,
        "front matter is not valid TOML: invalid basic string, expected `\"`",
    ),
    (
        "malformed-yaml.md",
        5,
        "front matter is not valid YAML: did not find expected ',' or ']' at line 5 column 6, while parsing a flow sequence at line 4 column 7",
    ),
    (
        "bad-slug.md",
        6,
        "`slug` \"Not A Slug\" is not a slug; expected lower-case letters, digits and single hyphens, like \"not-a-slug\"",
    ),
    (
        "updated-before-date.md",
        4,
        "`updated` (2026-06-01T00:00:00+00:00) is before `date` (2026-06-07T00:00:00+00:00)",
    ),
    (
        "tags-not-a-list.md",
        6,
        "`tags` must be a list of strings, like [\"llm\", \"attention\"], found a string",
    ),
    (
        "deeply-nested-yaml.md",
        6,
        "front matter nests more than 64 levels of [ ] or { }",
    ),
    (
        "deeply-nested-toml.md",
        7,
        "front matter is not valid TOML: cannot recurse further; max recursion depth met",
    ),
    (
        "not-utf8.md",
        4,
        "the file is not valid UTF-8 (bad byte at offset 65); save it as UTF-8",
    ),
];

#[test]
fn each_broken_short_is_reported_with_file_line_and_message() {
    for (name, line, message) in CASES {
        let site = site_with(&[name]);
        let out = shorts(site.path(), &["check"]);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: exit code; stderr: {err}"
        );
        let expected = format!(
            "content/shorts/{name}:{line}: {message}\nerror: 1 problem found; fix them and run `shorts check` again\n"
        );
        assert_eq!(err, expected, "{name}");
    }
}

#[test]
fn duplicate_slugs_name_both_files() {
    let site = site_with(&["duplicate-slug-a.md", "duplicate-slug-b.md"]);
    let out = shorts(site.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).lines().next().unwrap(),
        "content/shorts/duplicate-slug-b.md:1: duplicate slug `twin`: content/shorts/duplicate-slug-a.md has it too; set a different `slug` in one of them"
    );
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let mut all: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    all.extend(["duplicate-slug-a.md", "duplicate-slug-b.md"]);
    let site = site_with(&all);
    let out = shorts(site.path(), &["check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    // One line per fixture but the first twin, sorted by file, then the summary.
    assert_eq!(err.lines().count(), all.len() - 1 + 1, "{err}");
    assert!(
        err.ends_with(&format!(
            "error: {} problems found; fix them and run `shorts check` again\n",
            all.len() - 1
        )),
        "{err}"
    );
    let files: Vec<&str> = err.lines().filter_map(|l| l.split(':').next()).collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted, "problems come sorted by file");
}

#[test]
fn a_valid_site_checks_clean_and_writes_nothing() {
    let site = common::site_from("site");
    let entries = || -> Vec<_> {
        let mut names: Vec<_> = std::fs::read_dir(site.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = entries();
    let out = shorts(site.path(), &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        common::stdout(&out),
        "ok: config.toml, 5 shorts and the digest templates are valid\n"
    );
    assert_eq!(entries(), before, "no output, no data folder, no cache");
}

#[test]
fn build_with_a_broken_short_leaves_the_previous_output() {
    let site = common::built("site");
    let feed = site.path().join("public/rss.xml");
    let before = std::fs::read(&feed).unwrap();
    std::fs::copy(
        fixture("check/bad-date.md"),
        site.path().join("content/shorts/bad-date.md"),
    )
    .unwrap();
    std::fs::remove_file(site.path().join("content/shorts/plain.md")).unwrap();
    let out = shorts(site.path(), &["build"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).ends_with(
            "error: 1 problem found; nothing was written; the previous output is unchanged\n"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&feed).unwrap(), before);
    assert!(site.path().join("public/tags/rust/rss.xml").exists());
}

#[test]
fn config_problems_name_the_file_line_and_key() {
    let site = common::site_from("site");
    common::edit_config(
        site.path(),
        "language = \"en-GB\"",
        "language = \"en-GB\"\nlanguag = \"en\"",
    );
    let out = shorts(site.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("config.toml:8: unknown field `languag`, expected one of"),
        "{err}"
    );

    let site = common::site_from("site");
    common::edit_config(
        site.path(),
        "base_url = \"https://example.com/notes\"\n",
        "",
    );
    let err = stderr(&shorts(site.path(), &["check"]));
    assert!(
        err.starts_with("config.toml:3: missing required key `base_url` in [site]\n"),
        "{err}"
    );
}

#[test]
fn a_missing_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = shorts(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("config.toml: cannot read the config file"),
        "{}",
        stderr(&out)
    );
    let out = shorts(dir.path(), &["--config", "elsewhere/site.toml", "build"]);
    assert!(
        stderr(&out).starts_with("elsewhere/site.toml: cannot read"),
        "{}",
        stderr(&out)
    );
    assert!(!Path::new(&dir.path().join("public")).exists());
}

/// (fixture under tests/fixtures/configs/, line, what the message says)
const BROKEN_CONFIGS: &[(&str, Option<usize>, &str)] = &[
    (
        "bad-base-url",
        Some(4),
        "`site.base_url` must be an absolute http(s) URL",
    ),
    (
        "bad-timezone",
        Some(5),
        "unknown time zone \"Mars/Olympus\"",
    ),
    ("bad-track-slug", Some(11), "\"LL M\" is not a slug"),
    (
        "duplicate-track",
        Some(15),
        "track \"llm\" is defined twice",
    ),
    (
        "feeds-limit-wrong-type",
        Some(15),
        "invalid type: string \"fifty\"",
    ),
    (
        "feeds-bad-template",
        Some(14),
        "`feeds.title` is not a valid Tera template",
    ),
    (
        "bad-cron",
        Some(15),
        "\"every monday\" is not a cron expression",
    ),
    (
        "bad-from",
        Some(16),
        "`digest.from`: \"not an address\" is not an email address",
    ),
    (
        "missing-postal-address",
        Some(14),
        "missing required key `postal_address` in [digest]",
    ),
    (
        "unknown-transport",
        Some(15),
        "unknown transport \"pigeon\"",
    ),
    (
        "smtp-plaintext-remote",
        Some(14),
        "only allowed to a loopback host",
    ),
    (
        "smtp-without-host",
        Some(16),
        "missing required key `host` in [delivery.smtp]",
    ),
    (
        "smtp-ca-file-missing",
        Some(18),
        "`delivery.smtp.ca_file`: cannot read certs/relay-ca.pem: No such file",
    ),
    ("unknown-key-in-pages", Some(15), "unknown field `headline`"),
    ("not-toml", Some(14), "unclosed table"),
    ("dkim-missing-key", None, "[delivery.dkim]: DKIM key"),
];

#[test]
fn each_broken_config_is_reported_with_file_line_and_what_was_expected() {
    for (name, line, message) in BROKEN_CONFIGS {
        let site = site_with(&[]);
        std::fs::copy(
            fixture(&format!("configs/{name}.toml")),
            site.path().join("config.toml"),
        )
        .unwrap();
        let out = shorts(site.path(), &["check"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        let first = err.lines().next().unwrap_or("");
        let at = match line {
            Some(line) => format!("config.toml:{line}: "),
            None => "config.toml: ".to_string(),
        };
        assert!(first.starts_with(&at), "{name}: {first}");
        assert!(first.contains(message), "{name}: {first}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

#[test]
fn a_short_over_the_size_limit_is_refused_by_name() {
    let site = site_with(&[]);
    let text = format!(
        "+++\ntitle = \"Huge\"\ndate = 2026-06-07\nsummary = \"S\"\ntrack = \"llm\"\ntags = [\"a\"]\n+++\n\n{}\n",
        "word ".repeat(420_000)
    );
    std::fs::write(site.path().join("content/shorts/huge.md"), text).unwrap();
    let out = shorts(site.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(
            "content/shorts/huge.md: the file is 2100084 bytes; a short must be at most 1048576 bytes\n"
        ),
        "{}",
        stderr(&out)
    );
}
