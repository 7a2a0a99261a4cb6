//! Membership changes (rule 9) told step by step on the story harness
//! (tests/story): single config records lost on the way to one member,
//! leaders crashing mid-change, a config record that travels in a
//! snapshot's tail, and a candidate whose vote request to an old-only member
//! is lost. The seeded simulator (tests/sim) covers the same ground at random.

mod story;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use story::{Cluster, DropFilter, addr, majority};
use traftctl::pb::cmd::Value;
use traftctl::pb::{ClusterConfig, LeaderId, Record};
use traftctl::replica::{ClientReply, Message, NodeId, Options, Replica, Role};

/// `ids` all starting from `config`; member 1 campaigns at once, so it leads
/// first. `edit` may change anyone's options.
fn cluster(ids: &[NodeId], config: &ClusterConfig, edit: impl Fn(NodeId, &mut Options)) -> Cluster {
    Cluster::from_config(ids, config, |id, opts| {
        if id == 1 {
            opts.election_jitter_ns = 0;
        }
        edit(id, opts);
    })
}

/// Starts a new member knowing only the configuration in force, as an
/// operator does before asking for the change that adds it.
fn join(c: &mut Cluster, id: NodeId, opts: Options) {
    let config = c.nodes[&1].config().clone();
    c.nodes.insert(id, Replica::new(opts, config, None, c.now));
}

fn change(c: &mut Cluster, leader: NodeId, request: u64, target: &ClusterConfig) {
    c.nodes.get_mut(&leader).unwrap().change_config(c.now, request, target.clone(), false);
    c.collect(leader);
}

/// The stage a config record names (`learners`, `joint`, `final`).
fn stage(rec: &Record) -> Option<&str> {
    rec.cmd.as_ref().filter(|c| c.is_config()).map(|c| c.key.as_str())
}

fn holds(node: &Replica, which: &str) -> bool {
    node.log().values().any(|r| stage(r) == Some(which))
}

fn is_write_on(rec: &Record, prefix: &str) -> bool {
    rec.cmd.as_ref().is_some_and(|c| !c.is_config() && c.key.starts_with(prefix))
}

/// Runs in 10 ms steps until `done` holds; false if it never did.
fn run_until(c: &mut Cluster, max_ms: u64, done: impl Fn(&Cluster) -> bool) -> bool {
    for _ in 0..max_ms / 10 {
        if done(c) {
            return true;
        }
        c.run(10);
    }
    done(c)
}

/// What the filters saw go by: who campaigned, who granted whom, who led.
#[derive(Default)]
struct Wire {
    /// Vote requests by ballot: the members each was sent to, repeats kept.
    asked: BTreeMap<LeaderId, Vec<NodeId>>,
    /// Grants by the ballot they were for.
    grants: BTreeMap<LeaderId, BTreeSet<NodeId>>,
    /// Members that sent forwards as leader, by term.
    leaders: BTreeMap<i64, BTreeSet<NodeId>>,
}

type Seen = Rc<RefCell<Wire>>;

impl Wire {
    fn see(&mut self, from: NodeId, to: NodeId, msg: &Message) {
        match msg {
            Message::Vote(req) => {
                if let Some(b) = req.candidate {
                    self.asked.entry(b).or_default().push(to);
                }
            }
            Message::VoteReply(r) if r.granted => {
                if let Some(b) = r.voted_for {
                    self.grants.entry(b).or_default().insert(from);
                }
            }
            Message::Forward(f) => {
                if let Some(l) = f.committer {
                    self.leaders.entry(l.term).or_default().insert(l.id);
                }
            }
            _ => {}
        }
    }

    /// The leader and the members that granted its ballot.
    fn electorate(&self, leader: LeaderId) -> BTreeSet<NodeId> {
        let mut ids = self.grants.get(&leader).cloned().unwrap_or_default();
        ids.insert(leader.id);
        ids
    }

    fn assert_one_leader_per_term(&self) {
        for (term, ids) in &self.leaders {
            assert!(ids.len() <= 1, "two leaders in term {term}: {ids:?}");
        }
    }
}

/// Runs `filter` and records what it lets through.
fn watched(wire: &Seen, mut filter: impl FnMut(NodeId, NodeId, &mut Message) -> bool + 'static) -> DropFilter {
    let wire = wire.clone();
    Box::new(move |from, to, m| {
        let dropped = filter(from, to, m);
        if !dropped {
            wire.borrow_mut().see(from, to, m);
        }
        dropped
    })
}

fn ballot(c: &Cluster, id: NodeId) -> LeaderId {
    c.nodes[&id].leader_ballot().unwrap_or_else(|| panic!("member {id} leads"))
}

fn acknowledged(c: &Cluster, request: u64) -> bool {
    matches!(c.replies.get(&request), Some(ClientReply::Proposed { .. }))
}

/// Proposes `set <key> <n>` for each `(request, key)` on the leader.
fn write_all(c: &mut Cluster, writes: &[(u64, String)]) {
    for (request, key) in writes {
        c.propose(*request, &["set", key, &request.to_string()]);
    }
}

/// Reads every write back through the leader (linearizable).
fn read_back(c: &mut Cluster, leader: NodeId, writes: &[(u64, String)], first_read: u64) {
    for (i, (request, key)) in writes.iter().enumerate() {
        let got = c.read(leader, first_read + i as u64, key);
        assert_eq!(got, Some(Value::Vi64(*request as i64)), "acknowledged `set {key} {request}` on leader {leader}");
    }
}

