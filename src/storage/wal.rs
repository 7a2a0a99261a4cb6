//! The entry format of a WAL segment and the replay of one segment's bytes.
//! Pure functions over byte slices, so the torn-or-corrupt rules can be
//! tested without a file system.

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

/// Field key of `WalEntry::snapshot` (tag 7, length-delimited); see `encode_entry`.
const SNAPSHOT_KEY: u8 = (7 << 3) | 2;

/// Field key of `WalEntry::index` (tag 1, varint). prost encodes fields in tag
/// order, so every payload starts with it; the resync scan uses it as a cheap
/// filter before computing a checksum.
const INDEX_KEY: u8 = 1 << 3;

/// The payload of one WAL entry: one `DurableWrite`, or (with `checkpoint`)
/// the whole durable state as of write `index`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct WalEntry {
    /// Writes are numbered from 1 over the directory's whole life; a gap or
    /// repeat in a segment means damage. Never 0, so a payload is never
    /// empty and a zero-filled header never passes as an entry.
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
    /// `Snapshot::encode()` of the snapshot this write stores (or, in a
    /// checkpoint, the current one). `optional` so that "no snapshot" is the
    /// field's absence rather than a convention about empty bytes.
    #[prost(bytes = "vec", optional, tag = "7")]
    pub snapshot: Option<Vec<u8>>,
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

/// Appends one framed entry to `buf`: `head` (whose `put` and `snapshot`
/// must be empty) followed by `put`, then `snapshot`. The records and the
/// snapshot are encoded straight from the caller's data instead of being
/// cloned into `head`: repeated fields may be split across the payload, so
/// this decodes exactly as if they were in `head.put`. The tail follows tag
/// order (6, then 7), so the bytes are also exactly prost's own encoding.
/// On `Err(len)` (payload too large) `buf` is left as it was.
pub(super) fn encode_entry<'a>(
    buf: &mut Vec<u8>,
    head: &WalEntry,
    put: impl IntoIterator<Item = &'a Record>,
    snapshot: Option<&[u8]>,
) -> Result<(), usize> {
    debug_assert!(head.put.is_empty() && head.snapshot.is_none() && head.index != 0);
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_LEN]);
    head.encode(buf).expect("a Vec grows as needed");
    for record in put {
        buf.push(PUT_KEY);
        record.encode_length_delimited(buf).expect("a Vec grows as needed");
    }
    if let Some(bytes) = snapshot {
        buf.push(SNAPSHOT_KEY);
        prost::encoding::encode_varint(bytes.len() as u64, buf);
        buf.extend_from_slice(bytes);
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
    if entry.index == 0 {
        return Err(EntryDefect::NoWriteNumber);
    }
    Ok((entry, off + HEADER_LEN + len))
}

/// Hard state, the newest snapshot, and records keyed by seq.
#[derive(Debug, Default)]
pub(super) struct Mirror {
    pub hard_state: HardState,
    /// Shared with the write that stored it and with every `DurableState`
    /// built since: a snapshot can be megabytes.
    pub snapshot: Option<Arc<Snapshot>>,
    pub records: BTreeMap<Seq, Record>,
}

impl Mirror {
    /// Applies one write: replace the hard state and the snapshot if given,
    /// then delete, then put. The replica never deletes and puts the same
    /// seq in one write; deleting first means a put is never undone by its
    /// own write.
    pub fn apply(
        &mut self,
        hard_state: Option<HardState>,
        snapshot: Option<Arc<Snapshot>>,
        delete: &[Seq],
        put: impl IntoIterator<Item = Record>,
    ) {
        if let Some(h) = hard_state {
            self.hard_state = h;
        }
        if let Some(s) = snapshot {
            self.snapshot = Some(s);
        }
        for seq in delete {
            self.records.remove(seq);
        }
        for record in put {
            self.records.insert(record.seq, record);
        }
    }
}

/// The result of replaying a segment.
#[derive(Debug)]
pub(super) struct Replayed {
    pub mirror: Mirror,
    /// The index of the last write replayed (0: none).
    pub last_index: u64,
    /// The payload length of the segment's checkpoint entry, 0 if it has none.
    pub checkpoint_len: u64,
    /// Where the valid entries end; the segment's length unless torn.
    pub valid_len: u64,
    /// Why the bytes after `valid_len` were judged a torn write.
    pub torn: Option<EntryDefect>,
}

/// Damage that recovery must not paper over: `(offset of the entry, detail)`.
pub(super) type Damage = (u64, String);

/// Replays one segment. `first_is_checkpoint`: the segment was created by a
/// checkpoint (every segment but the first), so its first entry must be a
/// checkpoint, and since it was fsynced before the segment got its name,
/// damage to it is never a torn write.
///
/// A bad entry (short, failing its checksum, undecodable) is a torn write
/// only if no write made durable after it follows: a valid entry later in
/// the file whose fsync group started after the bad entry's write number
/// proves the bad entry was acknowledged, because each group is written
/// only after the previous one's fsync returned. Valid entries of the bad
/// entry's own group may follow it (a crash can persist a group's pages out
/// of order); they were never acknowledged and are discarded with it.
///
/// An entry whose checksum matches but whose snapshot does not decode is
/// damage wherever it is: the checksum shows these are the bytes that were
/// written, so no crash can explain them.
pub(super) fn replay_segment(data: &[u8], first_is_checkpoint: bool) -> Result<Replayed, Damage> {
    let mut out = Replayed { mirror: Mirror::default(), last_index: 0, checkpoint_len: 0, valid_len: 0, torn: None };
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
                let expected = out.last_index + 1;
                if let Some((later, later_batch)) = find_later_group(data, off + 1, expected) {
                    return Err((
                        off as u64,
                        format!(
                            "{detail}; a valid entry at offset {later} belongs to a later fsync group (starting at write {later_batch}), so this entry (write {expected}) had been acknowledged"
                        ),
                    ));
                }
                out.torn = Some(detail);
                break;
            }
        };
        let expected = out.last_index + 1;
        if off == 0 && first_is_checkpoint {
            if !entry.checkpoint {
                return Err((0, "the segment does not start with a checkpoint".to_string()));
            }
            out.checkpoint_len = (end - HEADER_LEN) as u64;
            out.last_index = entry.index;
            let snapshot = decode_snapshot(entry.snapshot.as_deref(), off)?;
            out.mirror.apply(Some(entry.hard_state.unwrap_or_default().into()), snapshot, &[], entry.put);
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
            let snapshot = decode_snapshot(entry.snapshot.as_deref(), off)?;
            out.mirror.apply(entry.hard_state.map(Into::into), snapshot, &entry.delete, entry.put);
        }
        off = end;
        out.valid_len = end as u64;
    }
    Ok(out)
}

