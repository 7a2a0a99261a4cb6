//! Durable storage for one replica: a write-ahead log in a data directory.
//!
//! The replica emits `Action::Persist { id, write }`; the runtime hands the
//! writes to [`Storage::append`] in the order they were emitted, and reports
//! the highest id only after `append` returned `Ok`: `append` returns after
//! one `fdatasync` covering every write it was given, so nothing is reported
//! durable before it is on disk.
//!
//! # Semantics of a write
//!
//! Each `DurableWrite` is applied atomically, in order: the hard state is
//! replaced if present, then the snapshot is replaced if present, then the
//! listed seqs are deleted, then the records are put (replacing any record
//! with the same seq). The order matters: when a replica adopts a new leader
//! it drops its record at a seq and installs the leader's record there in
//! one write, which must keep the put; a compaction stores the snapshot and
//! deletes the records it covers in one write, so a crash never leaves the
//! records gone without the snapshot that replaces them.
//!
//! # On-disk layout
//!
//! ```text
//! FORMAT              "traftctl-data v1\n"; anything else is refused
//! LOCK                flock()ed while a Storage is open; never removed
//! wal-00000001.log    the first segment: writes 1, 2, ... from the start
//! wal-0000000N.log    N > 1: a checkpoint (the whole state as of write k)
//!                     followed by writes k+1, k+2, ...
//! *.tmp               a file being written; removed on open
//! ```
//!
//! Only the newest segment matters; older ones exist only between writing a
//! checkpoint and removing them. A segment is a sequence of entries:
//!
//! ```text
//! u32 LE  payload length (1 ..= 2^30)
//! u32 LE  CRC-32 (IEEE, as crc32fast computes it) of the payload
//! payload protobuf `WalEntry` (wal.rs): write number, fsync group, hard
//!         state, deleted seqs, put records, checkpoint flag, and the
//!         write's snapshot (`Snapshot::encode()`), if it stores one
//! ```
//!
//! There is no separate snapshot file: the snapshot lives inside the WAL
//! entries, in the entry of the write that stored it and then in every
//! checkpoint, so it is covered by the same checksums, fsync groups and
//! recovery rules as everything else. Only the newest one is kept in memory
//! and returned by [`Storage::open`]. Since an entry is at most 1 GiB, a
//! snapshot whose encoding is larger is refused by `append` with
//! [`StorageError::SnapshotTooLarge`] naming its size, before any of that
//! call's writes reach the file, rather than stored in an entry that
//! recovery would reject.
//!
//! Writes are numbered from 1 over the directory's life; each entry also
//! records the first write number of its `append` call (its fsync group).
//!
//! # Recovery
//!
//! [`Storage::open`] replays the newest segment and then:
//! * A bad entry (short header or payload, checksum mismatch, undecodable)
//!   followed by no valid entry of a *later* fsync group is a torn write: the
//!   crash hit the last `append`, which was never acknowledged. It is cut
//!   off (`set_len` + fsync) and reported as a warning naming file and offset.
//! * Any other bad entry is [`StorageError::Corrupt`]: a later group proves
//!   it was acknowledged, since a group is written only after the previous
//!   group's fsync returned. So is damage to a checkpoint (it is fsynced
//!   before its segment is named), a gap or repeat in write numbers, a
//!   snapshot that does not decode in an entry whose checksum matches, or a
//!   marker with no segments. Recovery never skips data.
//! * Segments older than the newest and `*.tmp` files are removed: they are
//!   what a crash during a checkpoint leaves.
//! * The newest segment and the directory are fsynced before the state is
//!   returned: a previous process may have died between write and fsync, and
//!   its writes, readable from the page cache, are about to be relied on.
//!
//! The final fsync group cannot be told apart from damage to it; it is the
//! only data recovery may drop, and only with a warning.
//!
//! # Checkpoints
//!
//! Once the newest segment is at least [`StorageOptions::checkpoint_bytes`]
//! and at least twice its own checkpoint, the next `append` first writes the
//! whole state (hard state, current snapshot, live records) to
//! `wal-{N+1}.log.tmp`, fsyncs it, renames it into place, fsyncs the
//! directory, and removes the older segments. The twice-the-checkpoint rule
//! keeps a state larger than the threshold from being rewritten on every
//! append. A checkpoint is about `snapshot + live records`, so the WAL holds
//! one segment of at most about
//! `max(checkpoint_bytes, 2 × (snapshot + live records)) + one append`,
//! plus the new checkpoint while one is written. Every snapshot written
//! since the last checkpoint is still in the segment, which the 2× rule
//! bounds: replacing snapshots fills the segment and brings on a checkpoint
//! that keeps only the newest.
//!
//! A checkpoint is one entry, so the whole state must fit in 1 GiB; if it
//! does not, the `append` that would write the checkpoint fails with
//! [`StorageError::TooLarge`].
//!
//! # Failures
//!
//! Any error from `append` poisons the `Storage`: later calls fail with
//! [`StorageError::Poisoned`] and the caller must stop the node. On Linux a
//! failed fsync may have dropped the dirty pages while marking them clean, so
//! retrying it can report success for data that is not on disk. The writes
//! of a failed call may still be found after a restart (if their bytes
//! reached the file), which is as safe as a crash before the acknowledgement.

