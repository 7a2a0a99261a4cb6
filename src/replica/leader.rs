//! Leading (rules 2, 6, 7, 9, 11): proposals with exact `Overrides` and
//! `Depends`, forwarding with several forwards in flight, out-of-order
//! commit, leases and linearizable reads.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::*;
use crate::kv::ApplyResult;
use crate::pb::{BaseRun, LogForwardReply, LogForwardReq};

/// A bitmap whose all-ones prefix ends exactly at `floor` (rule 6: the
/// prefix claims every record below it on every key, so it must not pass the
/// floor even when the explicit bits above happen to be contiguous).
pub(super) fn floor_bitmap(floor: Seq, bits: impl IntoIterator<Item = Seq>) -> TailBitmap {
    let floor = floor.max(0);
    let base = floor & !63;
    // Residual bits below the floor in its word are part of the prefix.
    let mut words = vec![(1u64 << (floor - base)) - 1];
    for s in bits {
        debug_assert!(s >= floor, "explicit bits lie at or above the floor");
        let i = ((s - base) / 64) as usize;
        if words.len() <= i {
            words.resize(i + 1, 0);
        }
        words[i] |= 1 << ((s - base) % 64);
    }
    while words.len() > 1 && words.last() == Some(&0) {
        words.pop();
    }
    if words == [0] {
        words.clear();
    }
    TailBitmap { offset: floor, words, reclamed: 0 }
}

#[derive(Default)]
struct Progress {
    /// Reported `Committer == L`: its acceptances count toward commits.
    adopted: bool,
    accepted: TailBitmap,
    next_send: Seq,
    resend: BTreeSet<Seq>,
    /// Refused records, offered again at the next heartbeat rather than at
    /// once, so a follower that cannot take them yet is not flooded.
    resend_later: BTreeSet<Seq>,
    inflight: BTreeMap<u64, (Nanos, Vec<Seq>)>,
    sent_at: BTreeMap<u64, Nanos>,
    last_sent_at: Option<Nanos>,
    /// Send time of the newest forward this member acknowledged (rule 2).
    acked_send_at: Option<Nanos>,
    committer: Option<LeaderId>,
}

/// The leader's view of one member, for `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerProgress {
    pub id: NodeId,
    /// The member's committer as last reported; `Some(L)` once it adopted us.
    pub committer: Option<LeaderId>,
    pub accepted: TailBitmap,
    pub applied_prefix: Seq,
    /// Seqs committed on the leader that the member has not applied.
    pub lag: i64,
    /// Acknowledged a forward within the last lease.
    pub reachable: bool,
}

struct PendingRead {
    request: RequestId,
    key: String,
    arrival: Nanos,
    /// Records committed at arrival that the answer must reflect (rule 11).
    required: TailBitmap,
}

pub(super) struct LeaderState {
    pub ballot: LeaderId,
    pub base_len: Seq,
    runs: Vec<BaseRun>,
    /// The persist that made `Committer == L` durable; forwards wait for it.
    hard_persist_id: u64,
    pub(super) next_seq: Seq,
    floor: Seq,
    member_applied: BTreeMap<NodeId, Seq>,
    progress: BTreeMap<NodeId, Progress>,
    /// Per key, every seq at or above the floor that a new record on the key
    /// must override or depend on (records on the key and what they override).
    key_cover: BTreeMap<String, BTreeSet<Seq>>,
    config_cover: BTreeSet<Seq>,
    /// Own records that are durable: only those count toward commits.
    self_durable: TailBitmap,
    unflushed_own: Vec<Seq>,
    pending_self: BTreeMap<u64, Vec<Seq>>,
    uncommitted: BTreeSet<Seq>,
    proposals: BTreeMap<Seq, RequestId>,
    queued: VecDeque<(RequestId, Cmd)>,
    reads: Vec<PendingRead>,
    next_forward_id: u64,
    self_ack_at: Nanos,
    last_quorum_ack_at: Nanos,
    force_heartbeat: bool,
    pub(super) change: Option<super::membership::Change>,
    transfer: Option<Transfer>,
}

