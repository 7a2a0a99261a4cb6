//! Protocol scenarios told step by step on a tiny, perfect network: every
//! message delivered in order, every write durable at once. The seeded
//! fault simulator (tests/sim) covers the rest. The harness is tests/story.

mod story;

use story::{Cluster, ask_vote};
use traftctl::kv::ApplyResult;
use traftctl::pb::cmd::Value;
use traftctl::pb::{ClusterConfig, LeaderId, TailBitmap, VoteRefusal};
use traftctl::replica::{ClientReply, CommitOrder, DurableState, Message, NodeId, Options, ReadConsistency, Replica};

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

/// The story above under both commit orders: every forward carrying `a` is
/// lost, then five writes on `b` are proposed. Returns how many of them were
/// acknowledged while `a` was lost, and whether all six were once the loss
/// stopped.
fn lost_record_story(order: CommitOrder) -> (usize, bool) {
    let mut c = Cluster::with(3, |o| o.commit_order = order);
    c.run(3000);
    c.filter = Box::new(
        |_, _, m| matches!(m, Message::Forward(f) if f.logs.iter().any(|r| r.cmd.as_ref().is_some_and(|c| c.key == "a"))),
    );
    c.propose(1, &["set", "a", "1"]);
    c.run(10);
    for i in 0..5 {
        c.propose(10 + i, &["set", "b", &i.to_string()]);
    }
    c.run(50);
    let acked = |c: &Cluster, r: u64| matches!(c.replies.get(&r), Some(ClientReply::Proposed { .. }));
    let b_acked_while_lost = (0..5).filter(|i| acked(&c, 10 + i)).count();
    assert!(!acked(&c, 1), "a cannot commit without a quorum");
    c.filter = Box::new(|_, _, _| false);
    c.run(1000);
    (b_acked_while_lost, acked(&c, 1) && (0..5).all(|i| acked(&c, 10 + i)))
}

#[test]
fn a_lost_record_holds_back_later_commits_only_under_prefix_order() {
    assert_eq!(lost_record_story(CommitOrder::Any), (5, true), "out of order, b commits while a is lost");
    assert_eq!(
        lost_record_story(CommitOrder::Prefix),
        (0, true),
        "in seq order, no b commits before a, and all commit once a does"
    );
}

/// A follower that misses one record (every copy of `a` sent to it loses
/// that record; the rest of each forward arrives) while the other follower
/// gets everything: `a` and the `b` records commit either way. Returns the
/// `b` seqs that follower applied while it lacked `a`, and whether it
/// applied `a` and all of `b` once the loss stopped.
fn missing_record_follower_story(order: CommitOrder) -> (usize, bool) {
    let mut c = Cluster::with(3, |o| o.commit_order = order);
    c.run(3000);
    let leader = c.leader().unwrap();
    let lossy = *c.nodes.keys().find(|&&id| id != leader).unwrap();
    c.filter = Box::new(move |_, to, m| {
        if let Message::Forward(f) = m
            && to == lossy
        {
            f.logs.retain(|r| r.cmd.as_ref().is_none_or(|c| c.key != "a"));
        }
        false
    });
    c.propose(1, &["set", "a", "1"]);
    c.run(10);
    for i in 0..5 {
        c.propose(10 + i, &["set", "b", &i.to_string()]);
    }
    // Heartbeats bring the follower the commit of what it holds.
    c.run(1000);
    let seqs: Vec<i64> =
        (0..6).map(|r| c.acknowledged_seq(if r == 0 { 1 } else { 9 + r }).expect("committed")).collect();
    let (a_seq, b_seqs) = (seqs[0], &seqs[1..]);
    let f = &c.nodes[&lossy];
    assert!(!f.applied().contains(a_seq), "the lossy follower never received a");
    let b_applied_without_a = b_seqs.iter().filter(|&&s| f.applied().contains(s)).count();
    c.filter = Box::new(|_, _, _| false);
    c.run(1000);
    let f = &c.nodes[&lossy];
    (b_applied_without_a, seqs.iter().all(|&s| f.applied().contains(s)))
}

