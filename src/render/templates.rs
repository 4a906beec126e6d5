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
}
