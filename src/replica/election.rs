//! Elections (rules 1-3): votes for any greater ballot, leases, and the new
//! leader's merge of the max-committer logs into its base `B_L`.

use std::collections::BTreeMap;

use super::*;
use crate::pb::{VoteRefusal, VoteReply, VoteReq};

pub(super) struct Candidacy {
    pub ballot: LeaderId,
    /// Granting replies by voter id (rule 1: only explicit grants count).
    pub granted: BTreeMap<NodeId, VoteReply>,
    pub refused: BTreeSet<NodeId>,
    pub started_at: Nanos,
    pub last_sent_at: Nanos,
    /// The leader that handed over to us, named in every vote request.
    pub transfer_from: Option<LeaderId>,
}

/// `CmpLogStatus`: by committer, then by how far the accepted log reaches.
fn cmp_log_status(
    a_committer: Option<LeaderId>,
    a_len: Seq,
    b_committer: Option<LeaderId>,
    b_len: Seq,
) -> std::cmp::Ordering {
    (a_committer, a_len).cmp(&(b_committer, b_len))
}

impl Replica {
    pub(super) fn may_campaign(&self) -> bool {
        self.now >= self.quiet_until && self.is_member(self.opts.id) && self.pull.is_none()
    }

    /// `transfer_from`: the leader that handed leadership to us
    /// (`CampaignNow`), whose lease its voters may set aside.
    pub(super) fn campaign(&mut self, transfer_from: Option<LeaderId>) {
        let term = self.max_term_seen.max(self.hard.voted_for().map_or(0, |v| v.term)) + 1;
        let ballot = LeaderId::new(term, self.opts.id);
        self.max_term_seen = term;
        self.hard.raise_vote(ballot);
        self.stats.elections_started += 1;
        self.role = RoleState::Candidate(Candidacy {
            ballot,
            granted: BTreeMap::new(),
            refused: BTreeSet::new(),
            started_at: self.now,
            last_sent_at: self.now,
            transfer_from,
        });
        self.event(Event::VoteStart { candidate: ballot });
        self.send_vote_requests(None);
        // A single-member cluster elects itself.
        self.check_elected();
    }

    fn vote_request(&self, ballot: LeaderId, transfer_from: Option<LeaderId>) -> VoteReq {
        VoteReq {
            candidate: Some(ballot),
            committer: self.hard.committer(),
            accepted: Some(self.accepted.clone()),
            transfer_from,
        }
    }

    /// Sends to every member of the newest known config that has not answered
    /// (or to `only` those). Our own vote must be durable first (rule 10).
    fn send_vote_requests(&mut self, only: Option<&[NodeId]>) {
        let RoleState::Candidate(c) = &self.role else { return };
        let (ballot, transfer_from) = (c.ballot, c.transfer_from);
        let answered: BTreeSet<NodeId> = c.granted.keys().chain(c.refused.iter()).copied().collect();
        let targets: Vec<NodeId> = match only {
            Some(ids) => ids.to_vec(),
            None => self.candidate_config_members(),
        };
        let req = self.vote_request(ballot, transfer_from);
        for to in targets {
            if to != self.opts.id && !answered.contains(&to) {
                self.send_durable(to, Message::Vote(req.clone()));
            }
        }
    }

    /// Everyone whose vote `check_elected` may need: members of our own
    /// config and of the newest config in the log merged so far (rule 9:
    /// the votes must be a quorum of both).
    fn candidate_config_members(&self) -> Vec<NodeId> {
        let own = self.config().members.keys();
        let merged = self.candidate_config();
        let ids: BTreeSet<NodeId> = own.chain(merged.members.keys()).copied().collect();
        ids.into_iter().collect()
    }

    fn candidate_config(&self) -> ClusterConfig {
        let RoleState::Candidate(c) = &self.role else { return self.config().clone() };
        let own = self.newest_config_record().map_or(-1, |r| r.seq);
        let mut newest: Option<&Record> = None;
        for reply in c.granted.values().filter(|r| r.committer == self.hard.committer()) {
            for rec in &reply.logs {
                if rec.cmd.as_ref().is_some_and(|cmd| cmd.is_config())
                    && rec.seq > own
                    && newest.is_none_or(|n| rec.seq > n.seq)
                {
                    newest = Some(rec);
                }
            }
        }
        newest
            .and_then(|r| r.cmd.as_ref())
            .and_then(|cmd| cmd.config_value())
            .cloned()
            .unwrap_or_else(|| self.config().clone())
    }

