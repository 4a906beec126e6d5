//! Splitting a short into front matter and body, and reading the front matter
//! (TOML between `+++` lines or YAML between `---` lines) into [`RawField`]s
//! that remember the line each value sits on.
//!
//! This module knows the two syntaxes, not the fields: which keys are allowed
//! and what their values mean is decided in `content::short`.

use crate::diagnostics::line_of_offset;

/// A syntax error in a short, with the 1-based line in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl SyntaxError {
    fn new(line: usize, message: impl Into<String>) -> Self {
        SyntaxError {
            line,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

impl Format {
    fn delimiter(self) -> &'static str {
        match self {
            Format::Toml => "+++",
            Format::Yaml => "---",
        }
    }
}

/// A short's text cut in two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split<'a> {
    pub format: Format,
    pub front: &'a str,
    /// Line in the file of the first front-matter line.
    pub front_line: usize,
    pub body: &'a str,
    /// Line in the file of the first body line.
    pub body_line: usize,
}

/// Cuts `text` into front matter and body. A UTF-8 byte-order mark is ignored.
pub fn split(text: &str) -> Result<Split<'_>, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = LineOffsets::new(text);
    let Some((_, first)) = lines.next() else {
        return Err(SyntaxError::new(
            1,
            "the file is empty; expected front matter between `+++` lines, then a Markdown body",
        ));
    };
    let format = match first.trim_end() {
        "+++" => Format::Toml,
        "---" => Format::Yaml,
        _ => {
            return Err(SyntaxError::new(
                1,
                "expected front matter: the first line must be `+++` (TOML) or `---` (YAML)",
            ));
        }
    };
    let front_start = first.len();
    for (offset, line) in lines {
        if line.trim_end() == format.delimiter() {
            let body_start = offset + line.len();
            return Ok(Split {
                format,
                front: &text[front_start..offset],
                front_line: 2,
                body: &text[body_start..],
                body_line: line_of_offset(text, body_start),
            });
        }
    }
    Err(SyntaxError::new(
        1,
        format!(
            "the front matter opened here is never closed; expected a line `{}` after it",
            format.delimiter()
        ),
    ))
}

/// Lines with their byte offsets, each including its line ending.
struct LineOffsets<'a> {
    text: &'a str,
    offset: usize,
}

impl<'a> LineOffsets<'a> {
    fn new(text: &'a str) -> Self {
        LineOffsets { text, offset: 0 }
    }
}

impl<'a> Iterator for LineOffsets<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.text[self.offset..];
        if rest.is_empty() {
            return None;
        }
        let len = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let start = self.offset;
        self.offset += len;
        Some((start, &rest[..len]))
    }
}

/// A front-matter value, in the few shapes a short's fields can take.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Text(String),
    /// A TOML date or date-time literal, in its RFC 3339 form.
    Datetime(String),
    Bool(bool),
    List(Vec<RawValue>),
    /// Anything else, by its type name, for error messages.
    Other(&'static str),
}

impl RawValue {
    /// "a string", "an integer", … for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            RawValue::Text(_) => "a string",
            RawValue::Datetime(_) => "a date",
            RawValue::Bool(_) => "a boolean",
            RawValue::List(_) => "a list",
            RawValue::Other(kind) => kind,
        }
    }
}

/// One top-level key of the front matter.
#[derive(Debug, Clone, PartialEq)]
pub struct RawField {
    pub key: String,
    /// Line in the file of the value (the key's line for YAML).
    pub line: usize,
    pub value: RawValue,
}

/// Reads the front matter's top-level keys, in the order they appear.
pub fn parse(split: &Split<'_>) -> Result<Vec<RawField>, SyntaxError> {
    let mut fields = match split.format {
        Format::Toml => parse_toml(split.front, split.front_line)?,
        Format::Yaml => parse_yaml(split.front, split.front_line)?,
    };
    fields.sort_by_key(|f| f.line);
    Ok(fields)
}

