//! Reading `content/shorts/*.md` into a validated [`Collection`].
//!
//! Owns the file system side of content: listing files, size and UTF-8
//! checks, and problems that span files (duplicate slugs). It reports every
//! problem it finds rather than stopping at the first; it never writes.

pub mod cache;
pub mod digest_note;
pub mod frontmatter;
pub mod highlight;
pub mod markdown;
pub mod math;
pub mod short;

use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::diagnostics::{Problem, Problems, line_of_offset};
use crate::model::{Collection, Short};
use crate::published::Published;

/// A short is a one-to-two-minute read; anything this large is a mistake.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Loads every short, or every problem found in any of them. Files that
/// have not changed since the last load come from its [`cache`], which is
/// written again when it missed many.
pub fn load(config: &Config) -> Result<Collection, Problems> {
    load_with(config, true)
}

/// [`load`] for `shorts check`, which writes nothing: the cache is read,
/// never written.
pub fn load_without_writing(config: &Config) -> Result<Collection, Problems> {
    load_with(config, false)
}

fn load_with(config: &Config, write_cache: bool) -> Result<Collection, Problems> {
    let (files, mut problems) = list_shorts(&config.shorts_dir()).map_err(|p| Problems(vec![p]))?;
    let cache = cache::Cache::open(config);
    // Files are independent until the duplicate check, so they load on every core.
    let loaded: Vec<Loaded> = files
        .par_iter()
        .map(|path| {
            let stat = cache::Stat::of(path);
            let cached = stat.as_ref().and_then(|stat| cache.take(path, stat));
            let mut problems = Problems::default();
            let parsed = cached.is_none();
            let short = cached.or_else(|| load_short(path, config, &mut problems));
            Loaded {
                short,
                problems,
                stat,
                parsed,
            }
        })
        .collect();
    let parsed = loaded.iter().filter(|l| l.parsed).count();
    let newly_valid = loaded
        .iter()
        .filter(|l| l.parsed && l.short.is_some())
        .count();
    let mut shorts = Vec::with_capacity(files.len());
    // The stat each short's file was read with, in the order of `shorts`.
    let mut stats = Vec::with_capacity(files.len());
    for loaded in loaded {
        if loaded.short.is_some() {
            stats.push(loaded.stat);
        }
        shorts.extend(loaded.short);
        problems.extend(loaded.problems);
    }
    tracing::debug!(parsed, cached = files.len() - parsed, "shorts read");
    if write_cache && cache::worth_saving(newly_valid + cache.left(), shorts.len()) {
        save_cache(config, &shorts, &stats);
    }
    report_duplicate_slugs(&shorts, &mut problems);
    crate::published::resolve_ids(&mut shorts, &Published::load(&config.output_dir));
    report_address_clashes(&shorts, &mut problems);
    report_duplicate_ids(&shorts, &mut problems);
    if problems.is_empty() {
        Ok(Collection::new(config.tracks.clone(), shorts))
    } else {
        Err(problems.sorted())
    }
}

/// One file's load: its short (if valid), its problems, the stat it was
/// read with, and whether it was parsed (not taken from the cache).
struct Loaded {
    short: Option<Short>,
    problems: Problems,
    stat: Option<cache::Stat>,
    parsed: bool,
}

/// Caches the valid `shorts`, each with the stat its file was read with.
fn save_cache(config: &Config, shorts: &[Short], stats: &[Option<cache::Stat>]) {
    let with_stats = stats
        .iter()
        .zip(shorts)
        .filter_map(|(stat, short)| Some((stat.as_ref()?, short)));
    cache::save(config, with_stats);
}

/// The `.md` files directly inside `dir`, sorted by name, and a problem for
/// each `.md` name that is not a readable file (a link to nothing or to
/// itself, a pipe, a device, a folder) or not UTF-8: those would otherwise
/// vanish without a word. Hidden files (editor backups, `.#locks`) and
/// other names are not shorts and are passed over.
fn list_shorts(dir: &Path) -> Result<(Vec<PathBuf>, Problems), Problem> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Problem::new(
            dir,
            None,
            format!("cannot read the shorts folder (expected Markdown files here): {e}"),
        )
    })?;
    let mut files = Vec::new();
    let mut problems = Problems::default();
    for entry in entries {
        let entry = entry
            .map_err(|e| Problem::new(dir, None, format!("cannot list the shorts folder: {e}")))?;
        let path = entry.path();
        let name = entry.file_name();
        let lossy = name.to_string_lossy();
        if lossy.starts_with('.') || !lossy.ends_with(".md") {
            continue;
        }
        match not_a_short_file(&path, name.to_str().is_none()) {
            None => files.push(path),
            Some(why) => problems.push(Problem::new(&path, None, why)),
        }
    }
    files.sort();
    Ok((files, problems))
}