/// A leadership transfer under way: proposals wait while `target` catches up.
struct Transfer {
    target: NodeId,
    request: RequestId,
    /// Given up, and proposals resumed, if the target is not caught up by then.
    deadline: Nanos,
}

impl Replica {
    /// The floor for `Overrides`/`Depends` prefixes: no higher than what any
    /// member can replay, so every member can accept the records, unless a
    /// member trails by more than `floor_lag` (it then needs a snapshot).
    pub(super) fn choose_floor(&self, known: &BTreeMap<NodeId, Seq>) -> Seq {
        // Our own replayable prefix, not the applied one: after a crash we
        // must still be able to accept the records we authored.
        let own = self.replayable_applied_prefix();
        let lowest_allowed = (own - self.opts.floor_lag).max(0);
        // Learners count too: a floor above a catching-up learner's prefix
        // makes it refuse every new record until it has caught up.
        let config = self.config();
        let min_member = config
            .members
            .keys()
            .chain(config.learners.keys())
            .filter(|&&id| id != self.opts.id)
            .map(|id| known.get(id).copied().unwrap_or(lowest_allowed))
            .min()
            .unwrap_or(own);
        // Never below our own compaction point: the records there are gone,
        // so a new record could not name the earlier ones on its key in
        // `Overrides`/`Depends` (rule 6); the all-ones prefix claims them
        // instead. A member below it needs our snapshot anyway
        // (`SnapshotPrefix`), and every compacted record is applied here.
        min_member.max(lowest_allowed).min(own).max(self.compacted_below)
    }

    pub(super) fn start_leading(&mut self, ballot: LeaderId, base_len: Seq, voter_applied: BTreeMap<NodeId, Seq>) {
        let floor = self.choose_floor(&voter_applied);
        let mut runs: Vec<BaseRun> = Vec::new();
        let mut push = |start: Seq, end: Seq, author: Option<LeaderId>| {
            if start >= end {
                return;
            }
            match runs.last_mut() {
                Some(last) if last.end == start && last.author == author => last.end = end,
                _ => runs.push(BaseRun { start, end, author }),
            }
        };
        let mut at = 0;
        for (&seq, rec) in self.log.range(..base_len) {
            push(at, seq, None);
            push(seq, seq + 1, rec.author);
            at = seq + 1;
        }
        push(at, base_len, None);

        let mut key_cover: BTreeMap<String, BTreeSet<Seq>> = BTreeMap::new();
        let mut config_cover = BTreeSet::new();
        for rec in self.log.range(floor..).map(|(_, r)| r) {
            let Some(cmd) = &rec.cmd else { continue };
            if cmd.is_config() {
                config_cover.insert(rec.seq);
            } else if !cmd.is_noop() {
                let cover = key_cover.entry(cmd.key.clone()).or_default();
                cover.extend(rec.overrides_bm().iter().filter(|&s| s >= floor));
                cover.insert(rec.seq);
            }
        }
        let uncommitted: BTreeSet<Seq> =
            (self.hard.committed().prefix_len()..base_len).filter(|&s| !self.hard.committed().contains(s)).collect();
        let hard_persist_id = self.flush_write();
        let mut pending_self = BTreeMap::new();
        pending_self.insert(hard_persist_id, Vec::new());
        self.role = RoleState::Leader(Box::new(LeaderState {
            ballot,
            base_len,
            runs,
            hard_persist_id,
            next_seq: base_len,
            floor,
            member_applied: voter_applied,
            progress: BTreeMap::new(),
            key_cover,
            config_cover,
            self_durable: TailBitmap::empty(),
            unflushed_own: Vec::new(),
            pending_self,
            uncommitted,
            proposals: BTreeMap::new(),
            queued: VecDeque::new(),
            reads: Vec::new(),
            next_forward_id: 1,
            self_ack_at: self.now,
            last_quorum_ack_at: self.now,
            force_heartbeat: true,
            change: None,
            transfer: None,
        }));
        if hard_persist_id <= self.durable_persist_id {
            self.leader_persisted(hard_persist_id);
        }
        self.resume_change();
    }