fn writes(prefix: &str, requests: std::ops::Range<u64>) -> Vec<(u64, String)> {
    requests.map(|r| (r, format!("{prefix}{r}"))).collect()
}

/// Liveness of rule 9's double check. Old {1,2,4}, new {1,3,4}. Member 4
/// holds the joint record but never gets the final one, which commits with
/// 1 and 3; then 1 crashes. 4 campaigns under the joint configuration; its
/// first vote request to 2 (a member only of the old configuration) is lost.
/// 3's grant carries the final record, so the merged log's newest config is
/// the final one, which 2 is not in — yet `check_elected` also needs a
/// quorum of 4's own (joint) configuration, and without 2 there is none. So
/// 4 must ask 2 again within the same candidacy and win in the term it
/// started, instead of timing out and bumping the term.
#[test]
fn a_candidate_re_asks_an_old_only_member_within_its_candidacy() {
    let (old_only, new_only, cand) = (2, 3, 4);
    let old = majority(&[1, 2, 4]);
    let target = majority(&[1, 3, 4]);
    let mut c = cluster(&[1, 2, 4], &old, |_, _| {});
    c.run(3000);
    assert_eq!(c.leader(), Some(1), "setup: member 1 campaigned first");
    let before = writes("p", 0..5);
    write_all(&mut c, &before);
    c.run(300);
    join(&mut c, new_only, Options::new(new_only));

    // 4 never gets the final record. 3's vote requests are lost: holding
    // the final record, it would win with 4's vote, and this story is about
    // 4's candidacy. After the crash, 4's first vote request to 2 is lost.
    let wire: Seen = Rc::default();
    let crashed = Rc::new(Cell::new(false));
    let lost: Rc<Cell<Option<LeaderId>>> = Rc::default();
    let (gone, n) = (crashed.clone(), lost.clone());
    c.filter = watched(&wire, move |from, to, m| match m {
        Message::Forward(f) if to == cand => {
            f.logs.retain(|r| stage(r) != Some("final"));
            false
        }
        Message::Vote(_) if from == new_only => true,
        Message::Vote(req) if gone.get() && from == cand && to == old_only && n.get().is_none() => {
            n.set(req.candidate);
            true
        }
        _ => false,
    });
    change(&mut c, 1, 100, &target);
    c.run(1000);
    assert!(acknowledged(&c, 100), "setup: the change completed: {:?}", c.replies.get(&100));
    let after = writes("q", 10..15);
    write_all(&mut c, &after);
    c.run(300);
    assert!(after.iter().all(|(r, _)| acknowledged(&c, *r)), "setup: writes after the change committed");
    assert!(holds(&c.nodes[&cand], "joint") && !holds(&c.nodes[&cand], "final"), "setup: 4 lacks the final record");
    assert!(holds(&c.nodes[&new_only], "final"), "setup: 3 holds the final record");
    assert!(c.nodes[&cand].config().next.is_some(), "setup: 4 is still in the joint configuration");
    assert!(
        c.nodes[&cand].accepted().len() >= c.nodes[&new_only].accepted().len(),
        "setup: 4's log reaches as far as 3's, so 3 grants"
    );

    let campaigns_before = c.nodes[&cand].stats().elections_started;
    c.nodes.remove(&1);
    crashed.set(true);
    assert!(run_until(&mut c, 6000, |c| c.leader().is_some()), "a leader after the crash");
    assert_eq!(c.leader(), Some(cand), "4 won");
    let won = ballot(&c, cand);
    let w = wire.borrow();
    let first = lost.get().expect("setup: a vote request from 4 to 2 was lost");
    assert_eq!(won, first, "4 won in the candidacy whose request to 2 was lost, without a new term");
    assert_eq!(c.nodes[&cand].stats().elections_started, campaigns_before + 1, "one candidacy");
    let to_old_only = w.asked[&won].iter().filter(|&&id| id == old_only).count();
    assert!(to_old_only >= 1, "the request to 2 was sent again: {:?}", w.asked[&won]);
    let electorate = w.electorate(won);
    assert!(old.is_quorum_of_ids(electorate.iter().copied()), "a quorum of the old side: {electorate:?}");
    assert!(target.is_quorum_of_ids(electorate.iter().copied()), "and of the new side: {electorate:?}");
    drop(w);

    c.run(1000);
    assert_eq!(*c.nodes[&cand].config(), target, "the new leader is in the final configuration");
    let all: Vec<(u64, String)> = before.iter().chain(&after).cloned().collect();
    read_back(&mut c, cand, &all, 9000);
    assert_eq!(*c.nodes[&new_only].config(), target);
    wire.borrow().assert_one_leader_per_term();
}

/// Old {1,2,3}, new {1,2,4}: member 1 leads and 4 is started, with
/// `before` acknowledged ahead of the change. `drop_record(to, rec)` strips
/// records from 1's forwards; while `campaigner` is set, only its vote
/// requests get through.
struct Replace {
    c: Cluster,
    wire: Seen,
    campaigner: Rc<Cell<Option<NodeId>>>,
    before: Vec<(u64, String)>,
    target: ClusterConfig,
}

