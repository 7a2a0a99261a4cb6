//! Durable storage for one replica: a write-ahead log of preallocated
//! segments, and snapshot files, in a data directory.
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
//! The recovered state ([`Storage::open`], [`Storage::state`]) is the result
//! of applying every durable write in order, with one relaxation: a record
//! at a seq that the current snapshot's `applied` set contains is not kept
//! (config records excepted), whether it was there when the snapshot was
//! stored or put after it. The snapshot speaks for those records: the
//! replica treats every seq below the snapshot's prefix as compacted after
//! a restart, re-holds the snapshot's `tail_records` for its applied seqs
//! above the prefix, and takes its config records from the snapshot too
//! (docs/protocol.md, "Durability"). Keeping only the records a snapshot
//! does not cover is what keeps checkpoints small.
//!
//! # On-disk layout
//!
//! ```text
//! FORMAT                "traftctl-data v2\n"; "traftctl-data v1\n" is
//!                       upgraded at open (see below); anything else is refused
//! LOCK                  flock()ed while a Storage is open; never removed
//! CLUSTER_ID            the cluster this member belongs to
//! wal-00000001.log      the first segment: writes 1, 2, ... from the start
//! wal-0000000N.log      N > 1: a checkpoint (the state as of write k)
//!                       followed by writes k+1, k+2, ...
//! wal-0000000N.log.tmp  the next segment, zero-filled and waiting; or one a
//!                       rotation was writing when it crashed
//! snap-P-R.snap         a snapshot file (P: its applied prefix, R: random;
//!                       both 16 hex digits)
//! wal-0000000N.log.spare
//!                       the segment the last rotation replaced, kept to
//!                       be the file of the next one prepared
//! *.tmp                 any other file being written
//! *.obsolete            a segment or snapshot file no durable write needs,
//!                       being removed on a thread of its own
//! ```
//!
//! Every `*.tmp`, `*.obsolete` and `*.spare` is removed on open. Only the
//! newest segment matters; an older one exists only between naming a new
//! segment and renaming the one before it `*.spare`.
//!
//! # Segments
//!
//! A segment has a fixed capacity and is zero-filled and fsynced before it
//! is used. A new directory's first segment holds 1 MiB, and each next one
//! twice its predecessor, up to [`StorageOptions::segment_bytes`] (64 MiB by
//! default): a member that writes little never pays for 64 MiB of zeros,
//! one under load reaches full-size segments after about 127 MiB of log.
//! Once the current segment is half full, a background thread prepares the
//! next one as `wal-{N+1}.log.tmp`: in the file of the segment the last
//! rotation replaced, if there is one, renamed and its bytes overwritten
//! with zeros (shortened or extended to the new capacity), otherwise in a
//! new file. Overwriting writes into pages the page cache holds and blocks
//! the file system has allocated. Filling new files was a tenth of a loaded
//! cluster's CPU on the virtual machine measured (docs/performance.md).
//! Appends write in place, so their `fdatasync` commits no metadata: the
//! file's size never changes, and every block was really written (a
//! `fallocate`d block is an unwritten extent whose first write still
//! changes metadata). If that segment is not ready when it is needed, the
//! storage thread waits for it, or prepares one itself if there is none.
//! The entries, from offset 0, then zeros:
//!
//! ```text
//! u32 LE  payload length (1 ..= 2^30)
//! u32 LE  CRC-32 (IEEE, as crc32fast computes it) of the payload
//! payload protobuf `WalEntry` (wal.rs): write number, fsync group, hard
//!         state, deleted seqs, put records, checkpoint flag, and the
//!         snapshot file the write stores, if it stores one (its name,
//!         payload length and CRC-32, and its applied set)
//! ```
//!
//! Writes are numbered from 1 over the directory's life; each entry also
//! records the first write number of its `append` call (its fsync group).
//! A write's entry is at most 1 GiB; an `append` with a larger one fails
//! with [`StorageError::TooLarge`] before anything reaches the file.
//!
//! # Snapshot files
//!
//! A snapshot is never inside the WAL. [`save_snapshot`] encodes it and
//! writes `snap-P-R.snap.tmp`: the magic `TRAFTSNP`, a format version (u32
//! LE, 1), the payload length (u64 LE), the payload's CRC-32 (u32 LE), then
//! `Snapshot::encode()`; fsyncs it, renames it, and fsyncs the directory.
//! It runs on any thread while the storage thread keeps appending; the
//! replica then registers the result with [`Storage::adopt_saved`]. A write
//! whose snapshot is `Arc::ptr_eq` to a registered one only names the file
//! (a marker); a write whose snapshot was not saved first (an installed
//! peer snapshot) has it saved by `append` before its entry is written. A
//! file counts only once a durable write names it, and the newest marker
//! in the newest segment names the snapshot a restart loads. A file is
//! removed once a newer marker is durable (renamed obsolete at once and
//! unlinked on the side: freeing a few MB of blocks took milliseconds of
//! the storage thread), and at open every snapshot file but the one the
//! newest marker names is removed; a registered file not yet named is
//! never removed while the `Storage` is open.
//!
//! # Rotation
//!
//! When an append does not fit in the current segment, the next one starts
//! with a checkpoint entry holding the hard state, the current snapshot's
//! marker and the live records the snapshot does not cover (those since
//! the last snapshot, typically), followed by the append's entries, all in
//! one fsync. Then the segment is named (rename, directory fsync) and the
//! older one renamed `*.spare`: the next preparation takes it (above), and
//! a spare no preparation took is unlinked on the side. A crash
//! before the name is durable leaves the old segment as the newest (the new
//! one a `.tmp`, removed at open) and the append unacknowledged; after it,
//! the new segment is complete and the old one a leftover. If the
//! checkpoint and the append do not fit in a segment, that segment is made
//! larger: twice what they need, zero-filled on the spot, so the appends
//! that follow still find room.
//!
//! A checkpoint is smallest just after a snapshot marker, so rotation is
//! started early there: once a marker leaves the segment at least half
//! full, with less space left than twice the log written between the last
//! two markers, the next append rotates the same way, if the next segment
//! is already prepared (otherwise a later append does). Rotating only when
//! the segment was full wrote a checkpoint of up to a snapshot interval's
//! records on the storage thread, a stall every writer waited out; early
//! rotation leaves at most two intervals of a segment unused instead.
//!
//! A checkpoint is one entry, so the live records must fit in 1 GiB; if
//! they do not, the `append` that would rotate fails with
//! [`StorageError::TooLarge`].
//!
//! # Disk use
//!
//! At most two segments (the current one and, once it is half full, the
//! next; before that, the one it replaced, kept for the next) of
//! `max(segment_bytes, 2 × (checkpoint + append))` each, plus the snapshot
//! files: the current one, those registered and not yet named, and one
//! being saved; and, for the moment it takes to unlink it, the obsolete
//! snapshot file a compaction left. Rotation never rewrites a
//! snapshot, so its cost is the records since the last snapshot, not the
//! whole state.
//!
//! # Recovery
//!
//! [`Storage::open`] replays the newest segment and then:
//! * Where an entry should start, a zero header followed only by zeros is
//!   the clean end of the log. The scan over them skips runs of zeros a
//!   block at a time, so a mostly empty 64 MiB segment recovers quickly.
//! * Any other bad entry (short header or payload, checksum mismatch,
//!   undecodable) followed by no valid entry of a *later* fsync group is a
//!   torn write: the crash hit the last `append`, which was never
//!   acknowledged. Its bytes are zeroed (the segment keeps its size) and
//!   fsynced, and a warning names the file and offset.
//! * Any other bad entry is [`StorageError::Corrupt`]: a later group proves
//!   it was acknowledged, since a group is written only after the previous
//!   group's fsync returned. So is damage to a checkpoint (it is fsynced
//!   before its segment is named), a gap or repeat in write numbers, a
//!   snapshot reference or inline snapshot that does not decode in an entry
//!   whose checksum matches, or a marker with no segments. Recovery never
//!   skips data.
//! * The snapshot file the newest marker names is loaded; a missing,
//!   truncated, or damaged file, or one that is not what the marker
//!   describes (length, checksum, applied set), is
//!   [`StorageError::Inconsistent`] naming the file.
//! * Segments older than the newest, snapshot files the newest marker does
//!   not name, and `*.tmp` files are removed: they are what a crash during
//!   a rotation or a snapshot save leaves. So are `*.obsolete` and `*.spare`
//!   files, quietly: a stop while one was being removed, or kept for the
//!   next preparation, leaves it. A segment taken for a preparation is
//!   always older than one whose name was durable before it was touched, so
//!   under whatever name a crash leaves it (its own, spare, or a `.tmp`),
//!   open removes it unread, zeroed or not.
//! * The newest segment and the directory are fsynced before the state is
//!   returned: a previous process may have died between write and fsync, and
//!   its writes, readable from the page cache, are about to be relied on.
//!
//! The final fsync group cannot be told apart from damage to it; it is the
//! only data recovery may drop, and only with a warning.
//!
//! # Upgrading format v1
//!
//! Format v1 had one growing segment (no preallocation) and snapshots
//! inside WAL entries (field 7 of `WalEntry`, still read for this). At open
//! a v1 directory is replayed with the same rules (its torn tail is left as
//! it is: the file is about to go), its snapshot (if any) is written to a
//! snapshot file, a new segment with a checkpoint naming it is written,
//! fsynced and named, the marker is switched atomically (temporary file,
//! fsync, rename, directory fsync), and then the v1 segments are removed. A
//! crash at any step leaves a directory that opens correctly: until the
//! marker switches, the upgrade runs again from the newest segment, which
//! this replay reads whether it is the v1 one or the new one.
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
mod segment;
mod snapfile;
mod upgrade;
mod wal;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::pb::Record;
use crate::replica::{DurableState, DurableWrite, Seq};
use crate::snapshot::Snapshot;