/// Why the `.md` entry at `path` cannot be read as a short, if it cannot.
fn not_a_short_file(path: &Path, name_not_utf8: bool) -> Option<String> {
    if name_not_utf8 {
        return Some(
            "the file name is not UTF-8; rename it (its slug and address come from it)".to_string(),
        );
    }
    let link = path.symlink_metadata().ok()?;
    let target = match std::fs::metadata(path) {
        Ok(target) => target,
        Err(e)
            if link.is_symlink()
                && e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) =>
        {
            return Some("a symbolic link that leads back to itself; point it at a Markdown file or delete it".to_string());
        }
        Err(_) if link.is_symlink() => {
            let to = std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            return Some(format!(
                "a symbolic link to {to}, which does not exist; point it at a Markdown file or delete it"
            ));
        }
        Err(e) => return Some(format!("cannot read it: {e}")),
    };
    let kind = target.file_type();
    use std::os::unix::fs::FileTypeExt as _;
    let what = if kind.is_file() {
        return None;
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Some(format!(
        "is {what}, not a Markdown file; shorts are read only from files"
    ))
}

/// Reads and validates one short; problems go to `problems`.
pub fn load_short(path: &Path, config: &Config, problems: &mut Problems) -> Option<Short> {
    match read_text(path) {
        Ok(text) => parse_short(path, &text, config, problems),
        Err(problem) => {
            problems.push(problem);
            None
        }
    }
}

/// Validates the text of the short at `path`; problems go to `problems`.
pub fn parse_short(
    path: &Path,
    text: &str,
    config: &Config,
    problems: &mut Problems,
) -> Option<Short> {
    let parsed =
        frontmatter::split(text).and_then(|split| Ok((frontmatter::parse(&split)?, split)));
    match parsed {
        Ok((fields, split)) => short::validate(path, &fields, &split, config, problems),
        Err(e) => {
            problems.push(Problem::at(path, e.line, e.message));
            None
        }
    }
}

fn read_text(path: &Path) -> Result<String, Problem> {
    let size = std::fs::metadata(path)
        .map_err(|e| Problem::new(path, None, format!("cannot read: {e}")))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(Problem::new(
            path,
            None,
            format!("the file is {size} bytes; a short must be at most {MAX_FILE_BYTES} bytes"),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| Problem::new(path, None, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = line_of_offset(&String::from_utf8_lossy(&e.as_bytes()[..valid]), valid);
        Problem::at(
            path,
            line,
            format!("the file is not valid UTF-8 (bad byte at offset {valid}); save it as UTF-8"),
        )
    })
}

/// For two files whose names differ only in how their accents are encoded
/// (NFC, NFD): a clash that the eye cannot see.
fn normalisation_hint(a: &Path, b: &Path) -> &'static str {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    match (name(a), name(b)) {
        (Some(a), Some(b)) if a != b && crate::model::nfc(&a) == crate::model::nfc(&b) => {
            " (their file names look the same but encode their accents differently, NFC and NFD; delete one)"
        }
        _ => "",
    }
}

fn report_duplicate_slugs(shorts: &[Short], problems: &mut Problems) {
    let mut first_by_slug: HashMap<&str, &Path> = HashMap::new();
    for short in shorts {
        if let Some(first) = first_by_slug.insert(&short.slug, &short.source) {
            problems.push(Problem::at(
                &short.source,
                1,
                format!(
                    "duplicate slug `{}`: {} has it too; set a different `slug` in one of them{}",
                    short.slug,
                    crate::diagnostics::display_path(first),
                    normalisation_hint(first, &short.source)
                ),
            ));
            first_by_slug.insert(&short.slug, first);
        }
    }
}

/// An alias must be no other short's address: a slug names one page.
fn report_address_clashes(shorts: &[Short], problems: &mut Problems) {
    let by_slug: HashMap<&str, &Path> = shorts
        .iter()
        .map(|s| (s.slug.as_str(), s.source.as_path()))
        .collect();
    let mut first_by_alias: HashMap<&str, &Path> = HashMap::new();
    for short in shorts {
        for alias in &short.aliases {
            let other = by_slug
                .get(alias.as_str())
                .map(|p| (*p, "slug"))
                .or_else(|| first_by_alias.get(alias.as_str()).map(|p| (*p, "alias")));
            match other {
                Some((path, what)) => problems.push(Problem::at(
                    &short.source,
                    1,
                    format!(
                        "alias `{alias}` is also the {what} of {}; an address leads to one short",
                        crate::diagnostics::display_path(path)
                    ),
                )),
                None => {
                    first_by_alias.insert(alias, &short.source);
                }
            }
        }
    }
}

