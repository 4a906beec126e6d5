//! Writing the rendered site into the output folder, so that readers and
//! static servers only ever see a whole site: the old one or the new one.
//!
//! The output folder (`public`) is a symbolic link to one *generation*, a
//! folder in `.public.generations/` beside it. A build that changes anything
//! brings the generation before the live one up to date in place (changed
//! files written beside their place and renamed over it; unchanged ones
//! hard-linked from the live generation where they are not already the same
//! file, so they keep their modification time, which `Last-Modified` is
//! served from; files it did not render removed), syncs it to disk, then
//! points the link at it with one atomic `rename`. That costs what changed
//! since the build before last, not the whole site: no folder is made again
//! for every page. The first build after a fresh start writes a new
//! generation whole. A build killed at any moment leaves the link on the
//! live, complete generation; the one it was updating is not served, and a
//! failed update removes it, so the next build starts that one afresh. A
//! build that changes nothing writes nothing. The generation just replaced
//! is kept for requests still reading it; older ones and those of crashed
//! builds are removed.
//!
//! Owns the folder: files it did not render are left out of the next
//! generation, so a deleted tag's feeds disappear.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use crate::render::{Chunk, Earlier, Key, Keys, LiveRange, Output, OutputFile, Piece, Recorded};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Of the unchanged, how many were not even rendered: the last build
    /// made them from the same inputs.
    pub kept: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("{action} {path}: {source}")]
