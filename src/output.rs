//! Writing the rendered site into the output folder, so that readers and
//! static servers only ever see a whole site: the old one or the new one.
//!
//! The output folder (`public`) is a symbolic link to one *generation*, a
//! folder in `.public.generations/` beside it. A build that changes anything
//! writes a new generation (changed files written; unchanged ones hard-linked
//! from the live generation, so they keep their modification time, which
//! `Last-Modified` is served from), syncs it to disk, then points the link at
//! it with one atomic `rename`. A build killed at any moment leaves the link on
//! the previous, complete generation. A build that changes nothing writes
//! nothing. The previous generation is kept for requests still reading it;
//! older ones and those of crashed builds are removed.
//!
//! Owns the folder: files it did not render are left out of the next
//! generation, so a deleted tag's feeds disappear.

use std::collections::HashSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::render::OutputFile;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
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

/// Makes `dir` hold exactly `files`, switching to them all at once.
pub fn write_site(dir: &Path, files: &[OutputFile]) -> Result<WriteReport, OutputError> {
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|file| {
            safe_relative(&file.path).ok_or_else(|| OutputError {
                action: "refusing to write outside the output folder",
                path: PathBuf::from(&file.path),
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            })
        })
        .collect::<Result<_, _>>()?;
    let live = live_folder(dir);
    let mut report = WriteReport::default();
    let mut unchanged = vec![false; files.len()];
    if let Some(live) = &live {
        for (i, file) in files.iter().enumerate() {
            if fs::read(live.join(&relative[i])).is_ok_and(|old| old == file.bytes) {
                unchanged[i] = true;
                report.unchanged += 1;
            }
        }
        let keep: HashSet<&Path> = relative.iter().map(PathBuf::as_path).collect();
        report.removed = list_files(live)?
            .iter()
            .filter(|p| !keep.contains(p.as_path()))
            .count();
    }
    report.written = files.len() - report.unchanged;
    if report.written == 0 && report.removed == 0 && dir.is_symlink() {
        return Ok(report);
    }
    let generations = generations_folder(dir);
    fs::create_dir_all(&generations).map_err(io_error("creating", &generations))?;
    let next = generations.join(next_generation(&generations)?.to_string());
    let mut written = Vec::with_capacity(report.written);
    for (i, file) in files.iter().enumerate() {
        let target = next.join(&relative[i]);
        let parent = target.parent().unwrap_or(&next);
        fs::create_dir_all(parent).map_err(io_error("creating", parent))?;
        match (&live, unchanged[i]) {
            (Some(live), true) => link_or_copy(&live.join(&relative[i]), &target)?,
            _ => {
                fs::write(&target, &file.bytes).map_err(io_error("writing", &target))?;
                written.push(target);
            }
        }
    }
    sync_to_disk(&next, &written)?;
    switch_to(dir, &next)?;
    prune(&generations, &next, live.as_deref())?;
    Ok(report)
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
    for entry in fs::read_dir(generations).map_err(io_error("listing", generations))? {
        let path = entry.map_err(io_error("listing", generations))?.path();
        let real = path.canonicalize().ok();
        if real == keep || (real.is_some() && real == previous) {
            continue;
        }
        fs::remove_dir_all(&path).map_err(io_error("removing", &path))?;
    }
    Ok(())
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
            let path = entry.map_err(io_error("listing", &folder))?.path();
            if path.is_dir() && !path.is_symlink() {
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

    fn file(path: &str, text: &str) -> OutputFile {
        OutputFile::new(path, text)
    }

    #[test]
    fn writes_changed_keeps_unchanged_removes_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        let first = [file("rss.xml", "a"), file("tags/x/rss.xml", "x")];
        let report = write_site(dir.as_path(), &first).unwrap();
        assert_eq!(
            report,
            WriteReport {
                written: 2,
                unchanged: 0,
                removed: 0
            }
        );

        let second = [file("rss.xml", "a"), file("tags/y/rss.xml", "y")];
        let report = write_site(dir.as_path(), &second).unwrap();
        assert_eq!(
            report,
            WriteReport {
                written: 1,
                unchanged: 1,
                removed: 1
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

        let report = write_site(dir.as_path(), &second).unwrap();
        assert_eq!(
            report,
            WriteReport {
                written: 0,
                unchanged: 2,
                removed: 0
            }
        );
    }

    #[test]
    fn unchanged_files_keep_their_modification_time() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        write_site(dir.as_path(), &[file("a.xml", "same")]).unwrap();
        let before = fs::metadata(dir.as_path().join("a.xml"))
            .unwrap()
            .modified()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_site(dir.as_path(), &[file("a.xml", "same")]).unwrap();
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
        write_site(&dir, &[file("a.xml", "same"), file("b.xml", "1")]).unwrap();
        let before = fs::metadata(dir.join("a.xml")).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let report = write_site(&dir, &[file("a.xml", "same"), file("b.xml", "2")]).unwrap();
        assert_eq!((report.written, report.unchanged), (1, 1));
        let after = fs::metadata(dir.join("a.xml")).unwrap().modified().unwrap();
        assert_eq!(before, after);
        assert_eq!(fs::read_to_string(dir.join("b.xml")).unwrap(), "2");
    }

    #[test]
    fn the_folder_is_a_link_to_the_newest_of_at_most_two_generations() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        // What a crashed build leaves: a half-written generation.
        let generations = tmp.path().join(".public.generations");
        fs::create_dir_all(generations.join("7/tags")).unwrap();
        for n in 1..=4 {
            write_site(&dir, &[file("rss.xml", &n.to_string())]).unwrap();
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
        assert_eq!(left, ["10", "11"], "the live one and the one before it");
        assert!(!tmp.path().join(".public.next").exists());
    }

    #[test]
    fn a_plain_folder_from_an_older_version_becomes_a_generation() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        fs::create_dir_all(dir.join("tags/old")).unwrap();
        fs::write(dir.join("rss.xml"), "old").unwrap();
        fs::write(dir.join("tags/old/rss.xml"), "gone").unwrap();
        let report = write_site(&dir, &[file("rss.xml", "old"), file("atom.xml", "new")]).unwrap();
        assert_eq!(
            report,
            WriteReport {
                written: 1,
                unchanged: 1,
                removed: 1
            }
        );
        assert!(dir.is_symlink());
        assert_eq!(fs::read_to_string(dir.join("rss.xml")).unwrap(), "old");
        assert!(!dir.join("tags").exists());
    }

    #[test]
    fn refuses_paths_that_leave_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("public");
        assert!(write_site(dir.as_path(), &[file("../evil", "x")]).is_err());
        assert!(write_site(dir.as_path(), &[file("/etc/evil", "x")]).is_err());
        assert!(!dir.as_path().parent().unwrap().join("evil").exists());
    }
}