    pub(super) fn leader_mut(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            RoleState::Leader(l) => Some(l),
            _ => None,
        }
    }

    pub(super) fn leader_ref(&self) -> Option<&LeaderState> {
        match &self.role {
            RoleState::Leader(l) => Some(l),
            _ => None,
        }
    }

    /// Own records written in the persist about to be emitted: the leader
    /// counts itself toward a commit only once they are durable.
    pub(super) fn note_own_persist(&mut self, id: u64) {
        if let Some(l) = self.leader_mut()
            && !l.unflushed_own.is_empty()
        {
            let seqs = std::mem::take(&mut l.unflushed_own);
            l.pending_self.entry(id).or_default().extend(seqs);
        }
    }

    // ------------------------------------------------------------ proposals

    pub(super) fn leader_propose(&mut self, request: RequestId, cmd: Cmd) {
        if self.leader_ref().is_none() {
            let err = self.not_leader_error();
            self.reply(request, ClientReply::Failed(err), 0);
            return;
        }
        if let Err(err) = self.check_proposal(&cmd) {
            self.reply(request, ClientReply::Failed(err), 0);
            return;
        }
        if let Some(l) = self.leader_mut() {
            l.queued.push_back((request, cmd));
        }
        self.drain_queue();
    }

    fn check_proposal(&self, cmd: &Cmd) -> Result<(), TraftError> {
        use crate::cmd::{OP_DEL, OP_INCR, OP_SET};
        use crate::pb::cmd::Value;
        let why = if cmd.is_noop() {
            "`noop` is reserved for filling log holes".to_string()
        } else if cmd.is_config() {
            "a configuration change is not a proposal; it goes through the configuration change request".to_string()
        } else if ![OP_SET, OP_DEL, OP_INCR].contains(&cmd.op.as_str()) {
            format!("unknown operation {:?}; a proposal is `set`, `del` or `incr`", clip(cmd.op.clone(), 32))
        } else if cmd.key.is_empty() {
            "the key must not be empty".to_string()
        } else if cmd.op == OP_SET && !matches!(cmd.value, Some(Value::VStr(_) | Value::Vi64(_))) {
            "`set` needs a string or integer value".to_string()
        } else if cmd.op == OP_INCR && !matches!(cmd.value, None | Some(Value::Vi64(_))) {
            "`incr` takes an integer delta".to_string()
        } else {
            return Ok(());
        };
        Err(TraftError::Rejected(why))
    }

    /// Flow control: a new seq is taken only within `window` of the
    /// committed prefix, which bounds every bitmap on the wire.
    fn drain_queue(&mut self) {
        let limit = self.hard.committed().prefix_len() + self.opts.window;
        loop {
            let Some(l) = self.leader_mut() else { return };
            // During a transfer proposals wait: a record the target does not
            // hold at the hand-over would only delay it.
            if l.next_seq >= limit || l.transfer.is_some() {
                return;
            }
            let Some((request, cmd)) = l.queued.pop_front() else { return };
            let seq = self.append(cmd);
            if let Some(l) = self.leader_mut() {
                l.proposals.insert(seq, request);
            }
        }
    }

    /// Rule 6: `Overrides` and `Depends` from command interference.
    pub(super) fn append(&mut self, cmd: Cmd) -> Seq {
        let l = self.leader_mut().expect("only a leader appends");
        let seq = l.next_seq;
        l.next_seq += 1;
        let floor = l.floor;
        let configs: Vec<Seq> = l.config_cover.iter().copied().collect();
        let (depends, overrides) = if cmd.is_config() {
            l.config_cover.insert(seq);
            (floor_bitmap(floor, floor..seq), floor_bitmap(floor, [seq]))
        } else {
            let cover = l.key_cover.entry(cmd.key.clone()).or_default();
            let result = if cmd.is_blind_write() {
                // A blind write overrides the whole chain it supersedes.
                let overrides = floor_bitmap(floor, cover.iter().copied().chain([seq]));
                (floor_bitmap(floor, configs), overrides)
            } else {
                // incr reads the key: it depends on every earlier record on it.
                let depends = floor_bitmap(floor, cover.iter().copied().chain(configs));
                (depends, floor_bitmap(floor, [seq]))
            };
            cover.insert(seq);
            result
        };
        let ballot = l.ballot;
        l.uncommitted.insert(seq);
        l.unflushed_own.push(seq);
        self.hold_record(Record::new(ballot, seq, cmd, depends, overrides));
        seq
    }

    pub(super) fn leader_applied(&mut self, seq: Seq, result: &ApplyResult) {
        let Some(l) = self.leader_mut() else { return };
        let ballot = l.ballot;
        if let Some(request) = l.proposals.remove(&seq) {
            self.reply(request, ClientReply::Proposed { seq, leader: ballot, result: result.clone() }, 0);
        }
    }

    /// Stepping down: what was forwarded may still commit, so its outcome
    /// is unknown; what never got a seq did not happen.
    pub(super) fn fail_leader_requests(&mut self, l: LeaderState) {
        for (_, request) in l.proposals {
            self.reply(request, ClientReply::Failed(TraftError::LeadershipLost { leader: l.ballot }), 0);
        }
        let err = self.not_leader_error();
        for (request, _) in l.queued {
            self.reply(request, ClientReply::Failed(err.clone()), 0);
        }
        for read in l.reads {
            self.reply(read.request, ClientReply::Failed(err.clone()), 0);
        }
        if let Some(request) = l.change.and_then(|c| c.request) {
            self.reply(request, ClientReply::Failed(TraftError::LeadershipLost { leader: l.ballot }), 0);
        }
        if let Some(t) = l.transfer {
            self.reply(t.request, ClientReply::Failed(err), 0);
        }
    }

    pub(super) fn self_durable_prefix(&self) -> Seq {
        self.leader_ref().map_or(0, |l| l.self_durable.prefix_len())
    }

    fn step_down(&mut self) {
        self.become_follower();
        self.next_campaign_at = self.now + self.opts.lease_ns + self.jitter();
    }

    // ----------------------------------------------------------- forwarding

    /// Sends what each follower lacks, within its in-flight and window
    /// limits, plus heartbeats. Runs once per `take_actions`, so proposals
    /// that arrived together leave in one batch.
    pub(super) fn leader_flush(&mut self) {
        if self.leader_ref().is_none() {
            return;
        }
        self.drain_queue();
        let peers = self.peers();
        let now = self.now;
        let (batch, inflight_max, heartbeat, window) = (
            self.opts.max_batch_records,
            self.opts.max_inflight_per_follower,
            self.opts.heartbeat_ns,
            self.opts.window,
        );
        let mut out: Vec<(NodeId, LogForwardReq)> = Vec::new();
        let compacted_below = self.compacted_below;
        {
            let committed = self.hard.committed().clone();
            let log = &self.log;
            let RoleState::Leader(l) = &mut self.role else { return };
            let force = std::mem::take(&mut l.force_heartbeat);
            // Below this a follower cannot get every record from us: we may
            // have compacted them, or it cannot accept records whose floor is
            // above what it holds.
            let snapshot_prefix = compacted_below.max(l.floor);
            for id in peers {
                let p =
                    l.progress.entry(id).or_insert_with(|| Progress { next_send: l.base_len, ..Default::default() });
                loop {
                    if p.inflight.len() >= inflight_max {
                        break;
                    }
                    let mut seqs: Vec<Seq> = Vec::new();
                    while seqs.len() < batch {
                        let Some(s) = p.resend.pop_first() else { break };
                        if log.contains_key(&s) && !(p.adopted && p.accepted.contains(s)) {
                            seqs.push(s);
                        }
                    }
                    let limit = l.next_seq.min(p.accepted.prefix_len() + window);
                    while seqs.len() < batch && p.next_send < limit {
                        if log.contains_key(&p.next_send) {
                            seqs.push(p.next_send);
                        }
                        p.next_send += 1;
                    }
                    let idle = p.last_sent_at.is_none_or(|t| now >= t + heartbeat);
                    if seqs.is_empty() && !force && !idle {
                        break;
                    }
                    let forward_id = l.next_forward_id;
                    l.next_forward_id += 1;
                    let req = LogForwardReq {
                        committer: Some(l.ballot),
                        logs: seqs.iter().map(|s| log[s].clone()).collect(),
                        committed: Some(committed.clone()),
                        base_len: l.base_len,
                        base_runs: if p.adopted { Vec::new() } else { l.runs.clone() },
                        forward_id,
                        snapshot_prefix,
                        campaign_now: false,
                    };
                    p.inflight.insert(forward_id, (now, seqs.clone()));
                    p.sent_at.insert(forward_id, now);
                    while p.sent_at.len() > 4 * inflight_max {
                        p.sent_at.pop_first();
                    }
                    p.last_sent_at = Some(now);
                    out.push((id, req));
                    if seqs.is_empty() {
                        break;
                    }
                }
            }
            if !out.is_empty() {
                l.self_ack_at = now;
            }
        }
        if !out.is_empty() {
            // Rule 2: the leader counts its own acknowledgement, so it too
            // refuses other ballots for a lease.
            self.vote_lease_until = now + self.opts.lease_ns;
            self.lease_leader = self.leader_ballot();
        }
        let after = self.leader_ref().map_or(0, |l| l.hard_persist_id);
        for (to, req) in out {
            self.send(to, Message::Forward(req), after);
        }
    }

    pub(super) fn handle_forward_reply(&mut self, from: NodeId, reply: LogForwardReply) {
        self.observe_term(reply.voted_for);
        let Some(ballot) = self.leader_ballot() else { return };
        if !reply.ok || reply.voted_for != Some(ballot) {
            if reply.voted_for > Some(ballot) {
                self.step_down();
            }
            return;
        }
        let window = self.opts.window;
        let base_len;
        {
            let RoleState::Leader(l) = &mut self.role else { return };
            base_len = l.base_len;
            let p = l.progress.entry(from).or_insert_with(|| Progress { next_send: l.base_len, ..Default::default() });
            if let Some(sent) = p.sent_at.get(&reply.forward_id).copied() {
                p.acked_send_at = p.acked_send_at.max(Some(sent));
            }
            let accepted = reply.accepted.clone().unwrap_or_default();
            // Until a follower adopts our ballot its `Accepted` speaks of
            // another committer's log: a seq it claims there may hold a
            // different record, dropped when it adopts.
            p.adopted = reply.committer == Some(ballot);
            if let Some((_, seqs)) = p.inflight.remove(&reply.forward_id) {
                let adopted = p.adopted;
                p.resend_later.extend(seqs.into_iter().filter(|&s| !(adopted && accepted.contains(s))));
            }
            p.committer = reply.committer;
            if let Some(missing) = reply.missing.as_ref().filter(|_| !p.adopted) {
                let lo = if missing.prefix_len() > 0 { 0 } else { missing.iter().next().unwrap_or(base_len) };
                let hi = base_len.min(lo + window);
                p.resend.extend((lo..hi).filter(|&s| missing.contains(s)));
            }
            p.accepted = accepted;
            l.member_applied.insert(from, reply.applied_prefix);
        }
        self.refresh_floor();
        self.leader_commit_scan();
        self.refresh_lease_acks();
        self.after_leader_progress();
    }

    fn refresh_floor(&mut self) {
        let Some(l) = self.leader_ref() else { return };
        let known = l.member_applied.clone();
        let floor = self.choose_floor(&known);
        let Some(l) = self.leader_mut() else { return };
        if floor > l.floor {
            l.floor = floor;
            for cover in l.key_cover.values_mut() {
                *cover = cover.split_off(&floor);
            }
            l.key_cover.retain(|_, c| !c.is_empty());
            l.config_cover = l.config_cover.split_off(&floor);
        }
    }

    /// Rule 7: a seq commits when adopters holding it (or an overriding
    /// record of this log) form a quorum; each seq on its own.
    fn leader_commit_scan(&mut self) {
        let Some(l) = self.leader_ref() else { return };
        let config = self.config();
        // This runs on every reply: work on position bits, not id lists.
        let voters: Vec<(u64, &TailBitmap)> = l
            .progress
            .iter()
            .filter(|(_, p)| p.adopted)
            .filter_map(|(id, p)| config.position_of(*id).map(|pos| (1u64 << pos, &p.accepted)))
            .chain(config.position_of(self.opts.id).map(|pos| (1u64 << pos, &l.self_durable)))
            .collect();
        let reach = voters.iter().map(|(_, a)| a.len()).max().unwrap_or(0);
        let mut newly = Vec::new();
        let in_order = self.opts.commit_order == CommitOrder::Prefix;
        for &s in l.uncommitted.range(..reach) {
            let bits = voters.iter().filter(|(_, a)| a.contains(s)).fold(0u64, |acc, (bit, _)| acc | bit);
            if config.is_quorum(bits) {
                newly.push(s);
            } else if in_order && !self.hard.committed().contains(s) {
                // Every seq below the first one short of a quorum is
                // committed or in `newly`: `uncommitted` holds every other.
                break;
            }
        }
        for s in newly {
            if let Some(l) = self.leader_mut() {
                l.uncommitted.remove(&s);
            }
            if self.log.contains_key(&s) {
                self.commit_held(s);
            } else {
                self.mark_committed(s);
            }
        }
    }

    fn after_leader_progress(&mut self) {
        self.apply_committed();
        self.check_reads();
        self.advance_change();
        self.advance_transfer();
    }

    // ---------------------------------------------------------- transfer

    pub(super) fn transferring(&self) -> bool {
        self.leader_ref().is_some_and(|l| l.transfer.is_some())
    }

    pub(super) fn start_transfer(&mut self, request: RequestId, to: Option<NodeId>) {
        let Some(l) = self.leader_ref() else {
            let err = self.not_leader_error();
            self.reply(request, ClientReply::Failed(err), 0);
            return;
        };
        let ballot = l.ballot;
        let refuse = |why: String| ClientReply::Failed(TraftError::TransferRefused(why));
        if l.transfer.is_some() {
            self.reply(request, refuse("a leadership transfer is already in progress".into()), 0);
            return;
        }
        if l.change.is_some() || self.config().next.is_some() || !self.config().learners.is_empty() {
            let why = "a configuration change is in progress; transfer once it has finished".to_string();
            self.reply(request, refuse(why), 0);
            return;
        }
        let reachable = |p: &Progress| p.adopted && p.acked_send_at.is_some_and(|t| t + self.opts.lease_ns >= self.now);
        let target = match to {
            Some(id) if id == self.opts.id => {
                self.reply(request, ClientReply::Transferred { to: id, from: ballot }, 0);
                return;
            }
            Some(id) if !self.config().members.contains_key(&id) => {
                let members = self.config().voters();
                self.reply(request, refuse(format!("node {id} is not a voting member (members: {members:?})")), 0);
                return;
            }
            Some(id) if !l.progress.get(&id).is_some_and(reachable) => {
                let why = format!("node {id} has not acknowledged this leader within a lease; is it running?");
                self.reply(request, refuse(why), 0);
                return;
            }
            Some(id) => id,
            None => {
                // The most caught up: the one whose log lacks the fewest of ours.
                let best = l
                    .progress
                    .iter()
                    .filter(|&(id, p)| *id != self.opts.id && self.config().members.contains_key(id) && reachable(p))
                    .min_by_key(|&(id, p)| ((&self.accepted - &p.accepted).count_ones(), *id));
                match best {
                    Some((&id, _)) => id,
                    None => {
                        self.reply(request, refuse("no other voting member is reachable".into()), 0);
                        return;
                    }
                }
            }
        };
        let deadline = self.now + self.opts.lease_ns;
        if let Some(l) = self.leader_mut() {
            l.transfer = Some(Transfer { target, request, deadline });
        }
        self.advance_transfer();
    }

    /// Hands over once the target holds every record this leader accepted
    /// and every proposal has its answer; gives up at the deadline.
    fn advance_transfer(&mut self) {
        let Some(l) = self.leader_ref() else { return };
        let Some(t) = &l.transfer else { return };
        let (target, request, ballot) = (t.target, t.request, l.ballot);
        let caught_up = l.progress.get(&target).is_some_and(|p| p.adopted && self.accepted.is_subset(&p.accepted))
            && l.proposals.is_empty();
        if !caught_up {
            if self.now >= t.deadline {
                let why = format!(
                    "node {target} did not catch up within {} ms; proposals resume here",
                    self.opts.lease_ns / 1_000_000
                );
                if let Some(l) = self.leader_mut() {
                    l.transfer = None;
                }
                self.reply(request, ClientReply::Failed(TraftError::TransferRefused(why)), 0);
                self.drain_queue();
            }
            return;
        }
        let forward = LogForwardReq {
            committer: Some(ballot),
            committed: Some(self.hard.committed().clone()),
            base_len: l.base_len,
            forward_id: l.next_forward_id,
            snapshot_prefix: self.compacted_below.max(l.floor),
            campaign_now: true,
            ..Default::default()
        };
        let after = l.hard_persist_id;
        if let Some(l) = self.leader_mut() {
            l.next_forward_id += 1;
            l.transfer = None;
        }
        // Stop serving before the target can ask for votes: from here on
        // this replica answers no read and takes no proposal as leader `ballot`,
        // which is what lets the target's voters set our lease aside.
        self.reply(request, ClientReply::Transferred { to: target, from: ballot }, 0);
        self.step_down();
        self.send(target, Message::Forward(forward), after);
        self.stats.transfers += 1;
    }

    pub(super) fn leader_persisted(&mut self, persist_id: u64) {
        let Some(l) = self.leader_mut() else { return };
        let done: Vec<u64> = l.pending_self.range(..=persist_id).map(|(id, _)| *id).collect();
        if done.is_empty() {
            return;
        }
        for id in done {
            let seqs = l.pending_self.remove(&id).unwrap_or_default();
            if id == l.hard_persist_id {
                // The base became durable with the adoption of our own ballot.
                let base = TailBitmap::from_prefix(l.base_len);
                l.self_durable.union(&base);
            }
            for s in seqs {
                l.self_durable.set(s);
            }
        }
        self.leader_commit_scan();
        self.after_leader_progress();
    }

    /// What `leader_tick` does for a forward whose retransmit time passed,
    /// done at once because the transport says it is gone.
    pub(super) fn leader_forward_lost(&mut self, peer: NodeId, forward_id: Option<u64>) {
        let Some(l) = self.leader_mut() else { return };
        let Some(p) = l.progress.get_mut(&peer) else { return };
        let lost: Vec<u64> = match forward_id {
            Some(id) => vec![id],
            None => p.inflight.keys().copied().collect(),
        };
        for id in lost {
            if let Some((_, seqs)) = p.inflight.remove(&id) {
                p.resend.extend(seqs.into_iter().filter(|&s| !(p.adopted && p.accepted.contains(s))));
            }
        }
    }

    pub(super) fn leader_tick(&mut self) {
        let now = self.now;
        let (retransmit, heartbeat, stale) =
            (self.opts.retransmit_ns, self.opts.heartbeat_ns, self.opts.leader_stale_ns);
        let Some(l) = self.leader_mut() else { return };
        for p in l.progress.values_mut() {
            let expired: Vec<u64> =
                p.inflight.iter().filter(|(_, (t, _))| now >= t + retransmit).map(|(id, _)| *id).collect();
            for id in expired {
                if let Some((_, seqs)) = p.inflight.remove(&id) {
                    p.resend.extend(seqs.into_iter().filter(|&s| !(p.adopted && p.accepted.contains(s))));
                }
            }
            if p.last_sent_at.is_none_or(|t| now >= t + heartbeat) {
                let later = std::mem::take(&mut p.resend_later);
                p.resend.extend(later);
            }
        }
        // The leader acknowledges itself continuously, not only when it
        // sends: in a one-member configuration nothing is ever sent, and its
        // lease (and the stale check) must still hold while it runs.
        l.self_ack_at = now;
        self.vote_lease_until = now + self.opts.lease_ns;
        self.lease_leader = self.leader_ballot();
        self.refresh_lease_acks();
        let Some(l) = self.leader_ref() else { return };
        if now >= l.last_quorum_ack_at + stale {
            self.step_down();
            return;
        }
        self.check_reads();
        self.advance_change();
        self.advance_transfer();
    }

    // --------------------------------------------------------- lease, reads

    /// The newest send time `t` such that members that acknowledged a
    /// forward sent at or after `t` form a quorum (the leader included).
    fn quorum_ack_time(&self) -> Option<Nanos> {
        let l = self.leader_ref()?;
        let mut acks: Vec<(Nanos, NodeId)> =
            l.progress.iter().filter_map(|(id, p)| p.acked_send_at.map(|t| (t, *id))).collect();
        acks.push((l.self_ack_at, self.opts.id));
        acks.sort_unstable_by(|a, b| b.cmp(a));
        let config = self.config();
        let mut ids = Vec::new();
        for (t, id) in acks {
            ids.push(id);
            if config.is_quorum_of_ids(ids.iter().copied()) {
                return Some(t);
            }
        }
        None
    }

    fn refresh_lease_acks(&mut self) {
        if let Some(t) = self.quorum_ack_time()
            && let Some(l) = self.leader_mut()
        {
            l.last_quorum_ack_at = l.last_quorum_ack_at.max(t);
        }
    }

    /// The leader's view of every other member; empty on a non-leader.
    pub fn peer_progress(&self) -> Vec<PeerProgress> {
        let Some(l) = self.leader_ref() else { return Vec::new() };
        let committed = self.hard.committed().len();
        l.progress
            .iter()
            .map(|(&id, p)| {
                let applied_prefix = l.member_applied.get(&id).copied().unwrap_or(0);
                PeerProgress {
                    id,
                    committer: p.committer,
                    accepted: p.accepted.clone(),
                    applied_prefix,
                    lag: (committed - applied_prefix).max(0),
                    reachable: p.acked_send_at.is_some_and(|t| t + self.opts.lease_ns >= self.now),
                }
            })
            .collect()
    }

    /// Rule 2: `t_send + D * (1 - e)`, on this replica's clock.
    pub fn lease_end(&self) -> Option<Nanos> {
        let t = self.quorum_ack_time()?;
        let d = self.opts.lease_ns;
        let shrink = (d as u128 * self.opts.clock_error_ppm as u128 / 1_000_000) as u64;
        let end = t + d - shrink;
        (end > self.now).then_some(end)
    }

    pub(super) fn leader_read(&mut self, request: RequestId, key: &str) {
        let Some(l) = self.leader_ref() else {
            let err = self.not_leader_error();
            self.reply(request, ClientReply::Failed(err), 0);
            return;
        };
        let floor = l.floor;
        let relevant = l.key_cover.get(key).into_iter().flatten().chain(l.config_cover.iter()).copied();
        let mut required = floor_bitmap(floor, relevant);
        required.intersection(self.hard.committed());
        let lease_valid = self.lease_end().is_some();
        let now = self.now;
        let l = self.leader_mut().expect("checked above");
        l.reads.push(PendingRead { request, key: key.to_string(), arrival: now, required });
        if !lease_valid {
            // Read index: a quorum must acknowledge a forward sent from now on.
            l.force_heartbeat = true;
        }
        self.check_reads();
    }

    fn check_reads(&mut self) {
        let Some(l) = self.leader_ref() else { return };
        if l.reads.is_empty() {
            return;
        }
        // Rule 11 (i): reads wait until the base is committed under us.
        if self.hard.committed().prefix_len() < l.base_len {
            return;
        }
        let lease_valid = self.lease_end().is_some();
        let ack = self.quorum_ack_time();
        let reads = self.leader_mut().map(|l| std::mem::take(&mut l.reads)).unwrap_or_default();
        let (ready, waiting): (Vec<PendingRead>, Vec<PendingRead>) = reads.into_iter().partition(|r| {
            (lease_valid || ack.is_some_and(|t| t >= r.arrival)) && self.applied.is_superset(&r.required)
        });
        if let Some(l) = self.leader_mut() {
            l.reads = waiting;
        }
        for read in ready {
            let value = self.kv.get(&read.key).cloned();
            self.reply(read.request, ClientReply::Read { value }, 0);
        }
    }
}
