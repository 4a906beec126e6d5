//! `shorts subscribers` against the real SQLite file: add, import with bad
//! rows reported by line, idempotent re-import, export round trip, tags.

mod common;

use common::{shorts, site_from, stderr, stdout};

const CSV: &str = "email,name,tracks,status
ada@example.com,Ada Lovelace,,active
bob@example.com,Bob,\"llm,retrieval\",
not-an-address,Nobody,,active
carol@example.com,Carol,llm;nope,active
dan@example.com,Dan,retrieval,pending
eve@example.com,Eve,,maybe
";

#[test]
fn import_reports_bad_rows_by_line_and_is_idempotent() {
    let site = site_from("site");
    let file = site.path().join("subscribers.csv");
    std::fs::write(&file, CSV).unwrap();
    let out = shorts(site.path(), &["subscribers", "import", "subscribers.csv"]);
    assert_eq!(out.status.code(), Some(1), "bad rows make the exit code 1");
    assert_eq!(
        stdout(&out),
        "imported subscribers.csv: 3 added, 0 updated, 0 unchanged, 3 bad rows\n"
    );
    assert_eq!(
        stderr(&out),
        "subscribers.csv:4: \"not-an-address\" is not an email address\n\
         subscribers.csv:5: unknown track \"nope\"; expected some of: llm, retrieval, empty-track\n\
         subscribers.csv:7: unknown status \"maybe\"; expected active, pending, unsubscribed or bounced\n\
         error: 3 problems found; the other rows were imported\n"
    );
    let again = shorts(site.path(), &["subscribers", "import", "subscribers.csv"]);
    assert!(
        stdout(&again).starts_with("imported subscribers.csv: 0 added, 0 updated, 3 unchanged")
    );

    let export = shorts(site.path(), &["subscribers", "export"]);
    assert!(export.status.success());
    assert_eq!(
        stdout(&export),
        "email,name,tracks,tags,status,cadence,suppressed\n\
         ada@example.com,Ada Lovelace,,,active,,\n\
         bob@example.com,Bob,\"llm,retrieval\",,active,,\n\
         dan@example.com,Dan,retrieval,,pending,,\n"
    );
    // The export imports back unchanged.
    std::fs::write(site.path().join("export.csv"), stdout(&export)).unwrap();
    let round = shorts(site.path(), &["subscribers", "import", "export.csv"]);
    assert!(
        stdout(&round)
            .starts_with("imported export.csv: 0 added, 0 updated, 3 unchanged, 0 bad rows"),
        "{}",
        stdout(&round)
    );
}

#[test]
fn add_validates_and_remove_deletes() {
    let site = site_from("site");
    let bad = shorts(site.path(), &["subscribers", "add", "nobody"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        stderr(&bad),
        "subscribers add: \"nobody\" is not an email address\nerror: 1 problem found; nothing was added\n"
    );
    let bad = shorts(
        site.path(),
        &[
            "subscribers",
            "add",
            "a@example.com",
            "--tracks",
            "llm,bogus",
        ],
    );
    assert!(
        stderr(&bad).contains("unknown track \"bogus\""),
        "{}",
        stderr(&bad)
    );

    let ok = shorts(
        site.path(),
        &[
            "subscribers",
            "add",
            "a@example.com",
            "--name",
            "A\r\nB",
            "--tracks",
            "retrieval,llm",
        ],
    );
    assert_eq!(
        stdout(&ok),
        "added a@example.com (llm, retrieval)\n",
        "tracks in config order"
    );
    let list = shorts(site.path(), &["subscribers", "list"]);
    assert_eq!(
        stdout(&list),
        format!(
            "{:<13} {:<40} {:<24} {}\n1 subscribers\n",
            "active", "a@example.com", "llm,retrieval", "A B"
        )
    );
    let removed = shorts(site.path(), &["subscribers", "remove", "a@example.com"]);
    assert_eq!(
        stdout(&removed),
        "removed a@example.com and their delivery records\n"
    );
    let again = shorts(site.path(), &["subscribers", "remove", "a@example.com"]);
    assert_eq!(stdout(&again), "a@example.com was not a subscriber\n");
}

#[test]
fn tags_are_added_imported_exported_and_shown() {
    let site = site_from("site");
    let added = shorts(
        site.path(),
        &[
            "subscribers",
            "add",
            "tags@example.com",
            "--tags",
            "rust,kv-cache",
        ],
    );
    assert_eq!(
        stdout(&added),
        "added tags@example.com (tags kv-cache, rust)\n",
        "{}",
        stderr(&added)
    );
    let bad = shorts(
        site.path(),
        &["subscribers", "add", "x@example.com", "--tags", "KV Cache"],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).starts_with("subscribers add: \"KV\" is not a tag slug; expected lower-case letters, digits and single hyphens such as \"kv\""),
        "{}",
        stderr(&bad)
    );
    let csv = "email,tags,tracks\n\
               a@example.com,\"gqa,attention\",llm\n\
               b@example.com,Not A Slug,\n\
               c@example.com,rust,\"llm,retrieval,empty-track\"\n\
               d@example.com,,\n";
    std::fs::write(site.path().join("in.csv"), csv).unwrap();
    let import = shorts(site.path(), &["subscribers", "import", "in.csv"]);
    assert_eq!(
        stdout(&import),
        "imported in.csv: 3 added, 0 updated, 0 unchanged, 1 bad rows\n"
    );
    assert!(
        stderr(&import).starts_with("in.csv:3: \"Not\" is not a tag slug"),
        "{}",
        stderr(&import)
    );
    let export = shorts(site.path(), &["subscribers", "export"]);
    assert_eq!(
        stdout(&export),
        "email,name,tracks,tags,status,cadence,suppressed\n\
         tags@example.com,,,\"kv-cache,rust\",active,,\n\
         a@example.com,,llm,\"attention,gqa\",active,,\n\
         c@example.com,,,,active,,\n\
         d@example.com,,,,active,,\n",
        "every track chosen is everything, tags included"
    );
    std::fs::write(site.path().join("export.csv"), stdout(&export)).unwrap();
    let round = shorts(site.path(), &["subscribers", "import", "export.csv"]);
    assert_eq!(
        stdout(&round),
        "imported export.csv: 0 added, 0 updated, 4 unchanged, 0 bad rows\n"
    );
    // Changing only the tags is an update.
    std::fs::write(
        site.path().join("change.csv"),
        "email,tags\ntags@example.com,rust\n",
    )
    .unwrap();
    let changed = shorts(site.path(), &["subscribers", "import", "change.csv"]);
    assert!(
        stdout(&changed).contains("0 added, 1 updated"),
        "{}",
        stdout(&changed)
    );

    let list = stdout(&shorts(site.path(), &["subscribers", "list"]));
    let a_line = format!(
        "{:<13} {:<40} {:<24} \n",
        "active", "a@example.com", "llm #attention,#gqa"
    );
    assert!(list.contains(&a_line), "{list}");
    assert!(list.contains(&format!("{:<24}", "#rust")), "{list}");
    let show = stdout(&shorts(
        site.path(),
        &["subscribers", "show", "a@example.com"],
    ));
    assert!(
        show.contains("status: active; tracks: llm; tags: attention, gqa\n"),
        "{show}"
    );
    let show = stdout(&shorts(
        site.path(),
        &["subscribers", "show", "tags@example.com"],
    ));
    assert!(show.contains("tracks: none; tags: rust\n"), "{show}");
    let show = stdout(&shorts(
        site.path(),
        &["subscribers", "show", "d@example.com"],
    ));
    assert!(show.contains("tracks: every track\n"), "{show}");
}

