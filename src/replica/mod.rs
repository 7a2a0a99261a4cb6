//! The traft replica as a deterministic, sans-IO state machine.
//!
//! The caller (the tokio runtime, or the simulator) feeds inputs and carries
//! out the [`Action`]s the replica emits:
//!
//! ```text
//!   tick(now) / step(now, from, msg) / propose / read / persisted(id)
//!        |
//!        v
//!   take_actions() -> Persist{id, write}   make durable, then persisted(id)
//!                     Send{to, msg, after_persist}
//!                     Reply{request, reply, after_persist}
//!                     SaveSnapshot{id, snapshot}   save on the side, then snapshot_saved(id)
//!                     Event(..)
//! ```
//!
//! A `Send` or `Reply` whose `after_persist` is not yet durable must wait:
//! that is how rule 10 (durable before sent) reaches the runtime. No clock,
//! socket, file or thread is touched here; randomness (election jitter) comes
//! from a seed in [`Options`].

mod types;

pub use types::*;

/// Tunables. Durations are on the replica's own clock.
#[derive(Debug, Clone)]
pub struct Options {
    pub id: NodeId,
    /// `D`: how long an acknowledgement of a leader pins a voter, and how long
    /// a restarted replica stays out of elections.
    pub lease_ns: Nanos,
    /// `e`: the assumed bound on clock-rate error between two replicas, in
    /// parts per million. The leader's lease is `D * (1 - e)`.
    pub clock_error_ppm: u64,
    /// An idle leader forwards at least this often, to keep its lease.
    pub heartbeat_ns: Nanos,
    /// A forward or vote request unanswered after this long is sent again.
    pub retransmit_ns: Nanos,
    /// Random extra wait before campaigning, drawn from `[0, jitter)`.
    pub election_jitter_ns: Nanos,
    pub max_batch_records: usize,
    pub max_inflight_per_follower: usize,
    /// Flow control: a record is proposed (and sent to a follower) only below
    /// the committed (accepted) prefix plus this window. Bounds every bitmap.
    pub window: i64,
    /// How far the `Overrides`/`Depends` floor may trail the leader's applied
    /// prefix for the sake of a lagging member (see docs/protocol.md, "Floor").
    pub floor_lag: i64,
    /// A leader that has had no quorum of acknowledgements for this long
    /// steps down, so clients get a redirect instead of a hang.
    pub leader_stale_ns: Nanos,
    /// Seeds the election jitter; the replica has no other randomness.
    pub jitter_seed: u64,
    /// Take a snapshot (and compact the log) once the applied prefix has
    /// grown by this many seqs since the last one; 0 never snapshots.
    pub snapshot_every: i64,
    /// Applied records kept below the snapshot's prefix, so a member that
    /// trails a little catches up from the log instead of a whole snapshot.
    pub compact_retain: i64,
    /// Bytes per snapshot chunk on the wire.
    pub snapshot_chunk_bytes: usize,
    /// New commits ride on the next durable write; with no other write
    /// coming, they get one of their own after waiting this long (0: at once).
    pub commit_persist_ns: Nanos,
    /// [`CommitOrder::Prefix`] turns out-of-order commit and apply off: a
    /// diagnostic baseline, not a production mode.
    pub commit_order: CommitOrder,
}

/// Whether records commit and apply out of order (traft) or in seq order
/// (as Raft does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitOrder {
    /// Rules 7 and 8 as they stand: each seq commits on its own quorum and
    /// applies once its dependencies have.
    #[default]
    Any,
    /// The in-order baseline: the leader commits a seq only once it and every
    /// lower seq reached a quorum, and every replica applies a record only
    /// once every lower seq is applied (or is overridden by a committed
    /// record it holds, whose apply stands in for it). It only delays what
    /// rules 7 and 8 allow, so it is at least as safe; it exists to measure
    /// what out-of-order commit buys on the same binary and the same faults
    /// (docs/protocol.md, "The in-order baseline").
    Prefix,
}

