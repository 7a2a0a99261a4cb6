//! Protocol scenarios told step by step on a tiny, perfect network: every
//! message delivered in order, every write durable at once. The seeded
//! fault simulator (tests/sim) covers the rest.

use std::collections::{BTreeMap, VecDeque};

use traftctl::kv::ApplyResult;
use traftctl::pb::cmd::Value;
use traftctl::pb::{ClusterConfig, Cmd, LeaderId, TailBitmap, VoteRefusal, VoteReply, VoteReq};
use traftctl::replica::{Action, ClientReply, DurableState, Message, NodeId, Options, ReadConsistency, Replica, Role};

const MS: u64 = 1_000_000;

/// Drops a message when it returns true; may also edit it in flight (strip
/// single records from a forward, as a lossy path to one member would).
type DropFilter = Box<dyn FnMut(NodeId, NodeId, &mut Message) -> bool>;

struct Cluster {
    now: u64,
    nodes: BTreeMap<NodeId, Replica>,
    disks: BTreeMap<NodeId, DurableState>,
    queue: VecDeque<(NodeId, NodeId, Message)>,
    replies: BTreeMap<u64, ClientReply>,
    filter: DropFilter,
}

impl Cluster {
    fn new(n: i64) -> Self {
        let config = ClusterConfig::majority((1..=n).map(|i| (i, format!("127.0.0.1:{}", 7000 + i)))).unwrap();
        let nodes = (1..=n).map(|i| (i, Replica::new(Options::new(i), config.clone(), None, 0))).collect();
        Cluster {
            now: 0,
            nodes,
            disks: BTreeMap::new(),
            queue: VecDeque::new(),
            replies: BTreeMap::new(),
            filter: Box::new(|_, _, _| false),
        }
    }

    /// A cluster whose members all run with `edit`ed options.
    fn with(n: i64, edit: impl Fn(&mut Options)) -> Self {
        let mut c = Cluster::new(n);
        for (&id, node) in c.nodes.iter_mut() {
            let mut opts = Options::new(id);
            edit(&mut opts);
            *node = Replica::new(opts, node.config().clone(), None, 0);
        }
        c
    }

    fn collect(&mut self, id: NodeId) {
        let actions = self.nodes.get_mut(&id).unwrap().take_actions();
        let mut durable = 0;
        for a in actions {
            match a {
                Action::Persist { id: pid, write } => {
                    self.disks.entry(id).or_default().apply(write);
                    durable = pid;
                }
                Action::Send { to, msg, .. } => self.queue.push_back((id, to, msg)),
                Action::Reply { request, reply, .. } => {
                    self.replies.insert(request, reply);
                }
                Action::Event(_) => {}
            }
        }
        if durable > 0 {
            self.nodes.get_mut(&id).unwrap().persisted(self.now, durable);
            self.collect(id);
        }
    }

