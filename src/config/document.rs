//! `config.toml` as a TOML document: where each key is, and deserialisation
//! that reports every unknown key (not only the first, as serde stops at)
//! and then the first other mistake, each at its line and by its full name
//! (`feeds.limit`, `tracks[2].slug`). Knows no key's meaning; the checks of
//! values are [`super`]'s.

use std::collections::HashMap;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostics::{line_of_offset, unknown_message};

/// More mistakes than this in one file is a file of something else.
const MOST_MISTAKES: usize = 50;

/// One mistake: where, and what to say.
#[derive(Debug, PartialEq, Eq)]
pub struct Mistake {
    pub line: Option<usize>,
    pub message: String,
}

/// The line of every key of a document, by full name.
#[derive(Debug, Default)]
pub struct KeyLines(HashMap<String, usize>);

impl KeyLines {
    /// The line of the key `name` (`delivery.smtp.tls`), if the file has it.
    pub fn line(&self, name: &str) -> Option<usize> {
        self.0.get(name).copied()
    }
}

/// A document deserialised: the value (without the keys that had
/// mistakes), where each key is, and the mistakes, by line.
pub struct Parsed<T> {
    pub value: T,
    pub keys: KeyLines,
    pub mistakes: Vec<Mistake>,
}

/// `text` deserialised as `T`, or every mistake found when what is left
/// of it cannot be.
pub fn deserialize<T: DeserializeOwned>(text: &str) -> Result<Parsed<T>, Vec<Mistake>> {
    let mut root = DeTable::parse(text).map_err(|e| vec![mistake(text, None, &e)])?;
    let mut lines = KeyLines::default();
    walk(root.get_ref(), "", &mut |name, key, _| {
        lines
            .0
            .insert(name.to_string(), line_of_offset(text, key.start));
    });
    let mut mistakes: Vec<Mistake> = Vec::new();
    // Full names of the keys taken out after a mistake of their own.
    let mut removed: Vec<String> = Vec::new();
    loop {
        let e = match T::deserialize(toml::de::Deserializer::from(root.clone())) {
            Ok(value) => {
                mistakes.sort_by_key(|m| m.line);
                return Ok(Parsed {
                    value,
                    keys: lines,
                    mistakes,
                });
            }
            Err(e) => e,
        };
        let span = e.span();
        let name = span.as_ref().and_then(|span| name_at(root.get_ref(), span));
        if !is_consequence(&e, name.as_deref(), &removed) {
            mistakes.push(mistake(text, name.as_deref(), &e));
        }
        // Take out what was wrong (or, for a required key taken out, its
        // table), so that the next pass finds the next mistake.
        let taken = name.filter(|_| mistakes.len() < MOST_MISTAKES);
        match (taken, span) {
            (Some(name), Some(span)) if remove_at(root.get_mut(), &span) => removed.push(name),
            _ => {
                mistakes.sort_by_key(|m| m.line);
                return Err(mistakes);
            }
        }
    }
}

/// "missing field `k`" for a key taken out after its own mistake.
fn is_consequence(e: &toml::de::Error, table: Option<&str>, removed: &[String]) -> bool {
    let Some(field) = e.message().strip_prefix("missing field `") else {
        return false;
    };
    let field = field.trim_end().trim_end_matches('`');
    let name = match table {
        Some(table) => format!("{table}.{field}"),
        None => field.to_string(),
    };
    removed.contains(&name)
}

fn mistake(text: &str, name: Option<&str>, e: &toml::de::Error) -> Mistake {
    let line = e.span().map(|span| line_of_offset(text, span.start));
    if let Some(message) = duplicate_key(text, e) {
        return Mistake { line, message };
    }
    let message = match (unknown_field(e), name) {
        // The suggestion compares the bare key; the message names it whole.
        (Some((got, expected)), Some(name)) => unknown_message("key", got, &expected).replacen(
            &format!("`{got}`"),
            &format!("`{name}`"),
            1,
        ),
        (None, Some(name)) if !e.message().starts_with("missing field") => {
            format!("`{name}`: {}", plain(e.message()))
        }
        _ => missing_key(text, line, e.message()),
    };
    Mistake { line, message }
}

