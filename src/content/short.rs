//! Front-matter fields to a validated [`Short`]: which keys exist, which are
//! required, and what each value must look like. Every problem in a file is
//! reported, each at the line of the value it is about.

use std::path::Path;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use url::Url;

use super::frontmatter::{RawField, RawValue, Split};
use super::markdown::{self, Features, MathError};
use crate::config::Config;
use crate::diagnostics::{Problem, Problems, unknown_message};
use crate::model::{MAX_SLUG_BYTES, Short, Tag, is_slug, nfc, one_line, slugify};
use crate::paths;

const REQUIRED: [&str; 4] = ["title", "date", "summary", "track"];
const OPTIONAL: [&str; 7] = ["tags", "slug", "updated", "draft", "id", "aliases", "extra"];

/// More tags than this on one short is a mistake: each tag is a page and
/// three feeds, and a thousand took ten seconds to check.
pub const MAX_TAGS: usize = 20;
/// Earlier slugs of one short: each is a redirect page.
pub const MAX_ALIASES: usize = 20;
/// A tag is a word or a few.
pub const MAX_TAG_CHARS: usize = 60;

/// Words per minute for the reading time shown to readers.
const READING_SPEED: usize = 200;

/// Validates the fields of the short in `path`; `None` when anything was wrong,
/// with every problem pushed to `problems`.
pub fn validate(
    path: &Path,
    fields: &[RawField],
    split: &Split<'_>,
    config: &Config,
    problems: &mut Problems,
) -> Option<Short> {
    let before = problems.len();
    let mut check = Checker { path, problems };
    check.unknown_fields(fields);
    let field = |key: &str| fields.iter().find(|f| f.key == key);
    let title = check.required(field("title"), "title", Checker::line_text);
    let summary = check.required(field("summary"), "summary", Checker::line_text);
    let (date, updated) = check.dates(field("date"), field("updated"), config.site.timezone);
    let track = check.required(field("track"), "track", |c, f| c.track(f, config));
    let tags = field("tags").map_or_else(|| Some(Vec::new()), |f| check.tags(f));
    let draft = field("draft").map_or(Some(false), |f| check.bool(f));
    let slug = match field("slug") {
        Some(f) => check.slug(f),
        None => check.slug_from_file_name(),
    };
    let id = field("id").map_or(Some(None), |f| check.slug_like(f, "`id`").map(Some));
    let aliases =
        field("aliases").map_or_else(|| Some(Vec::new()), |f| check.aliases(f, slug.as_deref()));
    if split.body.trim().is_empty() {
        check.problem(
            split.body_line,
            "the body is empty; write the short in Markdown after the closing front-matter line",
        );
    }
    // Rendered even when the slug is wrong, so its formulas are checked
    // too; the page URL only matters when nothing was.
    let permalink = short_url(&config.site.base_url, slug.as_deref().unwrap_or_default());
    let body = markdown::to_html(split.body, &permalink, Features::of(config));
    check.formulas(&body.math_errors, split);
    if check.problems.len() > before {
        return None;
    }
    let slug = slug?;
    let id = id?;
    Some(Short {
        id: id.clone().unwrap_or_else(|| slug.clone()),
        id_is_declared: id.is_some(),
        aliases: aliases?,
        body_html: body.html,
        reading_minutes: reading_minutes(split.body),
        permalink: permalink.to_string(),
        source: path.to_path_buf(),
        slug,
        title: title?,
        summary: summary?,
        date: date?,
        updated,
        track: track?,
        tags: tags?,
        draft: draft?,
    })
}

/// The page of the short `slug`: `<base_url>shorts/<slug>/`.
pub fn short_url(base: &Url, slug: &str) -> Url {
    base.join(&paths::short(slug))
        .unwrap_or_else(|_| base.clone())
}

fn reading_minutes(body: &str) -> u32 {
    let words = body.split_whitespace().count();
    words.div_ceil(READING_SPEED).max(1) as u32
}

