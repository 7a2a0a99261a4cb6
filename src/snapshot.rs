//! Snapshots: the key-value state together with the applied set it reflects.
//!
//! A replica snapshots its own state to compact its log, and ships the
//! encoded snapshot in chunks to a replica that lacks records it can no
//! longer send. Every applied seq is globally committed, so a snapshot is
//! valid in every later committer's log and may be installed at any time.

use std::sync::Arc;

use prost::Message;

use crate::cmd::OP_SET;
use crate::kv::KvState;
use crate::pb::{Cmd, Record, SnapshotData, TailBitmap};
use crate::types::{MAX_WIRE_VALUE, Seq};

/// What is wrong with bytes offered as a snapshot.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SnapshotError {
    #[error("undecodable snapshot: {0}")]
    Undecodable(#[from] prost::DecodeError),
    #[error("snapshot without an applied set")]
    NoAppliedSet,
    #[error("snapshot applied set has a negative offset {0}")]
    NegativeOffset(Seq),
    #[error("snapshot applied set reaches seq {0}, past the largest seq {MAX_WIRE_VALUE}")]
    TooFar(Seq),
    #[error("snapshot entry is not a `set` of a key to a value: {0:?}")]
    NotASet(Box<Cmd>),
    #[error("snapshot config record at seq {0} is not an applied config record in ascending order")]
    BadConfigRecord(Seq),
    #[error(
        "snapshot tail record at seq {seq} is not a record at an applied seq above the prefix {prefix}, in ascending order"
    )]
    BadTailRecord { seq: Seq, prefix: Seq },
    #[error("snapshot tail record at seq {seq} overrides seq {overridden}, which is not applied")]
    OverridesUnapplied { seq: Seq, overridden: Seq },
    #[error("snapshot applied seq {seq} above its prefix {prefix} has no tail record covering it")]
    UncoveredTailSeq { seq: Seq, prefix: Seq },
}

/// A decoded snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Exactly the seqs whose effects `kv` holds.
    pub applied: TailBitmap,
    pub kv: KvState,
    /// Every applied config record, ascending. Logs keep config records for
    /// good; a replica that installs the snapshot holds these in place of its
    /// own records at the applied seqs.
    pub config_records: Vec<Record>,
    /// The records of the out-of-order applied tail (applied seqs at or above
    /// [`prefix`](Self::prefix)), ascending; between them, their own seqs and
    /// the explicit bits of their `Overrides` cover every applied seq of the
    /// tail. An installer holds them, so it can still send every record its
    /// `Accepted` claims above the prefix (docs/protocol.md, "Snapshots").
    pub tail_records: Vec<Record>,
}

impl Snapshot {
    /// Every seq below this is applied into the snapshot.
    pub fn prefix(&self) -> Seq {
        self.applied.prefix_len()
    }

    /// The encoded `SnapshotData`, byte for byte what prost encodes for it,
    /// written straight from the state: building the message first cloned
    /// every key and value (three allocations an entry, 30,000 for the
    /// benchmark's key space, at every snapshot of every member).
    pub fn encode(&self) -> Vec<u8> {
        use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len, message};
        // The field numbers of `SnapshotData`, in the order prost writes them.
        const APPLIED: u32 = 1;
        const ENTRIES: u32 = 2;
        const CONFIG_RECORDS: u32 = 3;
        const TAIL_RECORDS: u32 = 4;
        let op = String::from(OP_SET);
        let entries_len: usize = self
            .kv
            .iter()
            .map(|(key, value)| {
                let len = set_encoded_len(&op, key, value);
                key_len(ENTRIES) + encoded_len_varint(len as u64) + len
            })
            .sum();
        let len = message::encoded_len(APPLIED, &self.applied)
            + entries_len
            + message::encoded_len_repeated(CONFIG_RECORDS, &self.config_records)
            + message::encoded_len_repeated(TAIL_RECORDS, &self.tail_records);
        let mut buf = Vec::with_capacity(len);
        message::encode(APPLIED, &self.applied, &mut buf);
        for (key, value) in self.kv.iter() {
            encode_key(ENTRIES, WireType::LengthDelimited, &mut buf);
            encode_varint(set_encoded_len(&op, key, value) as u64, &mut buf);
            encode_set(&op, key, value, &mut buf);
        }
        for record in &self.config_records {
            message::encode(CONFIG_RECORDS, record, &mut buf);
        }
        for record in &self.tail_records {
            message::encode(TAIL_RECORDS, record, &mut buf);
        }
        debug_assert_eq!(buf.len(), len);
        buf
    }

    /// Decodes and checks what a peer or the disk handed us; garbage is an
    /// error naming what was wrong, never a partial state.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        let data = SnapshotData::decode(bytes)?;
        let applied = data.applied.ok_or(SnapshotError::NoAppliedSet)?;
        if applied.offset < 0 {
            return Err(SnapshotError::NegativeOffset(applied.offset));
        }
        let words = i64::try_from(applied.words.len()).unwrap_or(i64::MAX);
        let end = (applied.offset >> 6).saturating_add(words).saturating_mul(64).max(applied.offset);
        if end > MAX_WIRE_VALUE {
            return Err(SnapshotError::TooFar(end));
        }
        let mut kv = KvState::default();
        for cmd in &data.entries {
            if cmd.op != OP_SET || cmd.key.is_empty() || cmd.value.is_none() || cmd.is_config() {
                return Err(SnapshotError::NotASet(Box::new(cmd.clone())));
            }
            kv.apply(cmd);
        }
        let mut last = -1;
        for rec in &data.config_records {
            if !rec.cmd.as_ref().is_some_and(|c| c.is_config()) || !applied.contains(rec.seq) || rec.seq <= last {
                return Err(SnapshotError::BadConfigRecord(rec.seq));
            }
            last = rec.seq;
        }
        check_tail(&applied, &data.tail_records)?;
        Ok(Snapshot { applied, kv, config_records: data.config_records, tail_records: data.tail_records })
    }

    /// The applied seqs at or above the prefix.
    pub fn tail(&self) -> impl Iterator<Item = Seq> + '_ {
        self.applied.iter_from(self.prefix())
    }
}