fn replace_three_with_four(drop_record: impl Fn(NodeId, &Record) -> bool + 'static) -> Replace {
    let mut c = cluster(&[1, 2, 3], &majority(&[1, 2, 3]), |_, _| {});
    c.run(3000);
    assert_eq!(c.leader(), Some(1), "setup: member 1 campaigned first");
    let before = writes("p", 0..5);
    write_all(&mut c, &before);
    c.run(300);
    assert!(before.iter().all(|(r, _)| acknowledged(&c, *r)));
    join(&mut c, 4, Options::new(4));
    let wire: Seen = Rc::default();
    let campaigner = Rc::new(Cell::new(None));
    let only = campaigner.clone();
    c.filter = watched(&wire, move |from, to, m| match m {
        Message::Forward(f) if from == 1 => {
            f.logs.retain(|r| !drop_record(to, r));
            false
        }
        Message::Vote(_) => only.get().is_some_and(|id| from != id),
        _ => false,
    });
    Replace { c, wire, campaigner, before, target: majority(&[1, 2, 4]) }
}

impl Replace {
    /// 1 crashes; only `campaigner` may campaign.
    fn crash_leader(&mut self, campaigner: NodeId) {
        self.c.nodes.remove(&1);
        self.campaigner.set(Some(campaigner));
    }

    /// The first term in which `id` led, as the wire saw it: it may win,
    /// finish a change and step down within one step of the harness.
    fn led(&self, id: NodeId) -> Option<LeaderId> {
        let w = self.wire.borrow();
        w.leaders.iter().find(|(_, ids)| ids.contains(&id)).map(|(&term, _)| LeaderId::new(term, id))
    }

    fn run_until_led(&mut self, id: NodeId, max_ms: u64) -> LeaderId {
        let w = self.wire.clone();
        let led = move |_: &Cluster| w.borrow().leaders.values().any(|ids| ids.contains(&id));
        assert!(run_until(&mut self.c, max_ms, led), "{id} is elected");
        self.led(id).unwrap()
    }

    /// Lets everyone campaign again.
    fn heal(&mut self) {
        self.c.filter = watched(&self.wire, move |_, _, _| false);
    }

    /// The members of the target converge on it under a leader among them,
    /// and every write, before and after, reads back.
    fn check_converged(&mut self) {
        let target = self.target.clone();
        let done = run_until(&mut self.c, 10_000, |c| {
            c.leader().is_some_and(|l| target.members.contains_key(&l))
                && c.nodes.values().filter(|n| target.members.contains_key(&n.id())).all(|n| *n.config() == target)
        });
        let configs: Vec<String> = self.c.nodes.values().map(|n| format!("{}: {}", n.id(), n.config())).collect();
        assert!(
            done,
            "the final configuration is in force under a leader in it: {configs:?}, leader {:?}",
            self.c.leader()
        );
        let leader = self.c.leader().unwrap();
        let after = writes("q", 50..55);
        write_all(&mut self.c, &after);
        self.c.run(500);
        assert!(after.iter().all(|(r, _)| acknowledged(&self.c, *r)), "writes after the change commit");
        let all: Vec<(u64, String)> = self.before.iter().chain(&after).cloned().collect();
        read_back(&mut self.c, leader, &all, 9000);
        self.wire.borrow().assert_one_leader_per_term();
    }
}

/// An inherited change at the joint stage, finished by a member it removes.
/// Old {1,2,3}, new {1,2,4}. Every member holds the joint record and it
/// commits; 1 appends the final record, which reaches nobody, and crashes.
/// 3 — only in the old configuration — is elected holding the joint record
/// but not the final one. It must finish the change from the log (append a final record of
/// its own, rule 9) and, once that commits, step down: it is not in the new
/// configuration. Then a member of the new configuration leads, the final
/// configuration is in force on its members, and writes acknowledged before
/// and after stay readable; no term has two leaders.
#[test]
fn a_leader_elected_at_the_joint_stage_finishes_the_change_and_steps_down() {
    let mut s = replace_three_with_four(|_, r| stage(r) == Some("final"));
    change(&mut s.c, 1, 100, &s.target.clone());
    s.c.run(1000);
    let c = &s.c;
    assert!(holds(&c.nodes[&1], "final"), "setup: 1 appended the final record");
    for id in [2, 3, 4] {
        let node = &c.nodes[&id];
        let joint = node.log().values().find(|r| stage(r) == Some("joint")).map(|r| r.seq);
        assert!(
            joint.is_some_and(|s| c.nodes[&1].committed().contains(s)),
            "setup: {id} holds the committed joint record"
        );
        assert!(!holds(node, "final"), "setup: the final record never reached {id}");
    }
    assert!(!acknowledged(c, 100), "setup: the change is not done");

    s.crash_leader(3);
    let inheritor = s.run_until_led(3, 6000);
    s.heal();
    let electorate = s.wire.borrow().electorate(inheritor);
    let joint_rec = s.c.nodes[&3].log().values().find(|r| stage(r) == Some("joint")).cloned().unwrap();
    let joint = joint_rec.cmd.as_ref().and_then(|c| c.config_value()).cloned().unwrap();
    assert!(joint.is_quorum_of_ids(electorate.iter().copied()), "3 has a joint quorum: {electorate:?}");
    assert!(run_until(&mut s.c, 3000, |c| c.nodes[&3].role() != Role::Leader), "3 steps down once the change is done");
    let finished = s.c.nodes[&2].log().values().find(|r| stage(r) == Some("final")).cloned();
    assert_eq!(finished.and_then(|r| r.author), Some(inheritor), "the final record in force is 3's");
    assert_eq!(*s.c.nodes[&3].config(), s.target, "3 knows it was removed");
    s.check_converged();
}

