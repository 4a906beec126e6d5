//! Any bytes as a short's file: the loader returns a short or problems,
//! each problem inside the file, and never panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use shorts::config::Config;
use shorts::diagnostics::Problems;

const CONFIG: &str = "[site]\ntitle = \"T\"\ndescription = \"D\"\nbase_url = \"https://example.com/\"\n\
                      timezone = \"Europe/Berlin\"\n[site.author]\nname = \"A\"\n\
                      [[tracks]]\nslug = \"llm\"\ntitle = \"L\"\n";

fuzz_target!(|bytes: &[u8]| {
    let Ok(config) = Config::parse(CONFIG, Path::new("/site/config.toml")) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return; // the loader refuses non-UTF-8 before parsing, tested in tests/check.rs
    };
    let mut problems = Problems::default();
    let short = shorts::content::parse_short(
        Path::new("/site/content/shorts/fuzz.md"),
        text,
        &config,
        &mut problems,
    );
    assert!(
        short.is_some() == problems.is_empty(),
        "a short xor problems"
    );
    let lines = text.lines().count().max(1) + 1;
    for problem in problems.iter() {
        assert!(
            problem.line.is_none_or(|l| l >= 1 && l <= lines),
            "{problem}"
        );
    }
});