struct Checker<'a> {
    path: &'a Path,
    problems: &'a mut Problems,
}

impl Checker<'_> {
    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(Problem::at(self.path, line, message));
    }

    fn formulas(&mut self, errors: &[MathError], split: &Split<'_>) {
        for error in errors {
            let line = error.line(split.body, split.body_line);
            self.problem(line, error.message.clone());
        }
    }

    fn unknown_fields(&mut self, fields: &[RawField]) {
        let known = |key: &str| REQUIRED.contains(&key) || OPTIONAL.contains(&key);
        for field in fields.iter().filter(|f| !known(&f.key)) {
            let expected = REQUIRED
                .iter()
                .chain(&OPTIONAL)
                .copied()
                .collect::<Vec<_>>();
            self.problem(field.line, unknown_message("field", &field.key, &expected));
        }
    }

    /// A required field read by `read`, or a problem on line 1 when it is missing.
    fn required<'f, T>(
        &mut self,
        field: Option<&'f RawField>,
        key: &str,
        read: impl FnOnce(&mut Self, &'f RawField) -> Option<T>,
    ) -> Option<T> {
        match field {
            Some(field) => read(self, field),
            None => {
                self.problem(1, format!("missing required field `{key}`"));
                None
            }
        }
    }

    /// `date` (required) and `updated` (optional, not before `date`).
    fn dates(
        &mut self,
        date: Option<&RawField>,
        updated: Option<&RawField>,
        tz: Tz,
    ) -> (Option<DateTime<FixedOffset>>, Option<DateTime<FixedOffset>>) {
        let date = self.required(date, "date", |c, f| c.date(f, tz));
        let Some(updated_field) = updated else {
            return (date, None);
        };
        let updated = self.date(updated_field, tz);
        if let (Some(date), Some(updated)) = (date, updated)
            && updated < date
        {
            self.problem(
                updated_field.line,
                format!(
                    "`updated` ({}) is before `date` ({})",
                    updated.to_rfc3339(),
                    date.to_rfc3339()
                ),
            );
        }
        (date, updated)
    }

    fn expect<T>(&mut self, field: &RawField, what: &str) -> Option<T> {
        self.problem(
            field.line,
            format!(
                "`{}` must be {what}, found {}",
                field.key,
                field.value.kind()
            ),
        );
        None
    }

    fn text<'f>(&mut self, field: &'f RawField) -> Option<&'f str> {
        match &field.value {
            RawValue::Text(s) => Some(s),
            _ => self.expect(field, "a string"),
        }
    }

    /// A one-line string: whitespace runs (newlines included) become one space.
    fn line_text(&mut self, field: &RawField) -> Option<String> {
        let text = clean_line(self.text(field)?);
        if text.is_empty() {
            self.problem(field.line, format!("`{}` is empty", field.key));
            return None;
        }
        Some(text)
    }

    fn bool(&mut self, field: &RawField) -> Option<bool> {
        match field.value {
            RawValue::Bool(b) => Some(b),
            _ => self.expect(field, "true or false"),
        }
    }

    fn date(&mut self, field: &RawField, tz: Tz) -> Option<DateTime<FixedOffset>> {
        let text = match &field.value {
            RawValue::Text(s) | RawValue::Datetime(s) => s,
            _ => return self.expect(field, "a date (2026-06-07) or an RFC 3339 date-time"),
        };
        parse_date(text, tz)
            .map_err(|message| self.problem(field.line, format!("`{}`: {message}", field.key)))
            .ok()
    }

    fn track(&mut self, field: &RawField, config: &Config) -> Option<String> {
        let track = self.text(field)?.trim();
        if config.track(track).is_some() {
            return Some(track.to_string());
        }
        let defined: Vec<&str> = config.tracks.iter().map(|t| t.slug.as_str()).collect();
        self.problem(
            field.line,
            unknown_message("track", track, &defined) + " (defined in config.toml)",
        );
        None
    }

    fn tags(&mut self, field: &RawField) -> Option<Vec<Tag>> {
        let RawValue::List(items) = &field.value else {
            return self.expect(field, "a list of strings, like [\"llm\", \"attention\"]");
        };
        if items.len() > MAX_TAGS {
            self.problem(
                field.line,
                format!(
                    "`tags` has {} tags; at most {MAX_TAGS} per short (each tag is a page and three feeds)",
                    items.len()
                ),
            );
            return None;
        }
        let mut tags: Vec<Tag> = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            let RawValue::Text(name) = item else {
                self.problem(
                    field.line,
                    format!("`tags` must hold only strings, found {}", item.kind()),
                );
                ok = false;
                continue;
            };
            let name = nfc(&clean_line(name)).into_owned();
            let slug = slugify(&name);
            let chars = name.chars().count();
            if slug.is_empty() {
                self.problem(field.line, format!("tag {name:?} has no letters or digits"));
                ok = false;
            } else if chars > MAX_TAG_CHARS || slug.len() > MAX_SLUG_BYTES {
                self.problem(
                    field.line,
                    format!(
                        "tag {name:?} is {chars} characters long; a tag has at most {MAX_TAG_CHARS}"
                    ),
                );
                ok = false;
            } else if !tags.iter().any(|t| t.slug == slug) {
                tags.push(Tag { slug, name });
            }
        }
        ok.then_some(tags)
    }

    fn slug(&mut self, field: &RawField) -> Option<String> {
        self.slug_like(field, "`slug`")
    }

    /// A string field that must be a slug: `what` names it in messages.
    fn slug_like(&mut self, field: &RawField, what: &str) -> Option<String> {
        let text = self.text(field)?;
        self.slug_text(field.line, text, what)
    }

    fn slug_text(&mut self, line: usize, text: &str, what: &str) -> Option<String> {
        if is_slug(text) {
            return self.short_enough(line, text.to_string(), what);
        }
        self.problem(
            line,
            format!("{what} {text:?} is not a slug; expected lower-case letters, digits and single hyphens, like {:?}", slugify(text)),
        );
        None
    }

    /// `aliases`: earlier slugs, each a slug, none the short's own or twice.
    fn aliases(&mut self, field: &RawField, slug: Option<&str>) -> Option<Vec<String>> {
        let RawValue::List(items) = &field.value else {
            return self.expect(field, "a list of earlier slugs, like [\"old-slug\"]");
        };
        if items.len() > MAX_ALIASES {
            let count = items.len();
            self.problem(
                field.line,
                format!(
                    "`aliases` has {count} slugs; at most {MAX_ALIASES} per short (each is a page)"
                ),
            );
            return None;
        }
        let mut aliases: Vec<String> = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            let alias = match item {
                RawValue::Text(text) => self.slug_text(field.line, text, "alias"),
                other => {
                    let kind = other.kind();
                    self.problem(
                        field.line,
                        format!("`aliases` must hold only strings, found {kind}"),
                    );
                    None
                }
            };
            match alias {
                Some(alias) if Some(alias.as_str()) == slug => {
                    self.problem(field.line, format!("alias `{alias}` is the short's own slug; an alias is a slug it had before"));
                    ok = false;
                }
                Some(alias) if !aliases.contains(&alias) => aliases.push(alias),
                Some(_) => {}
                None => ok = false,
            }
        }
        ok.then_some(aliases)
    }

    fn slug_from_file_name(&mut self) -> Option<String> {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default();
        let slug = slugify(&stem);
        if slug.is_empty() {
            self.problem(
                1,
                "cannot make a slug from the file name; set `slug` in the front matter",
            );
            return None;
        }
        self.short_enough(1, slug, "the slug made from the file name")
    }

    /// `slug`, unless it is too long to be a folder's name on disk.
    fn short_enough(&mut self, line: usize, slug: String, what: &str) -> Option<String> {
        if slug.len() <= MAX_SLUG_BYTES {
            return Some(slug);
        }
        self.problem(
            line,
            format!(
                "{what} is {} bytes long; at most {MAX_SLUG_BYTES} (it names a folder, and file systems allow 255); set a shorter `slug`",
                slug.len()
            ),
        );
        None
    }
}

