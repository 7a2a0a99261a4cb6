//! The simulated network between replicas: delay, loss, duplication,
//! reordering and partitions, all drawn from the run's seed.
//!
//! Reordering needs no mechanism of its own: every copy of a message gets its
//! own delay, so a later message often arrives first. Partitions are a set of
//! blocked directed links, checked when a message *arrives*, so messages in
//! flight when a partition starts are lost as they would be on a real cut.

use std::collections::BTreeSet;

use traftctl::replica::{Message, NodeId};

use crate::rng::Rng;

/// One message on the wire.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub from: NodeId,
    pub to: NodeId,
    pub msg: Message,
    /// True time of sending, for the trace.
    pub sent_at_ns: u64,
}

/// Decides that a message is lost, before any random fault. Scripted
/// scenarios use it to drop exactly the messages a story needs dropped.
pub type DropFilter = Box<dyn FnMut(&Envelope) -> bool>;

#[derive(Debug, Clone)]
pub struct NetParams {
    pub delay_min_ns: u64,
    pub delay_max_ns: u64,
    /// Odds that one copy takes a long detour: the way old messages come back
    /// long after their sender moved on.
    pub long_delay_ppm: u64,
    pub long_delay_max_ns: u64,
    pub drop_ppm: u64,
    pub dup_ppm: u64,
}

impl NetParams {
    /// A fault-free network with short delays, for scripted scenarios and for
    /// the liveness phase.
    pub fn calm() -> Self {
        NetParams {
            delay_min_ns: 100_000,
            delay_max_ns: 2_000_000,
            long_delay_ppm: 0,
            long_delay_max_ns: 0,
            drop_ppm: 0,
            dup_ppm: 0,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct NetStats {
    pub sent: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub cut: u64,
}

pub struct Network {
    pub params: NetParams,
    /// Directed links `(from, to)` that lose everything.
    blocked: BTreeSet<(NodeId, NodeId)>,
    pub drop_filter: Option<DropFilter>,
    pub stats: NetStats,
    rng: Rng,
}

impl Network {
    pub fn new(params: NetParams, rng: Rng) -> Self {
        Network { params, blocked: BTreeSet::new(), drop_filter: None, stats: NetStats::default(), rng }
    }

    /// The delays after which copies of `env` arrive: none when it is lost,
    /// two when it is duplicated.
    pub fn route(&mut self, env: &Envelope) -> Vec<u64> {
        self.stats.sent += 1;
        if let Some(filter) = self.drop_filter.as_mut()
            && filter(env)
        {
            self.stats.dropped += 1;
            return Vec::new();
        }
        if self.rng.chance_ppm(self.params.drop_ppm) {
            self.stats.dropped += 1;
            return Vec::new();
        }
        let copies = if self.rng.chance_ppm(self.params.dup_ppm) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        (0..copies).map(|_| self.delay_ns()).collect()
    }

    /// One copy's delay. Also used for client traffic, which is never lost:
    /// a client that loses its request cannot tell it from a timeout, and
    /// timeouts are exercised anyway.
    pub fn delay_ns(&mut self) -> u64 {
        let p = &self.params;
        if p.long_delay_ppm > 0 && self.rng.chance_ppm(p.long_delay_ppm) {
            return self.rng.range(p.delay_max_ns, p.long_delay_max_ns.max(p.delay_max_ns));
        }
        self.rng.range(p.delay_min_ns, p.delay_max_ns)
    }

    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.contains(&(from, to))
    }

    pub fn note_cut(&mut self) {
        self.stats.cut += 1;
    }

    /// Cuts every link between `side` and the other nodes; `one_way` cuts
    /// only the links out of `side`, the asymmetric failure that lets a node
    /// hear the cluster but not be heard.
    pub fn partition(&mut self, all: &[NodeId], side: &BTreeSet<NodeId>, one_way: bool) {
        for &a in side {
            for &b in all.iter().filter(|b| !side.contains(b)) {
                self.blocked.insert((a, b));
                if !one_way {
                    self.blocked.insert((b, a));
                }
            }
        }
    }

    pub fn cut_links(&mut self, links: &[(NodeId, NodeId)]) {
        self.blocked.extend(links.iter().copied());
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    pub fn describe_cuts(&self) -> String {
        if self.blocked.is_empty() {
            return "none".to_string();
        }
        let parts: Vec<String> = self.blocked.iter().map(|(a, b)| format!("{a}->{b}")).collect();
        parts.join(" ")
    }
}
