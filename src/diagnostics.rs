//! Problems in the user's input, reported as `path:line: message`.
//!
//! Every loader collects [`Problem`]s instead of stopping at the first one, so
//! `shorts check` can list them all in one run. This module only formats and
//! collects; it never decides what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    /// 1-based line in the file, where the parser can say.
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn new(path: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        Problem {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    pub fn at(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Self::new(path, Some(line), message)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = display_path(&self.path);
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", path, line, self.message),
            None => write!(f, "{}: {}", path, self.message),
        }
    }
}

/// Shows a path relative to the working directory when it lies below it,
/// which is how editors and terminals turn `path:line` into a link.
pub fn display_path(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf));
    relative
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// The problems found in one run, in the order they were found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }

    pub fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }

    /// Sorted by file, then line, so output is stable whatever order files were read in.
    pub fn sorted(mut self) -> Self {
        self.0
            .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        self
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.0 {
            writeln!(f, "{problem}")?;
        }
        let n = self.0.len();
        write!(f, "{} problem{} found", n, if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Problems {}

/// The 1-based line of a byte offset in `text`.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// "unknown field `tag`; did you mean `tags`? expected one of: …"
pub fn unknown_message(what: &str, got: &str, expected: &[&str]) -> String {
    let list = expected.join(", ");
    let closest = expected
        .iter()
        .filter(|e| edit_distance(got, e) <= 2)
        .min_by_key(|e| edit_distance(got, e));
    match closest {
        Some(e) => format!("unknown {what} `{got}`; did you mean `{e}`? Expected one of: {list}"),
        None => format!("unknown {what} `{got}`; expected one of: {list}"),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_path_line_message() {
        let p = Problem::at(Path::new("/nowhere/a.md"), 4, "bad date");
        assert_eq!(p.to_string(), "/nowhere/a.md:4: bad date");
        let p = Problem::new(Path::new("/nowhere/a.md"), None, "not UTF-8");
        assert_eq!(p.to_string(), "/nowhere/a.md: not UTF-8");
    }

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of_offset("a\nb\nc", 0), 1);
        assert_eq!(line_of_offset("a\nb\nc", 2), 2);
        assert_eq!(line_of_offset("a\nb\nc", 4), 3);
        assert_eq!(line_of_offset("a", 99), 1);
    }
}