pub use self::snapfile::{SavedSnapshot, save_snapshot};

/// How much less CPU a background storage thread gets than the write path's
/// threads when both want it: 10 nice levels weigh about a tenth.
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's priority, for work no request waits on:
/// encoding and writing a snapshot, zero-filling the next WAL segment,
/// freeing and removing what a compaction left. On a machine with few
/// cores their bursts of CPU (tens of ms per snapshot interval, on every
/// member) otherwise take a core from the member and storage threads while
/// requests wait. Relative to the thread's nice value, so a member started
/// with `nice` keeps the difference. Best effort: a failure leaves the
/// thread as it was. Linux keeps a nice value per thread, which is what
/// `PRIO_PROCESS` with the thread's own id reads and changes.
pub fn run_in_background() {
    // SAFETY: plain system calls about the calling thread; no memory passed.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, (current + BACKGROUND_NICE).min(19));
    }
}

/// Below this many records freeing them costs less than a thread would.
const FREE_ON_THE_SIDE_FROM: usize = 1024;

/// Frees `records` on a short-lived thread if there are many, as after a
/// compaction: a snapshot interval's records (10,000 by default) took about
/// 2 ms to free, on a thread every write in flight waits for (the member's,
/// and the storage thread's for its copy).
pub fn free_records_on_the_side(records: BTreeMap<Seq, Record>) {
    if records.len() >= FREE_ON_THE_SIDE_FROM {
        free_on_the_side(records);
    }
}

