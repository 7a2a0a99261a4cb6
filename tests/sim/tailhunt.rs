//! The snapshot-tail shapes (`snapshot_tail`, `snapshot_tail_five`): seeds
//! steered into the state issue #10 lost a write in, which random faults
//! reach only by luck.
//!
//! That state: a follower installs a snapshot whose applied set has an
//! out-of-order tail above its prefix, the leader dies, and the next leader
//! was missing one seq of that tail, so it must get the record from the
//! installer's vote. An *episode* builds it on purpose, against one reign.
//! The followers are split into *victims* and *others*, so that the leader
//! with either half is a quorum. Three of the leader's next records are
//! picked as they are first forwarded: `miss_v`, then `hole`, then `miss_c`
//! (on a key neither of the first two has, so it neither waits for the hole
//! nor covers it). The leader's forwards then lose:
//!
//! * `hole` to every follower: it never commits, so the applied prefix stops
//!   there while later records apply out of order above it;
//! * `miss_v` to the victims for good, and to everyone until `miss_c` has
//!   committed: while `miss_v` is uncommitted the floor stays at or below it,
//!   so the victims, whose accepted prefix it is, still accept `miss_c`.
//!   Once the others get it, it commits, the leader's prefix reaches the
//!   hole, the floor follows, and the victims must install the leader's
//!   snapshot, whose tail holds `miss_c`;
//! * `miss_c` to the others, who thus lack one seq of that tail.
//!
//! A record that explicitly overrides one of these is lost with it, or
//! holding it would cover the seq after all. Once every victim that is up
//! has installed a snapshot whose tail holds `miss_c`, the leader is crashed
//! a moment later, and the victims' vote requests are lost until the next
//! election (five leases at most), so the candidate is one of the others: it lacks `miss_c`, and only the
//! victims' votes can hand it over.
//!
//! The shapes also pin the knobs that force the snapshot (`SimParams::
//! tail_preset`): a zero floor lag (the floor is the leader's own applied
//! prefix), or a leader that snapshots every few seqs and retains nothing.

use std::collections::BTreeSet;

use traftctl::pb::{LeaderId, Record, TailBitmap};
use traftctl::replica::{Message, NodeId, Seq};

use crate::invariants::vouches_for;
use crate::rng::Rng;

/// Whether holding `r` gives its holder `seq`: it is the record there, or a
/// later one that explicitly overrides it.
fn covers(r: &Record, seq: Option<Seq>) -> bool {
    seq.is_some_and(|s| r.seq == s || (r.seq > s && vouches_for(r, s)))
}

/// One attempt at the shape, against one leader's reign.
#[derive(Debug, Clone)]
pub struct Episode {
    pub leader: NodeId,
    pub ballot: LeaderId,
    pub victims: BTreeSet<NodeId>,
    pub others: BTreeSet<NodeId>,
    /// The seqs are picked at or above this.
    pub start: Seq,
    pub miss_v: Option<(Seq, String)>,
    pub hole: Option<(Seq, String)>,
    pub miss_c: Option<Seq>,
    /// `miss_c` committed: the others get `miss_v` now.
    pub released: bool,
    /// Victims that installed a snapshot whose tail holds `miss_c`.
    pub installed: BTreeSet<NodeId>,
    /// True time the episode gives up (the leader is left alone).
    pub ends_at_ns: u64,
    /// The leader's crash is scheduled.
    pub fired: bool,
}

impl Episode {
    /// Picks the episode's seqs from a record first forwarded; forwards
    /// carry each follower's new records in seq order, so the first sight
    /// of every seq comes in seq order too.
    fn consider(&mut self, r: &Record) {
        let Some(cmd) = r.cmd.as_ref().filter(|c| !c.is_noop() && !c.is_config()) else { return };
        if r.seq < self.start {
            return;
        }
        let key = &cmd.key;
        match (&self.miss_v, &self.hole, self.miss_c) {
            (None, _, _) => self.miss_v = Some((r.seq, key.clone())),
            (Some((v, _)), None, _) if r.seq > *v => self.hole = Some((r.seq, key.clone())),
            (Some((_, kv)), Some((h, kh)), None) if r.seq > *h && key != kv && key != kh => self.miss_c = Some(r.seq),
            _ => {}
        }
    }

