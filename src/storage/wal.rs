//! The entry format of a WAL segment and the replay of one segment's bytes.
//! Pure functions over byte slices, so the torn-or-corrupt rules can be
//! tested (and fuzzed) without a file system.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;

use crate::pb::{LeaderId, Record, TailBitmap};
use crate::replica::{HardState, Seq};
use crate::snapshot::Snapshot;

/// `u32` payload length + `u32` CRC-32 of the payload, both little-endian.
pub(super) const HEADER_LEN: usize = 8;

/// No writer produces a larger payload, so a bigger length field is damage,
/// not a torn write. It also keeps a damaged length from making recovery
/// allocate gigabytes.
pub(super) const MAX_PAYLOAD_LEN: usize = 1 << 30;

/// Field key of `WalEntry::put` (tag 6, length-delimited); see `encode_entry`.
const PUT_KEY: u8 = (6 << 3) | 2;

/// Field key of `WalEntry::snapshot_file` (tag 8, length-delimited); see
/// `encode_entry`.
const SNAPSHOT_FILE_KEY: u8 = (8 << 3) | 2;

/// Field key of `WalEntry::index` (tag 1, varint). prost encodes fields in tag
/// order, so every payload of a write starts with it; the resync scan uses it
/// as a cheap filter before computing a checksum.
const INDEX_KEY: u8 = 1 << 3;

/// The payload of one WAL entry: one `DurableWrite`, or (with `checkpoint`)
/// the state as of write `index`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct WalEntry {
    /// Writes are numbered from 1 over the directory's whole life; a gap or
    /// repeat in a segment means damage. Never 0 in a write, so its payload
    /// is never empty; a checkpoint taken before the first write holds 0 (its
    /// `checkpoint` flag keeps the payload non-empty).
    #[prost(uint64, tag = "1")]
    pub index: u64,
    /// The index of the first write of the `append` call (the fsync group)
    /// this write belongs to. Lets recovery tell a torn final group from
    /// damage to data that was acknowledged before a later group was written.
    #[prost(uint64, tag = "2")]
    pub batch: u64,
    /// The state is replaced by this entry rather than updated.
    #[prost(bool, tag = "3")]
    pub checkpoint: bool,
    #[prost(message, optional, tag = "4")]
    pub hard_state: Option<PbHardState>,
    #[prost(int64, repeated, tag = "5")]
    pub delete: Vec<i64>,
    #[prost(message, repeated, tag = "6")]
    pub put: Vec<Record>,
    /// Format v1 only: `Snapshot::encode()` of the snapshot this write stored
    /// (or, in a checkpoint, the current one). Read to upgrade a v1
    /// directory; never written now.
    #[prost(bytes = "vec", optional, tag = "7")]
    pub snapshot: Option<Vec<u8>>,
    /// The snapshot file this write stores (or, in a checkpoint, the
    /// current one).
    #[prost(message, optional, tag = "8")]
    pub snapshot_file: Option<PbSnapshotFile>,
}

/// A WAL entry's reference to a snapshot file.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(super) struct PbSnapshotFile {
    /// The file's name in the data directory (`snap-*.snap`).
    #[prost(string, tag = "1")]
    pub name: String,
    /// What the file's header must say, so a file replaced or damaged
    /// behind our back is caught before its payload is decoded.
    #[prost(uint64, tag = "2")]
    pub payload_len: u64,
    #[prost(fixed32, tag = "3")]
    pub payload_crc: u32,
    /// The snapshot's applied set. Replay needs it to drop the records the
    /// snapshot covers without reading the file, which may already be gone
    /// when a later marker replaced it.
    #[prost(message, optional, tag = "4")]
    pub applied: Option<TailBitmap>,
}

/// `HardState` on disk. `committed` is optional only because proto3 makes
/// every message field so; it is always written.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct PbHardState {
    #[prost(message, optional, tag = "1")]
    pub voted_for: Option<LeaderId>,
    #[prost(message, optional, tag = "2")]
    pub committer: Option<LeaderId>,
    #[prost(message, optional, tag = "3")]
    pub committed: Option<TailBitmap>,
    #[prost(int64, tag = "4")]
    pub base_len: i64,
}

