//! Faults as a feature: an in-process TCP proxy for member-to-member links
//! whose faults can be changed while it runs.
//!
//! Every ordered link (member `i` dialing member `j`) gets its own listener,
//! which forwards to `j`'s real address, so faults can differ per direction
//! and a partition can cut `i -> j` and `j -> i`. A link carries both
//! directions of its connections' bytes (requests and their replies), and
//! every fault applies to both. The faults ([`spec`]):
//!
//! * `delay=5ms`: each chunk of bytes is forwarded no earlier than its
//!   arrival plus the delay, in order;
//! * `jitter=2ms`: the delay is drawn from `[delay, delay + jitter]` per
//!   chunk, but a chunk never overtakes the one before it, as in TCP;
//! * `drop=1%`: each forwarded chunk, with that probability, resets its
//!   connection (both sides get RST): what a lossy path does to a TCP
//!   stream, which cannot skip a lost segment;
//! * `reset-every=200ms`: every connection of the link is reset at that
//!   period (counted from when the faults were set);
//! * `partition=1|2,3[@10s]`: no connection between members of different
//!   groups: new ones are reset at once and existing ones are reset. With
//!   `@10s` it heals by itself that long after it was set;
//! * `blackhole`: like a host whose packets vanish. Connections stay open but
//!   no byte crosses either way; new connections are accepted (the kernel
//!   completes the handshake) but go nowhere. When the blackhole lifts,
//!   traffic resumes where it stopped, as TCP does once its retransmissions
//!   get through; an endpoint that gave up meanwhile (a keep-alive timeout)
//!   has closed its connection, as it would on a real network.
//!
//! `link=1-2` (both directions) or `link=1>2` (one) restricts a spec's
//! faults to those links. Randomness (jitter, drop) comes from a seeded
//! generator, one stream per connection, so the same seed repeats a run's
//! draws for the same connections. Used by `traftctl local-cluster --chaos`,
//! `traftctl node --dial-via` tests, and `examples/fault_proxy.rs`.

mod proxy;
pub mod spec;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use proxy::LinkCounters;
pub use spec::{ACCEPTED, FaultSpec, LinkFaults, LinkFilter, Partition, SpecError, parse_all};

use crate::types::NodeId;
use proxy::{LinkRuntime, SplitMix};

/// Faults that parse but do not fit the proxy's links.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChaosError {
    #[error("`{spec}` names member {id}, which is not in this cluster (members: {known})")]
    UnknownMember { spec: String, id: NodeId, known: String },
    #[error(
        "`{spec}` names members, but these links have none; give each link its ends as \
         --link FROM>TO@LISTEN=TARGET"
    )]
    NoMemberIds { spec: String },
}

/// The proxy and its controller. Clones share it; the links stop when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Chaos {
    inner: Arc<Inner>,
}

struct Inner {
    seed: u64,
    state: Mutex<State>,
}

struct State {
    rules: Vec<FaultSpec>,
    /// Per rule: its timed partition has healed.
    healed: Vec<bool>,
    set_at: Instant,
    /// Bumped by every `set`, so a heal timer of older rules does nothing.
    generation: u64,
    epoch: watch::Sender<Instant>,
    links: Vec<Link>,
    timers: Vec<JoinHandle<()>>,
}

struct Link {
    ends: Option<(NodeId, NodeId)>,
    listen: SocketAddr,
    target: String,
    faults: watch::Sender<LinkFaults>,
    counters: Arc<LinkCounters>,
    task: JoinHandle<()>,
}

/// What `chaos show` prints.
#[derive(Debug, Clone)]
pub struct ChaosStatus {
    pub seed: u64,
    /// The rules in force, canonical, with a timed partition's state.
    pub rules: Vec<String>,
    pub links: Vec<LinkStatus>,
}

#[derive(Debug, Clone)]
pub struct LinkStatus {
    pub ends: Option<(NodeId, NodeId)>,
    pub listen: SocketAddr,
    pub target: String,
    pub faults: LinkFaults,
    pub accepted: u64,
    /// Connections the faults reset (partition, reset-every, drop).
    pub cut: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for link in &state.links {
            link.task.abort();
        }
        for t in &state.timers {
            t.abort();
        }
    }
}

