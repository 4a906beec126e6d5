//! What the live generation of `public/` holds, remembered while it is
//! live: for each request path, the file it names, its size and time (the
//! validators) and, for small files, its bytes.
//!
//! A generation never changes once a build has pointed `public` at it
//! (`output.rs` writes the next one beside it and switches the link with
//! one `rename`), so an answer stays right for as long as the link does.
//! One `lstat` of the link a request tells whether it does: a switch makes
//! a new link, and everything remembered is dropped. A `public` that is a
//! plain folder, not a link, is never cached, since its files may change
//! in place. Paths that name nothing are not remembered, so the memory
//! grows with the site, not with what clients ask for; it is capped too.
//!
//! Must not: decide which paths may be served (`static_files::resolve`) or
//! how a file is answered (`static_files::serve_file`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::UNIX_EPOCH;

use axum::body::Bytes;
use tokio::sync::OnceCell;

use super::encoding::Encoding;

use super::static_files::{self, FileHeaders, Resolved};
use crate::paths;
use crate::published::Published;

/// Files up to this size are kept in memory and read on the async worker:
/// from the page cache that takes microseconds, where a hop to the
/// blocking pool costs more than the read. Larger files are streamed.
pub const KEPT_IN_MEMORY: u64 = 256 * 1024;
/// At most this many bytes of files are kept, whatever the site's size.
const MEMORY_BUDGET: usize = 64 * 1024 * 1024;
/// At most this many paths are remembered (each names a file or folder of
/// the site: spellings share one entry, and missing paths none).
const MAX_PATHS: usize = 100_000;

/// What a request path names in the live generation.
#[derive(Clone)]
pub enum Found {
    File(Arc<LiveFile>),
    /// A folder asked for without its trailing slash.
    AddSlash,
    /// An earlier slug of the short now at this slug (its `aliases`).
    Moved(String),
}

/// A file of the live generation, as it is answered.
pub struct LiveFile {
    /// Where it really is (symbolic links resolved).
    pub path: PathBuf,
    pub len: u64,
    /// Its validators, type and length, as sent.
    pub headers: FileHeaders,
    /// Its bytes when it is small; a large file is read as it is sent.
    pub bytes: Option<Bytes>,
    /// For an XML feed, the page a browser opening it is shown
    /// (`feed.html` beside it), if the build wrote one.
    pub page: Option<Arc<LiveFile>>,
    /// Its compressed copies, by [`Encoding::index`], made on first use.
    /// They are not counted in the memory budget: text compresses to a
    /// quarter or less, so they add at most half of it.
    copies: [OnceCell<Option<Bytes>>; 2],
}

impl LiveFile {
    fn read(
        path: PathBuf,
        may_keep: bool,
        page: Option<Arc<LiveFile>>,
    ) -> std::io::Result<LiveFile> {
        let metadata = std::fs::metadata(&path)?;
        let modified = metadata.modified().unwrap_or(UNIX_EPOCH);
        let bytes = if metadata.len() > KEPT_IN_MEMORY || !may_keep {
            None
        } else {
            Some(Bytes::from(std::fs::read(&path)?))
        };
        let len = bytes.as_ref().map_or(metadata.len(), |b| b.len() as u64);
        Ok(LiveFile {
            headers: FileHeaders::of(&path, len, modified),
            len,
            path,
            bytes,
            page,
            copies: Default::default(),
        })
    }

    /// Its bytes in `encoding`, compressed on first use (off the async
    /// workers); `None` for a file not kept in memory, or when the copy
    /// would not be smaller.
    pub async fn compressed(&self, encoding: Encoding) -> Option<Bytes> {
        let bytes = self.bytes.clone()?;
        let compress = || async move {
            let original = bytes.len();
            tokio::task::spawn_blocking(move || encoding.compress(&bytes))
                .await
                .ok()
                .flatten()
                .filter(|copy| copy.len() < original)
                .map(Bytes::from)
        };
        self.copies[encoding.index()]
            .get_or_init(compress)
            .await
            .clone()
    }
}

/// Which link `public` is: a new one after every switch. The time is kept
/// with the inode because a freed inode number is given out again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct LinkId {
    dev: u64,
    ino: u64,
    changed_ns: i128,
}

