//! Entry points for the fuzz targets (`tests/fuzz.rs`, `fuzz/`): the WAL's
//! decoding and file layout, named in this one file so that a change of
//! format re-points only these functions. Not an API: hidden from the docs
//! and free to change.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::layout::{parse_segment_name, segment_path};
use super::wal;
use crate::replica::DurableState;

/// What replaying one segment's bytes recovered.
#[derive(Debug)]
pub struct Replayed {
    /// The hard state and live records; `snapshot` is always `None`, since
    /// a segment holds only the name of its snapshot file.
    pub state: DurableState,
    /// Writes replayed, counted from the directory's first.
    pub writes: u64,
    /// Where the valid entries end.
    pub valid_len: u64,
    /// Why the bytes after `valid_len` were judged a torn write.
    pub torn: Option<String>,
}

/// Replays one segment's bytes as recovery does: `Err((offset, detail))`
/// is damage recovery must not paper over.
pub fn replay_segment(bytes: &[u8], first_is_checkpoint: bool) -> Result<Replayed, (u64, String)> {
    let r = wal::replay_segment(bytes, first_is_checkpoint)?;
    // The snapshot lives in its own file; a segment only names it.
    let state =
        DurableState { hard_state: r.live.hard_state, snapshot: None, records: r.live.records.into_values().collect() };
    Ok(Replayed { state, writes: r.last_index, valid_len: r.valid_len, torn: r.torn.map(|t| t.defect.to_string()) })
}

/// The byte ranges of the valid entries a segment starts with, in order:
/// where one write's bytes are, for a test that damages exactly one.
pub fn entry_spans(bytes: &[u8]) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut off = 0;
    while off < bytes.len() {
        match wal::parse_at(bytes, off) {
            Ok((_, end)) => {
                spans.push(off..end);
                off = end;
            }
            Err(_) => break,
        }
    }
    spans
}

/// The newest WAL segment of a data directory, which recovery replays, and
/// whether it starts with a checkpoint.
pub fn newest_segment(dir: &Path) -> Option<(PathBuf, bool)> {
    let names = std::fs::read_dir(dir).ok()?;
    let newest = names.filter_map(|e| parse_segment_name(&e.ok()?.file_name().to_string_lossy())).max()?;
    Some((segment_path(dir, newest), newest > 1))
}
