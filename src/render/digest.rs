//! A digest as one subscriber sees it: the subject line, the HTML part (CSS
//! inlined, table layout) and the text part, from the Tera templates
//! `digest.html` and `digest.txt`.
//!
//! The built-in templates ship inside the binary; a file of the same name in
//! the site's `templates/` folder replaces one. Pure: no I/O beyond reading
//! those templates once, no clock.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use tera::{Context, Tera};

use super::{SiteView, TrackView, display_date, join_words, templates};
use crate::config::{Config, DigestConfig, tera_message};
use crate::diagnostics::{Problem, Problems};
use crate::model::{Section, Short, Subscriber, Track, sections};

pub const HTML_TEMPLATE: &str = "digest.html";
pub const TEXT_TEMPLATE: &str = "digest.txt";
const SUBJECT_TEMPLATE: &str = "subject";

/// The name of the subject template of the cadence with `key`: the
/// default's is [`SUBJECT_TEMPLATE`].
fn subject_template(key: &str) -> String {
    match key {
        "" => SUBJECT_TEMPLATE.to_string(),
        key => format!("{SUBJECT_TEMPLATE}:{key}"),
    }
}

const BUILT_IN: [(&str, &str); 2] = [
    (HTML_TEMPLATE, include_str!("../../templates/digest.html")),
    (TEXT_TEMPLATE, include_str!("../../templates/digest.txt")),
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("rendering {template}: {message}")]
    Template { template: String, message: String },
    #[error("inlining the CSS of digest.html: {0}")]
    Css(String),
}

/// The compiled digest templates.
pub struct DigestTemplates {
    tera: Tera,
    shows: Shows,
}

/// What of a subscriber besides the address the templates may show, so
/// copies are shared only between subscribers who are alike there.
#[derive(Debug, Clone, Copy)]
struct Shows {
    name: bool,
    /// Their choice of tracks and tags (`all_tracks`, `track_titles`, `tags`).
    choice: bool,
}

/// What one copy of a digest carries: the issue, shared by every reader up
/// to date with the cadence, or a reader's own window of it.
#[derive(Debug, Clone)]
pub struct DigestContent<'a> {
    /// The digest's number in the ledger, unique across cadences: what
    /// Message-IDs and returned mail name.
    pub id: i64,
    /// Its number among its cadence's digests: what readers see ("#12").
    pub number: i64,
    /// Its cadence's key: "" for the default, whose issues are archived.
    pub cadence: String,
    /// The issue itself, as the archive shows it, rather than a reader's
    /// own window of the digest.
    pub archived: bool,
    pub period_start: DateTime<Utc>,
    pub slot: DateTime<Utc>,
    /// Newest first.
    pub shorts: Vec<&'a Short>,
    /// The author's note, shown above the sections.
    pub note: Option<crate::model::DigestNote>,
}

impl<'a> DigestContent<'a> {
    /// What of this digest is in `subscriber`'s copy.
    pub fn sections_for<'s>(
        &'s self,
        subscriber: &Subscriber,
        tracks: &'s [Track],
    ) -> Vec<Section<'s>> {
        sections(&self.shorts, tracks, |short| {
            subscriber.follows_short(short)
        })
    }
}

/// The links personal to one subscriber.
#[derive(Debug, Clone, Serialize)]
pub struct Links {
    pub unsubscribe: String,
    pub preferences: String,
    pub archive: String,
}

/// One subscriber's email, ready to be put in an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedDigest {
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Shorts in this subscriber's copy.
    pub count: usize,
}

impl DigestTemplates {
    /// The built-in templates, each replaced by the site's file of the same name if there is one.
    pub fn load(config: &Config) -> Result<Self, Problems> {
        let mut tera = templates::load(config, &BUILT_IN)?;
        let mut texts = templates::texts(config, &BUILT_IN);
        texts.extend(
            config
                .digest
                .iter()
                .flat_map(|d| &d.cadences)
                .map(|c| c.subject.clone()),
        );
        let shows = Shows {
            name: texts.iter().any(|text| may_show_name(text)),
            choice: texts.iter().any(|text| may_show_choice(text)),
        };
        for cadence in config.digest.iter().flat_map(|d| &d.cadences) {
            let key = match cadence.is_default() {
                true => "digest.subject".to_string(),
                false => format!("the subject of the {} cadence", cadence.name),
            };
            if let Err(e) = tera.add_raw_template(&subject_template(&cadence.key), &cadence.subject)
            {
                return Err(Problems(vec![Problem::new(
                    &config.path,
                    None,
                    format!("`{key}`: {}", tera_message(&e)),
                )]));
            }
        }
        Ok(DigestTemplates { tera, shows })
    }

