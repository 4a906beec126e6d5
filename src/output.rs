//! Writing the rendered site into the output folder.
//!
//! Owns the folder: files it did not render are removed, so a deleted tag's
//! feeds disappear. A file whose bytes did not change is left untouched (its
//! modification time is what `Last-Modified` is served from). Changed files are
//! first written beside their target and synced, then renamed into place in
//! one quick pass, so a reader never sees a truncated file and a failure
//! before that pass leaves the previous site whole.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::render::OutputFile;

/// Suffix of files staged for the rename pass; left-overs from a crash are removed.
const STAGING_SUFFIX: &str = ".shorts-tmp";

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

/// Makes `dir` hold exactly `files`.
pub fn write_site(dir: &Path, files: &[OutputFile]) -> Result<WriteReport, OutputError> {
    let mut report = WriteReport::default();
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let cleanup = |staged: &[(PathBuf, PathBuf)]| {
        for (tmp, _) in staged {
            let _ = fs::remove_file(tmp);
        }
    };
    for file in files {
        let target = dir.join(safe_relative(&file.path).ok_or_else(|| OutputError {
            action: "refusing to write outside the output folder",
            path: PathBuf::from(&file.path),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?);
        if fs::read(&target).is_ok_and(|old| old == file.bytes) {
            report.unchanged += 1;
            continue;
        }
        match stage(&target, &file.bytes) {
            Ok(tmp) => staged.push((tmp, target)),
            Err(e) => {
                cleanup(&staged);
                return Err(e);
            }
        }
    }
    for (tmp, target) in &staged {
        fs::rename(tmp, target).map_err(io_error("renaming into place", target))?;
        report.written += 1;
    }
    let keep: HashSet<PathBuf> = files
        .iter()
        .filter_map(|f| safe_relative(&f.path))
        .map(|p| dir.join(p))
        .collect();
    report.removed = remove_others(dir, &keep)?;
    Ok(report)
}

/// A path that stays below the output folder, or `None`.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| path.to_path_buf())
}

/// Writes `bytes` next to `target` and syncs them to disk.
fn stage(target: &Path, bytes: &[u8]) -> Result<PathBuf, OutputError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_error("creating", parent))?;
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(STAGING_SUFFIX);
    let tmp = parent.join(name);
    let mut file = fs::File::create(&tmp).map_err(io_error("creating", &tmp))?;
    file.write_all(bytes).map_err(io_error("writing", &tmp))?;
    file.sync_all().map_err(io_error("syncing", &tmp))?;
    Ok(tmp)
}

/// Removes every file below `dir` not in `keep`, then folders left empty.
fn remove_others(dir: &Path, keep: &HashSet<PathBuf>) -> Result<usize, OutputError> {
    let mut removed = 0;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error("listing", dir)(e)),
    };
    for entry in entries {
        let path = entry.map_err(io_error("listing", dir))?.path();
        if path.is_dir() && !path.is_symlink() {
            removed += remove_others(&path, keep)?;
            if fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none()) {
                fs::remove_dir(&path).map_err(io_error("removing", &path))?;
            }
        } else if !keep.contains(&path) {
            fs::remove_file(&path).map_err(io_error("removing", &path))?;
            if !path.to_string_lossy().ends_with(STAGING_SUFFIX) {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> OutputFile {
        OutputFile::new(path, text)
    }

    #[test]
    fn writes_changed_keeps_unchanged_removes_stale() {
        let dir = tempfile::tempdir().unwrap();
        let first = [file("rss.xml", "a"), file("tags/x/rss.xml", "x")];
        let report = write_site(dir.path(), &first).unwrap();
        assert_eq!(
            report,
            WriteReport {
                written: 2,
                unchanged: 0,
                removed: 0
            }
        );

        let second = [file("rss.xml", "a"), file("tags/y/rss.xml", "y")];
        let report = write_site(dir.path(), &second).unwrap();
        assert_eq!(
            report,
            WriteReport {
                written: 1,
                unchanged: 1,
                removed: 1
            }
        );
        assert!(
            !dir.path().join("tags/x").exists(),
            "empty folder of a removed tag is gone"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("tags/y/rss.xml")).unwrap(),
            "y"
        );

        let report = write_site(dir.path(), &second).unwrap();
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
        let dir = tempfile::tempdir().unwrap();
        write_site(dir.path(), &[file("a.xml", "same")]).unwrap();
        let before = fs::metadata(dir.path().join("a.xml"))
            .unwrap()
            .modified()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_site(dir.path(), &[file("a.xml", "same")]).unwrap();
        let after = fs::metadata(dir.path().join("a.xml"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn refuses_paths_that_leave_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_site(dir.path(), &[file("../evil", "x")]).is_err());
        assert!(write_site(dir.path(), &[file("/etc/evil", "x")]).is_err());
        assert!(!dir.path().parent().unwrap().join("evil").exists());
    }
}
