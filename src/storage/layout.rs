//! File names in a data directory, its format marker, and the file-system
//! steps shared by the rest of the module.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::StorageError;

pub(super) const FORMAT_FILE: &str = "FORMAT";
pub(super) const FORMAT_MARKER: &str = "traftctl-data v1";
pub(super) const LOCK_FILE: &str = "LOCK";
pub(super) const TMP_SUFFIX: &str = ".tmp";
const SEGMENT_PREFIX: &str = "wal-";
const SEGMENT_SUFFIX: &str = ".log";
/// Present at the root of a freshly made ext4 file system; a node's data
/// directory is often exactly such a mount point.
pub(super) const LOST_FOUND: &str = "lost+found";

pub(super) fn io_error(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |error| StorageError::Io { path, op, error }
}

pub(super) fn segment_name(number: u64) -> String {
    format!("{SEGMENT_PREFIX}{number:08}{SEGMENT_SUFFIX}")
}

pub(super) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(segment_name(number))
}

pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SEGMENT_PREFIX)?.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Makes renames, creations and removals in `dir` durable: fsyncing a file
/// does not persist its directory entry.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir, "fsync directory"))
}

pub(super) fn file_names(dir: &Path) -> Result<Vec<String>, StorageError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir, "list directory"))? {
        let entry = entry.map_err(io_error(dir, "list directory"))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Checks the format marker. `Ok(true)`: an initialised data directory of
/// this format. `Ok(false)`: no marker and nothing that could be data, so it
/// may be initialised.
pub(super) fn check_format(dir: &Path) -> Result<bool, StorageError> {
    let path = dir.join(FORMAT_FILE);
    match fs::read_to_string(&path) {
        Ok(found) if found.trim_end() == FORMAT_MARKER => Ok(true),
        Ok(found) => Err(StorageError::BadFormat { path, found: found.trim_end().chars().take(64).collect() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            for name in file_names(dir)? {
                // What an initialisation interrupted by a crash leaves (see
                // `initialise`), and the lost+found of a mount point.
                let leftover = name == LOCK_FILE
                    || name == LOST_FOUND
                    || name.ends_with(TMP_SUFFIX)
                    || (name == segment_name(1) && fs::metadata(dir.join(&name)).is_ok_and(|m| m.len() == 0));
                if !leftover {
                    return Err(StorageError::NotDataDir { dir: dir.to_path_buf(), found: name });
                }
            }
            Ok(false)
        }
        Err(e) => Err(io_error(&path, "read")(e)),
    }
}

/// Creates the first, empty segment, then the marker. In that order a marker
/// always means the segments were there: a data directory whose segments
/// vanish is refused instead of silently starting empty.
pub(super) fn initialise(dir: &Path) -> Result<(), StorageError> {
    let segment = segment_path(dir, 1);
    File::create(&segment).and_then(|f| f.sync_all()).map_err(io_error(&segment, "create"))?;
    let tmp = dir.join(format!("{FORMAT_FILE}{TMP_SUFFIX}"));
    let mut f = File::create(&tmp).map_err(io_error(&tmp, "create"))?;
    f.write_all(format!("{FORMAT_MARKER}\n").as_bytes()).map_err(io_error(&tmp, "write"))?;
    f.sync_all().map_err(io_error(&tmp, "fsync"))?;
    let path = dir.join(FORMAT_FILE);
    fs::rename(&tmp, &path).map_err(io_error(&path, "rename"))?;
    sync_dir(dir)
}

/// Writes `data` to `path` through a temporary name, so `path` only ever
/// holds the complete, fsynced contents. The caller syncs the directory.
pub(super) fn write_new_file(path: &Path, data: &[u8]) -> Result<(), StorageError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp_name);
    let mut f =
        OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(io_error(&tmp, "create"))?;
    f.write_all(data).map_err(io_error(&tmp, "write"))?;
    f.sync_all().map_err(io_error(&tmp, "fsync"))?;
    fs::rename(&tmp, path).map_err(io_error(path, "rename"))
}

pub(super) fn remove_if_present(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(path, "remove")(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_past_eight_digits() {
        for n in [1, 99_999_999, 100_000_000, u64::MAX] {
            assert_eq!(parse_segment_name(&segment_name(n)), Some(n));
        }
        for name in ["wal-.log", "wal-1.log.tmp", "wal--1.log", "wal-+1.log", "xwal-1.log"] {
            assert_eq!(parse_segment_name(name), None, "{name}");
        }
    }
}
