//! `shorts check` on broken shorts: one fixture per kind of problem under
//! `tests/fixtures/check/`, each reported as `path:line: message` with exit 1.

mod common;

use common::{fixture, shorts, stderr};
use std::path::Path;
use std::process::Command;

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
        "unknown field `tag`; did you mean `tags`? Expected one of: title, date, summary, track, tags, slug, updated, draft, id, aliases, extra",
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
    (
        "slug-too-long.md",
        6,
        "`slug` is 299 bytes long; at most 200 (it names a folder, and file systems allow 255); set a shorter `slug`",
    ),
    (
        "too-many-tags.md",
        6,
        "`tags` has 1000 tags; at most 20 per short (each tag is a page and three feeds)",
    ),
    (
        "tag-too-long.md",
        6,
        "tag \"a very long tag that goes on and on past any sensible length for a tag\" is 70 characters long; a tag has at most 60",
    ),
    (
        "too-many-aliases.md",
        6,
        "`aliases` has 21 slugs; at most 20 per short (each is a page)",
    ),
    (
        "bad-formula.md",
        11,
        "the formula `$$\\boxed{\\frac{\\partial L}{\\partial w} = 0…$$` is not LaTeX this build can render: `\\boxed` is not a command it knows",
    ),
    (
        "unopened-formula.md",
        9,
        "`$$` opens no formula here: a formula's braces `{` `}` must pair up and it must end with `$$` (write `\\$\\$` for two dollar signs)",
    ),
    (
        "bad-inline-formula.md",
        7,
        "the formula `$\\alpah$` is not LaTeX this build can render: `\\alpah` is not a command it knows",
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

/// Digest notes are checked as a send would render them, and one named so
/// that no digest would pick it up is named.
#[test]
fn digest_notes_are_checked_before_their_digest_is_due() {
    let site = site_with(&[]);
    let notes = site.path().join("content/digests");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(
        notes.join("2026-06-08.md"),
        "\nA good week.\n\nThe loss is $\\mathcal{L}(\\theta$ again.\n\n$$\\frac{1}{n\\sum_i x_i$$\n",
    )
    .unwrap();
    std::fs::write(notes.join("2026-06-15.md"), "Fine: $x^2$.\n").unwrap();
    std::fs::write(notes.join("june-22.md"), "Never sent.\n").unwrap();
    let out = shorts(site.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "content/digests/2026-06-08.md:6: `$$` opens no formula here: a formula's braces `{` `}` must pair up and it must end with `$$` (write `\\$\\$` for two dollar signs)\n\
         content/digests/june-22.md: a digest note is named for the day of its digest in the site's time zone, `YYYY-MM-DD.md` (e.g. `2026-06-08.md`); no digest would pick this one up\n\
         error: 2 problems found; fix them and run `shorts check` again\n"
    );
}

#[test]
fn each_bad_alias_is_named() {
    let site = site_with(&["bad-alias.md"]);
    let out = shorts(site.path(), &["check"]);
    assert_eq!(
        stderr(&out),
        "content/shorts/bad-alias.md:7: alias \"Old Title\" is not a slug; expected lower-case letters, digits and single hyphens, like \"old-title\"\n\
         content/shorts/bad-alias.md:7: alias `bad-alias` is the short's own slug; an alias is a slug it had before\n\
         error: 2 problems found; fix them and run `shorts check` again\n"
    );
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
        err.starts_with(
            "config.toml:8: unknown key `site.languag`; did you mean `language`? Expected one of"
        ),
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
fn a_missing_config_file_says_where_it_looked_and_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = shorts(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let looked = dir.path().canonicalize().unwrap();
    assert_eq!(
        stderr(&out),
        format!(
            "config.toml: no config file (looked for {}/config.toml); run `shorts init` to start \
             a site here, or pass --config with the path of a site's config.toml\n\
             error: 1 problem found; nothing was done\n",
            looked.display()
        )
    );
    let out = shorts(dir.path(), &["--config", "elsewhere/site.toml", "build"]);
    assert!(
        stderr(&out).starts_with(&format!(
            "elsewhere/site.toml: no config file (looked for {}/elsewhere/site.toml)",
            looked.display()
        )),
        "{}",
        stderr(&out)
    );
    assert!(!Path::new(&dir.path().join("public")).exists());

    std::fs::create_dir_all(dir.path().join("blog")).unwrap();
    let out = shorts(dir.path(), &["--config", "blog", "check"]);
    assert!(
        stderr(&out).starts_with("blog: is a folder; --config takes the config file itself\n"),
        "{}",
        stderr(&out)
    );
    std::fs::write(dir.path().join("blog/config.toml"), "").unwrap();
    let out = shorts(dir.path(), &["--config", "blog", "check"]);
    assert!(
        stderr(&out).starts_with(
            "blog: is a folder; --config takes the config file itself; \
             did you mean --config blog/config.toml?\n"
        ),
        "{}",
        stderr(&out)
    );
}

/// (fixture under tests/fixtures/configs/, everything `check` says: every
/// problem at once, each naming its line and key; `{site}` is the site)
const BROKEN_CONFIGS: &[(&str, &str)] = &[
    (
        "bad-base-url",
        "config.toml:4: `site.base_url` must be an absolute http(s) URL such as \"https://example.com/\": \"example.com\" (relative URL without a base)\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "bad-cron-field",
        "config.toml:15: `digest.schedule`: \"0 8 * * 1DAY\": the day-of-week field \"1DAY\" is not valid; it takes 0-7 or SUN-SAT, `*`, lists (1,15), ranges (1-5) and steps (*/2)\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "bad-cron",
        "config.toml:15: `digest.schedule`: \"every monday\" has 2 fields; a schedule has five fields, minute hour day-of-month month day-of-week, in site.timezone, like \"0 8 * * MON\" (Mondays at 08:00) or \"30 7 * * *\" (every day at 07:30)\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "bad-from",
        "config.toml:16: `digest.from`: \"not an address\" is not an email address (Invalid input); expected \"Name <name@example.org>\" or \"name@example.org\"\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "bad-timezone",
        "config.toml:5: `site.timezone`: unknown time zone \"Mars/Olympus\"; expected an IANA name such as \"Europe/Berlin\" or \"UTC\"\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "bad-track-slug",
        "config.toml:11: `tracks.slug`: \"LL M\" is not a slug; expected lower-case letters, digits and single hyphens, like \"time-series\"\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "dkim-missing-key",
        "config.toml: [delivery.dkim]: DKIM key {site}/no/such/key.pem: No such file or directory (os error 2)\nerror: 1 problem found; fix them and run `shorts check` again\n",
    ),
    (
        "duplicate-track",
        "config.toml:15: `tracks.slug`: track \"llm\" is defined twice\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "feeds-bad-template",
        "config.toml:14: `feeds.title` is not a valid Tera template: Failed to parse 'title':  --> 1:15   | 1 | {{ site.title    |               ^---   |   = expected `or`, `and`, `not`, `<=`, `>=`, `<`, `>`, `==`, `!=`, `+`, `-`, `*`, `/`, `%`, a filter, or a variable end (`}}`)\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "feeds-limit-wrong-type",
        "config.toml:15: `feeds.limit`: expected a whole number, like 10, found the string \"fifty\"\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "missing-postal-address",
        "config.toml:14: missing required key `postal_address` in [digest]\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "not-toml",
        "config.toml:14: unclosed table, expected `]`\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "metrics-bind-without-port",
        "config.toml:15: `server.metrics_bind`: \"9464\" has no port; expected HOST:PORT, such as 127.0.0.1:8080, localhost:8080 or [::1]:8080, or \"\" for no metrics\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "smtp-ca-file-missing",
        "config.toml:18: `delivery.smtp.ca_file`: cannot read certs/relay-ca.pem: No such file or directory (os error 2)\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "smtp-plaintext-remote",
        "config.toml:18: `delivery.smtp.tls = \"none\"` is only allowed to a loopback host, not \"smtp.example.org\"; use \"starttls\" or \"tls\"\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "smtp-without-host",
        "config.toml:16: missing required key `host` in [delivery.smtp]\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "two-misspelt-keys",
        "config.toml:15: unknown key `pages.headling`; did you mean `heading`? Expected one of: name, heading, tagline, intro\nconfig.toml:16: unknown key `pages.taglin`; did you mean `tagline`? Expected one of: name, heading, tagline, intro\nerror: 2 problems found; nothing was done\n",
    ),
    (
        "unknown-and-invalid-together",
        "config.toml:15: `server.bind`: \"8080\" has no port; expected HOST:PORT, such as 127.0.0.1:8080, localhost:8080 or [::1]:8080\nconfig.toml:16: unknown key `server.bnid`; did you mean `bind`? Expected one of: bind, cache_control, consent_version, trusted_proxies, confirmations_per_address, pending_expiry_days, content_security_policy, header_timeout_secs, request_timeout_secs, max_connections, shutdown_timeout_secs, metrics_bind\nerror: 2 problems found; nothing was done\n",
    ),
    (
        "unknown-key-in-pages",
        "config.toml:15: unknown key `pages.headline`; did you mean `heading`? Expected one of: name, heading, tagline, intro\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "unknown-transport",
        "config.toml:15: `delivery.transport`: unknown transport \"pigeon\"; expected \"outbox\" or \"smtp\"\nerror: 1 problem found; nothing was done\n",
    ),
    (
        "wrong-type-in-a-track",
        "config.toml:16: `tracks[2].title`: expected text in quotes, found the integer 2\nconfig.toml:19: `feeds.limit`: expected a whole number, like 10, found the string \"50\"\nerror: 2 problems found; nothing was done\n",
    ),
];

#[test]
fn each_broken_config_is_reported_with_file_line_and_what_was_expected() {
    for (name, expected) in BROKEN_CONFIGS {
        let site = site_with(&[]);
        std::fs::copy(
            fixture(&format!("configs/{name}.toml")),
            site.path().join("config.toml"),
        )
        .unwrap();
        let out = shorts(site.path(), &["check"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        let site_path = site.path().display().to_string();
        assert_eq!(
            stderr(&out),
            expected.replace("{site}", &site_path),
            "{name}"
        );
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

/// A short at `name` in `site`'s shorts folder, valid in itself.
fn write_short(site: &Path, name: impl AsRef<std::ffi::OsStr>, tags: &str) {
    let text = format!(
        "+++\ntitle = \"T\"\ndate = 2026-06-07\nsummary = \"S.\"\ntrack = \"llm\"\ntags = [{tags}]\n+++\nBody.\n"
    );
    std::fs::write(site.join("content/shorts").join(name.as_ref()), text).unwrap();
}

/// What cannot be a fixture in git (pipes, links that loop, names that
/// differ only in their Unicode form, names that are not UTF-8) is made
/// here; each is named by `check` instead of vanishing from the site.
#[test]
fn entries_that_are_not_markdown_files_are_named() {
    use std::os::unix::ffi::OsStrExt as _;
    let site = site_with(&[]);
    let dir = site.path().join("content/shorts");
    let fifo = Command::new("mkfifo")
        .arg(dir.join("pipe.md"))
        .status()
        .unwrap();
    assert!(fifo.success());
    std::os::unix::fs::symlink("loop.md", dir.join("loop.md")).unwrap();
    std::os::unix::fs::symlink("gone.md", dir.join("dangling.md")).unwrap();
    std::fs::create_dir(dir.join("folder.md")).unwrap();
    write_short(site.path(), std::ffi::OsStr::from_bytes(b"bad\xff.md"), "");
    write_short(site.path(), "r\u{e9}sum\u{e9}.md", "");
    write_short(site.path(), "re\u{301}sume\u{301}.md", "");
    // Links to files and other names are fine, and so is a hidden pipe.
    write_short(site.path(), "real.md", "");
    std::os::unix::fs::symlink("real.md", dir.join("alias.md")).unwrap();
    Command::new("mkfifo")
        .arg(dir.join(".hidden.md"))
        .status()
        .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a short").unwrap();

    let out = shorts(site.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "content/shorts/bad\u{fffd}.md: the file name is not UTF-8; rename it (its slug and address come from it)",
            "content/shorts/dangling.md: a symbolic link to gone.md, which does not exist; point it at a Markdown file or delete it",
            "content/shorts/folder.md: is a folder, not a Markdown file; shorts are read only from files",
            "content/shorts/loop.md: a symbolic link that leads back to itself; point it at a Markdown file or delete it",
            "content/shorts/pipe.md: is a named pipe (FIFO), not a Markdown file; shorts are read only from files",
            "content/shorts/r\u{e9}sum\u{e9}.md:1: duplicate slug `r\u{e9}sum\u{e9}`: content/shorts/re\u{301}sume\u{301}.md has it too; set a different `slug` in one of them (their file names look the same but encode their accents differently, NFC and NFD; delete one)",
            "error: 6 problems found; fix them and run `shorts check` again",
        ]
    );
}

/// A slug or tag outside ASCII is written to disk under its own name and
/// percent-encoded once in every URL (the sitemap encoded it twice); a tag
/// typed composed and decomposed is one tag.
#[test]
fn unicode_slugs_are_folders_by_name_and_encoded_once_in_urls() {
    let site = site_with(&[]);
    write_short(
        site.path(),
        "caf\u{e9}.md",
        "\"Caf\u{e9}\", \"Cafe\u{301}\", \"\u{65e5}\u{672c}\"",
    );
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let public = site.path().join("public");
    for page in [
        "shorts/caf\u{e9}/index.html",
        "tags/caf\u{e9}/index.html",
        "tags/caf\u{e9}/rss.xml",
        "tags/\u{65e5}\u{672c}/index.html",
    ] {
        assert!(public.join(page).is_file(), "{page}");
    }
    let tags: Vec<String> = std::fs::read_dir(public.join("tags"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "index.html")
        .collect();
    assert_eq!(tags.len(), 2, "{tags:?}");
    let sitemap = std::fs::read_to_string(public.join("sitemap.xml")).unwrap();
    assert!(
        sitemap.contains("<loc>https://check.example.org/shorts/caf%C3%A9/</loc>"),
        "{sitemap}"
    );
    assert!(
        sitemap.contains("/tags/%E6%97%A5%E6%9C%AC/</loc>"),
        "{sitemap}"
    );
    assert!(!sitemap.contains("%25"), "{sitemap}");
    let page = std::fs::read_to_string(public.join("shorts/caf\u{e9}/index.html")).unwrap();
    assert!(
        page.contains("href=\"https://check.example.org/shorts/caf%C3%A9/\""),
        "{page}"
    );
}
