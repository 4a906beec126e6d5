//! The web pages `shorts build` writes, read back with an HTML parser
//! (html5ever through scraper): what the index shows, that every link and
//! feed link resolves to a file in `public/`, structure and accessibility,
//! the digest archive and template overrides.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use common::{shorts, shorts_at, stderr};
use scraper::{ElementRef, Html, Selector};
use url::Url;

fn select(selector: &str) -> Selector {
    Selector::parse(selector).expect("valid selector")
}

fn text(element: ElementRef<'_>) -> String {
    element
        .text()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn page(site: &Path, file: &str) -> Html {
    let path = site.join("public").join(file);
    let html = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Html::parse_document(&html)
}

fn html_files(public: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![public.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read public/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "html") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The site's pages: every HTML file but the feeds' own pages (`feed.html`
/// beside each feed), which stand alone like the XSLT's page and are
/// checked on their own.
fn site_pages(public: &Path) -> Vec<PathBuf> {
    html_files(public)
        .into_iter()
        .filter(|file| !file.ends_with(shorts::paths::FEED_PAGE))
        .collect()
}

fn config_of(site: &Path) -> shorts::config::Config {
    shorts::config::Config::load(&site.join("config.toml")).expect("config loads")
}

/// The file in `public/` a same-site URL names, or `None` for other sites.
fn file_for(url: &Url, base: &Url, public: &Path) -> Option<PathBuf> {
    if url.origin() != base.origin() {
        return None;
    }
    let path = url.path().strip_prefix(base.path())?;
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .expect("UTF-8 path");
    let mut file = public.join(decoded.as_ref());
    if decoded.is_empty() || decoded.ends_with('/') {
        file.push("index.html");
    }
    Some(file)
}

/// The URL a page in `public/` is published at.
fn page_url(file: &Path, public: &Path, base: &Url) -> Url {
    let relative = file.strip_prefix(public).expect("inside public/");
    let relative = relative.to_string_lossy().replace('\\', "/");
    base.join(&relative).expect("page URL")
}

#[test]
fn the_index_reproduces_the_seed_page() {
    let site = common::sample_site();
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = config_of(site.path());
    let collection = shorts::content::load(&config).expect("sample loads");
    let index = page(site.path(), "shorts/index.html");

    let first = |selector: &str| {
        index
            .select(&select(selector))
            .next()
            .map(text)
            .unwrap_or_else(|| panic!("no {selector}"))
    };
    assert_eq!(first("header.site-header .brand"), "lenatriestounderstand");
    assert_eq!(first("main h1"), "Shorts");
    assert_eq!(first(".tagline"), "One idea at a time");
    // The configured intro, and nothing the author did not write.
    assert_eq!(
        first(".intro"),
        "Single-idea notes drawn from the longer pieces. 1-2 minutes each."
    );
    // The search form is in the page, keeping its place until the script is ready.
    let filters = index
        .select(&select("form#filters"))
        .next()
        .expect("the search form");
    assert!(filters.value().attr("data-pending").is_some());
    assert!(filters.value().attr("hidden").is_none());
    // The navigation marks where the reader is.
    assert_eq!(first("nav a[aria-current=page]"), "Shorts");
    assert_eq!(first("#shorts-count"), "25 shorts");

    let cards: Vec<ElementRef<'_>> = index
        .select(&select("#shorts > li > article.card"))
        .collect();
    assert_eq!(cards.len(), 25);
    // Newest first, in the seed page's order (same-day shorts carry times).
    let titles: Vec<String> = cards
        .iter()
        .map(|c| text(c.select(&select(".card-title a")).next().expect("title")))
        .collect();
    assert_eq!(titles[0], "What is Grouped-Query Attention (GQA)?");
    assert_eq!(titles[1], "The KV Cache in One Formula");
    assert_eq!(
        titles[2],
        "Why \"strawberry\" Has Three R's (and the Model Can't Count Them)"
    );
    assert_eq!(
        titles[24],
        "Time series vs panel data — what stacking series actually changes"
    );
    for (card, short) in cards.iter().zip(&collection.shorts) {
        let within = |selector: &str| card.select(&select(selector)).next().map(text);
        assert_eq!(
            within(".card-title a").as_deref(),
            Some(short.title.as_str())
        );
        assert_eq!(within(".summary").as_deref(), Some(short.summary.as_str()));
        // One link to the short, its title: no "Read" repeating it.
        let to_short = format!("../shorts/{}/", short.slug);
        let links: Vec<ElementRef<'_>> = card
            .select(&select("a"))
            .filter(|a| a.value().attr("href") == Some(to_short.as_str()))
            .collect();
        assert_eq!(links.len(), 1, "{}", short.slug);
        assert_eq!(text(links[0]), short.title);
        let time = card.select(&select("time")).next().expect("date");
        assert_eq!(
            time.value().attr("datetime"),
            Some(short.date.to_rfc3339().as_str())
        );
        let tags: Vec<String> = card.select(&select(".tags a")).map(text).collect();
        let expected: Vec<&str> = short.tags.iter().take(4).map(|t| t.name.as_str()).collect();
        assert_eq!(tags, expected, "{}", short.slug);
    }
    let dates: Vec<String> = cards
        .iter()
        .map(|c| text(c.select(&select("time")).next().expect("date")))
        .collect();
    assert_eq!(dates[0], "Jun 7, 2026");
    assert_eq!(dates[15], "May 28, 2026");
    assert_eq!(dates[24], "May 27, 2026");
    // The MLA short has five tags; its card shows four and "+1", as on the seed page.
    let mla = index
        .select(&select("#short-multi-head-latent-attention .tags .more"))
        .next()
        .expect("+1 on the MLA card");
    assert!(text(mla).starts_with("+1"), "{}", text(mla));

    // Without JavaScript the filters are not shown (a stylesheet rule, no
    // inline style: the Content-Security-Policy allows none) and every card is.
    let css = std::fs::read_dir(site.path().join("public/assets"))
        .expect("the assets")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().contains("style"))
        .map(|p| std::fs::read_to_string(p).expect("the stylesheet"))
        .expect("a stylesheet");
    assert!(css.contains("@media (scripting: none) { .filters { display: none; } }"));
    assert_eq!(index.select(&select("#shorts li[hidden]")).count(), 0);
    for name in ["q", "track", "tag"] {
        assert!(
            index
                .select(&select(&format!("#filters [name={name}]")))
                .next()
                .is_some()
        );
    }

    // The search index the script narrows with: one entry per listed short.
    let search: serde_json::Value = serde_json::from_slice(
        &std::fs::read(site.path().join("public/shorts/search.json")).expect("search.json"),
    )
    .expect("search.json is JSON");
    let entries = search.as_array().expect("an array");
    assert_eq!(entries.len(), 25);
    for (entry, short) in entries.iter().zip(&collection.shorts) {
        assert_eq!(entry["slug"], short.slug.as_str());
        assert_eq!(entry["title"], short.title.as_str());
        assert_eq!(entry["track"], short.track.as_str());
        assert_eq!(
            entry["tags"].as_array().map(Vec::len),
            Some(short.tags.len())
        );
    }
}

/// Checks every `href`, `src` and `action` of every page; returns how many.
/// With `bodies` false, links the author wrote inside a short's body are
/// left out (the fixture links an image it does not have).
fn check_links(site: &Path, bodies: bool) -> usize {
    let config = config_of(site);
    let base = &config.site.base_url;
    let public = site.join("public");
    let mut checked = 0;
    let links = select("a[href], link[href], script[src], img[src], form[action]");
    for file in html_files(&public) {
        let html = Html::parse_document(&std::fs::read_to_string(&file).expect("read page"));
        let ids: HashSet<&str> = html
            .select(&select("[id]"))
            .filter_map(|e| e.value().attr("id"))
            .collect();
        let here = page_url(&file, &public, base);
        for element in html.select(&links) {
            let in_body = element.ancestors().filter_map(ElementRef::wrap).any(|a| {
                a.value()
                    .has_class("body", scraper::CaseSensitivity::CaseSensitive)
            });
            if in_body && !bodies {
                continue;
            }
            let attr = ["href", "src", "action"]
                .into_iter()
                .find_map(|a| element.value().attr(a))
                .expect("selected for it");
            let url = here.join(attr).unwrap_or_else(|e| {
                panic!("{}: bad URL {attr:?}: {e}", file.display());
            });
            if element.value().name() == "form" {
                assert_eq!(element.value().attr("method"), Some("post"));
                assert_eq!(
                    url.as_str(),
                    config.site.url("subscribe"),
                    "{}",
                    file.display()
                );
                checked += 1;
                continue;
            }
            if let Some(fragment) = attr.strip_prefix('#') {
                assert!(ids.contains(fragment), "{}: no #{fragment}", file.display());
                checked += 1;
                continue;
            }
            let Some(target) = file_for(&url, base, &public) else {
                continue; // another site
            };
            assert!(
                target.is_file(),
                "{}: {attr} -> {} is not in public/",
                file.display(),
                target.display()
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_link_on_every_page_resolves_to_a_file() {
    let sample = common::sample_site();
    let out = shorts(sample.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let checked = check_links(sample.path(), true);
    assert!(checked > 2_000, "only {checked} links checked");

    // The fixture lives below a path, has a non-ASCII-free but odd tag set,
    // drafts and future shorts that must not be linked.
    let fixture = common::built("site");
    let checked = check_links(fixture.path(), false);
    assert!(checked > 200, "only {checked} links checked");
    let public = fixture.path().join("public");
    assert!(!public.join("shorts/draft").exists());
    assert!(!public.join("tags/future-only").exists());
}

#[test]
fn autodiscovery_links_point_at_the_pages_own_feeds() {
    let site = common::sample_site();
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = config_of(site.path());
    let base = &config.site.base_url;
    let public = site.path().join("public");
    let alternate = select("link[rel=alternate]");
    for file in site_pages(&public) {
        if file.ends_with("404.html") {
            continue;
        }
        let html = Html::parse_document(&std::fs::read_to_string(&file).expect("read"));
        let mut types = BTreeSet::new();
        for link in html.select(&alternate) {
            let kind = link.value().attr("type").expect("type");
            let href = Url::parse(link.value().attr("href").expect("href")).expect("absolute");
            let target = file_for(&href, base, &public).expect("a feed on this site");
            let bytes = std::fs::read(&target)
                .unwrap_or_else(|_| panic!("{}: {href} does not exist", file.display()));
            let expected_ext = match kind {
                "application/rss+xml" | "application/atom+xml" => "xml",
                "application/feed+json" => "json",
                other => panic!("unexpected feed type {other}"),
            };
            assert_eq!(
                target.extension().and_then(|e| e.to_str()),
                Some(expected_ext)
            );
            feed_rs::parser::parse(bytes.as_slice())
                .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
            assert!(link.value().attr("title").is_some_and(|t| !t.is_empty()));
            types.insert(kind);
        }
        assert_eq!(types.len(), 3, "{}: RSS, Atom and JSON", file.display());
        let canonical = html
            .select(&select("link[rel=canonical]"))
            .next()
            .and_then(|l| l.value().attr("href"))
            .unwrap_or_else(|| panic!("{}: no canonical link", file.display()));
        assert!(canonical.starts_with(base.as_str()), "{canonical}");
    }
    // Pages link their own feed first: a track page its track's feeds, a tag
    // page its tag's, a short its track's.
    let first_feed = |file: &str| {
        page(site.path(), file)
            .select(&alternate)
            .next()
            .and_then(|l| l.value().attr("href").map(String::from))
            .expect("a feed")
    };
    assert_eq!(
        first_feed("tracks/llm/index.html"),
        config.site.url("tracks/llm/rss.xml")
    );
    assert_eq!(
        first_feed("tags/kv-cache/index.html"),
        config.site.url("tags/kv-cache/rss.xml")
    );
    assert_eq!(
        first_feed("shorts/kv-cache-in-one-formula/index.html"),
        config.site.url("tracks/llm/rss.xml")
    );
    assert_eq!(
        first_feed("digests/index.html"),
        config.site.url("digests/rss.xml")
    );
}

/// WCAG 2 contrast ratio of two `#rrggbb` colours.
fn contrast(a: &str, b: &str) -> f64 {
    let luminance = |hex: &str| {
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    };
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// The `--name: #rrggbb` custom properties in one CSS block.
fn colours(block: &str) -> std::collections::HashMap<String, String> {
    block
        .lines()
        .filter_map(|line| {
            let (name, value) = line.trim().strip_prefix("--")?.split_once(':')?;
            let value = value.trim().trim_end_matches(';');
            value
                .starts_with('#')
                .then(|| (name.to_string(), value.to_string()))
        })
        .collect()
}

#[test]
fn the_built_in_colours_meet_wcag_aa_contrast_in_light_and_dark_mode() {
    let css = include_str!("../templates/style.css");
    let (light, rest) = css
        .split_once("@media (prefers-color-scheme: dark)")
        .expect("dark mode");
    let light = colours(light);
    let mut dark = light.clone();
    dark.extend(colours(rest.split_once("}\n}").expect("dark block").0));
    let pairs = [
        ("text", "bg"),
        ("muted", "bg"),
        ("link", "bg"),
        ("text", "surface"),
        ("muted", "surface"),
        ("link", "surface"),
        ("accent-text", "accent-bg"),
    ];
    for (mode, colours) in [("light", &light), ("dark", &dark)] {
        for (fg, bg) in pairs {
            let ratio = contrast(&colours[fg], &colours[bg]);
            assert!(
                ratio >= 4.5,
                "{mode}: --{fg} on --{bg} is {ratio:.2}:1, below 4.5:1"
            );
        }
    }
    assert!(contrast("#000000", "#ffffff") > 20.9);
}

#[test]
fn every_page_parses_cleanly_and_has_landmarks_labels_and_one_h1() {
    let site = common::sample_site();
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let public = site.path().join("public");
    let feed_pages: Vec<PathBuf> = html_files(&public)
        .into_iter()
        .filter(|file| file.ends_with(shorts::paths::FEED_PAGE))
        .collect();
    assert!(feed_pages.len() > 10, "{} feed pages", feed_pages.len());
    for file in feed_pages {
        let name = file.display().to_string();
        let html = Html::parse_document(&std::fs::read_to_string(&file).expect("read"));
        assert!(html.errors.is_empty(), "{name}: {:?}", html.errors);
        assert!(html.root_element().value().attr("lang").is_some(), "{name}");
        for one in ["head > title", "meta[name=viewport]", "main", "h1"] {
            assert_eq!(html.select(&select(one)).count(), 1, "{name}: {one}");
        }
    }
    let files = site_pages(&public);
    assert!(files.len() > 80, "{} pages", files.len());
    for file in files {
        let name = file.display().to_string();
        let html = Html::parse_document(&std::fs::read_to_string(&file).expect("read"));
        assert!(
            html.errors.is_empty(),
            "{name}: HTML parse errors {:?}",
            html.errors
        );
        let root = html.root_element();
        assert!(
            root.value().attr("lang").is_some_and(|l| !l.is_empty()),
            "{name}"
        );
        assert_eq!(html.select(&select("head > title")).count(), 1, "{name}");
        let mut ids = HashSet::new();
        for id in html
            .select(&select("[id]"))
            .filter_map(|e| e.value().attr("id"))
        {
            assert!(ids.insert(id), "{name}: duplicate id {id}");
        }
        if file.ends_with("public/index.html") {
            continue; // the root only redirects to the index
        }
        assert!(
            html.select(&select("meta[name=viewport]")).next().is_some(),
            "{name}"
        );
        assert_eq!(html.select(&select("main")).count(), 1, "{name}");
        assert_eq!(html.select(&select("body > header")).count(), 1, "{name}");
        assert_eq!(html.select(&select("body > footer")).count(), 1, "{name}");
        assert_eq!(html.select(&select("h1")).count(), 1, "{name}");
        for nav in html.select(&select("nav")) {
            assert!(
                nav.value().attr("aria-label").is_some(),
                "{name}: unlabelled nav"
            );
        }
        for field in html.select(&select("input:not([type=hidden]), select, textarea")) {
            let labelled = field.value().attr("id").is_some_and(|id| {
                html.select(&select(&format!("label[for=\"{id}\"]")))
                    .next()
                    .is_some()
            }) || field
                .ancestors()
                .any(|a| ElementRef::wrap(a).is_some_and(|e| e.value().name() == "label"));
            assert!(labelled, "{name}: a form field without a label");
        }
        for image in html.select(&select("img")) {
            assert!(
                image.value().attr("alt").is_some(),
                "{name}: img without alt"
            );
        }
        // Headings never skip a level on the way down.
        let mut level = 0;
        for heading in html.select(&select("h1, h2, h3, h4, h5, h6")) {
            let this: u32 = heading.value().name()[1..].parse().expect("h level");
            assert!(this <= level + 1, "{name}: h{level} then h{this}");
            level = this;
        }
        for og in ["og:title", "og:description", "og:url", "og:type"] {
            assert!(
                html.select(&select(&format!("meta[property=\"{og}\"]")))
                    .next()
                    .is_some(),
                "{name}: no {og}"
            );
        }
    }
}

#[test]
fn a_short_page_has_body_meta_neighbours_in_its_track_and_a_subscribe_form() {
    let site = common::sample_site();
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = config_of(site.path());
    let collection = shorts::content::load(&config).expect("loads");
    let llm: Vec<&shorts::model::Short> = collection
        .shorts
        .iter()
        .filter(|s| s.track == "llm")
        .collect();
    // The second newest LLM short has both neighbours.
    let short = llm[1];
    let html = page(site.path(), &format!("shorts/{}/index.html", short.slug));
    let one = |selector: &str| html.select(&select(selector)).next().map(text);
    assert_eq!(one("h1").as_deref(), Some(short.title.as_str()));
    assert_eq!(one(".kicker a").as_deref(), Some("LLMs"));
    let meta = one(".meta").expect("meta line");
    assert!(meta.contains("Jun 7, 2026"), "{meta}");
    assert!(
        meta.contains(&format!("{} min read", short.reading_minutes)),
        "{meta}"
    );
    let tags: Vec<String> = html.select(&select("header .tags a")).map(text).collect();
    let expected: Vec<&str> = short.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tags, expected);
    let body = html.select(&select(".body")).next().expect("body");
    assert!(body.select(&select("p")).count() >= 2);
    let prev = html
        .select(&select("a[rel=prev]"))
        .next()
        .expect("previous");
    let next = html.select(&select("a[rel=next]")).next().expect("next");
    assert_eq!(
        prev.value().attr("href"),
        Some(format!("../../shorts/{}/", llm[2].slug).as_str())
    );
    assert_eq!(
        next.value().attr("href"),
        Some(format!("../../shorts/{}/", llm[0].slug).as_str())
    );
    assert!(text(prev).contains(&llm[2].title));

    let form = html
        .select(&select("form[action]"))
        .next()
        .expect("subscribe form");
    assert_eq!(form.value().attr("method"), Some("post"));
    assert_eq!(form.value().attr("action"), Some("../../subscribe"));
    let email = form
        .select(&select("input[name=email]"))
        .next()
        .expect("email");
    assert_eq!(email.value().attr("type"), Some("email"));
    assert!(email.value().attr("required").is_some());
    let boxes: Vec<ElementRef<'_>> = form.select(&select("input[name=tracks]")).collect();
    assert_eq!(boxes.len(), config.tracks.len());
    let checked: Vec<&str> = boxes
        .iter()
        .filter(|b| b.value().attr("checked").is_some())
        .filter_map(|b| b.value().attr("value"))
        .collect();
    assert_eq!(checked, ["llm"], "the short's own track is pre-selected");

    // Track and tag pages list exactly their shorts.
    let track = page(site.path(), "tracks/llm/index.html");
    assert_eq!(track.select(&select("article.card")).count(), llm.len());
    let tagged = collection
        .shorts
        .iter()
        .filter(|s| s.tags.iter().any(|t| t.slug == "kv-cache"))
        .count();
    let tag = page(site.path(), "tags/kv-cache/index.html");
    assert_eq!(tag.select(&select("article.card")).count(), tagged);
    assert_eq!(
        page(site.path(), "tags/index.html")
            .select(&select(".tag-cloud li"))
            .count(),
        collection
            .shorts
            .iter()
            .flat_map(|s| &s.tags)
            .map(|t| &t.slug)
            .collect::<HashSet<_>>()
            .len()
    );
}

/// Before the first digest, the archive's feeds are dated with the site's
/// newest short; a site with no short yet, with the build's time: never
/// 1970, which validators call implausible.
#[test]
fn feeds_with_nothing_in_them_yet_carry_a_plausible_date() {
    let site = common::site_from("site");
    let now = "2026-07-01T00:00:00Z";
    let build = shorts_at(site.path(), now, &["build"]);
    assert!(build.status.success(), "{}", stderr(&build));
    let updated = |file: &str| {
        let bytes = std::fs::read(site.path().join("public").join(file)).expect(file);
        let feed = feed_rs::parser::parse(bytes.as_slice()).expect("parses");
        feed.updated.expect("a date").to_rfc3339()
    };
    let newest_short = updated("atom.xml");
    assert!(newest_short.starts_with("2026-06"), "{newest_short}");
    for file in ["digests/atom.xml", "digests/rss.xml"] {
        assert_eq!(updated(file), newest_short, "{file}");
    }

    std::fs::remove_dir_all(site.path().join("content/shorts")).unwrap();
    std::fs::create_dir(site.path().join("content/shorts")).unwrap();
    let empty = shorts_at(site.path(), now, &["build"]);
    assert!(empty.status.success(), "{}", stderr(&empty));
    for file in ["atom.xml", "rss.xml", "digests/atom.xml"] {
        let date = updated(file);
        assert!(date.starts_with("2026-07-01T00:00:0"), "{file}: {date}");
        assert!(!date.contains('.'), "{file}: whole seconds, {date}");
    }
}

#[test]
fn sent_digests_get_archive_pages_and_a_feed() {
    let site = common::site_from("site");
    common::append_config(
        site.path(),
        r#"
[digest]
schedule = "0 8 * * MON"
from = "Fixture Digest <digest@example.com>"
postal_address = "Fixture Ltd, 1 Test Street, Testville"
"#,
    );
    let week_1 = "2026-06-08T08:00:00Z";
    let add = shorts_at(
        site.path(),
        week_1,
        &["subscribers", "add", "reader@example.org"],
    );
    assert!(add.status.success(), "{}", stderr(&add));
    let publish = shorts_at(site.path(), week_1, &["publish"]);
    assert!(publish.status.success(), "{}", stderr(&publish));

    let archive = page(site.path(), "digests/index.html");
    let links: Vec<&str> = archive
        .select(&select("main .link-list a"))
        .filter_map(|a| a.value().attr("href"))
        .collect();
    assert_eq!(
        links,
        ["../digests/1/"],
        "publish rebuilt the archive after sending"
    );
    let digest = page(site.path(), "digests/1/index.html");
    assert_eq!(
        digest.select(&select("h1")).next().map(text).as_deref(),
        Some("Digest #1")
    );
    let carried: Vec<String> = digest
        .select(&select("article.card .card-title a"))
        .map(text)
        .collect();
    assert!(
        carried.contains(&"YAML front matter, CRLF line endings".to_string()),
        "{carried:?}"
    );
    assert!(
        !carried.iter().any(|t| t == "Work in progress"),
        "no drafts"
    );
    let sections: Vec<String> = digest
        .select(&select("main section:not(.subscribe) > h2"))
        .map(text)
        .collect();
    assert_eq!(sections, ["LLMs", "Retrieval & embeddings"]);

    let bytes = std::fs::read(site.path().join("public/digests/atom.xml")).expect("digest feed");
    let feed = feed_rs::parser::parse(bytes.as_slice()).expect("parses");
    assert_eq!(feed.entries.len(), 1);
    let xml = String::from_utf8(bytes).expect("UTF-8");
    let doc = roxmltree::Document::parse(&xml).expect("XML");
    let complete = doc.descendants().any(|e| {
        e.tag_name().name() == "complete"
            && e.tag_name().namespace() == Some("http://purl.org/syndication/history/1.0")
    });
    assert!(
        complete && !xml.contains("prev-archive"),
        "every digest is in it, and it says so (RFC 5005): {xml}"
    );
    assert_eq!(
        feed.entries[0].links[0].href,
        "https://example.com/notes/digests/1/"
    );
    check_links(site.path(), false);
}

#[test]
fn a_template_in_the_site_replaces_the_built_in_one_and_a_broken_one_is_reported() {
    let site = common::built("site");
    let templates = site.path().join("templates");
    std::fs::create_dir_all(&templates).expect("templates/");
    std::fs::write(
        templates.join("tag.html"),
        "{% extends \"base.html\" %}{% block main %}<h1>Custom {{ tag.title }}: {{ shorts | length }}</h1>{% endblock main %}",
    )
    .expect("write template");
    std::fs::write(templates.join("style.css"), "body { color: #000; }\n").expect("write css");
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tag = page(site.path(), "tags/kv-cache/index.html");
    assert_eq!(
        tag.select(&select("h1")).next().map(text).as_deref(),
        Some("Custom kv-cache: 2")
    );
    let css = std::fs::read_to_string(site.path().join("public/assets/style.css")).expect("css");
    assert_eq!(css, "body { color: #000; }\n");

    let before = std::fs::read(site.path().join("public/tags/kv-cache/index.html")).expect("page");
    std::fs::write(
        templates.join("short.html"),
        "{% extends \"base.html\" %}\n{% block main %}\n{{ short.title \n{% endblock main %}",
    )
    .expect("write broken template");
    let out = shorts(site.path(), &["build"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("templates/short.html:4:"), "{message}");
    assert!(message.contains("invalid template"), "{message}");
    let after = std::fs::read(site.path().join("public/tags/kv-cache/index.html")).expect("page");
    assert_eq!(before, after, "a failed build leaves the last good output");
}