/// Drops characters XML cannot carry, then makes the text [`one_line`].
fn clean_line(text: &str) -> String {
    one_line(&markdown::strip_xml_invalid(text))
}

/// A date (`2026-06-07`, midnight in `tz`), a local date-time (`2026-06-07T09:30:00`,
/// in `tz`) or an RFC 3339 date-time with an offset.
pub fn parse_date(text: &str, tz: Tz) -> Result<DateTime<FixedOffset>, String> {
    let text = text.trim();
    let expected =
        "expected a date like 2026-06-07 or an RFC 3339 date-time like 2026-06-07T09:30:00+02:00";
    let parsed = if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        local_to_fixed(date.and_hms_opt(0, 0, 0).unwrap_or_default(), tz)
    } else if let Ok(datetime) = DateTime::parse_from_rfc3339(text) {
        datetime
    } else if let Some(local) = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    {
        local_to_fixed(local, tz)
    } else {
        return Err(format!("{text:?} is not a valid date; {expected}"));
    };
    if !(1000..=9999).contains(&parsed.year()) {
        return Err(format!(
            "{text:?} is out of range; expected a year from 1000 to 9999"
        ));
    }
    Ok(parsed)
}

/// A wall-clock time in `tz`. In a daylight-saving gap the first valid instant
/// after it is used; in a repeated hour, the earlier one.
fn local_to_fixed(local: NaiveDateTime, tz: Tz) -> DateTime<FixedOffset> {
    let mut probe = local;
    for _ in 0..4 {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.fixed_offset();
        }
        probe += chrono::Duration::minutes(30);
    }
    tz.from_utc_datetime(&local).fixed_offset()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_date_is_midnight_in_the_site_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let d = parse_date("2026-06-07", berlin).unwrap();
        assert_eq!(d.to_rfc3339(), "2026-06-07T00:00:00+02:00");
        let d = parse_date("2026-01-07T09:30:00", berlin).unwrap();
        assert_eq!(d.to_rfc3339(), "2026-01-07T09:30:00+01:00");
        let d = parse_date("2026-06-07T09:30:00Z", berlin).unwrap();
        assert_eq!(d.to_rfc3339(), "2026-06-07T09:30:00+00:00");
    }

    #[test]
    fn midnight_in_a_dst_gap_moves_forward() {
        // Chile's clocks jumped from 00:00 to 01:00 on 2023-09-03.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let d = parse_date("2023-09-03", santiago).unwrap();
        assert_eq!(d.to_rfc3339(), "2023-09-03T01:00:00-03:00");
    }

    #[test]
    fn bad_dates_say_what_is_expected() {
        let utc = Tz::UTC;
        assert!(
            parse_date("2026-02-30", utc)
                .unwrap_err()
                .contains("not a valid date")
        );
        assert!(
            parse_date("June 7", utc)
                .unwrap_err()
                .contains("expected a date like 2026-06-07")
        );
        assert!(
            parse_date("0999-01-01", utc)
                .unwrap_err()
                .contains("out of range")
        );
    }

    #[test]
    fn clean_line_collapses_whitespace() {
        assert_eq!(clean_line("  a\r\n b\tc\u{7}  "), "a b c");
    }

    #[test]
    fn unknown_names_get_a_suggestion() {
        let m = unknown_message("field", "tag", &["title", "tags"]);
        assert_eq!(
            m,
            "unknown field `tag`; did you mean `tags`? Expected one of: title, tags"
        );
        let m = unknown_message("track", "zzz", &["llm"]);
        assert_eq!(m, "unknown track `zzz`; expected one of: llm");
    }

    #[test]
    fn reading_time_rounds_up() {
        assert_eq!(reading_minutes("word"), 1);
        assert_eq!(reading_minutes(&"w ".repeat(201)), 2);
    }
}
