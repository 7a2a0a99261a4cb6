//! File names in a data directory, its format marker, and the file-system
//! steps shared by the rest of the module.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::StorageError;

pub(super) const FORMAT_FILE: &str = "FORMAT";
pub(super) const FORMAT_MARKER: &str = "traftctl-data v2";
/// The format before preallocated segments and snapshot files; upgraded at
/// open (see `super::upgrade`).
pub(super) const FORMAT_MARKER_V1: &str = "traftctl-data v1";
pub(super) const LOCK_FILE: &str = "LOCK";
/// The cluster this directory's member belongs to (see [`super::Storage::cluster_id`]).
pub(super) const CLUSTER_ID_FILE: &str = "CLUSTER_ID";
pub(super) const TMP_SUFFIX: &str = ".tmp";
/// A file no durable write needs any more, renamed so that its removal
/// (which frees its blocks, milliseconds for a snapshot file) can happen
/// off the storage thread; open removes any left over, quietly.
pub(super) const OBSOLETE_SUFFIX: &str = ".obsolete";
/// A segment a newer durable one replaced, kept to be the file of the next
/// segment prepared; open removes any left over, quietly.
pub(super) const SPARE_SUFFIX: &str = ".spare";
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

/// Where segment `number` is prepared (zero-filled) or, during a rotation,
/// written before it gets its name.
pub(super) fn segment_tmp_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{}{TMP_SUFFIX}", segment_name(number)))
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

/// Creates `dir` and its missing ancestors so that they survive a power
/// loss, and returns the directories it fsynced: `dir`, each directory it
/// created, and the first ancestor that already existed (which holds the
/// entry of the topmost new one). A directory entry is durable only once its
/// parent is fsynced; without that, a power loss right after the first start
/// can take the whole data directory with it, and the node would come back
/// as a fresh member that voted nothing (rule 10: a second vote in a term).
///
/// Levels are created one by one, top down, so that an error names the
/// directory that could not be made rather than only the path asked for.
pub(super) fn create_dir_durably(dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let mut missing = Vec::new();
    let mut anchor = None;
    let mut cur = dir;
    loop {
        match fs::symlink_metadata(cur) {
            // NotADirectory: a file on the way up; creating the level
            // below it is what reports that, naming the level.
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                missing.push(cur.to_path_buf())
            }
            // Exists, or cannot be inspected: either way not ours to create;
            // creating below it reports whatever is wrong with it.
            _ => {
                anchor = Some(cur.to_path_buf());
                break;
            }
        }
        match cur.parent() {
            // A relative path's last ancestor is "", the working directory.
            Some(p) if p.as_os_str().is_empty() => {
                anchor = Some(PathBuf::from("."));
                break;
            }
            Some(p) => cur = p,
            None => break,
        }
    }
    for p in missing.iter().rev() {
        match fs::create_dir(p) {
            Ok(()) => {}
            // Another process made it meanwhile; syncing it is still right.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => {}
            Err(e) => return Err(io_error(p, "create directory")(e)),
        }
    }
    if missing.is_empty() && !dir.is_dir() {
        // `dir` exists but is a file (or a dangling link): say so here
        // rather than as a confusing error from some file inside it.
        return Err(io_error(dir, "use as a data directory")(io::Error::from(io::ErrorKind::NotADirectory)));
    }
    // Deepest first (`missing` starts at `dir`): each sync makes the entry
    // of the one before it durable. With nothing created, `anchor` is `dir`.
    let mut synced = missing;
    synced.extend(anchor);
    for p in &synced {
        sync_dir(p)?;
    }
    Ok(synced)
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

/// What the format marker says about a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// No marker and nothing that could be data: it may be initialised.
    Uninitialised,
    /// Today's format.
    Current,
    /// `traftctl-data v1`, to be upgraded.
    V1,
}

