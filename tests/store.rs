//! Several `shorts` processes opening one fresh database at once: whichever
//! creates the schema, the others wait for it instead of failing with
//! "no such table" or "database is locked".

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Output, Stdio};

const WEEK_1: &str = "2026-06-08T08:00:00Z";
const ROUNDS: usize = 25;

fn spawn(site: &Path, args: &[&str]) -> Child {
    common::shorts_command(site, WEEK_1)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shorts")
}

/// Waits until `shorts serve` says where it listens (its store is open by
/// then) and stops it; fails with what it said if it exited instead.
fn assert_serving(round: usize, mut server: Child) {
    let mut first_line = String::new();
    if let Some(stdout) = server.stdout.as_mut() {
        let _ = BufReader::new(stdout).read_line(&mut first_line);
    }
    if first_line.contains("http://") {
        let _ = server.kill();
        let _ = server.wait();
        return;
    }
    let output = server.wait_with_output().expect("wait for serve");
    panic!(
        "round {round}: `shorts serve` did not start ({}): {first_line}{}",
        output.status,
        common::stderr(&output)
    );
}

fn assert_clean(what: &str, round: usize, output: &Output) {
    let stderr = common::stderr(output);
    assert!(
        output.status.success(),
        "round {round}: `shorts {what}` failed ({}): {stderr}",
        output.status
    );
    for bad in ["no such table", "database is locked"] {
        assert!(
            !stderr.contains(bad),
            "round {round}: `shorts {what}` said {bad:?}: {stderr}"
        );
    }
}

#[test]
fn processes_started_together_on_a_fresh_database_all_succeed() {
    for round in 0..ROUNDS {
        // Port 1: nothing here sends mail.
        let site = common::smtp_digest_site(1, "");
        let commands: [&[&str]; 3] = [
            &["subscribers", "add", "reader@example.org"],
            &["build"],
            &["digest", "preview"],
        ];
        // `serve` beside the others, as when `shorts schedule` and `shorts
        // serve` start together on a new install.
        let server = spawn(site.path(), &["serve", "--bind", "127.0.0.1:0"]);
        let children: Vec<_> = commands
            .iter()
            .map(|args| (args.join(" "), spawn(site.path(), args)))
            .collect();
        for (what, child) in children {
            let output = child.wait_with_output().expect("wait for shorts");
            assert_clean(&what, round, &output);
        }
        assert_serving(round, server);
        let list = common::shorts_at(site.path(), WEEK_1, &["subscribers", "list"]);
        assert_clean("subscribers list", round, &list);
        assert!(
            common::stdout(&list).contains("reader@example.org"),
            "round {round}: {}",
            common::stdout(&list)
        );
    }
}
