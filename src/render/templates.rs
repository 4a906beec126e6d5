//! Where templates and page assets come from: the built-in ones shipped
//! inside the binary, each replaced by a file of the same name in the site's
//! `templates/` folder.
//!
//! Owns loading and compiling, and turning a broken template into a
//! `path:line` problem. Knows nothing about what the templates render.

use std::path::{Path, PathBuf};

use tera::Tera;

use crate::config::{Config, tera_message};
use crate::diagnostics::{Problem, Problems};

/// A file the binary ships: its name in `templates/` and its built-in text.
pub type BuiltIn = (&'static str, &'static str);

/// The text of one template or asset, and where it came from.
struct Source {
    name: &'static str,
    text: String,
    path: PathBuf,
}

/// The text of every file of `built_in`, the site's where it has one, for
/// callers that need to know what the templates refer to. A file that cannot
/// be read counts as empty: [`load`] reports it.
pub fn texts(config: &Config, built_in: &[BuiltIn]) -> Vec<String> {
    built_in
        .iter()
        .map(|&file| source(config, file).map(|s| s.text).unwrap_or_default())
        .collect()
}

/// The user's file named `name` in `templates/`, or the built-in text.
fn source(config: &Config, (name, built_in): BuiltIn) -> Result<Source, Problem> {
    let user_file = config.templates_dir.join(name);
    match std::fs::read_to_string(&user_file) {
        Ok(text) => Ok(Source {
            name,
            text,
            path: user_file,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Source {
            name,
            text: built_in.to_string(),
            path: Path::new("<built-in>").join(name),
        }),
        Err(e) => Err(Problem::new(
            &user_file,
            None,
            format!("cannot read the template: {e}"),
        )),
    }
}

/// Compiles `built_in`, each replaced by the site's file of the same name.
/// All are added together, so templates may extend and import each other.
pub fn load(config: &Config, built_in: &[BuiltIn]) -> Result<Tera, Problems> {
    let mut problems = Problems::default();
    let mut sources = Vec::with_capacity(built_in.len());
    for &file in built_in {
        match source(config, file) {
            Ok(source) => sources.push(source),
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut tera = Tera::default();
    let texts = sources.iter().map(|s| (s.name, s.text.as_str()));
    if let Err(e) = tera.add_raw_templates(texts) {
        let message = tera_message(&e);
        // Tera names the template it failed on in quotes; point at its file.
        let culprit = sources.iter().find(|s| {
            message.contains(&format!("'{}'", s.name))
                || message.contains(&format!("\"{}\"", s.name))
        });
        let path = culprit.map_or_else(|| config.templates_dir.clone(), |s| s.path.clone());
        problems.push(Problem::new(
            &path,
            tera_line(&message),
            format!("invalid template: {message}"),
        ));
        return Err(problems);
    }
    Ok(tera)
}

/// The text of an asset (a stylesheet, a script), the site's file if it has one.
pub fn asset(config: &Config, file: BuiltIn) -> Result<String, Problems> {
    source(config, file)
        .map(|s| s.text)
        .map_err(|p| Problems(vec![p]))
}

/// A template that compiled but failed to render (an unknown variable, a
/// filter on the wrong type) as a problem in the site's template file. Tera
/// names the variable but not the line, so it points at the first line that
/// uses it: in `template` itself, else in any other template of the site's
/// (one `template` extends or includes).
pub fn render_problem(config: &Config, template: &str, message: &str) -> Problem {
    let named = config.templates_dir.join(template);
    let used = quoted_name(message).and_then(|name| {
        let others = std::fs::read_dir(&config.templates_dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok().map(|e| e.path()));
        std::iter::once(named.clone())
            .chain(others)
            .find_map(|path| {
                Some((
                    line_using(&std::fs::read_to_string(&path).ok()?, name)?,
                    path,
                ))
            })
    });
    match used {
        Some((line, path)) => Problem::at(&path, line, format!("cannot render: {message}")),
        None => Problem::new(&named, None, format!("cannot render: {message}")),
    }
}

/// The name Tera quotes in backticks ("Variable `titel` not found …").
fn quoted_name(message: &str) -> Option<&str> {
    let after = message.split('`').nth(1)?;
    (!after.is_empty()).then_some(after)
}

/// The first line inside a Tera tag (`{{ … }}` or `{% … %}`) that names `name`.
fn line_using(text: &str, name: &str) -> Option<usize> {
    let mut line = 1;
    let mut rest = text;
    while let Some(open) = rest.find(['{']) {
        let tag = &rest[open..];
        let close = match tag.get(..2) {
            Some("{{") => tag.find("}}"),
            Some("{%") => tag.find("%}"),
            _ => None,
        };
        let Some(close) = close else {
            line += rest[..=open].matches('\n').count();
            rest = &rest[open + 1..];
            continue;
        };
        if tag[..close].contains(name) {
            return Some(line + rest[..open].matches('\n').count());
        }
        line += rest[..open + close].matches('\n').count();
        rest = &rest[open + close..];
    }
    None
}

/// The line Tera names in a parse error ("--> 12:5"), if any.
pub fn tera_line(message: &str) -> Option<usize> {
    let after = message.split("--> ").nth(1)?;
    after.split(':').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tera_line_reads_the_position() {
        assert_eq!(super::tera_line("x\n --> 12:5\n  |"), Some(12));
        assert_eq!(super::tera_line("no position"), None);
    }

    #[test]
    fn a_render_error_points_at_the_first_tag_using_the_name() {
        let text = "<h1>{{ title }}</h1>\n<p>titel</p>\n{% if x %}\n{{ page.titel | upper }}\n";
        assert_eq!(super::line_using(text, "titel"), Some(4));
        assert_eq!(super::line_using(text, "missing"), None);
        let message = "Failed to render 'short.html': Variable `page.titel` not found in context";
        assert_eq!(super::quoted_name(message), Some("page.titel"));
    }
}