/// Frees `value` on a short-lived thread of its own. If the thread cannot
/// be started, `value` is freed here.
fn free_on_the_side<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new().name("traft-free".into()).spawn(move || {
        run_in_background();
        drop(value)
    });
}

use self::layout::{
    CLUSTER_ID_FILE, FORMAT_FILE, FORMAT_MARKER, FORMAT_MARKER_V1, Format, LOCK_FILE, LOST_FOUND, OBSOLETE_SUFFIX,
    SPARE_SUFFIX, TMP_SUFFIX, io_error, segment_path,
};
use self::lock::DirLock;
use self::segment::Preparer;
use self::wal::{Live, PbHardState, Replayed, SnapshotMarker, WalEntry};

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
        "{path}: unsupported data directory format {found:?} (this traftctl reads {FORMAT_MARKER:?} and upgrades {FORMAT_MARKER_V1:?}); run the traftctl version that created the directory, or give the node a new, empty data directory"
    )]
    BadFormat { path: PathBuf, found: String },

    #[error(
        "{dir} is not a traftctl data directory: it holds {found:?} but no {FORMAT_FILE} marker; give the node an empty or new directory"
    )]
    NotDataDir { dir: PathBuf, found: String },

    #[error("an entry of {len} bytes exceeds the WAL's limit of {} bytes per write", wal::MAX_PAYLOAD_LEN)]
    TooLarge { len: usize },

    #[error(
        "storage in {dir} stopped after an earlier failure ({cause}); later writes are not durable: stop the node and restart it"
    )]
    Poisoned { dir: PathBuf, cause: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOptions {
    /// The capacity of a WAL segment, zero-filled before use. A rotation
    /// whose checkpoint and append need more makes that segment larger.
    pub segment_bytes: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions { segment_bytes: 64 << 20 }
    }
}

/// The first segment's capacity (at most `segment_bytes`).
const FIRST_SEGMENT_BYTES: u64 = 1 << 20;

impl StorageOptions {
    fn first_segment_bytes(&self) -> u64 {
        FIRST_SEGMENT_BYTES.min(self.segment_bytes)
    }

    /// The capacity of the segment after one of `current` bytes.
    fn next_segment_bytes(&self, current: u64) -> u64 {
        current.saturating_mul(2).clamp(self.first_segment_bytes(), self.segment_bytes)
    }
}

/// What one [`Storage::append`] cost, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Bytes written to the WAL: the entries, and the checkpoint when the
    /// call started a segment. Snapshot files are not counted.
    pub bytes: u64,
    /// Time spent in the fsync calls that made them durable: one
    /// `fdatasync`, or, when the call started a segment, the segment's and
    /// the directory's.
    pub sync: Duration,
}

/// Where the snapshot markers fall in the log, to rotate just after one.
#[derive(Debug, Default)]
struct MarkerSpacing {
    /// Entry bytes appended since open (checkpoints not counted).
    log_bytes: u64,
    /// `log_bytes` when the last marker was written.
    last_marker: Option<u64>,
    /// Rotate at the next append, once the next segment is ready.
    rotate_soon: bool,
}

impl MarkerSpacing {
    /// A marker was just written, leaving `len` of `capacity` bytes used.
    /// Two intervals, not one: the next may run a little longer than the last.
    fn marker_written(&mut self, len: u64, capacity: u64) {
        let now = self.log_bytes;
        if let Some(last) = self.last_marker.replace(now) {
            let interval = now - last;
            self.rotate_soon |= len >= capacity / 2 && capacity.saturating_sub(len) < 2 * interval;
        }
    }
}

/// Where appends go; a trait so tests can make writes and fsyncs fail.
trait WalFile: Send {
    fn write_all_at(&mut self, data: &[u8], offset: u64) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
}

impl WalFile for File {
    fn write_all_at(&mut self, data: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, data, offset)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
}

/// A capacity above which the encoding buffer is released after an append,
/// so one huge batch does not pin its memory for the node's life.
const KEEP_BUF_CAPACITY: usize = 4 << 20;

/// A snapshot and the file that holds it.
#[derive(Debug)]
struct StoredSnapshot {
    snapshot: Arc<Snapshot>,
    saved: SavedSnapshot,
}