/// Where `public` is looked up from: its folder, kept open so that a
/// request looks up one name, not the whole path.
struct LinkFolder {
    #[cfg(unix)]
    folder: Option<std::fs::File>,
    name: PathBuf,
    path: PathBuf,
}

impl LinkFolder {
    fn of(root: &Path) -> LinkFolder {
        let parent = match root.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        LinkFolder {
            #[cfg(unix)]
            folder: std::fs::File::open(parent).ok(),
            name: root.file_name().map(PathBuf::from).unwrap_or_default(),
            path: root.to_path_buf(),
        }
    }

    #[cfg(unix)]
    fn link_id(&self) -> Option<LinkId> {
        use rustix::fs::{AtFlags, FileType, statat};
        let Some(folder) = &self.folder else {
            return None;
        };
        let stat = statat(folder, &self.name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        (FileType::from_raw_mode(stat.st_mode as _) == FileType::Symlink).then(|| LinkId {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
            changed_ns: i128::from(stat.st_ctime as i64) * 1_000_000_000
                + i128::from(stat.st_ctime_nsec as i64),
        })
    }

    #[cfg(not(unix))]
    fn link_id(&self) -> Option<LinkId> {
        None
    }
}

struct Generation {
    link: LinkId,
    /// The generation's folder, symbolic links resolved.
    root: PathBuf,
    /// The addresses the generation answers for, and which are aliases.
    published: Arc<Published>,
    paths: HashMap<Box<str>, Found>,
    bytes_kept: usize,
}

pub struct FileCache {
    link: LinkFolder,
    live: RwLock<Option<Generation>>,
}

impl FileCache {
    /// The cache of the output folder `root`.
    pub fn of(root: &Path) -> FileCache {
        FileCache {
            link: LinkFolder::of(root),
            live: RwLock::new(None),
        }
    }

    /// What `request_path` names in the output folder, if it may be served.
    /// Answers are remembered by the path's [`static_files::normal_form`],
    /// so however many ways a client spells a path, it is one entry.
    pub fn lookup(&self, request_path: &str) -> Option<Found> {
        let normal = static_files::normal_form(request_path)?;
        let root = self.link.path.as_path();
        let Some(link) = self.link.link_id() else {
            let real_root = root.canonicalize().ok()?;
            let published = Published::load(&real_root);
            return found(root, &real_root, &published, &normal, true);
        };
        if let Some(found) = self.remembered(link, &normal) {
            return Some(found);
        }
        let (real_root, published, may_keep) = self.live_root(link, root)?;
        let found = found(root, &real_root, &published, &normal, may_keep)?;
        self.remember(link, normal, &found);
        Some(found)
    }

    fn remembered(&self, link: LinkId, normal: &str) -> Option<Found> {
        let live = self.live.read().unwrap_or_else(|p| p.into_inner());
        let generation = live.as_ref().filter(|g| g.link == link)?;
        generation.paths.get(normal).cloned()
    }

    /// The live generation's folder, its record of addresses, and whether
    /// there is room to keep another file's bytes; a new link starts a new
    /// generation.
    fn live_root(&self, link: LinkId, root: &Path) -> Option<(PathBuf, Arc<Published>, bool)> {
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        if let Some(generation) = live.as_ref().filter(|g| g.link == link) {
            return Some((
                generation.root.clone(),
                Arc::clone(&generation.published),
                generation.bytes_kept < MEMORY_BUDGET,
            ));
        }
        let real_root = root.canonicalize().ok()?;
        let published = Arc::new(Published::load(&real_root));
        *live = Some(Generation {
            link,
            root: real_root.clone(),
            published: Arc::clone(&published),
            paths: HashMap::new(),
            bytes_kept: 0,
        });
        Some((real_root, published, true))
    }

