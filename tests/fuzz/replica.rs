//! The replica-level fuzz scenario, shared by `tests/fuzz.rs` (proptest)
//! and the cargo-fuzz target `replica_message`: hostile messages delivered
//! to the members of a three-member cluster on the story harness's
//! perfect network.

#![allow(dead_code)] // each driver uses a different part

use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message as _;
use traftctl::pb::{self, LeaderId, Record};
use traftctl::replica::{ClientReply, Message, NodeId, Role};

use crate::story::Cluster;

/// Hostile messages refused at the boundary (`[0]`) and let through to the
/// protocol (`[1]`), over a whole run.
pub static COUNTS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// One hostile message as delivered: to which member, claimed to be from
/// whom, and whether to aim it (give it the ballot the receiver is working
/// with right now, so it gets past the first "is this about me" checks).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub to: NodeId,
    pub from: NodeId,
    pub aim: bool,
    pub msg: Message,
}

/// The ballot `node` is working with: its own as leader or candidate, its
/// committer's as follower.
fn current_ballot(c: &Cluster, node: NodeId) -> Option<LeaderId> {
    let r = &c.nodes[&node];
    match r.role() {
        Role::Leader | Role::Candidate => r.voted_for(),
        Role::Follower => r.committer(),
    }
}

fn aim(c: &Cluster, d: &mut Delivery) {
    let ballot = current_ballot(c, d.to);
    let committer = c.nodes[&d.to].committer();
    match &mut d.msg {
        Message::Vote(v) => v.committer = committer,
        Message::VoteReply(r) => {
            r.voted_for = ballot;
            r.committer = committer;
        }
        Message::Forward(f) => f.committer = ballot,
        Message::ForwardReply(r) => {
            r.voted_for = ballot;
            r.committer = ballot;
        }
        Message::SnapshotReq(_) | Message::SnapshotChunk(_) => {}
    }
    // A record "by" the current leader: what a confused or forged leader
    // would send.
    let records: &mut Vec<Record> = match &mut d.msg {
        Message::Forward(f) => &mut f.logs,
        Message::VoteReply(r) => &mut r.logs,
        _ => return,
    };
    for rec in records {
        rec.author = ballot;
    }
}

/// A three-member cluster with a leader and some committed writes, then
/// `hostile` delivered among real traffic. The members must not panic and
/// must go on committing real writes once the hostile input stops: a lie
/// that looks like a higher ballot can cost an election, never the cluster.
pub fn replica_under_hostile_input(hostile: Vec<Delivery>) -> Result<(), String> {
    let mut c = Cluster::with(3, |o| {
        o.snapshot_every = 8;
        o.compact_retain = 2;
    });
    c.run(3000);
    if c.leader().is_none() {
        return Err("no leader before the hostile input".into());
    }
    for i in 0..12u64 {
        c.propose(i, &["incr", &format!("k{}", i % 3), "1"]);
    }
    c.run(300);
    for (i, mut d) in hostile.into_iter().enumerate() {
        if d.aim {
            aim(&c, &mut d);
        }
        let node = c.nodes.get_mut(&d.to).unwrap();
        let refused = node.stats().refused_messages;
        node.step(c.now, d.from, d.msg);
        let admitted = node.stats().refused_messages == refused;
        COUNTS[usize::from(admitted)].fetch_add(1, Ordering::Relaxed);
        c.collect(d.to);
        if i % 2 == 1 {
            c.run(20);
        }
    }
    // Liveness afterwards: within a generous bound a leader commits and
    // applies a new write everywhere.
    let mut committed = false;
    for attempt in 0..20u64 {
        c.run(1000);
        if c.leader().is_none() {
            continue;
        }
        let request = 1000 + attempt;
        c.propose(request, &["set", "after", "1"]);
        c.run(500);
        if matches!(c.replies.get(&request), Some(ClientReply::Proposed { .. })) {
            committed = true;
            break;
        }
    }
    if !committed {
        return Err("the cluster stopped committing after the hostile input".into());
    }
    Ok(())
}

/// Deliveries read from fuzzer bytes: per message a target member, a
/// claimed sender, whether to aim it, its kind, and a length-prefixed
/// protobuf encoding (skipped when it does not decode).
pub fn deliveries_from_bytes(mut data: &[u8]) -> Vec<Delivery> {
    let mut out = Vec::new();
    while data.len() >= 4 && out.len() < 16 {
        let (head, rest) = data.split_at(4);
        let len = usize::from(head[3]).min(rest.len());
        let (body, rest) = rest.split_at(len);
        data = rest;
        let msg = match head[2] % 6 {
            0 => pb::VoteReq::decode(body).map(Message::Vote),
            1 => pb::VoteReply::decode(body).map(Message::VoteReply),
            2 => pb::LogForwardReq::decode(body).map(Message::Forward),
            3 => pb::LogForwardReply::decode(body).map(Message::ForwardReply),
            4 => pb::SnapshotReq::decode(body).map(Message::SnapshotReq),
            _ => pb::SnapshotChunk::decode(body).map(Message::SnapshotChunk),
        };
        if let Ok(msg) = msg {
            let from = i64::from(head[1] % 5);
            out.push(Delivery { to: 1 + i64::from(head[0] % 3), from, aim: head[2] & 0x80 != 0, msg });
        }
    }
    out
}

/// The cargo-fuzz entry point: panics when the scenario fails.
pub fn messages_from_bytes(data: &[u8]) {
    if let Err(e) = replica_under_hostile_input(deliveries_from_bytes(data)) {
        panic!("{e}");
    }
}