/// An inherited change whose joint record never committed. Old {1,2,3},
/// new {1,2,4}: the joint record reaches only the newcomer 4, so it cannot
/// commit, and 1 crashes. 2 is elected by 3 without it (a quorum of the old
/// configuration, which is the newest either of them holds): the joint
/// record is not in its base, the change is back at the learners stage, and
/// 2 must redo it — 4's stale joint record is dropped when it adopts 2 —
/// until the final configuration is in force.
#[test]
fn a_joint_record_that_never_committed_is_redone_by_the_next_leader() {
    let mut s = replace_three_with_four(|to, r| stage(r) == Some("joint") && to != 4);
    change(&mut s.c, 1, 100, &s.target.clone());
    s.c.run(1000);
    let c = &s.c;
    let stale = c.nodes[&4].log().values().find(|r| stage(r) == Some("joint")).cloned();
    let stale = stale.expect("setup: 4 holds the joint record");
    assert!(!c.nodes[&1].committed().contains(stale.seq), "setup: the joint record did not commit");
    assert!(!holds(&c.nodes[&2], "joint") && !holds(&c.nodes[&3], "joint"), "setup: only 1 and 4 hold it");
    assert!(!holds(&c.nodes[&1], "final"), "setup: no final record was appended");

    s.crash_leader(2);
    let won = s.run_until_led(2, 6000);
    let electorate = s.wire.borrow().electorate(won);
    assert!(!electorate.contains(&4), "setup: 2 won without 4, the only member holding the joint record");
    assert!(majority(&[1, 2, 3]).is_quorum_of_ids(electorate.iter().copied()), "2 has an old quorum: {electorate:?}");
    let redone = s.c.nodes[&2].log().values().find(|r| stage(r) == Some("joint")).cloned();
    assert_eq!(redone.and_then(|r| r.author), Some(won), "2 redid the joint stage itself");
    s.heal();
    s.check_converged();
    let redone = s.c.nodes[&4].log().values().find(|r| stage(r) == Some("joint")).cloned().unwrap();
    assert_ne!(redone.author, stale.author, "4 dropped the joint record that never committed");
}

/// A member holding the final record but not the joint one. Old {1,2,3},
/// new {1,2,4}. The joint record never reaches 3 or 4; it reaches 2 only
/// after a few writes (`m*`) have been appended behind it, and then 1
/// appends the final record and more writes (`l*`), which never reach 2.
/// They commit with 1 and 4 (a quorum of the final configuration), so 4 is
/// in the final configuration without the joint record, 2 is in the joint
/// one, and 3, no longer replicated to, still holds the learners stage (old
/// quorums). 1 crashes. 3's log reaches as far as 2's, so 2 grants 3: {2,3}
/// is a quorum of 3's own configuration, but the joint record in 2's reply
/// makes the merged configuration joint, which needs 4 — and 4, whose log is
/// longer, refuses. 3 must not win: its base would miss the final record and
/// the `l*` writes. 4 then wins under the final configuration with 2's vote,
/// learns the joint record from 2's reply, and every acknowledged write
/// reads back from it. 3 is out of the final configuration and stays behind.
#[test]
fn a_member_with_the_final_record_but_not_the_joint_one() {
    let gate = Rc::new(Cell::new(true));
    let held_back = gate.clone();
    let mut s = replace_three_with_four(move |to, r| match stage(r) {
        Some("joint") => to != 2 || held_back.get(),
        Some("final") => to == 2,
        _ => to == 2 && is_write_on(r, "l"),
    });
    change(&mut s.c, 1, 100, &s.target.clone());
    assert!(run_until(&mut s.c, 3000, |c| holds(&c.nodes[&1], "joint")), "setup: 1 reached the joint stage");
    let mid = writes("m", 20..23);
    write_all(&mut s.c, &mid);
    s.c.run(300);
    assert!(!holds(&s.c.nodes[&1], "final"), "setup: no joint quorum holds the joint record yet");
    gate.set(false);
    s.c.run(500);
    assert!(acknowledged(&s.c, 100), "setup: the change completed: {:?}", s.c.replies.get(&100));
    let late = writes("l", 30..33);
    write_all(&mut s.c, &late);
    s.c.run(300);
    assert!(mid.iter().chain(&late).all(|(r, _)| acknowledged(&s.c, *r)), "setup: m* and l* are acknowledged");
    let c = &s.c;
    let (two, three, four) = (&c.nodes[&2], &c.nodes[&3], &c.nodes[&4]);
    assert!(holds(four, "final") && !holds(four, "joint"), "setup: 4 holds the final record, not the joint one");
    assert_eq!(*four.config(), s.target, "setup: so the final configuration is in force on 4");
    assert!(holds(two, "joint") && !holds(two, "final"), "setup: 2 holds the joint record, not the final one");
    assert!(!holds(three, "joint") && three.config().learners.contains_key(&4), "setup: 3 is at the learners stage");
    assert!(three.accepted().len() >= two.accepted().len(), "setup: 3's log reaches as far as 2's");
    assert!(four.accepted().len() > two.accepted().len(), "setup: 4's log is longer than 2's");

    s.crash_leader(3);
    s.c.run(3000);
    let w = s.wire.borrow();
    let granted_3 = w.grants.iter().any(|(b, ids)| b.id == 3 && ids.contains(&2));
    assert!(granted_3, "setup: 2 granted 3 (grants: {:?})", w.grants);
    drop(w);
    assert_eq!(s.led(3), None, "3 won with {{2,3}}, a quorum of the learners stage but not of the merged joint one");

    s.campaigner.set(Some(4));
    let won = s.run_until_led(4, 6000);
    let electorate = s.wire.borrow().electorate(won);
    assert!(s.target.is_quorum_of_ids(electorate.iter().copied()), "4 has a final quorum: {electorate:?}");
    assert_eq!(*s.c.nodes[&4].config(), s.target, "4 leads in the final configuration");
    assert!(holds(&s.c.nodes[&4], "joint"), "4 merged the joint record from 2's reply");
    s.before.extend(mid);
    s.before.extend(late);
    s.heal();
    s.check_converged();
    assert!(holds(&s.c.nodes[&2], "final"), "2 caught up with the final record");
}

