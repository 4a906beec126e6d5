//! The data folder is private: it holds the subscriber list, the delivery
//! ledger, the signing key and mail that came back. Folders are created
//! 0700 and files 0600, whatever the umask, so that another user on the
//! machine reads none of it. Only creation is here; what goes in the files
//! belongs to the modules that write them.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Creates `dir` and any missing parents, each new one 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Opens `path` for writing, creating it 0600 if it is not there.
pub fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// Creates `path` 0600 and fails if it exists (`create_new`).
pub fn create_new_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Replaces `path` whole: `fill` writes a new 0600 file beside it (in a
/// 0700 folder made if missing), which is then renamed over it, so a
/// reader or a crash sees the old file or the new one, never a part.
pub fn replace_file(path: &Path, fill: impl FnOnce(File) -> io::Result<()>) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        create_dir(dir)?;
    }
    let mut next = path.as_os_str().to_owned();
    next.push(".next");
    let next = std::path::PathBuf::from(next);
    // Left by a run that died mid-write.
    let _ = std::fs::remove_file(&next);
    fill(create_new_file(&next)?)?;
    std::fs::rename(&next, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn folders_are_0700_and_files_0600_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        create_dir(&data).unwrap();
        let file = data.join("f");
        open_file(&file).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert!(create_new_file(&file).is_err());
    }
}