impl Chaos {
    /// A proxy without links or faults. Needs a tokio runtime.
    pub fn new(seed: u64) -> Chaos {
        let (epoch, _) = watch::channel(Instant::now());
        let state = State {
            rules: Vec::new(),
            healed: Vec::new(),
            set_at: Instant::now(),
            generation: 0,
            epoch,
            links: Vec::new(),
            timers: Vec::new(),
        };
        Chaos { inner: Arc::new(Inner { seed, state: Mutex::new(state) }) }
    }

    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Listens on `listen` (port 0: any) and forwards to `target`, under the
    /// faults of the link from `ends.0` to `ends.1` (`None`: a link without
    /// member ids, which only the rules for all links reach). Returns the
    /// address it listens on.
    pub async fn add_link(
        &self,
        ends: Option<(NodeId, NodeId)>,
        listen: SocketAddr,
        target: impl Into<String>,
    ) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let listen = listener.local_addr()?;
        let target = target.into();
        let mut state = self.state();
        let index = state.links.len() as u64;
        let (faults, faults_rx) = watch::channel(spec::effective(&state.rules, &state.healed, ends));
        let counters = Arc::new(LinkCounters::default());
        let runtime = Arc::new(LinkRuntime {
            target: target.clone(),
            faults: faults_rx,
            epoch: state.epoch.subscribe(),
            seed: SplitMix::new(self.inner.seed).fork(index).next_u64(),
            counters: counters.clone(),
        });
        let task = tokio::spawn(proxy::serve_link(listener, runtime));
        state.links.push(Link { ends, listen, target, faults, counters, task });
        Ok(listen)
    }

    /// Replaces the faults with `rules` (empty: none), checking that every
    /// member they name has a link.
    pub fn set(&self, rules: Vec<FaultSpec>) -> Result<(), ChaosError> {
        let mut state = self.state();
        let known: std::collections::BTreeSet<NodeId> =
            state.links.iter().filter_map(|l| l.ends).flat_map(|(a, b)| [a, b]).collect();
        for rule in &rules {
            let spec = rule.to_string();
            if let Some(&id) = rule.member_ids().iter().find(|id| !known.contains(id)) {
                if known.is_empty() {
                    return Err(ChaosError::NoMemberIds { spec });
                }
                let known = known.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
                return Err(ChaosError::UnknownMember { spec, id, known });
            }
        }
        for t in state.timers.drain(..) {
            t.abort();
        }
        state.generation += 1;
        state.set_at = Instant::now();
        state.healed = vec![false; rules.len()];
        let generation = state.generation;
        for (i, rule) in rules.iter().enumerate() {
            if let Some(after) = rule.partition.as_ref().and_then(|p| p.heal_after) {
                let inner = Arc::downgrade(&self.inner);
                state.timers.push(tokio::spawn(heal_later(inner, generation, i, after)));
            }
        }
        state.rules = rules;
        let now = state.set_at;
        state.epoch.send_replace(now);
        publish(&state);
        Ok(())
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.set(Vec::new()).expect("no rules name no members");
    }

    pub fn status(&self) -> ChaosStatus {
        let state = self.state();
        let elapsed = state.set_at.elapsed();
        let rules = state
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| match r.partition.as_ref().and_then(|p| p.heal_after) {
                Some(_) if state.healed.get(i).copied().unwrap_or(false) => format!("{r} (healed)"),
                Some(after) => {
                    let left = after.saturating_sub(elapsed);
                    format!("{r} (heals in {:.1}s)", left.as_secs_f64())
                }
                None => r.to_string(),
            })
            .collect();
        let links = state
            .links
            .iter()
            .map(|l| {
                let c = &l.counters;
                let cut = c.cut_by_partition.load(Ordering::Relaxed)
                    + c.reset.load(Ordering::Relaxed)
                    + c.dropped.load(Ordering::Relaxed);
                LinkStatus {
                    ends: l.ends,
                    listen: l.listen,
                    target: l.target.clone(),
                    faults: *l.faults.borrow(),
                    accepted: c.accepted.load(Ordering::Relaxed),
                    cut,
                }
            })
            .collect();
        ChaosStatus { seed: self.inner.seed, rules, links }
    }

    /// The counters of the link from `from` to `to`, if it exists.
    pub fn counters(&self, from: NodeId, to: NodeId) -> Option<Arc<LinkCounters>> {
        self.state().links.iter().find(|l| l.ends == Some((from, to))).map(|l| l.counters.clone())
    }

    /// The rules in force, canonical (for a banner).
    pub fn rules(&self) -> Vec<String> {
        self.status().rules
    }
}

fn publish(state: &State) {
    for link in &state.links {
        let faults = spec::effective(&state.rules, &state.healed, link.ends);
        link.faults.send_if_modified(|current| {
            let changed = *current != faults;
            *current = faults;
            changed
        });
    }
}

async fn heal_later(inner: Weak<Inner>, generation: u64, rule: usize, after: Duration) {
    tokio::time::sleep(after).await;
    let Some(inner) = inner.upgrade() else { return };
    let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
    if state.generation != generation {
        return;
    }
    if let Some(h) = state.healed.get_mut(rule) {
        *h = true;
    }
    publish(&state);
}

#[cfg(test)]
mod tests;
