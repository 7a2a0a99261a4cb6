//! Membership changes (rule 9): learners first, then a joint configuration
//! whose quorums need a quorum of both the old and the new one, then the new
//! one. One change at a time; a leader elected mid-change finishes it.

use super::*;

pub const STAGE_LEARNERS: &str = "learners";
pub const STAGE_JOINT: &str = "joint";
pub const STAGE_FINAL: &str = "final";

/// A learner is promoted once it has applied everything but this many seqs
/// of what the leader has committed.
pub const CATCH_UP_BOUND: i64 = 64;

/// How many leases a new member may stay silent before the change that adds
/// it is abandoned (a wrong address, or a node never started).
pub const LEARNER_PATIENCE_LEASES: u64 = 10;

#[derive(Debug, Clone)]
pub(super) enum Stage {
    /// New members receive the log as learners (config record at `seq`).
    Learners { seq: Seq },
    /// The joint configuration is in force (record at `seq`).
    Joint { seq: Seq },
    /// The target is in force; done once its record at `seq` commits.
    Final { seq: Seq },
}

#[derive(Debug, Clone)]
pub(super) struct Change {
    /// Who to answer; `None` for a change inherited from an earlier leader.
    pub request: Option<RequestId>,
    pub target: ClusterConfig,
    pub force: bool,
    pub stage: Stage,
    /// When the current stage began, to give up on learners that never answer.
    pub since: Nanos,
    /// This is the way back of an aborted change (`target` is the old
    /// configuration), not a change an operator asked for.
    pub aborting: bool,
}

/// The joint and final configurations a change from `current` to `target`
/// goes through, as `traftctl config --dry-run` shows them.
pub fn plan_change(
    current: &ClusterConfig,
    target: &ClusterConfig,
) -> Result<(ClusterConfig, ClusterConfig), TraftError> {
    if target.next.is_some() || !target.learners.is_empty() {
        return Err(TraftError::Rejected("the target configuration must list voters and quorums only".into()));
    }
    target.validate().map_err(|e| TraftError::Rejected(format!("the new configuration is invalid: {e}")))?;
    let mut old = current.clone();
    old.learners.clear();
    old.next = None;
    let mut joint = ClusterConfig::joint(&old, target).map_err(|e| TraftError::Rejected(e.to_string()))?;
    joint.next = Some(Box::new(target.clone()));
    Ok((joint, target.clone()))
}

impl Replica {
    /// Starts moving the cluster to `target`. Answered with `Proposed` once
    /// the final record commits, or an error saying why not.
    pub fn change_config(&mut self, now: Nanos, request: RequestId, target: ClusterConfig, force: bool) {
        self.now = now;
        if let Err(err) = self.begin_change(request, target, force) {
            self.reply(request, ClientReply::Failed(err), 0);
        }
        self.advance_change();
    }

    fn begin_change(&mut self, request: RequestId, target: ClusterConfig, force: bool) -> Result<(), TraftError> {
        if self.leader_ref().is_none() {
            return Err(self.not_leader_error());
        }
        // A deposed leader that has not noticed yet would judge the change
        // against a stale configuration (and might call it done already).
        if self.lease_end().is_none() {
            return Err(TraftError::NoLeader);
        }
        let Some(l) = self.leader_ref() else { return Err(self.not_leader_error()) };
        if self.transferring() {
            return Err(TraftError::Transferring);
        }
        if l.change.is_some() || self.config().next.is_some() || self.config_uncommitted() {
            return Err(TraftError::ChangeInProgress);
        }
        let current = self.config().clone();
        plan_change(&current, &target)?;
        if current.members == target.members && current.quorums == target.quorums && current.learners.is_empty() {
            return Err(TraftError::Rejected("the cluster already has this configuration".into()));
        }
        if !force {
            self.check_reachable(&current, "current")?;
            // Without newcomers the new configuration is made of members
            // the leader already hears from (or not): check it now, before
            // a joint configuration nobody can commit is in force.
            if target.members.keys().all(|id| current.members.contains_key(id)) {
                self.check_reachable(&target, "new")?;
            }
        }
        let newcomers: BTreeMap<NodeId, crate::pb::ReplicaInfo> = target
            .members
            .iter()
            .filter(|(id, _)| !current.members.contains_key(id))
            .map(|(id, m)| (*id, m.clone()))
            .collect();
        let stage = if newcomers.is_empty() {
            let seq = self.append_joint(&current, &target);
            Stage::Joint { seq }
        } else {
            let mut with_learners = current.clone();
            with_learners.learners = newcomers;
            with_learners.next = Some(Box::new(target.clone()));
            let seq = self.append_config(with_learners, STAGE_LEARNERS);
            Stage::Learners { seq }
        };
        let since = self.now;
        if let Some(l) = self.leader_mut() {
            l.change = Some(Change { request: Some(request), target, force, stage, since, aborting: false });
        }
        Ok(())
    }