/// A config record in a snapshot's out-of-order applied tail (issue #10's
/// neighbour). Five members: 1 leads, 2 compacts everything it applies, 3
/// is the hub of the old quorums ({1,3} {2,3} {3,4} {1,2,4}), 5 joins. The
/// change to a majority of all five appends the learners record at 31 and
/// the joint record at 32. 2 never gets `set k 1` at 30 nor the joint
/// record; `set k 2` at 33 commits and overrides 30, so on 2 the learners
/// record applies ahead of 30 (a config record's dependency that a held
/// committed record overrides is satisfied, apply.rs) while 33 waits for
/// the joint record: 2's applied set is [0, 30) plus 31. 3 never gets seq
/// 10, so once 1 crashes and 3 campaigns, it must install 2's snapshot —
/// whose tail is the learners record. Then 4, which never got the learners
/// record, campaigns; only 3 answers it, and what 4 learns of the
/// configuration comes from 3's reply. 3's `Accepted` claims 31, so its
/// reply must carry the record: 4 must lead at the learners stage with the
/// record in its log, finish the change, and lose nothing committed.
#[test]
fn a_config_record_in_a_snapshot_tail_reaches_the_next_leader() {
    let (a, b, v, cand, learner) = (1, 2, 3, 4, 5);
    let (x, h, learners_seq) = (10, 30, 31);
    let quorums = [vec![1, 3], vec![2, 3], vec![3, 4], vec![1, 2, 4]];
    let hub = ClusterConfig::custom((1..=4).map(|id| (id, addr(id))), quorums).unwrap();
    let target = majority(&[1, 2, 3, 4, 5]);
    let mut c = cluster(&[a, b, v, cand], &hub, |id, o| {
        if id == b {
            o.snapshot_every = 5;
            o.compact_retain = 0;
        }
    });
    c.run(3000);
    assert_eq!(c.leader(), Some(a), "setup: member 1 campaigned first");
    join(&mut c, learner, Options::new(learner));

    // Phase 2: only 3 campaigns. Phase 3: only 4 campaigns, and 2 and 4
    // cannot talk, so the learners record can reach 4 only through 3.
    let wire: Seen = Rc::default();
    let phase = Rc::new(Cell::new(1));
    let p = phase.clone();
    c.filter = watched(&wire, move |from, to, m| match m {
        Message::Forward(f) if from == a => {
            f.logs.retain(|r| {
                let lost = match stage(r) {
                    Some("learners") => to == cand,
                    Some("joint") => to != learner,
                    _ => (r.seq == x && to == v) || (r.seq == h && to == b),
                };
                !lost
            });
            false
        }
        Message::Vote(_) if p.get() == 2 => from != v,
        Message::Vote(_) if p.get() == 3 => from != cand,
        _ => p.get() == 3 && [(b, cand), (cand, b)].contains(&(from, to)),
    });
    let before = writes("p", 0..30);
    write_all(&mut c, &before);
    c.run(500);
    for (r, _) in &before {
        assert_eq!(c.acknowledged_seq(*r), Some(*r as i64), "setup: request {r} took seq {r}");
    }
    c.propose(1030, &["set", "k", "1"]);
    c.run(300);
    assert_eq!(c.acknowledged_seq(1030), Some(h));
    change(&mut c, a, 100, &target);
    assert!(run_until(&mut c, 3000, |c| holds(&c.nodes[&a], "joint")), "setup: 1 reached the joint stage");
    c.propose(1033, &["set", "k", "2"]);
    c.run(500);
    let lead = &c.nodes[&a];
    let k2 = |r: &&Record| r.seq > h && is_write_on(r, "k");
    let set_k2 = lead.log().values().find(k2).expect("setup: `set k 2` has a seq").seq;
    // It waits for the joint record to apply, so it is committed, not
    // acknowledged: still, no later leader may lose it.
    assert!(lead.committed().contains(set_k2), "setup: `set k 2` committed");
    let joint_seq = lead.log().values().find(|r| stage(r) == Some("joint")).unwrap().seq;
    assert_eq!(lead.log()[&learners_seq].cmd.as_ref().map(|c| c.key.as_str()), Some("learners"));
    assert!(joint_seq < set_k2 && !lead.committed().contains(joint_seq), "setup: the joint record cannot commit");
    let src = &c.nodes[&b];
    let applied = src.applied();
    assert!(applied.prefix_len() == h && applied.contains(learners_seq), "setup: 2's tail is 31: {applied}");
    assert!(src.compacted_below() > x, "setup: 2 compacted past {x}: {}", src.compacted_below());
    assert!(!holds(&c.nodes[&cand], "learners"), "setup: 4 never got the learners record");
    assert_eq!(c.nodes[&v].accepted().prefix_len(), x, "setup: 3 lacks {x}");

    c.nodes.remove(&a);
    phase.set(2);
    assert!(run_until(&mut c, 6000, |c| c.nodes[&v].stats().snapshots_installed > 0), "3 installs 2's snapshot");
    assert!(c.nodes[&v].role() != Role::Leader, "setup: 3 gave up its candidacy to install");
    phase.set(3);
    let w = wire.clone();
    let led = move |_: &Cluster| w.borrow().leaders.values().any(|ids| ids.contains(&cand));
    assert!(run_until(&mut c, 6000, led), "4 is elected");
    let term = *wire.borrow().leaders.iter().find(|(_, ids)| ids.contains(&cand)).unwrap().0;
    let electorate = wire.borrow().electorate(LeaderId::new(term, cand));
    assert!(!electorate.contains(&b), "setup: 4 won without 2: {electorate:?}");
    assert!(hub.is_quorum_of_ids(electorate.iter().copied()), "4 has a quorum: {electorate:?}");
    let rec = c.nodes[&cand].log().get(&learners_seq).cloned();
    assert_eq!(rec.as_ref().and_then(stage), Some("learners"), "4 holds the learners record, from 3's reply");

    c.filter = watched(&wire, move |_, _, _| false);
    let done = run_until(&mut c, 10_000, |c| c.leader().is_some() && c.nodes.values().all(|n| *n.config() == target));
    let configs: Vec<String> = c.nodes.values().map(|n| format!("{}: {}", n.id(), n.config())).collect();
    assert!(done, "the change was finished: {configs:?}");
    let leader = c.leader().unwrap();
    read_back(&mut c, leader, &before, 9000);
    assert_eq!(c.read(leader, 9999, "k"), Some(Value::Vi64(2)), "`set k 2` is there");
    c.run(1000);
    for id in [b, v, learner] {
        assert_eq!(c.nodes[&id].kv(), c.nodes[&leader].kv(), "{id} converges to the leader's state");
    }
    wire.borrow().assert_one_leader_per_term();
}

