//! Membership changes as an operator makes them: a plan of target
//! configurations per seed, and a driver that asks whoever leads to move the
//! cluster to the next one, retrying until the change is known complete.
//!
//! The driver behaves like `traftctl config` run by a patient operator:
//!
//! * it starts the replicas a change adds before asking for the change
//!   (`Sim::add_node`), each knowing only the configuration then in force;
//! * it asks some node, follows `NotLeader` redirects, and retries after
//!   `NoLeader`, `LeadershipLost` (a new leader finishes the change from the
//!   log; the retry then gets "already in progress" until it is done),
//!   "already in progress", `Unsafe` (a quorum was not reachable) and after a
//!   timeout (the node crashed with the request);
//! * a step is done when the reply is `Proposed`, or when a retry is
//!   rejected because "the cluster already has this configuration" (the
//!   leader checks that only after checking that its newest config record
//!   is committed, so the target is committed then);
//! * now and then it sends the same change twice, as an impatient operator
//!   would: the second must be refused as "already in progress";
//! * it shuts down the replicas a completed step removed, after a delay
//!   drawn from the seed (an operator who is slow to decommission leaves a
//!   removed replica running for a while);
//! * now and then it loses patience with a step and asks some node to abort
//!   the change (`traftctl config abort`): the change's own request is then
//!   answered `ChangeAborted` and asked again, so the plan still completes,
//!   and the invariants are checked with aborted changes in the log.
//!
//! Any other refusal (an invalid target) is a bug of the plan, and fails the
//! run as one.

use std::collections::{BTreeMap, BTreeSet};

use traftctl::config::MembershipChange;
use traftctl::errors::TraftError;
use traftctl::pb::ClusterConfig;
use traftctl::replica::{ClientReply, NodeId, RequestId};

use crate::rng::Rng;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// The shapes of plan, one per simulator shape that changes membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    /// 3 members -> 5 -> a random 3 of the 5 (which may drop the leader).
    GrowShrink,
    /// Each of the 3 initial members replaced by a new one, one change at a
    /// time: either "add the new, then remove the old" or one change that
    /// swaps them (drawn per member).
    Replace,
    /// 4 members with majority quorums -> a hand-made quorum system (a hub,
    /// or three voters with a passive fourth) -> sometimes another one ->
    /// majority again.
    GridSwitch,
    /// Grow then shrink, crashing the leader right after the joint record of
    /// a change appears in its log: the next leader must finish the change.
    CrashMidChange,
}

/// Where a joined replica listens: any string works, as long as one id
/// keeps one address across configurations.
pub fn joined_addr(id: NodeId) -> String {
    format!("joined-{id}.sim.internal:{}", 7000 + id)
}

/// The address of member `id`: its address in the initial configuration,
/// else the one it joined with.
fn addr_of(initial: &ClusterConfig, id: NodeId) -> String {
    initial.members.get(&id).map_or_else(|| joined_addr(id), |m| m.addr.clone())
}

fn majority_of(initial: &ClusterConfig, ids: &BTreeSet<NodeId>) -> ClusterConfig {
    ClusterConfig::majority(ids.iter().map(|&id| (id, addr_of(initial, id)))).expect("the plans use 3 to 5 members")
}

/// A random `k`-subset of `ids`.
fn pick_subset(rng: &mut Rng, ids: &BTreeSet<NodeId>, k: usize) -> BTreeSet<NodeId> {
    let mut pool: Vec<NodeId> = ids.iter().copied().collect();
    let mut out = BTreeSet::new();
    for _ in 0..k.min(pool.len()) {
        let i = rng.below(pool.len() as u64) as usize;
        out.insert(pool.swap_remove(i));
    }
    out
}