    /// Cancels the change in flight (`traftctl config abort`) by appending
    /// the configuration it started from. Answered with `Proposed` once that
    /// record commits, or an error saying why not: there is no change, or it
    /// is past the point where it may go back (docs/protocol.md,
    /// "Aborting a change").
    pub fn abort_change(&mut self, now: Nanos, request: RequestId) {
        self.now = now;
        if let Err(err) = self.begin_abort(request) {
            self.reply(request, ClientReply::Failed(err), 0);
        }
        self.advance_change();
    }

    fn begin_abort(&mut self, request: RequestId) -> Result<(), TraftError> {
        let Some(l) = self.leader_ref() else { return Err(self.not_leader_error()) };
        let ballot = l.ballot;
        let change = l.change.clone();
        // A deposed leader that has not noticed yet may not know that its
        // joint record committed elsewhere.
        if self.lease_end().is_none() {
            return Err(TraftError::NoLeader);
        }
        let Some(change) = change else {
            return Err(TraftError::Rejected("no configuration change is in flight; there is nothing to abort".into()));
        };
        let back_to = match change.stage {
            Stage::Final { .. } if change.aborting => {
                return Err(TraftError::Rejected(
                    "the change is already being aborted; the previous configuration is in force once its record \
                     commits"
                        .into(),
                ));
            }
            Stage::Final { seq } => {
                return Err(TraftError::Unsafe(format!(
                    "the change has passed its joint stage: the final configuration is appended (seq {seq}) and \
                     the change is finishing; to undo it, make the reverse change once it is done"
                )));
            }
            // Learners change no voter or quorum: going back is dropping them.
            Stage::Learners { seq } => self.config_before(seq + 1),
            Stage::Joint { seq } => {
                if self.hard.committed().contains(seq) {
                    return Err(TraftError::Unsafe(format!(
                        "the joint configuration (seq {seq}) is committed, so the change can only go forward: it \
                         finishes once a quorum of the joint configuration holds the log; to undo it, make the \
                         reverse change once it is done"
                    )));
                }
                // Only the leader that appended the joint record knows that
                // no final record follows it anywhere: an earlier leader's
                // may have committed and been followed by one.
                let ours = self.log.get(&seq).is_some_and(|r| r.author == Some(ballot));
                if !ours {
                    return Err(TraftError::Unsafe(format!(
                        "the joint configuration (seq {seq}) was appended by an earlier leader and may have \
                         committed, so the change can only go forward; it finishes once a quorum of the joint \
                         configuration holds the log"
                    )));
                }
                self.config_before(seq)
            }
        };
        let mut back_to = back_to;
        back_to.learners.clear();
        back_to.next = None;
        let seq = self.append_config(back_to.clone(), STAGE_FINAL);
        if let Some(asked) = change.request {
            self.reply(asked, ClientReply::Failed(TraftError::ChangeAborted), 0);
        }
        let since = self.now;
        if let Some(l) = self.leader_mut() {
            l.change = Some(Change {
                request: Some(request),
                target: back_to,
                force: false,
                stage: Stage::Final { seq },
                since,
                aborting: true,
            });
        }
        Ok(())
    }

    /// The configuration in force just below `seq`: the newest config
    /// record (held or installed) before it, else the initial one.
    fn config_before(&self, seq: Seq) -> ClusterConfig {
        let held = self.config_seqs.range(..seq).next_back().and_then(|s| self.log.get(s));
        let installed = self.snapshot_configs.range(..seq).next_back().map(|(_, r)| r);
        let newest = match (held, installed) {
            (Some(h), Some(i)) => Some(if i.seq > h.seq { i } else { h }),
            (h, i) => h.or(i),
        };
        newest.and_then(|r| r.cmd.as_ref()).and_then(|c| c.config_value()).unwrap_or(&self.initial_config).clone()
    }

    fn config_uncommitted(&self) -> bool {
        self.config_seqs.last().is_some_and(|s| !self.hard.committed().contains(*s))
    }

    /// Rule 9's pre-check: the members this leader heard from within a lease
    /// (itself included) must hold a quorum of `config`.
    fn check_reachable(&self, config: &ClusterConfig, which: &str) -> Result<(), TraftError> {
        let reachable: Vec<NodeId> =
            self.peer_progress().iter().filter(|p| p.reachable).map(|p| p.id).chain([self.opts.id]).collect();
        if config.is_quorum_of_ids(reachable.iter().copied()) {
            return Ok(());
        }
        let down: Vec<NodeId> = config.members.keys().copied().filter(|id| !reachable.contains(id)).collect();
        Err(TraftError::Unsafe(format!(
            "the {which} configuration {config} would have no quorum of reachable members: {down:?} did not answer within a lease; bring them back or force the change"
        )))
    }

    fn append_config(&mut self, config: ClusterConfig, stage: &str) -> Seq {
        self.append(Cmd::config_stage(config, stage))
    }