fn parse_toml(front: &str, first_line: usize) -> Result<Vec<RawField>, SyntaxError> {
    use toml::de::{DeTable, DeValue};

    let file_line = |offset: usize| first_line + line_of_offset(front, offset) - 1;
    let table = DeTable::parse(front).map_err(|e| {
        let line = e.span().map_or(first_line, |span| file_line(span.start));
        SyntaxError::new(
            line,
            format!("front matter is not valid TOML: {}", e.message().trim_end()),
        )
    })?;

    fn convert(value: &DeValue<'_>) -> RawValue {
        match value {
            DeValue::String(s) => RawValue::Text(s.to_string()),
            DeValue::Datetime(d) => RawValue::Datetime(d.to_string()),
            DeValue::Boolean(b) => RawValue::Bool(*b),
            DeValue::Array(items) => {
                RawValue::List(items.iter().map(|i| convert(i.get_ref())).collect())
            }
            DeValue::Integer(_) => RawValue::Other("an integer"),
            DeValue::Float(_) => RawValue::Other("a number"),
            DeValue::Table(_) => RawValue::Other("a table"),
        }
    }

    Ok(table
        .get_ref()
        .iter()
        .map(|(key, value)| RawField {
            key: key.get_ref().to_string(),
            line: file_line(value.span().start),
            value: convert(value.get_ref()),
        })
        .collect())
}

/// Deeper than any real front matter; libyaml's scanner slows down
/// quadratically on deep flow nesting, so deeper input is refused unread.
const MAX_YAML_FLOW_DEPTH: usize = 64;

fn parse_yaml(front: &str, first_line: usize) -> Result<Vec<RawField>, SyntaxError> {
    use serde_yaml_ng::Value;

    if let Some(offset) = flow_depth_exceeded(front, MAX_YAML_FLOW_DEPTH) {
        return Err(SyntaxError::new(
            first_line + line_of_offset(front, offset) - 1,
            format!("front matter nests more than {MAX_YAML_FLOW_DEPTH} levels of [ ] or {{ }}"),
        ));
    }
    let value: Value = serde_yaml_ng::from_str(front).map_err(|e| {
        let line = e
            .location()
            .map_or(first_line, |l| first_line + l.line().saturating_sub(1));
        let message = shift_line_numbers(&e.to_string(), first_line - 1);
        SyntaxError::new(line, format!("front matter is not valid YAML: {message}"))
    })?;
    let mapping = match value {
        Value::Mapping(mapping) => mapping,
        Value::Null => return Ok(Vec::new()),
        _ => {
            return Err(SyntaxError::new(
                first_line,
                "front matter must be a mapping of `key: value` lines",
            ));
        }
    };

    fn convert(value: &Value) -> RawValue {
        match value {
            Value::String(s) => RawValue::Text(s.clone()),
            Value::Bool(b) => RawValue::Bool(*b),
            Value::Sequence(items) => RawValue::List(items.iter().map(convert).collect()),
            Value::Number(n) if n.is_f64() => RawValue::Other("a number"),
            Value::Number(_) => RawValue::Other("an integer"),
            Value::Null => RawValue::Other("an empty value"),
            Value::Mapping(_) => RawValue::Other("a mapping"),
            Value::Tagged(tagged) => convert(&tagged.value),
        }
    }

    let mut fields = Vec::with_capacity(mapping.len());
    for (key, value) in &mapping {
        let Value::String(key) = key else {
            return Err(SyntaxError::new(
                first_line,
                "front matter keys must be strings",
            ));
        };
        fields.push(RawField {
            line: yaml_key_line(front, key).map_or(first_line, |l| first_line + l - 1),
            key: key.clone(),
            value: convert(value),
        });
    }
    Ok(fields)
}

