//! The story harness: a tiny, perfect network where every message is
//! delivered in order and every write is durable at once, with a filter to
//! drop or edit single messages. Shared by the story test crates.

#![allow(dead_code)] // each story crate uses a different part

use std::collections::{BTreeMap, VecDeque};

use traftctl::pb::cmd::Value;
use traftctl::pb::{ClusterConfig, Cmd, LeaderId, TailBitmap, VoteReply, VoteReq};
use traftctl::replica::{Action, ClientReply, DurableState, Message, NodeId, Options, ReadConsistency, Replica, Role};

pub const MS: u64 = 1_000_000;

/// Drops a message when it returns true; may also edit it in flight (strip
/// single records from a forward, as a lossy path to one member would).
pub type DropFilter = Box<dyn FnMut(NodeId, NodeId, &mut Message) -> bool>;

pub struct Cluster {
    pub now: u64,
    pub nodes: BTreeMap<NodeId, Replica>,
    pub disks: BTreeMap<NodeId, DurableState>,
    pub queue: VecDeque<(NodeId, NodeId, Message)>,
    pub replies: BTreeMap<u64, ClientReply>,
    pub filter: DropFilter,
}

/// Where member `id` listens in a story (nothing listens: the harness
/// delivers messages itself).
pub fn addr(id: NodeId) -> String {
    format!("127.0.0.1:{}", 7000 + id)
}

pub fn majority(ids: &[NodeId]) -> ClusterConfig {
    ClusterConfig::majority(ids.iter().map(|&id| (id, addr(id)))).unwrap()
}

impl Cluster {
    pub fn new(n: i64) -> Self {
        Cluster::with_each(n, |_, _| {})
    }

    /// A cluster whose members all run with `edit`ed options.
    pub fn with(n: i64, edit: impl Fn(&mut Options)) -> Self {
        Cluster::with_each(n, |_, opts| edit(opts))
    }

    /// Members 1..=n of a majority configuration, each with its options
    /// `edit`ed by id.
    pub fn with_each(n: i64, edit: impl Fn(NodeId, &mut Options)) -> Self {
        let ids: Vec<NodeId> = (1..=n).collect();
        Cluster::from_config(&ids, &majority(&ids), edit)
    }

    /// `ids`, all starting from `config`, each with its options `edit`ed.
    pub fn from_config(ids: &[NodeId], config: &ClusterConfig, edit: impl Fn(NodeId, &mut Options)) -> Self {
        let nodes = ids
            .iter()
            .map(|&id| {
                let mut opts = Options::new(id);
                edit(id, &mut opts);
                (id, Replica::new(opts, config.clone(), None, 0))
            })
            .collect();
        Cluster {
            now: 0,
            nodes,
            disks: BTreeMap::new(),
            queue: VecDeque::new(),
            replies: BTreeMap::new(),
            filter: Box::new(|_, _, _| false),
        }
    }

    pub fn collect(&mut self, id: NodeId) {
        let actions = self.nodes.get_mut(&id).unwrap().take_actions();
        let mut durable = 0;
        let mut saved = Vec::new();
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
                // Saved at once, like the writes here.
                Action::SaveSnapshot { id: save, .. } => saved.push(save),
                Action::Event(_) => {}
            }
        }
        if durable > 0 {
            self.nodes.get_mut(&id).unwrap().persisted(self.now, durable);
        }
        for save in &saved {
            self.nodes.get_mut(&id).unwrap().snapshot_saved(self.now, *save);
        }
        if durable > 0 || !saved.is_empty() {
            self.collect(id);
        }
    }

    /// Delivers messages and ticks until nothing is left to say.
    pub fn run(&mut self, duration_ms: u64) {
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

    pub fn leader(&self) -> Option<NodeId> {
        self.nodes.values().find(|n| n.role() == Role::Leader).map(|n| n.id())
    }

    /// The seq a proposal got, once it was acknowledged.
    pub fn acknowledged_seq(&self, request: u64) -> Option<i64> {
        match self.replies.get(&request) {
            Some(ClientReply::Proposed { seq, .. }) => Some(*seq),
            _ => None,
        }
    }

    /// A linearizable read on `node`, answered within a second.
    pub fn read(&mut self, node: NodeId, request: u64, key: &str) -> Option<Value> {
        self.nodes.get_mut(&node).unwrap().read(self.now, request, key, ReadConsistency::Linearizable);
        self.collect(node);
        self.run(1000);
        match self.replies.get(&request) {
            Some(ClientReply::Read { value }) => value.clone(),
            other => panic!("read of {key} on {node}: {other:?}"),
        }
    }

    pub fn propose(&mut self, request: u64, words: &[&str]) {
        let leader = self.leader().expect("a leader");
        let cmd = Cmd::parse_words(words).unwrap();
        self.nodes.get_mut(&leader).unwrap().propose(self.now, request, cmd);
        self.collect(leader);
    }
}

/// Asks `voter` for a vote for `candidate` and returns its answer.
pub fn ask_vote(voter: &mut Replica, now: u64, candidate: LeaderId) -> VoteReply {
    let req = VoteReq {
        candidate: Some(candidate),
        committer: None,
        accepted: Some(TailBitmap::empty()),
        ..Default::default()
    };
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