impl Options {
    pub fn new(id: NodeId) -> Self {
        Options {
            id,
            lease_ns: 1_000_000_000,
            clock_error_ppm: 50_000,
            heartbeat_ns: 200_000_000,
            retransmit_ns: 300_000_000,
            election_jitter_ns: 500_000_000,
            max_batch_records: 256,
            max_inflight_per_follower: 8,
            window: 4096,
            floor_lag: 8192,
            leader_stale_ns: 2_000_000_000,
            jitter_seed: id as u64,
            snapshot_every: 10_000,
            compact_retain: 8192,
            snapshot_chunk_bytes: 1 << 20,
            commit_persist_ns: 100_000_000,
            commit_order: CommitOrder::Any,
        }
    }
}

mod apply;
mod compaction;
mod describe;
mod election;
mod follower;
mod hard;
mod leader;
mod membership;
mod validate;

pub use describe::clip;
pub use leader::PeerProgress;
pub use membership::{CATCH_UP_BOUND, plan_change};
pub use validate::{
    MAX_WIRE_VALUE, Malformed, REACH_SLACK, TERM_LEAP, check_forward, check_forward_reply, check_message,
    check_snapshot_chunk, check_snapshot_req, check_vote_reply, check_vote_req,
};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::errors::TraftError;
use crate::kv::KvState;
use crate::pb::{ClusterConfig, Cmd, LeaderId, Record, ReplicaStatus, TailBitmap};

use compaction::{Pull, Serving};
use election::Candidacy;
use follower::Adoption;
use leader::LeaderState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// Counters the simulator and benchmarks report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records that committed while a lower seq was still uncommitted.
    pub committed_out_of_order: u64,
    /// Records that applied while a lower seq was still unapplied.
    pub applied_out_of_order: u64,
    pub committed: u64,
    pub applied: u64,
    pub elections_started: u64,
    pub elections_won: u64,
    pub snapshots_taken: u64,
    pub snapshots_installed: u64,
    pub snapshot_chunks_served: u64,
    /// Leadership handed over by this replica.
    pub transfers: u64,
    /// Messages refused at the boundary as malformed or out of reach
    /// (`validate`); never one from a correct member.
    pub refused_messages: u64,
}

enum RoleState {
    Follower,
    Candidate(Candidacy),
    Leader(Box<LeaderState>),
}

pub struct Replica {
    opts: Options,
    initial_config: ClusterConfig,
    /// `now` of the input being handled; the replica never reads a clock.
    now: Nanos,

    // ---- durable (rule 10) ----
    hard: hard::Hard,
    log: BTreeMap<Seq, Record>,

    // ---- derived or volatile ----
    accepted: TailBitmap,
    applied: TailBitmap,
    kv: KvState,
    /// Held config records; the newest of these and of `snapshot_configs`
    /// is the configuration in force.
    config_seqs: BTreeSet<Seq>,
    /// Applied config records that came with an installed snapshot. Kept
    /// apart from the log: the log holds only its committer's records (rule
    /// 4), and a snapshot may come from a later leader's log.
    snapshot_configs: BTreeMap<Seq, Record>,
    /// Held records that are committed but not applied, the apply loop's work list.
    apply_ready: BTreeSet<Seq>,
    /// Held records not yet known committed.
    uncommitted_held: BTreeSet<Seq>,
    /// The committed bitmap as of the newest durable hard state; what a
    /// restart would replay from, hence what this replica may report.
    durable_committed_prefix: Seq,
    pending_hard_committed: BTreeMap<u64, Seq>,
    /// Applied prefix of the newest snapshot written.
    snapshot_prefix: Seq,
    /// Below this seq the log may lack records a snapshot applied (rules 3,
    /// 5); a peer that needs one of them must install a snapshot. Never
    /// under-estimated: too high only costs an unneeded snapshot transfer.
    compacted_below: Seq,
    /// The snapshot this replica is serving to peers, if any.
    serving: Option<Serving>,
    next_blob_id: u64,
    /// A snapshot this replica is fetching from a peer.
    pull: Option<Pull>,
    /// Its own snapshot, handed out to be saved; the log is compacted once
    /// it is durable.
    saving: Option<(u64, Arc<crate::snapshot::Snapshot>)>,
    next_save_id: u64,
    /// The records the last compaction dropped, until the embedder takes
    /// them to free ([`Replica::take_discarded`]); else freed at the next.
    discarded: Option<BTreeMap<Seq, Record>>,