/// Checks the format marker; anything but a known format, or data without
/// a marker, is refused.
pub(super) fn check_format(dir: &Path) -> Result<Format, StorageError> {
    let path = dir.join(FORMAT_FILE);
    match fs::read_to_string(&path) {
        Ok(found) if found.trim_end() == FORMAT_MARKER => Ok(Format::Current),
        Ok(found) if found.trim_end() == FORMAT_MARKER_V1 => Ok(Format::V1),
        Ok(found) => Err(StorageError::BadFormat { path, found: found.trim_end().chars().take(64).collect() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            for name in file_names(dir)? {
                // What an initialisation interrupted by a crash leaves (see
                // `initialise`), and the lost+found of a mount point.
                let leftover = name == LOCK_FILE
                    || name == LOST_FOUND
                    || name.ends_with(TMP_SUFFIX)
                    || (name == segment_name(1) && holds_only_zeros(&dir.join(&name))?);
                if !leftover {
                    return Err(StorageError::NotDataDir { dir: dir.to_path_buf(), found: name });
                }
            }
            Ok(Format::Uninitialised)
        }
        Err(e) => Err(io_error(&path, "read")(e)),
    }
}

/// Whether the file is empty or all zeros: a first segment that never held
/// a write (v1 created it empty, this format zero-filled).
fn holds_only_zeros(path: &Path) -> Result<bool, StorageError> {
    let mut f = File::open(path).map_err(io_error(path, "open"))?;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut chunk).map_err(io_error(path, "read"))?;
        if n == 0 {
            return Ok(true);
        }
        if super::wal::first_nonzero(&chunk[..n], 0).is_some() {
            return Ok(false);
        }
    }
}

/// Creates the first segment, zero-filled to `capacity` and complete under
/// its name, then the marker. In that order a marker always means the
/// segments were there: a data directory whose segments vanish is refused
/// instead of silently starting empty.
pub(super) fn initialise(dir: &Path, capacity: u64) -> Result<(), StorageError> {
    let prepared = super::segment::prepare(dir, 1, capacity, None, None)?;
    let segment = segment_path(dir, 1);
    fs::rename(&prepared.tmp_path, &segment).map_err(io_error(&segment, "rename"))?;
    // The segment's name is durable before the marker's can be.
    sync_dir(dir)?;
    write_format(dir)?;
    // `create_dir_durably` synced the parent only if it made `dir`; an
    // operator's `mkdir`, or a run that died before its sync, leaves the
    // entry possibly only in the page cache, and losing it loses the marker
    // and every write below it. Nothing has been written yet, so this is the
    // last moment it is free.
    match dir.parent() {
        Some(p) if p.as_os_str().is_empty() => sync_dir(Path::new(".")),
        Some(p) => sync_dir(p),
        None => Ok(()),
    }
}

/// Writes today's marker atomically (temporary file, fsync, rename,
/// directory fsync): a crash leaves the old marker or the new one.
pub(super) fn write_format(dir: &Path) -> Result<(), StorageError> {
    write_new_file(&dir.join(FORMAT_FILE), format!("{FORMAT_MARKER}\n").as_bytes())?;
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

/// The cluster id recorded in `dir`, if one is: 16 hex digits and a newline.
pub(super) fn read_cluster_id(dir: &Path) -> Result<Option<u64>, StorageError> {
    let path = dir.join(CLUSTER_ID_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => match u64::from_str_radix(text.trim_end(), 16) {
            Ok(id) if id != 0 => Ok(Some(id)),
            _ => Err(StorageError::Inconsistent {
                dir: dir.to_path_buf(),
                detail: format!(
                    "{CLUSTER_ID_FILE} holds {:?}, not a cluster id",
                    text.chars().take(32).collect::<String>()
                ),
            }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&path, "read")(e)),
    }
}

/// Records the cluster id: the complete file under its name (temporary
/// file, fsync, rename) and the name itself (directory fsync), so a crash
/// leaves either no id or the whole id.
pub(super) fn write_cluster_id(dir: &Path, id: u64) -> Result<(), StorageError> {
    write_new_file(&dir.join(CLUSTER_ID_FILE), format!("{id:016x}\n").as_bytes())?;
    sync_dir(dir)
}

pub(super) fn remove_if_present(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(path, "remove")(e)),
        _ => Ok(()),
    }
}

/// Renames `path` to `<path><suffix>`; `None` if it was already gone.
fn rename_adding(path: &Path, suffix: &str) -> Result<Option<PathBuf>, StorageError> {
    let mut renamed = path.as_os_str().to_owned();
    renamed.push(suffix);
    let renamed = PathBuf::from(renamed);
    match fs::rename(path, &renamed) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, "rename")(e)),
        Ok(()) => Ok(Some(renamed)),
    }
}

/// Renames a replaced segment to its `*.spare` name (see [`SPARE_SUFFIX`]).
/// The rename need not be durable: open removes segments older than the
/// newest as well. `None` if it was already gone.
pub(super) fn keep_as_spare(path: &Path) -> Result<Option<PathBuf>, StorageError> {
    rename_adding(path, SPARE_SUFFIX)
}

