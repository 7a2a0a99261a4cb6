//! The replica's hard state as it holds it between writes.

use super::{HardState, LeaderId, Seq, TailBitmap};

/// The durable hard state (rule 10): votes, the committer, the committed
/// set and the base length. Every change goes through a method that marks
/// it for the next durable write, so no change can reach a message before
/// it reaches the disk; reads are free.
///
/// New commits are the exception: they are facts a quorum's durable
/// acceptances already establish, and a replica that forgets them relearns
/// them from its leader (docs/protocol.md, "Durability"). So they only mark
/// the state for a write that happens anyway, or for one the caller asks
/// for once they have waited long enough, rather than costing an fsync of
/// their own every time the committed set grows.
#[derive(Debug)]
pub(super) struct Hard {
    state: HardState,
    dirty: bool,
    commits_unwritten: bool,
}

impl Hard {
    pub fn restored(state: HardState) -> Hard {
        Hard { state, dirty: false, commits_unwritten: false }
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

    /// Marks `seq` committed; returns whether it was new. Written lazily
    /// (see the type's docs).
    pub fn commit(&mut self, seq: Seq) -> bool {
        if self.state.committed.contains(seq) {
            return false;
        }
        self.state.committed.set(seq);
        self.commits_unwritten = true;
        true
    }

    /// Commits a whole set and writes it with the next write: an installed
    /// snapshot's applied set, which the snapshot on disk must not outrun.
    pub fn commit_all(&mut self, seqs: &TailBitmap) {
        self.state.committed.union(seqs);
        self.dirty = true;
    }

    /// Writes the hard state with the next write even though it did not
    /// change: a snapshot is stored with the committed set that vouches for it.
    pub fn rewrite(&mut self) {
        self.dirty = true;
    }

    /// Whether commits are waiting for a write to carry them.
    #[cfg(test)]
    pub fn commits_unwritten(&self) -> bool {
        self.commits_unwritten
    }

    /// The hard state to put in the next durable write: if anything but the
    /// committed set changed, or if `with_commits` and new commits wait.
    pub fn take_change(&mut self, with_commits: bool) -> Option<HardState> {
        let write = self.dirty || (with_commits && self.commits_unwritten);
        if !write {
            return None;
        }
        self.dirty = false;
        self.commits_unwritten = false;
        Some(self.state.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_is_written_and_only_once() {
        let mut hard = Hard::restored(HardState::default());
        assert_eq!(hard.take_change(true), None);
        let b = LeaderId::new(2, 1);
        assert!(hard.raise_vote(b));
        assert_eq!(hard.take_change(false).and_then(|h| h.voted_for), Some(b));
        assert_eq!(hard.take_change(true), None, "written once");
        assert!(!hard.raise_vote(LeaderId::new(1, 3)), "votes only grow");
        assert_eq!(hard.take_change(true), None, "an unchanged vote is not rewritten");
        hard.adopt(b, 4);
        assert_eq!(hard.take_change(false).map(|h| (h.committer, h.base_len)), Some((Some(b), 4)));
        assert!(hard.commit(7));
        assert!(hard.take_change(true).is_some_and(|h| h.committed.contains(7)));
        assert!(!hard.commit(7));
        assert_eq!(hard.take_change(true), None);
        hard.commit_all(&TailBitmap::from_prefix(3));
        assert!(hard.take_change(false).is_some_and(|h| h.committed.prefix_len() == 3));
        hard.rewrite();
        assert!(hard.take_change(false).is_some());
    }

    #[test]
    fn a_new_commit_waits_for_a_write_that_carries_it() {
        let mut hard = Hard::restored(HardState::default());
        assert!(hard.commit(3));
        assert!(hard.commits_unwritten());
        assert_eq!(hard.take_change(false), None, "a commit alone does not ask for a write");
        // Any other change writes the whole state, the commit with it.
        hard.raise_vote(LeaderId::new(1, 1));
        assert!(hard.take_change(false).is_some_and(|h| h.committed.contains(3)));
        assert!(!hard.commits_unwritten());
        assert!(hard.commit(4));
        assert!(hard.take_change(true).is_some_and(|h| h.committed.contains(4)), "or a write that asks for it");
    }
}
