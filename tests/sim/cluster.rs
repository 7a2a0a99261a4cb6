//! The simulated cluster: replicas with their own clocks and disks, an event
//! queue in true time, fault injection, and the two phases of a run.
//!
//! Everything random comes from the run's seed, and the event queue is
//! ordered by `(true time, insertion counter)`, so one seed is one run.
//!
//! A run (TigerBeetle style):
//!
//! 1. **Safety phase**: clients write and read while the network drops,
//!    duplicates, delays and partitions, and nodes crash and restart losing
//!    unsynced writes. Every invariant is checked after every step.
//! 2. **Liveness phase**: every node is restarted, partitions heal, the
//!    network stops losing messages and clients stop issuing ops. Before a
//!    deadline the cluster must converge: one leader, every replica adopted
//!    it and applied exactly the leader's `Committed`, equal states, every
//!    client op answered or given up on.
//!
//! Shapes that change membership (`membership.rs`) also run an operator who
//! asks for configuration changes during the safety phase and keeps asking
//! in the liveness phase until all are done. Replicas join (new ids, started
//! knowing the configuration then in force) and leave (shut down for good a
//! while after the change that removed them), so the node set grows during
//! a run; `Node::index` stays valid because nodes are never removed from
//! `Sim::nodes`, only retired. Convergence then also needs every change
//! complete, and counts only the members of the final configuration, each of
//! which must have it in force and committed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use prost::Message as _;
use traftctl::leader_id::short_opt;
use traftctl::pb::{ClusterConfig, Record, TailBitmap, VoteRefusal};
use traftctl::replica::{
    Action, ClientReply, DurableState, DurableWrite, Event, HardState, Message, NodeId, ReadConsistency, Replica,
    RequestId, Seq, clip,
};
use traftctl::snapshot::Snapshot;

use crate::invariants::{Check, Checker, Claim, Failure, vouched_by};
use crate::membership::{ATTEMPT_TIMEOUT_NS, Driver, DriverStats, Outcome, Plan, joined_addr};
use crate::network::{Envelope, NetParams, Network};
use crate::rng::Rng;
use crate::tailhunt::{HuntStats, TailHunt};
use crate::workload::{Effects, Request, Workload, WorkloadParams};

mod convergence;
mod faults;
mod operator;

pub use crate::params::{ALL_SHAPES, Shape, SimParams};
use crate::trace::{TRACE_FIELD, Trace, apply_backlog, apply_cycle_through_config, bm, describe_msg, installed_tails};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// The name of the failure a run reports when a replica is stuck in the
/// apply cycle `apply_cycle_through_config` describes. It was a replica bug
/// (rule 8's config exception covered a missing dependency but not a held
/// one waiting for a missing record), found here and fixed in
/// `config_dep_satisfied`; the detector stays to name it should it return.
pub const APPLY_CYCLE: &str = "apply cycle through a config record";

/// How long after the heal the apply cycle must persist before a run stops
/// early for it. It never resolves, so this only saves simulated time.
const KNOWN_CYCLE_GRACE_NS: u64 = 10 * SEC;

// ---- time ------------------------------------------------------------------

/// A node's monotonic clock: `local = offset + t * (1 + drift)`, `t` true
/// time. The drift stays within what the replicas' assumed clock error
/// covers for the ratio of any two clocks.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub offset_ns: u64,
    pub drift_ppm: i64,
}

impl Clock {
    pub fn local(&self, true_ns: u64) -> u64 {
        let t = i128::from(true_ns);
        let local = i128::from(self.offset_ns) + t + t * i128::from(self.drift_ppm) / 1_000_000;
        local as u64
    }

    /// How much true time passes while this clock advances `local_ns`.
    pub fn true_span(&self, local_ns: u64) -> u64 {
        (i128::from(local_ns) * 1_000_000 / (1_000_000 + i128::from(self.drift_ppm))) as u64
    }
}

// ---- storage ---------------------------------------------------------------

/// One write on its way to the disk.
#[derive(Debug)]
pub struct PendingWrite {
    pub id: u64,
    pub write: DurableWrite,
    /// What the node claimed in memory at the steps this write (with the
    /// ones before it) makes durable; see [`Claim`].
    pub claims: Vec<Claim>,
}

/// A node's disk: what survives a crash, plus the writes not yet synced.
#[derive(Debug, Default)]
pub struct Storage {
    pub hard: HardState,
    pub snapshot: Option<Arc<Snapshot>>,
    pub records: BTreeMap<Seq, Record>,
    /// The durable snapshot's applied set and what the durable records
    /// vouch for (`invariants::vouched_by`: own seq and explicit `Overrides`
    /// bits, never the all-ones prefix): what the node holds for good, as a
    /// record, through an overriding one, or applied.
    pub covered: TailBitmap,
    pub pending: VecDeque<PendingWrite>,
    /// The newest persist id synced in this incarnation.
    pub durable_id: u64,
    /// The disk syncs in order: the next sync cannot finish before this.
    pub busy_until_ns: u64,
}

impl Storage {
    fn apply(&mut self, w: &DurableWrite) {
        let committer_before = self.hard.committer;
        if let Some(h) = &w.hard_state {
            self.hard = h.clone();
        }
        if let Some(snap) = &w.snapshot {
            self.snapshot = Some(snap.clone());
        }
        // Delete, then put: the order `src/storage` applies a write in, so a
        // seq a step dropped and then held again survives.
        for s in &w.delete {
            self.records.remove(s);
        }
        for r in &w.put {
            self.records.insert(r.seq, r.clone());
        }
        let covered = &mut self.covered;
        if w.delete.is_empty() && w.snapshot.is_none() && committer_before == self.hard.committer {
            w.put.iter().flat_map(vouched_by).for_each(|s| covered.set(s));
        } else {
            *covered = self.snapshot.as_ref().map(|s| s.applied.clone()).unwrap_or_default();
            self.records.values().flat_map(vouched_by).for_each(|s| covered.set(s));
        }
    }

    /// What a restart reads. With `drop_covered`, like a storage that keeps
    /// only what its snapshot does not speak for (`src/storage` may), the
    /// records at seqs the snapshot applied are left out.
    fn durable_state(&self, drop_covered: bool) -> DurableState {
        let applied = self.snapshot.as_ref().map(|s| &s.applied);
        let kept = |r: &&Record| !(drop_covered && applied.is_some_and(|a| a.contains(r.seq)));
        DurableState {
            hard_state: self.hard.clone(),
            snapshot: self.snapshot.clone(),
            records: self.records.values().filter(kept).cloned().collect(),
        }
    }
}

// ---- nodes -----------------------------------------------------------------

/// A message or client reply held until the write it depends on is synced.
#[derive(Debug)]
enum Held {
    Send { to: NodeId, msg: Message, after: u64 },
    Reply { request: RequestId, reply: ClientReply, after: u64 },
}

impl Held {
    fn after(&self) -> u64 {
        match self {
            Held::Send { after, .. } | Held::Reply { after, .. } => *after,
        }
    }
}

