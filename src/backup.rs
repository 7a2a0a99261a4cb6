//! Backup files: a snapshot saved by `traftctl snapshot save`, checked by
//! `snapshot status`, and turned into a data directory by `snapshot
//! restore`, from which a new cluster starts with exactly that state.
//!
//! Layout: the 8-byte magic `TRAFTBAK`, a `u32` format version, a `u64`
//! payload length (little endian), the payload (an encoded `BackupData`),
//! and the CRC-32 (IEEE) of the payload as a `u32`.

use std::path::Path;
use std::sync::Arc;

use prost::Message;

use crate::pb::{BackupData, ClusterConfig, LeaderId, TailBitmap};
use crate::replica::{DurableState, DurableWrite, HardState, NodeId, Options, Replica};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::storage::{Storage, StorageError};

const MAGIC: &[u8; 8] = b"TRAFTBAK";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8;
const TRAILER_LEN: usize = 4;

/// A decoded, checked backup.
#[derive(Debug, Clone, PartialEq)]
pub struct Backup {
    pub snapshot: Snapshot,
    pub config: ClusterConfig,
    pub saved_at_ms: i64,
    pub leader: Option<LeaderId>,
    /// The cluster it was saved from; `None` in files written before
    /// backups carried it.
    pub cluster_id: Option<u64>,
}

/// What is wrong with a backup file; `offset` is where in the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackupError {
    #[error("at offset 0: not a traftctl backup (it does not start with {:?})", std::str::from_utf8(MAGIC).unwrap())]
    NotABackup,
    #[error("at offset {offset}: the file ends inside its {what} (truncated: {have} of {need} bytes)")]
    Truncated { offset: u64, what: &'static str, have: u64, need: u64 },
    #[error("at offset 8: format version {0}, but this build reads version {VERSION}")]
    Version(u32),
    #[error(
        "at offset {offset}: checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is damaged"
    )]
    Checksum { offset: u64, stored: u32, computed: u32 },
    #[error("at offset {offset}: {extra} bytes after the checksum; the file is not one backup")]
    Trailing { offset: u64, extra: u64 },
    #[error("at offset {HEADER_LEN}: the checksum matches but the payload does not decode: {0}")]
    Undecodable(prost::DecodeError),
    #[error("at offset {HEADER_LEN}: the checksum matches but the snapshot is invalid: {0}")]
    BadSnapshot(SnapshotError),
}

impl Backup {
    pub fn encode(&self) -> Vec<u8> {
        let payload = BackupData {
            snapshot: self.snapshot.encode(),
            config: Some(self.config.clone()),
            saved_at_ms: self.saved_at_ms,
            leader: self.leader,
            cluster_id: self.cluster_id.unwrap_or(0),
        }
        .encode_to_vec();
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TRAILER_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Backup, BackupError> {
        let have = bytes.len() as u64;
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(if MAGIC.starts_with(bytes) && !bytes.is_empty() {
                BackupError::Truncated { offset: 0, what: "header", have, need: HEADER_LEN as u64 }
            } else {
                BackupError::NotABackup
            });
        }
        if bytes.len() < HEADER_LEN {
            return Err(BackupError::Truncated { offset: 0, what: "header", have, need: HEADER_LEN as u64 });
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(BackupError::Version(version));
        }
        let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let payload_end = (HEADER_LEN as u64).saturating_add(len);
        let end = payload_end.saturating_add(TRAILER_LEN as u64);
        if have < payload_end {
            let what = "payload";
            let offset = HEADER_LEN as u64;
            return Err(BackupError::Truncated { offset, what, have: have - offset, need: len });
        }
        if have < end {
            let (offset, what) = (payload_end, "checksum");
            return Err(BackupError::Truncated { offset, what, have: have - payload_end, need: TRAILER_LEN as u64 });
        }
        if have > end {
            return Err(BackupError::Trailing { offset: end, extra: have - end });
        }
        let payload = &bytes[HEADER_LEN..payload_end as usize];
        let stored = u32::from_le_bytes(bytes[payload_end as usize..end as usize].try_into().expect("4 bytes"));
        let computed = crc32fast::hash(payload);
        if stored != computed {
            return Err(BackupError::Checksum { offset: payload_end, stored, computed });
        }
        let data = BackupData::decode(payload).map_err(BackupError::Undecodable)?;
        let snapshot = Snapshot::decode(&data.snapshot).map_err(BackupError::BadSnapshot)?;
        Ok(Backup {
            snapshot,
            config: data.config.unwrap_or_default(),
            saved_at_ms: data.saved_at_ms,
            leader: data.leader,
            cluster_id: (data.cluster_id != 0).then_some(data.cluster_id),
        })
    }

    /// The state a restored member starts from: every seq below the saved
    /// log's length counts as applied (the new cluster's log starts after
    /// it), with the saved state and no records. A member that lacks it,
    /// such as one added later, receives it as a snapshot: the restored
    /// members' compaction point is that length.
    pub fn restored_snapshot(&self) -> Snapshot {
        Snapshot {
            applied: TailBitmap::from_prefix(self.snapshot.applied.len()),
            kv: self.snapshot.kv.clone(),
            config_records: Vec::new(),
            tail_records: Vec::new(),
        }
    }
}

