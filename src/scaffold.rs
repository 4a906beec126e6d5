//! Files a writer starts from: a whole new site (`shorts init`) and a new
//! short (`shorts new`). Owns their text and the promise that neither ever
//! writes over a file that exists: every path is checked before the first
//! is written, and each is created with `create_new`. Knows nothing of
//! building; what it writes must pass `shorts check` as it is.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;

use crate::config::Config;
use crate::content::short::{MAX_TAG_CHARS, MAX_TAGS};
use crate::diagnostics::unknown_message;
use crate::model::{MAX_SLUG_BYTES, slugify};

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{}", refusal(.0))]
    Exists(Vec<PathBuf>),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot write {}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

fn refusal(paths: &[PathBuf]) -> String {
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!(
        "{} already exist{}; nothing was written (shorts never writes over a file)",
        list.join(", "),
        if paths.len() == 1 { "s" } else { "" }
    )
}

/// What `shorts init` puts in a new site, beyond its defaults.
#[derive(Debug, Clone)]
pub struct SiteSettings {
    pub title: String,
    pub base_url: String,
    pub author: String,
    pub timezone: Tz,
}

/// The writer's time zone as this machine knows it (`TZ`, then
/// `/etc/timezone`, then the `/etc/localtime` link), or UTC.
pub fn local_timezone() -> Tz {
    let from_env = std::env::var("TZ").ok();
    let from_file = || std::fs::read_to_string("/etc/timezone").ok();
    let from_link = || {
        let target = std::fs::read_link("/etc/localtime").ok()?;
        let text = target.to_str()?;
        Some(text.split_once("zoneinfo/")?.1.to_string())
    };
    [from_env, from_file(), from_link()]
        .into_iter()
        .flatten()
        .find_map(|name| name.trim().trim_start_matches(':').parse().ok())
        .unwrap_or(Tz::UTC)
}

/// Writes a new site into `dir` (made if missing) dated `now`: the files
/// written, or why none was.
pub fn init(
    dir: &Path,
    settings: &SiteSettings,
    now: DateTime<Utc>,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    if dir.exists() && !dir.is_dir() {
        return Err(invalid(format!(
            "{} is a file; shorts init makes a site in a folder",
            dir.display()
        )));
    }
    let files = [
        ("config.toml", site_config(settings)),
        (
            "content/shorts/hello-shorts.md",
            example_short(settings, now),
        ),
        ("templates/README.md", TEMPLATES_README.to_string()),
        (".gitignore", GITIGNORE.to_string()),
    ];
    let files: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|(name, text)| (dir.join(name), text))
        .collect();
    write_all_new(&files)?;
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

/// What `shorts new` is asked for.
#[derive(Debug, Clone)]
pub struct NewShort {
    pub title: String,
    pub track: Option<String>,
    pub tags: Vec<String>,
    pub summary: Option<String>,
    pub slug: Option<String>,
}

/// Writes a draft short into the site's shorts folder, dated `now` in the
/// site's time zone: its path, or why nothing was written.
pub fn new_short(
    config: &Config,
    short: &NewShort,
    now: DateTime<Utc>,
) -> Result<PathBuf, ScaffoldError> {
    let title = short.title.trim();
    if title.is_empty() || title.chars().any(char::is_control) {
        return Err(invalid(
            "the title must be one line of text, like \"Why the KV cache grows\"",
        ));
    }
    let track = track_for(config, short.track.as_deref())?;
    let slug = slug_for(title, short.slug.as_deref())?;
    let tags = tags_for(&short.tags)?;
    let path = config.shorts_dir().join(format!("{slug}.md"));
    let text = short_text(config, title, &track, &tags, short, now);
    write_all_new(&[(path.clone(), text)])?;
    Ok(path)
}

fn invalid(message: impl Into<String>) -> ScaffoldError {
    ScaffoldError::Invalid(message.into())
}

/// The track asked for, or the site's only one; an unknown track is named
/// with the defined ones.
fn track_for(config: &Config, asked: Option<&str>) -> Result<String, ScaffoldError> {
    let defined: Vec<&str> = config.tracks.iter().map(|t| t.slug.as_str()).collect();
    match (asked, defined.as_slice()) {
        (Some(track), _) if defined.contains(&track) => Ok(track.to_string()),
        (Some(track), _) => Err(invalid(format!(
            "{} (the [[tracks]] of {})",
            unknown_message("track", track, &defined),
            config.path.display()
        ))),
        (None, [only]) => Ok((*only).to_string()),
        (None, _) => Err(invalid(format!(
            "say which track with --track; this site has {}",
            defined.join(", ")
        ))),
    }
}

