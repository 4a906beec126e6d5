//! Any bytes as a subscriber CSV: the import adds what is valid, reports the
//! rest by line, and never panics; importing the same file again changes nothing.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use shorts::config::Config;
use shorts::store::Store;

const CONFIG: &str = "[site]\ntitle = \"T\"\ndescription = \"D\"\nbase_url = \"https://example.com/\"\n\
                      [site.author]\nname = \"A\"\n\
                      [[tracks]]\nslug = \"llm\"\ntitle = \"L\"\n[[tracks]]\nslug = \"ts\"\ntitle = \"T\"\n";

fuzz_target!(|bytes: &[u8]| {
    let (Ok(config), Ok(store), Ok(dir)) = (
        Config::parse(CONFIG, Path::new("/site/config.toml")),
        Store::in_memory(),
        std::env::temp_dir().canonicalize(),
    ) else {
        return;
    };
    let file = dir.join(format!("shorts-fuzz-{}.csv", std::process::id()));
    if std::fs::write(&file, bytes).is_err() {
        return;
    }
    let now = chrono::DateTime::UNIX_EPOCH;
    if let Ok(first) = shorts::subscribers::import(&store, &config, &file, now) {
        let again = shorts::subscribers::import(&store, &config, &file, now)
            .expect("a file imported once imports again");
        assert_eq!(again.added, 0, "re-import adds nothing");
        assert_eq!(again.updated, 0, "re-import changes nothing");
        assert!(first.problems.len() == again.problems.len());
    }
});