#[doc(hidden)]
pub mod fuzzing;
mod layout;
mod lock;
mod wal;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::replica::{DurableState, DurableWrite, Seq};
use crate::snapshot::Snapshot;

use self::layout::{
    CLUSTER_ID_FILE, FORMAT_FILE, FORMAT_MARKER, LOCK_FILE, LOST_FOUND, TMP_SUFFIX, io_error, segment_path,
};
use self::lock::DirLock;
use self::wal::{Mirror, PbHardState, WalEntry};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// `error` is part of the message rather than the `source()`: the node
    /// reports storage failures with `to_string()`, and a chain printer would
    /// otherwise print the OS error twice.
    #[error("cannot {op} {path}: {error}")]
    Io { path: PathBuf, op: &'static str, error: io::Error },

    #[error(
        "data directory {dir} is locked: another traftctl is using it; stop that node first, or give this one a different data directory"
    )]
    Locked { dir: PathBuf },

    #[error(
        "{file}: corrupt WAL entry at byte offset {offset}: {detail}. The node will not start, to avoid losing acknowledged data: restore the directory from a backup, or remove this node from the cluster and add it back as a new member with an empty data directory"
    )]
    Corrupt { file: PathBuf, offset: u64, detail: String },

    #[error(
        "{dir}: {detail}. The node will not start, to avoid losing acknowledged data: restore the directory from a backup, or remove this node from the cluster and add it back as a new member with an empty data directory"
    )]
    Inconsistent { dir: PathBuf, detail: String },

    #[error(
        "{path}: unsupported data directory format {found:?} (this traftctl reads {FORMAT_MARKER:?}); run the traftctl version that created the directory, or give the node a new, empty data directory"
    )]
    BadFormat { path: PathBuf, found: String },

    #[error(
        "{dir} is not a traftctl data directory: it holds {found:?} but no {FORMAT_FILE} marker; give the node an empty or new directory"
    )]
    NotDataDir { dir: PathBuf, found: String },

    #[error("an entry of {len} bytes exceeds the WAL's limit of {} bytes per write", wal::MAX_PAYLOAD_LEN)]
    TooLarge { len: usize },

    #[error(
        "the snapshot of applied prefix {prefix} encodes to {len} bytes, more than the WAL's limit of {} bytes per write: the key-value state is too large to store",
        wal::MAX_PAYLOAD_LEN
    )]
    SnapshotTooLarge { len: usize, prefix: Seq },

    #[error(
        "storage in {dir} stopped after an earlier failure ({cause}); later writes are not durable: stop the node and restart it"
    )]
    Poisoned { dir: PathBuf, cause: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOptions {
    /// The newest segment's size that triggers a checkpoint.
    pub checkpoint_bytes: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions { checkpoint_bytes: 64 << 20 }
    }
}

/// Where appends go; a trait so tests can make writes and fsyncs fail.
trait WalFile: Send {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
}

impl WalFile for File {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        Write::write_all(self, data)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
}

/// A capacity above which the encoding buffer is released after an append,
/// so one huge batch does not pin its memory for the node's life.
const KEEP_BUF_CAPACITY: usize = 4 << 20;

/// An open, locked data directory. See the module docs.
pub struct Storage {
    dir: PathBuf,
    options: StorageOptions,
    file: Box<dyn WalFile>,
    segment: u64,
    segment_path: PathBuf,
    segment_len: u64,
    /// Payload length of the newest segment's checkpoint (0: none).
    checkpoint_len: u64,
    /// Number of the last durable write.
    last_index: u64,
    mirror: Mirror,
    /// `mirror` as a `DurableState`, built on demand: keeping a sorted `Vec`
    /// current on every put and delete would cost O(records) per write.
    view: OnceLock<DurableState>,
    buf: Vec<u8>,
    poisoned: Option<String>,
    /// Dropped last, so the directory stays locked while anything above may
    /// still touch it.
    _lock: DirLock,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("dir", &self.dir)
            .field("segment", &self.segment_path)
            .field("segment_len", &self.segment_len)
            .field("last_index", &self.last_index)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// The cluster this member belongs to, chosen when it first started
    /// (`None` before that). Kept apart from the WAL: it never changes, and
    /// a checkpoint need not carry it.
    pub fn cluster_id(&self) -> Result<Option<u64>, StorageError> {
        layout::read_cluster_id(&self.dir)
    }