    fn remember(&self, link: LinkId, normal: String, found: &Found) {
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        let Some(generation) = live.as_mut().filter(|g| g.link == link) else {
            return;
        };
        if generation.paths.len() >= MAX_PATHS {
            return;
        }
        if let Found::File(file) = found {
            generation.bytes_kept += file.bytes.as_ref().map_or(0, Bytes::len);
        }
        generation.paths.insert(normal.into(), found.clone());
    }
}

fn found(
    root: &Path,
    real_root: &Path,
    published: &Published,
    normal: &str,
    may_keep: bool,
) -> Option<Found> {
    if let Some(target) = moved_short(published, normal) {
        return Some(Found::Moved(target.to_string()));
    }
    match static_files::resolve(root, real_root, normal)? {
        Resolved::File(path) => {
            let page = static_files::feed_page(&path, real_root)
                .and_then(|page| LiveFile::read(page, may_keep, None).ok())
                .map(Arc::new);
            let file = LiveFile::read(path, may_keep, page).ok()?;
            Some(Found::File(Arc::new(file)))
        }
        Resolved::AddSlash => Some(Found::AddSlash),
    }
}

/// The slug a short's page at `normal` (`shorts/<slug>/`, with or
/// without `index.html` or the slash) moved to, if `<slug>` is an alias.
fn moved_short<'p>(published: &'p Published, normal: &str) -> Option<&'p str> {
    let rest = normal.strip_prefix(paths::INDEX)?;
    let slug = rest
        .strip_suffix("/index.html")
        .or_else(|| rest.strip_suffix('/'))
        .unwrap_or(rest);
    published.redirect(slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn switch(site: &Path, generation: &str) {
        let next = site.join("public.next");
        std::os::unix::fs::symlink(site.join(generation), &next).unwrap();
        std::fs::rename(&next, site.join("public")).unwrap();
    }

    fn text(found: Option<Found>) -> String {
        match found {
            Some(Found::File(file)) => {
                String::from_utf8(file.bytes.as_ref().unwrap().to_vec()).unwrap()
            }
            Some(Found::AddSlash) => "add a slash".into(),
            Some(Found::Moved(slug)) => format!("moved to {slug}"),
            None => "nothing".into(),
        }
    }

    #[test]
    fn a_switched_link_is_served_at_once_and_a_plain_folder_is_never_cached() {
        let site = tempfile::tempdir().unwrap();
        for (generation, body) in [("1", "one"), ("2", "two")] {
            std::fs::create_dir_all(site.path().join(generation).join("shorts")).unwrap();
            std::fs::write(site.path().join(generation).join("rss.xml"), body).unwrap();
        }
        let public = site.path().join("public");
        let cache = FileCache::of(&public);
        switch(site.path(), "1");
        assert_eq!(text(cache.lookup("/rss.xml")), "one");
        assert_eq!(text(cache.lookup("/rss.xml")), "one");
        assert_eq!(text(cache.lookup("/shorts")), "nothing");
        // However a client spells a path, it is one entry.
        for spelling in ["//rss.xml", "/r%73s.xml", "/%72ss.xml", "///r%73s%2Exml"] {
            assert_eq!(text(cache.lookup(spelling)), "one", "{spelling}");
        }
        let entries = |cache: &FileCache| {
            cache
                .live
                .read()
                .unwrap()
                .as_ref()
                .map_or(0, |g| g.paths.len())
        };
        assert_eq!(entries(&cache), 1, "every spelling of rss.xml is one entry");
        assert_eq!(text(cache.lookup("/missing.xml")), "nothing");
        assert_eq!(entries(&cache), 1, "a missing path is not remembered");
        switch(site.path(), "2");
        assert_eq!(text(cache.lookup("/rss.xml")), "two");
        // Back to the first, rewritten meanwhile (as a reused generation
        // would be): the new link is a new generation.
        std::fs::write(site.path().join("1/rss.xml"), "one, again").unwrap();
        switch(site.path(), "1");
        assert_eq!(text(cache.lookup("/rss.xml")), "one, again");

        std::fs::remove_file(&public).unwrap();
        std::fs::create_dir_all(&public).unwrap();
        std::fs::write(public.join("rss.xml"), "plain").unwrap();
        assert_eq!(text(cache.lookup("/rss.xml")), "plain");
        std::fs::write(public.join("rss.xml"), "plain, edited").unwrap();
        assert_eq!(text(cache.lookup("/rss.xml")), "plain, edited");
    }

    #[test]
    fn large_files_are_not_kept() {
        let site = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(site.path().join("1")).unwrap();
        let large = vec![b'x'; KEPT_IN_MEMORY as usize + 1];
        std::fs::write(site.path().join("1/big.txt"), &large).unwrap();
        switch(site.path(), "1");
        let cache = FileCache::of(&site.path().join("public"));
        let Some(Found::File(file)) = cache.lookup("/big.txt") else {
            panic!("big.txt is served");
        };
        assert!(file.bytes.is_none());
        assert_eq!(file.len, large.len() as u64);
    }
}
