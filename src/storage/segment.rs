//! Preallocated segments. A segment is zero-filled and fsynced before the log
//! uses it, so an append writes in place and its fdatasync commits no
//! metadata: the size does not change, and no unwritten extent (what
//! `fallocate` leaves) needs converting.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::StorageError;
use super::layout::{io_error, segment_path, segment_tmp_path, sync_dir};

/// Zeros are written, and made durable, this much at a time; a cancelled
/// preparation stops between two chunks.
const ZERO_CHUNK: usize = 1 << 20;

/// A zero-filled, fsynced segment under its temporary name.
#[derive(Debug)]
pub(super) struct Prepared {
    pub number: u64,
    pub tmp_path: PathBuf,
    pub file: File,
    pub capacity: u64,
}

/// Writes segment `number` zero-filled to `capacity` bytes under its
/// temporary name and fsyncs it (data and size). Its directory entry is not
/// synced: nothing relies on the temporary name surviving a crash.
///
/// `spare`, an old segment that a newer durable one replaced (renamed
/// `*.spare`), is taken for the file when it is still there: its zeros are
/// then written over pages the page cache already holds, into blocks
/// already allocated. Into a new file, on the virtual machine measured,
/// copying the zeros cost about 20 times per byte what copying the WAL
/// entries over them later did (7.3% of a loaded cluster's CPU samples
/// against 0.2%, for twice the bytes); with full-size segments the
/// preparing threads went from 12% of the samples to 0.5%
/// (docs/performance.md).
pub(super) fn prepare(
    dir: &Path,
    number: u64,
    capacity: u64,
    spare: Option<PathBuf>,
    cancel: Option<&AtomicBool>,
) -> Result<Prepared, StorageError> {
    let tmp_path = segment_tmp_path(dir, number);
    let recycled = spare.is_some_and(|spare| fs::rename(spare, &tmp_path).is_ok());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(!recycled)
        .open(&tmp_path)
        .map_err(io_error(&tmp_path, "create"))?;
    if recycled && file.metadata().map_err(io_error(&tmp_path, "stat"))?.len() > capacity {
        file.set_len(capacity).map_err(io_error(&tmp_path, "truncate"))?;
    }
    zero_fill(&file, &tmp_path, 0, capacity, cancel)?;
    file.sync_all().map_err(io_error(&tmp_path, "fsync"))?;
    Ok(Prepared { number, tmp_path, file, capacity })
}

/// Writes zeros over `[from, to)` and fdatasyncs each chunk (the caller
/// still fsyncs the whole, for the size). Real writes, not `set_len` or
/// `fallocate`: a hole or an unwritten extent would make the first fsync
/// of each block commit metadata again. Syncing chunk by chunk keeps the
/// dirty data small, so the WAL's fsyncs meanwhile wait behind a chunk,
/// not behind the whole segment's writeback (measured here during a 64 MiB
/// preparation: concurrent 4 KiB WAL fdatasyncs took a median 0.8-1.0 ms
/// with a sync per chunk, 2-6 ms with one sync at the end).
pub(super) fn zero_fill(
    file: &File,
    path: &Path,
    from: u64,
    to: u64,
    cancel: Option<&AtomicBool>,
) -> Result<(), StorageError> {
    let zeros = vec![0u8; ZERO_CHUNK.min(to.saturating_sub(from) as usize)];
    let mut off = from;
    while off < to {
        let n = zeros.len().min((to - off) as usize);
        file.write_all_at(&zeros[..n], off).map_err(io_error(path, "zero-fill"))?;
        file.sync_data().map_err(io_error(path, "fsync"))?;
        off += n as u64;
        // Checked after a chunk, not before: a cancelled preparation of a
        // recycled file still starts with zeros, which open removes quietly,
        // not as what a crash left.
        if off < to && cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            let cancelled = io::Error::new(io::ErrorKind::Interrupted, "cancelled: the storage is closing");
            return Err(io_error(path, "zero-fill")(cancelled));
        }
    }
    Ok(())
}

/// Prepares the next segment on a thread of its own while the log fills the
/// current one.
#[derive(Debug, Default)]
pub(super) struct Preparer {
    job: Option<Job>,
    /// The spare handed to `start` when no thread could take it, for the
    /// preparation `take` then makes itself.
    spare: Option<PathBuf>,
}