    role: RoleState,
    adoption: Option<Adoption>,
    known_leader: Option<LeaderId>,
    max_term_seen: i64,
    /// Rule 2: after acknowledging `lease_leader`, refuse other ballots until then.
    vote_lease_until: Nanos,
    lease_leader: Option<LeaderId>,
    /// Rule 2: a restarted replica neither votes nor campaigns until then.
    quiet_until: Nanos,
    next_campaign_at: Nanos,

    // ---- output ----
    write: DurableWrite,
    /// When a durable write last carried the committed set.
    commits_written_at: Nanos,
    last_persist_id: u64,
    durable_persist_id: u64,
    actions: Vec<Action>,
    rng_state: u64,
    stats: Stats,
    /// The newest message refused at the boundary: from whom, and why.
    last_refusal: Option<(NodeId, Malformed)>,
}

/// Adds what `rec` backs (rule 5, [`Record::vouched`]) to `acc`.
pub(super) fn vouch(acc: &mut TailBitmap, rec: &Record) {
    for s in rec.vouched() {
        acc.set(s);
    }
}

impl Replica {
    /// Creates a replica. `restored` is what storage recovered after a crash
    /// (`None` for a brand-new member, which has nothing to forget and so
    /// need not sit out a lease).
    pub fn new(opts: Options, initial_config: ClusterConfig, restored: Option<DurableState>, now: Nanos) -> Self {
        let restarted = restored.is_some();
        let restored = restored.unwrap_or_default();
        let mut hard = restored.hard_state;
        let snapshot = restored.snapshot;
        if let Some(snap) = &snapshot {
            // Applied seqs are committed everywhere; the hard state written
            // with the snapshot says so already, this only makes it certain.
            hard.committed.union(&snap.applied);
        }
        let mut r = Replica {
            rng_state: opts.jitter_seed ^ 0x9E37_79B9_7F4A_7C15,
            quiet_until: if restarted { now + opts.lease_ns } else { now },
            opts,
            initial_config,
            now,
            durable_committed_prefix: hard.committed.prefix_len(),
            hard: hard::Hard::restored(hard),
            log: BTreeMap::new(),
            accepted: TailBitmap::empty(),
            applied: TailBitmap::empty(),
            kv: KvState::default(),
            config_seqs: BTreeSet::new(),
            snapshot_configs: BTreeMap::new(),
            apply_ready: BTreeSet::new(),
            uncommitted_held: BTreeSet::new(),
            pending_hard_committed: BTreeMap::new(),
            snapshot_prefix: 0,
            compacted_below: 0,
            serving: None,
            next_blob_id: 1,
            pull: None,
            saving: None,
            next_save_id: 1,
            discarded: None,
            role: RoleState::Follower,
            adoption: None,
            known_leader: None,
            max_term_seen: 0,
            vote_lease_until: 0,
            lease_leader: None,
            next_campaign_at: 0,
            write: DurableWrite::default(),
            commits_written_at: now,
            last_persist_id: 0,
            durable_persist_id: 0,
            actions: Vec::new(),
            stats: Stats::default(),
            last_refusal: None,
        };
        r.max_term_seen = [r.hard.voted_for(), r.hard.committer()].iter().flatten().map(|l| l.term).max().unwrap_or(0);
        let mut snapshot_tail = Vec::new();
        if let Some(snap) = snapshot {
            snapshot_tail = snap.tail_records.clone();
            r.applied = snap.applied.clone();
            r.kv = snap.kv.clone();
            r.snapshot_prefix = snap.prefix();
            // How far the compaction that wrote it went is not stored; the
            // snapshot's prefix is a bound from above, which is the safe side.
            r.compacted_below = snap.prefix();
            r.snapshot_configs = snap.config_records.iter().map(|c| (c.seq, c.clone())).collect();
        }
        for rec in restored.records {
            r.index_record(&rec);
            r.log.insert(rec.seq, rec);
        }
        // An install writes its tail records with the snapshot, and nothing
        // deletes a committed record above the snapshot's prefix; this only
        // makes the log certain to hold what `Accepted` will claim.
        for rec in snapshot_tail {
            if !r.log.contains_key(&rec.seq) {
                r.index_record(&rec);
                r.log.insert(rec.seq, rec);
            }
        }
        r.recompute_accepted();
        // Rule 8: `Applied` is not stored; replaying the committed records
        // rebuilds it together with the state machine.
        r.refresh_apply_ready();
        r.apply_committed();
        r.next_campaign_at = r.quiet_until + r.jitter();
        r
    }