/// A non-majority quorum system on the four members 1..=4: a hub `h`
/// (quorums `{h, x}` for every other `x`, plus the three others), or three
/// voters with majority quorums and a fourth member in no quorum at all.
fn custom_four(initial: &ClusterConfig, rng: &mut Rng, avoid: Option<&ClusterConfig>) -> ClusterConfig {
    let ids: Vec<NodeId> = (1..=4).collect();
    let members = || ids.iter().map(|&id| (id, addr_of(initial, id)));
    // A few draws at most: with 8 candidates, a repeat of `avoid` is rare.
    for _ in 0..16 {
        let special = ids[rng.below(4) as usize];
        let others: Vec<NodeId> = ids.iter().copied().filter(|&id| id != special).collect();
        let config = if rng.chance_ppm(500_000) {
            let mut quorums: Vec<Vec<NodeId>> = others.iter().map(|&x| vec![special, x]).collect();
            quorums.push(others.clone());
            ClusterConfig::custom(members(), quorums)
        } else {
            let quorums = [vec![others[0], others[1]], vec![others[0], others[2]], vec![others[1], others[2]]];
            ClusterConfig::custom(members(), quorums)
        }
        .expect("hub and passive-member quorums intersect");
        if avoid.is_none_or(|a| a.quorums != config.quorums) {
            return config;
        }
    }
    unreachable!("16 draws among 8 configurations all hit the one to avoid")
}

/// What one seed changes, and when.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kind: PlanKind,
    /// The configurations the cluster moves through, in order.
    pub steps: Vec<ClusterConfig>,
    /// True time the first step is asked for.
    pub first_at_ns: u64,
    /// Pause between one step completing and the next being asked for.
    pub gap_max_ns: u64,
    /// Per step: crash the leader this long after the step's joint record
    /// appears in its log (`CrashMidChange`).
    pub crash_on_joint: Vec<Option<u64>>,
    /// Odds that a step is also asked for a second time, a little later.
    pub duplicate_ppm: u64,
    /// Removed replicas are shut down within this long of their removal.
    pub retire_delay_max_ns: u64,
}

impl Plan {
    pub fn new(kind: PlanKind, initial: &ClusterConfig, rng: &mut Rng) -> Plan {
        let initial_ids: BTreeSet<NodeId> = initial.members.keys().copied().collect();
        let mut next_id = initial_ids.iter().max().copied().unwrap_or(0) + 1;
        let mut steps = Vec::new();
        let mut crash_on_joint = Vec::new();
        match kind {
            PlanKind::GrowShrink => {
                let five: BTreeSet<NodeId> = initial_ids.iter().copied().chain([next_id, next_id + 1]).collect();
                steps.push(majority_of(initial, &five));
                steps.push(majority_of(initial, &pick_subset(rng, &five, 3)));
            }
            PlanKind::Replace => {
                let mut order: Vec<NodeId> = initial_ids.iter().copied().collect();
                // Fisher-Yates: which member goes first is part of the seed.
                for i in (1..order.len()).rev() {
                    let j = rng.below(i as u64 + 1) as usize;
                    order.swap(i, j);
                }
                let mut members = initial_ids.clone();
                for old in order {
                    let new = next_id;
                    next_id += 1;
                    if rng.chance_ppm(500_000) {
                        // What `traftctl config add-member` then `remove-member` ask for.
                        let from = steps.last().unwrap_or(initial);
                        let grown = from.after(&MembershipChange::Add { id: new, addr: joined_addr(new) });
                        let grown = grown.expect("a new id and address");
                        let shrunk = grown.after(&MembershipChange::Remove { id: old }).expect("a member of four");
                        members.insert(new);
                        members.remove(&old);
                        steps.extend([grown, shrunk]);
                    } else {
                        members.remove(&old);
                        members.insert(new);
                        steps.push(majority_of(initial, &members));
                    }
                }
            }
            PlanKind::GridSwitch => {
                let a = custom_four(initial, rng, None);
                steps.push(a.clone());
                if rng.chance_ppm(500_000) {
                    steps.push(custom_four(initial, rng, Some(&a)));
                }
                steps.push(majority_of(initial, &initial_ids));
            }
            PlanKind::CrashMidChange => {
                let added = rng.range(1, 2) as i64;
                let grown: BTreeSet<NodeId> = initial_ids.iter().copied().chain(next_id..next_id + added).collect();
                steps.push(majority_of(initial, &grown));
                steps.push(majority_of(initial, &pick_subset(rng, &grown, 3)));
            }
        }
        for k in 0..steps.len() {
            let crash = kind == PlanKind::CrashMidChange && (k == 0 || rng.chance_ppm(500_000));
            // Zero: before the record reached the disk or anyone else; a few
            // ms: after it went out to some followers.
            let delay = match rng.below(4) {
                0 | 1 => 1,
                2 => rng.range(1, 3 * MS),
                _ => rng.range(3 * MS, 30 * MS),
            };
            crash_on_joint.push(crash.then_some(delay));
        }
        Plan {
            kind,
            steps,
            first_at_ns: rng.range(300 * MS, 1500 * MS),
            gap_max_ns: *rng.pick(&[0, 200 * MS, SEC]),
            crash_on_joint,
            duplicate_ppm: *rng.pick(&[0, 300_000]),
            retire_delay_max_ns: *rng.pick(&[0, 300 * MS, 1500 * MS]),
        }
    }

