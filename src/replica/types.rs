//! What goes in and out of the sans-IO replica.

use crate::errors::TraftError;
use crate::kv::ApplyResult;
use crate::pb::cmd::Value;
use std::sync::Arc;

use crate::pb::{
    ClusterConfig, LeaderId, LogForwardReply, LogForwardReq, Record, SnapshotChunk, SnapshotReq, TailBitmap, VoteReply,
    VoteReq,
};
use crate::snapshot::Snapshot;

pub use crate::types::{Nanos, NodeId, RequestId, Seq};

/// A message between replicas. Requests and replies are separate messages so
/// the replica never waits on the network; the runtime maps them onto RPCs.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Vote(VoteReq),
    VoteReply(VoteReply),
    Forward(LogForwardReq),
    ForwardReply(LogForwardReply),
    /// Pull one chunk of the peer's snapshot.
    SnapshotReq(SnapshotReq),
    SnapshotChunk(SnapshotChunk),
}

/// The replica state that must survive a crash (rule 10), apart from the
/// records themselves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HardState {
    pub voted_for: Option<LeaderId>,
    pub committer: Option<LeaderId>,
    /// Seqs known committed. Written lazily (a restart may forget the
    /// newest ones and relearn them from the leader; docs/protocol.md,
    /// "Durability"), but always with a snapshot, so a restart replays at
    /// least what its snapshot applied.
    pub committed: TailBitmap,
    /// For the leader `committer`: the length of its base `B_L`. A restarted
    /// replica never resumes leading, but as a follower of itself it must
    /// still answer for `B_L` consistently.
    pub base_len: Seq,
}

/// One atomic, durable step. The storage applies it all or nothing, in the
/// order the replica emitted them: the hard state, then the snapshot, then
/// the deletes, then the puts (an adoption may drop a record and install
/// another at the same seq; a compaction stores the snapshot that replaces
/// the records it deletes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DurableWrite {
    pub hard_state: Option<HardState>,
    /// Replaces the stored snapshot.
    pub snapshot: Option<Arc<Snapshot>>,
    pub put: Vec<Record>,
    pub delete: Vec<Seq>,
}

impl DurableWrite {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none() && self.snapshot.is_none() && self.put.is_empty() && self.delete.is_empty()
    }
}

/// What storage hands back to a restarting replica: the result of applying
/// every durable write it completed, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DurableState {
    pub hard_state: HardState,
    /// The newest snapshot written; the records it applied may be gone.
    pub snapshot: Option<Arc<Snapshot>>,
    pub records: Vec<Record>,
}

impl DurableState {
    /// Applies one completed write the way storage does: hard state, then
    /// snapshot, then deletes, then puts (a put replaces the record at its seq).
    pub fn apply(&mut self, write: DurableWrite) {
        if let Some(h) = write.hard_state {
            self.hard_state = h;
        }
        if write.snapshot.is_some() {
            self.snapshot = write.snapshot;
        }
        self.records.retain(|r| !write.delete.contains(&r.seq) && !write.put.iter().any(|p| p.seq == r.seq));
        self.records.extend(write.put);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Served by the leader only, under a lease or after a read-index round.
    Linearizable,
    /// Served from any replica's applied state; may be stale.
    Serializable,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientReply {
    /// The record committed at `seq` under `leader` and was applied there.
    Proposed {
        seq: Seq,
        leader: LeaderId,
        result: ApplyResult,
    },
    Read {
        value: Option<Value>,
    },
    /// Leader `from` handed leadership to member `to` and stepped down; `to`
    /// is campaigning (it is the leader once its election completes).
    Transferred {
        to: NodeId,
        from: LeaderId,
    },
    Failed(TraftError),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    VoteStart {
        candidate: LeaderId,
    },
    VoteWin {
        leader: LeaderId,
        base_len: Seq,
    },
    VoteFail {
        candidate: LeaderId,
        reason: TraftError,
    },
    /// The replica learned of (or became) a new leader.
    LeaderChange {
        leader: LeaderId,
    },
    Committed {
        seq: Seq,
    },
    Applied {
        seq: Seq,
        result: ApplyResult,
    },
    ConfigChange {
        seq: Seq,
        config: ClusterConfig,
    },
    /// The replica replaced its state with a peer's snapshot.
    SnapshotInstalled {
        from: NodeId,
        prefix: Seq,
    },
    /// The log below `below` was dropped behind a durable snapshot.
    Compacted {
        below: Seq,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Make `write` durable, then report it with `Replica::persisted(id)`.
    /// Ids increase by one per write.
    Persist {
        id: u64,
        write: DurableWrite,
    },
    /// Send `msg` once every persist up to `after_persist` is durable
    /// (0: right away). What the message claims depends on that state.
    Send {
        to: NodeId,
        msg: Message,
        after_persist: u64,
    },
    Reply {
        request: RequestId,
        reply: ClientReply,
        after_persist: u64,
    },
    /// Save `snapshot` durably on the side (it can be megabytes), without
    /// holding back the writes that follow, then report it with
    /// `Replica::snapshot_saved(id)`. Nothing depends on it until then: the
    /// replica compacts its log only afterwards, in a `Persist` whose
    /// `snapshot` is this same `Arc` (storage may recognise it and store only
    /// a reference). Lost in a crash, it is simply not there.
    SaveSnapshot {
        id: u64,
        snapshot: Arc<Snapshot>,
    },
    Event(Event),
}