/// A member removed while cut off still thinks it belongs (it never got
/// the records that removed it) and campaigns. The members that remain
/// refuse it as removed, before any other check (even with no lease to
/// protect): it must not lead the cluster it left. A newcomer the voters
/// have not heard of yet is not taken for a removed member.
#[test]
fn a_removed_member_that_missed_its_removal_is_refused_as_removed() {
    let three = majority(&[1, 2, 3]);
    let mut c = cluster(&[1, 2, 3], &three, |_, _| {});
    c.run(1000);
    assert_eq!(c.nodes[&1].role(), Role::Leader, "setup: 1 leads");
    c.filter = Box::new(|from, to, _| from == 3 || to == 3);
    let two = majority(&[1, 2]);
    change(&mut c, 1, 100, &two);
    assert!(run_until(&mut c, 5000, |c| acknowledged(c, 100)), "the change to {{1, 2}} completes without 3");
    assert_eq!(*c.nodes[&2].config(), two, "setup: 2 has {{1, 2}} in force");
    assert_eq!(*c.nodes[&3].config(), three, "setup: 3 never heard of its removal");

    let now = c.now + 10_000_000_000;
    let voter = c.nodes.get_mut(&2).unwrap();
    let reply = story::ask_vote(voter, now, LeaderId::new(99, 3));
    assert!(!reply.granted);
    assert_eq!(reply.refusal, traftctl::pb::VoteRefusal::Removed as i32, "{reply:?}");
    let stranger = story::ask_vote(voter, now, LeaderId::new(99, 4));
    assert_ne!(stranger.refusal, traftctl::pb::VoteRefusal::Removed as i32, "{stranger:?}");
}

// ---- Aborting a change (docs/protocol.md, "Aborting a change") ----------

fn abort(c: &mut Cluster, leader: NodeId, request: u64) {
    c.nodes.get_mut(&leader).unwrap().abort_change(c.now, request);
    c.collect(leader);
}

fn refused_as_unsafe(c: &Cluster, request: u64) -> String {
    match c.replies.get(&request) {
        Some(ClientReply::Failed(traftctl::errors::TraftError::Unsafe(why))) => why.clone(),
        other => panic!("request {request} was not refused as unsafe: {other:?}"),
    }
}

/// The seqs of the config records `node` holds, with their stage.
fn config_records(node: &Replica) -> Vec<(i64, String)> {
    node.log().values().filter_map(|r| stage(r).map(|s| (r.seq, s.to_string()))).collect()
}