pub struct Node {
    pub id: NodeId,
    pub index: usize,
    /// `None` while crashed, and for good once retired.
    pub replica: Option<Replica>,
    /// The configuration the replica was first started with (and restarts
    /// with): the cluster's initial one, or for a replica that joined later
    /// the one in force when it was started, which does not list it.
    pub initial_config: ClusterConfig,
    /// Shut down for good after a change removed it: never restarted, and
    /// no longer a target of faults or clients.
    pub retired: bool,
    pub clock: Clock,
    pub storage: Storage,
    /// Bumped at every crash: events of an older incarnation are void.
    pub incarnation: u64,
    held: Vec<Held>,
    next_persist_id: Option<u64>,
    pub restarts: u64,
    /// `Stats` of incarnations that crashed: (committed, applied) out of order.
    pub dead_stats: (u64, u64),
    /// Snapshots taken and installed by earlier incarnations.
    pub dead_snapshots: (u64, u64),
    /// The prefix of the newest snapshot this incarnation loaded or wrote,
    /// seen in its writes: the replica's compaction point may not exceed it.
    pub snapshot_prefix: Seq,
}

impl Node {
    /// A node not started yet, starting from `initial_config`.
    pub fn new(id: NodeId, index: usize, clock: Clock, initial_config: ClusterConfig) -> Node {
        Node {
            id,
            index,
            replica: None,
            clock,
            initial_config,
            retired: false,
            storage: Storage::default(),
            incarnation: 0,
            held: Vec::new(),
            next_persist_id: None,
            restarts: 0,
            dead_stats: (0, 0),
            dead_snapshots: (0, 0),
            snapshot_prefix: 0,
        }
    }
}

// ---- events ----------------------------------------------------------------

#[derive(Debug)]
enum Ev {
    Tick {
        node: usize,
        incarnation: u64,
    },
    Deliver(Envelope),
    Fsync {
        node: usize,
        incarnation: u64,
        id: u64,
    },
    /// The node's transport reports a forward it sent lost, as a broken
    /// connection does (sometimes wrongly: the forward arrived anyway).
    ForwardLost {
        node: usize,
        incarnation: u64,
        peer: NodeId,
        forward_id: u64,
    },
    /// A snapshot the node handed out to be saved on the side is durable.
    SnapshotSaved {
        node: usize,
        incarnation: u64,
        id: u64,
    },
    CrashFault,
    Restart {
        node: usize,
        incarnation: u64,
    },
    PartitionFault,
    /// The operator asks the leader to hand leadership over.
    TransferFault,
    PartitionHeal {
        epoch: u64,
    },
    ClientArrive {
        node: NodeId,
        request: RequestId,
        req: Request,
    },
    ClientReply {
        request: RequestId,
        reply: Option<ClientReply>,
    },
    ClientWake {
        client: usize,
        token: u64,
    },
    /// The membership driver's turn to ask (again) for its current step.
    AdminWake {
        token: u64,
    },
    /// A change request reaches `node`; dropped if the driver has moved on
    /// from `step` meanwhile (the operator's client gave up on it).
    AdminArrive {
        node: NodeId,
        request: RequestId,
        step: usize,
        target: Box<ClusterConfig>,
    },
    /// The impatient operator asks for `step` a second time.
    AdminDuplicate {
        step: usize,
    },
    /// The operator gives up on `step` and asks for it to be aborted.
    AdminAbort {
        step: usize,
    },
    /// An abort request reaches `node`.
    AdminAbortArrive {
        node: NodeId,
        request: RequestId,
    },
    /// Shut down a replica a completed change removed.
    Retire {
        node: usize,
    },
    /// Crash the leader whose log just got the joint record of a change.
    CrashMidJoint {
        node: usize,
        incarnation: u64,
    },
    /// The tail hunt's turn to start, check or end an episode.
    HuntWake,
    /// Crash the leader of an episode whose victims all installed.
    HuntCrash {
        node: usize,
        incarnation: u64,
    },
}

struct Scheduled {
    at_ns: u64,
    order: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ns, self.order) == (other.at_ns, other.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest event goes first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ns, other.order).cmp(&(self.at_ns, self.order))
    }
}

// ---- wire sizes --------------------------------------------------------------

/// The largest encodings seen on the wire, in bytes (section 4's costs).
#[derive(Debug, Default, Clone, Copy)]
pub struct WireStats {
    pub overrides: usize,
    pub depends: usize,
    pub accepted: usize,
    pub committed: usize,
}

impl WireStats {
    fn observe(&mut self, msg: &Message) {
        let len = |b: &Option<TailBitmap>| b.as_ref().map_or(0, |b| b.encoded_len());
        let records = |w: &mut WireStats, rs: &[Record]| {
            for r in rs {
                w.overrides = w.overrides.max(len(&r.overrides));
                w.depends = w.depends.max(len(&r.depends));
            }
        };
        match msg {
            Message::Vote(v) => self.accepted = self.accepted.max(len(&v.accepted)),
            Message::VoteReply(v) => {
                self.accepted = self.accepted.max(len(&v.accepted));
                self.committed = self.committed.max(len(&v.committed));
                records(self, &v.logs);
            }
            Message::Forward(f) => {
                self.committed = self.committed.max(len(&f.committed));
                records(self, &f.logs);
            }
            Message::ForwardReply(f) => {
                self.accepted = self.accepted.max(len(&f.accepted));
                self.committed = self.committed.max(len(&f.committed));
            }
            // Snapshot chunks are sized by the chunk option, not by bitmaps.
            Message::SnapshotReq(_) | Message::SnapshotChunk(_) => {}
        }
    }

    pub fn merge(&mut self, o: &WireStats) {
        self.overrides = self.overrides.max(o.overrides);
        self.depends = self.depends.max(o.depends);
        self.accepted = self.accepted.max(o.accepted);
        self.committed = self.committed.max(o.committed);
    }
}

// ---- the simulator -----------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Safety,
    Liveness,
}

/// What a finished run reports for the summary line.
#[derive(Debug, Default, Clone)]
pub struct RunReport {
    pub steps: u64,
    pub checks: u64,
    pub records_committed: u64,
    pub committed_out_of_order: u64,
    pub applied_out_of_order: u64,
    pub snapshots_taken: u64,
    pub snapshots_installed: u64,
    pub elections: u64,
    /// Leadership transfers handed over.
    pub transfers: u64,
    pub crashes: u64,
    pub lease_refusals: u64,
    pub history_ops: usize,
    pub sim_ns: u64,
    pub wire: WireStats,
    /// Membership changes, for the shapes that make them.
    pub membership: Option<DriverStats>,
    pub nodes_joined: u64,
    pub nodes_retired: u64,
    /// A snapshot whose applied set had a tail above its prefix was
    /// installed, and a leader was elected afterwards.
    pub tail_install_then_election: bool,
    /// ... by a candidate whose vote request lacked a seq of such a tail
    /// installed by another node: the election that must get the record
    /// from the installer's vote (issue #10).
    pub tail_gap_election: bool,
    pub hunt: Option<HuntStats>,
}