fn decode_snapshot(bytes: Option<&[u8]>, off: usize) -> Result<Option<Arc<Snapshot>>, Damage> {
    let Some(bytes) = bytes else { return Ok(None) };
    match Snapshot::decode(bytes) {
        Ok(snapshot) => Ok(Some(Arc::new(snapshot))),
        Err(e) => Err((off as u64, format!("checksum matches but the stored snapshot is invalid: {e}"))),
    }
}

/// Looks at every offset from `from` on for a valid entry holding a write
/// after `expected - 1` whose fsync group started after `expected`; returns
/// its offset and group.
fn find_later_group(data: &[u8], from: usize, expected: u64) -> Option<(usize, u64)> {
    let mut off = from;
    while off + HEADER_LEN < data.len() {
        // Cheap filter first: a plausible length and the index field key.
        let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        let plausible = len > 0 && len <= data.len() - off - HEADER_LEN && data[off + HEADER_LEN] == INDEX_KEY;
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
    use crate::pb::{Cmd, LeaderId};

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
        }
    }

    fn snapshot(prefix: i64) -> Snapshot {
        let mut kv = crate::kv::KvState::default();
        kv.apply(&Cmd::set_str(format!("k{prefix}"), "v"));
        Snapshot { applied: TailBitmap::from_prefix(prefix), kv, ..Snapshot::default() }
    }

    #[test]
    fn split_encoding_decodes_like_the_derived_one() {
        let records = [record(1), record(2)];
        let snap = snapshot(3).encode();
        for (put, snap) in [(&records[..], None), (&records[..], Some(&snap[..])), (&[][..], Some(&snap[..]))] {
            let mut buf = Vec::new();
            encode_entry(&mut buf, &head(9, 9), put, snap).unwrap();
            let (entry, end) = parse_at(&buf, 0).unwrap();
            assert_eq!(end, buf.len());
            let derived = WalEntry { put: put.to_vec(), snapshot: snap.map(<[u8]>::to_vec), ..head(9, 9) };
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
    fn snapshots_replay_and_are_replaced() {
        let mut data = Vec::new();
        let ckpt = WalEntry { checkpoint: true, ..head(5, 5) };
        encode_entry(&mut data, &ckpt, &[record(1)], Some(&snapshot(1).encode())).unwrap();
        let replayed = replay_segment(&data, true).unwrap();
        assert_eq!(replayed.mirror.snapshot.as_deref(), Some(&snapshot(1)));

        encode_entry(&mut data, &WalEntry { delete: vec![1], ..head(6, 6) }, &[], Some(&snapshot(2).encode())).unwrap();
        encode_entry(&mut data, &head(7, 7), &[record(3)], None).unwrap();
        let replayed = replay_segment(&data, true).unwrap();
        assert_eq!(replayed.mirror.snapshot.as_deref(), Some(&snapshot(2)));
        assert_eq!(replayed.mirror.records.keys().copied().collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn an_undecodable_snapshot_with_a_valid_checksum_is_corruption_even_at_the_tail() {
        let mut data = Vec::new();
        encode_entry(&mut data, &head(1, 1), &[record(1)], None).unwrap();
        let second = data.len();
        encode_entry(&mut data, &head(2, 2), &[], Some(&[0xff, 0xff, 0xff])).unwrap();
        let (offset, detail) = replay_segment(&data, false).unwrap_err();
        assert_eq!(offset, second as u64);
        assert!(detail.contains("snapshot"), "{detail}");
    }

    #[test]
    fn a_zero_filled_header_is_not_an_entry() {
        assert!(parse_at(&[0; 64], 0).is_err());
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
    fn damage_inside_the_last_group_is_a_torn_write_even_with_valid_entries_after_it() {
        let (mut data, offsets) = segment(&[&[1, 2], &[3, 4, 5]]);
        // Write 4 lost its pages, write 5 made it: the last group was torn.
        data[offsets[3] + HEADER_LEN + 2] ^= 0xff;
        let replayed = replay_segment(&data, false).unwrap();
        assert_eq!(replayed.last_index, 3);
        assert_eq!(replayed.valid_len, offsets[3] as u64);
        assert!(matches!(replayed.torn, Some(EntryDefect::Checksum { .. })), "{:?}", replayed.torn);
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
    }

    #[test]
    fn apply_deletes_before_putting() {
        let mut m = Mirror::default();
        m.apply(None, None, &[], [record(1), record(2)]);
        m.apply(None, None, &[1, 3], [record(3)]);
        assert_eq!(m.records.keys().copied().collect::<Vec<_>>(), [2, 3]);
    }
}