impl From<&HardState> for PbHardState {
    fn from(h: &HardState) -> Self {
        PbHardState {
            voted_for: h.voted_for,
            committer: h.committer,
            committed: Some(h.committed.clone()),
            base_len: h.base_len,
        }
    }
}

impl From<PbHardState> for HardState {
    fn from(h: PbHardState) -> Self {
        HardState {
            voted_for: h.voted_for,
            committer: h.committer,
            committed: h.committed.unwrap_or_default(),
            base_len: h.base_len,
        }
    }
}

/// Appends one framed entry to `buf`: `head` (whose `put`, `snapshot` and
/// `snapshot_file` must be empty) followed by `put`, then `snapshot_file`.
/// The records are encoded straight from the caller's data instead of being
/// cloned into `head`: repeated fields may be split across the payload, so
/// this decodes exactly as if they were in `head.put`. The tail follows tag
/// order (6, then 8), so the bytes are also exactly prost's own encoding.
/// On `Err(len)` (payload too large) `buf` is left as it was.
pub(super) fn encode_entry<'a>(
    buf: &mut Vec<u8>,
    head: &WalEntry,
    put: impl IntoIterator<Item = &'a Record>,
    snapshot_file: Option<&PbSnapshotFile>,
) -> Result<(), usize> {
    debug_assert!(head.put.is_empty() && head.snapshot.is_none() && head.snapshot_file.is_none());
    debug_assert!(head.index != 0 || head.checkpoint);
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    head.encode(buf).expect("a Vec grows as needed");
    for record in put {
        buf.push(PUT_KEY);
        record.encode_length_delimited(buf).expect("a Vec grows as needed");
    }
    if let Some(file) = snapshot_file {
        buf.push(SNAPSHOT_FILE_KEY);
        file.encode_length_delimited(buf).expect("a Vec grows as needed");
    }
    let len = buf.len() - start - HEADER_LEN;
    if len > MAX_PAYLOAD_LEN {
        buf.truncate(start);
        return Err(len);
    }
    let crc = crc32fast::hash(&buf[start + HEADER_LEN..]);
    buf[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// What is wrong with the bytes where a WAL entry should start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(super) enum EntryDefect {
    #[error("incomplete entry header ({0} of {HEADER_LEN} bytes)")]
    ShortHeader(usize),
    #[error("entry length is 0")]
    ZeroLength,
    #[error("entry length {0} exceeds the {MAX_PAYLOAD_LEN}-byte limit")]
    TooLong(usize),
    #[error("entry of {len} bytes runs past the end of the file ({left} bytes left)")]
    PastTheEnd { len: usize, left: usize },
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Checksum { stored: u32, computed: u32 },
    #[error("checksum matches but the payload does not decode: {0}")]
    Undecodable(prost::DecodeError),
    #[error("checksum matches but the entry has no write number")]
    NoWriteNumber,
}

/// Decodes the entry starting at `off`; on success returns it and the offset
/// just past it.
pub(super) fn parse_at(data: &[u8], off: usize) -> Result<(WalEntry, usize), EntryDefect> {
    let rest = &data[off..];
    if rest.len() < HEADER_LEN {
        return Err(EntryDefect::ShortHeader(rest.len()));
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().unwrap()) as usize;
    let stored_crc = u32::from_le_bytes(rest[4..8].try_into().unwrap());
    if len == 0 {
        return Err(EntryDefect::ZeroLength);
    }
    if len > MAX_PAYLOAD_LEN {
        return Err(EntryDefect::TooLong(len));
    }
    if rest.len() - HEADER_LEN < len {
        return Err(EntryDefect::PastTheEnd { len, left: rest.len() - HEADER_LEN });
    }
    let payload = &rest[HEADER_LEN..HEADER_LEN + len];
    let crc = crc32fast::hash(payload);
    if crc != stored_crc {
        return Err(EntryDefect::Checksum { stored: stored_crc, computed: crc });
    }
    let entry = WalEntry::decode(payload).map_err(EntryDefect::Undecodable)?;
    if entry.index == 0 && !entry.checkpoint {
        return Err(EntryDefect::NoWriteNumber);
    }
    Ok((entry, off + HEADER_LEN + len))
}

/// Whether the current snapshot speaks for `record`, so storage need not
/// keep it. Config records are kept all the same: the replica keeps them in
/// its log for good (elections read the history), and they are few.
pub(super) fn covered(applied: &TailBitmap, record: &Record) -> bool {
    applied.contains(record.seq) && !record.cmd.as_ref().is_some_and(|c| c.is_config())
}

/// What a checkpoint needs and a restart recovers, apart from the snapshot
/// itself: the hard state and the records the current snapshot does not
/// cover (see [`covered`]).
#[derive(Debug, Default)]
pub(super) struct Live {
    pub hard_state: HardState,
    /// The current snapshot's applied set (empty: no snapshot).
    pub covered: TailBitmap,
    pub records: BTreeMap<Seq, Record>,
}

impl Live {
    /// Applies one write: replace the hard state and the snapshot (given by
    /// its applied set) if present, then delete, then put. Records the
    /// snapshot covers are dropped, also when put after it. The replica never
    /// deletes and puts the same seq in one write; deleting first means a put
    /// is never undone by its own write. Returns the records the snapshot
    /// and the deletes removed, for the caller to free where it costs least:
    /// after a snapshot that is a whole snapshot interval's records.
    pub fn apply(
        &mut self,
        hard_state: Option<HardState>,
        snapshot_applied: Option<&TailBitmap>,
        delete: &[Seq],
        put: impl IntoIterator<Item = Record>,
    ) -> BTreeMap<Seq, Record> {
        if let Some(h) = hard_state {
            self.hard_state = h;
        }
        let mut removed = BTreeMap::new();
        if let Some(applied) = snapshot_applied {
            // Below its prefix the snapshot covers every record but config
            // records: one split there, not a removal per record, which
            // held the storage thread (and every write behind it) for
            // milliseconds per snapshot.
            let prefix = applied.prefix_len();
            let above = self.records.split_off(&prefix);
            removed = std::mem::replace(&mut self.records, above);
            self.records.extend(removed.extract_if(.., |_, r| !covered(applied, r)));
            // Above it, the out-of-order applied tail: a few records.
            removed.extend(self.records.extract_if(prefix.., |_, r| covered(applied, r)));
            self.covered = applied.clone();
        }
        // Below the first seq held there is nothing to look up: after a
        // snapshot that is where a compaction's deletes all are.
        let first_held = self.records.keys().next().copied();
        for seq in delete.iter().filter(|&&s| first_held.is_some_and(|first| s >= first)) {
            if let Some(record) = self.records.remove(seq) {
                removed.insert(*seq, record);
            }
        }
        for record in put {
            if !covered(&self.covered, &record) {
                self.records.insert(record.seq, record);
            }
        }
        removed
    }
}

/// Where the newest snapshot of a segment is.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum SnapshotMarker {
    /// Inside the entry (format v1), decoded.
    Inline(Arc<Snapshot>),
    /// In a snapshot file.
    File(PbSnapshotFile),
}

