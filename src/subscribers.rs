//! Subscribers at the boundary: validating an address, a name, a track list
//! and a tag list typed on the command line or read from CSV
//! (`email,name,tracks,tags,status,cadence`), and writing the same CSV back out.
//! Storage is `store`'s job.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::diagnostics::{Problem, Problems};
use crate::model::{SubscriberStatus, is_slug, slugify};
use crate::store::{NewSubscriber, Saved, Store, StoreError, Suppression};

/// One subscriber's fields as typed on the command line, read from CSV or
/// sent by a form, before validation; empty means not given.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fields<'a> {
    pub email: &'a str,
    pub name: &'a str,
    /// Track slugs, separated by commas, semicolons or spaces.
    pub tracks: &'a str,
    /// Tag slugs, likewise.
    pub tags: &'a str,
    /// Empty: active.
    pub status: &'a str,
    /// A cadence's name; `None` keeps an existing subscriber's, and empty
    /// means the default.
    pub cadence: Option<&'a str>,
}

/// Validates one subscriber's fields; the message says what is wrong.
/// `tracks` and `tags` both empty, or every track chosen, means everything.
pub fn validate(
    fields: &Fields<'_>,
    config: &Config,
    source: &str,
) -> Result<NewSubscriber, String> {
    let email = address(fields.email.trim())?;
    let name: String = fields.name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.chars().any(char::is_control) || name.len() > 200 {
        return Err(format!(
            "the name {name:?} has control characters or is longer than 200 bytes"
        ));
    }
    let mut tracks = track_slugs(fields.tracks, config)?;
    let mut tags = tag_slugs(fields.tags)?;
    // Every track holds every short, so the tags add nothing: stored as
    // "everything", which also takes in tracks added later.
    if tracks.len() == config.tracks.len() {
        tracks.clear();
        tags.clear();
    }
    let status = if fields.status.trim().is_empty() {
        SubscriberStatus::Active
    } else {
        SubscriberStatus::parse(fields.status).ok_or_else(|| {
            format!(
                "unknown status {:?}; expected active, pending, unsubscribed or bounced",
                fields.status
            )
        })?
    };
    Ok(NewSubscriber {
        email,
        name,
        tracks,
        tags,
        status,
        source: source.to_string(),
        consent_text: String::new(),
        cadence: fields
            .cadence
            .map(|name| cadence_key(name, config))
            .transpose()?,
    })
}

/// The stored key of the cadence named `name` ("" for the default, which
/// an empty name also means).
pub fn cadence_key(name: &str, config: &Config) -> Result<String, String> {
    let name = name.trim();
    let Some(digest) = &config.digest else {
        return match name {
            "" => Ok(String::new()),
            _ => Err(format!(
                "cadence {name:?}: the config has no [digest], so there is no cadence to choose"
            )),
        };
    };
    if name.is_empty() {
        return Ok(String::new());
    }
    digest
        .cadence_named(name)
        .map(|cadence| cadence.key.clone())
        .ok_or_else(|| {
            let known: Vec<&str> = digest.cadences.iter().map(|c| c.name.as_str()).collect();
            format!(
                "unknown cadence {name:?}; expected one of: {}",
                known.join(", ")
            )
        })
}

/// The name a subscriber's cadence key goes by: what `export` writes.
pub fn cadence_name<'c>(key: &str, config: &'c Config) -> &'c str {
    config
        .digest
        .as_ref()
        .map_or("", |digest| digest.cadence_of(key).name.as_str())
}