    fn append_joint(&mut self, current: &ClusterConfig, target: &ClusterConfig) -> Seq {
        let (joint, _) = plan_change(current, target).expect("validated when the change began");
        self.append_config(joint, STAGE_JOINT)
    }

    /// A new leader finishes a change the log says is in flight.
    pub(super) fn resume_change(&mut self) {
        let Some(rec) = self.newest_config_record() else { return };
        let seq = rec.seq;
        let Some(cmd) = rec.cmd.clone() else { return };
        let Some(config) = cmd.config_value() else { return };
        let stage = match cmd.key.as_str() {
            STAGE_LEARNERS => Stage::Learners { seq },
            STAGE_JOINT => Stage::Joint { seq },
            _ => return,
        };
        let Some(target) = config.next.as_deref().cloned() else { return };
        let since = self.now;
        if let Some(l) = self.leader_mut() {
            l.change = Some(Change { request: None, target, force: false, stage, since, aborting: false });
        }
    }

    /// Moves an in-flight change to its next stage when it may.
    pub(super) fn advance_change(&mut self) {
        for _ in 0..3 {
            let Some(change) = self.leader_ref().and_then(|l| l.change.clone()) else { return };
            let next = match change.stage {
                Stage::Learners { seq } => {
                    if let Some(silent) = self.silent_learner(change.since) {
                        let err = TraftError::Unsafe(format!(
                            "new member {silent} has not answered for {} leases; is it running at the address given? The change was abandoned",
                            LEARNER_PATIENCE_LEASES
                        ));
                        self.abandon_change(change, err);
                        return;
                    }
                    if !self.hard.committed().contains(seq) || !self.learners_caught_up() {
                        return;
                    }
                    if !change.force
                        && let Err(err) = self.check_reachable(&change.target, "new")
                    {
                        self.abandon_change(change, err);
                        return;
                    }
                    let mut current = self.config().clone();
                    current.learners.clear();
                    current.next = None;
                    Stage::Joint { seq: self.append_joint(&current, &change.target) }
                }
                Stage::Joint { seq } => {
                    // The exit record may take effect on a new member only
                    // once everything up to the joint record is held by a
                    // quorum of the joint configuration (rule 9).
                    if !self.joint_quorum_holds_prefix(seq + 1) {
                        return;
                    }
                    Stage::Final { seq: self.append_config(change.target.clone(), STAGE_FINAL) }
                }
                Stage::Final { seq } => {
                    if !self.hard.committed().contains(seq) {
                        return;
                    }
                    self.finish_change(change, seq);
                    return;
                }
            };
            let now = self.now;
            if let Some(l) = self.leader_mut() {
                l.change = Some(Change { stage: next, since: now, ..change });
            }
        }
    }

    /// A learner that has not acknowledged anything for this many leases
    /// since the stage began makes the leader give the change up.
    fn silent_learner(&self, since: Nanos) -> Option<NodeId> {
        if self.now < since + LEARNER_PATIENCE_LEASES * self.opts.lease_ns {
            return None;
        }
        let progress = self.peer_progress();
        self.config().learners.keys().copied().find(|id| !progress.iter().any(|p| p.id == *id && p.reachable))
    }

    fn learners_caught_up(&self) -> bool {
        let config = self.config();
        let target = self.hard.committed().prefix_len() - CATCH_UP_BOUND;
        let progress = self.peer_progress();
        config.learners.keys().all(|id| {
            progress.iter().any(|p| p.id == *id && p.committer == self.leader_ballot() && p.applied_prefix >= target)
        })
    }

    fn joint_quorum_holds_prefix(&self, end: Seq) -> bool {
        let Some(l) = self.leader_ref() else { return false };
        let mut ids: Vec<NodeId> = self
            .peer_progress()
            .iter()
            .filter(|p| p.committer == Some(l.ballot) && p.accepted.prefix_len() >= end)
            .map(|p| p.id)
            .collect();
        if self.self_durable_prefix() >= end {
            ids.push(self.opts.id);
        }
        self.config().is_quorum_of_ids(ids)
    }

    fn abandon_change(&mut self, change: Change, err: TraftError) {
        // Put the old configuration back without the learners.
        let mut current = self.config().clone();
        current.learners.clear();
        current.next = None;
        self.append_config(current, STAGE_FINAL);
        if let Some(l) = self.leader_mut() {
            l.change = None;
        }
        if let Some(request) = change.request {
            self.reply(request, ClientReply::Failed(err), 0);
        }
    }

    fn finish_change(&mut self, change: Change, seq: Seq) {
        let ballot = self.leader_ballot().expect("only a leader changes membership");
        if let Some(l) = self.leader_mut() {
            l.change = None;
        }
        if let Some(request) = change.request {
            self.reply(request, ClientReply::Proposed { seq, leader: ballot, result: crate::kv::ApplyResult::Done }, 0);
        }
        if !change.target.members.contains_key(&self.opts.id) {
            // Removed: the new configuration elects its own leader.
            self.become_follower();
        }
    }
}