/// toml's bare "duplicate key", with the key or table named and, for a
/// table, the line that defined it first.
fn duplicate_key(text: &str, e: &toml::de::Error) -> Option<String> {
    if e.message().trim_end() != "duplicate key" {
        return None;
    }
    let span = e.span()?;
    let key = text.get(span.clone())?.trim();
    let before = text.get(..span.start)?;
    let (earlier, this_line) = before.rsplit_once('\n').unwrap_or(("", before));
    if this_line.trim_start().starts_with('[') {
        let header = text[span.start - this_line.len()..].lines().next()?.trim();
        let first = earlier.lines().position(|l| l.trim() == header)? + 1;
        return Some(format!(
            "the table `{header}` is defined twice (first at line {first}); put all of its keys under the first"
        ));
    }
    let table = earlier
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|h| format!("{}.", h.trim_matches(|c| c == '[' || c == ']')));
    Some(format!(
        "`{}{key}` is set twice; keep one",
        table.unwrap_or_default()
    ))
}

/// serde's "unknown field `x`, expected one of `a`, `b`": `x` and the
/// expected keys.
fn unknown_field(e: &toml::de::Error) -> Option<(&str, Vec<&str>)> {
    let rest = e.message().strip_prefix("unknown field ")?;
    let mut quoted = rest.split('`').skip(1).step_by(2);
    let got = quoted.next()?;
    Some((got, quoted.collect()))
}

/// "missing field `x`" at a table's header names the table.
fn missing_key(text: &str, line: Option<usize>, message: &str) -> String {
    let message = message.trim_end();
    let header = line
        .and_then(|l| text.lines().nth(l - 1))
        .map(str::trim)
        .filter(|t| t.starts_with('['));
    match (message.strip_prefix("missing field "), header) {
        (Some(key), Some(header)) => format!("missing required key {key} in {header}"),
        (Some(key), None) => format!("missing required key {key}"),
        (None, _) => message.to_string(),
    }
}

/// serde's "invalid type: string \"50\", expected usize" in a writer's
/// words: "expected a whole number, found the string \"50\"".
fn plain(message: &str) -> String {
    let message = message.trim_end();
    let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.rsplit_once(", expected "))
    else {
        return message.to_string();
    };
    let expected = match expected {
        "usize" | "u8" | "u16" | "u32" | "u64" => "a whole number, like 10",
        "i64" | "i32" => "a whole number",
        "a boolean" => "true or false",
        "a string" => "text in quotes",
        "a sequence" => "a list, like [\"a\", \"b\"]",
        other if other.starts_with("struct ") || other == "a map" => "a table",
        other => other,
    };
    let found = match found {
        "sequence" => "a list".to_string(),
        "map" => "a table".to_string(),
        other => format!("the {}", other.replace('`', "")),
    };
    format!("expected {expected}, found {found}")
}

/// What [`walk`] calls for each key: its full name, its span and its
/// value's span.
type Visit<'a> = dyn FnMut(&str, Range<usize>, Range<usize>) + 'a;

/// Calls `visit(full name, key span, value span)` for every key below
/// `table`; array items are named `name[1]`, counting from 1 as writers do.
fn walk(table: &DeTable<'_>, prefix: &str, visit: &mut Visit<'_>) {
    for (key, value) in table.iter() {
        let name = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        visit(&name, key.span(), value.span());
        walk_value(value, &name, visit);
    }
}

fn walk_value(value: &Spanned<DeValue<'_>>, name: &str, visit: &mut Visit<'_>) {
    match value.get_ref() {
        DeValue::Table(table) => walk(table, name, visit),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_name = format!("{name}[{}]", i + 1);
                visit(&item_name, item.span(), item.span());
                walk_value(item, &item_name, visit);
            }
        }
        _ => {}
    }
}

/// The full name of the key or value at `span`: the innermost that
/// encloses it.
fn name_at(root: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    let mut best: Option<(String, usize)> = None;
    walk(root, "", &mut |name, key, value| {
        let encloses =
            |r: &Range<usize>| r.start <= span.start && span.end <= r.end && !r.is_empty();
        for range in [key, value] {
            if encloses(&range) && best.as_ref().is_none_or(|(_, len)| range.len() <= *len) {
                best = Some((name.to_string(), range.len()));
            }
        }
    });
    best.map(|(name, _)| name)
}

