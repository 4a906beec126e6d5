//! The shortcuts that make builds and sends fast give exactly what the long
//! way gives: feeds spliced from items written once equal feeds written
//! whole, a digest rendered and encoded once per audience and personalised
//! equals one rendered and encoded per subscriber, and a build skipped because nothing changed
//! leaves what a full build would write.

mod common;

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use common::{sample_site, shorts, site_from, stderr, stdout};
use shorts::config::Config;
use shorts::delivery::body::SharedBody;
use shorts::model::{Subscriber, SubscriberStatus};
use shorts::render::digest::{
    DigestContent, DigestTemplates, Links, Personalised, RenderedDigest, SharedCopies, SharedCopy,
    is_personal,
};
use shorts::render::feeds;
use shorts::render::key::KeyHasher;
use shorts::render::{Output, Previous, Sink};

fn config(site: &std::path::Path) -> Config {
    Config::load(&site.join("config.toml")).expect("config loads")
}

/// Every feed of the site, spliced, byte for byte against the writers'
/// output for the whole feed.
fn assert_spliced_feeds_are_whole_feeds(site: &std::path::Path) {
    let config = config(site);
    let collection = shorts::content::load(&config).expect("content loads");
    let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let entries = feeds::entries(&collection, &config, now);
    let plan = feeds::plan(&entries, &collection, &config, now).expect("plan");
    let spliced = std::sync::Mutex::new(HashMap::new());
    let emit = |output: Output| {
        if let Some(file) = output.into_file().expect("nothing live to read") {
            spliced.lock().unwrap().insert(file.path, file.bytes);
        }
        Ok(())
    };
    let build = KeyHasher::new().finish();
    feeds::render::<feeds::FeedError>(&plan, &config, build, &Sink::new(Previous::none(), &emit))
        .expect("renders");
    let spliced = spliced.into_inner().unwrap();
    let mut compared = 0;
    for feed in &plan {
        for whole in feeds::write(feed, &config).expect("writes") {
            let got = spliced.get(&whole.path).expect("every feed file rendered");
            assert!(
                *got == whole.bytes,
                "{}: spliced feed differs from the whole one",
                whole.path
            );
            compared += 1;
        }
    }
    assert!(plan.len() >= 5, "only {} feeds", plan.len());
    assert_eq!(compared, 3 * plan.len());
}

#[test]
fn spliced_feeds_equal_feeds_written_whole() {
    let site = sample_site();
    common::edit_config(site.path(), "limit = 50", "limit = 0");
    assert_spliced_feeds_are_whole_feeds(site.path());
    let fixture = site_from("site");
    assert_spliced_feeds_are_whole_feeds(fixture.path());
    // With feed history: archive documents, their links and `fh:` marks.
    common::edit_config(site.path(), "limit = 0", "limit = 3");
    assert_spliced_feeds_are_whole_feeds(site.path());
}

fn subscriber(id: i64, email: &str, name: &str, tracks: &[&str]) -> Subscriber {
    Subscriber {
        id,
        email: email.to_string(),
        name: name.to_string(),
        tracks: tracks.iter().map(|t| t.to_string()).collect(),
        tags: Vec::new(),
        status: SubscriberStatus::Active,
        token_id: format!("token{id}"),
        cadence: String::new(),
        paused: false,
    }
}

fn tagged(subscriber: Subscriber, tags: &[&str]) -> Subscriber {
    Subscriber {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..subscriber
    }
}

fn links(id: i64) -> Links {
    Links {
        unsubscribe: format!("https://shorts.example.org/unsubscribe?token=u{id}.sig-{id}"),
        preferences: format!("https://shorts.example.org/preferences?token=p{id}.sig-{id}"),
        archive: "https://shorts.example.org/digests/".to_string(),
    }
}