    /// The subscriber's copy, or `None` when nothing in the digest is in
    /// their tracks or tags.
    pub fn render(
        &self,
        config: &Config,
        digest_config: &DigestConfig,
        digest: &DigestContent<'_>,
        subscriber: &Subscriber,
        links: &Links,
    ) -> Result<Option<RenderedDigest>, RenderError> {
        let sections = digest.sections_for(subscriber, &config.tracks);
        let count: usize = sections.iter().map(|s| s.shorts.len()).sum();
        if count == 0 {
            return Ok(None);
        }
        let tz = config.site.timezone;
        let sections = section_views(&sections, config, tz);
        let mut context = Context::new();
        context.insert("site", &SiteView::new(config));
        context.insert("digest", &DigestView::new(digest, count, config));
        context.insert("note", &digest.note);
        context.insert("preheader", &preheader(&sections, count));
        context.insert(
            "subscriber",
            &SubscriberView::new(subscriber, &config.tracks, &digest.shorts),
        );
        context.insert("links", links);
        context.insert("postal_address", &digest_config.postal_address);
        // A cadence the config no longer offers has the default's subject.
        let cadence = config
            .digest
            .as_ref()
            .map(|d| d.cadence_of(&digest.cadence));
        let subject_of = subject_template(cadence.map_or("", |c| c.key.as_str()));
        let subject = self.render_one(&subject_of, &context)?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        context.insert("subject", &subject);
        context.insert("sections", &sections);
        let html = self.render_one(HTML_TEMPLATE, &context)?;
        let html = inline_css(&html)?;
        let text = tidy_text(&self.render_one(TEXT_TEMPLATE, &context)?);
        Ok(Some(RenderedDigest {
            subject,
            html,
            text,
            count,
        }))
    }

    /// Renders a sample digest of the newest `shorts` for a reader of every
    /// track, so that `shorts check` finds what only shows when the templates
    /// render (an unknown variable, a filter on the wrong type), at its line.
    pub fn check(
        &self,
        config: &Config,
        digest_config: &DigestConfig,
        shorts: Vec<&Short>,
        now: DateTime<Utc>,
    ) -> Result<(), Problem> {
        // With a note, so a template's use of it is checked too.
        let sample = DigestContent {
            id: 1,
            number: 1,
            cadence: String::new(),
            archived: true,
            period_start: now - chrono::Duration::weeks(1),
            slot: now,
            shorts,
            note: Some(crate::model::DigestNote {
                html: "<p>A note from the author.</p>".into(),
                text: "A note from the author.".into(),
            }),
        };
        let links = Links {
            unsubscribe: config.site.url(&crate::paths::unsubscribe("sample")),
            preferences: config.site.url(&crate::paths::preferences("sample")),
            archive: config.site.url(crate::paths::DIGESTS),
        };
        match self.render(
            config,
            digest_config,
            &sample,
            &Subscriber::sample(),
            &links,
        ) {
            Ok(_) => Ok(()),
            Err(RenderError::Template { template, message }) if template == SUBJECT_TEMPLATE => {
                Err(Problem::new(
                    &config.path,
                    None,
                    format!("`digest.subject` cannot render: {message}"),
                ))
            }
            Err(RenderError::Template { template, message }) => Err(
                crate::render::templates::render_problem(config, &template, &message),
            ),
            Err(e) => Err(Problem::new(
                &config.templates_dir.join(HTML_TEMPLATE),
                None,
                e.to_string(),
            )),
        }
    }

