//! Property tests: any title, summary, tag or name text goes in through the
//! front-matter loader and comes out unchanged — after the loader's one
//! normalisation (control characters dropped, whitespace runs collapsed) —
//! through RSS, Atom and JSON Feed (read back by feed-rs, roxmltree and
//! serde_json) and through the digest email's headers and both bodies (read
//! back by mailparse), with nothing able to break the XML, JSON or MIME.

use std::path::Path;

use chrono::{DateTime, Utc};
use mailparse::MailHeaderMap;
use proptest::prelude::*;
use shorts::config::Config;
use shorts::diagnostics::Problems;
use shorts::model::{Collection, Short, Subscriber, SubscriberStatus};
use shorts::render::digest::{DigestContent, DigestTemplates, Links};

const CONFIG: &str = r#"
[site]
title = "Round trip"
description = "D"
base_url = "https://example.com/"
timezone = "Europe/Berlin"
[site.author]
name = "A"
[[tracks]]
slug = "llm"
title = "LLMs"
[digest]
schedule = "0 8 * * MON"
from = "Digest <digest@example.com>"
postal_address = "1 Test Street"
"#;

fn config() -> Config {
    Config::parse(CONFIG, Path::new("/site/config.toml")).expect("valid config")
}

/// Text as the loader keeps it: whitespace runs as one space, other
/// control characters dropped.
fn normalised(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_whitespace() || !c.is_control())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text with everything markup and headers find hard: markup, quotes,
/// entities, `]]>`, CR/LF, tabs, NUL and other controls, non-ASCII, emoji,
/// encoded-word look-alikes and the Unicode line separators.
fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "<",
        ">",
        "&",
        "&amp;",
        "\"",
        "'",
        "]]>",
        "<![CDATA[",
        "\r\n",
        "\n",
        "\r",
        "\t",
        "\0",
        "\u{7}",
        "\u{1b}",
        "\u{7f}",
        "\u{85}",
        "\u{a0}",
        "\u{2028}",
        "\u{feff}",
        "é",
        "ß",
        "中文",
        "🚀",
        "=?utf-8?q?x?=",
        ":",
        ";",
        ",",
        "\\",
        "{{",
        "}}",
        "{%",
        "%}",
        "#",
        "--",
        "a",
        "Word",
    ]);
    (prop::collection::vec(pieces, 1..12), "[ -~À-ÿ]{0,12}")
        .prop_map(|(pieces, plain)| format!("{}{plain}", pieces.concat()))
        .prop_filter("has visible text", |t| !normalised(t).is_empty())
}

/// A tag must have a letter or digit and at most 60 characters (the loader
/// says so); otherwise anything.
fn hostile_tag() -> impl Strategy<Value = String> {
    hostile_text().prop_map(|t| format!("{}x", t.chars().take(50).collect::<String>()))
}

fn load(title: &str, summary: &str, tag: &str, config: &Config) -> Short {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let text = format!(
        "+++\ntitle = {}\nsummary = {}\ndate = 2026-06-07\ntrack = \"llm\"\ntags = [{}]\n+++\n\nBody.\n",
        quote(title),
        quote(summary),
        quote(tag)
    );
    let mut problems = Problems::default();
    let short = shorts::content::parse_short(
        Path::new("/site/content/shorts/x.md"),
        &text,
        config,
        &mut problems,
    );
    short.unwrap_or_else(|| panic!("{problems}"))
}