/// Each subscriber's copy, shared, against the same copy rendered for them alone.
fn assert_shared_copies_equal_own_renders(site: &std::path::Path) {
    let config = config(site);
    let digest_config = config.digest.as_ref().expect("the sample has a digest");
    let collection = shorts::content::load(&config).expect("content loads");
    let templates = DigestTemplates::load(&config).expect("templates load");
    let content = DigestContent {
        id: 3,
        number: 3,
        cadence: String::new(),
        archived: true,
        period_start: Utc.with_ymd_and_hms(2026, 6, 1, 6, 0, 0).unwrap(),
        slot: Utc.with_ymd_and_hms(2026, 6, 8, 6, 0, 0).unwrap(),
        shorts: collection.shorts.iter().collect(),
        note: None,
    };
    let tracks: Vec<&str> = config.tracks.iter().map(|t| t.slug.as_str()).collect();
    let subscribers = [
        subscriber(1, "ada@example.com", "", &[]),
        subscriber(2, "bob@example.org", "Bob", &[]),
        subscriber(3, "o'brien+news@example.com", "O'Brien", &[]),
        subscriber(4, "a&b@example.com", "A & B", &[]),
        subscriber(5, "cy@example.net", "", &[tracks[0]]),
        subscriber(6, "di@example.net", "Di", &[tracks[0]]),
        subscriber(7, "ed@example.net", "", &[tracks[1], tracks[0]]),
        subscriber(8, "fa@example.net", "Fa", &[tracks[0], tracks[1]]),
        subscriber(9, "gu@xn--bcher-kva.example", "", &[]),
        // Every track by name: the same sections as following everything.
        subscriber(10, "hu@example.net", "", &tracks),
        // Tags: one track's section, each with other shorts than by track.
        tagged(subscriber(11, "iv@example.net", "", &[]), &["embeddings"]),
        tagged(subscriber(12, "jo@example.net", "Jo", &[]), &["attention"]),
        tagged(subscriber(13, "ka@example.net", "", &[]), &["embeddings"]),
        tagged(
            subscriber(14, "lu@example.net", "", &[tracks[0]]),
            &["embeddings"],
        ),
        tagged(
            subscriber(15, "mo@example.net", "", &[]),
            &["no-short-has-it"],
        ),
    ];
    let shared = SharedCopies::default();
    let mut encoded = HashMap::new();
    // Twice round: the first meets each audience, the second reuses it.
    for subscriber in subscribers.iter().chain(&subscribers) {
        let links = links(subscriber.id);
        let own = templates
            .render(&config, digest_config, &content, subscriber, &links)
            .expect("renders");
        let from_shared = templates
            .render_shared(
                &shared,
                &config,
                digest_config,
                &content,
                subscriber,
                &links,
            )
            .expect("renders");
        if let (Some(Personalised::Shared(copy)), Some(own)) = (&from_shared, &own) {
            assert_encoded_once_as_lettre_encodes(&mut encoded, copy, own);
        }
        assert_eq!(
            from_shared.map(Personalised::into_rendered),
            own,
            "{}'s copy",
            subscriber.email
        );
        if let Some(copy) = &own {
            assert!(copy.html.contains(&subscriber.email.replace('&', "&amp;")));
            assert!(copy.text.contains(&links.unsubscribe));
        }
    }
}

/// The parts of `copy`, encoded once for its audience (by the first of it
/// met) and filled in for this subscriber, byte for byte what lettre makes
/// of the copy rendered for them alone.
fn assert_encoded_once_as_lettre_encodes(
    encoded: &mut HashMap<usize, [SharedBody; 2]>,
    copy: &SharedCopy,
    own: &RenderedDigest,
) {
    let [text, html] = encoded.entry(copy.audience).or_insert_with(|| {
        let encode = |part: &str| SharedBody::new(part, is_personal, |t| copy.fill(t));
        [encode(&copy.template.text), encode(&copy.template.html)]
    });
    for (part, whole) in [(&*text, &own.text), (&*html, &own.html)] {
        assert!(part.is_shared(), "the sample's parts are quoted-printable");
        let once = part.body(|t| copy.fill(t));
        let alone = lettre::message::Body::new(whole.clone());
        assert_eq!(once.encoding(), alone.encoding());
        assert!(once.as_ref() == alone.as_ref(), "{whole}");
    }
}

#[test]
fn shared_digest_copies_equal_copies_rendered_per_subscriber() {
    let site = sample_site();
    assert_shared_copies_equal_own_renders(site.path());
}