    pub fn describe(&self) -> String {
        let steps: Vec<String> = self.steps.iter().map(|c| c.to_string()).collect();
        format!(
            "{:?}: first at {}ms, gaps <= {}ms, duplicates {}ppm, retire within {}ms, crash on joint {:?}; steps: {}",
            self.kind,
            self.first_at_ns / MS,
            self.gap_max_ns / MS,
            self.duplicate_ppm,
            self.retire_delay_max_ns / MS,
            self.crash_on_joint.iter().map(|c| c.map(|d| d / 1000)).collect::<Vec<_>>(),
            steps.join(" => ")
        )
    }
}

/// Same voters and the same quorums, by member id: positions may differ
/// between two records of one configuration.
pub fn same_quorum_system(a: &ClusterConfig, b: &ClusterConfig) -> bool {
    let canon = |c: &ClusterConfig| {
        let mut q: Vec<Vec<NodeId>> = c.quorums.iter().map(|&b| c.bitmap_to_ids(b)).collect();
        q.sort();
        (c.voters(), q)
    };
    canon(a) == canon(b)
}

/// What the simulator must do with a reply to the driver.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Nothing: a late or duplicate answer.
    Ignore,
    /// The current step is complete.
    Done,
    /// Ask again after this long.
    Retry { after_ns: u64 },
    /// The driver asked for something invalid: a bug of the plan.
    Fatal(String),
}

#[derive(Debug, Default, Clone)]
pub struct DriverStats {
    pub attempts: u64,
    pub duplicates: u64,
    pub not_leader: u64,
    pub in_progress: u64,
    pub unsafe_refusals: u64,
    pub lost: u64,
    pub timeouts: u64,
    pub completed: u64,
    /// Steps completed during the safety phase, under faults.
    pub completed_under_faults: u64,
    /// Steps whose final record was appended by a later leader than the one
    /// that appended their joint record and was crashed for it.
    pub finished_by_next_leader: u64,
    pub leader_crashes_mid_joint: u64,
    pub aborts_asked: u64,
    /// Aborts answered once the way back committed.
    pub aborts_done: u64,
    /// Refused as unsafe: the joint record may have committed.
    pub aborts_refused_unsafe: u64,
    /// Nothing to abort: the change was done (or not begun) when it arrived.
    pub aborts_nothing: u64,
    /// No leader, a redirect too many, no answer.
    pub aborts_other: u64,
    /// Change requests answered `ChangeAborted`.
    pub changes_aborted: u64,
}

#[derive(Debug)]
struct Attempt {
    request: RequestId,
    node: NodeId,
}

pub struct Driver {
    pub plan: Plan,
    /// Index of the step in progress; `plan.steps.len()` when all are done.
    pub step: usize,
    /// The configuration of the last completed step (the initial one first).
    pub current: ClusterConfig,
    /// Whether the current step was asked for at least once.
    pub started: bool,
    pending: Option<Attempt>,
    /// Every request sent, with its step: late replies still count.
    requests: BTreeMap<RequestId, usize>,
    /// Where the last `NotLeader` pointed.
    hint: Option<NodeId>,
    /// Only the newest scheduled wake acts.
    pub token: u64,
    pub rng: Rng,
    pub stats: DriverStats,
    /// The last answer, for a liveness report.
    pub last_answer: String,
    /// `(step, ballot)` of the leader crashed after the step's joint record.
    pub crashed_mid_joint: Option<(usize, traftctl::pb::LeaderId)>,
    pub crash_armed: bool,
    /// Whether and when to abort a step; its own stream (see `Sim::new`).
    pub abort_rng: Rng,
    /// Abort requests sent and not yet answered, with the redirects each
    /// followed so far.
    aborts: BTreeMap<RequestId, u32>,
    abort_hops: u32,
}

/// Redirects one abort follows, as `traftctl` does.
const ABORT_HOPS_MAX: u32 = 4;