/// A change stuck at the learners stage: member 4 was never started, so it
/// never catches up. The abort puts {1,2,3} back without the learner and is
/// answered once that record commits; the change's own request is told it
/// was aborted. Afterwards the same change, with 4 running, goes through,
/// and every write before and after reads back.
#[test]
fn a_change_stuck_at_the_learners_stage_is_aborted() {
    let old = majority(&[1, 2, 3]);
    let target = majority(&[1, 2, 3, 4]);
    let mut c = cluster(&[1, 2, 3], &old, |_, _| {});
    c.run(3000);
    assert_eq!(c.leader(), Some(1), "setup: member 1 campaigned first");
    let before = writes("p", 0..5);
    write_all(&mut c, &before);
    c.run(300);
    change(&mut c, 1, 100, &target);
    c.run(2000);
    assert!(!c.replies.contains_key(&100), "setup: the change is stuck: {:?}", c.replies.get(&100));
    assert!(c.nodes[&1].config().learners.contains_key(&4), "setup: 4 is a learner");

    abort(&mut c, 1, 200);
    assert!(run_until(&mut c, 2000, |c| acknowledged(c, 200)), "the abort completes: {:?}", c.replies.get(&200));
    assert!(
        matches!(c.replies.get(&100), Some(ClientReply::Failed(traftctl::errors::TraftError::ChangeAborted))),
        "the change's request is told it was aborted: {:?}",
        c.replies.get(&100)
    );
    for id in [1, 2, 3] {
        assert_eq!(*c.nodes[&id].config(), old, "{id} is back in the old configuration, without learners");
    }
    let records = config_records(&c.nodes[&1]);
    assert_eq!(records.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(), ["learners", "final"], "{records:?}");
    let Some(ClientReply::Proposed { seq, .. }) = c.replies.get(&200) else { unreachable!() };
    assert!(c.nodes[&1].committed().contains(*seq), "answered once the way back committed");

    abort(&mut c, 1, 201);
    assert!(
        matches!(c.replies.get(&201), Some(ClientReply::Failed(traftctl::errors::TraftError::Rejected(_)))),
        "nothing left to abort: {:?}",
        c.replies.get(&201)
    );

    join(&mut c, 4, Options::new(4));
    change(&mut c, 1, 101, &target);
    assert!(run_until(&mut c, 5000, |c| acknowledged(c, 101)), "the change, asked again, completes");
    let after = writes("q", 10..15);
    write_all(&mut c, &after);
    c.run(300);
    let all: Vec<(u64, String)> = before.iter().chain(&after).cloned().collect();
    read_back(&mut c, 1, &all, 9000);
    assert_eq!(*c.nodes[&4].config(), target);
}

/// A joint configuration that cannot commit: {1,2,3} to {1,4,5}, where a
/// quorum of the new side needs 4 or 5, and the joint record never reaches
/// either (their machines died after they caught up, as far as the leader
/// can tell). The leader appended the joint record itself and has not seen
/// it commit, so the abort appends {1,2,3} after it, which commits with
/// {1,2,3}: every quorum of the joint configuration contains a quorum of
/// {1,2,3}, so nothing committed under it is lost. The cluster writes on,
/// and once 4 and 5 are back the same change succeeds.
#[test]
fn a_joint_configuration_that_cannot_commit_is_aborted() {
    let old = majority(&[1, 2, 3]);
    let target = majority(&[1, 4, 5]);
    let mut c = cluster(&[1, 2, 3], &old, |_, _| {});
    c.run(3000);
    assert_eq!(c.leader(), Some(1), "setup: member 1 campaigned first");
    join(&mut c, 4, Options::new(4));
    join(&mut c, 5, Options::new(5));
    let before = writes("p", 0..5);
    write_all(&mut c, &before);
    c.run(300);
    let cut = Rc::new(Cell::new(true));
    let cut_now = cut.clone();
    c.filter = Box::new(move |_, to, m| match m {
        Message::Forward(f) if cut_now.get() && (to == 4 || to == 5) => {
            f.logs.retain(|r| stage(r) != Some("joint"));
            false
        }
        _ => false,
    });
    change(&mut c, 1, 100, &target);
    assert!(run_until(&mut c, 3000, |c| holds(&c.nodes[&1], "joint")), "setup: 1 reached the joint stage");
    c.run(1000);
    let joint_seq = c.nodes[&1].log().values().find(|r| stage(r) == Some("joint")).unwrap().seq;
    assert!(!c.nodes[&1].committed().contains(joint_seq), "setup: the joint record cannot commit");
    assert!(!c.replies.contains_key(&100), "setup: the change is stuck");

    abort(&mut c, 1, 200);
    assert!(run_until(&mut c, 2000, |c| acknowledged(c, 200)), "the abort completes: {:?}", c.replies.get(&200));
    assert!(matches!(c.replies.get(&100), Some(ClientReply::Failed(traftctl::errors::TraftError::ChangeAborted))));
    let records = config_records(&c.nodes[&1]);
    let stages: Vec<&str> = records.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(stages, ["learners", "joint", "final"], "the way back follows the joint record: {records:?}");
    for id in [1, 2, 3] {
        assert_eq!(*c.nodes[&id].config(), old, "{id} is back in {{1,2,3}}");
    }
    let during = writes("q", 10..15);
    write_all(&mut c, &during);
    c.run(300);
    assert!(during.iter().all(|(r, _)| acknowledged(&c, *r)), "{{1,2,3}} commits alone again");

    cut.set(false);
    change(&mut c, 1, 101, &target);
    let done = run_until(&mut c, 8000, |c| acknowledged(c, 101));
    assert!(done, "the change, asked again, completes: {:?}", c.replies.get(&101));
    let leader = run_until(&mut c, 5000, |c| c.leader().is_some_and(|l| target.members.contains_key(&l)));
    assert!(leader, "a member of {{1,4,5}} leads");
    let leader = c.leader().unwrap();
    let all: Vec<(u64, String)> = before.iter().chain(&during).cloned().collect();
    read_back(&mut c, leader, &all, 9000);
}

