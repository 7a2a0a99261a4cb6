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
use crate::replica::Seq;

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
}

impl Snapshot {
    /// Every seq below this is applied into the snapshot.
    pub fn prefix(&self) -> Seq {
        self.applied.prefix_len()
    }

    pub fn encode(&self) -> Vec<u8> {
        let data = SnapshotData {
            applied: Some(self.applied.clone()),
            entries: self.kv.iter().map(|(k, v)| Cmd::set(k.clone(), v.clone())).collect(),
            config_records: self.config_records.clone(),
        };
        data.encode_to_vec()
    }

    /// Decodes and checks what a peer or the disk handed us; garbage is an
    /// error naming what was wrong, never a partial state.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
        let data = SnapshotData::decode(bytes).map_err(|e| format!("undecodable snapshot: {e}"))?;
        let applied = data.applied.ok_or("snapshot without an applied set")?;
        if applied.offset < 0 {
            return Err(format!("snapshot applied set has a negative offset {}", applied.offset));
        }
        let mut kv = KvState::default();
        for cmd in &data.entries {
            if cmd.op != OP_SET || cmd.key.is_empty() || cmd.value.is_none() || cmd.is_config() {
                return Err(format!("snapshot entry is not a `set` of a key to a value: {cmd:?}"));
            }
            kv.apply(cmd);
        }
        let mut last = -1;
        for rec in &data.config_records {
            if !rec.cmd.as_ref().is_some_and(|c| c.is_config()) || !applied.contains(rec.seq) || rec.seq <= last {
                return Err(format!(
                    "snapshot config record at seq {} is not an applied config record in ascending order",
                    rec.seq
                ));
            }
            last = rec.seq;
        }
        Ok(Snapshot { applied, kv, config_records: data.config_records })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::LeaderId;

    #[test]
    fn round_trip_and_garbage() {
        let mut kv = KvState::default();
        kv.apply(&Cmd::set_str("a", "x"));
        kv.apply(&Cmd::incr("n", 7));
        let config = Cmd::config(crate::pb::ClusterConfig::majority([(1, "127.0.0.1:1")]).unwrap());
        let rec = Record::new(LeaderId::new(1, 1), 3, config, TailBitmap::from_prefix(3), TailBitmap::new(3, [3]));
        let snap = Snapshot { applied: TailBitmap::from_prefix(10), kv, config_records: vec![rec] };
        let bytes = snap.encode();
        assert_eq!(Snapshot::decode(&bytes).unwrap(), snap);
        assert_eq!(snap.prefix(), 10);
        assert!(Snapshot::decode(&[0xff, 0xff, 0xff]).is_err());
        assert!(Snapshot::decode(&bytes[..bytes.len() / 2]).is_err());
        let mut bad = snap.clone();
        bad.applied = TailBitmap::from_prefix(2);
        assert!(Snapshot::decode(&bad.encode()).unwrap_err().contains("config record"));
    }
}