/// Tail installs remembered for the election count.
const TAIL_INSTALLS_KEPT: usize = 16;

pub struct Sim {
    pub seed: u64,
    pub shape: Shape,
    pub params: SimParams,
    pub config: ClusterConfig,
    pub now_ns: u64,
    pub steps: u64,
    queue: BinaryHeap<Scheduled>,
    order: u64,
    pub nodes: Vec<Node>,
    pub net: Network,
    pub workload: Workload,
    pub checker: Checker,
    fault_rng: Rng,
    disk_rng: Rng,
    /// Decides which forwards the transport reports lost (`forward_lost`).
    notice_rng: Rng,
    pub trace: Trace,
    pub wire: WireStats,
    pub phase: Phase,
    partition_epoch: u64,
    /// Requests a scripted scenario made itself, and their replies.
    scripted: BTreeSet<RequestId>,
    pub scripted_replies: BTreeMap<RequestId, ClientReply>,
    /// Leadership transfers asked for and not yet answered.
    transfer_requests: BTreeSet<RequestId>,
    pub transfers_handed_over: u64,
    pub elections: u64,
    pub crashes: u64,
    pub lease_refusals: u64,
    /// Arrival time of each linearizable read not yet answered.
    lin_reads: BTreeMap<RequestId, u64>,
    /// The operator changing membership, for the shapes that do.
    pub driver: Option<Driver>,
    /// Clocks of replicas that join later, drawn as the initial ones are.
    join_rng: Rng,
    pub nodes_joined: u64,
    pub nodes_retired: u64,
    /// The snapshot-tail shapes' steering.
    pub hunt: Option<TailHunt>,
    /// Recent installs of a snapshot with a tail: installer and tail seqs.
    tail_installs: VecDeque<(NodeId, Vec<Seq>)>,
    /// Each node's `Accepted` in its latest vote request.
    vote_accepted: BTreeMap<NodeId, TailBitmap>,
    pub tail_install_then_election: bool,
    pub tail_gap_election: bool,
}

impl Sim {
    /// A run whose faults and load all come from `seed`.
    /// `overrides`: see [`SimParams::override_knobs`].
    pub fn random(shape: Shape, seed: u64, verbose: bool, overrides: &str) -> Result<Sim, String> {
        let mut rng = Rng::new(seed ^ 0x7472_6166_745f_7369);
        let mut params = SimParams::random(&mut rng);
        if shape.hunts_tails() {
            params.tail_preset(&mut rng.fork(8));
        }
        params.override_knobs(overrides)?;
        Ok(Sim::new(shape, seed, params, rng, verbose))
    }

    pub fn new(shape: Shape, seed: u64, params: SimParams, mut rng: Rng, verbose: bool) -> Sim {
        let config = shape.config();
        let ids: Vec<NodeId> = config.voters();
        let mut clock_rng = rng.fork(1);
        let nodes = ids
            .iter()
            .enumerate()
            .map(|(index, &id)| {
                let clock = Clock {
                    offset_ns: clock_rng.range(SEC, 1000 * SEC),
                    drift_ppm: clock_rng.range_i64(-params.drift_max_ppm, params.drift_max_ppm),
                };
                Node::new(id, index, clock, config.clone())
            })
            .collect();
        let net = Network::new(params.net.clone(), rng.fork(2));
        let workload_params = params.workload.clone().unwrap_or(WorkloadParams {
            clients: 0,
            keys: 1,
            think_max_ns: 0,
            timeout_ns: 0,
            wander_ppm: 0,
            pauses: Vec::new(),
        });
        let workload = Workload::new(workload_params, ids.clone(), rng.fork(3));
        let mut checker = Checker::new(config.clone(), ids.len(), params.full_check_every);
        checker.in_order = params.commit_order == traftctl::replica::CommitOrder::Prefix;
        // Forked after every other stream, so that the shapes without
        // membership changes run exactly as they did before these existed.
        let join_rng = rng.fork(6);
        let driver = shape.plan_kind().map(|kind| {
            let mut plan_rng = rng.fork(7);
            let plan = Plan::new(kind, &config, &mut plan_rng);
            Driver::new(plan, config.clone(), plan_rng)
        });
        let hunt = shape.hunts_tails().then(|| TailHunt::new(rng.fork(8)));
        let mut sim = Sim {
            seed,
            shape,
            config,
            now_ns: 0,
            steps: 0,
            queue: BinaryHeap::new(),
            order: 0,
            nodes,
            net,
            workload,
            checker,
            fault_rng: rng.fork(4),
            disk_rng: rng.fork(5),
            notice_rng: rng.fork(9),
            trace: Trace::new(300, verbose),
            wire: WireStats::default(),
            phase: Phase::Safety,
            partition_epoch: 0,
            scripted: BTreeSet::new(),
            transfer_requests: BTreeSet::new(),
            transfers_handed_over: 0,
            scripted_replies: BTreeMap::new(),
            elections: 0,
            crashes: 0,
            lease_refusals: 0,
            lin_reads: BTreeMap::new(),
            params,
            driver,
            join_rng,
            nodes_joined: 0,
            nodes_retired: 0,
            hunt,
            tail_installs: VecDeque::new(),
            vote_accepted: BTreeMap::new(),
            tail_install_then_election: false,
            tail_gap_election: false,
        };
        // Forked after every other stream, so that runs without aborts
        // draw exactly what they did before aborts existed.
        if let Some(d) = sim.driver.as_mut() {
            d.abort_rng = rng.fork(9);
        }
        sim
    }

    fn schedule(&mut self, at_ns: u64, ev: Ev) {
        self.order += 1;
        self.queue.push(Scheduled { at_ns, order: self.order, ev });
    }

    fn note(&mut self, line: String) {
        self.trace.push(self.steps, self.now_ns, line);
    }

    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    fn jitter_seed(&mut self, i: usize) -> u64 {
        self.disk_rng.next_u64() ^ (self.nodes[i].id as u64)
    }

    /// Boots every node fresh and starts the fault processes and clients.
    pub fn start(&mut self) {
        for i in 0..self.nodes.len() {
            let seed = self.jitter_seed(i);
            let opts = self.params.options(self.nodes[i].id, seed);
            let local = self.nodes[i].clock.local(self.now_ns);
            self.nodes[i].replica = Some(Replica::new(opts, self.config.clone(), None, local));
            self.schedule_tick(i);
        }
        if let Some(mean) = self.params.crash_mean_ns {
            let at = self.now_ns + self.fault_rng.around_ns(mean);
            self.schedule(at, Ev::CrashFault);
        }
        if let Some(mean) = self.params.partition_mean_ns {
            let at = self.now_ns + self.fault_rng.around_ns(mean);
            self.schedule(at, Ev::PartitionFault);
        }
        if let Some(mean) = self.params.transfer_mean_ns {
            let at = self.now_ns + self.fault_rng.around_ns(mean);
            self.schedule(at, Ev::TransferFault);
        }
        for e in self.workload.start(self.now_ns) {
            self.apply_effects(e);
        }
        if let Some(d) = self.driver.as_mut() {
            d.token += 1;
            let (at, token) = (self.now_ns + d.plan.first_at_ns, d.token);
            self.schedule(at, Ev::AdminWake { token });
        }
        if let Some(h) = self.hunt.as_mut() {
            let at = self.now_ns + h.rng.range(200 * MS, 800 * MS);
            self.schedule(at, Ev::HuntWake);
        }
        let desc = self.params.describe();
        self.note(format!("start: {} {}; {desc}", self.shape.name(), self.config));
        if let Some(d) = &self.driver {
            let plan = d.plan.describe();
            self.note(format!("membership plan: {plan}"));
        }
    }