    /// Delivers messages and ticks until nothing is left to say.
    fn run(&mut self, duration_ms: u64) {
        let end = self.now + duration_ms * MS;
        while self.now < end {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in &ids {
                self.nodes.get_mut(id).unwrap().tick(self.now);
                self.collect(*id);
            }
            let mut budget = 10_000;
            while let Some((from, to, mut msg)) = self.queue.pop_front() {
                budget -= 1;
                assert!(budget > 0, "message storm");
                if (self.filter)(from, to, &mut msg) {
                    continue;
                }
                if let Some(node) = self.nodes.get_mut(&to) {
                    node.step(self.now, from, msg);
                    self.collect(to);
                }
            }
            self.now += 10 * MS;
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.nodes.values().find(|n| n.role() == Role::Leader).map(|n| n.id())
    }

    /// The seq a proposal got, once it was acknowledged.
    fn acknowledged_seq(&self, request: u64) -> Option<i64> {
        match self.replies.get(&request) {
            Some(ClientReply::Proposed { seq, .. }) => Some(*seq),
            _ => None,
        }
    }

    /// A linearizable read on `node`, answered within a second.
    fn read(&mut self, node: NodeId, request: u64, key: &str) -> Option<Value> {
        self.nodes.get_mut(&node).unwrap().read(self.now, request, key, ReadConsistency::Linearizable);
        self.collect(node);
        self.run(1000);
        match self.replies.get(&request) {
            Some(ClientReply::Read { value }) => value.clone(),
            other => panic!("read of {key} on {node}: {other:?}"),
        }
    }

    fn propose(&mut self, request: u64, words: &[&str]) {
        let leader = self.leader().expect("a leader");
        let cmd = Cmd::parse_words(words).unwrap();
        self.nodes.get_mut(&leader).unwrap().propose(self.now, request, cmd);
        self.collect(leader);
    }
}

#[test]
fn three_nodes_elect_a_leader_commit_and_apply_everywhere() {
    let mut c = Cluster::new(3);
    c.run(3000);
    let leader = c.leader().expect("a leader within three seconds");
    c.propose(1, &["set", "x", "5"]);
    c.propose(2, &["incr", "x", "2"]);
    c.propose(3, &["set", "y", "hello"]);
    c.run(1000);
    match &c.replies[&2] {
        ClientReply::Proposed { result, .. } => assert_eq!(*result, ApplyResult::Incremented(7)),
        other => panic!("incr: {other:?}"),
    }
    let n = c.nodes[&leader].committed().len();
    for node in c.nodes.values() {
        assert_eq!(node.applied().len(), n, "node {} applied everything", node.id());
        assert_eq!(node.kv(), c.nodes[&leader].kv());
    }
    c.nodes.get_mut(&leader).unwrap().read(c.now, 9, "x", ReadConsistency::Linearizable);
    c.collect(leader);
    c.run(100);
    assert!(matches!(&c.replies[&9], ClientReply::Read { value: Some(_) }), "{:?}", c.replies.get(&9));
}

#[test]
fn a_new_leader_keeps_what_was_committed() {
    let mut c = Cluster::new(3);
    c.run(3000);
    let first = c.leader().unwrap();
    for i in 0..10 {
        c.propose(i, &["incr", "n", "1"]);
    }
    c.run(500);
    // The leader crashes: it disappears with everything in memory.
    c.nodes.remove(&first);
    c.run(5000);
    let second = c.leader().expect("a new leader");
    assert_ne!(first, second);
    c.propose(100, &["incr", "n", "1"]);
    c.run(500);
    match &c.replies[&100] {
        ClientReply::Proposed { result, .. } => assert_eq!(*result, ApplyResult::Incremented(11)),
        other => panic!("{other:?}"),
    }
    // It restarts from its disk and catches up.
    let config = c.nodes[&second].config().clone();
    let disk = c.disks[&first].clone();
    c.nodes.insert(first, Replica::new(Options::new(first), config, Some(disk), c.now));
    c.run(3000);
    assert_eq!(c.nodes[&first].kv(), c.nodes[&second].kv());
}

#[test]
fn a_lost_record_does_not_hold_back_unrelated_ones() {
    let mut c = Cluster::new(3);
    c.run(3000);
    let leader = c.leader().unwrap();
    // Every forward that carries the record on key `a` is lost.
    c.filter = Box::new(
        |_, _, m| matches!(m, Message::Forward(f) if f.logs.iter().any(|r| r.cmd.as_ref().is_some_and(|c| c.key == "a"))),
    );
    c.propose(1, &["set", "a", "1"]);
    c.run(10);
    for i in 0..5 {
        c.propose(10 + i, &["set", "b", &i.to_string()]);
    }
    c.run(50);
    for i in 0..5 {
        assert!(
            matches!(c.replies.get(&(10 + i)), Some(ClientReply::Proposed { .. })),
            "b{i}: {:?}",
            c.replies.get(&(10 + i))
        );
    }
    assert!(!c.replies.contains_key(&1), "a cannot commit without a quorum");
    assert!(c.nodes[&leader].stats().committed_out_of_order >= 5);
    c.filter = Box::new(|_, _, _| false);
    c.run(1000);
    assert!(matches!(c.replies.get(&1), Some(ClientReply::Proposed { .. })));
}

#[test]
fn a_one_member_cluster_keeps_leading_and_serves_reads() {
    let mut c = Cluster::new(1);
    c.run(3000);
    let leader = c.leader().expect("a single member elects itself");
    c.propose(1, &["set", "x", "1"]);
    // Well past a lease and the stale-leader limit: nothing is ever sent in
    // a one-member configuration, yet it must not lose its lease.
    c.run(5000);
    assert_eq!(c.leader(), Some(leader), "it is still the leader");
    c.nodes.get_mut(&leader).unwrap().read(c.now, 2, "x", ReadConsistency::Linearizable);
    c.collect(leader);
    c.run(100);
    assert!(matches!(&c.replies.get(&2), Some(ClientReply::Read { value: Some(_) })), "{:?}", c.replies.get(&2));
}

/// Asks `voter` for a vote for `candidate` and returns its answer.
fn ask_vote(voter: &mut Replica, now: u64, candidate: LeaderId) -> VoteReply {
    let req = VoteReq { candidate: Some(candidate), committer: None, accepted: Some(TailBitmap::empty()) };
    voter.step(now, candidate.id, Message::Vote(req));
    voter
        .take_actions()
        .into_iter()
        .find_map(|a| match a {
            Action::Send { msg: Message::VoteReply(r), .. } => Some(r),
            _ => None,
        })
        .expect("a vote reply")
}

#[test]
fn a_restarted_replica_sits_out_one_lease_before_voting() {
    let config = ClusterConfig::majority((1..=3).map(|i| (i, format!("127.0.0.1:{}", 7000 + i)))).unwrap();
    let lease = Options::new(1).lease_ns;
    // Restarted from a disk that remembers nothing in particular.
    let mut voter = Replica::new(Options::new(1), config, Some(DurableState::default()), 0);
    let early = ask_vote(&mut voter, lease / 2, LeaderId::new(5, 2));
    assert!(!early.granted);
    assert_eq!(early.refusal, VoteRefusal::Restarting as i32);
    let later = ask_vote(&mut voter, lease + 1, LeaderId::new(5, 2));
    assert!(later.granted, "after one lease it votes again: {later:?}");
}

#[test]
fn a_follower_that_acknowledged_a_leader_refuses_other_ballots_for_a_lease() {
    let mut c = Cluster::new(3);
    c.run(3000);
    let leader = c.leader().unwrap();
    let follower = *c.nodes.keys().find(|&&id| id != leader).unwrap();
    let other = *c.nodes.keys().find(|&&id| id != leader && id != follower).unwrap();
    let ballot = c.nodes[&leader].leader_ballot().unwrap();
    let now = c.now;
    // A greater ballot, but the follower heard from the leader just now.
    let reply = ask_vote(c.nodes.get_mut(&follower).unwrap(), now, LeaderId::new(ballot.term + 5, other));
    assert!(!reply.granted);
    assert_eq!(reply.refusal, VoteRefusal::Lease as i32);
}

#[test]
fn a_candidate_installs_a_voters_snapshot_before_merging() {
    use std::cell::Cell;
    use std::rc::Rc;

    // Member 1 campaigns at once and leads; it never compacts, so its floor
    // stays at the lagging member's applied prefix and the lagging member
    // keeps accepting new records (a leader's floor is at least its own
    // compaction point). Its followers compact everything they applied.
    let mut c = Cluster::new(3);
    for (&id, node) in c.nodes.iter_mut() {
        let mut opts = Options::new(id);
        if id == 1 {
            opts.election_jitter_ns = 0;
            opts.snapshot_every = 0;
        } else {
            opts.snapshot_every = 5;
            opts.compact_retain = 0;
        }
        *node = Replica::new(opts, node.config().clone(), None, 0);
    }
    c.run(3000);
    let a = c.leader().unwrap();
    assert_eq!(a, 1, "setup: member 1 campaigned first");
    let (b, lagging) = {
        let others: Vec<NodeId> = c.nodes.keys().copied().filter(|&i| i != a).collect();
        (others[0], others[1])
    };
    // Phase 1: the lagging member gets none of the records on `old`, and
    // cannot fetch a snapshot either; its peers compact them away.
    // Phase 2: b's vote requests are lost, so the lagging member is the one
    // that campaigns.
    let phase = Rc::new(Cell::new(1));
    let p = phase.clone();
    c.filter = Box::new(move |from, to, m| match m {
        Message::Forward(f) if to == lagging => f.logs.iter().any(|r| r.cmd.as_ref().is_some_and(|c| c.key == "old")),
        Message::SnapshotReq(_) => p.get() == 1 && from == lagging,
        Message::Vote(_) => p.get() == 2 && from == b,
        _ => false,
    });
    for i in 0..30 {
        c.propose(i, &["set", "old", &i.to_string()]);
        c.propose(100 + i, &["set", &format!("k{i}"), &i.to_string()]);
    }
    c.run(200);
    c.propose(999, &["set", "new", "1"]);
    c.run(200);
    assert!(c.nodes[&b].compacted_below() > 20, "b compacted: {}", c.nodes[&b].compacted_below());
    assert!(c.nodes[&lagging].accepted().len() >= c.nodes[&b].accepted().len(), "same log length, with holes");
    assert!(c.nodes[&lagging].accepted().prefix_len() < c.nodes[&b].compacted_below());

    c.nodes.remove(&a);
    phase.set(2);
    c.run(6000);
    assert_eq!(c.leader(), Some(lagging), "the lagging member won after installing b's snapshot");
    assert!(c.nodes[&lagging].stats().snapshots_installed >= 1);
    assert_eq!(c.nodes[&lagging].kv(), c.nodes[&b].kv(), "nothing committed was lost in the merge");
    let old = c.nodes[&lagging].kv().get("old").cloned();
    assert_eq!(old, Some(Value::Vi64(29)));
}

/// Issue #10. A follower `v` installs the leader's snapshot, whose applied
/// set has an out-of-order tail (seq 105 applied above the unapplied 103);
/// the leader crashes and `c`, which never got 105, is elected with `v`'s
/// vote. 105 was acknowledged, so `c` must end up holding and applying it.
fn a_snapshot_tail_survives_a_leader_change(edit: impl Fn(&mut Options)) {
    use std::cell::Cell;
    use std::rc::Rc;

    let mut c = Cluster::with(3, edit);
    c.run(3000);
    let a = c.leader().unwrap();
    let others: Vec<NodeId> = c.nodes.keys().copied().filter(|&i| i != a).collect();
    let (v, cand) = (others[0], others[1]);
    for i in 0..100u64 {
        let key = if i == 50 { "k".to_string() } else { format!("p{i}") };
        let value = if i == 50 { "old".to_string() } else { i.to_string() };
        c.propose(i, &["set", &key, &value]);
    }
    c.run(500);
    for i in 0..100u64 {
        assert_eq!(c.acknowledged_seq(i), Some(i as i64), "setup: request {i} took seq {i}");
    }

    // 100 never reaches v (commits with a and c); 103 reaches nobody (never
    // commits); 105 never reaches c (commits with a and v). In phase 2, v's
    // vote requests are lost, so c is the one elected.
    let phase = Rc::new(Cell::new(1));
    let p = phase.clone();
    c.filter = Box::new(move |from, to, m| match m {
        Message::Forward(f) if from == a => {
            f.logs.retain(|r| !(r.seq == 103 || (r.seq == 100 && to == v) || (r.seq == 105 && to == cand)));
            false
        }
        Message::Vote(_) => p.get() == 2 && from == v,
        _ => false,
    });
    for seq in 100..=110u64 {
        let words: Vec<String> = match seq {
            103 => vec!["set".into(), "u".into(), "lost".into()],
            105 => vec!["set".into(), "k".into(), "x".into()],
            _ => vec!["set".into(), format!("q{seq}"), seq.to_string()],
        };
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        c.propose(1000 + seq, &words);
    }
    c.run(1000);
    for seq in (100..=110u64).filter(|&s| s != 103) {
        assert_eq!(c.acknowledged_seq(1000 + seq), Some(seq as i64), "seq {seq} was acknowledged");
    }
    assert_eq!(c.acknowledged_seq(1103), None, "103 cannot commit");
    assert!(c.nodes[&v].stats().snapshots_installed >= 1, "v caught up past 100 through a's snapshot");
    let applied = c.nodes[&v].applied();
    assert!(applied.prefix_len() == 103 && applied.contains(105), "the snapshot had a tail: {applied}");

    c.nodes.remove(&a);
    phase.set(2);
    c.run(6000);
    assert_eq!(c.leader(), Some(cand), "c won with v's vote");
    assert_eq!(c.read(cand, 9000, "k"), Some(Value::VStr("x".into())), "the acknowledged `set k x` is there");
    for seq in (100..=110u64).filter(|&s| s != 103 && s != 105) {
        let want = Some(Value::Vi64(seq as i64));
        assert_eq!(c.nodes[&cand].kv().get(&format!("q{seq}")).cloned(), want, "seq {seq} on the new leader");
    }
    c.run(1000);
    assert_eq!(c.nodes[&v].kv(), c.nodes[&cand].kv(), "v converges to the new leader's state");
}

#[test]
fn a_snapshot_tail_survives_a_leader_change_when_the_follower_trails_the_floor() {
    a_snapshot_tail_survives_a_leader_change(|o| o.floor_lag = 0);
}

#[test]
fn a_snapshot_tail_survives_a_leader_change_when_the_leader_compacted() {
    a_snapshot_tail_survives_a_leader_change(|o| {
        o.snapshot_every = 103;
        o.compact_retain = 0;
    });
}