#[test]
fn a_cadence_is_chosen_paused_resumed_imported_and_exported() {
    let site = common::cadences_site();
    let run = |args: &[&str]| shorts(site.path(), args);
    let out = run(&["subscribers", "add", "a@example.com", "--cadence", "daily"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["subscribers", "add", "b@example.com", "--cadence", "hourly"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("unknown cadence \"hourly\"; expected one of: weekly, daily, instant"),
        "{}",
        stderr(&out)
    );
    assert!(
        run(&["subscribers", "add", "b@example.com"])
            .status
            .success()
    );
    let out = run(&["subscribers", "add", "a@example.com", "--name", "A"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["subscribers", "pause", "a@example.com"]);
    assert!(
        stdout(&out).starts_with("paused a@example.com"),
        "{}",
        stdout(&out)
    );
    let listed = stdout(&run(&["subscribers", "list"]));
    let a = listed
        .lines()
        .find(|l| l.contains("a@example.com"))
        .unwrap();
    assert!(
        a.starts_with("paused") && a.ends_with("A [daily]"),
        "no --cadence keeps it: {listed}"
    );
    let out = run(&["subscribers", "resume", "a@example.com", "--catch-up"]);
    assert!(stdout(&out).contains("what was published while they were paused"));
    std::fs::write(
        site.path().join("in.csv"),
        "email,cadence\nc@example.com,instant\nd@example.com,\ne@example.com,Weekly!\n",
    )
    .unwrap();
    let out = run(&["subscribers", "import", "in.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("in.csv:4: unknown cadence \"Weekly!\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&run(&["subscribers", "export"])),
        "email,name,tracks,tags,status,cadence,suppressed\n\
         a@example.com,A,,,active,daily,\n\
         b@example.com,,,,active,weekly,\n\
         c@example.com,,,,active,instant,\n\
         d@example.com,,,,active,weekly,\n"
    );
}

#[test]
fn cadences_in_the_config_are_checked_by_name_and_schedule() {
    for (cadences, expected) in [
        (
            "[[digest.cadences]]\nname = \"Daily!\"\nschedule = \"0 8 * * *\"\n",
            "`digest.cadences` name: \"Daily!\" is not a cadence name",
        ),
        (
            "[[digest.cadences]]\nname = \"weekly\"\nschedule = \"0 8 * * *\"\n",
            "`digest.cadences` name: \"weekly\" is given twice",
        ),
        (
            "[[digest.cadences]]\nname = \"daily\"\nschedule = \"every day\"\n",
            "`digest.cadences.schedule`",
        ),
        (
            "[[digest.cadences]]\nname = \"daily\"\nschedule = \"0 8 * * *\"\nfrequency = 1\n",
            "frequency",
        ),
    ] {
        let site = common::cadences_site();
        let config = site.path().join("config.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let start = text.find("[[digest.cadences]]").unwrap();
        std::fs::write(&config, format!("{}{cadences}", &text[..start])).unwrap();
        let out = shorts(site.path(), &["check"]);
        assert_ne!(out.status.code(), Some(0), "{cadences}");
        assert!(
            stderr(&out).contains(expected),
            "{cadences}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("config.toml:"),
            "names the file: {}",
            stderr(&out)
        );
    }
}