    fn schedule_tick(&mut self, i: usize) {
        let local_delta = self.disk_rng.range(self.params.tick_min_ns, self.params.tick_max_ns);
        let at = self.now_ns + self.nodes[i].clock.true_span(local_delta).max(1);
        let incarnation = self.nodes[i].incarnation;
        self.schedule(at, Ev::Tick { node: i, incarnation });
    }

    // ---- running ---------------------------------------------------------

    /// The whole seeded run: safety phase, heal, liveness phase.
    pub fn run(&mut self) -> Result<RunReport, Failure> {
        self.start();
        let safety_end = self.params.safety_ns;
        self.run_until(safety_end)?;
        self.heal()?;
        let healed_at = self.now_ns;
        let deadline = self.now_ns + self.params.liveness_ns;
        let mut why = String::new();
        let mut next_cycle_check = healed_at + KNOWN_CYCLE_GRACE_NS;
        // Checking convergence costs a few bitmap compares; every 16 steps
        // is plenty to stop soon after it happens.
        loop {
            if self.steps.is_multiple_of(16) {
                match self.converged() {
                    Ok(()) => break,
                    Err(w) => why = w,
                }
                // The apply cycle never resolves (nothing resends a
                // record a replica holds through an override): once it has
                // lasted a while, stop rather than simulate to the deadline.
                if self.now_ns >= next_cycle_check {
                    next_cycle_check = self.now_ns + SEC;
                    if let Some(f) = self.known_apply_cycle(&why) {
                        return Err(self.stamp(f));
                    }
                }
            }
            if !self.step_before(deadline)? {
                if let Some(f) = self.known_apply_cycle(&why) {
                    return Err(self.stamp(f));
                }
                return Err(self.stamp(Failure::new(
                    "liveness",
                    format!(
                        "the cluster did not converge within {}ms after faults healed: {why}",
                        self.params.liveness_ns / MS
                    ),
                )));
            }
        }
        self.note("converged".to_string());
        self.checker.full_scan(&self.nodes).map_err(|f| self.stamp(f))?;
        Ok(self.report())
    }

    /// A liveness failure that is the apply cycle on some running
    /// replica, as its own failure.
    fn known_apply_cycle(&self, why: &str) -> Option<Failure> {
        let (id, evidence) = self
            .nodes
            .iter()
            .find_map(|n| n.replica.as_ref().and_then(apply_cycle_through_config).map(|e| (n.id, e)))?;
        Some(Failure::new(
            APPLY_CYCLE,
            format!(
                "node {id} can never apply again: {evidence}. The cluster had not converged {}ms after faults \
                 healed: {why}",
                (self.now_ns.saturating_sub(self.params.safety_ns)) / MS
            ),
        ))
    }

    pub fn report(&self) -> RunReport {
        let (mut c, mut a, mut taken, mut installed) = (0, 0, 0, 0);
        for n in &self.nodes {
            c += n.dead_stats.0;
            a += n.dead_stats.1;
            taken += n.dead_snapshots.0;
            installed += n.dead_snapshots.1;
            if let Some(r) = &n.replica {
                c += r.stats().committed_out_of_order;
                a += r.stats().applied_out_of_order;
                taken += r.stats().snapshots_taken;
                installed += r.stats().snapshots_installed;
            }
        }
        RunReport {
            steps: self.steps,
            checks: self.checker.checks,
            records_committed: self.checker.records_committed() as u64,
            committed_out_of_order: c,
            applied_out_of_order: a,
            snapshots_taken: taken,
            snapshots_installed: installed,
            elections: self.elections,
            transfers: self.transfers_handed_over,
            crashes: self.crashes,
            lease_refusals: self.lease_refusals,
            history_ops: self.workload.history.len(),
            sim_ns: self.now_ns,
            wire: self.wire,
            membership: self.driver.as_ref().map(|d| d.stats.clone()),
            nodes_joined: self.nodes_joined,
            nodes_retired: self.nodes_retired,
            tail_install_then_election: self.tail_install_then_election,
            tail_gap_election: self.tail_gap_election,
            hunt: self.hunt.as_ref().map(|h| h.stats.clone()),
        }
    }

    fn stamp(&self, mut f: Failure) -> Failure {
        f.step = self.steps;
        f.at_ns = self.now_ns;
        f
    }

    /// Runs every event up to `until_ns` (true time).
    pub fn run_until(&mut self, until_ns: u64) -> Check {
        while self.step_before(until_ns)? {}
        self.now_ns = self.now_ns.max(until_ns);
        Ok(())
    }

    /// Runs until `cond` holds, checked after every step; false when the
    /// deadline passed first.
    pub fn run_until_cond(&mut self, deadline_ns: u64, mut cond: impl FnMut(&Sim) -> bool) -> Result<bool, Failure> {
        loop {
            if cond(self) {
                return Ok(true);
            }
            if !self.step_before(deadline_ns)? {
                return Ok(false);
            }
        }
    }

    /// Processes the next event if it is due by `deadline_ns`.
    fn step_before(&mut self, deadline_ns: u64) -> Result<bool, Failure> {
        match self.queue.peek() {
            Some(s) if s.at_ns <= deadline_ns => {}
            _ => return Ok(false),
        }
        let s = self.queue.pop().expect("peeked");
        debug_assert!(s.at_ns >= self.now_ns, "time runs forward");
        self.now_ns = s.at_ns;
        self.checker.now_ns = s.at_ns;
        self.steps += 1;
        self.dispatch(s.ev).map_err(|f| self.stamp(f))?;
        self.checker.single_lease(&self.nodes, self.now_ns).map_err(|f| self.stamp(f))?;
        Ok(true)
    }

