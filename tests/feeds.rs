//! The feeds `shorts build` writes, read back by independent parsers (feed-rs
//! for all three formats, roxmltree for strict XML and namespaces, the `rss`
//! crate's validator) and compared field by field with the fixture shorts.

mod common;

use std::path::{Path, PathBuf};

use common::{built, shorts, stderr, stdout};

const BASE: &str = "https://example.com/notes/";

/// Every feed file below `public/`, sorted.
fn feed_files(public: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![public.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|n| n == "rss.xml" || n == "atom.xml" || n == "feed.json")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn parse(path: &Path) -> feed_rs::model::Feed {
    let bytes = std::fs::read(path).unwrap();
    feed_rs::parser::parse(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn relative(public: &Path, path: &Path) -> String {
    path.strip_prefix(public)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

/// What the fixture's published shorts must look like in every format, newest first.
struct Expected {
    id: &'static str,
    title: &'static str,
    summary: &'static str,
    published: &'static str,
    updated: &'static str,
    categories: &'static [&'static str],
    body_contains: &'static [&'static str],
}

const ESCAPING_TITLE: &str = "Tom & Jerry <script>alert(1)</script> \"quoted\" 'single' 🚀";

const EXPECTED: &[Expected] = &[
    Expected {
        id: "https://example.com/notes/shorts/escaping/",
        title: ESCAPING_TITLE,
        summary: "A summary with <b>not bold</b> & an ampersand — and ünïcödé.",
        published: "2026-06-06T22:00:00+00:00",
        updated: "2026-06-06T22:00:00+00:00",
        categories: &["LLMs", "Rust", "c++", "kv-cache"],
        body_contains: &[
            "<code>a &lt; b &amp;&amp; c &gt; d</code>",
            "entity\u{a0}here",
            "raw ]]> survives",
            "href=\"https://example.com/shorts/yaml-front-matter/\"",
            "href=\"https://example.com/notes/shorts/plain/\"",
            "src=\"https://example.com/notes/shorts/escaping/img/diagram.png\"",
        ],
    },
    Expected {
        id: "https://example.com/notes/shorts/yaml-front-matter/",
        title: "YAML front matter, CRLF line endings",
        summary: "Written in YAML between dashes.",
        published: "2026-06-05T07:30:00+00:00",
        updated: "2026-06-06T10:00:00+00:00",
        categories: &["Retrieval & embeddings", "kv-cache", "YAML"],
        body_contains: &["<em>emphasis</em>"],
    },
    Expected {
        id: "https://example.com/notes/shorts/plain/",
        title: "A plain short",
        summary: "Nothing special, in another track.",
        published: "2026-05-31T22:00:00+00:00",
        updated: "2026-05-31T22:00:00+00:00",
        categories: &["Retrieval & embeddings", "rust"],
        body_contains: &["<p>Plain text. Two words.</p>"],
    },
];

#[test]
fn writes_three_formats_for_the_site_each_track_and_each_tag() {
    let site = built("site");
    let public = site.path().join("public");
    let got: Vec<String> = feed_files(&public)
        .iter()
        .map(|p| relative(&public, p))
        .collect();
    let mut expected = Vec::new();
    for dir in [
        "",
        "digests/",
        "tags/c-plus-plus/",
        "tags/kv-cache/",
        "tags/rust/",
        "tags/yaml/",
        "tracks/empty-track/",
        "tracks/llm/",
        "tracks/retrieval/",
    ] {
        for file in ["atom.xml", "feed.json", "rss.xml"] {
            expected.push(format!("{dir}{file}"));
        }
    }
    expected.sort();
    assert_eq!(got, expected, "drafts and future shorts add no tag feeds");
    assert!(public.join("feed.css").exists());
}

#[test]
fn every_format_carries_the_same_items_field_by_field() {
    let site = built("site");
    let public = site.path().join("public");
    for file in ["rss.xml", "atom.xml", "feed.json"] {
        let feed = parse(&public.join(file));
        assert_eq!(
            feed.entries.len(),
            EXPECTED.len(),
            "{file}: drafts and future shorts are left out"
        );
        for (entry, want) in feed.entries.iter().zip(EXPECTED) {
            let at = format!("{file} {}", want.id);
            assert_eq!(
                entry.id, want.id,
                "{at}: id is the permalink in every format"
            );
            assert_eq!(
                entry.title.as_ref().unwrap().content,
                want.title,
                "{at}: title"
            );
            assert_eq!(entry.links[0].href, want.id, "{at}: link");
            let summary = &entry.summary.as_ref().unwrap().content;
            if file == "rss.xml" {
                // RSS descriptions are HTML: the summary arrives escaped.
                assert_eq!(summary, &html_escape(want.summary), "{at}: summary");
            } else {
                assert_eq!(summary, want.summary, "{at}: summary");
            }
            assert_eq!(
                entry.published.unwrap().to_rfc3339(),
                want.published,
                "{at}: published"
            );
            if file != "rss.xml" {
                assert_eq!(
                    entry.updated.unwrap().to_rfc3339(),
                    want.updated,
                    "{at}: updated"
                );
            }
            let body = entry.content.as_ref().and_then(|c| c.body.clone()).unwrap();
            for needle in want.body_contains {
                assert!(
                    body.contains(needle),
                    "{at}: content lacks {needle:?}:\n{body}"
                );
            }
            // Atom carries the slug as term and the name as label; RSS and JSON the name.
            let categories: Vec<String> = entry
                .categories
                .iter()
                .map(|c| c.label.clone().unwrap_or_else(|| c.term.clone()))
                .collect();
            assert_eq!(
                categories, want.categories,
                "{at}: categories are the track, then the tags"
            );
            if file != "feed.json" {
                assert_eq!(
                    entry.authors[0].name.as_deref(),
                    Some("Ada Example"),
                    "{at}: author"
                );
            }
        }
    }
}

/// What an RSS description holds for a plain-text summary: the summary as
/// HTML text, quotes left alone.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[test]
fn feed_level_fields_are_complete_and_absolute() {
    let site = built("site");
    let public = site.path().join("public");
    for (file, self_type) in [
        ("rss.xml", "application/rss+xml"),
        ("atom.xml", "application/atom+xml"),
        ("feed.json", ""),
    ] {
        let feed = parse(&public.join(file));
        assert_eq!(feed.title.unwrap().content, "Fixture <Site> & Co", "{file}");
        assert_eq!(
            feed.description.unwrap().content,
            "Shorts for the feed tests",
            "{file}"
        );
        if file != "feed.json" {
            // JSON Feed has no feed-level date.
            assert_eq!(
                feed.updated.unwrap().to_rfc3339(),
                "2026-06-06T22:00:00+00:00",
                "{file}: updated is the newest change in the content, not the clock"
            );
        }
        assert_eq!(
            feed.language.map(|l| l.to_lowercase()).as_deref(),
            Some("en-gb"),
            "{file}"
        );
        let hrefs: Vec<&str> = feed.links.iter().map(|l| l.href.as_str()).collect();
        let index = format!("{BASE}shorts/");
        assert!(
            hrefs.contains(&index.as_str()),
            "{file}: links to the shorts index: {hrefs:?}"
        );
        if !self_type.is_empty() {
            let self_link = feed
                .links
                .iter()
                .find(|l| l.rel.as_deref() == Some("self"))
                .unwrap();
            assert_eq!(self_link.href, format!("{BASE}{file}"), "{file}: self link");
            assert_eq!(self_link.media_type.as_deref(), Some(self_type), "{file}");
        }
    }
    let atom = parse(&public.join("atom.xml"));
    assert_eq!(atom.id, format!("{BASE}atom.xml"), "Atom feed id");
    assert_eq!(
        atom.authors[0].name.as_deref(),
        Some("Ada Example"),
        "Atom feed author"
    );
}

#[test]
fn track_and_tag_feeds_hold_only_their_shorts() {
    let site = built("site");
    let public = site.path().join("public");
    let ids = |path: &str| -> Vec<String> {
        parse(&public.join(path))
            .entries
            .into_iter()
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(ids("tracks/llm/atom.xml"), [EXPECTED[0].id]);
    assert_eq!(
        ids("tracks/retrieval/rss.xml"),
        [EXPECTED[1].id, EXPECTED[2].id]
    );
    assert_eq!(
        ids("tags/kv-cache/feed.json"),
        [EXPECTED[0].id, EXPECTED[1].id]
    );
    assert_eq!(
        ids("tags/rust/rss.xml"),
        [EXPECTED[0].id, EXPECTED[2].id],
        "tags match whatever their case"
    );
    assert!(ids("tracks/empty-track/rss.xml").is_empty());
    let llm = parse(&public.join("tracks/llm/rss.xml"));
    assert_eq!(llm.title.unwrap().content, "Fixture <Site> & Co: LLMs");
    assert_eq!(llm.description.unwrap().content, "Language models");
    let tag = parse(&public.join("tags/c-plus-plus/atom.xml"));
    assert_eq!(tag.title.unwrap().content, "Fixture <Site> & Co: #c++");
    assert_eq!(
        tag.links
            .iter()
            .find(|l| l.rel.as_deref() == Some("self"))
            .unwrap()
            .href,
        format!("{BASE}tags/c-plus-plus/atom.xml")
    );
}

/// roxmltree rejects undeclared prefixes, undeclared entities, control
/// characters and anything else that is not well-formed, namespaced XML.
#[test]
fn xml_feeds_are_strict_well_formed_xml_with_declared_namespaces() {
    let site = built("site");
    let public = site.path().join("public");
    for path in feed_files(&public)
        .iter()
        .filter(|p| p.extension().unwrap() == "xml")
    {
        let text = std::fs::read_to_string(path).unwrap();
        let doc =
            roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            !text.contains("&nbsp;"),
            "{}: undeclared entity",
            path.display()
        );
        let root = doc.root_element();
        let has_items = doc.descendants().any(|n| n.has_tag_name("item"));
        if root.tag_name().name() == "rss" && has_items {
            for prefix in ["atom", "content", "dc"] {
                assert!(
                    root.lookup_namespace_uri(Some(prefix)).is_some(),
                    "{}: xmlns:{prefix}",
                    path.display()
                );
            }
        } else if root.tag_name().name() == "feed" {
            assert_eq!(
                root.tag_name().namespace(),
                Some("http://www.w3.org/2005/Atom")
            );
        }
    }
}

#[test]
fn rss_items_follow_the_rules_validators_check() {
    let site = built("site");
    let text = std::fs::read_to_string(site.path().join("public/rss.xml")).unwrap();
    let channel = rss::Channel::read_from(text.as_bytes()).unwrap();
    rss::validation::Validate::validate(&channel)
        .expect("the rss crate's validator accepts the channel");
    let doc = roxmltree::Document::parse(&text).unwrap();
    for item in doc.descendants().filter(|n| n.has_tag_name("item")) {
        let children: Vec<&str> = item
            .children()
            .filter(|n| n.is_element())
            .map(|n| n.tag_name().name())
            .collect();
        let description = children.iter().position(|n| *n == "description").unwrap();
        let content = children.iter().position(|n| *n == "encoded").unwrap();
        assert!(
            description < content,
            "description comes before content:encoded: {children:?}"
        );
        assert!(
            !children.contains(&"author"),
            "no email, so no <author>: {children:?}"
        );
        assert!(
            children.contains(&"creator"),
            "dc:creator names the author: {children:?}"
        );
        let guid = item.children().find(|n| n.has_tag_name("guid")).unwrap();
        assert!(guid.attribute("isPermaLink") != Some("false"));
        assert!(guid.text().unwrap().starts_with(BASE), "guid is a full URL");
        let date = item
            .children()
            .find(|n| n.has_tag_name("pubDate"))
            .unwrap()
            .text()
            .unwrap();
        let parsed =
            chrono::DateTime::parse_from_rfc2822(date).unwrap_or_else(|e| panic!("{date}: {e}"));
        assert_eq!(
            parsed.format("%a").to_string(),
            &date[..3],
            "weekday matches the date: {date}"
        );
        assert!(
            date.split(' ').nth(3).is_some_and(|y| y.len() == 4),
            "four-digit year: {date}"
        );
    }
}

#[test]
fn rss_author_uses_email_and_name_when_there_is_an_email() {
    let site = common::site_from("site");
    common::edit_config(
        site.path(),
        "name = \"Ada Example\"",
        "name = \"Ada Example\"\nemail = \"ada@example.com\"",
    );
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(site.path().join("public/rss.xml")).unwrap();
    assert!(
        text.contains("<author>ada@example.com (Ada Example)</author>"),
        "{text}"
    );
    assert!(text.contains("<managingEditor>ada@example.com (Ada Example)</managingEditor>"));
    assert!(!text.contains("dc:creator"));
}

#[test]
fn atom_declares_text_and_html_constructs() {
    let site = built("site");
    let text = std::fs::read_to_string(site.path().join("public/atom.xml")).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    for node in doc.descendants().filter(|n| n.is_element()) {
        match node.tag_name().name() {
            "title" | "summary" | "subtitle" => {
                assert_eq!(
                    node.attribute("type").unwrap_or("text"),
                    "text",
                    "plain text is declared as text"
                )
            }
            "content" => assert_eq!(node.attribute("type"), Some("html")),
            _ => {}
        }
    }
    for name in ["id", "updated", "author"] {
        assert!(
            doc.root_element().children().any(|n| n.has_tag_name(name)),
            "feed-level <{name}>"
        );
    }
}

#[test]
fn no_relative_url_anywhere() {
    let site = built("site");
    let public = site.path().join("public");
    for path in feed_files(&public) {
        let feed = parse(&path);
        let mut urls: Vec<String> = feed.links.iter().map(|l| l.href.clone()).collect();
        for entry in &feed.entries {
            urls.push(entry.id.clone());
            urls.extend(entry.links.iter().map(|l| l.href.clone()));
            let body = entry
                .content
                .as_ref()
                .and_then(|c| c.body.clone())
                .unwrap_or_default();
            for attr in ["href=\"", "src=\""] {
                for piece in body.split(attr).skip(1) {
                    urls.push(piece.split('"').next().unwrap().to_string());
                }
            }
        }
        for url in urls {
            assert!(
                url.starts_with("https://"),
                "{}: relative URL {url:?}",
                path.display()
            );
        }
    }
}

#[test]
fn json_feed_is_version_1_1_with_absolute_urls() {
    let site = built("site");
    let text = std::fs::read_to_string(site.path().join("public/tracks/llm/feed.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(json["feed_url"], format!("{BASE}tracks/llm/feed.json"));
    assert_eq!(json["home_page_url"], format!("{BASE}tracks/llm/"));
    assert_eq!(json["authors"][0]["name"], "Ada Example");
    let item = &json["items"][0];
    assert_eq!(item["id"], EXPECTED[0].id);
    assert_eq!(item["title"], ESCAPING_TITLE);
    assert_eq!(
        item["tags"],
        serde_json::json!(["LLMs", "Rust", "c++", "kv-cache"])
    );
}

#[test]
fn rebuilding_unchanged_content_is_byte_identical_and_writes_nothing() {
    let site = built("site");
    let public = site.path().join("public");
    let before: Vec<Vec<u8>> = feed_files(&public)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let out = shorts(site.path(), &["build"]);
    assert!(
        stdout(&out).contains(": 0 files written, ")
            && stdout(&out).contains(" unchanged, 0 removed"),
        "{}",
        stdout(&out)
    );
    let after: Vec<Vec<u8>> = feed_files(&public)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(before, after);
    // A later clock changes nothing either: no date in a feed comes from it.
    let out = common::shorts_at(site.path(), "2026-08-01T00:00:00Z", &["build"]);
    assert!(
        stdout(&out).contains(": 0 files written"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn item_limit_and_feed_texts_come_from_config() {
    let site = common::site_from("site");
    let feeds = "[feeds]\nlimit = 2\ntitle = \"All of {{ site.title }}\"\ndescription = \"Everything, newest first\"\n";
    common::edit_config(site.path(), "[[tracks]]", &format!("{feeds}\n[[tracks]]"));
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for file in ["rss.xml", "atom.xml", "feed.json"] {
        let feed = parse(&site.path().join("public").join(file));
        assert_eq!(feed.entries.len(), 2, "{file}");
        assert_eq!(
            feed.entries[0].id, EXPECTED[0].id,
            "{file}: the newest are kept"
        );
        assert_eq!(
            feed.title.unwrap().content,
            "All of Fixture <Site> & Co",
            "{file}"
        );
        assert_eq!(
            feed.description.unwrap().content,
            "Everything, newest first",
            "{file}"
        );
    }
}

#[test]
fn future_short_is_published_once_its_date_passes() {
    let site = common::site_from("site");
    let out = common::shorts_at(site.path(), "2099-01-01T00:00:00Z", &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let feed = parse(&site.path().join("public/rss.xml"));
    assert_eq!(
        feed.entries[0].title.as_ref().unwrap().content,
        "From the future"
    );
    assert!(site.path().join("public/tags/future-only/rss.xml").exists());
    assert!(
        !site.path().join("public/tags/draft-only").exists(),
        "drafts stay out"
    );
}

/// A browser shows an RSS description's text as it stands where it has no
/// XSLT, so an apostrophe must not arrive as `&#39;`.
#[test]
fn rss_descriptions_escape_only_what_html_text_needs() {
    let site = common::sample_site();
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(site.path().join("public/rss.xml")).unwrap();
    let channel = rss::Channel::read_from(text.as_bytes()).unwrap();
    let descriptions: Vec<&str> = channel
        .items()
        .iter()
        .map(|item| item.description().unwrap())
        .collect();
    assert!(
        descriptions.iter().any(|d| d.contains("isn't")),
        "the sample has apostrophes in its summaries"
    );
    for description in descriptions {
        assert!(
            !description.contains("&#39;") && !description.contains("&quot;"),
            "{description}"
        );
    }
}

#[test]
fn xml_feeds_link_their_browser_stylesheets_first_xslt_then_css() {
    let site = built("site");
    let public = site.path().join("public");
    for path in feed_files(&public)
        .iter()
        .filter(|p| p.extension().unwrap() == "xml")
    {
        let text = std::fs::read_to_string(path).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap();
        let links: Vec<&str> = doc
            .root()
            .children()
            .filter(|n| n.is_pi())
            .map(|n| n.pi().unwrap().value.unwrap_or(""))
            .collect();
        assert_eq!(
            links,
            [
                "type=\"text/xsl\" href=\"/notes/feed.xsl\"",
                "type=\"text/css\" href=\"/notes/feed.css\"",
            ],
            "{}: by the site's root path, below base_url",
            path.display()
        );
    }
    let xsl = std::fs::read_to_string(public.join("feed.xsl")).unwrap();
    let xsl = roxmltree::Document::parse(&xsl).expect("feed.xsl is well-formed XML");
    let css_links: Vec<&str> = xsl
        .descendants()
        .filter(|n| n.has_tag_name("link"))
        .filter_map(|n| n.attribute("href"))
        .collect();
    assert_eq!(css_links, ["/notes/feed.css"], "the page links feed.css");

    let site = common::site_from("site");
    common::append_config(site.path(), "\n[feeds]\nstylesheet = false\n");
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let public = site.path().join("public");
    let rss = std::fs::read_to_string(public.join("rss.xml")).unwrap();
    assert!(!rss.contains("<?xml-stylesheet"), "{rss}");
    assert!(!public.join("feed.xsl").exists() && !public.join("feed.css").exists());
}

/// Feed history (RFC 5005): with `[feeds] limit = 2` and 8 published shorts,
/// the subscription documents list the newest two, and their `prev-archive`
/// links (JSON Feed: `next_url`) lead through archive documents marked
/// `fh:archive` that link back, listing every short exactly once. A new
/// short leaves the full archive pages as they were (not even rewritten)
/// and starts a new, partly filled newest page.
#[test]
fn feed_history_pages_back_through_every_short_and_keeps_full_pages() {
    let site = common::site_from("site");
    common::append_config(site.path(), "\n[feeds]\nlimit = 2\n");
    let extra = |i: u32| {
        std::fs::write(
            site.path().join(format!("content/shorts/extra-{i}.md")),
            format!("+++\ntitle = \"Extra {i}\"\ndate = 2026-05-{i:02}T10:00:00Z\nsummary = \"Extra.\"\ntrack = \"llm\"\n+++\nBody.\n"),
        )
        .unwrap();
    };
    (1..=5).for_each(extra);
    let build = || {
        let out = common::shorts_at(site.path(), "2026-07-01T00:00:00Z", &["build"]);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    build();
    let public = site.path().join("public");
    for file in ["atom.xml", "rss.xml", "feed.json"] {
        let (ids, archives) = walk_history(&public, file);
        assert_eq!(ids.len(), 8, "{file}: every published short: {ids:?}");
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), 8, "{file}: each once");
        assert_eq!(
            archives,
            ["archive/3/", "archive/2/", "archive/1/"],
            "{file}"
        );
    }
    let newest = parse(&public.join("atom.xml"));
    assert_eq!(
        newest.entries.len(),
        2,
        "8 = 2 in the subscription + 3 pages of 2"
    );
    let oldest = std::fs::read_to_string(public.join("archive/1/atom.xml")).unwrap();
    assert!(oldest.contains("xmlns:fh=\"http://purl.org/syndication/history/1.0\""));
    assert!(oldest.contains("<fh:archive>"), "{oldest}");
    assert!(
        !oldest.contains("rel=\"prev-archive\""),
        "the oldest page has none older"
    );
    // Pages are not linked from the site's pages: they are reached from feeds.
    let index = std::fs::read_to_string(public.join("shorts/index.html")).unwrap();
    assert!(!index.contains("archive/"), "{index}");

    use std::os::unix::fs::MetadataExt;
    let inode = |file: &str| std::fs::metadata(public.join(file)).unwrap().ino();
    let kept = [
        "archive/1/atom.xml",
        "archive/2/rss.xml",
        "archive/3/feed.json",
    ]
    .map(inode);
    std::fs::write(
        site.path().join("content/shorts/newest.md"),
        "+++\ntitle = \"Newest\"\ndate = 2026-06-30\nsummary = \"New.\"\ntrack = \"llm\"\n+++\nBody.\n",
    )
    .unwrap();
    build();
    assert_eq!(
        [
            "archive/1/atom.xml",
            "archive/2/rss.xml",
            "archive/3/feed.json"
        ]
        .map(inode),
        kept,
        "full archive pages are kept, not written again"
    );
    let (ids, archives) = walk_history(&public, "atom.xml");
    assert_eq!(ids.len(), 9);
    assert_eq!(
        archives[0], "archive/4/",
        "a new, partly filled newest page"
    );
    assert_eq!(parse(&public.join("archive/4/atom.xml")).entries.len(), 1);
}

/// The entry ids from the subscription document `file` back through its
/// archive documents, and the folders of those, newest first.
fn walk_history(public: &Path, file: &str) -> (Vec<String>, Vec<String>) {
    let (mut ids, mut folders) = (Vec::new(), Vec::new());
    let mut path = public.join(file);
    loop {
        let bytes = std::fs::read(&path).unwrap();
        let older = if file.ends_with(".json") {
            let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            ids.extend(
                doc["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].as_str().unwrap().to_string()),
            );
            doc["next_url"].as_str().map(str::to_string)
        } else {
            let feed = parse(&path);
            ids.extend(feed.entries.iter().map(|e| e.id.clone()));
            feed.links
                .iter()
                .find(|l| l.rel.as_deref() == Some("prev-archive"))
                .map(|l| l.href.clone())
        };
        let Some(older) = older else { break };
        let relative = older
            .strip_prefix(BASE)
            .expect("an absolute URL on the site");
        folders.push(relative.trim_end_matches(file).to_string());
        path = public.join(relative);
        assert!(folders.len() < 10, "a loop of archive links");
    }
    (ids, folders)
}