#[derive(Debug)]
struct Job {
    number: u64,
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<Result<Prepared, StorageError>>,
}

impl Preparer {
    /// Starts preparing segment `number`, from `spare` if there is one (see
    /// [`prepare`]).
    pub fn start(dir: &Path, number: u64, capacity: u64, spare: Option<PathBuf>) -> Preparer {
        let cancel = Arc::new(AtomicBool::new(false));
        let (thread_dir, thread_cancel) = (dir.to_path_buf(), cancel.clone());
        let thread_spare = spare.clone();
        let spawned = std::thread::Builder::new().name("traft-wal-prepare".into()).spawn(move || {
            super::run_in_background();
            prepare(&thread_dir, number, capacity, thread_spare, Some(&thread_cancel))
        });
        // A thread that cannot be spawned now costs a synchronous preparation
        // at the next rotation, which reports any error that matters.
        match spawned {
            Ok(thread) => Preparer { job: Some(Job { number, cancel, thread }), spare: None },
            Err(_) => Preparer { job: None, spare },
        }
    }

    /// Segment `number`, prepared: the background one, waited for if it is
    /// still being written (it is further along than a new one would be),
    /// or, if there is none or it failed, one prepared now.
    pub fn take(&mut self, dir: &Path, number: u64, capacity: u64) -> Result<Prepared, StorageError> {
        if let Some(job) = self.job.take() {
            if job.number == number {
                match job.thread.join() {
                    Ok(Ok(prepared)) => return Ok(prepared),
                    // Retried below: a transient failure should not stop the
                    // node, and a lasting one fails again there, reported.
                    Ok(Err(_)) => {}
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            } else {
                job.stop();
            }
        }
        // A failed or cancelled job may have taken the spare already; then
        // the rename finds nothing and a new file is made.
        prepare(dir, number, capacity, self.spare.take(), None)
    }

    /// Whether a preparation is done and not yet taken: taking it now
    /// waits for nothing.
    pub fn is_ready(&self) -> bool {
        self.job.as_ref().is_some_and(|job| job.thread.is_finished())
    }

    /// Whether a preparation is running or done and not yet taken.
    pub fn is_pending(&self) -> bool {
        self.job.is_some()
    }
}

impl Job {
    fn stop(self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Err(panic) = self.thread.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Preparer {
    /// Stops and waits for the thread: once the directory lock is released,
    /// another process may open the directory and must not find a thread of
    /// ours still writing in it.
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel.store(true, Ordering::Relaxed);
            // A panic is not re-raised here: this may run while unwinding.
            let _ = job.thread.join();
        }
    }
}

/// A segment written, durable and named.
#[derive(Debug)]
pub(super) struct Installed {
    pub file: File,
    pub path: PathBuf,
    pub capacity: u64,
    /// Time spent in fsync calls: the segment's data, then the directory.
    pub sync: Duration,
}

/// Writes `data` (a checkpoint and the entries after it) at the start of the
/// prepared segment, fsyncs it, names it, and fsyncs the directory. If
/// `data` does not fit, the segment grows, zero-filled, to twice its size
/// (at least `min_capacity`), so the appends that follow still find room.
pub(super) fn install(
    dir: &Path,
    prepared: Prepared,
    data: &[u8],
    min_capacity: u64,
) -> Result<Installed, StorageError> {
    let Prepared { number, tmp_path, file, mut capacity } = prepared;
    let len = data.len() as u64;
    let grown = len > capacity;
    if grown {
        let target = (2 * len).max(min_capacity);
        zero_fill(&file, &tmp_path, len, target, None)?;
        capacity = target;
    }
    file.write_all_at(data, 0).map_err(io_error(&tmp_path, "write"))?;
    let start = Instant::now();
    // A grown file changed size: only a full fsync makes that durable.
    if grown { file.sync_all() } else { file.sync_data() }.map_err(io_error(&tmp_path, "fsync"))?;
    let mut sync = start.elapsed();
    let path = segment_path(dir, number);
    fs::rename(&tmp_path, &path).map_err(io_error(&path, "rename"))?;
    let start = Instant::now();
    sync_dir(dir)?;
    sync += start.elapsed();
    Ok(Installed { file, path, capacity, sync })
}