#[test]
fn a_follower_missing_a_record_applies_later_ones_only_under_any_order() {
    assert_eq!(missing_record_follower_story(CommitOrder::Any), (5, true), "out of order, b applies without a");
    assert_eq!(
        missing_record_follower_story(CommitOrder::Prefix),
        (0, true),
        "in seq order, no b applies before a, and all apply once a arrives"
    );
}

#[test]
fn a_forward_reported_lost_is_sent_again_at_once() {
    let mut c = Cluster::new(3);
    c.run(3000);
    let leader = c.leader().unwrap();
    // A connection reset takes the forwards carrying `x` to both followers.
    let lost = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = lost.clone();
    c.filter = Box::new(move |from, to, m| match m {
        Message::Forward(f)
            if from == leader && f.logs.iter().any(|r| r.cmd.as_ref().is_some_and(|c| c.key == "x")) =>
        {
            seen.borrow_mut().push((to, f.forward_id));
            true
        }
        _ => false,
    });
    c.propose(1, &["set", "x", "1"]);
    c.run(10);
    assert!(!c.replies.contains_key(&1), "x cannot commit: both forwards were lost");
    c.filter = Box::new(|_, _, _| false);
    // The transport says so; the leader sends x again with its next
    // forwards, well before its retransmit time (300 ms) would have.
    for (to, id) in lost.borrow().iter() {
        c.nodes.get_mut(&leader).unwrap().forward_lost(c.now, *to, Some(*id));
    }
    c.collect(leader);
    c.run(20);
    assert!(matches!(c.replies.get(&1), Some(ClientReply::Proposed { .. })), "{:?}", c.replies.get(&1));
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
    let mut c = Cluster::with_each(3, |id, opts| {
        if id == 1 {
            opts.election_jitter_ns = 0;
            opts.snapshot_every = 0;
        } else {
            opts.snapshot_every = 5;
            opts.compact_retain = 0;
        }
    });
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

/// Issue #10, second install. `v` installs the leader's snapshot, whose
/// applied set has a tail (105 applied above the unapplied 103); later,
/// as a candidate, it installs `b`'s snapshot, which goes further (103 is
/// applied there) but lacks 105, which `b` never received. The second
/// install must not forget 105: `v` still holds its record, applies it
/// again, and as the new leader brings it to `b`.
#[test]
fn a_second_snapshot_install_does_not_unapply_the_first_ones_tail() {
    use std::cell::Cell;
    use std::rc::Rc;

    let mut c = Cluster::with_each(3, |id, opts| {
        match id {
            // The first leader: its floor follows its applied prefix, so a
            // follower that misses a record trails it and needs a snapshot.
            1 => {
                opts.election_jitter_ns = 0;
                opts.floor_lag = 0;
            }
            // `b` compacts everything it applied, so a candidate that lacks
            // a seq below that must install its snapshot.
            2 => {
                opts.snapshot_every = 5;
                opts.compact_retain = 0;
            }
            _ => {}
        }
    });
    c.run(3000);
    let a = c.leader().unwrap();
    assert_eq!(a, 1, "setup: member 1 campaigned first");
    let (b, v) = (2, 3);
    for i in 0..100u64 {
        c.propose(i, &["set", &format!("p{i}"), &i.to_string()]);
    }
    c.run(500);

    // Phase 1: 100 never reaches v and 103 reaches nobody; 105 never
    // reaches b. v trails a's floor and installs a's snapshot, with 105 in
    // its tail. Phase 2: 103 reaches b, so b applies up to 105 and compacts
    // there; v cannot fetch a's newer snapshot. Phase 3: a is gone and b's
    // vote requests are lost, so v campaigns and finds it lacks 103.
    let phase = Rc::new(Cell::new(1));
    let p = phase.clone();
    c.filter = Box::new(move |from, to, m| match m {
        Message::Forward(f) if from == a => {
            f.logs.retain(|r| {
                let blocked_103 = r.seq == 103 && (p.get() == 1 || to == v);
                !(blocked_103 || (r.seq == 100 && to == v) || (r.seq == 105 && to == b))
            });
            false
        }
        // a's floor passes b and v once 103 commits; neither may catch up
        // through a's snapshot, which has everything.
        Message::SnapshotReq(_) => p.get() == 2 && to == a,
        Message::Vote(_) => p.get() == 3 && from == b,
        _ => false,
    });
    for seq in 100..=110u64 {
        let words: Vec<String> = match seq {
            105 => vec!["set".into(), "k".into(), "x".into()],
            _ => vec!["set".into(), format!("q{seq}"), seq.to_string()],
        };
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        c.propose(1000 + seq, &words);
    }
    c.run(1000);
    assert_eq!(c.acknowledged_seq(1105), Some(105), "105 committed with a and v");
    let first = c.nodes[&v].applied().clone();
    assert!(first.prefix_len() == 103 && first.contains(105), "v installed a snapshot with a tail: {first}");

    phase.set(2);
    c.run(1000);
    assert_eq!(c.acknowledged_seq(1103), Some(103), "103 committed with a and b");
    assert!(!c.nodes[&b].applied().contains(105), "b never got 105");
    assert!(c.nodes[&b].compacted_below() > 103, "b compacted past 103: {}", c.nodes[&b].compacted_below());
    assert_eq!(c.nodes[&v].applied(), &first, "v is still where the first install left it");

    c.nodes.remove(&a);
    phase.set(3);
    c.run(6000);
    assert!(c.nodes[&v].stats().snapshots_installed >= 2, "v installed b's snapshot too");
    assert_eq!(c.leader(), Some(v), "v won with b's vote");
    assert_eq!(c.read(v, 9000, "k"), Some(Value::VStr("x".into())), "the acknowledged `set k x` is there");
    c.run(1000);
    assert_eq!(c.nodes[&b].kv(), c.nodes[&v].kv(), "b converges to the new leader's state");
}

/// Issue #10, rule 6 after compaction. A new leader that compacted its log
/// past the floor its lagging voter allows could not name the earlier
/// records on a key in a new record's `Depends`: they are gone from its
/// log. The lagging member, which lacks `set k 1`, would then apply the
/// `incr k` before it. The floor is never below the leader's compaction
/// point, so the new record names it (through the floor prefix) and the
/// lagging member must install a snapshot first.
#[test]
fn a_new_record_names_the_compacted_records_on_its_key() {
    let (a, l, m) = (1, 2, 5);
    let mut c = Cluster::with_each(5, |id, opts| {
        if id == a {
            // Leads first and never compacts, so its floor waits for m.
            opts.election_jitter_ns = 0;
            opts.snapshot_every = 0;
        } else if id == l {
            opts.snapshot_every = 5;
            opts.compact_retain = 0;
        }
    });
    c.run(3000);
    assert_eq!(c.leader(), Some(a), "setup: member 1 campaigned first");
    // m gets neither 60 nor 70 (`set k 1`) and can never fetch a snapshot;
    // once a is gone, only l's vote requests get through.
    let a_gone = std::rc::Rc::new(std::cell::Cell::new(false));
    let gone = a_gone.clone();
    c.filter = Box::new(move |from, to, msg| match msg {
        Message::Forward(f) if from == a && to == m => {
            f.logs.retain(|r| r.seq != 60 && r.seq != 70);
            false
        }
        Message::SnapshotReq(_) => from == m,
        Message::Vote(_) => gone.get() && from != l,
        _ => false,
    });
    for i in 0..100u64 {
        let (key, value) = if i == 70 { ("k".to_string(), "1") } else { (format!("p{i}"), "0") };
        c.propose(i, &["set", &key, value]);
    }
    c.run(500);
    assert_eq!(c.acknowledged_seq(70), Some(70));
    assert_eq!(c.nodes[&m].applied().prefix_len(), 60, "setup: m lags at 60");
    assert!(c.nodes[&l].compacted_below() > 70, "setup: l compacted 70: {}", c.nodes[&l].compacted_below());

    c.nodes.remove(&a);
    a_gone.set(true);
    c.run(6000);
    assert_eq!(c.leader(), Some(l), "l won");
    c.propose(200, &["incr", "k", "1"]);
    c.run(1000);
    let Some(ClientReply::Proposed { seq, result, .. }) = c.replies.get(&200).cloned() else {
        panic!("the incr was not acknowledged: {:?}", c.replies.get(&200));
    };
    assert_eq!(result, ApplyResult::Incremented(2));
    let rec = &c.nodes[&l].log()[&seq];
    assert!(rec.depends_bm().contains(70), "rule 6: the incr at {seq} must depend on `set k 1` at 70: {rec:?}");
    for node in c.nodes.values() {
        if node.applied().contains(seq) {
            let k = node.kv().get("k").cloned();
            assert_eq!(k, Some(Value::Vi64(2)), "member {} applied the incr at {seq} on the wrong state", node.id());
        }
    }
}

/// Issue #10, adoption. `f` holds seq 50 but never learns it committed, and
/// holds later committed records whose floor (96) lies above it. A new
/// leader `l` compacted 50 away, so its base names no author there and `f`
/// drops its copy. The kept records' floor prefix claims 50 only while
/// something else backs it: `f` must report 50 missing and fetch `l`'s
/// snapshot, not adopt with an `Accepted` that claims 50 and stall below it.
#[test]
fn an_adoption_does_not_count_a_floor_prefix_as_backing() {
    let (a, l, f) = (1, 2, 3);
    let y = 50;
    let mut c = Cluster::with_each(3, |id, opts| {
        if id == a {
            // Leads first; its floor runs a few seqs behind its own applied
            // prefix whatever f has applied.
            opts.election_jitter_ns = 0;
            opts.floor_lag = 4;
        } else if id == l {
            opts.snapshot_every = 5;
            opts.compact_retain = 0;
        }
    });
    c.run(3000);
    assert_eq!(c.leader(), Some(a), "setup: member 1 campaigned first");
    let a_gone = std::rc::Rc::new(std::cell::Cell::new(false));
    let gone = a_gone.clone();
    c.filter = Box::new(move |from, to, msg| match msg {
        Message::Forward(fwd) if from == a && to == f => {
            if let Some(committed) = fwd.committed.as_mut() {
                let mut only_y = TailBitmap::from_prefix(y + 1);
                only_y.diff(&TailBitmap::from_prefix(y));
                committed.diff(&only_y);
            }
            false
        }
        Message::SnapshotReq(_) => !gone.get() && from == f,
        Message::Vote(_) => gone.get() && from == f,
        _ => false,
    });
    // In two rounds: a's floor rises as the first round applies.
    for round in [0..100u64, 100..120] {
        for i in round {
            c.propose(i, &["set", &format!("p{i}"), &i.to_string()]);
        }
        c.run(500);
    }
    let held = &c.nodes[&f];
    assert!(held.log().contains_key(&y) && !held.committed().contains(y), "setup: f holds {y}, uncommitted");
    assert_eq!(held.applied().prefix_len(), y, "setup: f applied up to {y}");
    let late = &held.log()[&110];
    assert!(late.overrides_bm().offset > y && held.committed().contains(110), "setup: 110 has a floor above {y}");
    assert!(c.nodes[&l].compacted_below() > y, "setup: l compacted {y}");

    c.nodes.remove(&a);
    a_gone.set(true);
    c.run(6000);
    assert_eq!(c.leader(), Some(l), "l won with f's vote");
    c.propose(500, &["set", "after", "1"]);
    c.run(2000);
    assert!(c.acknowledged_seq(500).is_some(), "the new leader commits");
    let (lead, follower) = (&c.nodes[&l], &c.nodes[&f]);
    assert_eq!(follower.applied(), lead.applied(), "f caught up instead of stalling below {y}");
    assert_eq!(follower.kv(), lead.kv());
}

/// Rule 3: a new leader merges only the replies whose committer is the
/// greatest. `c` still follows the first leader and holds its uncommitted
/// blind write at 11, which overrides 10; the second leader then commits a
/// different record at 10. When the third candidate needs `c`'s vote,
/// `c`'s `Accepted` (which claims 10 and 11 through a record of a lost
/// log) must not enter the merge: the new base is the second leader's.
#[test]
fn a_candidate_merges_only_the_max_committer_replies() {
    use std::cell::Cell;
    use std::rc::Rc;

    let (a, b, cc, d) = (1, 2, 3, 4);
    let mut c = Cluster::with_each(5, |id, opts| {
        if id == a {
            opts.election_jitter_ns = 0;
        }
    });
    c.run(3000);
    assert_eq!(c.leader(), Some(a), "setup: member 1 campaigned first");
    for i in 0..10u64 {
        c.propose(i, &["set", &format!("p{i}"), "0"]);
    }
    c.run(500);

    // Phase 2: a's records 10 and 11 reach only c, and c's answers are
    // lost, so neither commits. Phase 3: a is gone; b is elected by d and e
    // and never talks to c. Phase 4: b is gone; d campaigns and needs c.
    let phase = Rc::new(Cell::new(2));
    let p = phase.clone();
    c.filter = Box::new(move |from, to, msg| {
        let between_b_and_c = [from, to].contains(&b) && [from, to].contains(&cc);
        match msg {
            _ if p.get() == 3 && between_b_and_c => true,
            Message::Forward(f) if from == a && to != cc => {
                f.logs.retain(|r| r.seq < 10);
                false
            }
            Message::ForwardReply(_) => from == cc && to == a,
            Message::Vote(_) => match p.get() {
                3 => from != b,
                4 => from != d,
                _ => false,
            },
            _ => false,
        }
    });
    c.propose(10, &["set", "k", "lost"]);
    c.propose(11, &["set", "k", "lost too"]);
    c.run(200);
    let held = &c.nodes[&cc].log()[&11];
    assert!(held.overrides_bm().contains(10), "setup: c holds a's blind write at 11, which overrides 10: {held:?}");
    assert_eq!(c.acknowledged_seq(11), None, "setup: 11 is not committed");

    c.nodes.remove(&a);
    phase.set(3);
    c.run(6000);
    assert_eq!(c.leader(), Some(b), "b won with d and e");
    c.propose(20, &["set", "k", "kept"]);
    c.run(500);
    assert_eq!(c.acknowledged_seq(20), Some(10), "b's record at 10 committed");
    assert!(c.nodes[&cc].committer() < c.nodes[&d].committer(), "setup: c still follows a");

    c.nodes.remove(&b);
    phase.set(4);
    c.run(6000);
    assert_eq!(c.leader(), Some(d), "d won; it needed c's vote");
    assert_eq!(c.read(d, 9000, "k"), Some(Value::VStr("kept".into())), "the committed `set k kept` survives");
    c.run(1000);
    assert_eq!(c.nodes[&cc].kv(), c.nodes[&d].kv(), "c dropped the lost log and converged");
}

/// A leader writes off a forwarded seq against a follower's `Accepted` only
/// once that follower has adopted the leader's ballot. Member `a` holds the
/// old leader's uncommitted record at `s` and lacks the committed one below
/// it, so its adoption of the new leader waits for that record; until it
/// adopts, its `Accepted` claims `s` through the old record. The new
/// leader's record at `s` either never reaches `a`, or reaches it while it
/// adopts and is lost when `a` restarts (an adoption is not durable). Once
/// `a` adopts and drops the old record, nothing but a resend would ever
/// bring it the new one.
fn a_follower_gets_the_new_leaders_record_at_a_seq_its_old_log_held(lose_the_forward: bool) {
    use std::cell::Cell;
    use std::rc::Rc;

    let (a, b) = (1, 2);
    let edit = |id: NodeId, opts: &mut Options| {
        if id == b {
            opts.election_jitter_ns = 0;
        } else if id == a {
            // a must not campaign once b is gone: a higher term of its own
            // would depose the new leader and fold `s` into a new base.
            opts.lease_ns = 60_000 * story::MS;
        }
    };
    let mut c = Cluster::with_each(5, edit);
    c.run(3000);
    assert_eq!(c.leader(), Some(b), "setup: member 2 campaigned first");
    for i in 0..5u64 {
        c.propose(i, &["set", &format!("p{i}"), "0"]);
    }
    c.run(500);

    // Phase 1: `before` reaches everyone but a and commits; `lost` reaches
    // only a and does not. Lossy links drop whole forwards. Phase 2: b is gone and a takes no part in the
    // election; a's copy of `before` is still held back, and the first
    // forward of the new leader's record at `s` to a is lost. Phase 3: the
    // network heals.
    let phase = Rc::new(Cell::new(1));
    let dropped_new = Rc::new(Cell::new(false));
    let (p, dropped) = (phase.clone(), dropped_new.clone());
    c.filter = Box::new(move |from, to, msg| {
        let on_key = |r: &traftctl::pb::Record, key: &str| r.cmd.as_ref().is_some_and(|c| c.key == key);
        match msg {
            _ if p.get() == 3 => false,
            Message::Forward(f) if to == a => {
                if lose_the_forward && p.get() == 2 && !dropped.get() && f.logs.iter().any(|r| on_key(r, "k")) {
                    dropped.set(true);
                    return true;
                }
                f.logs.iter().any(|r| on_key(r, "before"))
            }
            Message::Forward(f) => f.logs.iter().any(|r| on_key(r, "u")),
            Message::Vote(_) | Message::VoteReply(_) => p.get() == 2 && (from == a || to == a),
            _ => false,
        }
    });
    c.propose(10, &["set", "before", "1"]);
    c.run(10);
    c.propose(11, &["set", "u", "lost"]);
    c.run(200);
    let before = c.acknowledged_seq(10).expect("setup: `before` committed without a");
    let s = before + 1;
    assert_eq!(c.acknowledged_seq(11), None, "setup: `lost` is not committed");
    let held = &c.nodes[&a];
    assert!(held.log().contains_key(&s) && !held.log().contains_key(&before), "setup: a holds {s}, lacks {before}");

    c.nodes.remove(&b);
    phase.set(2);
    c.run(6000);
    let leader = c.leader().expect("a new leader among 3, 4, 5");
    assert_ne!(leader, a);
    c.propose(20, &["set", "k", "new"]);
    c.run(1000);
    assert_eq!(c.acknowledged_seq(20), Some(s), "setup: the new leader's record took seq {s}");
    if lose_the_forward {
        assert!(dropped_new.get(), "setup: the first forward of {s} to a was lost");
    } else {
        let disk = c.disks[&a].clone();
        let old = disk.records.iter().find(|r| r.seq == s).expect("setup: a's disk holds a record at s");
        assert!(old.cmd.as_ref().is_some_and(|c| c.key == "u"), "setup: a's disk still holds the old {s}");
        let mut opts = Options::new(a);
        edit(a, &mut opts);
        let config = c.nodes[&a].config().clone();
        c.nodes.insert(a, Replica::new(opts, config, Some(disk), c.now));
    }

    phase.set(3);
    c.run(3000);
    let (lead, follower) = (&c.nodes[&leader], &c.nodes[&a]);
    assert!(follower.applied().contains(s), "a applied the new leader's record at {s}");
    assert_eq!(follower.kv(), lead.kv());
}

#[test]
fn a_follower_gets_the_new_leaders_record_when_the_forward_was_lost() {
    a_follower_gets_the_new_leaders_record_at_a_seq_its_old_log_held(true);
}

#[test]
fn a_follower_gets_the_new_leaders_record_when_it_restarted_while_adopting() {
    a_follower_gets_the_new_leaders_record_at_a_seq_its_old_log_held(false);
}

/// Rule 8's config exception holds whether `Depends` names a seq by an
/// explicit bit or by its offset (everything below): both encode the same
/// set. Seq 0 (`incr k`) is committed but not held: this member got its log
/// from a leader that never held it either, since `del k` at 2 overrides
/// it. The config record at 1 depends on everything below it, and `del k`
/// depends on the config record. Were the config record to wait for 0, and
/// 0 for its overrider, nothing would ever apply again.
#[test]
fn a_config_record_does_not_wait_for_an_overridden_seq_below_its_floor() {
    use traftctl::pb::{Cmd, Record};
    use traftctl::replica::HardState;

    let config = story::majority(&[1, 2, 3]);
    let author = Some(LeaderId::new(2, 1));
    let config_record = Record {
        author,
        seq: 1,
        cmd: Some(Cmd::config(config.clone())),
        depends: Some(TailBitmap::from_prefix(1)),
        // A leader's encoding: the floor is the offset, each overridden
        // seq a bit (TailBitmap::new would fold the bits into the floor).
        overrides: Some(TailBitmap { offset: 1, words: vec![1 << 1], reclamed: 0 }),
    };
    let delete = Record {
        author,
        seq: 2,
        cmd: Some(Cmd::parse_words(&["del", "k"]).unwrap()),
        depends: Some(TailBitmap::new(0, [1])),
        overrides: Some(TailBitmap { offset: 0, words: vec![1 | 1 << 2], reclamed: 0 }),
    };
    let disk = DurableState {
        hard_state: HardState {
            voted_for: author,
            committer: author,
            committed: TailBitmap::from_prefix(3),
            base_len: 3,
        },
        snapshot: None,
        records: vec![config_record, delete],
    };
    let member = Replica::new(Options::new(2), config, Some(disk), 0);
    assert_eq!(member.applied(), &TailBitmap::from_prefix(3), "the config record, then `del k`, which marks 0");
    assert_eq!(member.kv().get("k"), None);
}

/// A proposal the state machine would only ignore (an operation it does
/// not know, a `set` without a value or with a configuration as value, an
/// `incr` by a string) is refused with the reason, not committed as a
/// record that does nothing.
#[test]
fn a_proposal_the_state_machine_cannot_apply_is_rejected() {
    use traftctl::errors::TraftError;
    use traftctl::pb::Cmd;
    let mut c = Cluster::new(3);
    c.run(3000);
    let leader = c.leader().unwrap();
    let config = Value::VClusterConfig(story::majority(&[1]));
    let bad = [
        (Cmd { op: "frobnicate".into(), key: "k".into(), value: None }, "unknown operation \"frobnicate\""),
        (Cmd { op: "set".into(), key: "k".into(), value: None }, "`set` needs a string or integer value"),
        (Cmd { op: "set".into(), key: "k".into(), value: Some(config) }, "`set` needs a string or integer value"),
        (Cmd { op: "incr".into(), key: "k".into(), value: Some(Value::VStr("1".into())) }, "integer delta"),
    ];
    let log_len = c.nodes[&leader].log().len();
    for (i, (cmd, why)) in bad.into_iter().enumerate() {
        c.nodes.get_mut(&leader).unwrap().propose(c.now, i as u64, cmd);
        c.collect(leader);
        match &c.replies[&(i as u64)] {
            ClientReply::Failed(TraftError::Rejected(msg)) => assert!(msg.contains(why), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(c.nodes[&leader].log().len(), log_len, "a rejected proposal reached the log");
    // What clients send is still fine: `incr` without a delta, `del`.
    c.nodes.get_mut(&leader).unwrap().propose(c.now, 10, Cmd { op: "incr".into(), key: "n".into(), value: None });
    c.propose(11, &["del", "n"]);
    c.run(300);
    assert!(matches!(c.replies[&10], ClientReply::Proposed { .. }), "{:?}", c.replies[&10]);
    assert!(matches!(c.replies[&11], ClientReply::Proposed { .. }), "{:?}", c.replies[&11]);
}
