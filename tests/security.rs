//! Secrets and tokens: the signing secret and the SMTP password never show
//! up in logs, errors, the outbox or the database; a subscriber's signed
//! link cannot be turned into another subscriber's, or into a link for
//! another purpose.

mod common;
#[path = "common/faulty_smtp.rs"]
mod faulty_smtp;
#[path = "common/server.rs"]
mod server;

use std::path::Path;

use common::{shorts_at, stderr, stdout};
use server::Server;

const WEEK_1: &str = "2026-06-08T08:00:00Z";
const SECRET: &str = "s3cret-signing-key-that-must-never-leak-0123456789";
const PASSWORD: &str = "hunter2-smtp-password-that-must-never-leak";

const DIGEST: &str = "[digest]\nschedule = \"0 8 * * MON\"\nfrom = \"D <digest@example.com>\"\npostal_address = \"x\"\n";

fn shorts_with_secrets(site: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_shorts"))
        .args(args)
        .current_dir(site)
        .env("SHORTS_NOW", WEEK_1)
        .env("SHORTS_SECRET", SECRET)
        .env("SHORTS_SMTP_PASSWORD", PASSWORD)
        .env("RUST_LOG", "trace")
        .output()
        .expect("run shorts")
}

/// Every file below `dir` as (path, bytes).
fn files_below(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                found.push((path.display().to_string(), bytes));
            }
        }
    }
    found
}

fn assert_absent(what: &str, haystack: &[u8], secret: &str) {
    let needle = secret.as_bytes();
    assert!(
        !haystack.windows(needle.len()).any(|w| w == needle),
        "{what} contains a secret"
    );
}