#[test]
fn templates_that_greet_by_name_still_get_each_subscribers_name() {
    let site = sample_site();
    let html = site.path().join("templates/digest.html");
    let text = std::fs::read_to_string(&html).unwrap();
    let greeting = text.replacen(
        "<body",
        "{% if subscriber.name %}<!-- Hi {{ subscriber.name | upper }} -->{% endif %}<body",
        1,
    );
    assert_ne!(greeting, text, "the template has a body to greet in");
    std::fs::write(&html, greeting).unwrap();
    let txt = site.path().join("templates/digest.txt");
    let text = std::fs::read_to_string(&txt).unwrap();
    std::fs::write(
        &txt,
        format!("Hello {{{{ subscriber.email | upper }}}}\n{text}"),
    )
    .unwrap();
    assert_shared_copies_equal_own_renders(site.path());
}

#[test]
fn templates_that_do_not_show_the_track_choice_share_copies_by_their_sections() {
    let site = sample_site();
    let choice = "{% if subscriber.all_tracks %}every track{% else %}{{ subscriber.track_titles | join(sep=\", \") }}{% if subscriber.tags %}{% if subscriber.track_titles %} and {% endif %}tags: {{ subscriber.tags | join(sep=\", \") }}{% endif %}{% endif %}";
    let tags_note = "{% if subscriber.tags %} or with your tags{% endif %}";
    for name in ["digest.html", "digest.txt"] {
        let path = site.path().join("templates").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let without = text.replace(choice, "your tracks").replace(tags_note, "");
        assert!(!without.contains("subscriber.tags"), "{without}");
        assert_ne!(without, text, "{name} shows the track choice");
        std::fs::write(&path, without).unwrap();
    }
    assert_shared_copies_equal_own_renders(site.path());
}

#[test]
fn a_build_with_nothing_changed_renders_nothing_and_any_change_renders_again() {
    let site = sample_site();
    let first = shorts(site.path(), &["build"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let again = shorts(site.path(), &["-v", "build"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains(": 0 files written"),
        "{}",
        stdout(&again)
    );
    assert!(
        stderr(&again).contains("inputs unchanged since the last build"),
        "{}",
        stderr(&again)
    );

    // A template of the site changed: rendered again, only what it affects written.
    let page = site.path().join("templates/404.html");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(&page, text.replace("</header>", "<p>Moved?</p></header>")).unwrap();
    let out = shorts(site.path(), &["-v", "build"]);
    assert!(
        !stderr(&out).contains("inputs unchanged"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(": 1 file written"),
        "{}",
        stdout(&out)
    );

    // A file removed from the output by hand is put back.
    std::fs::remove_file(site.path().join("public/tags/index.html")).unwrap();
    let out = shorts(site.path(), &["build"]);
    assert!(
        stdout(&out).contains(": 1 file written"),
        "{}",
        stdout(&out)
    );
    assert!(site.path().join("public/tags/index.html").is_file());

    // The config changed: rendered again.
    common::edit_config(site.path(), "One idea at a time", "One idea a day");
    let out = shorts(site.path(), &["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains(": 0 files written"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_short_coming_due_is_published_with_nothing_else_changed() {
    let site = site_from("site");
    let published = |out: &std::process::Output| {
        assert!(out.status.success(), "{}", stderr(out));
        let text = stdout(out);
        let start = text.find('(').expect("a build summary");
        text[start + 1..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let before = common::shorts_at(site.path(), "2026-06-03T00:00:00Z", &["build"]);
    let same = common::shorts_at(site.path(), "2026-06-03T00:00:01Z", &["build"]);
    assert!(
        stdout(&same).contains(": 0 files written"),
        "{}",
        stdout(&same)
    );
    // Days later, two more shorts are due: the inputs differ, the site is rebuilt.
    let later = common::shorts_at(site.path(), "2026-06-10T00:00:00Z", &["build"]);
    assert_eq!(published(&before), "1", "{}", stdout(&before));
    assert_eq!(published(&later), "3", "{}", stdout(&later));
    assert!(
        !stdout(&later).contains(": 0 files written"),
        "{}",
        stdout(&later)
    );
}