    // ---------------------------------------------------------------- inputs

    pub fn tick(&mut self, now: Nanos) {
        self.now = now;
        self.snapshot_tick();
        match self.role {
            RoleState::Follower => {
                if self.may_campaign() && now >= self.next_campaign_at {
                    self.campaign(None);
                }
            }
            RoleState::Candidate(_) => self.candidate_tick(),
            RoleState::Leader(_) => self.leader_tick(),
        }
    }

    /// Campaigns now instead of at the election timeout, if this replica
    /// may campaign at all (a member, past its restart's quiet lease, not
    /// fetching a snapshot) and is a follower; returns whether it started.
    /// The votes it needs are unchanged (rules 1, 2): a voter still refuses
    /// while it holds another leader's lease.
    pub fn campaign_now(&mut self, now: Nanos) -> bool {
        self.now = now;
        let start = matches!(self.role, RoleState::Follower) && self.may_campaign();
        if start {
            self.campaign(None);
        }
        start
    }

    /// Hands leadership to member `to` (or the most caught-up reachable
    /// voter): new proposals wait, the target is brought up to date, then
    /// this leader stops serving and tells it to campaign at once. Answers
    /// `request` with [`ClientReply::Transferred`] at the hand-over, or a
    /// refusal. See "Leadership transfer" in docs/protocol.md.
    pub fn transfer_leadership(&mut self, now: Nanos, request: RequestId, to: Option<NodeId>) {
        self.now = now;
        self.start_transfer(request, to);
    }

    /// Handles a message from a peer. One that is malformed, or out of
    /// reach of this replica's state, is refused before the protocol reads
    /// it: see [`Replica::last_refusal`] and docs/protocol.md, "Hostile input".
    pub fn step(&mut self, now: Nanos, from: NodeId, msg: Message) {
        self.now = now;
        if let Err(why) = check_message(&msg).and_then(|()| self.check_reach(&msg)) {
            self.refuse(from, msg, why);
            return;
        }
        match msg {
            Message::Vote(req) => self.handle_vote(from, req),
            Message::VoteReply(reply) => self.handle_vote_reply(from, reply),
            Message::Forward(req) => self.handle_forward(from, req),
            Message::ForwardReply(reply) => self.handle_forward_reply(from, reply),
            Message::SnapshotReq(req) => self.handle_snapshot_req(from, req),
            Message::SnapshotChunk(chunk) => self.handle_snapshot_chunk(from, chunk),
        }
    }

    pub fn propose(&mut self, now: Nanos, request: RequestId, cmd: Cmd) {
        self.now = now;
        self.leader_propose(request, cmd);
    }

    pub fn read(&mut self, now: Nanos, request: RequestId, key: &str, consistency: ReadConsistency) {
        self.now = now;
        match consistency {
            ReadConsistency::Serializable => {
                let value = self.kv.get(key).cloned();
                self.reply(request, ClientReply::Read { value }, 0);
            }
            ReadConsistency::Linearizable => self.leader_read(request, key),
        }
    }

    /// Storage made every write up to `persist_id` durable.
    pub fn persisted(&mut self, now: Nanos, persist_id: u64) {
        self.now = now;
        if persist_id <= self.durable_persist_id {
            return;
        }
        self.durable_persist_id = persist_id;
        let done: Vec<u64> = self.pending_hard_committed.range(..=persist_id).map(|(id, _)| *id).collect();
        for id in done {
            let prefix = self.pending_hard_committed.remove(&id).unwrap_or(0);
            self.durable_committed_prefix = self.durable_committed_prefix.max(prefix);
        }
        self.leader_persisted(persist_id);
    }

    /// The transport lost forward `forward_id` to `peer` (`None`: every
    /// forward in flight to it), e.g. when its connection broke: the leader
    /// sends those records again with its next forwards instead of waiting
    /// for `retransmit_ns` to pass. A notice about a forward that did arrive
    /// costs only a duplicate, which followers ignore.
    pub fn forward_lost(&mut self, now: Nanos, peer: NodeId, forward_id: Option<u64>) {
        self.now = now;
        self.leader_forward_lost(peer, forward_id);
    }