/// A torn write recovery must zero out.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Torn {
    pub defect: EntryDefect,
    /// Just past its last non-zero byte: `[valid_len, end)` is what to zero.
    pub end: u64,
}

/// The result of replaying a segment.
#[derive(Debug)]
pub(super) struct Replayed {
    pub live: Live,
    /// The newest snapshot marker and the offset of its entry.
    pub snapshot: Option<(SnapshotMarker, u64)>,
    /// The index of the last write replayed (0: none).
    pub last_index: u64,
    /// Where the valid entries end: the next entry goes here.
    pub valid_len: u64,
    /// The bytes after `valid_len`, if they are not all zeros, judged a
    /// torn write.
    pub torn: Option<Torn>,
}

/// Damage that recovery must not paper over: `(offset of the entry, detail)`.
pub(super) type Damage = (u64, String);

/// Replays one segment. `first_is_checkpoint`: the segment was started by a
/// rotation (every segment but the first), so its first entry must be a
/// checkpoint, and since it was fsynced before the segment got its name,
/// damage to it is never a torn write.
///
/// Where an entry should start, a zero header followed only by zeros is the
/// clean end of the log: the rest of a preallocated segment. Any other bad
/// entry (short, failing its checksum, undecodable) is a torn write only if
/// no write made durable after it follows: a valid entry later in the file
/// whose fsync group started after the bad entry's write number proves the
/// bad entry was acknowledged, because each group is written only after the
/// previous one's fsync returned. Valid entries of the bad entry's own group
/// may follow it (a crash can persist a group's pages out of order); they
/// were never acknowledged and are discarded with it.
///
/// An entry whose checksum matches but whose snapshot or snapshot reference
/// is invalid is damage wherever it is: the checksum shows these are the
/// bytes that were written, so no crash can explain them.
pub(super) fn replay_segment(data: &[u8], first_is_checkpoint: bool) -> Result<Replayed, Damage> {
    let mut out = Replayed { live: Live::default(), snapshot: None, last_index: 0, valid_len: 0, torn: None };
    if data.is_empty() && first_is_checkpoint {
        return Err((0, "the segment is empty but must start with a checkpoint".to_string()));
    }
    let mut off = 0;
    while off < data.len() {
        let (entry, end) = match parse_at(data, off) {
            Ok(parsed) => parsed,
            Err(detail) if off == 0 && first_is_checkpoint => {
                return Err((
                    0,
                    format!(
                        "{detail}; this is the segment's checkpoint, which was complete before the segment was named, so this is damage, not a torn write"
                    ),
                ));
            }
            Err(detail) => {
                let Some(last) = last_nonzero(&data[off..]) else {
                    break; // only zeros: the clean end
                };
                let nonzero_end = off + last + 1;
                let expected = out.last_index + 1;
                if let Some((later, later_batch)) = find_later_group(data, off + 1, nonzero_end, expected) {
                    return Err((
                        off as u64,
                        format!(
                            "{detail}; a valid entry at offset {later} belongs to a later fsync group (starting at write {later_batch}), so this entry (write {expected}) had been acknowledged"
                        ),
                    ));
                }
                out.torn = Some(Torn { defect: detail, end: nonzero_end as u64 });
                break;
            }
        };
        let expected = out.last_index + 1;
        let marker = snapshot_marker(&entry, off)?;
        let applied = marker.as_ref().map(|m| match m {
            SnapshotMarker::Inline(s) => s.applied.clone(),
            SnapshotMarker::File(f) => f.applied.clone().expect("checked by snapshot_marker"),
        });
        if off == 0 && first_is_checkpoint {
            if !entry.checkpoint {
                return Err((0, "the segment does not start with a checkpoint".to_string()));
            }
            out.last_index = entry.index;
            drop(out.live.apply(Some(entry.hard_state.unwrap_or_default().into()), applied.as_ref(), &[], entry.put));
        } else if entry.checkpoint {
            return Err((off as u64, "a checkpoint entry in the middle of a segment".to_string()));
        } else if entry.index != expected {
            return Err((
                off as u64,
                format!(
                    "entry holds write {} where write {expected} was expected: entries are missing or out of order",
                    entry.index
                ),
            ));
        } else {
            out.last_index = entry.index;
            drop(out.live.apply(entry.hard_state.map(Into::into), applied.as_ref(), &entry.delete, entry.put));
        }
        if let Some(marker) = marker {
            out.snapshot = Some((marker, off as u64));
        }
        off = end;
        out.valid_len = end as u64;
    }
    Ok(out)
}

