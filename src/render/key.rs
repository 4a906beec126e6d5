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

use crate::bytes::{Reader, Writer};
use sha2::{Digest as _, Sha256};

/// 128 bits of SHA-256: collisions are out of reach for any site's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 16]);

impl Key {
    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

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
    binary_and_config(&mut hash, config_file);
    hash.folder(templates_dir);
    hash.finish()
}

/// Hashes this binary (its version, size and time) and the config file.
pub fn binary_and_config(hash: &mut KeyHasher, config_file: &Path) {
    hash.text(env!("CARGO_PKG_VERSION"));
    if let Some(binary) = std::env::current_exe().ok().and_then(|p| p.metadata().ok()) {
        hash.text(&format!("{}:{:?}", binary.len(), binary.modified().ok()));
    }
    hash.bytes(&std::fs::read(config_file).unwrap_or_default());
}

/// What a build records of one keyed file: the key it was rendered from,
/// its size, and where in it each spliced feed entry's bytes sit, so the
/// next build can take those bytes instead of writing the entry again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub key: Key,
    pub size: u64,
    pub pieces: Vec<Piece>,
}

/// An entry's bytes in a feed file: `len` bytes from `start`, written from
/// inputs with `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub key: Key,
    pub start: u64,
    pub len: u64,
}

/// What one build recorded of its files, by path below the output folder:
/// every file it wrote, and for the keyed ones what they were rendered from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Keys(HashMap<String, Option<Recorded>>);

/// The first bytes of [`Keys::to_bytes`]; another version's form is not read.
const KEYS_MAGIC: &[u8] = b"shorts keys 2\n";

impl Keys {
    /// The record of the keyed file at `path`.
    pub fn get(&self, path: &str) -> Option<&Recorded> {
        self.0.get(path)?.as_ref()
    }

    /// Notes the file at `path`, with its record if it is keyed.
    pub fn insert(&mut self, path: String, recorded: Option<Recorded>) {
        self.0.insert(path, recorded);
    }

    /// Every file's path.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// Every keyed file's path and record.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Recorded)> {
        self.0
            .iter()
            .filter_map(|(path, r)| Some((path, r.as_ref()?)))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A compact binary form: for each file its path, then for a keyed one
    /// its key, size and pieces.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Writer::default();
        out.raw(KEYS_MAGIC);
        for (path, recorded) in &self.0 {
            out.str(path);
            let Some(recorded) = recorded else {
                out.u8(0);
                continue;
            };
            out.u8(1).raw(&recorded.key.0).u64(recorded.size);
            out.u32(recorded.pieces.len());
            for piece in &recorded.pieces {
                out.raw(&piece.key.0).u64(piece.start).u64(piece.len);
            }
        }
        out.0
    }

    /// Reads [`to_bytes`](Self::to_bytes)'s form, or `None` if anything in
    /// it does not parse.
    pub fn from_bytes(bytes: &[u8]) -> Option<Keys> {
        let mut reader = Reader(bytes);
        if reader.take(KEYS_MAGIC.len())? != KEYS_MAGIC {
            return None;
        }
        let mut keys = Keys::default();
        while !reader.is_empty() {
            let path = reader.string()?;
            let recorded = match reader.u8()? {
                0 => None,
                _ => Some(read_recorded(&mut reader)?),
            };
            keys.insert(path, recorded);
        }
        Some(keys)
    }
}

/// One keyed file's record in [`Keys::to_bytes`]'s form.
fn read_recorded(reader: &mut Reader<'_>) -> Option<Recorded> {
    let key = Key(reader.array()?);
    let size = reader.u64()?;
    let count = reader.u32()?;
    let pieces = (0..count)
        .map(|_| {
            Some(Piece {
                key: Key(reader.array()?),
                start: reader.u64()?,
                len: reader.u64()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Recorded { key, size, pieces })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_their_binary_form_and_damage_is_refused() {
        let key = |text: &str| KeyHasher::new().text(text).finish();
        let mut keys = Keys::default();
        let page = Recorded {
            key: key("a"),
            size: 10,
            pieces: Vec::new(),
        };
        keys.insert("a/index.html".into(), Some(page));
        keys.insert("feed.css".into(), None);
        let piece = Piece {
            key: key("entry"),
            start: 3,
            len: 4,
        };
        let feed = Recorded {
            key: key("b"),
            size: 99,
            pieces: vec![piece, piece],
        };
        keys.insert("b c/rss.xml".into(), Some(feed));
        let bytes = keys.to_bytes();
        assert_eq!(Keys::from_bytes(&bytes), Some(keys));
        assert_eq!(Keys::from_bytes(&bytes[..bytes.len() - 1]), None);
        assert_eq!(Keys::from_bytes(b"shorts keys 0\n"), None);
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
