//! What an output file is made from, as a hash: its *key*. Two renders with
//! the same key give the same bytes, so a build renders a file again only
//! when its key differs from the one the last build recorded for it.
//!
//! A key hashes exactly what its renderer reads: a page's key is the hash of
//! the values its template is given (the same `Serialize` values the context
//! is made from), a feed's the hash of its own texts and its entries', each
//! under the [`build key`](build_key) (this binary, the config file, the
//! site's templates), so a new binary, a config edit or a template edit
//! renders everything again. Nothing here decides what to render; callers
//! compare keys with what the output module recorded.
//!
//! Must not: read the content or the output folder, or know any page.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// 128 bits of SHA-256: collisions are out of reach for any site's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 16]);

/// SHA-256 over length-prefixed parts, so no two different inputs run together.
#[derive(Default, Clone)]
pub struct KeyHasher(Sha256);

impl KeyHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub fn text(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    pub fn key(&mut self, key: &Key) -> &mut Self {
        self.0.update(key.0);
        self
    }

    /// `value` as its JSON, the form templates see it in. Serialising into
    /// the hash cannot fail for the plain data given here; if it ever did,
    /// the failure is hashed too, so the file renders again (and the render
    /// reports it).
    pub fn serde<T: Serialize + ?Sized>(&mut self, value: &T) -> &mut Self {
        let mut writer = HashWriter(&mut self.0);
        if serde_json::to_writer(&mut writer, value).is_err() {
            self.0.update(b"\0unserialisable");
        }
        self.0.update(b"\0");
        self
    }

    /// The names and contents of the files directly in `dir`, if it exists.
    pub fn folder(&mut self, dir: &Path) -> &mut Self {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .collect();
        files.sort();
        for file in files {
            self.text(&file.to_string_lossy());
            self.bytes(&std::fs::read(&file).unwrap_or_default());
        }
        self
    }

    pub fn finish(&self) -> Key {
        let digest = self.0.clone().finalize();
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        Key(key)
    }

    /// The whole hash as hex, for the build's inputs stamp.
    pub fn finish_hex(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

struct HashWriter<'h>(&'h mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What every file is rendered under: this binary, the config file and the
/// site's templates folder. Content is not in it; each file's own key adds
/// what it shows.
pub fn build_key(config_file: &Path, templates_dir: &Path) -> Key {
    let mut hash = KeyHasher::new();
    hash.text(env!("CARGO_PKG_VERSION"));
    if let Some(binary) = std::env::current_exe().ok().and_then(|p| p.metadata().ok()) {
        hash.text(&format!("{}:{:?}", binary.len(), binary.modified().ok()));
    }
    hash.bytes(&std::fs::read(config_file).unwrap_or_default());
    hash.folder(templates_dir);
    hash.finish()
}

/// The key each file of one build was rendered from, by its path below the
/// output folder.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Keys(HashMap<String, Key>);

impl Keys {
    pub fn get(&self, path: &str) -> Option<&Key> {
        self.0.get(path)
    }

    pub fn insert(&mut self, path: String, key: Key) {
        self.0.insert(path, key);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One line per file: the key in hex, a space, the path. A path with a
    /// line break is left out (its file is then always rendered).
    pub fn to_text(&self) -> String {
        let mut lines: Vec<String> = self
            .0
            .iter()
            .filter(|(path, _)| !path.contains(['\n', '\r']))
            .map(|(path, key)| format!("{} {path}\n", hex(&key.0)))
            .collect();
        lines.sort_unstable();
        lines.concat()
    }

    /// Reads [`to_text`](Self::to_text)'s form; a line that does not parse
    /// is left out, so its file is rendered again.
    pub fn from_text(text: &str) -> Keys {
        let parse = |line: &str| {
            let (hex_key, path) = line.split_once(' ')?;
            Some((path.to_string(), Key(unhex(hex_key)?)))
        };
        Keys(text.lines().filter_map(parse).collect())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 16]> {
    let mut out = [0; 16];
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_their_text_form_and_a_bad_line_is_dropped() {
        let mut keys = Keys::default();
        keys.insert("a/index.html".into(), KeyHasher::new().text("a").finish());
        keys.insert("b c/rss.xml".into(), KeyHasher::new().text("b").finish());
        let text = keys.to_text();
        assert_eq!(Keys::from_text(&text), keys);
        let damaged = format!("zz {}\n{text}", "x/index.html");
        assert_eq!(Keys::from_text(&damaged), keys);
    }

    #[test]
    fn parts_do_not_run_together() {
        let ab_c = KeyHasher::new().text("ab").text("c").finish();
        let a_bc = KeyHasher::new().text("a").text("bc").finish();
        assert_ne!(ab_c, a_bc);
        let one = KeyHasher::new().serde(&("a", 1)).finish();
        let other = KeyHasher::new().serde(&("a", 2)).finish();
        assert_ne!(one, other);
    }
}