/// A tail that does not cover every applied seq above the prefix would make
/// the installer claim records it cannot send: refuse the whole snapshot.
fn check_tail(applied: &TailBitmap, tail: &[Record]) -> Result<(), SnapshotError> {
    let prefix = applied.prefix_len();
    // Only seqs from the prefix up need covering; starting the set there
    // keeps it as small as the tail, however far up the prefix is.
    let mut covered = TailBitmap::from_prefix(prefix);
    let mut last = -1;
    for rec in tail {
        if rec.seq < prefix || rec.seq <= last || !applied.contains(rec.seq) || rec.cmd.is_none() {
            return Err(SnapshotError::BadTailRecord { seq: rec.seq, prefix });
        }
        last = rec.seq;
        covered.set(rec.seq);
        for s in rec.overrides_bm().iter() {
            if !applied.contains(s) {
                return Err(SnapshotError::OverridesUnapplied { seq: rec.seq, overridden: s });
            }
            covered.set(s);
        }
    }
    if let Some(s) = applied.iter_from(prefix).find(|&s| !covered.contains(s)) {
        return Err(SnapshotError::UncoveredTailSeq { seq: s, prefix });
    }
    Ok(())
}

/// An encoded snapshot a replica serves in chunks. Kept whole in memory
/// while peers fetch it so every chunk of one transfer comes from the same
/// bytes.
#[derive(Debug, Clone)]
pub struct SnapshotBlob {
    /// Unique per replica lifetime; a transfer names it so a replaced blob
    /// restarts the transfer instead of mixing two snapshots.
    pub id: u64,
    pub prefix: Seq,
    pub bytes: Arc<Vec<u8>>,
    pub crc: u32,
}

impl SnapshotBlob {
    pub fn new(id: u64, snapshot: &Snapshot) -> Self {
        let bytes = snapshot.encode();
        let crc = crc32fast::hash(&bytes);
        SnapshotBlob { id, prefix: snapshot.prefix(), bytes: Arc::new(bytes), crc }
    }
}

// `Cmd`'s field numbers. Like prost, an empty string field is not written.
const CMD_OP: u32 = 10;
const CMD_KEY: u32 = 20;

/// The encoded length of `Cmd::set(key, value)`.
fn set_encoded_len(op: &String, key: &String, value: &crate::pb::cmd::Value) -> usize {
    use prost::encoding::string;
    string::encoded_len(CMD_OP, op)
        + if key.is_empty() { 0 } else { string::encoded_len(CMD_KEY, key) }
        + value.encoded_len()
}