    pub(super) fn candidate_tick(&mut self) {
        let RoleState::Candidate(c) = &self.role else { return };
        let (started, last_sent, ballot) = (c.started_at, c.last_sent_at, c.ballot);
        if self.now >= started + self.opts.lease_ns {
            let reason = TraftError::Timeout {
                what: format!("votes for {ballot}"),
                elapsed_ms: (self.now - started) / 1_000_000,
            };
            self.fail_candidacy(reason, 0);
        } else if self.now >= last_sent + self.opts.retransmit_ns {
            if let RoleState::Candidate(c) = &mut self.role {
                c.last_sent_at = self.now;
            }
            self.send_vote_requests(None);
        }
    }

    fn fail_candidacy(&mut self, reason: TraftError, extra_backoff: Nanos) {
        let RoleState::Candidate(c) = &self.role else { return };
        let candidate = c.ballot;
        self.role = RoleState::Follower;
        self.next_campaign_at = self.now + self.opts.retransmit_ns + extra_backoff + self.jitter();
        self.event(Event::VoteFail { candidate, reason });
    }

    // ---------------------------------------------------------------- voter

    pub(super) fn handle_vote(&mut self, from: NodeId, req: VoteReq) {
        let Some(candidate) = req.candidate else { return };
        self.observe_term(Some(candidate));
        let cand_len = req.accepted.as_ref().map_or(0, |a| a.len());
        let refusal = if self.now < self.quiet_until {
            Some(VoteRefusal::Restarting)
        } else if Some(candidate) < self.hard.voted_for() {
            Some(VoteRefusal::StaleTerm)
        } else if self.was_removed(candidate.id) {
            // A removed member that missed its removal must not lead the
            // cluster it left; refusing costs nothing, no quorum needs it.
            Some(VoteRefusal::Removed)
        } else if self.now < self.vote_lease_until
            && self.lease_leader != Some(candidate)
            && !(req.transfer_from.is_some() && req.transfer_from == self.lease_leader)
        {
            // The exception: the lease holder itself handed over to this
            // candidate, having stopped serving first (rule 2 protects only
            // its reads).
            Some(VoteRefusal::Lease)
        } else if cmp_log_status(req.committer, cand_len, self.hard.committer(), self.accepted.len()).is_lt() {
            Some(VoteRefusal::StaleLog)
        } else {
            None
        };
        let mut reply = VoteReply {
            id: self.opts.id,
            committer: self.hard.committer(),
            accepted: Some(self.accepted.clone()),
            committed: Some(self.hard.committed().clone()),
            applied_prefix: self.replayable_applied_prefix(),
            compacted_prefix: self.compacted_below,
            ..Default::default()
        };
        match refusal {
            Some(why) => {
                reply.refusal = why as i32;
                reply.voted_for = self.hard.voted_for();
                // A refusal promises nothing, so it need not wait for a write.
                self.send(from, Message::VoteReply(reply), 0);
            }
            None => {
                self.hard.raise_vote(candidate);
                if self.leader_ballot().is_some_and(|l| l != candidate)
                    || matches!(self.role, RoleState::Candidate(ref c) if c.ballot != candidate)
                {
                    self.become_follower();
                }
                // A candidate merges only replies with its own committer
                // (rule 3), so only those carry records.
                // Every record that backs a seq the candidate lacks: a record
                // whose own seq it has may still be what backs another seq
                // (an explicit override) here.
                if req.committer == self.hard.committer() {
                    let theirs = req.accepted.unwrap_or_default();
                    reply.logs =
                        self.log.values().filter(|r| r.vouched().any(|s| !theirs.contains(s))).cloned().collect();
                }
                reply.granted = true;
                reply.voted_for = self.hard.voted_for();
                self.next_campaign_at = self.now.max(self.next_campaign_at) + self.opts.retransmit_ns;
                self.send_durable(from, Message::VoteReply(reply));
            }
        }
    }

    // ------------------------------------------------------------ candidate

    pub(super) fn handle_vote_reply(&mut self, from: NodeId, reply: VoteReply) {
        self.observe_term(reply.voted_for);
        self.observe_term(reply.committer);
        let RoleState::Candidate(c) = &mut self.role else { return };
        let ballot = c.ballot;
        if reply.granted {
            if reply.voted_for != Some(ballot) {
                return; // a grant for an earlier candidacy of ours
            }
            c.granted.insert(from, reply);
            // The merged log may hold a newer config with new members to ask.
            self.send_vote_requests(None);
            self.check_elected();
            return;
        }
        c.refused.insert(from);
        match VoteRefusal::try_from(reply.refusal).unwrap_or(VoteRefusal::None) {
            VoteRefusal::StaleTerm if reply.voted_for > Some(ballot) => {
                let seen = reply.voted_for.unwrap_or_default();
                self.fail_candidacy(TraftError::StaleTermId { mine: ballot, seen }, 0);
            }
            VoteRefusal::StaleLog => {
                // Let the replica with the better log win: wait a lease.
                let detail = format!("committer {}", crate::leader_id::short_opt(&reply.committer));
                self.fail_candidacy(TraftError::StaleLog { voter: from, detail }, self.opts.lease_ns / 2);
            }
            _ => self.check_quorum_still_possible(),
        }
    }