/// An open, locked data directory. See the module docs.
pub struct Storage {
    dir: PathBuf,
    options: StorageOptions,
    file: Box<dyn WalFile>,
    segment: u64,
    segment_path: PathBuf,
    /// Where the next entry goes: the end of the valid entries.
    segment_len: u64,
    segment_capacity: u64,
    /// Number of the last durable write.
    last_index: u64,
    /// What the next checkpoint holds, apart from the snapshot.
    live: Live,
    /// The snapshot the newest durable marker names.
    snapshot: Option<StoredSnapshot>,
    /// Saved and adopted, not yet named by a durable write; oldest first.
    registered: Vec<StoredSnapshot>,
    /// Snapshot files to remove once the next append is durable.
    obsolete: Vec<String>,
    preparer: Preparer,
    /// The segment the last rotation replaced, under its spare name, to be
    /// the file of the next one prepared (see `segment::prepare`).
    spare: Option<PathBuf>,
    /// Rotation timing (see "Rotation" in the module docs).
    markers: MarkerSpacing,
    /// The state as a `DurableState`, built on demand: keeping a sorted `Vec`
    /// current on every put and delete would cost O(records) per write.
    view: OnceLock<DurableState>,
    buf: Vec<u8>,
    poisoned: Option<String>,
    /// Dropped last, so the directory stays locked while anything above may
    /// still touch it (the preparer's thread included).
    _lock: DirLock,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("dir", &self.dir)
            .field("segment", &self.segment_path)
            .field("segment_len", &self.segment_len)
            .field("segment_capacity", &self.segment_capacity)
            .field("last_index", &self.last_index)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// The data directory's files, as open finds them.
struct Listing {
    /// Segment numbers, ascending.
    segments: Vec<u64>,
    snapshots: Vec<String>,
}

/// Lists `dir`, removing every `*.tmp` and `*.obsolete`. Unused prepared
/// segments (all zeros where an entry would start) and obsolete files go
/// quietly: a clean stop can leave either.
fn scan(dir: &Path, warnings: &mut Vec<String>) -> Result<Listing, StorageError> {
    let mut listing = Listing { segments: Vec::new(), snapshots: Vec::new() };
    for name in layout::file_names(dir)? {
        let path = dir.join(&name);
        if let Some(stem) = name.strip_suffix(TMP_SUFFIX) {
            let unused_segment = layout::parse_segment_name(stem).is_some() && starts_with_zeros(&path);
            layout::remove_if_present(&path)?;
            if !unused_segment {
                warnings.push(format!("removed {}: an incomplete file left by a crash", path.display()));
            }
        } else if name.ends_with(OBSOLETE_SUFFIX) || name.ends_with(SPARE_SUFFIX) {
            layout::remove_if_present(&path)?;
        } else if let Some(number) = layout::parse_segment_name(&name) {
            listing.segments.push(number);
        } else if snapfile::is_snapshot_name(&name) {
            listing.snapshots.push(name);
        } else if ![FORMAT_FILE, LOCK_FILE, LOST_FOUND, CLUSTER_ID_FILE].contains(&name.as_str()) {
            warnings.push(format!("ignoring unexpected file {} in the data directory", path.display()));
        }
    }
    listing.segments.sort_unstable();
    Ok(listing)
}

/// Whether the first entry header's worth of bytes (as many as there are)
/// are zeros; false if the file cannot be read.
fn starts_with_zeros(path: &Path) -> bool {
    let mut head = Vec::with_capacity(wal::HEADER_LEN);
    File::open(path).and_then(|f| f.take(wal::HEADER_LEN as u64).read_to_end(&mut head)).is_ok()
        && head.iter().all(|&b| b == 0)
}

/// Reads and replays segment `number` at `path` through `file`.
fn replay_file(file: &mut File, path: &Path, number: u64) -> Result<Replayed, StorageError> {
    let mut data = Vec::new();
    file.read_to_end(&mut data).map_err(io_error(path, "read"))?;
    wal::replay_segment(&data, number > 1).map_err(|(offset, detail)| StorageError::Corrupt {
        file: path.to_path_buf(),
        offset,
        detail,
    })
}

/// The snapshot the newest marker of `segment` names, loaded; an inline
/// one (format v1) is written to a file, which the next checkpoint names.
fn recover_snapshot(
    dir: &Path,
    segment: &Path,
    marker: Option<(SnapshotMarker, u64)>,
) -> Result<Option<StoredSnapshot>, StorageError> {
    Ok(match marker {
        None => None,
        Some((SnapshotMarker::File(file), offset)) => {
            let named_by = format!("{} at byte offset {offset}", segment.display());
            let snapshot = snapfile::load(dir, &file, &named_by)?;
            Some(StoredSnapshot { snapshot, saved: SavedSnapshot { file } })
        }
        Some((SnapshotMarker::Inline(snapshot), _)) => {
            let saved = save_snapshot(dir, &snapshot)?;
            Some(StoredSnapshot { snapshot, saved })
        }
    })
}

/// A free function so the caller can borrow other fields meanwhile.
fn find_stored<'a>(
    current: &'a Option<StoredSnapshot>,
    registered: &'a [StoredSnapshot],
    snapshot: &Arc<Snapshot>,
) -> Option<&'a StoredSnapshot> {
    current.iter().chain(registered).find(|s| Arc::ptr_eq(&s.snapshot, snapshot))
}

impl Storage {
    /// The cluster this member belongs to, chosen when it first started
    /// (`None` before that). Kept apart from the WAL: it never changes, and
    /// a checkpoint need not carry it.
    pub fn cluster_id(&self) -> Result<Option<u64>, StorageError> {
        layout::read_cluster_id(&self.dir)
    }

    /// The cluster id recorded in the data directory `dir`, if any, read
    /// without opening (or locking) the directory: the file is written
    /// once, durably, before the member talks to anyone.
    pub fn recorded_cluster_id(dir: &Path) -> Result<Option<u64>, StorageError> {
        layout::read_cluster_id(dir)
    }

