//! One run at a time: an exclusive lock on `<data folder>/shorts.lock`.
//!
//! The operating system holds the lock for the process (flock), so a crash or
//! a kill releases it: there is never a stale lock to clean up by hand.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "shorts.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another shorts run holds {path} (pid {holder}); this one did nothing")]
    Held { path: PathBuf, holder: String },
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held while it lives.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock, or fails at once if another process has it.
    pub fn acquire(data_dir: &Path) -> Result<RunLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        crate::private::create_dir(data_dir).map_err(io)?;
        let mut file = crate::private::open_file(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                // The holder's pid, for the message another run prints.
                use std::io::{Seek, Write};
                let _ = file.set_len(0);
                let _ = file.rewind();
                let _ = write!(file, "{}", std::process::id());
                Ok(RunLock { _file: file })
            }
            Err(TryLockError::WouldBlock) => Err(LockError::Held {
                holder: std::fs::read_to_string(&path)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                path,
            }),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let second = RunLock::acquire(dir.path());
        match second {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder, std::process::id().to_string())
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert!(RunLock::acquire(dir.path()).is_ok());
    }
}