/// The snapshot an entry stores, if any.
fn snapshot_marker(entry: &WalEntry, off: usize) -> Result<Option<SnapshotMarker>, Damage> {
    match (&entry.snapshot, &entry.snapshot_file) {
        (None, None) => Ok(None),
        (Some(bytes), None) => match Snapshot::decode(bytes) {
            Ok(snapshot) => Ok(Some(SnapshotMarker::Inline(Arc::new(snapshot)))),
            Err(e) => Err((off as u64, format!("checksum matches but the stored snapshot is invalid: {e}"))),
        },
        (None, Some(file)) if file.applied.is_some() => Ok(Some(SnapshotMarker::File(file.clone()))),
        (None, Some(file)) => Err((
            off as u64,
            format!("checksum matches but the reference to snapshot file {:?} has no applied set", file.name),
        )),
        (Some(_), Some(_)) => {
            Err((off as u64, "checksum matches but the entry stores two snapshots (inline and a file)".to_string()))
        }
    }
}

/// Bytes compared per step of the zero scans: a block is folded with `|`,
/// which the compiler vectorises, instead of testing byte by byte.
const ZERO_SCAN_BLOCK: usize = 64;

/// The offset of the first non-zero byte at or after `from`.
pub(super) fn first_nonzero(data: &[u8], from: usize) -> Option<usize> {
    let mut off = from;
    while off < data.len() {
        let end = (off + ZERO_SCAN_BLOCK).min(data.len());
        if data[off..end].iter().fold(0u8, |acc, &b| acc | b) != 0 {
            return data[off..end].iter().position(|&b| b != 0).map(|p| off + p);
        }
        off = end;
    }
    None
}