    fn check_quorum_still_possible(&mut self) {
        let RoleState::Candidate(c) = &self.role else { return };
        let config = self.candidate_config();
        let refused: BTreeSet<NodeId> = c.refused.clone();
        let possible: Vec<NodeId> = config.members.keys().copied().filter(|id| !refused.contains(id)).collect();
        if !config.is_quorum_of_ids(possible) {
            let ballot = c.ballot;
            let reason = TraftError::Timeout { what: format!("a quorum of votes for {ballot}"), elapsed_ms: 0 };
            self.fail_candidacy(reason, 0);
        }
    }

    fn check_elected(&mut self) {
        let RoleState::Candidate(c) = &self.role else { return };
        let mut voters: Vec<NodeId> = c.granted.keys().copied().collect();
        voters.push(self.opts.id);
        // Rule 9: the votes must be a quorum of the newest config in the
        // merged log, which is what candidate_config() reads.
        if self.candidate_config().is_quorum_of_ids(voters.iter().copied()) && self.config().is_quorum_of_ids(voters) {
            // Rule 3: a chosen voter covers some seqs we lack only by its
            // snapshot; install that first and campaign again.
            let needs = c
                .granted
                .iter()
                .filter(|(_, r)| r.committer == self.hard.committer() && self.lacks_below(r.compacted_prefix))
                .map(|(&id, r)| (id, r.compacted_prefix))
                .max_by_key(|&(_, p)| p);
            if let Some((voter, prefix)) = needs {
                let reason = TraftError::Rejected(format!(
                    "the candidate lacks records below seq {prefix} that member {voter} holds only in its snapshot"
                ));
                self.fail_candidacy(reason, 0);
                self.start_pull(voter, prefix);
                return;
            }
            self.become_leader();
        }
    }

    /// Rule 3: merge the max-committer replies, fill holes with no-ops, and
    /// adopt the result as `B_L` in one durable step.
    fn become_leader(&mut self) {
        let RoleState::Candidate(c) = std::mem::replace(&mut self.role, RoleState::Follower) else { return };
        let ballot = c.ballot;
        // Granting voters never have a greater committer than ours (their
        // log status is not ahead), so M is our own committer.
        let m = self.hard.committer();
        let mut merged = self.accepted.clone();
        let mut voter_applied: BTreeMap<NodeId, Seq> = BTreeMap::new();
        for (id, reply) in &c.granted {
            voter_applied.insert(*id, reply.applied_prefix);
            if reply.committer != m {
                continue;
            }
            if let Some(a) = &reply.accepted {
                merged.union(a);
            }
        }
        let chosen: Vec<&VoteReply> = c.granted.values().filter(|r| r.committer == m).collect();
        for reply in chosen {
            for rec in &reply.logs {
                match self.log.get(&rec.seq) {
                    Some(mine) => assert!(
                        mine.same_identity(rec),
                        "rule 3: two max-committer replicas disagree at seq {}: {} vs {}",
                        rec.seq,
                        mine.short(),
                        rec.short()
                    ),
                    None => self.hold_record(rec.clone()),
                }
            }
        }
        let base_len = merged.len();
        let floor = self.choose_floor(&voter_applied);
        let holes: Vec<Seq> = (merged.prefix_len()..base_len).filter(|&s| !merged.contains(s)).collect();
        for seq in holes {
            // Built with the floor explicit: a compacted {0..=seq} would claim
            // a floor above the no-op's own seq, which no follower can accept.
            let overrides = super::leader::floor_bitmap(floor, [seq]);
            let depends = super::leader::floor_bitmap(floor, []);
            self.hold_record(Record::new(ballot, seq, Cmd::noop(), depends, overrides));
        }
        self.hard.adopt(ballot, base_len);
        self.known_leader = Some(ballot);
        self.adoption = None;
        self.recompute_accepted();
        // A leader whose log does not back its whole base would count and
        // serve seqs it cannot send or apply: an acknowledged write would be
        // lost. Stop loudly, in release builds too.
        if let Some(gap) = self.accepted.missing_below(base_len).next() {
            panic!(
                "replica {}: rule 3/4 broken: leader {ballot}'s log does not back seq {gap} of its base [0, {base_len})",
                self.opts.id
            );
        }
        self.stats.elections_won += 1;
        self.event(Event::VoteWin { leader: ballot, base_len });
        self.event(Event::LeaderChange { leader: ballot });
        self.start_leading(ballot, base_len, voter_applied);
    }
}