/// Writes `Cmd::set(key, value)` as prost would, without building it.
fn encode_set(op: &String, key: &String, value: &crate::pb::cmd::Value, buf: &mut Vec<u8>) {
    use prost::encoding::string;
    string::encode(CMD_OP, op, buf);
    if !key.is_empty() {
        string::encode(CMD_KEY, key, buf);
    }
    value.encode(buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::LeaderId;

    /// What `encode` wrote before it was written by hand: the message
    /// built, then encoded by prost.
    fn encoded_by_prost(snapshot: &Snapshot) -> Vec<u8> {
        SnapshotData {
            applied: Some(snapshot.applied.clone()),
            entries: snapshot.kv.iter().map(|(k, v)| Cmd::set(k.clone(), v.clone())).collect(),
            config_records: snapshot.config_records.clone(),
            tail_records: snapshot.tail_records.clone(),
        }
        .encode_to_vec()
    }

    #[test]
    fn the_encoding_is_prosts_byte_for_byte() {
        let l = LeaderId::new(2, 1);
        let mut kv = KvState::default();
        for i in 0..300 {
            kv.apply(&Cmd::set_str(format!("key-{i}"), "v".repeat(i % 200)));
            kv.apply(&Cmd::incr(format!("n-{i}"), i as i64 - 150));
        }
        // Values prost leaves out or writes short: empty, zero, negative.
        kv.apply(&Cmd::set_str("", "a value under the empty key"));
        kv.apply(&Cmd::set_str("empty", ""));
        kv.apply(&Cmd::set_i64("zero", 0));
        kv.apply(&Cmd::set_i64("min", i64::MIN));
        let config = Cmd::config(crate::pb::ClusterConfig::majority([(1, "127.0.0.1:1")]).unwrap());
        let config_record = Record::new(l, 3, config, TailBitmap::from_prefix(3), TailBitmap::new(3, [3]));
        let tail = Record::new(l, 12, Cmd::set_str("k", "b"), TailBitmap::from_prefix(10), TailBitmap::new(10, [12]));
        let snapshot = Snapshot {
            applied: TailBitmap::new(10, [12]),
            kv,
            config_records: vec![config_record],
            tail_records: vec![tail],
        };
        assert_eq!(snapshot.encode(), encoded_by_prost(&snapshot));
        assert_eq!(Snapshot::default().encode(), encoded_by_prost(&Snapshot::default()));
    }

    #[test]
    fn round_trip_and_garbage() {
        let mut kv = KvState::default();
        kv.apply(&Cmd::set_str("a", "x"));
        kv.apply(&Cmd::incr("n", 7));
        let config = Cmd::config(crate::pb::ClusterConfig::majority([(1, "127.0.0.1:1")]).unwrap());
        let rec = Record::new(LeaderId::new(1, 1), 3, config, TailBitmap::from_prefix(3), TailBitmap::new(3, [3]));
        let snap =
            Snapshot { applied: TailBitmap::from_prefix(10), kv, config_records: vec![rec], tail_records: vec![] };
        let bytes = snap.encode();
        assert_eq!(Snapshot::decode(&bytes).unwrap(), snap);
        assert_eq!(snap.prefix(), 10);
        assert!(Snapshot::decode(&[0xff, 0xff, 0xff]).is_err());
        assert!(Snapshot::decode(&bytes[..bytes.len() / 2]).is_err());
        let mut bad = snap.clone();
        bad.applied = TailBitmap::from_prefix(2);
        assert_eq!(Snapshot::decode(&bad.encode()), Err(SnapshotError::BadConfigRecord(3)));
    }

    #[test]
    fn a_tail_must_cover_every_applied_seq_above_the_prefix() {
        let l = LeaderId::new(1, 1);
        // Applied: [0, 3) and 5, 6, with 6 overriding 5 (seq 4 unapplied).
        let six = Record::new(l, 6, Cmd::set_str("k", "b"), TailBitmap::from_prefix(3), TailBitmap::new(3, [5, 6]));
        let five = Record::new(l, 5, Cmd::set_str("k", "a"), TailBitmap::from_prefix(3), TailBitmap::new(3, [5]));
        let applied = TailBitmap::new(3, [5, 6]);
        let snap = |tail: Vec<Record>| Snapshot { applied: applied.clone(), tail_records: tail, ..Snapshot::default() };
        assert_eq!(snap(vec![six.clone()]).tail().collect::<Vec<_>>(), vec![5, 6]);
        // 6's explicit Overrides vouch for 5.
        assert!(Snapshot::decode(&snap(vec![six.clone()]).encode()).is_ok());
        assert!(Snapshot::decode(&snap(vec![five.clone(), six.clone()]).encode()).is_ok());
        assert_eq!(
            Snapshot::decode(&snap(vec![five.clone()]).encode()),
            Err(SnapshotError::UncoveredTailSeq { seq: 6, prefix: 3 })
        );
        assert_eq!(
            Snapshot::decode(&snap(vec![six.clone(), five]).encode()),
            Err(SnapshotError::BadTailRecord { seq: 5, prefix: 3 })
        );
        let mut below = six.clone();
        below.seq = 2;
        assert_eq!(
            Snapshot::decode(&snap(vec![below, six]).encode()),
            Err(SnapshotError::BadTailRecord { seq: 2, prefix: 3 })
        );
    }
}