    fn dispatch(&mut self, ev: Ev) -> Check {
        match ev {
            Ev::Tick { node, incarnation } => {
                if self.nodes[node].incarnation != incarnation || self.nodes[node].replica.is_none() {
                    return Ok(());
                }
                let local = self.nodes[node].clock.local(self.now_ns);
                self.nodes[node].replica.as_mut().expect("up").tick(local);
                self.schedule_tick(node);
                self.after_input(node, false)
            }
            Ev::Deliver(env) => self.deliver(env),
            Ev::Fsync { node, incarnation, id } => self.complete_fsync(node, incarnation, id),
            Ev::ForwardLost { node, incarnation, peer, forward_id } => {
                let n = &mut self.nodes[node];
                let Some(r) = n.replica.as_mut().filter(|_| n.incarnation == incarnation) else { return Ok(()) };
                let local = n.clock.local(self.now_ns);
                r.forward_lost(local, peer, Some(forward_id));
                let id = n.id;
                self.note(format!("node {id} hears forward #{forward_id} to {peer} was lost"));
                self.after_input(node, false)
            }
            Ev::SnapshotSaved { node, incarnation, id } => {
                if self.nodes[node].incarnation != incarnation {
                    return Ok(());
                }
                let n = &mut self.nodes[node];
                let local = n.clock.local(self.now_ns);
                let id_ = n.id;
                n.replica.as_mut().expect("an incarnation with a save in flight is up").snapshot_saved(local, id);
                self.note(format!("node {id_} saved snapshot {id}"));
                self.after_input(node, false)
            }
            Ev::CrashFault => {
                if self.phase != Phase::Safety {
                    return Ok(());
                }
                let up: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].replica.is_some()).collect();
                let leader = self.leader().and_then(|id| self.index_of(id));
                let target = match leader {
                    Some(l) if self.fault_rng.chance_ppm(self.params.crash_leader_ppm) => Some(l),
                    _ if up.is_empty() => None,
                    _ => Some(*self.fault_rng.pick(&up)),
                };
                if let Some(i) = target {
                    self.crash(i);
                    let at = self.now_ns + self.fault_rng.range(self.params.restart_min_ns, self.params.restart_max_ns);
                    let incarnation = self.nodes[i].incarnation;
                    self.schedule(at, Ev::Restart { node: i, incarnation });
                }
                let mean = self.params.crash_mean_ns.expect("crash faults are on");
                let at = self.now_ns + self.fault_rng.around_ns(mean).max(MS);
                self.schedule(at, Ev::CrashFault);
                Ok(())
            }
            Ev::Restart { node, incarnation } => {
                if self.nodes[node].incarnation != incarnation
                    || self.nodes[node].replica.is_some()
                    || self.nodes[node].retired
                {
                    return Ok(());
                }
                self.restart(node)
            }
            Ev::PartitionFault => {
                if self.phase != Phase::Safety {
                    return Ok(());
                }
                self.start_partition();
                Ok(())
            }
            Ev::TransferFault => {
                if self.phase != Phase::Safety {
                    return Ok(());
                }
                let mean = self.params.transfer_mean_ns.expect("transfers are on");
                let at = self.now_ns + self.fault_rng.around_ns(mean).max(MS);
                self.schedule(at, Ev::TransferFault);
                self.ask_transfer()
            }
            Ev::PartitionHeal { epoch } => {
                if epoch == self.partition_epoch && self.phase == Phase::Safety {
                    self.net.heal();
                    self.note("partition healed".to_string());
                    if let Some(mean) = self.params.partition_mean_ns {
                        let at = self.now_ns + self.fault_rng.around_ns(mean).max(MS);
                        self.schedule(at, Ev::PartitionFault);
                    }
                }
                Ok(())
            }
            Ev::ClientArrive { node, request, req } => self.client_arrive(node, request, req),
            Ev::ClientReply { request, reply } => {
                if self.driver.as_ref().is_some_and(|d| d.owns(request)) {
                    return self.admin_reply(request, reply);
                }
                if self.driver.as_ref().is_some_and(|d| d.owns_abort(request)) {
                    return self.admin_abort_reply(request, reply);
                }
                if self.transfer_requests.remove(&request) {
                    match reply {
                        Some(ClientReply::Transferred { .. }) => self.transfers_handed_over += 1,
                        Some(ClientReply::Failed(_)) | None => {}
                        Some(other) => {
                            return Err(Failure::new(
                                "client contract",
                                format!("leadership transfer {request} answered with {other:?}"),
                            ));
                        }
                    }
                    return Ok(());
                }
                if self.scripted.contains(&request) {
                    if let Some(r) = reply {
                        self.note(format!("scripted request {request} answered: {r:?}"));
                        self.scripted_replies.insert(request, r);
                    }
                    return Ok(());
                }
                let effects = self
                    .workload
                    .on_reply(request, reply, self.now_ns)
                    .map_err(|e| Failure::new("client contract", e))?;
                self.apply_effects(effects);
                Ok(())
            }
            Ev::ClientWake { client, token } => {
                let effects = self.workload.wake(client, token, self.now_ns);
                self.apply_effects(effects);
                Ok(())
            }
            Ev::AdminWake { token } => self.admin_wake(token),
            Ev::AdminArrive { node, request, step, target } => self.admin_arrive(node, request, step, *target),
            Ev::AdminDuplicate { step } => {
                if self.driver.as_ref().is_some_and(|d| d.step == step && !d.done()) {
                    return self.admin_send(true);
                }
                Ok(())
            }
            Ev::AdminAbort { step } => {
                if self.phase != Phase::Safety || self.driver.as_ref().is_none_or(|d| d.step != step || d.done()) {
                    return Ok(());
                }
                self.admin_send_abort(None)
            }
            Ev::AdminAbortArrive { node, request } => self.admin_abort_arrive(node, request),
            Ev::Retire { node } => self.retire(node),
            Ev::CrashMidJoint { node, incarnation } => {
                if self.nodes[node].incarnation != incarnation || self.phase != Phase::Safety {
                    return Ok(());
                }
                let id = self.nodes[node].id;
                self.note(format!("CRASH the leader, node {id}, in the middle of a joint change"));
                if let Some(d) = self.driver.as_mut() {
                    d.stats.leader_crashes_mid_joint += 1;
                }
                self.crash(node);
                let at = self.now_ns + self.fault_rng.range(self.params.restart_min_ns, self.params.restart_max_ns);
                let incarnation = self.nodes[node].incarnation;
                self.schedule(at, Ev::Restart { node, incarnation });
                Ok(())
            }
            Ev::HuntWake => {
                self.hunt_wake();
                Ok(())
            }
            Ev::HuntCrash { node, incarnation } => {
                if self.nodes[node].incarnation != incarnation
                    || self.nodes[node].replica.is_none()
                    || self.phase != Phase::Safety
                {
                    return Ok(());
                }
                let id = self.nodes[node].id;
                self.note(format!("TAIL HUNT: crash the leader, node {id}: every victim installed a tail"));
                let h = self.hunt.as_mut().expect("only the tail hunt schedules this");
                h.stats.crashes += 1;
                h.episode = None;
                self.crash(node);
                let at = self.now_ns + self.fault_rng.range(self.params.restart_min_ns, self.params.restart_max_ns);
                let incarnation = self.nodes[node].incarnation;
                self.schedule(at, Ev::Restart { node, incarnation });
                Ok(())
            }
        }
    }

    /// The tail hunt's periodic turn: ends an episode whose leader is gone
    /// or whose time ran out, and starts one against the current leader.
    fn hunt_wake(&mut self) {
        if self.phase != Phase::Safety {
            return;
        }
        let leader = self.leader();
        let ballot = leader.and_then(|id| self.replica(id)).and_then(|r| r.leader_ballot());
        let now = self.now_ns;
        let h = self.hunt.as_mut().expect("only the tail hunt schedules this");
        let next = now + h.rng.range(50 * MS, 300 * MS);
        let ended = h.episode.as_ref().filter(|e| !e.fired && (now >= e.ends_at_ns || ballot != Some(e.ballot)));
        if ended.is_some() {
            h.episode = None;
            self.note("TAIL HUNT: episode over".to_string());
        }
        let idle = self.hunt.as_ref().is_some_and(|h| h.episode.is_none());
        if idle && let (Some(id), Some(b)) = (leader, ballot) {
            let r = self.replica(id).expect("leads");
            let next_seq = r.log().keys().next_back().map_or(0, |s| s + 1).max(r.base_len().unwrap_or(0));
            let followers: Vec<NodeId> =
                r.config().voters().into_iter().filter(|&f| f != id && self.replica(f).is_some()).collect();
            let h = self.hunt.as_mut().expect("checked above");
            let length = h.rng.range(600 * MS, 2 * SEC);
            let line = h.begin(id, b, next_seq, followers, now, length).map(|e| e.describe());
            if let Some(line) = line {
                self.note(format!("TAIL HUNT: episode: {line}"));
            }
        }
        self.schedule(next, Ev::HuntWake);
    }

    /// Node `i` installed a snapshot whose applied tail is `tail`: counts it,
    /// and fires the episode once every victim that is up has one.
    fn on_tail_install(&mut self, i: usize, tail: Vec<Seq>) {
        let id = self.nodes[i].id;
        if self.tail_installs.len() == TAIL_INSTALLS_KEPT {
            self.tail_installs.pop_front();
        }
        self.tail_installs.push_back((id, tail));
        let now = self.now_ns;
        let up: Vec<NodeId> = self.nodes.iter().filter(|n| n.replica.is_some()).map(|n| n.id).collect();
        let lease = self.params.lease_ns;
        let Some(h) = self.hunt.as_mut() else { return };
        let Some(e) = h.episode.as_mut().filter(|e| !e.fired && e.victims.contains(&id)) else { return };
        let tail = &self.tail_installs.back().expect("pushed above").1;
        if !e.miss_c.is_some_and(|c| tail.contains(&c)) {
            return;
        }
        h.stats.tail_installs += 1;
        e.installed.insert(id);
        if !e.victims.iter().all(|v| e.installed.contains(v) || !up.contains(v)) {
            return;
        }
        e.fired = true;
        let (leader, victims, what) = (e.leader, e.victims.clone(), e.describe());
        let delay = h.rng.range(0, 15 * MS);
        // The victims hold the whole tail: were one of them the candidate,
        // nobody would need a record from a vote. Until the next election,
        // but bounded, so a cluster where only a victim can win still does.
        h.silenced = victims.iter().map(|&v| (v, now + delay + 5 * lease)).collect();
        let node = self.index_of(leader).expect("a leader is a node");
        let incarnation = self.nodes[node].incarnation;
        self.note(format!("TAIL HUNT: {what}: the victims installed tails; crashing the leader in {delay}ns"));
        self.schedule(now + delay.max(1), Ev::HuntCrash { node, incarnation });
    }

    /// A leader was elected on node `i`: the snapshot-tail counts.
    fn on_election(&mut self, i: usize) {
        if let Some(h) = self.hunt.as_mut() {
            h.silenced.clear();
        }
        if self.tail_installs.is_empty() {
            return;
        }
        self.tail_install_then_election = true;
        let w = self.nodes[i].id;
        let Some(asked) = self.vote_accepted.get(&w) else { return };
        let lacked: Vec<(NodeId, Seq)> = self
            .tail_installs
            .iter()
            .filter(|(v, _)| *v != w)
            .filter_map(|(v, tail)| tail.iter().find(|&&s| !asked.contains(s)).map(|&s| (*v, s)))
            .collect();
        if !lacked.is_empty() {
            self.tail_gap_election = true;
        }
        if self.trace.verbose {
            self.note(format!(
                "node {w} won lacking (installer, tail seq) {lacked:?}; asked with {}",
                bm(&Some(asked.clone()))
            ));
        }
    }

    fn apply_effects(&mut self, e: Effects) {
        if let Some(out) = e.send {
            let at = self.now_ns + self.net.delay_ns().max(1);
            self.schedule(at, Ev::ClientArrive { node: out.node, request: out.request, req: out.req });
        }
        if let Some((client, at, token)) = e.wake {
            self.schedule(at, Ev::ClientWake { client, token });
        }
    }

    fn deliver(&mut self, env: Envelope) -> Check {
        let Some(i) = self.index_of(env.to) else {
            return Err(Failure::new("replica contract", format!("message to unknown node {}", env.to)));
        };
        if self.nodes[i].replica.is_none() {
            return Ok(());
        }
        if self.net.is_cut(env.from, env.to) {
            self.net.note_cut();
            return Ok(());
        }
        let flight_ms = (self.now_ns - env.sent_at_ns) as f64 / MS as f64;
        self.note(format!("{}->{} ({flight_ms:.1}ms) {}", env.from, env.to, describe_msg(&env.msg)));
        let local = self.nodes[i].clock.local(self.now_ns);
        self.nodes[i].replica.as_mut().expect("up").step(local, env.from, env.msg);
        self.after_input(i, false)
    }

    fn client_arrive(&mut self, node: NodeId, request: RequestId, req: Request) -> Check {
        let i = self.index_of(node).expect("clients only know members");
        if self.nodes[i].replica.is_none() {
            // Connection refused: the request never reached a replica.
            let at = self.now_ns + self.net.delay_ns().max(1);
            self.schedule(at, Ev::ClientReply { request, reply: None });
            return Ok(());
        }
        let local = self.nodes[i].clock.local(self.now_ns);
        let r = self.nodes[i].replica.as_mut().expect("up");
        match req {
            Request::Propose(cmd) => {
                self.trace.push(self.steps, self.now_ns, format!("client req {request} -> {node}: propose {cmd}"));
                r.propose(local, request, cmd);
            }
            Request::Read { key, consistency } => {
                if consistency == ReadConsistency::Linearizable {
                    self.lin_reads.insert(request, self.now_ns);
                }
                self.trace.push(
                    self.steps,
                    self.now_ns,
                    format!("client req {request} -> {node}: read {key} {consistency:?}"),
                );
                r.read(local, request, &key, consistency);
            }
        }
        self.after_input(i, false)
    }

    /// Carries out what node `i` asked for, then checks the invariants.
    fn after_input(&mut self, i: usize, force_full: bool) -> Check {
        let dirty = self.drain(i)?;
        self.checker.after_step(&self.nodes, i, &dirty, force_full)?;
        self.watch_for_joint(i, &dirty);
        Ok(())
    }

    /// `CrashMidChange`: once the leader's log gets the joint record of the
    /// current step, crash the leader a moment later.
    fn watch_for_joint(&mut self, i: usize, dirty: &[Seq]) {
        if self.phase != Phase::Safety || !self.driver.as_ref().is_some_and(|d| d.crash_armed) {
            return;
        }
        let Some(r) = self.nodes[i].replica.as_ref() else { return };
        let Some(l) = r.leader_ballot() else { return };
        let joint = dirty.iter().any(|s| {
            r.log().get(s).is_some_and(|rec| {
                rec.author == Some(l)
                    && rec
                        .cmd
                        .as_ref()
                        .and_then(|c| c.config_value())
                        .is_some_and(|c| c.next.is_some() && c.learners.is_empty())
            })
        });
        if !joint {
            return;
        }
        let d = self.driver.as_mut().expect("armed");
        d.crash_armed = false;
        d.crashed_mid_joint = Some((d.step, l));
        let delay = d.plan.crash_on_joint[d.step].expect("armed for this step");
        let incarnation = self.nodes[i].incarnation;
        let id = self.nodes[i].id;
        self.note(format!("node {id} (leader {l}) appended the joint record: crashing it in {delay}ns"));
        self.schedule(self.now_ns + delay.max(1), Ev::CrashMidJoint { node: i, incarnation });
    }

    fn drain(&mut self, i: usize) -> Result<Vec<Seq>, Failure> {
        let Some(r) = self.nodes[i].replica.as_mut() else {
            return Ok(Vec::new());
        };
        let actions = r.take_actions();
        let tails = installed_tails(r, &actions);
        let mut dirty = Vec::new();
        for a in actions {
            match a {
                Action::Persist { id, write } => {
                    let node = &mut self.nodes[i];
                    match node.next_persist_id {
                        Some(expect) if id != expect => {
                            return Err(Failure::new(
                                "replica contract",
                                format!("node {} issued persist {id}, expected {expect}", node.id),
                            ));
                        }
                        Some(_) => {}
                        // Ids are per incarnation; whatever the first one is,
                        // nothing before it is outstanding.
                        None => node.storage.durable_id = id.saturating_sub(1),
                    }
                    node.next_persist_id = Some(id + 1);
                    self.check_write(i, &write)?;
                    if let Some(snap) = &write.snapshot {
                        let node = &mut self.nodes[i];
                        node.snapshot_prefix = node.snapshot_prefix.max(snap.prefix());
                    }
                    dirty.extend(write.put.iter().map(|r| r.seq));
                    dirty.extend(write.delete.iter().copied());
                    let mut delay = self.disk_rng.range(self.params.fsync_min_ns, self.params.fsync_max_ns);
                    if self.disk_rng.chance_ppm(self.params.slow_fsync_ppm) {
                        delay = self.disk_rng.range(delay, self.params.slow_fsync_max_ns.max(delay));
                    }
                    let node = &mut self.nodes[i];
                    let done_at = node.storage.busy_until_ns.max(self.now_ns) + delay;
                    node.storage.busy_until_ns = done_at;
                    node.storage.pending.push_back(PendingWrite { id, write, claims: Vec::new() });
                    let incarnation = node.incarnation;
                    self.schedule(done_at, Ev::Fsync { node: i, incarnation, id });
                }
                Action::Send { to, msg, after_persist } => {
                    if after_persist <= self.nodes[i].storage.durable_id {
                        self.send(i, to, msg);
                    } else {
                        self.nodes[i].held.push(Held::Send { to, msg, after: after_persist });
                    }
                }
                Action::Reply { request, reply, after_persist } => {
                    if let Some(arrival) = self.lin_reads.remove(&request)
                        && matches!(reply, ClientReply::Read { .. })
                    {
                        let node = &self.nodes[i];
                        let r = node.replica.as_ref().expect("a replica that acts is up");
                        self.checker.read_served_by_current_leader(node, r, request, arrival)?;
                    }
                    if after_persist <= self.nodes[i].storage.durable_id {
                        self.reply(i, request, reply);
                    } else {
                        self.nodes[i].held.push(Held::Reply { request, reply, after: after_persist });
                    }
                }
                Action::SaveSnapshot { id, snapshot } => {
                    // Saved on the side, while the writes behind it go on;
                    // it takes longer than a write.
                    let delay = self.disk_rng.range(self.params.fsync_min_ns, 4 * self.params.fsync_max_ns);
                    let incarnation = self.nodes[i].incarnation;
                    let node_id = self.nodes[i].id;
                    self.note(format!("node {node_id} saves snapshot {id} (prefix {})", snapshot.prefix()));
                    self.schedule(self.now_ns + delay, Ev::SnapshotSaved { node: i, incarnation, id });
                }
                Action::Event(e) => {
                    if matches!(e, Event::VoteWin { .. }) {
                        self.elections += 1;
                        self.on_election(i);
                    }
                    if !matches!(e, Event::Committed { .. } | Event::Applied { .. }) || self.trace.verbose {
                        let id = self.nodes[i].id;
                        self.note(format!("node {id} event {e:?}"));
                    }
                }
            }
        }
        for tail in tails {
            self.on_tail_install(i, tail);
        }
        // What the node claims now is made durable by its newest pending
        // write (or is durable already): remember it with that write.
        let node = &mut self.nodes[i];
        if let (Some(r), Some(last)) = (node.replica.as_ref(), node.storage.pending.back_mut()) {
            let (committer, voted_for) = (r.committer(), r.voted_for());
            match last.claims.last_mut() {
                Some(c) if c.committer == committer && c.voted_for == voted_for => c.accepted.union(r.accepted()),
                _ => last.claims.push(Claim { committer, voted_for, accepted: r.accepted().clone() }),
            }
        }
        Ok(dirty)
    }

    /// A write lists its deletes and puts as sets, so it cannot say which
    /// came last for a seq in both; storage deletes first. That is right only
    /// if the step ended holding the put record.
    fn check_write(&self, i: usize, write: &DurableWrite) -> Check {
        let node = &self.nodes[i];
        let Some(r) = node.replica.as_ref() else {
            return Ok(());
        };
        for rec in write.put.iter().filter(|rec| write.delete.contains(&rec.seq)) {
            if r.log().get(&rec.seq) != Some(rec) {
                return Err(Failure::new(
                    "replica contract",
                    format!(
                        "node {} writes both put {} and delete of seq {} but its log holds {:?} there: storage \
                         (delete, then put) would keep a record the replica dropped",
                        node.id,
                        rec.short(),
                        rec.seq,
                        r.log().get(&rec.seq).map(|x| x.short())
                    ),
                ));
            }
        }
        Ok(())
    }

    fn send(&mut self, i: usize, to: NodeId, mut msg: Message) {
        let from = self.nodes[i].id;
        if let Message::Vote(v) = &msg {
            self.vote_accepted.insert(from, v.accepted.clone().unwrap_or_default());
        }
        if let Some(h) = self.hunt.as_mut() {
            if h.silences(from, &msg, self.now_ns) {
                if self.trace.verbose {
                    self.note(format!("tail hunt drops {from}->{to} {}", describe_msg(&msg)));
                }
                return;
            }
            let committed = self.nodes[i].replica.as_ref().map(|r| r.committed());
            if let (Some(e), Some(committed)) = (h.episode.as_mut(), committed)
                && e.strip(from, to, &mut msg, committed) > 0
                && self.trace.verbose
            {
                self.note(format!("tail hunt strips records from {from}->{to} {}", describe_msg(&msg)));
            }
        }
        self.wire.observe(&msg);
        if let Message::VoteReply(v) = &msg
            && v.refusal == VoteRefusal::Lease as i32
        {
            // Each is a vote that, granted, could break the lease: a
            // measure of how hard a run pushes on rule 2.
            self.lease_refusals += 1;
        }
        let env = Envelope { from: self.nodes[i].id, to, msg, sent_at_ns: self.now_ns };
        let delays = self.net.route(&env);
        if delays.is_empty() && self.trace.verbose {
            self.note(format!("dropped {}->{} {}", env.from, env.to, describe_msg(&env.msg)));
        }
        // The transport tells the sender of most lost forwards, and of a few
        // that arrived after all.
        if let Message::Forward(f) = &env.msg {
            let ppm = if delays.is_empty() { self.params.lost_notice_ppm } else { self.params.lost_notice_ppm / 20 };
            if self.notice_rng.chance_ppm(ppm) {
                let at = self.now_ns + self.notice_rng.range(MS / 10, 5 * MS);
                let incarnation = self.nodes[i].incarnation;
                self.schedule(at, Ev::ForwardLost { node: i, incarnation, peer: to, forward_id: f.forward_id });
            }
        }
        for d in delays {
            let at = self.now_ns + d.max(1);
            self.schedule(at, Ev::Deliver(env.clone()));
        }
    }

    fn reply(&mut self, i: usize, request: RequestId, reply: ClientReply) {
        let id = self.nodes[i].id;
        self.note(format!("node {id} replies to request {request}: {}", clip(format!("{reply:?}"), 160)));
        let at = self.now_ns + self.net.delay_ns().max(1);
        self.schedule(at, Ev::ClientReply { request, reply: Some(reply) });
    }

    fn complete_fsync(&mut self, i: usize, incarnation: u64, id: u64) -> Check {
        if self.nodes[i].incarnation != incarnation {
            return Ok(());
        }
        let node = &mut self.nodes[i];
        let w = match node.storage.pending.pop_front() {
            Some(w) if w.id == id => w,
            other => {
                return Err(Failure::new(
                    "simulator",
                    format!("node {}: sync of persist {id} found {:?} first in line", node.id, other.map(|w| w.id)),
                ));
            }
        };
        let before = node.storage.hard.clone();
        node.storage.apply(&w.write);
        node.storage.durable_id = id;
        let line = format!("node {} synced persist {id}: {}", node.id, w.write.describe(TRACE_FIELD));
        self.note(line);
        self.checker.on_durable(&self.nodes, i, &before, &w.claims)?;

        let node = &mut self.nodes[i];
        let local = node.clock.local(self.now_ns);
        // Release in the order they were emitted.
        let (ready, waiting): (Vec<Held>, Vec<Held>) = node.held.drain(..).partition(|h| h.after() <= id);
        node.held = waiting;
        node.replica.as_mut().expect("an incarnation with pending writes is up").persisted(local, id);
        for h in ready {
            match h {
                Held::Send { to, msg, .. } => self.send(i, to, msg),
                Held::Reply { request, reply, .. } => self.reply(i, request, reply),
            }
        }
        self.after_input(i, false)
    }

    // ---- scripted scenarios ------------------------------------------------------

    /// Sends a proposal to node `id` as a client would; the reply lands in
    /// `scripted_replies`.
    pub fn propose(&mut self, id: NodeId, cmd: traftctl::pb::Cmd) -> RequestId {
        let request = self.workload.new_request_id();
        self.scripted.insert(request);
        let at = self.now_ns + self.net.delay_ns().max(1);
        self.schedule(at, Ev::ClientArrive { node: id, request, req: Request::Propose(cmd) });
        request
    }

    /// The node leading with a fixed base, if exactly one does.
    pub fn leader(&self) -> Option<NodeId> {
        let leaders: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| n.replica.as_ref().is_some_and(|r| r.leader_ballot().is_some()))
            .map(|n| n.id)
            .collect();
        match leaders.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    pub fn replica(&self, id: NodeId) -> Option<&Replica> {
        self.index_of(id).and_then(|i| self.nodes[i].replica.as_ref())
    }

    // ---- failure report --------------------------------------------------------

    /// Every node's state, for a failure report.
    pub fn describe_nodes(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            let _ = write!(
                s,
                "  node {} (incarnation {}, clock offset {}ms drift {}ppm, local now {}): ",
                n.id,
                n.incarnation,
                n.clock.offset_ns / MS,
                n.clock.drift_ppm,
                n.clock.local(self.now_ns)
            );
            let h = &n.storage.hard;
            let disk = format!(
                "disk: voted={} committer={} base_len={} committed={} records={} pending writes={}",
                short_opt(&h.voted_for),
                short_opt(&h.committer),
                h.base_len,
                clip(h.committed.to_string(), 60),
                n.storage.records.len(),
                n.storage.pending.len()
            );
            let Some(r) = &n.replica else {
                let _ = writeln!(s, "{}; {disk}", if n.retired { "RETIRED" } else { "DOWN" });
                continue;
            };
            let _ = writeln!(
                s,
                "{:?} leader_ballot={} base_len={:?} lease_end={:?} voted={} committer={} known_leader={}",
                r.role(),
                short_opt(&r.leader_ballot()),
                r.base_len(),
                r.lease_end(),
                short_opt(&r.voted_for()),
                short_opt(&r.committer()),
                short_opt(&r.known_leader()),
            );
            let _ = writeln!(
                s,
                "      accepted={} committed={} applied={}",
                clip(r.accepted().to_string(), 100),
                clip(r.committed().to_string(), 100),
                clip(r.applied().to_string(), 100)
            );
            let _ = writeln!(s, "      kv={:?}", r.kv());
            let _ = writeln!(s, "      config in force: {}", r.config());
            let _ = writeln!(s, "      {disk}");
            let log: Vec<String> = r.log().values().map(|rec| rec.short()).collect();
            let shown = log.len().saturating_sub(40);
            let _ = writeln!(
                s,
                "      log ({} records{}): {}",
                log.len(),
                if shown > 0 { ", last 40 shown" } else { "" },
                log[shown..].join(" ")
            );
        }
        let _ = writeln!(s, "  network cuts: {}", self.net.describe_cuts());
        if let Some(d) = &self.driver {
            let _ = writeln!(
                s,
                "  membership: step {} of {} done, current {}; plan {}; {:?}",
                d.step,
                d.plan.steps.len(),
                d.current,
                d.plan.describe(),
                d.stats
            );
        }
        s
    }
}