/// Once the joint record committed, the change can only go forward: a
/// final record may follow it, and members of the new configuration could
/// then decide without the old one. {1,2,3} to {1,2,4}: the joint record
/// commits with 1 and 2, but a write below it (`x`) reaches nobody, so no
/// quorum of the joint configuration holds the whole log up to it and the
/// final record waits. The abort is refused as unsafe, naming the commit,
/// and appends nothing; when `x` gets through, the change completes.
#[test]
fn an_abort_is_refused_once_the_joint_configuration_committed() {
    let mut c = cluster(&[1, 2, 3], &majority(&[1, 2, 3]), |_, _| {});
    c.run(3000);
    assert_eq!(c.leader(), Some(1), "setup: member 1 campaigned first");
    join(&mut c, 4, Options::new(4));
    let target = majority(&[1, 2, 4]);
    let hold_x = Rc::new(Cell::new(true));
    let hold = hold_x.clone();
    c.filter = Box::new(move |_, _, m| match m {
        Message::Forward(f) if hold.get() => {
            f.logs.retain(|r| !is_write_on(r, "x"));
            false
        }
        _ => false,
    });
    c.propose(50, &["set", "x", "1"]);
    c.run(300);
    change(&mut c, 1, 100, &target);
    assert!(run_until(&mut c, 3000, |c| holds(&c.nodes[&1], "joint")), "setup: 1 reached the joint stage");
    c.run(1000);
    let lead = &c.nodes[&1];
    let joint_seq = lead.log().values().find(|r| stage(r) == Some("joint")).expect("setup: a joint record").seq;
    let x_seq = lead.log().values().find(|r| is_write_on(r, "x")).expect("setup: x has a seq").seq;
    assert!(x_seq < joint_seq, "setup: x ({x_seq}) comes before the joint record ({joint_seq})");
    assert!(lead.committed().contains(joint_seq), "setup: the joint record committed");
    assert!(!holds(lead, "final"), "setup: the final record waits for x");

    let records = config_records(&c.nodes[&1]);
    abort(&mut c, 1, 200);
    let why = refused_as_unsafe(&c, 200);
    assert!(why.contains("committed"), "the reason names the commit: {why}");
    assert_eq!(config_records(&c.nodes[&1]), records, "a refused abort appends nothing");

    hold_x.set(false);
    assert!(run_until(&mut c, 5000, |c| acknowledged(c, 100)), "the change completes: {:?}", c.replies.get(&100));
    assert_eq!(*c.nodes[&1].config(), target);
}

/// A joint record in the new leader's base came from an earlier leader,
/// which may have seen it commit and appended a final record somewhere:
/// the new leader must not go back. {1,2,3} to {1,2,4}; the joint record
/// reaches only 3, so it never committed; 1 crashes and 3 is elected with
/// the votes of 2 and 4 (a quorum of each side). 2 and 4 acknowledge 3 but
/// never get the joint record, so they cannot adopt it and the change
/// cannot move on. 3 holds a lease, the joint record is uncommitted as far
/// as it knows — and still the abort is refused, because 3 did not append
/// it.
#[test]
fn an_inherited_joint_configuration_cannot_be_aborted() {
    let mut s = replace_three_with_four(|to, r| stage(r) == Some("joint") && to != 3);
    let target = s.target.clone();
    change(&mut s.c, 1, 100, &target);
    s.c.run(1000);
    let joint = s.c.nodes[&3].log().values().find(|r| stage(r) == Some("joint")).cloned();
    let joint = joint.expect("setup: 3 holds the joint record");
    assert!(!s.c.nodes[&1].committed().contains(joint.seq), "setup: the joint record did not commit");

    s.crash_leader(3);
    // The joint record keeps not reaching 2 and 4, from 3 now: forwards
    // that carry it are lost, the others (heartbeats) get through.
    let wire = s.wire.clone();
    s.c.filter = watched(&wire, move |from, to, m| match m {
        Message::Forward(f) if to == 2 || to == 4 => f.logs.iter().any(|r| stage(r) == Some("joint")),
        Message::Vote(_) => from != 3,
        _ => false,
    });
    let won = s.run_until_led(3, 6000);
    s.c.run(500);
    let three = &s.c.nodes[&3];
    assert_eq!(three.leader_ballot(), Some(won), "setup: 3 still leads");
    assert!(three.lease_end().is_some(), "setup: 3 holds a lease");
    assert!(!three.committed().contains(joint.seq), "setup: 3 has not seen the joint record commit");
    assert_ne!(joint.author, Some(won), "setup: an earlier leader appended it");

    let records = config_records(&s.c.nodes[&3]);
    abort(&mut s.c, 3, 200);
    let why = refused_as_unsafe(&s.c, 200);
    assert!(why.contains("earlier leader"), "the reason names the earlier leader: {why}");
    assert_eq!(config_records(&s.c.nodes[&3]), records, "a refused abort appends nothing");
}