/// The offset of the last non-zero byte.
pub(super) fn last_nonzero(data: &[u8]) -> Option<usize> {
    let mut end = data.len();
    while end > 0 {
        let start = end.saturating_sub(ZERO_SCAN_BLOCK);
        if data[start..end].iter().fold(0u8, |acc, &b| acc | b) != 0 {
            return data[start..end].iter().rposition(|&b| b != 0).map(|p| start + p);
        }
        end = start;
    }
    None
}

/// Looks at the offsets in `[from, until)` for a valid entry holding a write
/// after `expected - 1` whose fsync group started after `expected`; returns
/// its offset and group. Runs of zeros are skipped whole: an entry's header
/// starts with a non-zero length, so none starts more than 3 bytes before
/// the next non-zero byte.
fn find_later_group(data: &[u8], from: usize, until: usize, expected: u64) -> Option<(usize, u64)> {
    let mut off = from;
    while off < until && off + HEADER_LEN < data.len() {
        let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        if len == 0 {
            match first_nonzero(data, off) {
                Some(next) if next < until => off = (off + 1).max(next.saturating_sub(3)),
                _ => return None,
            }
            continue;
        }
        // Cheap filter first: a plausible length and the index field key.
        let plausible = len <= data.len() - off - HEADER_LEN && data[off + HEADER_LEN] == INDEX_KEY;
        if plausible && let Ok((entry, end)) = parse_at(data, off) {
            if entry.index >= expected && entry.batch > expected {
                return Some((off, entry.batch));
            }
            // Part of the bad entry's own group: keep walking the entries
            // that follow it without a byte-by-byte search.
            off = end;
            continue;
        }
        off += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{ClusterConfig, Cmd, LeaderId};

    fn record(seq: i64) -> Record {
        Record {
            author: Some(LeaderId { term: 1, id: 2 }),
            seq,
            cmd: Some(Cmd { op: "set".into(), key: format!("k{seq}"), value: None }),
            depends: None,
            overrides: Some(TailBitmap::new(0, [seq])),
        }
    }

    fn head(index: u64, batch: u64) -> WalEntry {
        WalEntry {
            index,
            batch,
            checkpoint: false,
            hard_state: Some(PbHardState {
                voted_for: Some(LeaderId { term: 3, id: 1 }),
                committer: None,
                committed: Some(TailBitmap::new(0, [1, 2])),
                base_len: 7,
            }),
            delete: vec![4, 5],
            put: vec![],
            snapshot: None,
            snapshot_file: None,
        }
    }

    fn snapshot(prefix: i64) -> Snapshot {
        let mut kv = crate::kv::KvState::default();
        kv.apply(&Cmd::set_str(format!("k{prefix}"), "v"));
        Snapshot { applied: TailBitmap::from_prefix(prefix), kv, ..Snapshot::default() }
    }

    fn file_ref(prefix: i64) -> PbSnapshotFile {
        PbSnapshotFile {
            name: format!("snap-{prefix:016x}-0000000000000001.snap"),
            payload_len: 10,
            payload_crc: 7,
            applied: Some(TailBitmap::from_prefix(prefix)),
        }
    }

    /// Frames a whole entry the way format v1 wrote one holding an inline
    /// snapshot (`encode_entry` no longer writes field 7).
    fn frame(buf: &mut Vec<u8>, entry: &WalEntry) {
        let payload = entry.encode_to_vec();
        buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        buf.extend_from_slice(&payload);
    }

    #[test]
    fn split_encoding_decodes_like_the_derived_one() {
        let records = [record(1), record(2)];
        let file = file_ref(3);
        for (put, file) in [(&records[..], None), (&records[..], Some(&file)), (&[][..], Some(&file))] {
            let mut buf = Vec::new();
            encode_entry(&mut buf, &head(9, 9), put, file).unwrap();
            let (entry, end) = parse_at(&buf, 0).unwrap();
            assert_eq!(end, buf.len());
            let derived = WalEntry { put: put.to_vec(), snapshot_file: file.cloned(), ..head(9, 9) };
            assert_eq!(entry, derived);
            // Byte for byte: the tail is written in tag order, as prost would.
            assert_eq!(buf[HEADER_LEN..], derived.encode_to_vec()[..]);
            // The resync filter relies on the payload starting with the index key.
            assert_eq!(buf[HEADER_LEN], INDEX_KEY);
        }
    }

    #[test]
    fn an_encoded_snapshot_is_never_empty() {
        // Absence is also explicit (`optional`), but an empty snapshot must
        // not look like a missing one to anything reading the bytes.
        assert!(!Snapshot::default().encode().is_empty());
    }

    #[test]
    fn inline_snapshots_of_format_v1_replay_and_are_replaced() {
        let mut data = Vec::new();
        let ckpt =
            WalEntry { checkpoint: true, put: vec![record(1)], snapshot: Some(snapshot(1).encode()), ..head(5, 5) };
        frame(&mut data, &ckpt);
        let replayed = replay_segment(&data, true).unwrap();
        assert_eq!(replayed.snapshot, Some((SnapshotMarker::Inline(Arc::new(snapshot(1))), 0)));

        let second = data.len() as u64;
        frame(&mut data, &WalEntry { delete: vec![1], snapshot: Some(snapshot(2).encode()), ..head(6, 6) });
        encode_entry(&mut data, &head(7, 7), &[record(3)], None).unwrap();
        let replayed = replay_segment(&data, true).unwrap();
        assert_eq!(replayed.snapshot, Some((SnapshotMarker::Inline(Arc::new(snapshot(2))), second)));
        assert_eq!(replayed.live.records.keys().copied().collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn snapshot_files_replay_and_the_newest_marker_wins() {
        let mut data = Vec::new();
        let ckpt = WalEntry { checkpoint: true, ..head(5, 5) };
        encode_entry(&mut data, &ckpt, &[record(3), record(4)], Some(&file_ref(3))).unwrap();
        let second = data.len() as u64;
        encode_entry(&mut data, &WalEntry { delete: vec![], ..head(6, 6) }, &[record(5)], Some(&file_ref(5))).unwrap();
        let replayed = replay_segment(&data, true).unwrap();
        assert_eq!(replayed.snapshot, Some((SnapshotMarker::File(file_ref(5)), second)));
        // Seqs 3 and 4 are covered by the second snapshot; 5 is put after it.
        assert_eq!(replayed.live.records.keys().copied().collect::<Vec<_>>(), [5]);
        assert_eq!(replayed.live.covered, TailBitmap::from_prefix(5));
    }

    #[test]
    fn a_snapshot_reference_without_an_applied_set_is_damage() {
        let mut data = Vec::new();
        encode_entry(&mut data, &head(1, 1), &[], Some(&PbSnapshotFile { applied: None, ..file_ref(2) })).unwrap();
        let (offset, detail) = replay_segment(&data, false).unwrap_err();
        assert_eq!(offset, 0);
        assert!(detail.contains("applied set"), "{detail}");
    }

    #[test]
    fn an_undecodable_snapshot_with_a_valid_checksum_is_corruption_even_at_the_tail() {
        let mut data = Vec::new();
        encode_entry(&mut data, &head(1, 1), &[record(1)], None).unwrap();
        let second = data.len();
        frame(&mut data, &WalEntry { snapshot: Some(vec![0xff, 0xff, 0xff]), ..head(2, 2) });
        let (offset, detail) = replay_segment(&data, false).unwrap_err();
        assert_eq!(offset, second as u64);
        assert!(detail.contains("snapshot"), "{detail}");
    }

    #[test]
    fn a_zero_filled_header_is_not_an_entry() {
        assert!(parse_at(&[0; 64], 0).is_err());
    }

    #[test]
    fn only_a_checkpoint_may_hold_write_number_zero() {
        let mut data = Vec::new();
        encode_entry(&mut data, &WalEntry { checkpoint: true, ..head(0, 0) }, &[], None).unwrap();
        encode_entry(&mut data, &head(1, 1), &[record(1)], None).unwrap();
        let replayed = replay_segment(&data, true).unwrap();
        assert_eq!(replayed.last_index, 1);

        let mut data = Vec::new();
        frame(&mut data, &head(0, 0));
        assert_eq!(parse_at(&data, 0).unwrap_err(), EntryDefect::NoWriteNumber);
    }

    fn segment(groups: &[&[u64]]) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut offsets = Vec::new();
        for group in groups {
            for &index in *group {
                offsets.push(buf.len());
                encode_entry(
                    &mut buf,
                    &WalEntry { delete: vec![], ..head(index, group[0]) },
                    &[record(index as i64)],
                    None,
                )
                .unwrap();
            }
        }
        (buf, offsets)
    }

    #[test]
    fn zeros_after_the_entries_are_the_clean_end_of_the_log() {
        let (mut data, _) = segment(&[&[1, 2], &[3]]);
        let end = data.len();
        data.resize(end + 1_000_000, 0);
        let replayed = replay_segment(&data, false).unwrap();
        assert_eq!((replayed.last_index, replayed.valid_len, replayed.torn), (3, end as u64, None));
        // A segment that never held a write.
        let replayed = replay_segment(&[0; 4096], false).unwrap();
        assert_eq!((replayed.last_index, replayed.valid_len, replayed.torn), (0, 0, None));
    }

    #[test]
    fn bytes_inside_the_zeros_are_a_torn_write_reaching_to_the_last_of_them() {
        let (mut data, offsets) = segment(&[&[1, 2], &[3]]);
        let third = offsets[2];
        let end = data.len();
        data.resize(end + 100_000, 0);
        // Write 3's header never reached the disk, a later page of it did.
        data[third..third + HEADER_LEN].fill(0);
        data[end + 5000] = 1;
        let replayed = replay_segment(&data, false).unwrap();
        assert_eq!(replayed.last_index, 2);
        assert_eq!(replayed.valid_len, third as u64);
        let torn = replayed.torn.unwrap();
        assert_eq!(torn.defect, EntryDefect::ZeroLength);
        assert_eq!(torn.end, end as u64 + 5001);
    }

    #[test]
    fn a_later_group_beyond_a_run_of_zeros_proves_damage() {
        let (mut data, _) = segment(&[&[1]]);
        let second = data.len();
        // Write 2's pages were lost (zeros) after it was acknowledged: write
        // 3, a later group, sits far beyond them.
        data.resize(second + 300_000, 0);
        let later = data.len();
        encode_entry(&mut data, &WalEntry { delete: vec![], ..head(3, 3) }, &[record(3)], None).unwrap();
        data.resize(data.len() + 300_000, 0);
        let (offset, detail) = replay_segment(&data, false).unwrap_err();
        assert_eq!(offset, second as u64);
        assert!(detail.contains(&format!("offset {later}")), "{detail}");
    }

    #[test]
    fn damage_inside_the_last_group_is_a_torn_write_even_with_valid_entries_after_it() {
        let (mut data, offsets) = segment(&[&[1, 2], &[3, 4, 5]]);
        // Write 4 lost its pages, write 5 made it: the last group was torn.
        data[offsets[3] + HEADER_LEN + 2] ^= 0xff;
        let replayed = replay_segment(&data, false).unwrap();
        assert_eq!(replayed.last_index, 3);
        assert_eq!(replayed.valid_len, offsets[3] as u64);
        let torn = replayed.torn.unwrap();
        assert!(matches!(torn.defect, EntryDefect::Checksum { .. }), "{torn:?}");
        assert_eq!(torn.end, data.len() as u64);
    }

    #[test]
    fn damage_followed_by_a_later_group_is_corruption() {
        let (mut data, offsets) = segment(&[&[1, 2], &[3, 4], &[5]]);
        data[offsets[3] + HEADER_LEN + 2] ^= 0xff;
        let (offset, detail) = replay_segment(&data, false).unwrap_err();
        assert_eq!(offset, offsets[3] as u64);
        assert!(detail.contains(&format!("offset {}", offsets[4])), "{detail}");
    }

    #[test]
    fn a_damaged_length_is_caught_by_the_resync_scan() {
        let (mut data, offsets) = segment(&[&[1], &[2], &[3]]);
        // Point write 2's length past the end of the file.
        data[offsets[1] + 2] = 0x7f;
        let (offset, _) = replay_segment(&data, false).unwrap_err();
        assert_eq!(offset, offsets[1] as u64);
    }

    #[test]
    fn a_gap_in_write_numbers_is_corruption() {
        let (data, offsets) = segment(&[&[1], &[3]]);
        let (offset, detail) = replay_segment(&data, false).unwrap_err();
        assert_eq!(offset, offsets[1] as u64);
        assert!(detail.contains("write 2 was expected"), "{detail}");
    }

    #[test]
    fn a_damaged_checkpoint_is_never_torn() {
        let mut data = Vec::new();
        let ckpt = WalEntry { checkpoint: true, ..head(5, 5) };
        encode_entry(&mut data, &ckpt, &[record(1)], None).unwrap();
        let last = data.len() - 1;
        data.truncate(last);
        let (offset, _) = replay_segment(&data, true).unwrap_err();
        assert_eq!(offset, 0);
        assert!(replay_segment(&[], true).is_err(), "an empty checkpoint segment is not an empty state");
        assert!(replay_segment(&[0; 4096], true).is_err(), "a zero-filled checkpoint segment is not an empty state");
    }

    #[test]
    fn apply_deletes_before_putting() {
        let mut live = Live::default();
        live.apply(None, None, &[], [record(1), record(2)]);
        live.apply(None, None, &[1, 3], [record(3)]);
        assert_eq!(live.records.keys().copied().collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn records_a_snapshot_covers_are_dropped_but_config_records_kept() {
        let config = ClusterConfig::majority([(1, "127.0.0.1:1")]).unwrap();
        let config_record = Record { cmd: Some(Cmd::config(config)), ..record(2) };
        let mut live = Live::default();
        live.apply(None, None, &[], [record(1), config_record.clone(), record(3), record(7)]);
        live.apply(None, Some(&TailBitmap::new(4, [7])), &[], [record(5), record(6)]);
        assert_eq!(live.records.keys().copied().collect::<Vec<_>>(), [2, 5, 6]);
        // A put the current snapshot covers is dropped too.
        live.apply(None, None, &[], [record(0), record(8)]);
        assert_eq!(live.records.keys().copied().collect::<Vec<_>>(), [2, 5, 6, 8]);
        assert_eq!(live.records[&2], config_record);
    }

    #[test]
    fn apply_returns_what_the_snapshot_and_the_deletes_removed() {
        let config = ClusterConfig::majority([(1, "127.0.0.1:1")]).unwrap();
        let config_record = Record { cmd: Some(Cmd::config(config)), ..record(2) };
        let mut live = Live::default();
        drop(live.apply(None, None, &[], [record(1), config_record.clone(), record(3), record(7), record(9)]));
        let removed = live.apply(None, Some(&TailBitmap::new(4, [7])), &[9], [record(10)]);
        assert_eq!(removed.keys().copied().collect::<Vec<_>>(), [1, 3, 7, 9]);
        assert_eq!(live.records.keys().copied().collect::<Vec<_>>(), [2, 10]);
        // Below the first seq held a delete finds nothing; at it, it does.
        let removed = live.apply(None, None, &[0, 1, 2], []);
        assert_eq!(removed.into_values().collect::<Vec<_>>(), [config_record]);
        assert_eq!(live.records.keys().copied().collect::<Vec<_>>(), [10]);
    }

    #[test]
    fn zero_scans_agree_with_a_byte_by_byte_search() {
        let mut data = vec![0u8; 1000];
        assert_eq!((first_nonzero(&data, 0), last_nonzero(&data)), (None, None));
        for (at, from) in [(0, 0), (63, 0), (64, 10), (65, 65), (500, 130), (999, 998)] {
            data.fill(0);
            data[at] = 0x80;
            assert_eq!(first_nonzero(&data, from), Some(at), "{at} from {from}");
            assert_eq!(last_nonzero(&data), Some(at), "{at}");
            assert_eq!(first_nonzero(&data, at + 1), None, "{at}");
        }
        data[3] = 1;
        data[700] = 1;
        assert_eq!((first_nonzero(&data, 0), last_nonzero(&data[..600])), (Some(3), Some(3)));
    }
}
