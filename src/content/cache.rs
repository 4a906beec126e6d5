//! The shorts the last load parsed, kept in the data folder
//! (`content-cache`), so that a load after an edit reads and parses only the
//! files that changed: at 10,000 shorts, parsing is most of a build that
//! changes little.
//!
//! A file is taken from the cache only when its size, inode, and
//! modification and change times are what they were when it was parsed,
//! and it had last changed more than two seconds before the cache was
//! written (an edit within the same tick of the file system's clock would
//! otherwise look unchanged, as git's "racily clean" entries do). The cache
//! holds only for the binary and config file that wrote it, since the
//! config decides permalinks, time zone and tracks.
//!
//! Must not: hold a short that had problems (they are reported on every
//! load), or be needed: a missing, damaged or foreign cache is an empty one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, FixedOffset, TimeZone};

use crate::bytes::{Reader, Writer};
use crate::config::Config;
use crate::model::{Short, Tag};
use crate::render::key::{Key, KeyHasher};

const FILE_NAME: &str = "content-cache";
const MAGIC: &[u8] = b"shorts content cache 2\n";
/// How long before the cache was written a file must have last changed to
/// be trusted by its times.
const SETTLED: Duration = Duration::from_secs(2);

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    size: u64,
    inode: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Stat {
    #[cfg(unix)]
    pub fn of(path: &Path) -> Option<Stat> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Stat {
            size: meta.size(),
            inode: meta.ino(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    pub fn of(_: &Path) -> Option<Stat> {
        None
    }

    /// The later of the modification and change times.
    fn last_change(&self) -> SystemTime {
        let at = |(secs, nanos): (i64, i64)| {
            let secs = Duration::from_secs(secs.max(0).unsigned_abs());
            SystemTime::UNIX_EPOCH + secs + Duration::from_nanos(nanos.max(0).unsigned_abs())
        };
        at(self.modified).max(at(self.changed))
    }

    fn write(&self, out: &mut Writer) {
        out.u64(self.size).u64(self.inode);
        out.i64(self.modified.0).i64(self.modified.1);
        out.i64(self.changed.0).i64(self.changed.1);
    }

    fn read(reader: &mut Reader<'_>) -> Option<Stat> {
        Some(Stat {
            size: reader.u64()?,
            inode: reader.u64()?,
            modified: (reader.i64()?, reader.i64()?),
            changed: (reader.i64()?, reader.i64()?),
        })
    }
}

/// The shorts of the last load, by file.
pub struct Cache {
    entries: Mutex<HashMap<PathBuf, (Stat, Short)>>,
    /// When the cache file was written; entries changed after
    /// `written - SETTLED` are not trusted.
    written: SystemTime,
}

impl Cache {
    /// The cache `config`'s build left, or an empty one.
    pub fn open(config: &Config) -> Cache {
        let file = config.data_dir().join(FILE_NAME);
        let written = std::fs::metadata(&file).and_then(|m| m.modified());
        let entries = match (written.is_ok(), std::fs::read(&file)) {
            (true, Ok(bytes)) => read_entries(&bytes, &validity(config)).unwrap_or_default(),
            _ => HashMap::new(),
        };
        Cache {
            entries: Mutex::new(entries),
            written: written.unwrap_or(SystemTime::UNIX_EPOCH),
        }
    }

    /// How many cached shorts were not taken: files deleted or changed.
    pub fn left(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The short parsed from `path` when it was exactly as `stat` says now.
    pub fn take(&self, path: &Path, stat: &Stat) -> Option<Short> {
        let settled = stat.last_change() + SETTLED < self.written;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (cached, _) = entries.get(path)?;
        if cached != stat || !settled {
            return None;
        }
        entries.remove(path).map(|(_, short)| short)
    }
}

/// Whether a cache that misses `stale` of `total` shorts is worth writing
/// again. A few edited files cost microseconds each to parse again, while
/// writing the cache of 10,000 shorts costs tens of milliseconds: an edit
/// does not rewrite it, a few dozen do.
pub fn worth_saving(stale: usize, total: usize) -> bool {
    stale > 0 && (stale >= 32 || stale * 100 >= total)
}

/// Writes the cache of `shorts`, each with the stat its file had when it
/// was read. A failure only costs the next load its speed, so it is logged.
pub fn save<'s>(config: &Config, shorts: impl Iterator<Item = (&'s Stat, &'s Short)>) {
    let file = config.data_dir().join(FILE_NAME);
    let written = crate::private::replace_file(&file, |handle| {
        write_entries(handle, validity(config), shorts)
    });
    if let Err(e) = written {
        tracing::warn!(file = %file.display(), "could not write the content cache: {e}");
    }
}

/// Writes the cache a megabyte at a time: at 100,000 shorts it is some
/// 360 MB, which a build should not hold beside the shorts themselves.
fn write_entries<'s>(
    mut file: std::fs::File,
    validity: Key,
    shorts: impl Iterator<Item = (&'s Stat, &'s Short)>,
) -> std::io::Result<()> {
    use std::io::Write as _;
    const FLUSH_AT: usize = 1 << 20;
    let mut out = Writer::default();
    out.raw(MAGIC).raw(validity.bytes());
    for (stat, short) in shorts {
        stat.write(&mut out);
        write_short(&mut out, short);
        if out.0.len() >= FLUSH_AT {
            file.write_all(&out.0)?;
            out.0.clear();
        }
    }
    file.write_all(&out.0)
}

/// What a cache holds for: this binary and this config file.
fn validity(config: &Config) -> Key {
    let mut hash = KeyHasher::new();
    crate::render::key::binary_and_config(&mut hash, &config.path);
    hash.finish()
}

fn read_entries(bytes: &[u8], validity: &Key) -> Option<HashMap<PathBuf, (Stat, Short)>> {
    let mut reader = Reader(bytes);
    if reader.take(MAGIC.len())? != MAGIC || reader.take(16)? != validity.bytes() {
        return None;
    }
    let mut entries = HashMap::new();
    while !reader.is_empty() {
        let stat = Stat::read(&mut reader)?;
        let short = read_short(&mut reader)?;
        entries.insert(short.source.clone(), (stat, short));
    }
    Some(entries)
}

fn write_short(out: &mut Writer, short: &Short) {
    let Short {
        slug,
        id,
        id_is_declared,
        aliases,
        title,
        summary,
        date,
        updated,
        track,
        tags,
        draft,
        body_html,
        reading_minutes,
        permalink,
        source,
    } = short;
    out.bytes(source.as_os_str().as_encoded_bytes());
    out.str(slug).str(title).str(summary).str(track);
    write_date(out, date);
    match updated {
        Some(updated) => write_date(out.u8(1), updated),
        None => {
            out.u8(0);
        }
    }
    out.u32(tags.len());
    for tag in tags {
        out.str(&tag.slug).str(&tag.name);
    }
    out.u8(u8::from(*draft))
        .str(body_html)
        .u32(*reading_minutes as usize);
    out.str(permalink);
    out.str(id).u8(u8::from(*id_is_declared)).u32(aliases.len());
    for alias in aliases {
        out.str(alias);
    }
}

fn read_short(reader: &mut Reader<'_>) -> Option<Short> {
    let source = path_from_bytes(reader.bytes()?)?;
    let (slug, title, summary, track) = (
        reader.string()?,
        reader.string()?,
        reader.string()?,
        reader.string()?,
    );
    let date = read_date(reader)?;
    let updated = match reader.u8()? {
        0 => None,
        _ => Some(read_date(reader)?),
    };
    let tags = (0..reader.u32()?)
        .map(|_| {
            Some(Tag {
                slug: reader.string()?,
                name: reader.string()?,
            })
        })
        .collect::<Option<_>>()?;
    Some(Short {
        draft: reader.u8()? != 0,
        body_html: reader.string()?,
        reading_minutes: u32::try_from(reader.u32()?).ok()?,
        permalink: reader.string()?,
        id: reader.string()?,
        id_is_declared: reader.u8()? != 0,
        aliases: (0..reader.u32()?)
            .map(|_| reader.string())
            .collect::<Option<_>>()?,
        source,
        slug,
        title,
        summary,
        date,
        updated,
        track,
        tags,
    })
}

#[cfg(unix)]
fn path_from_bytes(bytes: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: &[u8]) -> Option<PathBuf> {
    std::str::from_utf8(bytes).ok().map(PathBuf::from)
}

fn write_date(out: &mut Writer, date: &DateTime<FixedOffset>) {
    out.i64(date.timestamp())
        .u32(date.timestamp_subsec_nanos() as usize);
    out.i64(i64::from(date.offset().local_minus_utc()));
}

fn read_date(reader: &mut Reader<'_>) -> Option<DateTime<FixedOffset>> {
    let (secs, nanos) = (reader.i64()?, u32::try_from(reader.u32()?).ok()?);
    let offset = FixedOffset::east_opt(i32::try_from(reader.i64()?).ok()?)?;
    offset.timestamp_opt(secs, nanos).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_written_again_only_when_it_misses_many() {
        assert!(!worth_saving(0, 10));
        assert!(worth_saving(1, 10), "a tenth of a small site");
        assert!(!worth_saving(1, 10_000), "one edit at 10,000");
        assert!(!worth_saving(31, 10_000));
        assert!(worth_saving(32, 10_000));
        assert!(worth_saving(10_000, 10_000), "a first build");
    }

    #[test]
    fn a_short_survives_the_cache_form() {
        let date = DateTime::parse_from_rfc3339("2026-05-01T10:00:00+02:00").expect("date");
        let mut short = Short::sample("a-short", "llm", date);
        short.updated = Some(date + chrono::Duration::days(3));
        short.tags = vec![Tag {
            slug: "kv-cache".into(),
            name: "KV cache".into(),
        }];
        short.body_html = "<p>Body ü</p>".into();
        short.source = PathBuf::from("/site/content/shorts/a-short.md");
        let mut out = Writer::default();
        write_short(&mut out, &short);
        let back = read_short(&mut Reader(&out.0)).expect("reads back");
        assert_eq!(format!("{back:?}"), format!("{short:?}"));
        assert!(read_short(&mut Reader(&out.0[..out.0.len() - 2])).is_none());
    }
}