#[test]
fn secrets_never_reach_logs_errors_the_outbox_or_the_database() {
    let site = common::site_from("site");
    common::append_config(site.path(), DIGEST);
    for who in ["a@example.org", "b@example.org"] {
        let out = shorts_with_secrets(site.path(), &["subscribers", "add", who]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut outputs = Vec::new();
    for args in [
        &["-v", "--log-format", "json", "publish"][..],
        &["-vv", "digest", "preview", "--subscriber", "a@example.org"],
        &["-vv", "check"],
    ] {
        outputs.push(shorts_with_secrets(site.path(), args));
    }
    // An SMTP run that fails at authentication, with the password set.
    let smtp = faulty_smtp::FaultySmtp::start();
    let smtp_site = common::site_from("site");
    common::append_config(smtp_site.path(), DIGEST);
    let out = shorts_with_secrets(smtp_site.path(), &["subscribers", "add", "c@example.org"]);
    assert!(out.status.success(), "{}", stderr(&out));
    common::append_config(
        smtp_site.path(),
        &format!(
            "[delivery]\ntransport = \"smtp\"\n[delivery.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             username = \"digest@example.com\"\npassword_env = \"SHORTS_SMTP_PASSWORD\"\n",
            smtp.port
        ),
    );
    let out = shorts_with_secrets(smtp_site.path(), &["-vv", "digest", "send"]);
    assert!(
        !out.status.success(),
        "a server without AUTH cannot take a login"
    );
    assert!(smtp.accepted().is_empty());
    outputs.push(out);
    outputs.push(shorts_with_secrets(smtp_site.path(), &["-vv", "check"]));

    for out in &outputs {
        for secret in [SECRET, PASSWORD] {
            assert_absent("stdout", &out.stdout, secret);
            assert_absent("stderr", &out.stderr, secret);
        }
    }
    let mut files = files_below(site.path());
    assert!(
        files.iter().any(|(p, _)| p.ends_with(".eml")),
        "the outbox has mail"
    );
    files.extend(files_below(smtp_site.path()));
    for (path, bytes) in files {
        if path.ends_with("config.toml") {
            continue;
        }
        for secret in [SECRET, PASSWORD] {
            assert_absent(&path, &bytes, secret);
        }
    }
}

/// The token in a `?token=` link of the first `.eml` for `to`.
fn link_token(site: &Path, to: &str, path: &str) -> String {
    for (file, bytes) in files_below(&site.join("outbox")) {
        let text = String::from_utf8_lossy(&bytes).replace("=\r\n", "");
        if !file.ends_with(".eml") || !text.contains(&format!("To: {to}")) {
            continue;
        }
        let marker = format!("/{path}?token=");
        let start = text.find(&marker).expect("a link") + marker.len();
        let token: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect();
        return token;
    }
    panic!("no mail to {to}");
}

#[test]
fn a_link_works_only_for_its_own_subscriber_and_purpose() {
    let site = common::site_from("site");
    common::append_config(site.path(), DIGEST);
    for who in ["a@example.org", "b@example.org"] {
        assert!(
            shorts_at(site.path(), WEEK_1, &["subscribers", "add", who])
                .status
                .success()
        );
    }
    assert!(
        shorts_at(site.path(), WEEK_1, &["publish"])
            .status
            .success()
    );
    let a_unsubscribe = link_token(site.path(), "a@example.org", "unsubscribe");
    let a_preferences = link_token(site.path(), "a@example.org", "preferences");
    let b_unsubscribe = link_token(site.path(), "b@example.org", "unsubscribe");
    assert_ne!(a_unsubscribe, b_unsubscribe);

    // a's signature on b's id, b's on a's, a's link for another purpose, a truncated one.
    let (a_payload, a_signature) = a_unsubscribe.rsplit_once('.').expect("payload.signature");
    let (b_payload, b_signature) = b_unsubscribe.rsplit_once('.').expect("payload.signature");
    let forged = [
        format!("{b_payload}.{a_signature}"),
        format!("{a_payload}.{b_signature}"),
        a_preferences.clone(),
        a_unsubscribe[..a_unsubscribe.len() - 2].to_string(),
        format!("{a_unsubscribe}x"),
    ];
    let server = Server::start(site.path(), WEEK_1);
    let http = reqwest::blocking::Client::new();
    for token in &forged {
        let response = http
            .post(server.url(&format!("/unsubscribe?token={token}")))
            .header("Origin", server.url(""))
            .send()
            .expect("request");
        assert!(
            response.status().is_client_error(),
            "{token}: {}",
            response.status()
        );
    }
    let list = stdout(&shorts_at(site.path(), WEEK_1, &["subscribers", "list"]));
    assert_eq!(
        list.matches("active").count(),
        2,
        "nobody was unsubscribed: {list}"
    );

    // The real link unsubscribes its own subscriber only.
    let response = http
        .post(server.url(&format!("/unsubscribe?token={a_unsubscribe}")))
        .header("Origin", server.url(""))
        .send()
        .expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    let list = stdout(&shorts_at(site.path(), WEEK_1, &["subscribers", "list"]));
    assert!(
        list.lines()
            .any(|l| l.contains("a@example.org") && l.contains("unsubscribed")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.contains("b@example.org") && l.contains("active")),
        "{list}"
    );
}

#[test]
fn the_data_folder_is_private_and_exports_cannot_run_formulas() {
    use std::os::unix::fs::PermissionsExt;
    let site = common::site_from("site");
    let site = site.path();
    let formula = "=cmd|'/Ccalc'!A0@example.com";
    let added = shorts_at(
        site,
        WEEK_1,
        &["subscribers", "add", formula, "--name", "@SUM(1+1)"],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&site.join("data")), 0o700);
    // The database and SQLite's -wal and -shm files beside it (the signing
    // key's 0600 is tokens.rs's own test).
    for entry in std::fs::read_dir(site.join("data")).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    let export = stdout(&shorts_at(site, WEEK_1, &["subscribers", "export"]));
    let row = export.lines().nth(1).unwrap();
    assert!(
        row.starts_with("'=cmd|'/Ccalc'!A0@example.com,'@SUM(1+1),"),
        "{row}"
    );
    // Imported back, the export is the same subscriber, unchanged.
    std::fs::write(site.join("back.csv"), &export).unwrap();
    let again = shorts_at(site, WEEK_1, &["subscribers", "import", "back.csv"]);
    assert!(
        stdout(&again).contains("0 added, 0 updated, 1 unchanged"),
        "{}",
        stdout(&again)
    );
}