/// Removes `path`: by name at once (renamed to `<path>.obsolete`), its
/// blocks on a short-lived thread. Freeing them took 1-10 ms for a snapshot
/// file of a few MB under load, on the storage thread every write waits for
/// (an old WAL segment is 64 MiB). Should the removal on the side fail, the
/// next open removes the obsolete file.
pub(super) fn remove_on_the_side(path: &Path) -> Result<(), StorageError> {
    match rename_adding(path, OBSOLETE_SUFFIX)? {
        Some(obsolete) => unlink_on_the_side(obsolete),
        None => Ok(()),
    }
}

/// Unlinks, on a short-lived thread, a file that open would remove unread
/// (an obsolete file, or a spare no preparation took); see
/// [`remove_on_the_side`].
pub(super) fn unlink_on_the_side(obsolete: PathBuf) -> Result<(), StorageError> {
    let spawned = std::thread::Builder::new().name("traft-remove".into()).spawn({
        let obsolete = obsolete.clone();
        move || {
            super::run_in_background();
            fs::remove_file(obsolete)
        }
    });
    if spawned.is_err() {
        remove_if_present(&obsolete)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creating_a_nested_directory_syncs_every_new_level_and_the_first_old_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        let synced = create_dir_durably(&dir).unwrap();
        let want = ["a/b/c", "a/b", "a"].map(|p| tmp.path().join(p));
        assert_eq!(synced[..3], want);
        assert_eq!(synced[3], tmp.path());
        assert_eq!(synced.len(), 4);
        assert!(dir.is_dir());

        // Nothing new: only the directory itself, no ancestor.
        assert_eq!(create_dir_durably(&dir).unwrap(), std::slice::from_ref(&dir));

        // One new level below an existing one.
        let d = dir.join("d");
        assert_eq!(create_dir_durably(&d).unwrap(), [d.clone(), dir]);
    }

    #[test]
    fn a_relative_path_is_anchored_at_the_working_directory() {
        // Removed even if the test fails: it lives in the working directory.
        struct Cleanup(PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = fs::remove_dir_all(&self.0);
            }
        }
        let top = PathBuf::from(format!("target-layout-test-{}", std::process::id()));
        let _cleanup = Cleanup(top.clone());
        let dir = top.join("x");
        // The walk must end at ".", not at "", which cannot be opened.
        assert_eq!(create_dir_durably(&dir).unwrap(), [dir.clone(), top, PathBuf::from(".")]);
    }

    #[test]
    fn a_level_that_cannot_be_created_is_named_with_the_cause() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        File::create(&file).unwrap();
        let err = create_dir_durably(&file.join("x/y")).unwrap_err().to_string();
        // The level that failed, not only the path asked for, and why.
        assert!(err.contains(&format!("cannot create directory {}:", file.join("x").display())), "{err}");
        assert!(err.to_lowercase().contains("not a directory"), "{err}");

        let err = create_dir_durably(&file).unwrap_err().to_string();
        assert!(err.contains(&file.display().to_string()) && err.contains("not a directory"), "{err}");
    }

    #[test]
    fn a_read_only_parent_is_named_with_the_cause() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let ro = tmp.path().join("ro");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        let dir = ro.join("data");
        let result = create_dir_durably(&dir);
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
        match result {
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("cannot create directory {}:", dir.display())), "{msg}");
                assert!(msg.contains("ermission denied"), "{msg}");
            }
            // Root ignores directory permissions; the case above covers the
            // error path then.
            Ok(_) => assert!(dir.is_dir()),
        }
    }

    #[test]
    fn a_cluster_id_round_trips_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_cluster_id(dir.path()).unwrap(), None);
        write_cluster_id(dir.path(), 0x00ab_cdef_0123_4567).unwrap();
        assert_eq!(read_cluster_id(dir.path()).unwrap(), Some(0x00ab_cdef_0123_4567));
        assert_eq!(fs::read_to_string(dir.path().join(CLUSTER_ID_FILE)).unwrap(), "00abcdef01234567\n");
        assert!(!dir.path().join(format!("{CLUSTER_ID_FILE}{TMP_SUFFIX}")).exists());
        fs::write(dir.path().join(CLUSTER_ID_FILE), "not hex\n").unwrap();
        let err = read_cluster_id(dir.path()).unwrap_err().to_string();
        assert!(err.contains(CLUSTER_ID_FILE), "{err}");
    }

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
