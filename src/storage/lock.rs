//! The exclusive lock on a data directory: two nodes appending to one WAL
//! would interleave their writes and destroy it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use super::StorageError;
use super::layout::{LOCK_FILE, io_error};

/// Holds the lock until dropped; closing the file releases it, also when the
/// process dies, so a crash never leaves a stale lock behind. The file itself
/// is never removed: deleting it while another process waits to lock it would
/// let two processes hold locks on two different files.
#[derive(Debug)]
pub(super) struct DirLock {
    _file: File,
}

pub(super) fn lock_dir(dir: &Path) -> Result<DirLock, StorageError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_error(&path, "open"))?;
    // An advisory `flock`: a second open file description conflicts even
    // within one process, so a node cannot open its own directory twice.
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(StorageError::Locked { dir: dir.to_path_buf() }),
        Err(TryLockError::Error(e)) => Err(io_error(&path, "lock")(e)),
    }
}