/// Odds that the operator aborts a step it has asked for, and how long it
/// waits first: long enough to catch the learners and the joint stage.
const ABORT_PPM: u64 = 350_000;
const ABORT_AFTER_MAX_NS: u64 = 400 * MS;

/// A timed-out request is given up on (its node may have crashed with it)
/// and asked again.
pub const ATTEMPT_TIMEOUT_NS: u64 = 3 * SEC;

impl Driver {
    pub fn new(plan: Plan, initial: ClusterConfig, rng: Rng) -> Driver {
        let crash_armed = plan.crash_on_joint.first().is_some_and(|c| c.is_some());
        Driver {
            plan,
            step: 0,
            current: initial,
            started: false,
            pending: None,
            requests: BTreeMap::new(),
            hint: None,
            token: 0,
            rng,
            stats: DriverStats::default(),
            last_answer: "none yet".to_string(),
            crashed_mid_joint: None,
            crash_armed,
            abort_rng: Rng::new(0),
            aborts: BTreeMap::new(),
            abort_hops: 0,
        }
    }

    /// At a step's first request: whether to abort it, and after how long.
    pub fn draw_abort(&mut self) -> Option<u64> {
        self.abort_rng.chance_ppm(ABORT_PPM).then(|| self.abort_rng.range(MS, ABORT_AFTER_MAX_NS))
    }

    /// Where to send an abort: where the last redirect pointed, else anyone.
    pub fn choose_abort_node(&mut self, up: &[NodeId]) -> Option<NodeId> {
        match self.hint {
            Some(h) if up.contains(&h) => Some(h),
            _ if up.is_empty() => None,
            _ => Some(*self.abort_rng.pick(up)),
        }
    }

    /// An abort left; a redirected one counts once, with its hops.
    pub fn abort_sent(&mut self, request: RequestId, redirected: bool) {
        let hops = if redirected { self.abort_hops } else { 0 };
        self.aborts.insert(request, hops);
        if !redirected {
            self.stats.aborts_asked += 1;
        }
    }

    pub fn owns_abort(&self, request: RequestId) -> bool {
        self.aborts.contains_key(&request)
    }

    /// Counts an abort's answer; `Ok(Some(node))` to follow a redirect to
    /// the leader, `Err` for an answer no abort may get.
    pub fn on_abort_reply(
        &mut self,
        request: RequestId,
        reply: Option<&ClientReply>,
    ) -> Result<Option<NodeId>, String> {
        let Some(hops) = self.aborts.remove(&request) else { return Ok(None) };
        match reply {
            Some(ClientReply::Proposed { .. }) => self.stats.aborts_done += 1,
            Some(ClientReply::Failed(TraftError::Unsafe(_))) => self.stats.aborts_refused_unsafe += 1,
            Some(ClientReply::Failed(TraftError::Rejected(_))) => self.stats.aborts_nothing += 1,
            Some(ClientReply::Failed(TraftError::NotLeader { leader: Some(l), .. })) if hops < ABORT_HOPS_MAX => {
                self.abort_hops = hops + 1;
                return Ok(Some(l.id));
            }
            Some(ClientReply::Failed(TraftError::ChangeAborted)) => {
                return Err(format!("abort request {request} was itself told it was aborted"));
            }
            Some(ClientReply::Failed(_)) | None => self.stats.aborts_other += 1,
            Some(other) => return Err(format!("abort request {request} answered with {other:?}")),
        }
        Ok(None)
    }

    pub fn done(&self) -> bool {
        self.step >= self.plan.steps.len()
    }

    pub fn target(&self) -> Option<&ClusterConfig> {
        self.plan.steps.get(self.step)
    }

    /// The node to ask: where the last redirect pointed, else any running one.
    pub fn choose_node(&mut self, up: &[NodeId]) -> Option<NodeId> {
        match self.hint.take() {
            Some(h) if up.contains(&h) => Some(h),
            _ if up.is_empty() => None,
            _ => Some(*self.rng.pick(up)),
        }
    }

    /// A request for the current step left for `node`.
    pub fn sent(&mut self, request: RequestId, node: NodeId, duplicate: bool) {
        self.started = true;
        self.requests.insert(request, self.step);
        if duplicate {
            self.stats.duplicates += 1;
        } else {
            self.stats.attempts += 1;
            self.pending = Some(Attempt { request, node });
        }
    }