pub struct OutputError {
    action: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

fn io_error<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl FnOnce(std::io::Error) -> OutputError + 'p {
    move |source| OutputError {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// How many files the live generation has, if it was built from inputs
/// with this `stamp` and still has as many files as that build wrote; then
/// a build can skip rendering altogether.
pub fn current_files(dir: &Path, stamp: &str) -> Option<usize> {
    let live = live_folder(dir)?;
    let recorded = fs::read_to_string(stamp_file(&live)?).ok()?;
    let (recorded_stamp, count) = recorded.trim_end().split_once(' ')?;
    let count: usize = count.parse().ok()?;
    if recorded_stamp != stamp {
        return None;
    }
    // The list of files beside the generation saves walking its folders.
    let listed = LiveKeys::load(dir);
    let all_there = match listed.listed {
        true => listed.keys.len() == count && listed.keys.paths().all(|p| listed.has(p)),
        false => list_files(&live).ok()?.len() == count,
    };
    all_there.then_some(count)
}

/// `.public.generations/<n>.stamp` for generation `<n>`: beside it, not in
/// it, so the site holds only what was rendered.
fn stamp_file(generation: &Path) -> Option<PathBuf> {
    record_file(generation, "stamp")
}

/// `.public.generations/<n>.keys`: the key each file of generation `<n>`
/// was rendered from.
fn keys_file(generation: &Path) -> Option<PathBuf> {
    record_file(generation, "keys")
}

fn record_file(generation: &Path, extension: &str) -> Option<PathBuf> {
    let name = generation.file_name()?.to_string_lossy();
    Some(generation.with_file_name(format!("{name}.{extension}")))
}

/// What the live generation's build recorded of its files (keys, and where
/// each feed entry sits), so a build can keep a file instead of rendering
/// it again, and take an entry's bytes from a feed instead of writing it.
pub struct LiveKeys {
    live: PathBuf,
    keys: Keys,
    /// Whether `keys` lists every file of the live generation (its keys
    /// file was there and whole).
    listed: bool,
    /// Where each piece is (in every file that holds it), by its key; made
    /// on first use, since only a build that writes a feed needs it.
    pieces: OnceLock<PieceIndex>,
    /// Live files open for reading pieces.
    open: Mutex<HashMap<String, Arc<fs::File>>>,
}

/// Every file a feed piece is in, and where, by the piece's key.
type PieceIndex = HashMap<Key, Vec<(Arc<str>, Piece)>>;

impl LiveKeys {
    /// The live generation's keys, or none (everything is rendered).
    pub fn load(dir: &Path) -> LiveKeys {
        let live = live_folder(dir).filter(|_| dir.is_symlink());
        let keys = live.as_deref().and_then(read_keys);
        LiveKeys {
            live: live.unwrap_or_default(),
            listed: keys.is_some(),
            keys: keys.unwrap_or_default(),
            pieces: OnceLock::new(),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the live generation has a file at `path`.
    fn has(&self, path: &str) -> bool {
        safe_relative(path).is_some_and(|relative| {
            fs::symlink_metadata(self.live.join(relative)).is_ok_and(|m| m.is_file())
        })
    }

    /// The live file at `path`, if the build that wrote it recorded it and
    /// it still has the size recorded.
    fn file(&self, path: &str) -> Option<(&Recorded, PathBuf)> {
        let recorded = self.keys.get(path)?;
        let file = self.live.join(safe_relative(path)?);
        let meta = fs::symlink_metadata(&file).ok()?;
        (meta.is_file() && meta.len() == recorded.size).then_some((recorded, file))
    }

    fn piece_index(&self) -> &PieceIndex {
        self.pieces.get_or_init(|| {
            let mut index = PieceIndex::new();
            for (path, recorded) in self.keys.iter() {
                let path: Arc<str> = Arc::from(path.as_str());
                for piece in &recorded.pieces {
                    index
                        .entry(piece.key)
                        .or_default()
                        .push((Arc::clone(&path), *piece));
                }
            }
            index
        })
    }

    fn open(&self, path: &str) -> Option<Arc<fs::File>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = open.get(path) {
            return Some(Arc::clone(file));
        }
        let (_, file) = self.file(path)?;
        let file = Arc::new(fs::File::open(file).ok()?);
        open.insert(path.to_string(), Arc::clone(&file));
        Some(file)
    }
}

impl Earlier for LiveKeys {
    fn is_current(&self, path: &str, key: &Key) -> bool {
        self.file(path)
            .is_some_and(|(recorded, _)| recorded.key == *key)
    }

    fn piece(&self, key: &Key, near: &str) -> Option<LiveRange> {
        let places = self.piece_index().get(key)?;
        let (path, piece) = places
            .iter()
            .find(|(path, _)| &**path == near)
            .or_else(|| places.first())?;
        Some(LiveRange {
            file: self.open(path)?,
            start: piece.start,
            len: piece.len,
        })
    }
}

impl Output {
    /// The file with its bytes whole (ranges of live files read), for
    /// tools and tests that look at the output; `None` for a kept file.
    pub fn into_file(self) -> Result<Option<OutputFile>, OutputError> {
        Ok(match self {
            Output::Rendered(file, _) => Some(file),
            Output::Assembled { path, chunks, .. } => {
                let mut bytes = Vec::new();
                for chunk in chunks {
                    match chunk {
                        Chunk::Own(own) => bytes.extend_from_slice(&own),
                        Chunk::Live(range) => bytes.extend(
                            range
                                .read()
                                .map_err(io_error("reading", Path::new(&path)))?,
                        ),
                    }
                }
                Some(OutputFile { path, bytes })
            }
            Output::Kept { .. } => None,
        })
    }
}

impl LiveRange {
    /// The range's bytes.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        let len = usize::try_from(self.len).map_err(std::io::Error::other)?;
        let mut bytes = vec![0; len];
        read_exact_at(&self.file, &mut bytes, self.start)?;
        Ok(bytes)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &fs::File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

#[cfg(not(unix))]
fn read_exact_at(_: &fs::File, _: &mut [u8], _: u64) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// What the build of `generation` recorded of its files, if that is there
/// and whole.
fn read_keys(generation: &Path) -> Option<Keys> {
    Keys::from_bytes(&fs::read(keys_file(generation)?).ok()?)
}

/// Records the key each file of `generation` was rendered from, before the
/// switch to it (so keys never vouch for a generation not yet whole).
fn record_keys(generation: &Path, keys: &Keys) -> Result<(), OutputError> {
    let Some(file) = keys_file(generation) else {
        return Ok(());
    };
    let next = file.with_extension("keys.next");
    fs::write(&next, keys.to_bytes()).map_err(io_error("writing", &next))?;
    fs::rename(&next, &file).map_err(io_error("writing", &file))
}

/// Records which inputs `generation`, holding `count` files, was built from.
/// Written after the generation is complete, so a stamp never vouches for a
/// half-written one.
fn record_stamp(generation: &Path, stamp: &str, count: usize) -> Result<(), OutputError> {
    let Some(file) = stamp_file(generation) else {
        return Ok(());
    };
    let next = file.with_extension("stamp.next");
    fs::write(&next, format!("{stamp} {count}\n")).map_err(io_error("writing", &next))?;
    fs::rename(&next, &file).map_err(io_error("writing", &file))
}

/// A build's output on its way in. Files arrive from any thread while the
/// rest are still rendering, and are compared with the live site at once:
/// an unchanged file is only noted (linked at the end), a changed one is
/// written into the new generation, which is created with the first change.
/// Nothing is switched until [`finish`](Self::finish); dropped unfinished
/// (a render failed), the partial generation is removed and the live site
/// stays as it was.
pub struct NextGeneration {
    dir: PathBuf,
    live: Option<PathBuf>,
    /// The generation before the live one, brought up to date in place
    /// instead of writing a new one, when there is one.
    reused: Option<PathBuf>,
    /// The files `reused` holds, as its build recorded them.
    reused_files: Option<Vec<PathBuf>>,
    generations: PathBuf,
    folder: OnceLock<Result<PathBuf, String>>,
    tally: Mutex<Tally>,
    finished: bool,
    /// What the live generation's build recorded, for renderers to keep
    /// files and take feed pieces from.
    earlier: LiveKeys,
}

#[derive(Default)]
struct Tally {
    paths: HashSet<PathBuf>,
    unchanged: Vec<PathBuf>,
    written: Vec<PathBuf>,
    keys: Keys,
    kept: usize,
}

impl NextGeneration {
    pub fn begin(dir: &Path) -> Self {
        let live = live_folder(dir);
        let generations = generations_folder(dir);
        let reused = live
            .as_deref()
            .filter(|_| dir.is_symlink())
            .and_then(|live| previous_generation(&generations, live));
        let reused_files = reused
            .as_deref()
            .and_then(read_keys)
            .map(|keys| keys.paths().map(PathBuf::from).collect());
        NextGeneration {
            dir: dir.to_path_buf(),
            live,
            reused,
            reused_files,
            generations,
            folder: OnceLock::new(),
            tally: Mutex::new(Tally::default()),
            finished: false,
            earlier: LiveKeys::load(dir),
        }
    }

    /// What the live generation's build left for this one to use.
    pub fn earlier(&self) -> &LiveKeys {
        &self.earlier
    }

    /// Takes one file of the site as a renderer handed it over.
    pub fn take(&self, output: &Output) -> Result<(), OutputError> {
        match output {
            Output::Rendered(file, recorded) => self.store(file, recorded.clone()),
            Output::Assembled {
                path,
                chunks,
                recorded,
            } => self.assemble(path, chunks, recorded),
            Output::Kept { path, key } => {
                let relative = relative_path(path)?;
                let recorded = self.earlier.keys.get(path).filter(|r| r.key == *key);
                let mut tally = self.tally();
                tally.unchanged.push(relative.clone());
                tally.keys.insert(path.clone(), recorded.cloned());
                tally.kept += 1;
                drop(tally);
                self.record_path(relative, path)
            }
        }
    }

    /// The files (below the site root) this build wrote so far because
    /// their bytes differ from the live generation's, or all of them when
    /// nothing is live: what readers will see change at the switch.
    pub fn changed(&self) -> Vec<String> {
        let Some(Ok(folder)) = self.folder.get() else {
            return Vec::new();
        };
        let tally = self.tally();
        let below =
            |target: &PathBuf| Some(target.strip_prefix(folder).ok()?.to_str()?.to_string());
        tally.written.iter().filter_map(below).collect()
    }

    /// Takes one file of the site.
    pub fn put(&self, file: &OutputFile) -> Result<(), OutputError> {
        self.store(file, None)
    }

    /// Takes one rendered file, and what it was rendered from if keyed.
    fn store(&self, file: &OutputFile, recorded: Option<Recorded>) -> Result<(), OutputError> {
        self.take_file(
            &file.path,
            recorded,
            |live| same_content(live, &file.bytes),
            |to| fs::write(to, &file.bytes),
        )
    }

    /// Takes one file rendered as parts: written from them (ranges of live
    /// files copied by the file system), or linked if it is the live one.
    fn assemble(
        &self,
        path: &str,
        chunks: &[Chunk],
        recorded: &Recorded,
    ) -> Result<(), OutputError> {
        let own = self.earlier.open(path);
        self.take_file(
            path,
            Some(recorded.clone()),
            |live| assembled_as(live, own.as_ref(), chunks, recorded.size),
            |to| write_chunks(to, chunks),
        )
    }

    /// Takes the file at `path`: unchanged if the live one is the same
    /// (`same_as`), else made in the new generation by `write`.
    fn take_file(
        &self,
        path: &str,
        recorded: Option<Recorded>,
        same_as: impl FnOnce(&Path) -> bool,
        write: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> Result<(), OutputError> {
        let relative = relative_path(path)?;
        let unchanged = self
            .live
            .as_ref()
            .is_some_and(|live| same_as(&live.join(&relative)));
        if unchanged {
            self.tally().unchanged.push(relative.clone());
        } else {
            let folder = self.folder()?;
            let target = folder.join(&relative);
            self.place(&folder, &relative, |to| {
                write(to).map_err(io_error("writing", to))
            })?;
            self.tally().written.push(target);
        }
        self.tally().keys.insert(path.to_string(), recorded);
        self.record_path(relative, path)
    }

    fn record_path(&self, relative: PathBuf, path: &str) -> Result<(), OutputError> {
        if !self.tally().paths.insert(relative) {
            return Err(OutputError {
                action: "rendered twice",
                path: PathBuf::from(path),
                source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            });
        }
        Ok(())
    }

    /// Links the unchanged files into the new generation, flushes it to disk
    /// and switches the output folder to it; with nothing changed, leaves
    /// everything as it is.
    pub fn finish(mut self, stamp: &str) -> Result<WriteReport, OutputError> {
        self.finished = true;
        let tally = std::mem::take(&mut *self.tally());
        let mut report = WriteReport {
            written: tally.written.len(),
            unchanged: tally.unchanged.len(),
            removed: 0,
            kept: tally.kept,
        };
        let count = tally.paths.len();
        if let Some(live) = &self.live {
            let earlier = &self.earlier;
            report.removed = match earlier.listed {
                true => earlier
                    .keys
                    .paths()
                    .filter(|p| !tally.paths.contains(Path::new(p)))
                    .count(),
                false => list_files(live)?
                    .iter()
                    .filter(|p| !tally.paths.contains(p.as_path()))
                    .count(),
            };
            if report.written == 0 && report.removed == 0 && self.dir.is_symlink() {
                record_keys(live, &tally.keys)?;
                record_stamp(live, stamp, count)?;
                return Ok(report);
            }
        }
        let next = self.folder()?;
        if let Some(live) = &self.live {
            let reused = self.reused.is_some();
            tally.unchanged.par_iter().try_for_each(|relative| {
                let from = live.join(relative);
                if reused && same_file(&from, &next.join(relative)) {
                    return Ok(());
                }
                self.place(&next, relative, |to| link_or_copy(&from, to))
            })?;
        }
        if self.reused.is_some() {
            remove_unrendered(&next, &tally.paths, self.reused_files.as_deref())?;
        }
        sync_to_disk(&next, &tally.written)?;
        record_keys(&next, &tally.keys)?;
        record_stamp(&next, stamp, count)?;
        switch_to(&self.dir, &next)?;
        prune(&self.generations, &next, self.live.as_deref())?;
        Ok(report)
    }

    /// Puts `relative` into `folder` with `fill`. In a reused generation
    /// the file is made beside its place and renamed over it, since the old
    /// file may be the live generation's too (a hard link), and a file or
    /// folder of an older site in its way is cleared first.
    fn place(
        &self,
        folder: &Path,
        relative: &Path,
        fill: impl FnOnce(&Path) -> Result<(), OutputError>,
    ) -> Result<(), OutputError> {
        let target = folder.join(relative);
        if self.reused.is_none() {
            create_parent(&target)?;
            return fill(&target);
        }
        clear_way(folder, relative)?;
        create_parent(&target)?;
        let beside = beside(&target);
        fill(&beside)?;
        replace(&beside, &target)
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The new generation's folder, created on first use.
    fn folder(&self) -> Result<PathBuf, OutputError> {
        let created = self.folder.get_or_init(|| {
            if let Some(reused) = &self.reused {
                return forget_contents(reused)
                    .map(|()| reused.clone())
                    .map_err(|e| e.to_string());
            }
            let create = || -> Result<PathBuf, OutputError> {
                let generations = &self.generations;
                fs::create_dir_all(generations).map_err(io_error("creating", generations))?;
                let next = generations.join(next_generation(generations)?.to_string());
                fs::create_dir_all(&next).map_err(io_error("creating", &next))?;
                Ok(next)
            };
            create().map_err(|e| e.to_string())
        });
        created.clone().map_err(|message| OutputError {
            action: "creating the next generation",
            path: self.generations.clone(),
            source: std::io::Error::other(message),
        })
    }
}

impl Drop for NextGeneration {
    fn drop(&mut self) {
        if !self.finished
            && let Some(Ok(folder)) = self.folder.get()
        {
            let _ = fs::remove_dir_all(folder);
        }
    }
}

/// The generation to bring up to date instead of writing a new one: the
/// newest one in `generations` that is not `live` (the one it replaced, or
/// what a killed build left), if any.
fn previous_generation(generations: &Path, live: &Path) -> Option<PathBuf> {
    fs::read_dir(generations)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let number = entry.file_name().to_str()?.parse::<u64>().ok()?;
            let path = entry.path().canonicalize().ok()?;
            (path != live && path.is_dir()).then_some((number, path))
        })
        .max()
        .map(|(_, path)| path)
}

/// Removes a file that a reused generation has where `relative` needs a
/// folder (an older page's name, now a folder of pages).
fn clear_way(generation: &Path, relative: &Path) -> Result<(), OutputError> {
    let mut path = generation.to_path_buf();
    let parents: Vec<_> = relative
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .collect();
    for part in parents {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(found) if !found.is_dir() => {
                fs::remove_file(&path).map_err(io_error("removing", &path))?;
                return Ok(());
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Where a file is written before it is renamed over `target`.
fn beside(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    target.with_file_name(format!(".{name}.shorts-next"))
}

/// Renames `from` over `target`, a folder there (an older page's) included.
fn replace(from: &Path, target: &Path) -> Result<(), OutputError> {
    if target.is_dir() && !target.is_symlink() {
        fs::remove_dir_all(target).map_err(io_error("removing", target))?;
    }
    fs::rename(from, target).map_err(io_error("writing", target))
}

/// Whether `a` and `b` are the same file (one inode, hard-linked).
#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::symlink_metadata(a), fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_a: &Path, _b: &Path) -> bool {
    false
}

/// Removes the records of what `generation` holds before a build changes
/// it in place, so that a build killed while changing it leaves it
/// unlisted, and the next one finds its files by walking it.
fn forget_contents(generation: &Path) -> Result<(), OutputError> {
    for file in [keys_file(generation), stamp_file(generation)]
        .into_iter()
        .flatten()
    {
        match fs::remove_file(&file) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                return Err(io_error("removing", &file)(e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Removes from a reused generation every file this build did not render
/// (an old page, a half-written file of a killed build), and the folders
/// left empty. `listed` is what the generation holds, when its build
/// recorded that and nothing changed it since; else its folders are walked.
fn remove_unrendered(
    generation: &Path,
    rendered: &HashSet<PathBuf>,
    listed: Option<&[PathBuf]>,
) -> Result<(), OutputError> {
    let walked;
    let files = match listed {
        Some(files) => files,
        None => {
            walked = list_files(generation)?;
            &walked
        }
    };
    for relative in files {
        if rendered.contains(relative) {
            continue;
        }
        let path = generation.join(relative);
        // A listed file may be gone already (its folder replaced by a
        // file), or be a folder of this build's files now.
        match fs::remove_file(&path) {
            Err(e)
                if !matches!(
                    e.kind(),
                    ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::IsADirectory
                ) =>
            {
                return Err(io_error("removing", &path)(e));
            }
            _ => {}
        }
        let mut folder = path.parent();
        while let Some(dir) = folder.filter(|dir| *dir != generation) {
            if fs::remove_dir(dir).is_err() {
                break;
            }
            folder = dir.parent();
        }
    }
    Ok(())
}

/// Whether the file at `path` holds exactly `bytes`; the size is compared
/// first, so most changed files are told apart without reading them.
/// Whether the file at `live` holds what `chunks` make. A range of `own`
/// (the same file, as the live generation's keys opened it) at its own place
/// is equal without reading it.
fn assembled_as(live: &Path, own: Option<&Arc<fs::File>>, chunks: &[Chunk], size: u64) -> bool {
    let Ok(file) = fs::File::open(live) else {
        return false;
    };
    if !file.metadata().is_ok_and(|m| m.len() == size) {
        return false;
    }
    let mut offset = 0;
    chunks.iter().all(|chunk| {
        let same = match chunk {
            Chunk::Live(range) if own.is_some_and(|own| Arc::ptr_eq(own, &range.file)) => {
                range.start == offset || equal_at(&file, offset, chunk)
            }
            _ => equal_at(&file, offset, chunk),
        };
        offset += chunk.size();
        same
    })
}

/// Whether `file` holds `chunk`'s bytes at `offset`.
fn equal_at(file: &fs::File, offset: u64, chunk: &Chunk) -> bool {
    let expected = match chunk {
        Chunk::Own(bytes) => std::borrow::Cow::Borrowed(&bytes[..]),
        Chunk::Live(range) => match range.read() {
            Ok(bytes) => std::borrow::Cow::Owned(bytes),
            Err(_) => return false,
        },
    };
    let mut found = vec![0; expected.len()];
    read_exact_at(file, &mut found, offset).is_ok() && found[..] == expected[..]
}

/// Writes `chunks` to a new file at `to`: bytes of this build's through a
/// buffer, each run of adjacent ranges of one live file in one copy.
fn write_chunks(to: &Path, chunks: &[Chunk]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::with_capacity(1 << 18, fs::File::create(to)?);
    let mut rest = chunks;
    while let Some((first, after)) = rest.split_first() {
        rest = after;
        let range = match first {
            Chunk::Own(bytes) => {
                out.write_all(bytes)?;
                continue;
            }
            Chunk::Live(range) => range,
        };
        let mut len = range.len;
        while let Some((Chunk::Live(next), after)) = rest.split_first() {
            if !Arc::ptr_eq(&next.file, &range.file) || next.start != range.start + len {
                break;
            }
            len += next.len;
            rest = after;
        }
        out.flush()?;
        copy_range(&range.file, range.start, len, out.get_ref())?;
    }
    out.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// Appends `len` bytes at `start` of `from` to `to`, in the kernel where
/// the file system can (no copy through memory; none at all where it shares
/// extents), else read and written.
#[cfg(target_os = "linux")]
fn copy_range(from: &fs::File, start: u64, len: u64, to: &fs::File) -> std::io::Result<()> {
    let (mut offset, end) = (start, start + len);
    while offset < end {
        let want = usize::try_from(end - offset).unwrap_or(usize::MAX);
        match rustix::fs::copy_file_range(from, Some(&mut offset), to, None, want) {
            Ok(0) => return Err(changed_during_build()),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(
                rustix::io::Errno::XDEV
                | rustix::io::Errno::NOSYS
                | rustix::io::Errno::INVAL
                | rustix::io::Errno::OPNOTSUPP,
            ) => {
                return copy_by_reading(from, offset, end - offset, to);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn copy_range(from: &fs::File, start: u64, len: u64, to: &fs::File) -> std::io::Result<()> {
    copy_by_reading(from, start, len, to)
}

fn copy_by_reading(
    from: &fs::File,
    start: u64,
    len: u64,
    mut to: &fs::File,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut buffer = vec![0; 1 << 20];
    let (mut offset, end) = (start, start + len);
    while offset < end {
        let n = usize::try_from(end - offset).map_or(buffer.len(), |left| left.min(buffer.len()));
        read_exact_at(from, &mut buffer[..n], offset).map_err(|_| changed_during_build())?;
        to.write_all(&buffer[..n])?;
        offset += n as u64;
    }
    Ok(())
}

/// A live file shorter than its recorded size: changed by hand during the build.
fn changed_during_build() -> std::io::Error {
    std::io::Error::new(
        ErrorKind::UnexpectedEof,
        "a file of the live site was changed during the build; build again",
    )
}

fn same_content(path: &Path, bytes: &[u8]) -> bool {
    fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64)
        && fs::read(path).is_ok_and(|old| old == bytes)
}

fn create_parent(target: &Path) -> Result<(), OutputError> {
    match target.parent() {
        Some(parent) => fs::create_dir_all(parent).map_err(io_error("creating", parent)),
        None => Ok(()),
    }
}

/// The folder the site is served from now, if there is one: the link's
/// generation, or a plain folder left by an older version of shorts.
fn live_folder(dir: &Path) -> Option<PathBuf> {
    dir.canonicalize().ok().filter(|p| p.is_dir())
}

/// `.public.generations` beside `public`.
fn generations_folder(dir: &Path) -> PathBuf {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    dir.with_file_name(format!(".{name}.generations"))
}

/// One more than the highest generation number in use.
fn next_generation(generations: &Path) -> Result<u64, OutputError> {
    let entries = fs::read_dir(generations).map_err(io_error("listing", generations))?;
    let highest = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    Ok(highest + 1)
}

/// Points `dir` at `generation` with one atomic rename. A plain folder from
/// an older version is moved into the generations first.
fn switch_to(dir: &Path, generation: &Path) -> Result<(), OutputError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let target = generation.strip_prefix(parent).unwrap_or(generation);
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let link = parent.join(format!(".{name}.next"));
    let _ = fs::remove_file(&link);
    symlink(target, &link).map_err(io_error("linking", &link))?;
    if dir.is_dir() && !dir.is_symlink() {
        let generations = generation.parent().unwrap_or(parent);
        let old = generations.join(format!("{}", next_generation(generations)?));
        fs::rename(dir, &old).map_err(io_error("moving aside", dir))?;
    }
    fs::rename(&link, dir).map_err(io_error("switching", dir))
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_dir(target, link)
}

/// Removes every generation but `keep` and the one just replaced, which
/// requests that started before the switch may still be reading.
fn prune(generations: &Path, keep: &Path, previous: Option<&Path>) -> Result<(), OutputError> {
    let previous = previous.and_then(|p| p.canonicalize().ok());
    let keep = keep.canonicalize().ok();
    let kept_stamps: Vec<PathBuf> = [keep.as_deref(), previous.as_deref()]
        .into_iter()
        .flatten()
        .flat_map(|generation| [stamp_file(generation), keys_file(generation)])
        .flatten()
        .collect();
    for entry in fs::read_dir(generations).map_err(io_error("listing", generations))? {
        let path = entry.map_err(io_error("listing", generations))?.path();
        if !path.is_dir() {
            if !kept_stamps.contains(&path) {
                fs::remove_file(&path).map_err(io_error("removing", &path))?;
            }
            continue;
        }
        let real = path.canonicalize().ok();
        if real == keep || (real.is_some() && real == previous) {
            continue;
        }
        fs::remove_dir_all(&path).map_err(io_error("removing", &path))?;
    }
    Ok(())
}

/// `path` below the output folder, or an error if it would leave it.
fn relative_path(path: &str) -> Result<PathBuf, OutputError> {
    safe_relative(path).ok_or_else(|| OutputError {
        action: "refusing to write outside the output folder",
        path: PathBuf::from(path),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

/// A path that stays below the output folder, or `None`.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| path.to_path_buf())
}

/// Puts the new generation on disk before the link points at it, so even a
/// power cut leaves a whole site. On Linux one `syncfs` flushes the file
/// system at once, which costs a fraction of one `fsync` per file.
#[cfg(target_os = "linux")]
fn sync_to_disk(generation: &Path, _written: &[PathBuf]) -> Result<(), OutputError> {
    let folder = fs::File::open(generation).map_err(io_error("opening", generation))?;
    rustix::fs::syncfs(&folder).map_err(|e| io_error("syncing", generation)(e.into()))
}

#[cfg(not(target_os = "linux"))]
fn sync_to_disk(_generation: &Path, written: &[PathBuf]) -> Result<(), OutputError> {
    for file in written {
        fs::File::open(file)
            .and_then(|f| f.sync_all())
            .map_err(io_error("syncing", file))?;
    }
    Ok(())
}

/// Shares an unchanged file with the live generation (same inode, same
/// modification time); copies where the file system cannot link.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), OutputError> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    fs::copy(from, to).map_err(io_error("copying", to))?;
    let modified = fs::metadata(from).and_then(|m| m.modified());
    if let (Ok(modified), Ok(file)) = (modified, fs::File::options().write(true).open(to)) {
        let _ = file.set_modified(modified);
    }
    Ok(())
}

/// Every file below `dir`, relative to it.
fn list_files(dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in fs::read_dir(&folder).map_err(io_error("listing", &folder))? {
            let entry = entry.map_err(io_error("listing", &folder))?;
            let path = entry.path();
            // The type comes with the listing on most file systems: no
            // `stat` per file (a tree walk of 10,000 pages took 0.2 s).
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                files.push(relative.to_path_buf());
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes `dir` hold exactly `files`, as a build does.
    fn write_site(
        dir: &Path,
        files: &[OutputFile],
        stamp: &str,
    ) -> Result<WriteReport, OutputError> {
        let generation = NextGeneration::begin(dir);
        files.par_iter().try_for_each(|file| generation.put(file))?;
        generation.finish(stamp)
    }

    fn file(path: &str, text: &str) -> OutputFile {
        OutputFile::new(path, text)
    }

    fn own(text: &str) -> Chunk {
        Chunk::Own(Arc::from(text.as_bytes()))
    }

    fn live(file: &Arc<fs::File>, start: u64, len: u64) -> Chunk {
        Chunk::Live(LiveRange {
            file: Arc::clone(file),
            start,
            len,
        })
    }

    #[test]
    fn assembled_files_are_their_chunks_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, other) = (tmp.path().join("old"), tmp.path().join("other"));
        fs::write(&old, "0123456789").unwrap();
        fs::write(&other, "abcdef").unwrap();
        let old = Arc::new(fs::File::open(&old).unwrap());
        let other = Arc::new(fs::File::open(&other).unwrap());
        // Adjacent ranges of one file (copied as one), ranges out of order,
        // of another file, and bytes of this build's between them.
        let chunks = [
            own("<"),
            live(&old, 2, 3),
            live(&old, 5, 2),
            live(&other, 0, 2),
            own("|"),
            live(&old, 0, 1),
            live(&old, 9, 1),
            live(&other, 4, 2),
            own(">"),
        ];
        let to = tmp.path().join("new");
        write_chunks(&to, &chunks).unwrap();
        assert_eq!(fs::read_to_string(&to).unwrap(), "<23456ab|09ef>");
        let size = chunks.iter().map(Chunk::size).sum();
        assert!(assembled_as(&to, None, &chunks, size));
        assert!(!assembled_as(&to, None, &chunks, size + 1));
        let mut different = chunks.to_vec();
        different[4] = own("/");
        assert!(!assembled_as(&to, None, &different, size));
        // A range past the end of its file (changed by hand meanwhile) fails
        // the write instead of writing less.
        let short = [own("x"), live(&other, 4, 5)];
        let error = write_chunks(&tmp.path().join("short"), &short).unwrap_err();
        assert!(
            error.to_string().contains("changed during the build"),
            "{error}"
        );
    }

    #[test]
    fn writes_changed_keeps_unchanged_removes_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        let first = [file("rss.xml", "a"), file("tags/x/rss.xml", "x")];
        let report = write_site(dir.as_path(), &first, "").unwrap();
        assert_eq!(
            report,
            WriteReport {
                written: 2,
                unchanged: 0,
                removed: 0,
                kept: 0
            }
        );

        let second = [file("rss.xml", "a"), file("tags/y/rss.xml", "y")];
        let report = write_site(dir.as_path(), &second, "").unwrap();
        assert_eq!(
            report,
            WriteReport {
                written: 1,
                unchanged: 1,
                removed: 1,
                kept: 0
            }
        );
        assert!(
            !dir.as_path().join("tags/x").exists(),
            "empty folder of a removed tag is gone"
        );
        assert_eq!(
            fs::read_to_string(dir.as_path().join("tags/y/rss.xml")).unwrap(),
            "y"
        );

        let report = write_site(dir.as_path(), &second, "").unwrap();
        assert_eq!(
            report,
            WriteReport {
                written: 0,
                unchanged: 2,
                removed: 0,
                kept: 0
            }
        );
    }

    #[test]
    fn unchanged_files_keep_their_modification_time() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        write_site(dir.as_path(), &[file("a.xml", "same")], "").unwrap();
        let before = fs::metadata(dir.as_path().join("a.xml"))
            .unwrap()
            .modified()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_site(dir.as_path(), &[file("a.xml", "same")], "").unwrap();
        let after = fs::metadata(dir.as_path().join("a.xml"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn a_change_elsewhere_keeps_unchanged_files_as_they_were() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        write_site(&dir, &[file("a.xml", "same"), file("b.xml", "1")], "").unwrap();
        let before = fs::metadata(dir.join("a.xml")).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let report = write_site(&dir, &[file("a.xml", "same"), file("b.xml", "2")], "").unwrap();
        assert_eq!((report.written, report.unchanged), (1, 1));
        let after = fs::metadata(dir.join("a.xml")).unwrap().modified().unwrap();
        assert_eq!(before, after);
        assert_eq!(fs::read_to_string(dir.join("b.xml")).unwrap(), "2");
    }

    #[test]
    fn the_folder_is_a_link_to_one_of_two_generations_taking_turns() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        // What a crashed build leaves: a half-written generation.
        let generations = tmp.path().join(".public.generations");
        fs::create_dir_all(generations.join("7/tags")).unwrap();
        for n in 1..=4 {
            write_site(&dir, &[file("rss.xml", &n.to_string())], "").unwrap();
            assert!(dir.is_symlink());
            assert_eq!(
                fs::read_to_string(dir.join("rss.xml")).unwrap(),
                n.to_string()
            );
        }
        let mut left: Vec<String> = fs::read_dir(&generations)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["8", "8.keys", "8.stamp", "9", "9.keys", "9.stamp"],
            "the live one and the one before it, with their stamps and keys; \
             the crashed one gone, the third build reusing the first"
        );
        assert!(!tmp.path().join(".public.next").exists());
    }

    /// Every file of the live site and its bytes.
    fn site_of(dir: &Path) -> Vec<(PathBuf, String)> {
        let mut files: Vec<(PathBuf, String)> = list_files(dir)
            .unwrap()
            .into_iter()
            .map(|f| (f.clone(), fs::read_to_string(dir.join(&f)).unwrap()))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn a_reused_generation_is_listed_by_its_record_and_walked_without_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        let generations = tmp.path().join(".public.generations");
        write_site(&dir, &[file("a.xml", "1"), file("old/b.xml", "2")], "1").unwrap();
        write_site(&dir, &[file("a.xml", "2")], "2").unwrap();
        // Generation 1 is next to be reused. Its record lists a.xml and
        // old/b.xml; a stray file it does not list is found only by a walk,
        // which a missing record (a build killed while changing it) forces.
        fs::write(generations.join("1/stray.xml"), "left by a killed build").unwrap();
        fs::remove_file(generations.join("1.keys")).unwrap();
        let report = write_site(&dir, &[file("a.xml", "3")], "3").unwrap();
        assert_eq!(report.removed, 0, "counted from generation 2's record");
        let expected = vec![(PathBuf::from("a.xml"), "3".to_string())];
        assert_eq!(site_of(&dir), expected);
        assert!(
            !generations.join("1/old").exists(),
            "the emptied folder is gone"
        );
        // Generation 2, reused now, is listed by its record: a.xml only.
        let listed = read_keys(&generations.join("2")).expect("recorded");
        assert_eq!(listed.paths().collect::<Vec<_>>(), ["a.xml"]);
        write_site(&dir, &[file("b.xml", "4")], "4").unwrap();
        let expected = vec![(PathBuf::from("b.xml"), "4".to_string())];
        assert_eq!(site_of(&dir), expected);
    }

    #[test]
    fn a_reused_generation_holds_exactly_the_site_and_a_change_back_is_newer() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        let modified = |path: &str| fs::metadata(dir.join(path)).unwrap().modified().unwrap();
        let sites: [&[(&str, &str)]; 5] = [
            &[("a.xml", "1"), ("t/b.xml", "2")],
            &[("a.xml", "1"), ("t/c.xml", "3")],
            &[("a.xml", "2"), ("t", "a file where a folder was")],
            &[("a.xml", "1"), ("x/y/z.xml", "9")],
            &[("a.xml", "1"), ("t/b.xml", "4"), ("x/y/z.xml", "9")],
        ];
        let mut changed_at = Vec::new();
        for (n, site) in sites.iter().enumerate() {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let files: Vec<OutputFile> = site.iter().map(|(p, t)| file(p, t)).collect();
            write_site(&dir, &files, &n.to_string()).unwrap();
            let mut expected: Vec<(PathBuf, String)> = site
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect();
            expected.sort();
            assert_eq!(site_of(&dir), expected, "build {n}: exactly the site");
            changed_at.push(modified("a.xml"));
        }
        assert_eq!(changed_at[0], changed_at[1], "unchanged keeps its time");
        assert!(changed_at[2] > changed_at[1], "changed");
        // Back to what the reused generation still held: newer than the
        // change, or a reader's If-Modified-Since would get a wrong 304.
        assert!(changed_at[3] > changed_at[2], "changed back");
        assert_eq!(changed_at[3], changed_at[4]);
    }

    #[test]
    fn a_plain_folder_from_an_older_version_becomes_a_generation() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        fs::create_dir_all(dir.join("tags/old")).unwrap();
        fs::write(dir.join("rss.xml"), "old").unwrap();
        fs::write(dir.join("tags/old/rss.xml"), "gone").unwrap();
        let report =
            write_site(&dir, &[file("rss.xml", "old"), file("atom.xml", "new")], "").unwrap();
        assert_eq!(
            report,
            WriteReport {
                written: 1,
                unchanged: 1,
                removed: 1,
                kept: 0
            }
        );
        assert!(dir.is_symlink());
        assert_eq!(fs::read_to_string(dir.join("rss.xml")).unwrap(), "old");
        assert!(!dir.join("tags").exists());
    }

    #[test]
    fn a_stamp_vouches_only_for_the_live_generation_it_was_recorded_with() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        assert_eq!(current_files(&dir, "s1"), None, "nothing built yet");
        write_site(&dir, &[file("a.xml", "1"), file("t/b.xml", "2")], "s1").unwrap();
        assert_eq!(current_files(&dir, "s1"), Some(2));
        assert_eq!(current_files(&dir, "s2"), None, "other inputs");
        // Unchanged output under new inputs: nothing written, new stamp recorded.
        let report = write_site(&dir, &[file("a.xml", "1"), file("t/b.xml", "2")], "s2").unwrap();
        assert_eq!(report.written, 0);
        assert_eq!(current_files(&dir, "s2"), Some(2));
        // A file removed by hand: the stamp no longer vouches for the folder.
        fs::remove_file(dir.join("t/b.xml")).unwrap();
        assert_eq!(current_files(&dir, "s2"), None);
    }

    #[test]
    fn refuses_paths_that_leave_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        assert!(write_site(dir.as_path(), &[file("../evil", "x")], "").is_err());
        assert!(write_site(dir.as_path(), &[file("/etc/evil", "x")], "").is_err());
        assert!(!dir.as_path().parent().unwrap().join("evil").exists());
    }
}
