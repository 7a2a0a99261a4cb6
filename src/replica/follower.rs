//! Following a leader (rules 4, 5, 7): accepting forwards, adopting a new
//! leader's base all or nothing, and taking commits only from the committer.

use std::collections::BTreeMap;

use super::*;
use crate::pb::{BaseRun, LogForwardReply, LogForwardReq};

/// A new leader's base while this replica collects what it needs to adopt
/// it. Nothing here is in the log until adoption succeeds (rule 4).
pub(super) struct Adoption {
    pub leader: LeaderId,
    pub base_len: Seq,
    pub runs: Vec<BaseRun>,
    /// Base records received (seq < base_len).
    pub base: BTreeMap<Seq, Record>,
    /// Records of the leader's reign that arrived before adoption.
    pub reign: BTreeMap<Seq, Record>,
}

impl Adoption {
    /// The author of `B_L`'s record at `seq`; `None` where the base holds no
    /// record (the seq is covered through an override) or runs are unknown.
    fn author_at(&self, seq: Seq) -> Option<LeaderId> {
        let i = self.runs.partition_point(|r| r.end <= seq);
        self.runs.get(i).filter(|r| r.start <= seq).and_then(|r| r.author)
    }
}

impl Replica {
    pub(super) fn handle_forward(&mut self, from: NodeId, req: LogForwardReq) {
        let Some(leader) = req.committer else { return };
        self.observe_term(Some(leader));
        if Some(leader) < self.hard.voted_for() {
            // Rule 1: never follow a ballot below the one we promised.
            let reply = LogForwardReply {
                ok: false,
                voted_for: self.hard.voted_for(),
                committer: self.hard.committer(),
                forward_id: req.forward_id,
                ..Default::default()
            };
            self.send(from, Message::ForwardReply(reply), 0);
            // A hand-over to us after we had already campaigned (refused for
            // the lease): the leader has stopped serving all the same.
            self.campaign_on_hand_over(leader, req.campaign_now);
            return;
        }
        if self.leader_ballot() == Some(leader) {
            // Our own forward, echoed by a misbehaving network or forged.
            // Answered all the same: the runtime waits for one reply per
            // forward it was handed.
            let reply = LogForwardReply {
                ok: false,
                voted_for: self.hard.voted_for(),
                committer: self.hard.committer(),
                forward_id: req.forward_id,
                ..Default::default()
            };
            self.send(from, Message::ForwardReply(reply), 0);
            return;
        }
        if !matches!(self.role, RoleState::Follower) {
            self.become_follower();
        }
        self.hard.raise_vote(leader);
        if self.known_leader != Some(leader) {
            self.known_leader = Some(leader);
            self.event(Event::LeaderChange { leader });
        }
        // Rule 2: this acknowledgement pins our vote to `leader` for D.
        self.vote_lease_until = self.now + self.opts.lease_ns;
        self.lease_leader = Some(leader);
        self.next_campaign_at = self.vote_lease_until + self.jitter();

        let leader_committed = req.committed.clone().unwrap_or_default();
        let snapshot_prefix = req.snapshot_prefix;
        let campaign_now = req.campaign_now;
        let mut missing = None;
        if self.hard.committer() == Some(leader) {
            for rec in req.logs {
                self.accept_record(rec);
            }
        } else {
            missing = self.adopt(leader, req.base_len, req.base_runs, req.logs);
        }
        if self.hard.committer() == Some(leader) {
            self.take_commits(&leader_committed);
        }
        self.apply_committed();
        // Rules 5, 6: records below the leader's snapshot boundary may be
        // gone from its log, or too far below its floor for us to accept
        // what it sends now: only its snapshot brings us past them. While
        // adopting, what the leader still has to send is `missing`.
        let behind = match &missing {
            Some(m) => m.iter_from(0).next().is_some_and(|s| s < snapshot_prefix),
            None => self.lacks_below(snapshot_prefix),
        };
        if behind {
            self.start_pull(from, snapshot_prefix);
        }
        let reply = LogForwardReply {
            ok: true,
            voted_for: self.hard.voted_for(),
            accepted: Some(self.accepted.clone()),
            committed: Some(self.hard.committed().clone()),
            committer: self.hard.committer(),
            missing,
            applied_prefix: self.replayable_applied_prefix(),
            need_snapshot: self.pull.is_some(),
            forward_id: req.forward_id,
        };
        self.send_durable(from, Message::ForwardReply(reply));
        self.campaign_on_hand_over(leader, campaign_now);
    }

    /// Leadership transfer: `leader` stopped serving before asking. Only its
    /// own adopter campaigns, so the log it brings is the leader's.
    fn campaign_on_hand_over(&mut self, leader: LeaderId, campaign_now: bool) {
        if campaign_now
            && self.hard.committer() == Some(leader)
            && matches!(self.role, RoleState::Follower)
            && self.may_campaign()
        {
            self.campaign(Some(leader));
        }
    }