    /// Records the cluster id, durably, before the member talks to anyone.
    pub fn record_cluster_id(&mut self, id: u64) -> Result<(), StorageError> {
        layout::write_cluster_id(&self.dir, id)
    }

    /// Opens (creating it and its missing parents durably if needed) and
    /// locks the data directory `dir`, and recovers its state. The warnings describe what recovery repaired; the
    /// caller should log them.
    pub fn open(dir: &Path) -> Result<(Storage, DurableState, Vec<String>), StorageError> {
        Self::open_with(dir, StorageOptions::default())
    }

    pub fn open_with(
        dir: &Path,
        options: StorageOptions,
    ) -> Result<(Storage, DurableState, Vec<String>), StorageError> {
        layout::create_dir_durably(dir)?;
        // Checked before locking too, so that a mistaken path (a home
        // directory, another program's data) is not left with a LOCK file.
        layout::check_format(dir)?;
        let lock = lock::lock_dir(dir)?;
        if !layout::check_format(dir)? {
            layout::initialise(dir)?;
        }

        let mut warnings = Vec::new();
        let mut segments = Vec::new();
        for name in layout::file_names(dir)? {
            let path = dir.join(&name);
            if name.ends_with(TMP_SUFFIX) {
                layout::remove_if_present(&path)?;
                warnings.push(format!("removed {}: an incomplete file left by a crash", path.display()));
            } else if let Some(number) = layout::parse_segment_name(&name) {
                segments.push(number);
            } else if ![FORMAT_FILE, LOCK_FILE, LOST_FOUND, CLUSTER_ID_FILE].contains(&name.as_str()) {
                warnings.push(format!("ignoring unexpected file {} in the data directory", path.display()));
            }
        }
        segments.sort_unstable();
        let Some(&newest) = segments.last() else {
            return Err(StorageError::Inconsistent {
                dir: dir.to_path_buf(),
                detail: format!(
                    "the {FORMAT_FILE} marker is there but no WAL segment (wal-*.log) is: the log was removed"
                ),
            });
        };

        let path = segment_path(dir, newest);
        let mut file = OpenOptions::new().read(true).write(true).open(&path).map_err(io_error(&path, "open"))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io_error(&path, "read"))?;
        let replayed = wal::replay_segment(&data, newest > 1).map_err(|(offset, detail)| StorageError::Corrupt {
            file: path.clone(),
            offset,
            detail,
        })?;
        if let Some(detail) = &replayed.torn {
            file.set_len(replayed.valid_len).map_err(io_error(&path, "truncate"))?;
            warnings.push(format!(
                "{}: truncated a torn write at byte offset {} ({} bytes: {detail}); a crash interrupted it before it was acknowledged",
                path.display(),
                replayed.valid_len,
                data.len() as u64 - replayed.valid_len,
            ));
        }
        drop(data);
        file.sync_all().map_err(io_error(&path, "fsync"))?;
        drop(file);

        let obsolete = &segments[..segments.len() - 1];
        for &number in obsolete {
            layout::remove_if_present(&segment_path(dir, number))?;
        }
        if !obsolete.is_empty() {
            warnings.push(format!(
                "removed {} segment(s) older than {} that an interrupted checkpoint left behind",
                obsolete.len(),
                path.display()
            ));
        }
        // Also makes durable whatever rename or removal the previous process
        // did not get to sync.
        layout::sync_dir(dir)?;