    /// The same copy as [`render`](Self::render), rendered once per
    /// [`Audience`] with placeholders where the subscriber's address and
    /// links go; the copy says what to put in them. The first copy of each
    /// audience is also rendered directly and compared; if the templates
    /// treat the placeholders differently from real values, that audience is
    /// rendered per subscriber, so sharing never changes a byte.
    pub fn render_shared(
        &self,
        shared: &SharedCopies,
        config: &Config,
        digest_config: &DigestConfig,
        digest: &DigestContent<'_>,
        subscriber: &Subscriber,
        links: &Links,
    ) -> Result<Option<Personalised>, RenderError> {
        let render = |subscriber: &Subscriber, links: &Links| {
            self.render(config, digest_config, digest, subscriber, links)
        };
        let own = |subscriber: &Subscriber, links: &Links| {
            Ok(render(subscriber, links)?.map(Personalised::Own))
        };
        let personal = Personal::of(subscriber, links);
        if !personal.is_plain() {
            return own(subscriber, links);
        }
        let audience = self.audience(digest, subscriber, &config.tracks);
        let mut copies = shared.copies.lock().unwrap_or_else(|e| e.into_inner());
        let copy = match copies.get(&audience) {
            Some(copy) => copy.clone(),
            None => {
                // The first of an audience renders while holding the lock, so
                // the others wait for its copy instead of rendering their own.
                let number = copies.len();
                let copy = match render(subscriber, links)? {
                    None => Copy::Nothing,
                    Some(direct) => shareable(&direct, &personal, number, || {
                        let (subscriber, links) = Personal::placeholders(subscriber, links);
                        render(&subscriber, &links)
                    })?,
                };
                copies.insert(audience, copy.clone());
                copy
            }
        };
        drop(copies);
        match copy {
            Copy::Nothing => Ok(None),
            Copy::Shared(audience, template) => Ok(Some(Personalised::Shared(SharedCopy {
                audience,
                template,
                values: personal.values(),
            }))),
            Copy::PerSubscriber => own(subscriber, links),
        }
    }

    /// Who gets the same copy as `subscriber` but for address and links.
    fn audience(
        &self,
        digest: &DigestContent<'_>,
        subscriber: &Subscriber,
        tracks: &[Track],
    ) -> Audience {
        let sections = digest
            .sections_for(subscriber, tracks)
            .iter()
            .map(|section| {
                let shorts = section.shorts.iter().map(|s| s.slug.clone()).collect();
                (section.track.slug.clone(), shorts)
            })
            .collect();
        let choice = self.shows.choice.then(|| {
            let mut tracks = subscriber.tracks.clone();
            tracks.sort_unstable();
            let mut tags = subscriber.tags.clone();
            tags.sort_unstable();
            (tracks, tags)
        });
        Audience {
            copy: (digest.id, digest.archived, digest.shorts.len()),
            sections,
            choice,
            name: self.shows.name.then(|| subscriber.name.clone()),
        }
    }

    fn render_one(&self, template: &str, context: &Context) -> Result<String, RenderError> {
        self.tera
            .render(template, context)
            .map_err(|e| RenderError::Template {
                template: template.to_string(),
                message: tera_message(&e),
            })
    }
}

/// The shared copy of an audience whose first member got `direct`: the copy
/// rendered with placeholders if filling them in gives `direct` exactly, else
/// a note that this audience is rendered per subscriber.
fn shareable(
    direct: &RenderedDigest,
    personal: &Personal<'_>,
    number: usize,
    with_placeholders: impl FnOnce() -> Result<Option<RenderedDigest>, RenderError>,
) -> Result<Copy, RenderError> {
    Ok(match with_placeholders()? {
        Some(template) if fill_copy(&template, &personal.values()) == *direct => {
            Copy::Shared(number, Arc::new(template))
        }
        _ => {
            tracing::debug!(
                "the digest templates personalise more than address and links; rendering each copy"
            );
            Copy::PerSubscriber
        }
    })
}

/// Copies rendered once per audience, for [`DigestTemplates::render_shared`];
/// one per digest send.
#[derive(Default)]
pub struct SharedCopies {
    copies: std::sync::Mutex<std::collections::HashMap<Audience, Copy>>,
}

/// Subscribers who get the same digest but for their address and links:
/// the same shorts in the same sections, and the same of whatever else the
/// templates show.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Audience {
    /// Which copy of which digest: the ledger's number, whether it is the
    /// issue, and how many shorts it carries. One run sends several digests
    /// (one per cadence, and an unfinished one first), whose copies may
    /// hold the same shorts under another number and subject; a window of
    /// a digest is a tail of its shorts, so its length tells it apart.
    copy: (i64, bool, usize),
    /// Each of their [`sections`](crate::model::sections): the track's slug
    /// and its shorts' slugs. The shorts, not only the tracks: two readers
    /// of one track through different tags get different shorts there.
    sections: Vec<(String, Vec<String>)>,
    /// Their choice of tracks and of tags, each sorted, where the templates
    /// may show it.
    choice: Option<(Vec<String>, Vec<String>)>,
    /// Their name, where the templates may show it.
    name: Option<String>,
}