/// The offset where `[`/`{` nesting outside quotes first goes deeper than `max`.
fn flow_depth_exceeded(text: &str, max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (offset, c) in text.char_indices() {
        match (quote, c) {
            // An apostrophe in a plain scalar ("Lena's") must not hide the rest.
            (_, '\n') => quote = None,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => {
                depth += 1;
                if depth > max {
                    return Some(offset);
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Rewrites every "line N" in a parser message as a line of the whole file;
/// the YAML parser only saw the front matter, which starts `by` lines later.
fn shift_line_numbers(message: &str, by: usize) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("line ") {
        let (before, after) = rest.split_at(i + "line ".len());
        out.push_str(before);
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match after[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// The 1-based line where a top-level YAML key is written. serde_yaml keeps no
/// positions, but front matter is a flat mapping, so the key starts a line.
fn yaml_key_line(front: &str, key: &str) -> Option<usize> {
    front
        .lines()
        .position(|line| {
            [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
                .iter()
                .any(|k| {
                    line.strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.trim_start().starts_with(':'))
                })
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_toml_and_counts_lines_from_the_file() {
        let text = "+++\ntitle = \"A\"\n+++\n\nBody\n";
        let split = split(text).unwrap();
        assert_eq!(split.format, Format::Toml);
        assert_eq!(split.front, "title = \"A\"\n");
        assert_eq!(split.body, "\nBody\n");
        assert_eq!(split.body_line, 4);
    }

    #[test]
    fn splits_yaml_with_crlf_and_bom() {
        let text = "\u{feff}---\r\ntitle: A\r\n---\r\nBody\r\n";
        let split = split(text).unwrap();
        assert_eq!(split.format, Format::Yaml);
        assert_eq!(split.front, "title: A\r\n");
        assert_eq!(split.body, "Body\r\n");
    }

    #[test]
    fn reports_missing_and_unclosed_front_matter() {
        assert_eq!(split("Just text\n").unwrap_err().line, 1);
        assert!(
            split("+++\ntitle = \"A\"\n")
                .unwrap_err()
                .message
                .contains("never closed")
        );
        assert!(split("").unwrap_err().message.contains("empty"));
        // A YAML opener is not closed by a TOML closer.
        assert!(split("---\ntitle: A\n+++\n").is_err());
    }

    #[test]
    fn toml_fields_carry_their_lines() {
        let text = "+++\ntitle = \"A\"\n\ndate = 2026-06-07\ntags = [\"x\", 1]\n+++\nBody";
        let fields = parse(&split(text).unwrap()).unwrap();
        let got: Vec<_> = fields.iter().map(|f| (f.key.as_str(), f.line)).collect();
        assert_eq!(got, [("title", 2), ("date", 4), ("tags", 5)]);
        assert_eq!(fields[1].value, RawValue::Datetime("2026-06-07".into()));
        assert_eq!(
            fields[2].value,
            RawValue::List(vec![
                RawValue::Text("x".into()),
                RawValue::Other("an integer")
            ])
        );
    }

    #[test]
    fn toml_syntax_error_points_at_its_line() {
        let text = "+++\ntitle = \"A\"\ndate = \n+++\nBody";
        let err = parse(&split(text).unwrap()).unwrap_err();
        assert_eq!(err.line, 3, "{err:?}");
        assert!(
            err.message.starts_with("front matter is not valid TOML"),
            "{err:?}"
        );
    }

    #[test]
    fn yaml_fields_carry_their_lines() {
        let text = "---\n# comment\ntitle: \"A: b\"\ndraft: true\ntags:\n  - x\n---\nBody";
        let fields = parse(&split(text).unwrap()).unwrap();
        let got: Vec<_> = fields.iter().map(|f| (f.key.as_str(), f.line)).collect();
        assert_eq!(got, [("title", 3), ("draft", 4), ("tags", 5)]);
        assert_eq!(fields[0].value, RawValue::Text("A: b".into()));
    }

    #[test]
    fn deep_yaml_nesting_is_refused_before_parsing() {
        let deep = format!("---\ntitle: A\nextra: {}\n---\nBody", "[".repeat(65));
        let err = parse(&split(&deep).unwrap()).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("more than 64 levels"), "{err:?}");
        let quoted = format!("---\ntitle: \"{}\"\n---\nBody", "[".repeat(65));
        assert!(
            parse(&split(&quoted).unwrap()).is_ok(),
            "brackets inside quotes are text"
        );
    }

    #[test]
    fn yaml_syntax_error_points_at_its_line() {
        let text = "---\ntitle: A\ntags: [x, y\n---\nBody";
        let err = parse(&split(text).unwrap()).unwrap_err();
        assert_eq!(err.line, 4, "{err:?}");
        assert!(
            err.message.contains("at line 4"),
            "the message counts lines in the file: {err:?}"
        );
        assert!(
            err.message.starts_with("front matter is not valid YAML"),
            "{err:?}"
        );
    }
}