fn list_items(list: &str) -> impl Iterator<Item = &str> {
    list.split([',', ';', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The config's tracks named in `tracks`, once each, in config order (so
/// the same choice is always stored the same way).
fn track_slugs(tracks: &str, config: &Config) -> Result<Vec<String>, String> {
    let mut slugs: Vec<String> = Vec::new();
    for track in list_items(tracks) {
        if config.track(track).is_none() {
            let known: Vec<&str> = config.tracks.iter().map(|t| t.slug.as_str()).collect();
            return Err(format!(
                "unknown track {track:?}; expected some of: {}",
                known.join(", ")
            ));
        }
        if !slugs.iter().any(|s| s == track) {
            slugs.push(track.to_string());
        }
    }
    slugs.sort_by_key(|s| config.tracks.iter().position(|t| &t.slug == s));
    Ok(slugs)
}

/// The tag slugs in `tags`, sorted and once each. Any slug is taken, used
/// by a short or not: the author may tag shorts with it later, and the
/// command line must work without loading the site.
pub fn tag_slugs(tags: &str) -> Result<Vec<String>, String> {
    let mut slugs: Vec<String> = Vec::new();
    for tag in list_items(tags) {
        if !is_slug(tag) {
            let hint = match slugify(tag) {
                slug if slug.is_empty() => String::new(),
                slug => format!(" such as {slug:?}"),
            };
            return Err(format!(
                "{tag:?} is not a tag slug; expected lower-case letters, digits and single hyphens{hint}, as in the site's tag URLs"
            ));
        }
        slugs.push(tag.to_string());
    }
    slugs.sort_unstable();
    slugs.dedup();
    Ok(slugs)
}

/// An address every SMTP server can take, in one canonical form: an
/// international domain in its ASCII (punycode) form, lower-cased. A
/// non-ASCII local part needs SMTPUTF8, which many servers refuse, and a
/// quoted one cannot go in a message lettre builds: both are refused here,
/// with the reason, rather than failing at send time.
pub fn address(raw: &str) -> Result<String, String> {
    let not_an_address = || format!("{raw:?} is not an email address");
    if raw.chars().any(char::is_control) {
        return Err(not_an_address());
    }
    let (local, domain) = raw.rsplit_once('@').ok_or_else(not_an_address)?;
    if !local.is_ascii() {
        return Err(format!(
            "{raw:?}: non-ASCII before the @ needs SMTPUTF8, which many mail servers refuse; use the address's ASCII form"
        ));
    }
    if local.starts_with('"') {
        return Err(format!(
            "{raw:?}: quoted addresses are not supported; use an unquoted one"
        ));
    }
    if raw.contains(char::is_whitespace) {
        return Err(not_an_address());
    }
    let domain = idna::domain_to_ascii(domain)
        .map_err(|_| format!("{raw:?}: {domain:?} is not a valid domain name"))?;
    let address = format!("{local}@{domain}");
    let parsed: lettre::Address = address.parse().map_err(|_| not_an_address())?;
    // What lettre will put in the envelope must be exactly this address.
    lettre::address::Envelope::new(None, vec![parsed]).map_err(|_| not_an_address())?;
    Ok(address)
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Rows skipped because the address is suppressed, with why.
    pub suppressed: Vec<Suppression>,
    /// Bad rows, each with its line in the file; the good rows were imported.
    pub problems: Problems,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be read or its header is wrong; nothing was imported.
    #[error("{0}")]
    Invalid(Problem),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLUMNS: [&str; 6] = ["email", "name", "tracks", "tags", "status", "cadence"];

/// What `export` adds, and `import` accepts and ignores: why an address is
/// suppressed (the suppression list decides, not the file).
const SUPPRESSED_COLUMN: &str = "suppressed";

/// Rows commit a thousand at a time: one commit per row made a 100,000-row
/// file take minutes, one for the whole file would hold the write lock
/// against `serve`'s sign-ups for as long.
const ROWS_PER_COMMIT: usize = 1000;

/// Where each known column is in the file.
struct Columns {
    email: usize,
    name: Option<usize>,
    tracks: Option<usize>,
    tags: Option<usize>,
    status: Option<usize>,
    cadence: Option<usize>,
}

impl Columns {
    /// Reads the header line; every problem with it is on line 1.
    fn of(headers: &csv::StringRecord, path: &Path) -> Result<Columns, ImportError> {
        let expected = COLUMNS.join(",");
        let invalid = |message: String| ImportError::Invalid(Problem::at(path, 1, message));
        let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let email = column("email").ok_or_else(|| {
            invalid(format!(
                "the first line must be a header naming the columns, with at least `email` (expected {expected})"
            ))
        })?;
        if let Some(unknown) = headers.iter().find(|h| {
            !COLUMNS.iter().any(|c| h.eq_ignore_ascii_case(c))
                && !h.eq_ignore_ascii_case(SUPPRESSED_COLUMN)
        }) {
            return Err(invalid(format!(
                "unknown column {unknown:?}; expected {expected}"
            )));
        }
        Ok(Columns {
            email,
            name: column("name"),
            tracks: column("tracks"),
            tags: column("tags"),
            status: column("status"),
            cadence: column("cadence"),
        })
    }

    /// The row's fields, validated as one subscriber.
    fn validate(
        &self,
        record: &csv::StringRecord,
        config: &Config,
        source: &str,
    ) -> Result<NewSubscriber, String> {
        let field = |index: Option<usize>| restore(index.and_then(|i| record.get(i)).unwrap_or(""));
        let fields = Fields {
            email: field(Some(self.email)),
            name: field(self.name),
            tracks: field(self.tracks),
            tags: field(self.tags),
            status: field(self.status),
            // A file without the column keeps each subscriber's cadence.
            cadence: self.cadence.map(|i| restore(record.get(i).unwrap_or(""))),
        };
        validate(&fields, config, source)
    }
}

/// Imports a CSV file with a header naming some of `email,name,tracks,tags,status,cadence`
/// (`email` required). Importing the same file twice changes nothing.
pub fn import(
    store: &dyn Store,
    config: &Config,
    path: &Path,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    let unreadable = |e: csv::Error| {
        let line = e.position().map(|p| p.line() as usize);
        ImportError::Invalid(Problem::new(
            path,
            line,
            format!("cannot read this file: {e}"),
        ))
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(unreadable)?;
    let columns = Columns::of(reader.headers().map_err(unreadable)?, path)?;
    let source = format!(
        "import:{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    let mut report = ImportReport::default();
    let mut batch = store.batch()?;
    for (row, record) in reader.records().enumerate() {
        if row > 0 && row % ROWS_PER_COMMIT == 0 {
            batch.commit()?;
            batch = store.batch()?;
        }
        let line = match &record {
            Ok(record) => record.position(),
            Err(e) => e.position(),
        }
        .map(|p| p.line() as usize);
        let validated = record
            .map_err(|e| format!("unreadable row: {e}"))
            .and_then(|record| columns.validate(&record, config, &source));
        match validated {
            Ok(subscriber) => report.count(store.save_subscriber(&subscriber, now)?),
            Err(message) => report.problems.push(Problem::new(path, line, message)),
        }
    }
    batch.commit()?;
    Ok(report)
}

impl ImportReport {
    fn count(&mut self, saved: Saved) {
        match saved {
            Saved::Added => self.added += 1,
            Saved::Updated => self.updated += 1,
            Saved::Unchanged => self.unchanged += 1,
            Saved::Suppressed(why) => self.suppressed.push(why),
        }
    }
}

/// Writes every subscriber as CSV with a header, and every suppressed
/// address, saying why it is suppressed (`reason since date`).
pub fn export(
    store: &dyn Store,
    config: &Config,
    out: impl std::io::Write,
) -> Result<(), ImportError> {
    let mut writer = csv::Writer::from_writer(out);
    let csv_error = |e: csv::Error| ImportError::File {
        path: "<stdout>".into(),
        message: e.to_string(),
    };
    let mut header = COLUMNS.to_vec();
    header.push(SUPPRESSED_COLUMN);
    writer.write_record(header).map_err(csv_error)?;
    let mut suppressed: Vec<Suppression> = store.suppressions()?;
    for s in store.subscribers()? {
        let why = take_suppression(&mut suppressed, &s.email);
        writer
            .write_record([
                neutralise(&s.email).as_str(),
                &neutralise(&s.name),
                &neutralise(&s.tracks.join(",")),
                &neutralise(&s.tags.join(",")),
                s.status.as_str(),
                cadence_name(&s.cadence, config),
                &why,
            ])
            .map_err(csv_error)?;
    }
    // Removed subscribers stay suppressed: the file says so too.
    for gone in &suppressed {
        let why = describe_suppression(gone);
        writer
            .write_record([
                neutralise(&gone.email).as_str(),
                "",
                "",
                "",
                "unsubscribed",
                "",
                &why,
            ])
            .map_err(csv_error)?;
    }
    writer.flush().map_err(|e| csv_error(e.into()))?;
    Ok(())
}

/// Characters that make a spreadsheet read a cell as a formula (OWASP's
/// CSV injection list): an address can start with `=` or `+`, a name with anything.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell a spreadsheet will show as text: a leading `'` before a formula
/// character, as spreadsheet tools expect. `import` takes it off again.
fn neutralise(cell: &str) -> String {
    if cell.starts_with(FORMULA_STARTS) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// The cell `export` wrote, without the `'` that `neutralise` added.
fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

/// "complaint (reported as spam) since 2026-06-09", removed from `list`; empty if none.
fn take_suppression(list: &mut Vec<Suppression>, email: &str) -> String {
    match list
        .iter()
        .position(|s| s.email.eq_ignore_ascii_case(email))
    {
        Some(at) => describe_suppression(&list.remove(at)),
        None => String::new(),
    }
}

pub fn describe_suppression(s: &Suppression) -> String {
    format!("{} since {}", s.reason, s.at.format("%Y-%m-%d"))
}

#[cfg(test)]
mod tests {
    use super::{Config, address, neutralise, restore, validate};

    fn config() -> Config {
        let text = "[site]\ntitle = \"T\"\ndescription = \"D\"\nbase_url = \"https://example.com/\"\n\
                    timezone = \"Europe/Berlin\"\n[site.author]\nname = \"A\"\n\
                    [[tracks]]\nslug = \"llm\"\ntitle = \"L\"\n[[tracks]]\nslug = \"rag\"\ntitle = \"R\"\n";
        Config::parse(text, std::path::Path::new("/site/config.toml"))
            .expect("test config is valid")
    }

    /// (tracks, tags) as `validate` stores them.
    fn follows(tracks: &str, tags: &str) -> Result<(Vec<String>, Vec<String>), String> {
        let fields = super::Fields {
            email: "a@example.com",
            tracks,
            tags,
            ..Default::default()
        };
        validate(&fields, &config(), "test").map(|s| (s.tracks, s.tags))
    }

    #[test]
    fn tags_are_slugs_sorted_once_each_and_need_no_short() {
        assert_eq!(
            follows("rag", "rust; kv-cache,rust  gqa"),
            Ok((
                vec!["rag".to_string()],
                vec![
                    "gqa".to_string(),
                    "kv-cache".to_string(),
                    "rust".to_string()
                ]
            ))
        );
        assert_eq!(
            follows("", "no-short-has-this-yet"),
            Ok((vec![], vec!["no-short-has-this-yet".to_string()])),
            "tags alone, none of them used yet"
        );
        assert_eq!(
            follows("rag,llm", "rust"),
            Ok((vec![], vec![])),
            "every track chosen is everything, tags included"
        );
        assert_eq!(
            follows("", "ünïcode"),
            Ok((vec![], vec!["ünïcode".to_string()]))
        );
    }

    #[test]
    fn a_tag_that_is_not_a_slug_is_refused_naming_it_and_what_is_expected() {
        let refused = follows("", "rust,KV Cache").unwrap_err();
        assert!(refused.contains("\"KV\" is not a tag slug"), "{refused}");
        assert!(refused.contains("such as \"kv\""), "{refused}");
        assert!(refused.contains("lower-case letters, digits and single hyphens"));
        for bad in ["C++", "a--b", "-x", "#rust", "Rust", "a_b"] {
            let refused = follows("", bad).unwrap_err();
            assert!(
                refused.contains(&format!("{bad:?} is not a tag slug")),
                "{refused}"
            );
        }
        assert!(
            follows("", "=1+2")
                .unwrap_err()
                .contains("is not a tag slug")
        );
    }

    #[test]
    fn cells_a_spreadsheet_would_run_are_exported_as_text_and_imported_back() {
        for cell in [
            "=cmd|'/C calc'!A0@example.com",
            "+1@example.com",
            "-x",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            let out = neutralise(cell);
            assert!(out.starts_with('\''), "{out:?}");
            assert_eq!(restore(&out), cell);
        }
        assert_eq!(neutralise("ada@example.com"), "ada@example.com");
        assert_eq!(
            restore("'quoted name"),
            "'quoted name",
            "a name's own quote stays"
        );
    }

    #[test]
    fn addresses_are_ascii_and_canonical_or_refused_with_the_reason() {
        assert_eq!(address("Ada@Example.org").as_deref(), Ok("Ada@example.org"));
        assert_eq!(
            address("user@exämple.org").as_deref(),
            Ok("user@xn--exmple-cua.org")
        );
        assert!(
            address("josé@example.org")
                .unwrap_err()
                .contains("SMTPUTF8")
        );
        assert!(
            address("\"quoted name\"@example.org")
                .unwrap_err()
                .contains("quoted")
        );
        for bad in [
            "a@example.org\r\nBcc: x@evil.test",
            "a@example.org\nBcc: x@evil.test",
            "a b@example.org",
            "no-at-sign",
            "a@",
            "@example.org",
            "a@exa mple.org",
            "a@-bad-.example",
        ] {
            assert!(address(bad).is_err(), "{bad:?} accepted");
        }
    }
}