#[derive(Clone)]
enum Copy {
    /// Nothing new in what they follow.
    Nothing,
    /// Rendered with placeholders for the address and links; numbered in
    /// the order the audiences were met.
    Shared(usize, Arc<RenderedDigest>),
    /// The templates use the personal values in a way placeholders cannot stand for.
    PerSubscriber,
}

/// One subscriber's copy, as [`DigestTemplates::render_shared`] gives it.
#[derive(Debug, Clone)]
pub enum Personalised {
    /// Rendered for this subscriber alone.
    Own(RenderedDigest),
    /// Their audience's copy, and what goes in its placeholders for them.
    Shared(SharedCopy),
}

impl Personalised {
    /// The copy as the subscriber reads it.
    pub fn into_rendered(self) -> RenderedDigest {
        match self {
            Personalised::Own(rendered) => rendered,
            Personalised::Shared(copy) => fill_copy(&copy.template, &copy.values()),
        }
    }
}

/// An audience's copy for one of its subscribers.
#[derive(Debug, Clone)]
pub struct SharedCopy {
    /// The same number for the same `template` within one send.
    pub audience: usize,
    /// The copy with a placeholder where each personal value goes.
    pub template: Arc<RenderedDigest>,
    values: [(&'static str, String); 3],
}

impl SharedCopy {
    /// Each placeholder and this subscriber's value for it.
    pub fn values(&self) -> [(&'static str, &str); 3] {
        self.values
            .each_ref()
            .map(|(at, value)| (*at, value.as_str()))
    }

    /// `text` (a part of the template) with this subscriber's values in place.
    pub fn fill(&self, text: &str) -> String {
        fill(text, &self.values())
    }
}

/// What differs between two copies for the same audience.
struct Personal<'a> {
    email: &'a str,
    unsubscribe: &'a str,
    preferences: &'a str,
}

impl<'a> Personal<'a> {
    // Letters and digits only, so escaping and CSS inlining leave them as they are.
    const EMAIL: &'static str = "shortsPlaceholderEmail7Q2";
    const UNSUBSCRIBE: &'static str = "shortsPlaceholderUnsubscribe7Q2";
    const PREFERENCES: &'static str = "shortsPlaceholderPreferences7Q2";
    /// Every placeholder, for finding where a copy is personal.
    const PLACEHOLDERS: [&'static str; 3] = [Self::EMAIL, Self::UNSUBSCRIBE, Self::PREFERENCES];

    fn of(subscriber: &'a Subscriber, links: &'a Links) -> Self {
        Personal {
            email: &subscriber.email,
            unsubscribe: &links.unsubscribe,
            preferences: &links.preferences,
        }
    }

    fn placeholders(subscriber: &Subscriber, links: &Links) -> (Subscriber, Links) {
        (
            Subscriber {
                email: Self::EMAIL.to_string(),
                ..subscriber.clone()
            },
            Links {
                unsubscribe: Self::UNSUBSCRIBE.to_string(),
                preferences: Self::PREFERENCES.to_string(),
                archive: links.archive.clone(),
            },
        )
    }

    /// Values that read the same escaped for HTML text, HTML attributes and
    /// plain text, so one substitution serves all three.
    fn is_plain(&self) -> bool {
        let plain = |value: &str| {
            value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "@.-_+:/?=%~".contains(c))
        };
        plain(self.email) && plain(self.unsubscribe) && plain(self.preferences)
    }

    fn values(&self) -> [(&'static str, String); 3] {
        [
            (Self::EMAIL, self.email.to_string()),
            (Self::UNSUBSCRIBE, self.unsubscribe.to_string()),
            (Self::PREFERENCES, self.preferences.to_string()),
        ]
    }
}

/// Whether `text` (a part of a shared copy) holds a placeholder.
pub fn is_personal(text: &str) -> bool {
    Personal::PLACEHOLDERS.iter().any(|at| text.contains(at))
}

/// `text` with each placeholder replaced by its value.
fn fill<S: AsRef<str>>(text: &str, values: &[(&'static str, S)]) -> String {
    values.iter().fold(text.to_string(), |text, (at, value)| {
        text.replace(at, value.as_ref())
    })
}

fn fill_copy<S: AsRef<str>>(
    template: &RenderedDigest,
    values: &[(&'static str, S)],
) -> RenderedDigest {
    RenderedDigest {
        subject: fill(&template.subject, values),
        html: fill(&template.html, values),
        text: fill(&template.text, values),
        count: template.count,
    }
}

/// Whether `template` may show the subscriber's name: any use of
/// `subscriber` other than the address and the choice of tracks and tags counts.
fn may_show_name(template: &str) -> bool {
    uses_subscriber_beyond(
        template,
        &[".email", ".all_tracks", ".track_titles", ".tags"],
    )
}

/// Whether `template` may show the subscriber's choice of tracks and tags:
/// any use of `subscriber` other than the address and the name counts.
fn may_show_choice(template: &str) -> bool {
    uses_subscriber_beyond(template, &[".email", ".name"])
}

/// Whether `template` uses `subscriber` other than through the `safe` fields.
fn uses_subscriber_beyond(template: &str, safe: &[&str]) -> bool {
    template.match_indices("subscriber").any(|(at, word)| {
        let rest = &template[at + word.len()..];
        !safe.iter().any(|field| {
            rest.strip_prefix(field)
                .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        })
    })
}

/// Inlines `<style>` rules into `style` attributes for clients that strip
/// `<style>`, keeping the media queries (dark mode, narrow screens) for those
/// that honour them. Never fetches anything.
pub(crate) fn inline_css(html: &str) -> Result<String, RenderError> {
    css_inline::CSSInliner::options()
        .keep_style_tags(false)
        .keep_at_rules(true)
        .load_remote_stylesheets(false)
        .build()
        .inline(html)
        .map_err(|e| RenderError::Css(e.to_string()))
}

/// Collapses the blank-line runs template tags leave behind.
pub(crate) fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim_start_matches('\n').to_string()
}

/// The first visible line: what is inside, so inbox previews show it.
fn preheader(sections: &[SectionView<'_>], count: usize) -> String {
    let titles: Vec<&str> = sections
        .iter()
        .flat_map(|s| s.shorts.iter().map(|e| e.title))
        .take(2)
        .collect();
    let tracks: Vec<&str> = sections.iter().map(|s| s.track.title).collect();
    let more = count.saturating_sub(titles.len());
    let mut line = format!("New in {}: {}", join_words(&tracks), titles.join("; "));
    if more > 0 {
        line.push_str(&format!(" and {more} more."));
    } else {
        line.push('.');
    }
    line
}

#[derive(Serialize)]
struct DigestView<'a> {
    number: i64,
    count: usize,
    total: usize,
    date: String,
    period_start: String,
    period_end: String,
    /// "Jun 1 – 8, 2026": the period, saying the year once.
    period: String,
    /// Its page in the web archive ("view in your browser"); empty for a
    /// copy that is not archived (another cadence's, or a reader's own window).
    url: String,
    /// Its cadence's label ("Daily"); empty for the default cadence.
    cadence: &'a str,
}

impl<'a> DigestView<'a> {
    /// The digest for a copy that carries `count` of its shorts.
    fn new(digest: &DigestContent<'_>, count: usize, config: &'a Config) -> Self {
        let tz = config.site.timezone;
        let cadence = config
            .digest
            .as_ref()
            .map(|d| d.cadence_of(&digest.cadence))
            .filter(|c| !c.is_default());
        DigestView {
            cadence: cadence.map_or("", |c| c.label.as_str()),
            number: digest.number,
            count,
            total: digest.shorts.len(),
            date: display_date(digest.slot, tz),
            period_start: display_date(digest.period_start, tz),
            period_end: display_date(digest.slot, tz),
            period: period_text(digest.period_start, digest.slot, tz),
            url: match (cadence, digest.archived) {
                (None, true) => config.site.url(&crate::paths::digest(digest.number)),
                _ => String::new(),
            },
        }
    }
}

/// "Jun 1 – 8, 2026", "May 29 – Jun 5, 2026", "Dec 29, 2025 – Jan 5, 2026":
/// each part said once.
pub fn period_text(start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz) -> String {
    use chrono::Datelike as _;
    let (start, end) = (start.with_timezone(&tz), end.with_timezone(&tz));
    if start.year() != end.year() {
        return format!(
            "{} – {}",
            start.format("%b %-d, %Y"),
            end.format("%b %-d, %Y")
        );
    }
    if start.month() != end.month() {
        return format!("{} – {}", start.format("%b %-d"), end.format("%b %-d, %Y"));
    }
    format!("{} – {}", start.format("%b %-d"), end.format("%-d, %Y"))
}

/// What templates see of a subscriber.
#[derive(Serialize)]
pub(crate) struct SubscriberView<'a> {
    email: &'a str,
    name: &'a str,
    /// Follows everything: no track or tag chosen, or every track.
    all_tracks: bool,
    track_titles: Vec<&'a str>,
    /// The tags followed besides the tracks, by name.
    tags: Vec<&'a str>,
}

impl<'a> SubscriberView<'a> {
    /// `shorts` name the followed tags (only slugs are stored).
    pub(crate) fn new(
        subscriber: &'a Subscriber,
        tracks: &'a [Track],
        shorts: &[&'a Short],
    ) -> Self {
        SubscriberView {
            email: &subscriber.email,
            name: &subscriber.name,
            all_tracks: subscriber.follows_everything(),
            track_titles: tracks
                .iter()
                .filter(|t| subscriber.tracks.contains(&t.slug))
                .map(|t| t.title.as_str())
                .collect(),
            tags: subscriber
                .tags
                .iter()
                .map(|slug| tag_name(slug, shorts))
                .collect(),
        }
    }
}

/// A followed tag's name as the author wrote it on a short of this digest;
/// the slug where no short here carries it (only slugs are stored).
fn tag_name<'a>(slug: &'a str, shorts: &[&'a Short]) -> &'a str {
    shorts
        .iter()
        .flat_map(|short| &short.tags)
        .find(|tag| tag.slug == slug)
        .map_or(slug, |tag| tag.name.as_str())
}

#[derive(Serialize)]
struct SectionView<'a> {
    track: TrackView<'a>,
    shorts: Vec<EntryView<'a>>,
}

#[derive(Serialize)]
struct EntryView<'a> {
    title: &'a str,
    url: &'a str,
    summary: &'a str,
    date: String,
    reading_minutes: u32,
    tags: Vec<TagView<'a>>,
}

#[derive(Serialize)]
struct TagView<'a> {
    name: &'a str,
    url: String,
}

/// The sections as the templates see them.
fn section_views<'a>(sections: &[Section<'a>], config: &Config, tz: Tz) -> Vec<SectionView<'a>> {
    sections
        .iter()
        .map(|section| SectionView {
            track: TrackView::new(section.track, config),
            shorts: section
                .shorts
                .iter()
                .map(|short| EntryView::new(short, config, tz))
                .collect(),
        })
        .collect()
}

impl<'a> EntryView<'a> {
    fn new(short: &'a Short, config: &Config, tz: Tz) -> Self {
        EntryView {
            title: &short.title,
            url: &short.permalink,
            summary: &short.summary,
            date: display_date(short.date.with_timezone(&Utc), tz),
            reading_minutes: short.reading_minutes,
            tags: short
                .tags
                .iter()
                .map(|t| TagView {
                    name: &t.name,
                    url: config.site.url(&crate::paths::tag(&t.slug)),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_says_each_part_once() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().to_utc();
        let period = |a, b| super::period_text(at(a), at(b), tz);
        assert_eq!(
            period("2026-06-01T08:00:00+02:00", "2026-06-08T08:00:00+02:00"),
            "Jun 1 – 8, 2026"
        );
        assert_eq!(
            period("2026-05-29T08:00:00+02:00", "2026-06-05T08:00:00+02:00"),
            "May 29 – Jun 5, 2026"
        );
        assert_eq!(
            period("2025-12-29T08:00:00+01:00", "2026-01-05T08:00:00+01:00"),
            "Dec 29, 2025 – Jan 5, 2026"
        );
        // The site's day, not UTC's: 00:30 in Berlin is the previous day in UTC.
        assert_eq!(
            period("2026-06-01T00:30:00+02:00", "2026-06-08T00:30:00+02:00"),
            "Jun 1 – 8, 2026"
        );
    }

    #[test]
    fn a_name_is_shown_by_any_use_of_subscriber_but_address_and_tracks() {
        assert!(!may_show_name(
            "{{ subscriber.email }} {{ subscriber.all_tracks }}"
        ));
        assert!(!may_show_name(
            "{{ subscriber.track_titles | join(sep=\", \") }}"
        ));
        assert!(may_show_name("Hi {{ subscriber.name }}"));
        assert!(may_show_name("{{ subscriber | json_encode }}"));
        assert!(may_show_name("{{ subscriber.emails }}"));
    }

    #[test]
    fn the_track_choice_is_shown_by_any_use_of_subscriber_but_address_and_name() {
        assert!(!may_show_choice(
            "{{ subscriber.email }} {{ subscriber.name }}"
        ));
        assert!(may_show_choice("{{ subscriber.all_tracks }}"));
        assert!(may_show_choice("{{ subscriber.track_titles | join }}"));
        assert!(may_show_choice("{{ subscriber | json_encode }}"));
        assert!(may_show_choice("{{ subscriber.names }}"));
    }

    const CONFIG: &str = "[site]\ntitle = \"T\"\ndescription = \"D\"\nbase_url = \"https://example.com/\"\n\
        author = { name = \"A\" }\n[[tracks]]\nslug = \"llm\"\ntitle = \"LLMs\"\n\
        [[tracks]]\nslug = \"rag\"\ntitle = \"Retrieval\"\n\
        [digest]\nschedule = \"0 8 * * MON\"\nfrom = \"Digest <digest@example.com>\"\npostal_address = \"1 Test Street\"\n";

    fn tagged(slug: &str, track: &str, tags: &[&str]) -> Short {
        let date = DateTime::parse_from_rfc3339("2026-06-03T08:00:00Z").expect("a test date");
        let mut short = Short::sample(slug, track, date);
        short.tags = tags
            .iter()
            .map(|t| crate::model::Tag {
                slug: t.to_string(),
                name: t.to_uppercase(),
            })
            .collect();
        short
    }

    fn reader(id: i64, tracks: &[&str], tags: &[&str]) -> Subscriber {
        Subscriber {
            id,
            email: format!("r{id}@example.com"),
            tracks: tracks.iter().map(|t| t.to_string()).collect(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Subscriber::sample()
        }
    }

    /// The test site (the built-in templates: its folder does not exist) and
    /// three shorts: two in llm with different tags, one untagged in rag.
    fn fixture() -> (Config, DigestTemplates, [Short; 3]) {
        let config = Config::parse(
            CONFIG,
            std::path::Path::new("/nonexistent/shorts/config.toml"),
        )
        .expect("the test config is valid");
        let templates = DigestTemplates::load(&config).expect("the built-in templates load");
        let shorts = [
            tagged("gqa", "llm", &["kv-cache"]),
            tagged("moe", "llm", &["routing"]),
            tagged("bm25", "rag", &[]),
        ];
        (config, templates, shorts)
    }

    fn content(shorts: &[Short]) -> DigestContent<'_> {
        let slot = DateTime::parse_from_rfc3339("2026-06-08T06:00:00Z")
            .expect("a test date")
            .to_utc();
        DigestContent {
            id: 1,
            number: 1,
            cadence: String::new(),
            archived: true,
            period_start: slot - chrono::Duration::weeks(1),
            slot,
            shorts: shorts.iter().collect(),
            note: None,
        }
    }

    fn links() -> Links {
        Links {
            unsubscribe: "https://example.com/unsubscribe?token=u".into(),
            preferences: "https://example.com/preferences?token=p".into(),
            archive: "https://example.com/digests/".into(),
        }
    }

    /// One run sends a digest per cadence, and may send the same shorts
    /// in two of them: a copy is never shared across digests, nor between
    /// the issue and a reader's window of it.
    #[test]
    fn the_same_shorts_in_another_digest_are_another_copy() {
        let (config, templates, shorts) = fixture();
        let weekly = content(&shorts);
        let daily = DigestContent {
            id: 2,
            number: 7,
            cadence: "daily".into(),
            ..content(&shorts)
        };
        let window = DigestContent {
            archived: false,
            ..content(&shorts)
        };
        let r = reader(1, &[], &[]);
        let key = |c: &DigestContent<'_>| templates.audience(c, &r, &config.tracks);
        assert_eq!(key(&weekly).sections, key(&daily).sections);
        assert_ne!(key(&weekly), key(&daily));
        assert_ne!(key(&weekly), key(&window));
        let digest = config.digest.as_ref().expect("a [digest] section");
        let shared = SharedCopies::default();
        let subject = |c: &DigestContent<'_>| {
            let copy = templates.render_shared(&shared, &config, digest, c, &r, &links());
            copy.unwrap().expect("a copy").into_rendered().subject
        };
        let (first, second) = (subject(&weekly), subject(&daily));
        assert!(
            first.contains("#1") && second.contains("#7"),
            "{first} / {second}"
        );
    }

    #[test]
    fn readers_of_different_shorts_never_share_an_audience() {
        let (config, templates, shorts) = fixture();
        let content = content(&shorts);
        let key = |r: &Subscriber| templates.audience(&content, r, &config.tracks);
        // Both have one LLMs section, with different shorts in it.
        let (kv, routing) = (reader(1, &[], &["kv-cache"]), reader(2, &[], &["routing"]));
        assert_eq!(
            key(&kv).sections,
            [("llm".to_string(), vec!["gqa".to_string()])]
        );
        assert_ne!(key(&kv), key(&routing));
        assert_ne!(key(&kv), key(&reader(3, &["llm"], &[])));
        assert_eq!(key(&kv), key(&reader(4, &[], &["kv-cache"])), "alike");
        // The built-in templates show the choice: following llm by track and
        // by both its tags gives the same shorts but not the same footer.
        let by_tags = reader(5, &[], &["kv-cache", "routing"]);
        assert_eq!(
            key(&by_tags).sections,
            key(&reader(6, &["llm"], &[])).sections
        );
        assert_ne!(key(&by_tags), key(&reader(6, &["llm"], &[])));

        let digest = config.digest.as_ref().expect("a [digest] section");
        let shared = SharedCopies::default();
        let readers = [kv, routing, by_tags, reader(7, &["rag"], &["kv-cache"])];
        for r in readers.iter().chain(&readers) {
            let own = templates
                .render(&config, digest, &content, r, &links())
                .unwrap();
            let copy = templates
                .render_shared(&shared, &config, digest, &content, r, &links())
                .unwrap();
            assert_eq!(copy.map(Personalised::into_rendered), own, "{r:?}");
        }
    }

    #[test]
    fn a_copy_holds_the_shorts_followed_and_says_which_tags() {
        let (config, templates, shorts) = fixture();
        let content = content(&shorts);
        let digest = config.digest.as_ref().expect("a [digest] section");
        let render = |r: &Subscriber| {
            templates
                .render(&config, digest, &content, r, &links())
                .unwrap()
        };
        let only_kv = render(&reader(8, &[], &["kv-cache"])).expect("gqa").text;
        assert!(
            only_kv.contains("Short gqa") && !only_kv.contains("Short moe"),
            "{only_kv}"
        );
        assert!(
            only_kv.contains("subscribed to tags: KV-CACHE of T"),
            "{only_kv}"
        );
        let both = render(&reader(9, &["rag"], &["kv-cache"]))
            .expect("gqa and bm25")
            .text;
        assert!(
            both.contains("subscribed to Retrieval and tags: KV-CACHE of T"),
            "{both}"
        );
        assert!(both.contains("or with your tags"), "{both}");
        let everything = render(&reader(10, &[], &[])).expect("all three").text;
        assert!(
            everything.contains("subscribed to every track of T") && !everything.contains("tags"),
            "{everything}"
        );
        assert!(
            render(&reader(11, &[], &["none"])).is_none(),
            "a follower of nothing in this digest gets nothing"
        );
    }

    #[test]
    fn tidy_text_keeps_one_blank_line() {
        assert_eq!(tidy_text("\n\na  \n\n\n\nb\n\n"), "a\n\nb\n\n");
    }

    #[test]
    fn words_join_like_prose() {
        assert_eq!(join_words(&["LLMs"]), "LLMs");
        assert_eq!(join_words(&["A", "B", "C"]), "A, B and C");
    }
}