    /// Storage saved the snapshot of `SaveSnapshot { id, .. }` durably: the
    /// log below it can go.
    pub fn snapshot_saved(&mut self, now: Nanos, id: u64) {
        self.now = now;
        self.compact_to_saved(id);
    }

    /// Everything the replica wants done since the last call, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        self.leader_flush();
        self.flush_write();
        std::mem::take(&mut self.actions)
    }

    /// The records the last compaction dropped from the log, if not taken
    /// yet: a snapshot interval's worth, which an embedder with threads can
    /// free off the one that runs the replica.
    pub fn take_discarded(&mut self) -> Option<BTreeMap<Seq, Record>> {
        self.discarded.take()
    }

    // --------------------------------------------------------- introspection

    pub fn id(&self) -> NodeId {
        self.opts.id
    }

    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    pub fn voted_for(&self) -> Option<LeaderId> {
        self.hard.voted_for()
    }

    pub fn committer(&self) -> Option<LeaderId> {
        self.hard.committer()
    }

    pub fn accepted(&self) -> &TailBitmap {
        &self.accepted
    }

    pub fn committed(&self) -> &TailBitmap {
        self.hard.committed()
    }

    pub fn applied(&self) -> &TailBitmap {
        &self.applied
    }

    pub fn log(&self) -> &BTreeMap<Seq, Record> {
        &self.log
    }

    pub fn kv(&self) -> &KvState {
        &self.kv
    }

    /// The configuration in force: the newest config record held (rule 9).
    pub fn config(&self) -> &ClusterConfig {
        self.newest_config_record()
            .and_then(|r| r.cmd.as_ref())
            .and_then(|c| c.config_value())
            .unwrap_or(&self.initial_config)
    }

    /// `Some(L)` while this replica leads as `L` with its base fixed.
    pub fn leader_ballot(&self) -> Option<LeaderId> {
        match &self.role {
            RoleState::Leader(l) => Some(l.ballot),
            _ => None,
        }
    }

    pub fn base_len(&self) -> Option<Seq> {
        match &self.role {
            RoleState::Leader(l) => Some(l.base_len),
            _ => None,
        }
    }

    /// The leader this replica's lease (rule 2) pins it to, and until when
    /// on its clock: for a follower, when it last heard from a leader.
    pub fn lease_pin(&self) -> Option<(LeaderId, Nanos)> {
        self.lease_leader.map(|l| (l, self.vote_lease_until))
    }

    pub fn known_leader(&self) -> Option<LeaderId> {
        self.known_leader
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The newest message refused at the boundary (counted in
    /// `Stats::refused_messages`): the claimed sender and the defect.
    pub fn last_refusal(&self) -> Option<&(NodeId, Malformed)> {
        self.last_refusal.as_ref()
    }

    /// Below this seq the log may lack records that a snapshot applied.
    pub fn compacted_below(&self) -> Seq {
        self.compacted_below
    }

    /// Applied prefix of the newest snapshot this replica wrote.
    pub fn snapshot_prefix(&self) -> Seq {
        self.snapshot_prefix
    }

    /// The config record in force: the newest held or installed one.
    fn newest_config_record(&self) -> Option<&Record> {
        let held = self.config_seqs.last().and_then(|s| self.log.get(s));
        let installed = self.snapshot_configs.values().next_back();
        match (held, installed) {
            (Some(h), Some(i)) => Some(if i.seq > h.seq { i } else { h }),
            (h, i) => h.or(i),
        }
    }

    /// Whether `id` belonged to an earlier configuration this replica knows
    /// (the initial one, a held or installed config record) but is neither a
    /// member nor a learner of the one in force, nor of the one a change in
    /// flight moves to: a member the cluster removed. A member that is new,
    /// rather than removed, appears in no earlier configuration.
    pub(super) fn was_removed(&self, id: NodeId) -> bool {
        let now = self.config();
        let belongs = |c: &ClusterConfig| c.members.contains_key(&id) || c.learners.contains_key(&id);
        if belongs(now) || now.next.as_deref().is_some_and(belongs) {
            return false;
        }
        let held = self.config_seqs.iter().filter_map(|s| self.log.get(s));
        let installed = self.snapshot_configs.values();
        let earlier = held.chain(installed).filter_map(|r| r.cmd.as_ref().and_then(|c| c.config_value()));
        belongs(&self.initial_config) || earlier.into_iter().any(belongs)
    }

    /// Applied config records that came with an installed snapshot.
    pub fn snapshot_configs(&self) -> &BTreeMap<Seq, Record> {
        &self.snapshot_configs
    }

    pub fn status(&self) -> ReplicaStatus {
        ReplicaStatus {
            voted_for: self.hard.voted_for(),
            vote_expire_at: self.vote_lease_until as i64,
            committer: self.hard.committer(),
            accepted: Some(self.accepted.clone()),
            committed: Some(self.hard.committed().clone()),
            applied: Some(self.applied.clone()),
        }
    }

    // ------------------------------------------------------ shared machinery

    /// Emits the pending write, if any, as one atomic `Persist`; returns the
    /// id a message that depends on the current state must wait for.
    fn flush_write(&mut self) -> u64 {
        // A record held and then dropped (compacted, or replaced by a
        // snapshot) within one write must not be put: storage deletes first.
        let log = &self.log;
        self.write.put.retain(|r| log.get(&r.seq).is_some_and(|held| held.same_identity(r)));
        // New commits ride on a write made for something else, or get one
        // once they have waited `commit_persist_ns`.
        let due = self.now >= self.commits_written_at.saturating_add(self.opts.commit_persist_ns);
        if let Some(hard) = self.hard.take_change(due || !self.write.is_empty()) {
            self.write.hard_state = Some(hard);
            self.commits_written_at = self.now;
        }
        if !self.write.is_empty() {
            self.last_persist_id += 1;
            let id = self.last_persist_id;
            if let Some(h) = &self.write.hard_state {
                self.pending_hard_committed.insert(id, h.committed.prefix_len());
            }
            let write = std::mem::take(&mut self.write);
            self.actions.push(Action::Persist { id, write });
            self.note_own_persist(id);
        }
        self.last_persist_id
    }

    fn send(&mut self, to: NodeId, msg: Message, after_persist: u64) {
        self.actions.push(Action::Send { to, msg, after_persist });
    }

    /// Sends `msg` once everything this replica has changed so far is durable.
    fn send_durable(&mut self, to: NodeId, msg: Message) {
        let after = self.flush_write();
        self.send(to, msg, after);
    }

    fn reply(&mut self, request: RequestId, reply: ClientReply, after_persist: u64) {
        self.actions.push(Action::Reply { request, reply, after_persist });
    }

    fn event(&mut self, event: Event) {
        self.actions.push(Action::Event(event));
    }

    fn not_leader_error(&self) -> TraftError {
        match self.known_leader {
            Some(l) if Some(l) != self.leader_ballot() => {
                let addr = self.config().members.get(&l.id).map(|m| m.addr.clone());
                TraftError::NotLeader { leader: Some(l), addr }
            }
            _ => TraftError::NoLeader,
        }
    }

    fn observe_term(&mut self, leader: Option<LeaderId>) {
        if let Some(l) = leader {
            self.max_term_seen = self.max_term_seen.max(l.term);
        }
    }

    /// splitmix64: deterministic per seed, good enough for election jitter.
    fn next_random(&mut self) -> u64 {
        self.rng_state = self.rng_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn jitter(&mut self) -> Nanos {
        match self.opts.election_jitter_ns {
            0 => 0,
            j => self.next_random() % j,
        }
    }

    /// Every member and learner of the configuration in force, except this
    /// replica: everyone the leader replicates to.
    fn peers(&self) -> Vec<NodeId> {
        let config = self.config();
        config.members.keys().chain(config.learners.keys()).copied().filter(|&id| id != self.opts.id).collect()
    }

    fn is_member(&self, id: NodeId) -> bool {
        self.config().members.contains_key(&id)
    }

    /// The prefix every replica that replays its durable state re-applies;
    /// leaders choose `Overrides`/`Depends` floors below what members report.
    fn replayable_applied_prefix(&self) -> Seq {
        self.applied.prefix_len().min(self.durable_committed_prefix)
    }

    // ------------------------------------------------- log bookkeeping

    fn index_record(&mut self, rec: &Record) {
        if rec.cmd.as_ref().is_some_and(|c| c.is_config()) {
            self.config_seqs.insert(rec.seq);
        }
    }

    /// Puts a record in the log (and in the pending durable write).
    fn hold_record(&mut self, rec: Record) {
        let seq = rec.seq;
        let was_config = self.config_seqs.last().copied();
        self.index_record(&rec);
        vouch(&mut self.accepted, &rec);
        if self.hard.committed().contains(seq) {
            if !self.applied.contains(seq) {
                self.apply_ready.insert(seq);
            }
        } else {
            self.uncommitted_held.insert(seq);
        }
        self.write.put.push(rec.clone());
        self.log.insert(seq, rec);
        if self.config_seqs.last().copied() != was_config {
            self.config_changed();
        }
    }

    fn drop_record(&mut self, seq: Seq) {
        if self.log.remove(&seq).is_some() {
            self.write.delete.push(seq);
        }
        self.uncommitted_held.remove(&seq);
        self.apply_ready.remove(&seq);
        if self.config_seqs.remove(&seq) {
            self.config_changed();
        }
    }

    /// What `drop_record` does for every record below `below` but config
    /// records, by splitting each index once instead of a removal per
    /// record: a compaction drops a whole snapshot interval (10,000 records
    /// by default), and removing them one by one held the member's thread
    /// for 3-14 ms, which every request in flight waited out. Returns the
    /// dropped records.
    fn drop_records_below(&mut self, below: Seq) -> BTreeMap<Seq, Record> {
        let kept = self.log.split_off(&below);
        let mut dropped = std::mem::replace(&mut self.log, kept);
        for seq in self.config_seqs.range(..below) {
            if let Some(rec) = dropped.remove(seq) {
                self.log.insert(*seq, rec);
            }
        }
        self.write.delete.extend(dropped.keys().copied());
        // Applied records are in neither index: these hold a few seqs.
        let config_seqs = &self.config_seqs;
        for index in [&mut self.uncommitted_held, &mut self.apply_ready] {
            index.retain(|s| *s >= below || config_seqs.contains(s));
        }
        dropped
    }

    fn config_changed(&mut self) {
        let config = self.config().clone();
        let seq = self.newest_config_record().map_or(-1, |r| r.seq);
        self.event(Event::ConfigChange { seq, config });
    }

    /// Rule 5: `Accepted` is exactly what the held records and the applied
    /// set vouch for.
    fn recompute_accepted(&mut self) {
        let mut acc = self.applied.clone();
        for rec in self.log.values() {
            vouch(&mut acc, rec);
        }
        self.accepted = acc;
    }

    fn refresh_apply_ready(&mut self) {
        self.apply_ready.clear();
        self.uncommitted_held.clear();
        for &seq in self.log.keys() {
            if self.hard.committed().contains(seq) {
                if !self.applied.contains(seq) {
                    self.apply_ready.insert(seq);
                }
            } else {
                self.uncommitted_held.insert(seq);
            }
        }
    }

    /// Marks `seq` committed locally; callers have established rule 7.
    fn mark_committed(&mut self, seq: Seq) {
        if seq > self.hard.committed().prefix_len() && !self.hard.committed().contains(seq) {
            self.stats.committed_out_of_order += 1;
        }
        if !self.hard.commit(seq) {
            return;
        }
        self.stats.committed += 1;
        self.uncommitted_held.remove(&seq);
        if self.log.contains_key(&seq) && !self.applied.contains(seq) {
            self.apply_ready.insert(seq);
        }
        self.event(Event::Committed { seq });
    }

    /// Rule 7 on a replica: a held record `r` known committed makes every seq
    /// in its `Overrides` committed (a quorum accepted them through `r`).
    fn commit_held(&mut self, seq: Seq) {
        let Some(rec) = self.log.get(&seq) else { return };
        let covered: Vec<Seq> = rec.overrides_bm().iter().collect();
        self.mark_committed(seq);
        for s in covered {
            if s != seq && self.accepted.contains(s) {
                self.mark_committed(s);
            }
        }
    }

    /// Moves to follower, failing what only a leader or candidate could finish.
    fn become_follower(&mut self) {
        let old = std::mem::replace(&mut self.role, RoleState::Follower);
        if let RoleState::Leader(l) = old {
            // We no longer lead; naming our old ballot would send clients in
            // a redirect loop back to us.
            if self.known_leader == Some(l.ballot) {
                self.known_leader = None;
            }
            self.fail_leader_requests(*l);
        }
    }
}