        // Append mode: the read handle's position is past a truncated tail,
        // and writing there would leave a hole of zeros.
        let file = OpenOptions::new().append(true).open(&path).map_err(io_error(&path, "open"))?;
        let storage = Storage {
            dir: dir.to_path_buf(),
            options,
            file: Box::new(file),
            segment: newest,
            segment_path: path,
            segment_len: replayed.valid_len,
            checkpoint_len: replayed.checkpoint_len,
            last_index: replayed.last_index,
            mirror: replayed.mirror,
            view: OnceLock::new(),
            buf: Vec::new(),
            poisoned: None,
            _lock: lock,
        };
        let state = storage.state().clone();
        Ok((storage, state, warnings))
    }

    /// Makes `writes` durable, in order, with one write and one fdatasync
    /// (group commit). `Ok` means all of them are on disk. After an `Err`
    /// none of them may be reported durable, and every later call fails:
    /// stop the node (see the module docs).
    pub fn append(&mut self, writes: &[DurableWrite]) -> Result<(), StorageError> {
        if let Some(cause) = &self.poisoned {
            return Err(StorageError::Poisoned { dir: self.dir.clone(), cause: cause.clone() });
        }
        if writes.is_empty() {
            return Ok(());
        }
        let result = self.try_append(writes);
        if let Err(e) = &result {
            self.poisoned = Some(e.to_string());
        }
        result
    }

    fn try_append(&mut self, writes: &[DurableWrite]) -> Result<(), StorageError> {
        if self.segment_len >= self.options.checkpoint_bytes
            && self.segment_len >= 2 * self.checkpoint_len
            && self.last_index > 0
        {
            self.checkpoint()?;
        }
        self.buf.clear();
        let batch = self.last_index + 1;
        for (index, write) in (batch..).zip(writes) {
            let snapshot = write.snapshot.as_deref().map(encode_snapshot).transpose()?;
            let head = WalEntry {
                index,
                batch,
                checkpoint: false,
                hard_state: write.hard_state.as_ref().map(PbHardState::from),
                delete: write.delete.clone(),
                put: Vec::new(),
                snapshot: None,
            };
            wal::encode_entry(&mut self.buf, &head, &write.put, snapshot.as_deref())
                .map_err(|len| StorageError::TooLarge { len })?;
        }
        self.file.write_all(&self.buf).map_err(io_error(&self.segment_path, "write"))?;
        self.file.sync_data().map_err(io_error(&self.segment_path, "fsync"))?;

        self.segment_len += self.buf.len() as u64;
        self.last_index += writes.len() as u64;
        for write in writes {
            self.mirror.apply(
                write.hard_state.clone(),
                write.snapshot.clone(),
                &write.delete,
                write.put.iter().cloned(),
            );
        }
        self.view = OnceLock::new();
        if self.buf.capacity() > KEEP_BUF_CAPACITY {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Starts a new segment with the whole state, then drops the old ones.
    /// A crash at any step leaves either the old segment as the newest (the
    /// new one still a `.tmp`, or its rename not yet durable: nothing was
    /// appended to it) or the complete new one beside leftovers; recovery
    /// handles both.
    fn checkpoint(&mut self) -> Result<(), StorageError> {
        let next = self.segment + 1;
        let path = segment_path(&self.dir, next);
        let head = WalEntry {
            index: self.last_index,
            batch: self.last_index,
            checkpoint: true,
            hard_state: Some(PbHardState::from(&self.mirror.hard_state)),
            delete: Vec::new(),
            put: Vec::new(),
            snapshot: None,
        };
        // Re-encoded rather than kept encoded since its write: checkpoints are
        // rare, and keeping the bytes would double the snapshot's memory.
        let snapshot = self.mirror.snapshot.as_deref().map(Snapshot::encode);
        // Not `self.buf`: a checkpoint is large and rare, and the append
        // buffer would keep its capacity.
        let mut data = Vec::new();
        wal::encode_entry(&mut data, &head, self.mirror.records.values(), snapshot.as_deref())
            .map_err(|len| StorageError::TooLarge { len })?;
        layout::write_new_file(&path, &data)?;
        // Before anything is appended to the new segment, or those appends
        // could vanish with an undone rename.
        layout::sync_dir(&self.dir)?;
        let file = OpenOptions::new().append(true).open(&path).map_err(io_error(&path, "open"))?;
        let old = self.segment;
        self.file = Box::new(file);
        self.segment = next;
        self.segment_path = path;
        self.segment_len = data.len() as u64;
        self.checkpoint_len = (data.len() - wal::HEADER_LEN) as u64;
        layout::remove_if_present(&segment_path(&self.dir, old))?;
        layout::sync_dir(&self.dir)
    }

    /// The state as of the last successful `append`: what a restart would
    /// recover. Built on first use after an append, so call it sparingly.
    pub fn state(&self) -> &DurableState {
        self.view.get_or_init(|| DurableState {
            hard_state: self.mirror.hard_state.clone(),
            snapshot: self.mirror.snapshot.clone(),
            records: self.mirror.records.values().cloned().collect(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many writes were ever made durable in this directory. 0 means the
    /// replica has nothing to forget: it never persisted a vote or a record,
    /// so it may start as a brand-new member.
    pub fn durable_writes(&self) -> u64 {
        self.last_index
    }
}

/// Checked on its own so the error names the snapshot, not just an entry.
fn encode_snapshot(snapshot: &Snapshot) -> Result<Vec<u8>, StorageError> {
    let bytes = snapshot.encode();
    if bytes.len() > wal::MAX_PAYLOAD_LEN {
        return Err(StorageError::SnapshotTooLarge { len: bytes.len(), prefix: snapshot.prefix() });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{Cmd, LeaderId, Record};

    fn put(seq: i64) -> DurableWrite {
        let record = Record {
            author: Some(LeaderId { term: 1, id: 1 }),
            seq,
            cmd: Some(Cmd { op: "set".into(), key: format!("k{seq}"), value: None }),
            depends: None,
            overrides: None,
        };
        DurableWrite { put: vec![record], ..DurableWrite::default() }
    }

    /// Passes the first `ok_writes` writes to the real file, then fails:
    /// at the write (`fail_sync` false, ENOSPC) or at the fsync after it
    /// reached the file (EIO), as a full or failing disk does.
    struct Failing {
        inner: File,
        ok_writes: usize,
        fail_sync: bool,
        synced_after_failure: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }

    impl WalFile for Failing {
        fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
            if self.ok_writes == 0 && !self.fail_sync {
                // A partial write, as a disk filling up mid-way produces.
                Write::write_all(&mut self.inner, &data[..data.len() - 3])?;
                return Err(io::Error::from_raw_os_error(28));
            }
            Write::write_all(&mut self.inner, data)
        }

        fn sync_data(&mut self) -> io::Result<()> {
            if self.ok_writes == 0 {
                self.synced_after_failure.store(true, std::sync::atomic::Ordering::SeqCst);
                return Err(io::Error::from_raw_os_error(5));
            }
            self.ok_writes -= 1;
            self.inner.sync_data()
        }
    }

    fn inject(storage: &mut Storage, fail_sync: bool) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        let inner = OpenOptions::new().append(true).open(&storage.segment_path).unwrap();
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        storage.file = Box::new(Failing { inner, ok_writes: 1, fail_sync, synced_after_failure: flag.clone() });
        flag
    }

    #[test]
    fn a_failed_write_or_fsync_poisons_the_storage() {
        for fail_sync in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (mut storage, _, _) = Storage::open(dir.path()).unwrap();
            inject(&mut storage, fail_sync);
            storage.append(&[put(1)]).unwrap();
            let before = storage.state().clone();

            let err = storage.append(&[put(2), put(3)]).unwrap_err();
            let op = if fail_sync { "fsync" } else { "write" };
            let msg = err.to_string();
            assert!(matches!(err, StorageError::Io { op: o, .. } if o == op), "{msg}");
            assert!(msg.contains("wal-00000001.log"), "{msg}");
            // The failed writes are not part of the durable state.
            assert_eq!(storage.state(), &before);

            let err = storage.append(&[put(4)]).unwrap_err();
            assert!(matches!(err, StorageError::Poisoned { .. }), "{err}");
            assert!(err.to_string().contains(op), "{err}");
            drop(storage);

            // A restart sees every write whose bytes fully reached the file
            // (all of them when only the fsync failed: the page cache still
            // has them), in order, and never a partial one.
            let (_, state, warnings) = Storage::open(dir.path()).unwrap();
            let seqs: Vec<i64> = state.records.iter().map(|r| r.seq).collect();
            if fail_sync {
                assert_eq!(seqs, [1, 2, 3]);
                assert!(warnings.is_empty(), "{warnings:?}");
            } else {
                assert_eq!(seqs, [1, 2]);
                assert!(warnings.iter().any(|w| w.contains("torn")), "{warnings:?}");
            }
        }
    }

    #[test]
    fn storage_can_move_to_the_storage_thread() {
        fn send<T: Send>() {}
        send::<Storage>();
    }

    #[test]
    fn a_failed_fsync_is_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _, _) = Storage::open(dir.path()).unwrap();
        let synced = inject(&mut storage, true);
        storage.append(&[put(1)]).unwrap();
        storage.append(&[put(2)]).unwrap_err();
        synced.store(false, std::sync::atomic::Ordering::SeqCst);
        storage.append(&[put(2)]).unwrap_err();
        assert!(!synced.load(std::sync::atomic::Ordering::SeqCst), "a poisoned storage must not fsync again");
    }
}