    /// Records the cluster id, durably, before the member talks to anyone.
    pub fn record_cluster_id(&mut self, id: u64) -> Result<(), StorageError> {
        layout::write_cluster_id(&self.dir, id)
    }

    /// Opens (creating it and its missing parents durably if needed) and
    /// locks the data directory `dir`, upgrades it from format v1 if need
    /// be, and recovers its state. The warnings describe what recovery
    /// repaired; the caller should log them.
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
        let mut warnings = Vec::new();
        match layout::check_format(dir)? {
            Format::Uninitialised => layout::initialise(dir, options.first_segment_bytes())?,
            Format::V1 => upgrade::upgrade_v1(dir, &options, &mut warnings)?,
            Format::Current => {}
        }

        let listing = scan(dir, &mut warnings)?;
        let Some(&newest) = listing.segments.last() else {
            return Err(StorageError::Inconsistent {
                dir: dir.to_path_buf(),
                detail: format!(
                    "the {FORMAT_FILE} marker is there but no WAL segment (wal-*.log) is: the log was removed"
                ),
            });
        };
        let path = segment_path(dir, newest);
        let mut file = OpenOptions::new().read(true).write(true).open(&path).map_err(io_error(&path, "open"))?;
        let replayed = replay_file(&mut file, &path, newest)?;
        if let Some(torn) = &replayed.torn {
            segment::zero_fill(&file, &path, replayed.valid_len, torn.end, None)?;
            warnings.push(format!(
                "{}: zeroed a torn write at byte offset {} ({} bytes: {}); a crash interrupted it before it was acknowledged",
                path.display(),
                replayed.valid_len,
                torn.end - replayed.valid_len,
                torn.defect,
            ));
        }
        file.sync_all().map_err(io_error(&path, "fsync"))?;
        let capacity = file.metadata().map_err(io_error(&path, "inspect"))?.len();

        let obsolete = &listing.segments[..listing.segments.len() - 1];
        for &number in obsolete {
            layout::remove_if_present(&segment_path(dir, number))?;
        }
        if !obsolete.is_empty() {
            warnings.push(format!(
                "removed {} segment(s) older than {} that an interrupted rotation left behind",
                obsolete.len(),
                path.display()
            ));
        }
        let snapshot = recover_snapshot(dir, &path, replayed.snapshot)?;
        let named = snapshot.as_ref().map(|s| s.saved.file_name());
        for name in listing.snapshots.iter().filter(|&n| Some(n.as_str()) != named) {
            let unnamed = dir.join(name);
            layout::remove_if_present(&unnamed)?;
            warnings.push(format!(
                "removed {}: no durable write names this snapshot file (its compaction never became durable, or a newer snapshot replaced it before a crash)",
                unnamed.display()
            ));
        }
        // Also makes durable whatever rename or removal the previous process
        // did not get to sync.
        layout::sync_dir(dir)?;