    /// Takes out of a forward the records this episode keeps from `to`;
    /// `committed` is the leader's. Returns how many it took.
    pub fn strip(&mut self, from: NodeId, to: NodeId, msg: &mut Message, committed: &TailBitmap) -> usize {
        let Message::Forward(f) = msg else { return 0 };
        if from != self.leader || f.committer != Some(self.ballot) {
            return 0;
        }
        for r in &f.logs {
            self.consider(r);
        }
        if self.miss_c.is_some_and(|c| committed.contains(c)) {
            self.released = true;
        }
        let (v, h, c) = (self.miss_v.as_ref().map(|x| x.0), self.hole.as_ref().map(|x| x.0), self.miss_c);
        let victim = self.victims.contains(&to);
        let other = self.others.contains(&to);
        let released = self.released;
        let before = f.logs.len();
        f.logs.retain(|r| {
            let keep_v = covers(r, v) && (victim || !released);
            !(covers(r, h) || keep_v || (other && covers(r, c)))
        });
        before - f.logs.len()
    }

    pub fn describe(&self) -> String {
        let seq = |x: &Option<(Seq, String)>| x.as_ref().map_or("-".to_string(), |(s, k)| format!("{s} (key {k})"));
        format!(
            "leader {} (node {}), from seq {}: hole {} lost to all, {} lost to victims {:?}, {} lost to others {:?}",
            self.ballot,
            self.leader,
            self.start,
            seq(&self.hole),
            seq(&self.miss_v),
            self.victims,
            self.miss_c.map_or("-".to_string(), |s| s.to_string()),
            self.others
        )
    }
}

/// Counts for the summary: how far episodes got.
#[derive(Debug, Default, Clone)]
pub struct HuntStats {
    pub episodes: u64,
    /// Victim installs of a snapshot whose tail holds the episode's `miss_c`.
    pub tail_installs: u64,
    /// Leaders crashed because every victim had installed.
    pub crashes: u64,
}

impl HuntStats {
    pub fn merge(&mut self, o: &HuntStats) {
        self.episodes += o.episodes;
        self.tail_installs += o.tail_installs;
        self.crashes += o.crashes;
    }
}

pub struct TailHunt {
    pub rng: Rng,
    pub episode: Option<Episode>,
    /// Nodes whose vote requests are lost, and until when (true time).
    pub silenced: Vec<(NodeId, u64)>,
    pub stats: HuntStats,
}

impl TailHunt {
    pub fn new(rng: Rng) -> Self {
        TailHunt { rng, episode: None, silenced: Vec::new(), stats: HuntStats::default() }
    }

    /// A new episode against leader `leader` (ballot `ballot`), picking its
    /// seqs at or above `start`, with `followers` up. `None` when there are
    /// too few followers to split.
    pub fn begin(
        &mut self,
        leader: NodeId,
        ballot: LeaderId,
        start: Seq,
        mut followers: Vec<NodeId>,
        now_ns: u64,
        length_ns: u64,
    ) -> Option<&Episode> {
        if followers.len() < 2 {
            return None;
        }
        // Shuffle, then halve: with majority quorums of 3 or 5, the leader
        // and either half are a quorum.
        for k in (1..followers.len()).rev() {
            let j = self.rng.below(k as u64 + 1) as usize;
            followers.swap(k, j);
        }
        let half = followers.len() / 2;
        let others: BTreeSet<NodeId> = followers.split_off(half).into_iter().collect();
        let victims: BTreeSet<NodeId> = followers.into_iter().collect();
        self.stats.episodes += 1;
        self.episode = Some(Episode {
            leader,
            ballot,
            victims,
            others,
            start,
            miss_v: None,
            hole: None,
            miss_c: None,
            released: false,
            installed: BTreeSet::new(),
            ends_at_ns: now_ns + length_ns,
            fired: false,
        });
        self.episode.as_ref()
    }

    /// Whether a message from `from` is a vote request to lose now.
    pub fn silences(&self, from: NodeId, msg: &Message, now_ns: u64) -> bool {
        matches!(msg, Message::Vote(_)) && self.silenced.iter().any(|&(id, until)| id == from && now_ns < until)
    }
}
