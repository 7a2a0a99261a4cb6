//! Snapshot files: a snapshot is encoded and written to a file of its own,
//! on any thread, while the storage thread keeps appending; the WAL entry
//! that stores it only names the file. See the module docs of `storage`
//! for the format and the rules.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::StorageError;
use super::layout::{TMP_SUFFIX, io_error, sync_dir};
use super::wal::PbSnapshotFile;
use crate::replica::Seq;
use crate::snapshot::Snapshot;

const NAME_PREFIX: &str = "snap-";
const NAME_SUFFIX: &str = ".snap";
const MAGIC: &[u8; 8] = b"TRAFTSNP";
const VERSION: u32 = 1;
/// Magic, version (u32), payload length (u64), payload CRC-32 (u32).
pub(super) const FILE_HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// A snapshot written durably to its own file in a data directory, for
/// [`super::Storage::adopt_saved`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSnapshot {
    pub(super) file: PbSnapshotFile,
}

impl SavedSnapshot {
    /// The file's name in the data directory.
    pub fn file_name(&self) -> &str {
        &self.file.name
    }

    /// The snapshot's applied prefix.
    pub fn prefix(&self) -> Seq {
        self.file.applied.as_ref().map_or(0, |a| a.prefix_len())
    }

    /// The encoded snapshot's size; the file holds a small header more.
    pub fn payload_len(&self) -> u64 {
        self.file.payload_len
    }
}

/// `snap-<prefix:016x>-<nonce:016x>.snap`
fn file_name(prefix: Seq, nonce: u64) -> String {
    format!("{NAME_PREFIX}{:016x}-{nonce:016x}{NAME_SUFFIX}", prefix.max(0) as u64)
}

/// Whether `name` is a snapshot file's name (not a temporary one).
pub(super) fn is_snapshot_name(name: &str) -> bool {
    let Some(middle) = name.strip_prefix(NAME_PREFIX).and_then(|n| n.strip_suffix(NAME_SUFFIX)) else {
        return false;
    };
    let hex16 = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    middle.split_once('-').is_some_and(|(prefix, nonce)| hex16(prefix) && hex16(nonce))
}

/// Random enough that two saves never pick the same name: the standard
/// library's randomly keyed hasher over a process-wide counter, the process
/// id and the time. Collisions with an existing file are also checked.
fn nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    hasher.write_u128(now);
    hasher.finish()
}