/// Removes the entry whose key or value is at `span`, or the array item
/// there; whether there was one.
fn remove_at(table: &mut DeTable<'_>, span: &Range<usize>) -> bool {
    let found = table
        .iter()
        .find(|(key, value)| key.span() == *span || value.span() == *span)
        .map(|(key, _)| key.clone());
    if let Some(key) = found {
        return table.remove(&key).is_some();
    }
    table
        .iter_mut()
        .any(|(_, value)| remove_in_value(value.get_mut(), span))
}

fn remove_in_value(value: &mut DeValue<'_>, span: &Range<usize>) -> bool {
    match value {
        DeValue::Table(table) => remove_at(table, span),
        DeValue::Array(items) => {
            if let Some(i) = items.iter().position(|item| item.span() == *span) {
                // DeArray has no `remove`; the flag it would lose matters
                // only to the parser.
                let mut kept = toml::de::DeArray::new();
                for (j, item) in items.iter().enumerate() {
                    if j != i {
                        kept.push(item.clone());
                    }
                }
                *items = kept;
                return true;
            }
            items
                .iter_mut()
                .any(|item| remove_in_value(item.get_mut(), span))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read through Debug only
    struct Doc {
        a: Table,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        z: Option<Table>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Table {
        name: String,
        #[serde(default)]
        count: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        slug: String,
    }

    fn mistakes(text: &str) -> Vec<(Option<usize>, String)> {
        let found = match deserialize::<Doc>(text) {
            Ok(parsed) => parsed.mistakes,
            Err(mistakes) => mistakes,
        };
        found.into_iter().map(|m| (m.line, m.message)).collect()
    }

    #[test]
    fn a_table_or_key_given_twice_is_named_with_where_it_came_first() {
        let table = "[a]\nname = \"x\"\n\n[z]\nname = \"y\"\n[a]\ncount = 2\n";
        assert_eq!(
            mistakes(table),
            [(
                Some(6),
                "the table `[a]` is defined twice (first at line 1); put all of its keys under the first".to_string()
            )]
        );
        let key = "[a]\nname = \"x\"\nname = \"y\"\n";
        assert_eq!(
            mistakes(key),
            [(Some(3), "`a.name` is set twice; keep one".to_string())]
        );
    }

    #[test]
    fn every_unknown_key_is_named_whatever_the_order_of_the_tables() {
        let text = "[z]\nnam = 1\nname = \"z\"\n[a]\nname = \"a\"\ncont = 2\n";
        let parsed = deserialize::<Doc>(text).unwrap();
        let found: Vec<_> = parsed
            .mistakes
            .iter()
            .map(|m| (m.line, m.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    Some(2),
                    "unknown key `z.nam`; did you mean `name`? Expected one of: name, count"
                ),
                (
                    Some(6),
                    "unknown key `a.cont`; did you mean `count`? Expected one of: name, count"
                ),
            ]
        );
        assert_eq!(parsed.keys.line("a.name"), Some(5));
    }

    #[test]
    fn a_wrong_type_names_the_key_and_its_consequences_are_not_reported() {
        let text = "[a]\nname = 5\ncount = \"many\"\n[[items]]\nslug = \"x\"\n[[items]]\nslug = []\nslg = 1\n";
        assert_eq!(
            mistakes(text),
            [
                (
                    Some(2),
                    "`a.name`: expected text in quotes, found the integer 5".to_string()
                ),
                (
                    Some(3),
                    "`a.count`: expected a whole number, like 10, found the string \"many\""
                        .to_string()
                ),
                (
                    Some(7),
                    "`items[2].slug`: expected text in quotes, found a list".to_string()
                ),
                (
                    Some(8),
                    "unknown key `items[2].slg`; did you mean `slug`? Expected one of: slug"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_missing_key_names_its_table_and_bad_toml_its_line() {
        assert_eq!(
            mistakes("[a]\ncount = 1\n"),
            [(Some(1), "missing required key `name` in [a]".to_string())]
        );
        assert_eq!(
            mistakes("[a]\nname = \"x\n"),
            [(Some(2), "invalid basic string, expected `\"`".to_string())]
        );
    }
}