        let live = replayed.live;
        let state = DurableState {
            hard_state: live.hard_state.clone(),
            snapshot: snapshot.as_ref().map(|s| s.snapshot.clone()),
            records: live.records.values().cloned().collect(),
        };
        let storage = Storage {
            dir: dir.to_path_buf(),
            preparer: Preparer::default(),
            spare: None,
            options,
            file: Box::new(file),
            segment: newest,
            segment_path: path,
            segment_len: replayed.valid_len,
            segment_capacity: capacity,
            last_index: replayed.last_index,
            live,
            snapshot,
            registered: Vec::new(),
            obsolete: Vec::new(),
            markers: MarkerSpacing::default(),
            view: OnceLock::new(),
            buf: Vec::new(),
            poisoned: None,
            _lock: lock,
        };
        Ok((storage, state, warnings))
    }

    /// Registers a snapshot [`save_snapshot`] wrote for this directory, so a
    /// later write carrying the same `Arc` only names its file. Until a
    /// durable write names it, the file stays while this `Storage` is open
    /// (and is removed at the next open). Registering a snapshot that is
    /// already stored or registered makes `saved` redundant; its file is
    /// removed after the next append.
    pub fn adopt_saved(&mut self, snapshot: Arc<Snapshot>, saved: SavedSnapshot) {
        assert!(
            saved.file.applied.as_ref() == Some(&snapshot.applied),
            "adopt_saved: {} holds another snapshot than the one given",
            saved.file_name()
        );
        if self.stored(&snapshot).is_some() {
            self.obsolete.push(saved.file.name);
        } else {
            self.registered.push(StoredSnapshot { snapshot, saved });
        }
    }

    /// Makes `writes` durable, in order, with one write and one fdatasync
    /// (group commit), and returns what that cost. `Ok` means all of them are
    /// on disk. After an `Err` none of them may be reported durable, and
    /// every later call fails: stop the node (see the module docs).
    pub fn append(&mut self, writes: Vec<DurableWrite>) -> Result<AppendStats, StorageError> {
        if let Some(cause) = &self.poisoned {
            return Err(StorageError::Poisoned { dir: self.dir.clone(), cause: cause.clone() });
        }
        if writes.is_empty() {
            return Ok(AppendStats::default());
        }
        let result = self.try_append(writes);
        if let Err(e) = &result {
            self.poisoned = Some(e.to_string());
        }
        result
    }

    fn try_append(&mut self, writes: Vec<DurableWrite>) -> Result<AppendStats, StorageError> {
        for snapshot in writes.iter().filter_map(|w| w.snapshot.as_ref()) {
            if self.stored(snapshot).is_none() {
                let saved = save_snapshot(&self.dir, snapshot)?;
                self.registered.push(StoredSnapshot { snapshot: snapshot.clone(), saved });
            }
        }
        self.buf.clear();
        let batch = self.last_index + 1;
        for (index, write) in (batch..).zip(&writes) {
            let head = WalEntry {
                index,
                batch,
                checkpoint: false,
                hard_state: write.hard_state.as_ref().map(PbHardState::from),
                delete: write.delete.clone(),
                put: Vec::new(),
                snapshot: None,
                snapshot_file: None,
            };
            let file = write
                .snapshot
                .as_ref()
                .map(|s| &find_stored(&self.snapshot, &self.registered, s).expect("saved above").saved.file);
            wal::encode_entry(&mut self.buf, &head, &write.put, file).map_err(|len| StorageError::TooLarge { len })?;
        }

        let fits = self.segment_len + self.buf.len() as u64 <= self.segment_capacity;
        let stats = if fits && !(self.markers.rotate_soon && self.preparer.is_ready()) {
            self.file.write_all_at(&self.buf, self.segment_len).map_err(io_error(&self.segment_path, "write"))?;
            let start = Instant::now();
            self.file.sync_data().map_err(io_error(&self.segment_path, "fsync"))?;
            self.segment_len += self.buf.len() as u64;
            AppendStats { bytes: self.buf.len() as u64, sync: start.elapsed() }
        } else {
            self.rotate()?
        };

        self.last_index += writes.len() as u64;
        if self.segment_len >= self.segment_capacity / 2 && !self.preparer.is_pending() {
            let capacity = self.options.next_segment_bytes(self.segment_capacity);
            self.preparer = Preparer::start(&self.dir, self.segment + 1, capacity, self.spare.take());
        }
        self.markers.log_bytes += self.buf.len() as u64;
        for write in writes {
            let DurableWrite { hard_state, snapshot, put, delete } = write;
            let removed = self.live.apply(hard_state, snapshot.as_ref().map(|s| &s.applied), &delete, put);
            free_records_on_the_side(removed);
            if let Some(snapshot) = snapshot {
                self.now_stored(&snapshot);
                self.markers.marker_written(self.segment_len, self.segment_capacity);
            }
        }
        for name in std::mem::take(&mut self.obsolete) {
            layout::remove_on_the_side(&self.dir.join(name))?;
        }
        self.view = OnceLock::new();
        if self.buf.capacity() > KEEP_BUF_CAPACITY {
            self.buf = Vec::new();
        }
        Ok(stats)
    }

    /// The stored or registered copy of `snapshot`.
    fn stored(&self, snapshot: &Arc<Snapshot>) -> Option<&StoredSnapshot> {
        find_stored(&self.snapshot, &self.registered, snapshot)
    }

    /// Makes `snapshot` (stored or registered) the current one, once a write
    /// naming it is durable. The file it replaces goes, and so do the files
    /// registered before it: the replica names its snapshots in order, and
    /// should it name an older one after all, `append` saves it again.
    fn now_stored(&mut self, snapshot: &Arc<Snapshot>) {
        if self.snapshot.as_ref().is_some_and(|s| Arc::ptr_eq(&s.snapshot, snapshot)) {
            return;
        }
        let at =
            self.registered.iter().position(|s| Arc::ptr_eq(&s.snapshot, snapshot)).expect("saved before its write");
        let mut earlier: Vec<StoredSnapshot> = self.registered.drain(..=at).collect();
        let named = earlier.pop().expect("drained at least the named one");
        earlier.extend(self.snapshot.replace(named));
        let mut replaced = Vec::with_capacity(earlier.len());
        for old in earlier {
            self.obsolete.push(old.saved.file.name);
            replaced.push(old.snapshot);
        }
        // Often the last reference to the replaced state: a snapshot
        // interval's keys and values, milliseconds to free.
        if !replaced.is_empty() {
            free_on_the_side(replaced);
        }
    }

    /// Starts the next segment with a checkpoint of the state before this
    /// append followed by the append's entries (`self.buf`), then drops the
    /// old segment. A crash at any step leaves either the old segment as the
    /// newest (the new one still a `.tmp`, or its rename not yet durable:
    /// the append was not acknowledged) or the complete new one beside the
    /// old; recovery handles both.
    fn rotate(&mut self) -> Result<AppendStats, StorageError> {
        let next = self.segment + 1;
        let head = WalEntry {
            index: self.last_index,
            batch: self.last_index,
            checkpoint: true,
            hard_state: Some(PbHardState::from(&self.live.hard_state)),
            delete: Vec::new(),
            put: Vec::new(),
            snapshot: None,
            snapshot_file: None,
        };
        // Not `self.buf`: a checkpoint is larger and rarer than an append,
        // and the append buffer would keep its capacity.
        let mut data = Vec::new();
        let file = self.snapshot.as_ref().map(|s| &s.saved.file);
        wal::encode_entry(&mut data, &head, self.live.records.values(), file)
            .map_err(|len| StorageError::TooLarge { len })?;
        data.extend_from_slice(&self.buf);
        let capacity = self.options.next_segment_bytes(self.segment_capacity);
        let prepared = self.preparer.take(&self.dir, next, capacity)?;
        let installed = segment::install(&self.dir, prepared, &data, capacity)?;
        let old = std::mem::replace(&mut self.segment_path, installed.path);
        self.file = Box::new(installed.file);
        self.segment = next;
        self.segment_len = data.len() as u64;
        self.segment_capacity = installed.capacity;
        self.markers.rotate_soon = false;
        if let Some(spare) = layout::keep_as_spare(&old)?
            && let Some(unused) = self.spare.replace(spare)
        {
            layout::unlink_on_the_side(unused)?;
        }
        Ok(AppendStats { bytes: data.len() as u64, sync: installed.sync })
    }

    /// The state as of the last successful `append`: what a restart would
    /// recover. Built on first use after an append, so call it sparingly.
    pub fn state(&self) -> &DurableState {
        self.view.get_or_init(|| DurableState {
            hard_state: self.live.hard_state.clone(),
            snapshot: self.snapshot.as_ref().map(|s| s.snapshot.clone()),
            records: self.live.records.values().cloned().collect(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{Cmd, LeaderId, Record};

    /// The nice value of the calling thread, from the kernel's own account.
    fn own_nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn background_work_runs_at_a_lower_priority_than_the_thread_that_started_it() {
        let before = own_nice();
        let background = std::thread::spawn(|| {
            run_in_background();
            own_nice()
        })
        .join()
        .unwrap();
        assert_eq!(background, before + i64::from(BACKGROUND_NICE).min(19 - before));
        assert_eq!(own_nice(), before, "only the calling thread is lowered, not the process");
    }

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

    fn small() -> StorageOptions {
        StorageOptions { segment_bytes: 4096 }
    }

    /// Passes the first `ok_writes` writes to the real file, then fails:
    /// at the write (`fail_sync` false, ENOSPC) or at the fsync after it
    /// reached the file (EIO), as a full or failing disk does.
    struct Failing {
        inner: File,
        ok_writes: usize,
        fail_sync: bool,
        synced_after_failure: Arc<std::sync::atomic::AtomicBool>,
    }

    impl WalFile for Failing {
        fn write_all_at(&mut self, data: &[u8], offset: u64) -> io::Result<()> {
            if self.ok_writes == 0 && !self.fail_sync {
                // A partial write, as a disk filling up mid-way produces.
                FileExt::write_all_at(&self.inner, &data[..data.len() - 3], offset)?;
                return Err(io::Error::from_raw_os_error(28));
            }
            FileExt::write_all_at(&self.inner, data, offset)
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

    fn inject(storage: &mut Storage, fail_sync: bool) -> Arc<std::sync::atomic::AtomicBool> {
        let inner = OpenOptions::new().read(true).write(true).open(&storage.segment_path).unwrap();
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        storage.file = Box::new(Failing { inner, ok_writes: 1, fail_sync, synced_after_failure: flag.clone() });
        flag
    }

    #[test]
    fn a_failed_write_or_fsync_poisons_the_storage() {
        for fail_sync in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (mut storage, _, _) = Storage::open_with(dir.path(), small()).unwrap();
            inject(&mut storage, fail_sync);
            storage.append(vec![put(1)]).unwrap();
            let before = storage.state().clone();

            let err = storage.append(vec![put(2), put(3)]).unwrap_err();
            let op = if fail_sync { "fsync" } else { "write" };
            let msg = err.to_string();
            assert!(matches!(err, StorageError::Io { op: o, .. } if o == op), "{msg}");
            assert!(msg.contains("wal-00000001.log"), "{msg}");
            // The failed writes are not part of the durable state.
            assert_eq!(storage.state(), &before);

            let err = storage.append(vec![put(4)]).unwrap_err();
            assert!(matches!(err, StorageError::Poisoned { .. }), "{err}");
            assert!(err.to_string().contains(op), "{err}");
            drop(storage);

            // A restart sees every write whose bytes fully reached the file
            // (all of them when only the fsync failed: the page cache still
            // has them), in order, and never a partial one.
            let (_, state, warnings) = Storage::open_with(dir.path(), small()).unwrap();
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
        send::<SavedSnapshot>();
    }

    #[test]
    fn a_failed_fsync_is_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _, _) = Storage::open_with(dir.path(), small()).unwrap();
        let synced = inject(&mut storage, true);
        storage.append(vec![put(1)]).unwrap();
        storage.append(vec![put(2)]).unwrap_err();
        synced.store(false, std::sync::atomic::Ordering::SeqCst);
        storage.append(vec![put(2)]).unwrap_err();
        assert!(!synced.load(std::sync::atomic::Ordering::SeqCst), "a poisoned storage must not fsync again");
    }

    #[test]
    fn segments_start_small_and_double_up_to_the_configured_size() {
        let options = StorageOptions { segment_bytes: 64 << 20 };
        assert_eq!(options.first_segment_bytes(), 1 << 20);
        assert_eq!(options.next_segment_bytes(1 << 20), 2 << 20);
        assert_eq!(options.next_segment_bytes(48 << 20), 64 << 20);
        // A segment enlarged for one big append is followed by a normal one.
        assert_eq!(options.next_segment_bytes(512 << 20), 64 << 20);
        assert_eq!(small().first_segment_bytes(), small().segment_bytes);
    }

    #[test]
    fn a_rotation_without_a_prepared_segment_prepares_one_itself() {
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _, _) = Storage::open_with(dir.path(), small()).unwrap();
        assert!(!storage.preparer.is_pending(), "an empty segment needs no successor yet");
        let mut seq = 0;
        for _ in 0..3 {
            let segment = storage.segment;
            while storage.segment_len < storage.segment_capacity / 2 {
                storage.append(vec![put(seq)]).unwrap();
                seq += 1;
            }
            storage.append(vec![put(seq)]).unwrap();
            seq += 1;
            assert!(storage.preparer.is_pending(), "a half-full segment has its successor prepared");
            // As if the background preparation had failed.
            storage.preparer = Preparer::default();
            while storage.segment == segment {
                storage.append(vec![put(seq)]).unwrap();
                seq += 1;
            }
            assert_eq!(storage.segment_capacity, small().segment_bytes);
        }
        let state = storage.state().clone();
        drop(storage);
        let (_, recovered, warnings) = Storage::open_with(dir.path(), small()).unwrap();
        assert_eq!(recovered, state);
        assert_eq!(recovered.records.len(), seq as usize);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    /// Waits (bounded) for a started preparation to finish, so a test's
    /// rotations do not depend on how fast the preparing thread runs.
    fn wait_until_prepared(storage: &Storage) {
        for _ in 0..2000 {
            if !storage.preparer.is_pending() || storage.preparer.is_ready() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("the next segment was not prepared within 2 s");
    }

    #[test]
    fn a_replaced_segment_becomes_the_file_of_the_segment_after_next() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _, _) = Storage::open_with(dir.path(), small()).unwrap();
        let inode = |path: &Path| std::fs::metadata(path).unwrap().ino();
        let wal_files = || {
            let names: Vec<String> = layout::file_names(dir.path()).unwrap();
            names.into_iter().filter(|n| n.starts_with("wal-")).collect::<Vec<_>>()
        };
        let mut inodes = vec![(storage.segment, inode(&storage.segment_path))];
        for seq in 1..1000 {
            wait_until_prepared(&storage);
            let mut write = put(seq);
            // Few live records, so every checkpoint fits a small segment.
            write.delete = vec![seq - 3];
            storage.append(vec![write]).unwrap();
            if storage.segment != inodes.last().unwrap().0 {
                inodes.push((storage.segment, inode(&storage.segment_path)));
            }
            let files = wal_files();
            assert!(files.len() <= 2, "at most the current segment and one other: {files:?}");
            if storage.preparer.is_ready() {
                let next = layout::segment_tmp_path(dir.path(), storage.segment + 1);
                let data = std::fs::read(&next).unwrap();
                assert!(data.iter().all(|&b| b == 0), "a prepared segment holds only zeros");
            }
        }
        assert!(inodes.len() >= 6, "rotations happened: {inodes:?}");
        // The first two segments are new files; each later one is the file
        // of the segment two before it.
        for pair in inodes.windows(3) {
            assert_eq!(pair[2].1, pair[0].1, "segment {} is not in the file of segment {}", pair[2].0, pair[0].0);
        }
        // Stop with a spare waiting: open removes it, quietly.
        let mut seq = 1000;
        while storage.spare.is_none() {
            let mut write = put(seq);
            write.delete = vec![seq - 3];
            storage.append(vec![write]).unwrap();
            seq += 1;
        }
        assert!(wal_files().iter().any(|n| n.ends_with(".spare")), "{:?}", wal_files());
        let state = storage.state().clone();
        drop(storage);
        let (_, recovered, warnings) = Storage::open_with(dir.path(), small()).unwrap();
        assert_eq!(recovered, state);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(wal_files().len(), 1, "open removed the spare: {:?}", wal_files());
    }

    #[test]
    fn a_segment_rotates_just_after_a_snapshot_marker_with_a_small_checkpoint() {
        const SEGMENT: u64 = 64 << 10;
        const MARKER_EVERY: i64 = 40;
        let dir = tempfile::tempdir().unwrap();
        let (mut storage, _, _) = Storage::open_with(dir.path(), StorageOptions { segment_bytes: SEGMENT }).unwrap();
        let mut checkpoints = Vec::new();
        for seq in 1..3000 {
            wait_until_prepared(&storage);
            let mut write = put(seq);
            write.put[0].cmd = Some(Cmd::set_str(format!("k{seq}"), "v".repeat(100)));
            if seq % MARKER_EVERY == 0 {
                // The snapshot covers every record so far.
                write.snapshot = Some(Arc::new(Snapshot {
                    applied: crate::pb::TailBitmap::from_prefix(seq + 1),
                    ..Snapshot::default()
                }));
                write.delete = (seq + 1 - MARKER_EVERY..seq).collect();
            }
            let segment = storage.segment;
            storage.append(vec![write]).unwrap();
            if storage.segment != segment {
                let data = std::fs::read(&storage.segment_path).unwrap();
                let (checkpoint, _) = wal::parse_at(&data, 0).unwrap();
                assert!(checkpoint.checkpoint);
                checkpoints.push((seq, checkpoint.put.len()));
            }
        }
        assert!(checkpoints.len() >= 5, "rotations happened: {checkpoints:?}");
        // Rotating when the segment is full would hold up to 39 records.
        assert!(
            checkpoints.iter().all(|&(seq, records)| records == 0 && seq % MARKER_EVERY == 1),
            "each rotation (seq, records in its checkpoint) came just after a marker: {checkpoints:?}"
        );
        let state = storage.state().clone();
        drop(storage);
        let (_, recovered, warnings) =
            Storage::open_with(dir.path(), StorageOptions { segment_bytes: SEGMENT }).unwrap();
        assert_eq!(recovered, state);
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