/// Disaster recovery (`traftctl node --force-new-cluster`): the state a
/// lone survivor `id` keeps, from what it recovered from its disk. Every
/// record it holds counts as committed, since the lost members may have
/// committed any of them (etcd's force-new-cluster likewise commits its
/// whole log); the replica then applies each one whose dependencies it
/// holds too. Returns that state as a backup to restore, and how many held
/// records could not be applied (they depend on a record nobody has now).
pub fn survivor_state(id: NodeId, mut recovered: DurableState) -> (Backup, usize) {
    for rec in &recovered.records {
        recovered.hard_state.committed.set(rec.seq);
    }
    let alone = ClusterConfig::majority([(id, String::new())]).expect("one member is a valid configuration");
    let replica = Replica::new(Options::new(id), alone, Some(recovered), 0);
    let unapplied = replica.log().keys().filter(|&&s| !replica.applied().contains(s)).count();
    let snapshot = Snapshot {
        applied: replica.applied().clone(),
        kv: replica.kv().clone(),
        config_records: Vec::new(),
        tail_records: Vec::new(),
    };
    let backup = Backup { snapshot, config: replica.config().clone(), saved_at_ms: 0, leader: None, cluster_id: None };
    (backup, unapplied)
}

/// Why a data directory could not be written from a backup.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} already holds data; restore into a new, empty directory")]
    NotEmpty(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Writes a data directory at `dir` (which must not exist or be empty)
/// holding `backup`'s state, durably. The membership is the one the member
/// starts with (`traftctl node --peers`), as for any new member. With a
/// `cluster_id` the directory records it, and the member keeps it; without,
/// the member takes the one its flags give at its first start.
pub fn restore_into(dir: &Path, backup: &Backup, cluster_id: Option<u64>) -> Result<(), RestoreError> {
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(RestoreError::NotEmpty(dir.display().to_string()));
    }
    let (mut storage, _, _) = Storage::open(dir)?;
    let snapshot = backup.restored_snapshot();
    let hard_state = HardState { committed: snapshot.applied.clone(), ..HardState::default() };
    let write = DurableWrite { hard_state: Some(hard_state), snapshot: Some(Arc::new(snapshot)), ..Default::default() };
    storage.append(vec![write])?;
    if let Some(id) = cluster_id {
        storage.record_cluster_id(id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvState;
    use crate::pb::Cmd;

    fn backup() -> Backup {
        let mut kv = KvState::default();
        kv.apply(&Cmd::set_str("a", "x"));
        kv.apply(&Cmd::set_i64("n", 7));
        Backup {
            snapshot: Snapshot { applied: TailBitmap::from_prefix(12), kv, ..Snapshot::default() },
            config: ClusterConfig::majority([(1, "127.0.0.1:7001")]).unwrap(),
            saved_at_ms: 1_700_000_000_000,
            leader: Some(LeaderId::new(3, 1)),
            cluster_id: Some(0x1234_5678_9abc_def0),
        }
    }

    #[test]
    fn a_backup_round_trips() {
        let b = backup();
        assert_eq!(Backup::decode(&b.encode()), Ok(b));
    }

    #[test]
    fn damage_is_named_with_its_offset() {
        let bytes = backup().encode();
        let len = bytes.len();
        assert_eq!(Backup::decode(b"hello, world, not a backup"), Err(BackupError::NotABackup));
        assert!(matches!(Backup::decode(&bytes[..5]), Err(BackupError::Truncated { what: "header", .. })));
        assert!(matches!(
            Backup::decode(&bytes[..len - 10]),
            Err(BackupError::Truncated { offset: 20, what: "payload", .. })
        ));
        assert!(matches!(Backup::decode(&bytes[..len - 2]), Err(BackupError::Truncated { what: "checksum", .. })));
        let mut flipped = bytes.clone();
        flipped[30] ^= 0x40;
        let err = Backup::decode(&flipped).unwrap_err();
        assert!(matches!(err, BackupError::Checksum { offset, .. } if offset == (len - 4) as u64), "{err}");
        assert!(err.to_string().starts_with(&format!("at offset {}", len - 4)), "{err}");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Backup::decode(&longer), Err(BackupError::Trailing { offset: len as u64, extra: 1 }));
        let mut version = bytes;
        version[8] = 9;
        assert_eq!(Backup::decode(&version), Err(BackupError::Version(9)));
    }

    #[test]
    fn a_file_from_before_the_cluster_id_reads_as_unknown() {
        // What an older traftctl wrote: BackupData without field 5.
        let old = Backup { cluster_id: None, ..backup() };
        let bytes = old.encode();
        let payload = &bytes[HEADER_LEN..bytes.len() - TRAILER_LEN];
        assert_eq!(BackupData::decode(payload).unwrap().cluster_id, 0, "the field is absent");
        assert_eq!(Backup::decode(&bytes).unwrap().cluster_id, None);
    }

    #[test]
    fn a_restored_directory_keeps_the_cluster_id_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept");
        restore_into(&kept, &backup(), Some(42)).unwrap();
        assert_eq!(Storage::open(&kept).unwrap().0.cluster_id().unwrap(), Some(42));
        let fresh = dir.path().join("fresh");
        restore_into(&fresh, &backup(), None).unwrap();
        assert_eq!(Storage::open(&fresh).unwrap().0.cluster_id().unwrap(), None, "chosen at the first start");
    }

    #[test]
    fn a_restored_directory_recovers_the_state_and_refuses_to_be_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("restored");
        restore_into(&target, &backup(), None).unwrap();
        let (_, state, _) = Storage::open(&target).unwrap();
        let snap = state.snapshot.expect("a snapshot");
        assert_eq!(snap.applied, TailBitmap::from_prefix(12));
        assert_eq!(snap.kv, backup().snapshot.kv);
        assert_eq!(state.hard_state.committed, TailBitmap::from_prefix(12));
        drop(snap);
        assert!(matches!(restore_into(&target, &backup(), None), Err(RestoreError::NotEmpty(_))));
    }
}