    /// Whether `request` is the one the driver waits for.
    pub fn is_pending(&self, request: RequestId) -> bool {
        self.pending.as_ref().is_some_and(|p| p.request == request)
    }

    pub fn owns(&self, request: RequestId) -> bool {
        self.requests.contains_key(&request)
    }

    /// The timeout of the pending request fired: its outcome is unknown.
    pub fn timed_out(&mut self) {
        if self.pending.take().is_some() {
            self.stats.timeouts += 1;
        }
    }

    /// Node `id` went down (or was shut down): a request pending there will
    /// never be answered. True when the driver should ask again soon.
    pub fn node_down(&mut self, id: NodeId) -> bool {
        if self.pending.as_ref().is_some_and(|p| p.node == id) {
            self.pending = None;
            self.stats.lost += 1;
            return true;
        }
        false
    }

    /// Interprets a reply (`None`: the node was down, the connection
    /// refused); `Done` moves nothing yet (see [`Driver::complete`]).
    pub fn on_reply(&mut self, request: RequestId, reply: Option<&ClientReply>) -> Outcome {
        let Some(step) = self.requests.remove(&request) else {
            return Outcome::Ignore;
        };
        let pending = self.is_pending(request);
        if pending {
            self.pending = None;
        }
        self.last_answer = format!("step {step} request {request}: {reply:?}");
        if step != self.step {
            // A late answer about a step already complete.
            return Outcome::Ignore;
        }
        let backoff = |rng: &mut Rng, lo: u64, hi: u64| Outcome::Retry { after_ns: rng.range(lo, hi) };
        let Some(reply) = reply else {
            return if pending { backoff(&mut self.rng, 10 * MS, 100 * MS) } else { Outcome::Ignore };
        };
        let outcome = match reply {
            ClientReply::Proposed { .. } => return Outcome::Done,
            ClientReply::Failed(TraftError::Rejected(why)) if why.contains("already has this configuration") => {
                return Outcome::Done;
            }
            ClientReply::Failed(TraftError::ChangeInProgress) => {
                self.stats.in_progress += 1;
                backoff(&mut self.rng, 30 * MS, 300 * MS)
            }
            ClientReply::Failed(TraftError::Rejected(why)) => {
                return Outcome::Fatal(format!("change to {} (step {step}) rejected: {why}", self.plan.steps[step]));
            }
            ClientReply::Failed(TraftError::NotLeader { leader, .. }) => {
                self.stats.not_leader += 1;
                self.hint = leader.map(|l| l.id);
                backoff(&mut self.rng, MS, 10 * MS)
            }
            ClientReply::Failed(TraftError::NoLeader) => {
                self.stats.not_leader += 1;
                backoff(&mut self.rng, 30 * MS, 200 * MS)
            }
            ClientReply::Failed(TraftError::Unsafe(_)) => {
                self.stats.unsafe_refusals += 1;
                backoff(&mut self.rng, 100 * MS, 500 * MS)
            }
            ClientReply::Failed(TraftError::LeadershipLost { .. }) => {
                self.stats.lost += 1;
                backoff(&mut self.rng, 30 * MS, 300 * MS)
            }
            ClientReply::Failed(TraftError::ChangeAborted) => {
                self.stats.changes_aborted += 1;
                backoff(&mut self.rng, 30 * MS, 300 * MS)
            }
            ClientReply::Failed(_) => backoff(&mut self.rng, 30 * MS, 300 * MS),
            ClientReply::Read { .. } | ClientReply::Transferred { .. } => {
                return Outcome::Fatal(format!("change request {request} answered with a read: {reply:?}"));
            }
        };
        // Only the attempt the driver waits for schedules a retry; an
        // answer to a duplicate changes nothing.
        if pending { outcome } else { Outcome::Ignore }
    }

    /// Marks the current step complete; returns the members it removed.
    pub fn complete(&mut self, under_faults: bool) -> Vec<NodeId> {
        let target = self.plan.steps[self.step].clone();
        let removed: Vec<NodeId> =
            self.current.members.keys().copied().filter(|id| !target.members.contains_key(id)).collect();
        self.current = target;
        self.step += 1;
        self.started = false;
        self.pending = None;
        self.hint = None;
        self.stats.completed += 1;
        if under_faults {
            self.stats.completed_under_faults += 1;
        }
        self.crash_armed = self.plan.crash_on_joint.get(self.step).is_some_and(|c| c.is_some());
        removed
    }
}
