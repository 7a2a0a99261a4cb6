//! The replica's hard state as it holds it between writes.

use super::{HardState, LeaderId, Seq, TailBitmap};

/// The durable hard state (rule 10): votes, the committer, the committed
/// set and the base length. Every change goes through a method that marks
/// it for the next durable write, so no change can reach a message before
/// it reaches the disk; reads are free.
#[derive(Debug)]
pub(super) struct Hard {
    state: HardState,
    dirty: bool,
}

impl Hard {
    pub fn restored(state: HardState) -> Hard {
        Hard { state, dirty: false }
    }

    pub fn voted_for(&self) -> Option<LeaderId> {
        self.state.voted_for
    }

    pub fn committer(&self) -> Option<LeaderId> {
        self.state.committer
    }

    pub fn committed(&self) -> &TailBitmap {
        &self.state.committed
    }

    /// Records a vote for `ballot` if it is greater than any vote so far
    /// (rule 1: votes only grow); returns whether it was.
    pub fn raise_vote(&mut self, ballot: LeaderId) -> bool {
        let raised = Some(ballot) > self.state.voted_for;
        if raised {
            self.state.voted_for = Some(ballot);
            self.dirty = true;
        }
        raised
    }

    /// Adopts `committer`'s base of `base_len` records (rule 4; the length
    /// is only stored, for the restarted replica's account); adopting a
    /// ballot implies having voted for it.
    pub fn adopt(&mut self, committer: LeaderId, base_len: Seq) {
        self.state.committer = Some(committer);
        self.state.voted_for = self.state.voted_for.max(Some(committer));
        self.state.base_len = base_len;
        self.dirty = true;
    }

    /// Marks `seq` committed; returns whether it was new.
    pub fn commit(&mut self, seq: Seq) -> bool {
        if self.state.committed.contains(seq) {
            return false;
        }
        self.state.committed.set(seq);
        self.dirty = true;
        true
    }

    pub fn commit_all(&mut self, seqs: &TailBitmap) {
        self.state.committed.union(seqs);
        self.dirty = true;
    }

    /// Writes the hard state with the next write even though it did not
    /// change: a snapshot is stored with the committed set that vouches for it.
    pub fn rewrite(&mut self) {
        self.dirty = true;
    }

    /// The hard state to put in the next durable write, if it changed.
    pub fn take_change(&mut self) -> Option<HardState> {
        std::mem::take(&mut self.dirty).then(|| self.state.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_is_written_and_only_once() {
        let mut hard = Hard::restored(HardState::default());
        assert_eq!(hard.take_change(), None);
        let b = LeaderId::new(2, 1);
        assert!(hard.raise_vote(b));
        assert_eq!(hard.take_change().and_then(|h| h.voted_for), Some(b));
        assert_eq!(hard.take_change(), None, "written once");
        assert!(!hard.raise_vote(LeaderId::new(1, 3)), "votes only grow");
        assert_eq!(hard.take_change(), None, "an unchanged vote is not rewritten");
        hard.adopt(b, 4);
        assert_eq!(hard.take_change().map(|h| (h.committer, h.base_len)), Some((Some(b), 4)));
        assert!(hard.commit(7));
        assert!(hard.take_change().is_some_and(|h| h.committed.contains(7)));
        assert!(!hard.commit(7));
        assert_eq!(hard.take_change(), None);
        hard.commit_all(&TailBitmap::from_prefix(3));
        assert!(hard.take_change().is_some_and(|h| h.committed.prefix_len() == 3));
        hard.rewrite();
        assert!(hard.take_change().is_some());
    }
}