/// Two shorts with one id would be one item to feed readers and the
/// ledger; an id that is another short's slug would make this one's feed
/// id that short's address.
fn report_duplicate_ids(shorts: &[Short], problems: &mut Problems) {
    let by_slug: HashMap<&str, &Short> = shorts.iter().map(|s| (s.slug.as_str(), s)).collect();
    let mut first_by_id: HashMap<&str, &Short> = HashMap::new();
    for short in shorts {
        // An id that is its own slug clashes as a duplicate slug, one that
        // is one of its aliases as that alias does.
        let clash = by_slug
            .get(short.id.as_str())
            .filter(|_| short.id != short.slug && !short.aliases.contains(&short.id));
        if let Some(other) = clash {
            problems.push(Problem::at(
                &short.source,
                1,
                format!(
                    "id `{}` is the slug of {}: a feed would give this short that page's address; set another `id`",
                    short.id,
                    crate::diagnostics::display_path(&other.source)
                ),
            ));
            continue;
        }
        let Some(first) = first_by_id.get(short.id.as_str()) else {
            first_by_id.insert(&short.id, short);
            continue;
        };
        if first.slug == short.slug {
            continue; // reported as a duplicate slug
        }
        let how = |s: &Short| {
            if s.id_is_declared {
                "set in its front matter"
            } else {
                "the slug it was first published under"
            }
        };
        problems.push(Problem::at(
            &short.source,
            1,
            format!(
                "id `{}` ({}) is also the id of {} ({}); set a different `id` in one of them",
                short.id,
                how(short),
                crate::diagnostics::display_path(&first.source),
                how(first)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config() -> Config {
        let text = "[site]\ntitle = \"T\"\ndescription = \"D\"\nbase_url = \"https://example.com/\"\n\
                    timezone = \"Europe/Berlin\"\n[site.author]\nname = \"A\"\n[[tracks]]\nslug = \"llm\"\ntitle = \"L\"\n";
        Config::parse(text, Path::new("/site/config.toml")).expect("test config is valid")
    }

    /// Every outcome is a short or at least one problem, each with a line inside the file.
    fn assert_reported(text: &str) {
        let mut problems = Problems::default();
        let short = parse_short(
            Path::new("/site/content/shorts/x.md"),
            text,
            &config(),
            &mut problems,
        );
        assert!(
            short.is_some() == problems.is_empty(),
            "a short xor problems"
        );
        let lines = text.lines().count().max(1);
        for p in problems.iter() {
            assert!(
                p.line.is_some_and(|l| l >= 1 && l <= lines + 1),
                "{p} (file has {lines} lines)"
            );
        }
    }

    const FIELDS: &[&str] = &[
        "title = \"A <b>&amp; 🚀\"",
        "title = 3",
        "date = 2026-06-07",
        "date = \"2026-02-30\"",
        "date = 1979-05-27T07:32:00-08:00",
        "date = 07:32:00",
        "summary = \"S\"",
        "summary = \"\"",
        "track = \"llm\"",
        "track = \"nope\"",
        "tags = [\"a\", \"\"]",
        "tags = [[1]]",
        "slug = \"x y\"",
        "draft = \"yes\"",
        "updated = 1000-01-01",
        "extra = { a = 1 }",
        "[extra]",
        "title = \"\"\"",
        "= 1",
        "title: A",
        "- x",
        "date: [",
        "tags: {a: b}",
        "\u{0}",
        "+++",
        "---",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*") {
            assert_reported(&text);
        }

        #[test]
        fn front_matter_made_of_real_and_broken_lines_never_panics(
            open in prop::sample::select(vec!["+++", "---", "+++ ", "\u{feff}+++"]),
            lines in prop::collection::vec(prop::sample::select(FIELDS.to_vec()), 0..12),
            close in prop::sample::select(vec!["+++", "---", ""]),
            body in "[ -~\n\\]\\[\\(\\)]{0,80}",
            crlf in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let text = format!("{open}{eol}{}{eol}{close}{eol}{body}", lines.join(eol));
            assert_reported(&text);
        }
    }

    #[test]
    fn deeply_nested_front_matter_is_a_problem_not_a_crash() {
        for depth in [64, 65, 1_000, 1_000_000] {
            assert_reported(&format!("---\nextra: {}\n---\nBody\n", "[".repeat(depth)));
            assert_reported(&format!("+++\nextra = {}\n+++\nBody\n", "[".repeat(depth)));
            assert_reported(&format!(
                "+++\nextra = {}1{}\n+++\nBody\n",
                "[".repeat(depth),
                "]".repeat(depth)
            ));
        }
    }
}