    /// Takes a record of our committer's log. A record whose `Overrides`
    /// floor is above our accepted prefix is refused for now: its all-ones
    /// prefix would claim records we do not vouch for (rules 5, 6). The
    /// leader sends it again once the records below have arrived.
    fn accept_record(&mut self, rec: Record) -> bool {
        if let Some(held) = self.log.get(&rec.seq) {
            // Rule 4: one committer, one record per seq. The boundary
            // refuses a forward that contradicts the log; a record staged
            // during adoption can still (a forged forward from a higher
            // ballot), and the held record, committed, is the one to keep.
            return held.same_identity(&rec);
        }
        if rec.overrides_bm().offset > self.accepted.prefix_len() {
            return false;
        }
        self.hold_record(rec);
        true
    }

    /// Rule 7: commit bits from the committer only, and a seq only through a
    /// held record that is itself committed.
    fn take_commits(&mut self, leader_committed: &TailBitmap) {
        let newly: Vec<Seq> = self.uncommitted_held.iter().copied().filter(|&s| leader_committed.contains(s)).collect();
        for seq in newly {
            self.commit_held(seq);
        }
    }

    /// Rule 4: adopt `leader` in one durable step once the result covers its
    /// base; until then change nothing and report what is missing.
    fn adopt(
        &mut self,
        leader: LeaderId,
        base_len: Seq,
        runs: Vec<BaseRun>,
        records: Vec<Record>,
    ) -> Option<TailBitmap> {
        match &self.adoption {
            Some(a) if a.leader > leader => return None, // a stale leader's forward
            // A leader's base is fixed for its reign, so a staged one of
            // another length was not this leader's: a forged forward in
            // its name, sent before it was elected. Start over with this
            // one, or the real base is never adopted.
            Some(a) if a.leader == leader && a.base_len == base_len => {}
            _ => {
                self.adoption =
                    Some(Adoption { leader, base_len, runs: Vec::new(), base: BTreeMap::new(), reign: BTreeMap::new() })
            }
        }
        let adoption = self.adoption.as_mut().expect("set above");
        if !runs.is_empty() {
            adoption.runs = runs;
        }
        for rec in records {
            if rec.seq < adoption.base_len {
                adoption.base.insert(rec.seq, rec);
            } else {
                adoption.reign.insert(rec.seq, rec);
            }
        }
        if adoption.runs.is_empty() && adoption.base_len > 0 {
            // Without the base's authors we cannot tell which records to keep.
            return Some(TailBitmap::from_prefix(adoption.base_len));
        }

        // The log after adoption: committed records, records identical to
        // the base's, and the base records received.
        let kept: BTreeSet<Seq> = self
            .log
            .values()
            .filter(|r| self.hard.committed().contains(r.seq) || adoption.author_at(r.seq) == r.author)
            .map(|r| r.seq)
            .collect();
        // Only what the kept records vouch for explicitly (rule 5): a kept
        // record's floor prefix may rest on records this adoption drops.
        let mut covered = self.applied.clone();
        for seq in &kept {
            vouch(&mut covered, &self.log[seq]);
        }
        // A staged base record replaces whatever we hold at its seq unless we
        // keep that (it is then the same record, or committed). Like any
        // accepted record, it needs what lies below its floor vouched for
        // first, so install in rounds until nothing more qualifies.
        let mut waiting: Vec<&Record> = adoption.base.values().filter(|r| !kept.contains(&r.seq)).collect();
        let mut installable: Vec<Seq> = Vec::new();
        loop {
            let before = installable.len();
            waiting.retain(|r| {
                if r.overrides_bm().offset > covered.prefix_len() {
                    return true;
                }
                vouch(&mut covered, r);
                installable.push(r.seq);
                false
            });
            if installable.len() == before {
                break;
            }
        }
        // The base is a prefix, so the first seq not covered decides; the
        // cost must not grow with how far the base reaches past our log.
        let first = covered.prefix_len();
        if first < adoption.base_len {
            // The leader resends one window at a time; reporting more would
            // let this bitmap grow with the base.
            let mut missing = TailBitmap::from_prefix(adoption.base_len.min(first.saturating_add(self.opts.window)));
            missing.diff(&covered);
            return Some(missing);
        }

        let adoption = self.adoption.take().expect("present");
        let drop: Vec<Seq> = self.log.keys().copied().filter(|s| !kept.contains(s)).collect();
        for seq in drop {
            self.drop_record(seq);
        }
        let mut adoption = adoption;
        for seq in installable {
            if let Some(rec) = adoption.base.remove(&seq) {
                self.hold_record(rec);
            }
        }
        self.hard.adopt(leader, adoption.base_len);
        self.recompute_accepted();
        for (_, rec) in std::mem::take(&mut adoption.reign) {
            self.accept_record(rec);
        }
        None
    }
}