fn file<'a>(files: &'a [shorts::render::OutputFile], path: &str) -> &'a [u8] {
    &files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path}"))
        .bytes
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-08T08:00:00Z")
        .expect("fixed instant")
        .to_utc()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn text_survives_every_feed_format(title in hostile_text(), summary in hostile_text(), tag in hostile_tag()) {
        let config = config();
        let short = load(&title, &summary, &tag, &config);
        prop_assert_eq!(&short.title, &normalised(&title));
        prop_assert_eq!(&short.summary, &normalised(&summary));
        prop_assert_eq!(&short.tags[0].name, &normalised(&tag));

        let collection = Collection::new(config.tracks.clone(), vec![short.clone()]);
        let files = shorts::site::render_files(&config, &collection, &[], now()).expect("renders");
        for path in ["rss.xml", "atom.xml", "tracks/llm/rss.xml"] {
            let xml = std::str::from_utf8(file(&files, path)).expect("UTF-8");
            roxmltree::Document::parse(xml).map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
            let feed = feed_rs::parser::parse(xml.as_bytes()).expect("feed parses");
            let entry = &feed.entries[0];
            prop_assert_eq!(entry.title.as_ref().map(|t| t.content.as_str()), Some(short.title.as_str()));
            let labels: Vec<String> = entry
                .categories
                .iter()
                .map(|c| c.label.clone().unwrap_or_else(|| c.term.clone()))
                .collect();
            prop_assert!(labels.contains(&short.tags[0].name), "{}: {:?}", path, labels);
        }
        let atom = feed_rs::parser::parse(file(&files, "atom.xml")).expect("atom");
        prop_assert_eq!(
            atom.entries[0].summary.as_ref().map(|s| s.content.as_str()),
            Some(short.summary.as_str())
        );
        let json: serde_json::Value = serde_json::from_slice(file(&files, "feed.json")).expect("JSON");
        prop_assert_eq!(&json["items"][0]["title"], short.title.as_str());
        prop_assert_eq!(&json["items"][0]["summary"], short.summary.as_str());
        prop_assert!(json["items"][0]["tags"].as_array().expect("tags").contains(&short.tags[0].name.as_str().into()));
        let search: serde_json::Value =
            serde_json::from_slice(file(&files, "shorts/search.json")).expect("search index");
        prop_assert_eq!(&search[0]["title"], short.title.as_str());
    }

    #[test]
    fn text_survives_the_digest_email(title in hostile_text(), name in hostile_text(), site_title in hostile_text()) {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let text = CONFIG.replace("title = \"Round trip\"", &format!("title = {}", quote(&site_title)));
        let config = Config::parse(&text, Path::new("/site/config.toml")).expect("valid config");
        let digest_config = config.digest.clone().expect("[digest]");
        let short = load(&title, "Summary", "tag", &config);
        let subscriber = Subscriber {
            id: 7,
            email: "reader@example.org".into(),
            name: name.clone(),
            tracks: vec![],
            tags: vec![],
            status: SubscriberStatus::Active,
            token_id: "token".into(),
            cadence: String::new(),
            paused: false,
        };
        let templates = DigestTemplates::load(&config).expect("templates");
        let content = DigestContent { id: 1, number: 1, cadence: String::new(), archived: true, period_start: now(), slot: now(), shorts: vec![&short], note: None };
        let links = Links {
            unsubscribe: "https://example.com/unsubscribe?token=t".into(),
            preferences: "https://example.com/preferences?token=t".into(),
            archive: "https://example.com/digests/".into(),
        };
        let rendered = templates
            .render(&config, &digest_config, &content, &subscriber, &links)
            .expect("renders")
            .expect("has the short");
        let envelope = shorts::delivery::compose::Envelope {
            config: &digest_config,
            digest: 1,
            subscriber: &subscriber,
            unsubscribe_url: &links.unsubscribe,
            unsubscribe_token: "t",
            date: now(),
            returns: None,
        };
        let parts = shorts::delivery::compose::DigestParts::of(&rendered);
        let composed = shorts::delivery::compose::compose(&envelope, parts, None).expect("composes");
        let mail = mailparse::parse_mail(&composed.bytes).expect("MIME parses");
        // One header per line: nothing in the text started a header of its own.
        let names: Vec<String> = mail.headers.iter().map(|h| h.get_key().to_ascii_lowercase()).collect();
        for header in ["subject", "to", "from", "list-unsubscribe", "message-id"] {
            prop_assert_eq!(names.iter().filter(|n| *n == header).count(), 1, "{}", header);
        }
        let subject = mail.headers.get_first_value("Subject").expect("subject");
        prop_assert!(subject.starts_with(&normalised(&site_title)), "{:?} vs {:?}", subject, site_title);
        // Parsed before encoded words are decoded, as RFC 2047 requires.
        let to = mail.headers.get_first_header("To").expect("to");
        let addresses = mailparse::addrparse_header(to).expect("To parses");
        match &addresses[0] {
            mailparse::MailAddr::Single(single) => {
                prop_assert_eq!(single.addr.as_str(), "reader@example.org");
                let shown = single.display_name.clone().unwrap_or_default();
                prop_assert_eq!(shown, normalised(&name));
            }
            other => prop_assert!(false, "not one address: {:?}", other),
        }
        let (text_part, html_part) = (&mail.subparts[0], &mail.subparts[1]);
        let plain = text_part.get_body().expect("text part");
        prop_assert!(plain.contains(&short.title), "text part lacks {:?}", short.title);
        let html = scraper::Html::parse_document(&html_part.get_body().expect("html part"));
        let link_texts: Vec<String> = html
            .select(&scraper::Selector::parse("a").expect("selector"))
            .map(|a| a.text().collect::<String>())
            .collect();
        prop_assert!(link_texts.contains(&short.title), "HTML part lacks {:?}", short.title);
    }
}