fn slug_for(title: &str, asked: Option<&str>) -> Result<String, ScaffoldError> {
    let slug = slugify(asked.unwrap_or(title));
    match asked {
        Some(asked) if slug != asked => Err(invalid(format!(
            "--slug {asked:?} is not a slug; expected lower-case letters, digits and \
             single hyphens, like {slug:?}"
        ))),
        None if slug.is_empty() => Err(invalid(
            "cannot make a slug from the title; give one with --slug",
        )),
        _ if slug.len() > MAX_SLUG_BYTES => Err(invalid(format!(
            "the slug would be {} bytes long; at most {MAX_SLUG_BYTES} (it names a folder); \
             give a shorter one with --slug",
            slug.len()
        ))),
        _ => Ok(slug),
    }
}

/// The tags asked for, trimmed, without empty ones (`a,,b`), or what
/// `shorts check` would refuse in them.
fn tags_for(asked: &[String]) -> Result<Vec<String>, ScaffoldError> {
    let tags: Vec<String> = asked
        .iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!(
            "{} tags; a short has at most {MAX_TAGS}",
            tags.len()
        )));
    }
    for tag in &tags {
        if slugify(tag).is_empty() {
            return Err(invalid(format!("tag {tag:?} has no letters or digits")));
        }
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(invalid(format!(
                "tag {tag:?} is longer than {MAX_TAG_CHARS} characters"
            )));
        }
    }
    Ok(tags)
}

/// Every file is checked first, so a refusal writes nothing; then each is
/// created only if it still does not exist.
fn write_all_new(files: &[(PathBuf, String)]) -> Result<(), ScaffoldError> {
    let existing: Vec<PathBuf> = files
        .iter()
        .filter(|(path, _)| path.symlink_metadata().is_ok())
        .map(|(path, _)| path.clone())
        .collect();
    if !existing.is_empty() {
        return Err(ScaffoldError::Exists(existing));
    }
    for (path, text) in files {
        write_new(path, text)?;
    }
    Ok(())
}

fn write_new(path: &Path, text: &str) -> Result<(), ScaffoldError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| ScaffoldError::Io { path, error }
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let mut file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            // Made between the check and now: still never written over.
            std::io::ErrorKind::AlreadyExists => ScaffoldError::Exists(vec![path.to_path_buf()]),
            _ => io(path)(e),
        })?;
    file.write_all(text.as_bytes()).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// A TOML string literal, escaped as TOML needs.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn local_date(now: DateTime<Utc>, zone: Tz) -> String {
    now.with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn short_text(
    config: &Config,
    title: &str,
    track: &str,
    tags: &[String],
    short: &NewShort,
    now: DateTime<Utc>,
) -> String {
    let tags: Vec<String> = tags.iter().map(|t| toml_string(t)).collect();
    let summary = short.summary.as_deref().unwrap_or(
        "One or two sentences: the idea itself, shown in feeds, on cards and in the digest.",
    );
    format!(
        "+++\ntitle = {title}\ndate = {date}\nsummary = {summary}\ntrack = {track}\n\
         tags = [{tags}]\ndraft = true   # remove this line to publish\n+++\n\n{BODY}",
        title = toml_string(title),
        date = local_date(now, config.site.timezone),
        summary = toml_string(summary.trim()),
        track = toml_string(track),
        tags = tags.join(", "),
    )
}

const BODY: &str = "\
One idea, told in one or two minutes of reading, in Markdown: **bold**,
`code`, [links](https://example.org/), lists, tables and fenced code blocks.

While `draft = true` stays in the front matter, this short is left out of
every page, feed and digest, and `shorts check` still checks it. Delete that
line, and set `date` to the moment it should count as published, to publish.
";

/// The text of `template` with each `{name}` replaced; `format!` would
/// need every brace of the TOML and Tera inside doubled.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_string(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), value)
        })
}

fn site_config(settings: &SiteSettings) -> String {
    fill(
        include_str!("scaffold/config.toml"),
        &[
            ("title", &toml_string(&settings.title)),
            ("base_url", &toml_string(&settings.base_url)),
            ("author", &toml_string(&settings.author)),
            ("timezone", &toml_string(settings.timezone.name())),
            ("from", &toml_string(&digest_from(&settings.author))),
        ],
    )
}

/// The digest's sender: the author at a placeholder address, written by
/// lettre (which reads it back), the name quoted where RFC 5322 needs it
/// (`"Doe, Jane" <…>`).
fn digest_from(author: &str) -> String {
    let address =
        lettre::Address::new("digest", "example.org").expect("a constant address is valid");
    lettre::message::Mailbox::new(Some(author.to_string()), address).to_string()
}

fn example_short(settings: &SiteSettings, now: DateTime<Utc>) -> String {
    fill(
        include_str!("scaffold/hello-shorts.md"),
        &[("date", &local_date(now, settings.timezone))],
    )
}

const TEMPLATES_README: &str = include_str!("scaffold/templates-README.md");

const GITIGNORE: &str = "\
# What shorts writes: the built site, its earlier generations, previews,
# the outbox, and data/ (subscribers, the delivery ledger and the secret
# key that signs their links: back it up, never commit it).
/public
/.public.generations/
/.public.next
/preview
/outbox
/data
";
