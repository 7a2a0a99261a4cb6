//! Out-of-order apply (rule 8): a committed record applies as soon as the
//! records it depends on are applied, whatever happened to lower seqs.

use super::*;
use crate::kv::ApplyResult;

impl Replica {
    /// Applies every committed record whose dependencies are met, until no
    /// more can apply. Marking one record's `Overrides` applied can unblock a
    /// lower record's dependency, hence the loop.
    pub(super) fn apply_committed(&mut self) {
        loop {
            let mut progressed = false;
            let ready: Vec<Seq> = self.apply_ready.iter().copied().collect();
            for seq in ready {
                if !self.apply_ready.contains(&seq) {
                    continue; // marked applied by an override earlier in this pass
                }
                if self.can_apply(seq) && self.in_order_allows(seq) {
                    self.apply_one(seq);
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        self.maybe_snapshot();
    }

    fn can_apply(&self, seq: Seq) -> bool {
        let Some(rec) = self.log.get(&seq) else { return false };
        let is_config = rec.cmd.as_ref().is_some_and(|c| c.is_config());
        let met = |d: Seq| self.applied.contains(d) || (is_config && self.config_dep_satisfied(d));
        // Everything below the Overrides floor is claimed as overridden; it
        // has to be applied first so marking the claim loses no record. A
        // floor is a set like any other: the config exception covers the
        // seqs below it as it covers explicit bits.
        let below_met = |floor: Seq| {
            self.applied.prefix_len() >= floor || (is_config && self.applied.missing_below(floor).all(met))
        };
        let deps = rec.depends_bm();
        below_met(rec.overrides_bm().offset) && below_met(deps.offset) && deps.iter().all(met)
    }

    /// Under [`CommitOrder::Prefix`], a record applies only once every lower
    /// seq has, except a committed seq that a committed held record
    /// explicitly overrides: its record may be gone for good (the merge
    /// keeps only the overrider), and applying the overrider marks it.
    /// Without that exception the baseline would wait forever where traft
    /// does not; with it, every apply is still one rule 8 allows. The test
    /// is the one rule 8's config exception uses.
    fn in_order_allows(&self, seq: Seq) -> bool {
        self.opts.commit_order == CommitOrder::Any
            || self.applied.missing_below(seq).all(|s| self.config_dep_satisfied(s))
    }

    /// Rule 8's exception for config records: a dependency that a committed
    /// held record overrides may never apply by itself — its record may be
    /// gone, or held but waiting on another such record — while the
    /// overrider waits for the config record. The override supersedes its
    /// effect on the key space, which a config record does not touch, so the
    /// config record need not wait. Unlike the contract's wording, the seq is
    /// not marked applied here: two replicas that applied the same set must
    /// hold the same state, and one that skipped the overridden write would
    /// not; the overrider marks it when it applies (docs/protocol.md).
    fn config_dep_satisfied(&self, dep: Seq) -> bool {
        self.hard.committed().contains(dep)
            && self
                .log
                .values()
                .any(|r| r.seq != dep && self.hard.committed().contains(r.seq) && r.overrides_bm().contains(dep))
    }

    fn apply_one(&mut self, seq: Seq) {
        let rec = self.log.get(&seq).expect("apply_ready holds only held records").clone();
        let result = match &rec.cmd {
            Some(cmd) => self.kv.apply(cmd),
            None => ApplyResult::Done,
        };
        if seq > self.applied.prefix_len() {
            self.stats.applied_out_of_order += 1;
        }
        self.stats.applied += 1;
        let overridden: Vec<Seq> = rec.overrides_bm().iter().filter(|&s| s != seq).collect();
        self.mark_applied(seq);
        for s in overridden {
            // An overridden record that never applied took effect only as
            // part of this record's history; its client learns so.
            if !self.applied.contains(s) {
                self.mark_applied(s);
                self.applied_result(s, ApplyResult::Overridden);
            }
        }
        self.applied_result(seq, result);
    }

    fn mark_applied(&mut self, seq: Seq) {
        debug_assert!(self.hard.committed().contains(seq), "rule 8: only committed records apply");
        self.applied.set(seq);
        self.apply_ready.remove(&seq);
    }

    fn applied_result(&mut self, seq: Seq, result: ApplyResult) {
        self.leader_applied(seq, &result);
        self.event(Event::Applied { seq, result });
    }
}