/// Writes `snapshot` to a new snapshot file in `dir`: encoded, under a
/// temporary name with a header (magic, format version, payload length,
/// CRC-32 of the payload), fsynced, renamed to its final name, and the
/// directory fsynced. Safe to call from any thread while the directory's
/// `Storage` appends: it only creates a file no one else names. The file
/// counts for nothing until a durable write names it: register it with
/// [`super::Storage::adopt_saved`]; a file no durable write names is removed
/// at the next open.
pub fn save_snapshot(dir: &Path, snapshot: &Snapshot) -> Result<SavedSnapshot, StorageError> {
    let payload = snapshot.encode();
    let crc = crc32fast::hash(&payload);
    let (name, path, tmp, mut file) = create_unique(dir, snapshot.prefix())?;
    let mut header = Vec::with_capacity(FILE_HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc.to_le_bytes());
    let written = file
        .write_all(&header)
        .and_then(|()| file.write_all(&payload))
        .and_then(|()| file.sync_all())
        .map_err(io_error(&tmp, "write"))
        .and_then(|()| fs::rename(&tmp, &path).map_err(io_error(&path, "rename")));
    if let Err(e) = written {
        // Best effort: a leftover temporary file is also removed at the
        // next open, and the error that matters is the one returned.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)?;
    Ok(SavedSnapshot {
        file: PbSnapshotFile {
            name,
            payload_len: payload.len() as u64,
            payload_crc: crc,
            applied: Some(snapshot.applied.clone()),
        },
    })
}

/// A fresh name and its temporary file, created exclusively.
fn create_unique(dir: &Path, prefix: Seq) -> Result<(String, PathBuf, PathBuf, File), StorageError> {
    for _ in 0..16 {
        let name = file_name(prefix, nonce());
        let path = dir.join(&name);
        let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
        if fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((name, path, tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(&tmp, "create")(e)),
        }
    }
    let error = io::Error::new(io::ErrorKind::AlreadyExists, "16 random names in a row were taken");
    Err(io_error(dir, "name a new snapshot file in")(error))
}

/// Reads and checks the snapshot file `marker` names; `named_by` says where
/// the marker is, for the error. Anything but the complete, intact file the
/// marker describes is an error naming the file: the marker is durable, so
/// the snapshot was relied on (the records it covers may be gone).
pub(super) fn load(dir: &Path, marker: &PbSnapshotFile, named_by: &str) -> Result<Arc<Snapshot>, StorageError> {
    let fail = |problem: String| StorageError::Inconsistent {
        dir: dir.to_path_buf(),
        detail: format!("snapshot file {}, which {named_by} names, {problem}", dir.join(&marker.name).display()),
    };
    if !is_snapshot_name(&marker.name) {
        return Err(StorageError::Inconsistent {
            dir: dir.to_path_buf(),
            detail: format!(
                "{named_by} names {:?} as a snapshot file, which is not a snapshot file's name",
                marker.name
            ),
        });
    }
    let path = dir.join(&marker.name);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(fail("is missing".into())),
        Err(e) => return Err(io_error(&path, "read")(e)),
    };
    if bytes.len() < FILE_HEADER_LEN {
        return Err(fail(format!("is truncated: {} bytes, less than its {FILE_HEADER_LEN}-byte header", bytes.len())));
    }
    if &bytes[..8] != MAGIC {
        return Err(fail("does not start with the snapshot file magic".into()));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    if version != VERSION {
        return Err(fail(format!("has format version {version}; this traftctl reads version {VERSION}")));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().unwrap());
    let stored_crc = u32::from_le_bytes(bytes[20..24].try_into().unwrap());
    let payload = &bytes[FILE_HEADER_LEN..];
    if payload.len() as u64 != len {
        return Err(fail(format!(
            "holds {} payload bytes where its header says {len}: it is truncated",
            payload.len()
        )));
    }
    if (len, stored_crc) != (marker.payload_len, marker.payload_crc) {
        return Err(fail(format!(
            "holds a snapshot of {len} bytes with checksum {stored_crc:08x}, where the WAL names one of {} bytes with checksum {:08x}",
            marker.payload_len, marker.payload_crc
        )));
    }
    let crc = crc32fast::hash(payload);
    if crc != stored_crc {
        return Err(fail(format!("fails its checksum (stored {stored_crc:08x}, computed {crc:08x})")));
    }
    let snapshot = Snapshot::decode(payload).map_err(|e| fail(format!("does not decode: {e}")))?;
    if Some(&snapshot.applied) != marker.applied.as_ref() {
        return Err(fail("holds a snapshot of another applied set than the WAL names".into()));
    }
    Ok(Arc::new(snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{Cmd, TailBitmap};

    fn snapshot() -> Snapshot {
        let mut kv = crate::kv::KvState::default();
        kv.apply(&Cmd::set_str("k", "v"));
        Snapshot { applied: TailBitmap::from_prefix(300), kv, ..Snapshot::default() }
    }

    #[test]
    fn a_saved_snapshot_loads_back_and_names_never_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let first = save_snapshot(dir.path(), &snapshot()).unwrap();
        let second = save_snapshot(dir.path(), &snapshot()).unwrap();
        assert_ne!(first.file_name(), second.file_name());
        assert!(first.file_name().starts_with("snap-000000000000012c-"), "{}", first.file_name());
        assert!(is_snapshot_name(first.file_name()));
        assert_eq!(first.prefix(), 300);
        let loaded = load(dir.path(), &first.file, "a test").unwrap();
        assert_eq!(*loaded, snapshot());
        let size = fs::metadata(dir.path().join(first.file_name())).unwrap().len();
        assert_eq!(size, first.payload_len() + FILE_HEADER_LEN as u64);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }

    #[test]
    fn names_that_are_not_snapshot_files_are_recognised() {
        for name in ["snap-1-2.snap", "snap-000000000000012c-0000000000000001.snap.tmp", "../x.snap", "wal-1.log"] {
            assert!(!is_snapshot_name(name), "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        let marker = PbSnapshotFile { name: "../../etc/passwd".into(), ..PbSnapshotFile::default() };
        let err = load(dir.path(), &marker, "a test").unwrap_err().to_string();
        assert!(err.contains("not a snapshot file's name"), "{err}");
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let saved = save_snapshot(dir.path(), &snapshot()).unwrap();
        let path = dir.path().join(saved.file_name());
        let good = fs::read(&path).unwrap();
        let n = good.len();
        let mut flipped = good.clone();
        flipped[n - 1] ^= 0x01;
        let mut other_version = good.clone();
        other_version[8] = 9;
        let cases: [(&str, Vec<u8>); 5] = [
            ("truncated", good[..10].to_vec()),
            ("truncated", good[..n - 1].to_vec()),
            ("magic", [b"NOTASNAP", &good[8..]].concat()),
            ("version 9", other_version),
            ("checksum", flipped),
        ];
        for (what, bytes) in cases {
            fs::write(&path, &bytes).unwrap();
            let err = load(dir.path(), &saved.file, "wal-00000001.log at byte offset 0").unwrap_err().to_string();
            assert!(err.contains(&path.display().to_string()), "{what}: {err}");
            assert!(err.contains(what), "{what}: {err}");
            assert!(err.contains("wal-00000001.log at byte offset 0"), "{what}: {err}");
        }
        let other = PbSnapshotFile { payload_crc: saved.file.payload_crc ^ 1, ..saved.file.clone() };
        fs::write(&path, &good).unwrap();
        let err = load(dir.path(), &other, "a test").unwrap_err().to_string();
        assert!(err.contains("where the WAL names"), "{err}");
        fs::remove_file(&path).unwrap();
        let err = load(dir.path(), &saved.file, "a test").unwrap_err().to_string();
        assert!(err.contains("is missing"), "{err}");
    }
}
