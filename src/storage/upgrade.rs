//! Upgrading a format v1 directory (one growing segment, snapshots inside
//! WAL entries) to today's format; the steps and why a crash between any
//! two of them is safe are in the module docs of `storage`.

use std::fs::File;
use std::path::Path;

use super::layout::{self, FORMAT_FILE, FORMAT_MARKER, FORMAT_MARKER_V1, io_error, segment_path};
use super::wal::{self, PbHardState, WalEntry};
use super::{StorageError, StorageOptions, recover_snapshot, replay_file, scan, segment};

/// Rewrites the v1 directory `dir` in today's format. Leaves orphaned
/// snapshot files and the directory fsync to the open that follows.
pub(super) fn upgrade_v1(dir: &Path, options: &StorageOptions, warnings: &mut Vec<String>) -> Result<(), StorageError> {
    let listing = scan(dir, warnings)?;
    let Some(&newest) = listing.segments.last() else {
        return Err(StorageError::Inconsistent {
            dir: dir.to_path_buf(),
            detail: format!("the {FORMAT_FILE} marker is there but no WAL segment (wal-*.log) is: the log was removed"),
        });
    };
    // The newest segment is the v1 one, or, if an earlier upgrade stopped
    // before switching the marker, the one it wrote; both replay alike.
    let path = segment_path(dir, newest);
    let mut file = File::open(&path).map_err(io_error(&path, "open"))?;
    let replayed = replay_file(&mut file, &path, newest)?;
    drop(file);
    if let Some(torn) = &replayed.torn {
        warnings.push(format!(
            "{}: left out a torn write at byte offset {} ({}); a crash interrupted it before it was acknowledged",
            path.display(),
            replayed.valid_len,
            torn.defect
        ));
    }
    let snapshot = recover_snapshot(dir, &path, replayed.snapshot)?;

    let head = WalEntry {
        index: replayed.last_index,
        batch: replayed.last_index,
        checkpoint: true,
        hard_state: Some(PbHardState::from(&replayed.live.hard_state)),
        delete: Vec::new(),
        put: Vec::new(),
        snapshot: None,
        snapshot_file: None,
    };
    let mut data = Vec::new();
    wal::encode_entry(&mut data, &head, replayed.live.records.values(), snapshot.as_ref().map(|s| &s.saved.file))
        .map_err(|len| StorageError::TooLarge { len })?;
    let prepared = segment::prepare(dir, newest + 1, options.segment_bytes, None, None)?;
    segment::install(dir, prepared, &data, options.segment_bytes)?;
    layout::write_format(dir)?;
    for &number in &listing.segments {
        layout::remove_if_present(&segment_path(dir, number))?;
    }
    warnings
        .push(format!("upgraded the data directory {} from {FORMAT_MARKER_V1:?} to {FORMAT_MARKER:?}", dir.display()));
    Ok(())
}
