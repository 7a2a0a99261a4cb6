//! The liveness phase's goal: when the cluster counts as converged.

use super::*;

impl Sim {
    /// `Ok` when the cluster has converged; otherwise why not. With
    /// membership changes: every step completed, and only the members of the
    /// final configuration count (removed replicas are shut down or about to
    /// be; whatever they hold no longer matters).
    pub fn converged(&self) -> Result<(), String> {
        let outstanding = self.workload.outstanding();
        if outstanding > 0 {
            return Err(format!("{outstanding} client requests still outstanding"));
        }
        let final_config = match &self.driver {
            Some(d) if !d.done() => {
                // A learner that cannot apply never catches up: say so.
                let stuck: Vec<String> = self
                    .nodes
                    .iter()
                    .filter_map(|n| n.replica.as_ref().and_then(apply_backlog).map(|s| format!("node {} {s}", n.id)))
                    .collect();
                return Err(format!(
                    "membership step {} of {} (to {}) is not complete; last answer: {}{}",
                    d.step + 1,
                    d.plan.steps.len(),
                    d.plan.steps[d.step],
                    d.last_answer,
                    if stuck.is_empty() { String::new() } else { format!("; {}", stuck.join("; ")) }
                ));
            }
            Some(d) => Some(&d.current),
            None => None,
        };
        let active: Vec<&Node> =
            self.nodes.iter().filter(|n| final_config.is_none_or(|c| c.members.contains_key(&n.id))).collect();
        let leaders: Vec<&&Node> =
            active.iter().filter(|n| n.replica.as_ref().is_some_and(|r| r.leader_ballot().is_some())).collect();
        let [leader] = leaders.as_slice() else {
            let ids: Vec<NodeId> = leaders.iter().map(|n| n.id).collect();
            return Err(format!("{} nodes lead with a fixed base: {ids:?}", ids.len()));
        };
        let lr = leader.replica.as_ref().expect("leader is up");
        let l = lr.leader_ballot().expect("leader");
        let same = |a: &TailBitmap, b: &TailBitmap| a.is_superset(b) && b.is_superset(a);
        if !same(lr.committed(), lr.accepted()) {
            return Err(format!(
                "leader {l} on node {} has accepted records it has not committed: {}",
                leader.id,
                clip((lr.accepted() - lr.committed()).to_string(), 120)
            ));
        }
        for n in &active {
            let Some(r) = n.replica.as_ref() else {
                return Err(format!("node {} is down", n.id));
            };
            if r.committer() != Some(l) {
                return Err(format!("node {} has committer {}, not {l}", n.id, short_opt(&r.committer())));
            }
            if !same(r.committed(), lr.committed()) {
                return Err(format!(
                    "node {} Committed {} differs from the leader's {}",
                    n.id,
                    clip(r.committed().to_string(), 80),
                    clip(lr.committed().to_string(), 80)
                ));
            }
            if let Some(stuck) = apply_backlog(r) {
                return Err(format!("node {} {stuck}", n.id));
            }
            if let Some(target) = final_config {
                // The final configuration is in force, and its record is
                // committed, on every remaining member.
                let in_force = r.config();
                if !in_force.learners.is_empty()
                    || in_force.next.is_some()
                    || !crate::membership::same_quorum_system(in_force, target)
                {
                    return Err(format!("node {} has {in_force} in force, not {target}", n.id));
                }
                let newest = r.log().values().rev().find(|rec| rec.cmd.as_ref().is_some_and(|c| c.is_config()));
                if let Some(rec) = newest
                    && !r.committed().contains(rec.seq)
                {
                    return Err(format!("node {} has not committed its config record at seq {}", n.id, rec.seq));
                }
            }
        }
        // States last: a node stuck applying (the leader too) is the more
        // telling report.
        for n in &active {
            let r = n.replica.as_ref().expect("checked up above");
            if r.kv() != lr.kv() {
                return Err(format!("node {} state {:?} differs from the leader's {:?}", n.id, r.kv(), lr.kv()));
            }
        }
        Ok(())
    }
}
