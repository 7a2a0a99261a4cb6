//! The protocol invariants (PROTOCOL.md section 5), checked after every step.
//!
//! One function per invariant, each named after what it guards. The checker
//! keeps its own view of the run, computed without trusting the replica:
//!
//! * **Global commit** is derived from storage, not from any replica's
//!   `Committed`: seq `s` is committed under ballot `L` once the nodes that
//!   *durably* held `s` (as a record, through an explicit bit of a held
//!   record's `Overrides`, or applied into the durable snapshot) with durable
//!   `Committer == L`, while claiming it in `Accepted`, contain a quorum. The
//!   all-ones prefix below an `Overrides` offset backs nothing (see
//!   [`vouched_by`]). Durable, because an acceptance lost in a crash was never an
//!   acceptance; claimed, because a voter only hands a candidate what its
//!   `Accepted` says it has. This is the Paxos "chosen" and over-approximates
//!   nothing a correct leader could count.
//! * **Ballot logs**: every record held by a replica whose committer is `L` is
//!   `L`'s record at that seq (rule 4), so the first copy seen fills `L`'s log
//!   and every other copy must match it.
//! * **Configurations** (rule 9): which quorums count for a seq under `L` is
//!   read from the config records of `L`'s log, with the checker's own idea
//!   of what each stage may do (see "Which quorums count" below), not from
//!   what the records say their quorums are.
//!
//! ## Which quorums count
//!
//! A leader counts every commit with the configuration in force on it *at
//! the time*: its newest config record, however old the seq. The checker
//! does not see that moment, and must neither under-count (a correct leader
//! would then look like it committed something no quorum accepted) nor take
//! the leader's word for the quorums (a leader whose joint configuration
//! listed only the new quorums would then look right). So, for ballot `L`
//! with config records `C_0 < C_1 < ...` in its log (`C_-1` the initial
//! configuration), seq `s` is committed under `L` when the nodes that durably
//! accepted `s` under `L` hold a quorum of some `C_j` that was in force at or
//! after `s` was appended (`C_j` in force at `s`, or a later one), where the
//! quorums of `C_j` are:
//!
//! * a learners record: its voters' quorums, which must be those of the
//!   record before it (learners vote in nothing);
//! * a joint record: a quorum of the record before it (learners dropped)
//!   *and* a quorum of its `next`, computed here from those two records, not
//!   taken from the joint record's own list;
//! * a final record after a joint one: its own quorums, but only once a
//!   quorum of that joint configuration (as computed here) durably held
//!   every seq up to the joint record under some ballot: before that, a new
//!   quorum alone proves nothing, since an old quorum could still elect a
//!   leader that never saw the change. Under a later ballot whose base holds
//!   the final record it counts at once (the ballot that appended it must
//!   have waited), hence "under some ballot";
//! * a final record after a learners record (a change abandoned) or after a
//!   final one: usable only if its quorums are the ones before it;
//! * anything else (say, new voters with no joint record in between) counts
//!   nothing, and the transition check reports it.
//!
//! Counting `s` with a configuration older than the leader's newest one is
//! safe: a change moves on from `C_j` only once a quorum of a configuration
//! at least as strict holds everything up to the record that ends it. So
//! this over-approximates nothing the protocol could lose, and includes
//! every commit a correct leader makes; a leader that commits under the new
//! quorums alone, before the joint prefix is held, is caught at the step it
//! does so by "local Committed is globally committed".
//!
//! Per-node checks look at the node a step touched. The log-wide ones
//! (single commit, log-committer consistency, backed `Accepted`) look at the
//! seqs the step changed, and at the whole log on a restart, a change of
//! committer, and every `full_every` steps of the node, so a change the
//! incremental view missed is still caught, a few steps late.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use traftctl::kv::KvState;
use traftctl::leader_id::short_opt;
use traftctl::pb::{ClusterConfig, Cmd, LeaderId, Record, TailBitmap};
use traftctl::replica::{CATCH_UP_BOUND, HardState, NodeId, Replica, Role, Seq};

use crate::cluster::Node;

/// A broken invariant, as found; the simulator adds seed, step and time.
#[derive(Debug, Clone)]
pub struct Failure {
    pub invariant: &'static str,
    pub detail: String,
    /// Filled in by the simulator.
    pub step: u64,
    pub at_ns: u64,
}

impl Failure {
    pub fn new(invariant: &'static str, detail: impl Into<String>) -> Self {
        Failure { invariant, detail: detail.into(), step: 0, at_ns: 0 }
    }
}

pub type Check = Result<(), Failure>;

/// What makes a record the record at its seq: who proposed it and what it
/// does. An author proposes at most one record per seq, so this is the
/// record's identity; comparing the command too catches a replica that
/// mangled a record it kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub author: Option<LeaderId>,
    pub cmd: Option<Cmd>,
}

impl Ident {
    pub fn of(r: &Record) -> Self {
        Ident { author: r.author, cmd: r.cmd.clone() }
    }

    /// `*self == Ident::of(r)` without the allocation: this runs for every
    /// held record on every full scan.
    pub fn matches(&self, r: &Record) -> bool {
        self.author == r.author && self.cmd.as_ref() == r.cmd.as_ref()
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cmd {
            Some(c) => write!(f, "<{}>{c}", short_opt(&self.author)),
            None => write!(f, "<{}><empty>", short_opt(&self.author)),
        }
    }
}

/// Pending and recent in-memory claims of one node, attached to a durable
/// write: what the node said it accepted, under which committer, at a step
/// whose state that write (or an earlier one) makes durable.
#[derive(Debug, Clone)]
pub struct Claim {
    pub committer: Option<LeaderId>,
    /// Only a replica whose `VotedFor` is its committer can acknowledge that
    /// committer's forwards (rule 1). The distinction matters once snapshots
    /// exist: a replica still adopting a new leader may install a snapshot
    /// that applied seqs of the new leader's log, and its `Accepted` then
    /// claims seqs its old committer's log holds other records at.
    pub voted_for: Option<LeaderId>,
    pub accepted: TailBitmap,
}

#[derive(Debug, Clone)]
struct GlobalCommit {
    /// The least ballot under which the seq was found committed by the
    /// independent count; `None` until that count sees it (a replica's own
    /// `Committed` can run ahead of the count by one step).
    ballot: Option<LeaderId>,
    ident: Option<Ident>,
    /// Where `ident` came from, for the report.
    source: String,
}

/// What the checker remembers of one node between its steps.
#[derive(Debug, Clone, Default)]
struct Shadow {
    incarnation: u64,
    voted_for: Option<LeaderId>,
    committer: Option<LeaderId>,
    accepted: TailBitmap,
    committed: TailBitmap,
    applied: Option<TailBitmap>,
    steps_since_full: u64,
    /// The ballot whose base was last checked against the global commits.
    leader_checked: Option<LeaderId>,
    /// The ballot the node led with a fixed base after its last step.
    leading: Option<LeaderId>,
    /// The log the node appends to while it leads, for rule 6.
    appends: Option<AppendView>,
    /// What `applies_in_order` saw after the node's last step: its applied
    /// set and how many snapshots it had installed.
    in_order_applied: TailBitmap,
    in_order_installs: u64,
}

/// What the rule-6 check knows of the log a leader appends to: every record
/// of it seen during the reign. Kept rather than read from the replica
/// because a leader may compact above its floor before the floor catches up
/// (the floor moves only on replies), and the records compacted there still
/// interfere with the next ones.
#[derive(Debug, Clone)]
struct AppendView {
    ballot: LeaderId,
    records: BTreeMap<Seq, Record>,
    /// Every record of the log below this seq has been taken in (and
    /// checked, if the leader appended it).
    next: Seq,
}

/// A quorum system by member ids: records of one configuration may number
/// positions differently, so configurations are compared this way.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Voters {
    ids: Vec<NodeId>,
    /// Each quorum's ids, sorted; the list sorted.
    quorums: Vec<Vec<NodeId>>,
}

impl Voters {
    fn of(c: &ClusterConfig) -> Self {
        let mut quorums: Vec<Vec<NodeId>> = c.quorums.iter().map(|&q| c.bitmap_to_ids(q)).collect();
        quorums.sort();
        Voters { ids: c.voters(), quorums }
    }

    fn is_quorum(&self, ids: &BTreeSet<NodeId>) -> bool {
        self.quorums.iter().any(|q| q.iter().all(|id| ids.contains(id)))
    }

    /// The seqs whose acceptors contain one of the quorums.
    fn committed(&self, acc: &BTreeMap<NodeId, TailBitmap>) -> TailBitmap {
        let mut committed = TailBitmap::empty();
        for q in &self.quorums {
            let mut inter: Option<TailBitmap> = None;
            for id in q {
                let Some(a) = acc.get(id) else {
                    inter = Some(TailBitmap::empty());
                    break;
                };
                match inter.as_mut() {
                    None => inter = Some(a.clone()),
                    Some(x) => x.intersection(a),
                }
            }
            if let Some(x) = inter {
                committed.union(&x);
            }
        }
        committed
    }
}

/// The stage of a config record, from its shape: learners listed, a `next`
/// without learners (joint), or neither (final, and the initial one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Learners,
    Joint,
    Final,
}

/// Whether `back` is the configuration the joint configuration `joint`
/// moves away from (an aborted change goes back to it).
fn is_way_back(joint: &ClusterConfig, back: &ClusterConfig) -> bool {
    let Some(next) = joint.next.as_deref() else { return false };
    back.next.is_none()
        && back.learners.is_empty()
        && ClusterConfig::joint(back, next).is_ok_and(|j| Voters::of(&j) == Voters::of(joint))
}

fn stage_of(c: &ClusterConfig) -> Stage {
    if !c.learners.is_empty() {
        Stage::Learners
    } else if c.next.is_some() {
        Stage::Joint
    } else {
        Stage::Final
    }
}

/// When a configuration of a ballot's log may count commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Usable {
    Always,
    /// Once the joint record `(seq, author)` before it had everything up to
    /// it held by a quorum of the joint configuration.
    AfterJointHeld(Seq, Option<LeaderId>),
    Never,
}

/// One configuration of a ballot's log, as the commit count uses it.
#[derive(Debug, Clone)]
struct ChainEntry {
    /// The config record's seq; -1 for the initial configuration.
    seq: Seq,
    author: Option<LeaderId>,
    stage: Stage,
    /// A set is a quorum when it contains a quorum of each (two for a joint
    /// configuration).
    quorums: Vec<Voters>,
    usable: Usable,
}

/// The configurations of a log whose config records are `configs`.
fn build_chain(initial: &ClusterConfig, configs: &BTreeMap<Seq, (Option<LeaderId>, ClusterConfig)>) -> Vec<ChainEntry> {
    let mut chain = vec![ChainEntry {
        seq: -1,
        author: None,
        stage: Stage::Final,
        quorums: vec![Voters::of(initial)],
        usable: Usable::Always,
    }];
    let mut prev: &ClusterConfig = initial;
    for (&seq, (author, config)) in configs {
        let stage = stage_of(config);
        let own = Voters::of(config);
        let before = Voters::of(prev);
        let prev_entry = chain.last().expect("starts with the initial configuration");
        let (quorums, usable) = match (stage, config.next.as_deref()) {
            (Stage::Joint, Some(next)) => (vec![before, Voters::of(next)], Usable::Always),
            (Stage::Final, _)
                if prev_entry.stage == Stage::Joint && prev.next.as_deref().is_some_and(|n| Voters::of(n) == own) =>
            {
                let held = Usable::AfterJointHeld(prev_entry.seq, prev_entry.author);
                (vec![own], held)
            }
            // An aborted change's way back: every quorum of the joint
            // configuration contains one of the old side, so the old side
            // may count commits at once (docs/protocol.md, "Aborting a
            // change"; `config_transition` checks it was allowed).
            (Stage::Final, _) if prev_entry.stage == Stage::Joint && is_way_back(prev, config) => {
                (vec![own], Usable::Always)
            }
            _ if own == before => (vec![own], Usable::Always),
            _ => (vec![own], Usable::Never),
        };
        chain.push(ChainEntry { seq, author: *author, stage, quorums, usable });
        prev = config;
    }
    chain
}

pub struct Checker {
    initial: ClusterConfig,
    /// The chain of a ballot with no config record in its log.
    initial_chain: Vec<ChainEntry>,
    /// Per ballot, the config records of its log: `(seq -> (author, config))`.
    ballot_configs: BTreeMap<LeaderId, BTreeMap<Seq, (Option<LeaderId>, ClusterConfig)>>,
    chains: BTreeMap<LeaderId, Vec<ChainEntry>>,
    /// Joint records `(seq, author)` whose prefix a quorum of the joint
    /// configuration durably held, under some ballot.
    joint_held: BTreeSet<(Seq, Option<LeaderId>)>,
    /// Ballots whose commit count must be redone: their configurations
    /// changed, or a final record in them became usable.
    stale_ballots: BTreeSet<LeaderId>,
    /// Config records already checked when their leader appended them.
    appends_checked: BTreeSet<(LeaderId, Seq)>,
    full_every: u64,
    pub checks: u64,
    shadows: Vec<Shadow>,
    /// Per ballot, per node: the seqs durably accepted under that ballot.
    acceptors: BTreeMap<LeaderId, BTreeMap<NodeId, TailBitmap>>,
    committed_under: BTreeMap<LeaderId, TailBitmap>,
    /// Union of `committed_under`: every seq committed under some ballot.
    pub global_committed: TailBitmap,
    global: BTreeMap<Seq, GlobalCommit>,
    ballot_logs: BTreeMap<LeaderId, BTreeMap<Seq, Ident>>,
    base_lens: BTreeMap<LeaderId, Seq>,
    /// Which node, in which incarnation, led each ballot, and from when
    /// (true time its base was first seen fixed).
    leaders: BTreeMap<LeaderId, (NodeId, u64, u64)>,
    /// True time of the current step, set by the simulator.
    pub now_ns: u64,
    /// Applied set (canonical encoding) -> the state first seen with it.
    applied_states: BTreeMap<(i64, Vec<u64>), (NodeId, KvState)>,
    /// The replicas run with `--commit-order prefix`: `applies_in_order`.
    pub in_order: bool,
}

fn canonical(b: &TailBitmap) -> TailBitmap {
    let mut c = b.clone();
    c.compact();
    c.reclamed = 0;
    c
}

fn short_bm(b: &TailBitmap) -> String {
    let s = b.to_string();
    if s.len() > 160 { format!("{}...", &s[..160]) } else { s }
}

/// The seqs a held record vouches for (rule 5): its own, and the explicit
/// bits of its `Overrides`, those at or above the bitmap's `Offset`. The
/// all-ones prefix below the `Offset` is its author's claim that everything
/// there had been applied when it was written (rule 6), not a record this
/// replica holds: counting it would let a replica claim, and a leader count,
/// a seq whose record it can hand nobody.
pub fn vouched_by(rec: &Record) -> impl Iterator<Item = Seq> + '_ {
    let o = rec.overrides_bm();
    o.iter_from(o.offset.max(0)).chain(std::iter::once(rec.seq))
}

/// Whether `rec` vouches for `seq` (see [`vouched_by`]).
pub fn vouches_for(rec: &Record, seq: Seq) -> bool {
    let o = rec.overrides_bm();
    rec.seq == seq || (seq >= o.offset && o.contains(seq))
}

/// Interference as docs/protocol.md defines it, written out here rather than
/// taken from the replica: a no-op interferes with nothing, a config record
/// with everything else, key commands when they share the key.
fn interferes(a: &Cmd, b: &Cmd) -> bool {
    if a.is_noop() || b.is_noop() {
        return false;
    }
    a.is_config() || b.is_config() || a.key == b.key
}

/// Rule 6 for one record `b` just appended on a log whose earlier records
/// are `earlier` (at least those at or above `b`'s floor), with `global` the
/// records committed anywhere; `applied_prefix` is the author's. `Err`: what
/// is wrong, for the report.
fn exact_at_append(
    b: &Record,
    earlier: &BTreeMap<Seq, Record>,
    global: &BTreeMap<Seq, GlobalCommit>,
    applied_prefix: Seq,
) -> Result<(), String> {
    let Some(cmd) = &b.cmd else {
        return Err("a leader appended an empty record".to_string());
    };
    let (o, d, seq) = (b.overrides_bm(), b.depends_bm(), b.seq);
    let floor = o.offset;
    if d.offset != floor {
        return Err(format!(
            "the Overrides floor {floor} and the Depends floor {} differ: the prefixes must claim the same records",
            d.offset
        ));
    }
    // The all-ones prefix claims every record below it as applied, here
    // and on every follower that accepts the record: it must be true here.
    if floor > applied_prefix {
        return Err(format!("its floor {floor} is above the author's applied prefix {applied_prefix}"));
    }
    if !o.contains(seq) {
        return Err("it does not override itself".to_string());
    }
    if let Some(x) = o.iter().find(|&x| x > seq).or_else(|| d.iter().find(|&x| x >= seq)) {
        return Err(format!("it names seq {x}, at or after its own, in Overrides or Depends"));
    }
    if let Some(x) = o.iter().find(|&x| x != seq && d.contains(x)) {
        return Err(format!("seq {x} is in both Overrides and Depends"));
    }
    // Each seq that must be named, and why (for the report).
    let mut must: BTreeMap<Seq, String> = BTreeMap::new();
    for a in earlier.range(floor..seq).map(|(_, a)| a) {
        let Some(a_cmd) = &a.cmd else { continue };
        if !interferes(a_cmd, cmd) {
            continue;
        }
        must.insert(a.seq, a.short());
        if !a_cmd.is_config() {
            for x in a.overrides_bm().iter().filter(|&x| x >= floor && x != a.seq) {
                must.entry(x).or_insert_with(|| format!("{x}, overridden by {}", a.short()));
            }
        }
    }
    for (&x, g) in global.range(floor..seq) {
        if earlier.contains_key(&x) {
            continue;
        }
        if let Some(ident) = &g.ident
            && ident.cmd.as_ref().is_some_and(|c| interferes(c, cmd))
        {
            must.entry(x).or_insert_with(|| format!("{x}: {ident}, committed, no longer held"));
        }
    }
    for (x, why) in must {
        match (o.contains(x), d.contains(x)) {
            (true, false) | (false, true) => {}
            (in_o, _) => {
                return Err(format!(
                    "earlier interfering seq {x} (record {why}) at or above the floor {floor} is in {} of Overrides \
                     and Depends, not exactly one",
                    if in_o { "both" } else { "neither" }
                ));
            }
        }
    }
    Ok(())
}

/// Whether some held record after `seq` overrides it explicitly.
fn overridden_in(log: &BTreeMap<Seq, Record>, seq: Seq) -> bool {
    log.range(seq + 1..).any(|(_, r)| vouches_for(r, seq))
}

impl Checker {
    pub fn new(config: ClusterConfig, nodes: usize, full_every: u64) -> Self {
        Checker {
            initial_chain: build_chain(&config, &BTreeMap::new()),
            initial: config,
            ballot_configs: BTreeMap::new(),
            chains: BTreeMap::new(),
            joint_held: BTreeSet::new(),
            stale_ballots: BTreeSet::new(),
            appends_checked: BTreeSet::new(),
            full_every: full_every.max(1),
            checks: 0,
            shadows: vec![Shadow::default(); nodes],
            acceptors: BTreeMap::new(),
            committed_under: BTreeMap::new(),
            global_committed: TailBitmap::empty(),
            global: BTreeMap::new(),
            ballot_logs: BTreeMap::new(),
            base_lens: BTreeMap::new(),
            leaders: BTreeMap::new(),
            now_ns: 0,
            applied_states: BTreeMap::new(),
            in_order: false,
        }
    }

    /// Seqs some replica or the independent count saw committed.
    pub fn records_committed(&self) -> usize {
        self.global.len()
    }

    // ---- events from the simulator -------------------------------------

    /// A durable write of node `i` completed (storage already updated).
    pub fn on_durable(&mut self, nodes: &[Node], i: usize, before: &HardState, claims: &[Claim]) -> Check {
        let node = &nodes[i];
        self.durable_ballots_monotonic(node, before)?;
        let hard = &node.storage.hard;
        let Some(committer) = hard.committer else {
            return Ok(());
        };
        let mut claimed = TailBitmap::empty();
        for c in claims.iter().filter(|c| c.committer == Some(committer) && c.voted_for == Some(committer)) {
            claimed.union(&c.accepted);
        }
        self.accept(nodes, i, committer, &claimed)
    }

    /// A replica joined: one more node to shadow.
    pub fn add_node(&mut self) {
        self.shadows.push(Shadow::default());
    }

    pub fn on_crash(&mut self, i: usize) {
        // Forget the in-memory view; the next incarnation starts from disk.
        let s = &mut self.shadows[i];
        s.applied = None;
        s.leader_checked = None;
        s.leading = None;
        s.appends = None;
    }

    /// Checks after a step that gave node `i` an input. `dirty`: the seqs
    /// the step wrote to storage (a proxy for what changed in the log).
    pub fn after_step(&mut self, nodes: &[Node], i: usize, dirty: &[Seq], force_full: bool) -> Check {
        let node = &nodes[i];
        let Some(r) = node.replica.as_ref() else {
            return Ok(());
        };
        let restarted = self.shadows[i].incarnation != node.incarnation;
        let full = force_full
            || restarted
            || self.shadows[i].committer != r.committer()
            || self.shadows[i].steps_since_full + 1 >= self.full_every;

        self.ballots_monotonic(node, r, restarted)?;
        self.election_safety(node, r)?;
        self.honest_messages_admitted(node, r)?;

        // The logs first: their config records decide which quorums the
        // commit count uses, and a leader may count with a record appended
        // in this very step.
        if full {
            let all: Vec<Seq> = r.log().keys().copied().collect();
            self.single_commit_per_seq(node, r, all.iter().copied())?;
            self.log_matches_committer(node, r, all.iter().copied())?;
            self.accepted_is_backed_full(node, r)?;
            self.accepted_is_sendable_full(node, r)?;
        } else {
            let sh = &self.shadows[i];
            let mut seqs: Vec<Seq> = dirty.to_vec();
            seqs.extend((r.committed() - &sh.committed).iter_from(0));
            let new_accepted: Vec<Seq> = (r.accepted() - &sh.accepted).iter_from(0).collect();
            seqs.extend(new_accepted.iter().copied());
            seqs.sort_unstable();
            seqs.dedup();
            self.single_commit_per_seq(node, r, seqs.iter().copied())?;
            self.log_matches_committer(node, r, seqs.iter().copied())?;
            // A dropped record shows in `dirty` (its delete), not in new
            // Accepted bits: the claim it backed may already be there.
            let sendable: Vec<Seq> = new_accepted.iter().chain(dirty).copied().collect();
            self.accepted_is_backed(node, r, new_accepted.into_iter())?;
            self.accepted_is_sendable(node, r, sendable.into_iter())?;
        }
        self.leader_snapshot_configs(r)?;
        self.config_records_appended(nodes, node, r, dirty)?;
        self.overrides_depends_exact(node, r)?;
        self.recount_stale(nodes)?;

        // Then the independent commit count: the checks below compare the
        // replica's view with it.
        self.accept_from_memory(nodes, i)?;
        self.applied_committed_accepted_nested(node, r)?;
        self.committed_is_global(node, r)?;
        self.accepted_covers_base(node, r)?;
        self.same_applied_same_state(node, r, restarted || full)?;
        self.applies_in_order(node, r, restarted)?;
        self.removed_leader_steps_down(node, r)?;

        if let Some(l) = r.leader_ballot()
            && (full || self.shadows[i].leader_checked != Some(l))
        {
            self.leader_holds_every_commit(node, r, l)?;
            self.shadows[i].leader_checked = Some(l);
        }

        let sh = &mut self.shadows[i];
        sh.incarnation = node.incarnation;
        sh.voted_for = r.voted_for();
        sh.committer = r.committer();
        sh.accepted = r.accepted().clone();
        sh.committed = r.committed().clone();
        sh.leading = r.leader_ballot();
        sh.steps_since_full = if full { 0 } else { sh.steps_since_full + 1 };
        Ok(())
    }

    // ---- the independent commit count -----------------------------------

    /// Node `i` holds durably what it claims in memory, under the same
    /// committer on disk and in memory: that is an acceptance.
    fn accept_from_memory(&mut self, nodes: &[Node], i: usize) -> Check {
        let node = &nodes[i];
        let Some(r) = node.replica.as_ref() else {
            return Ok(());
        };
        match (r.committer(), node.storage.hard.committer) {
            (Some(mem), Some(disk)) if mem == disk && r.voted_for() == Some(mem) => {
                let claimed = r.accepted().clone();
                self.accept(nodes, i, mem, &claimed)
            }
            _ => Ok(()),
        }
    }

    fn accept(&mut self, nodes: &[Node], i: usize, ballot: LeaderId, claimed: &TailBitmap) -> Check {
        let node = &nodes[i];
        let durable = claimed & &node.storage.covered;
        let mine = self.acceptors.entry(ballot).or_default().entry(node.id).or_default();
        if mine.is_superset(&durable) {
            return Ok(());
        }
        mine.union(&durable);
        self.stale_ballots.insert(ballot);
        self.recount_stale(nodes)
    }

    /// Recounts every stale ballot. A recount can find a joint prefix held,
    /// which makes other ballots stale; each joint record is found held only
    /// once, so the work list empties.
    fn recount_stale(&mut self, nodes: &[Node]) -> Check {
        let bound = 4 * (self.chains.len() + self.stale_ballots.len() + 4) * (self.joint_held.len() + 4);
        for _ in 0..bound {
            let Some(l) = self.stale_ballots.pop_first() else {
                return Ok(());
            };
            self.recount(nodes, l)?;
        }
        Err(Failure::new("simulator", format!("the commit count did not settle within {bound} recounts")))
    }

    /// Which joint records of `ballot`'s log had everything up to them held
    /// by a joint quorum under it; makes stale the ballots whose final
    /// record that makes usable.
    fn find_joint_prefixes_held(&mut self, ballot: LeaderId) {
        let Some(acc) = self.acceptors.get(&ballot) else { return };
        let chain = self.chains.get(&ballot).unwrap_or(&self.initial_chain);
        let mut found = Vec::new();
        for e in chain.iter().filter(|e| e.stage == Stage::Joint) {
            if self.joint_held.contains(&(e.seq, e.author)) {
                continue;
            }
            let holders: BTreeSet<NodeId> =
                acc.iter().filter(|(_, a)| a.prefix_len() > e.seq).map(|(&id, _)| id).collect();
            if e.quorums.iter().all(|q| q.is_quorum(&holders)) {
                found.push((e.seq, e.author));
            }
        }
        for key in found {
            self.joint_held.insert(key);
            for (&l, chain) in &self.chains {
                if chain.iter().any(|e| e.usable == Usable::AfterJointHeld(key.0, key.1)) {
                    self.stale_ballots.insert(l);
                }
            }
        }
    }

    /// What the configurations of `ballot`'s log count as committed under
    /// it (see "Which quorums count" in the module docs).
    fn count_commits(&self, ballot: LeaderId, already: &TailBitmap) -> TailBitmap {
        let mut committed = TailBitmap::empty();
        let Some(acc) = self.acceptors.get(&ballot) else {
            return committed;
        };
        let chain = self.chains.get(&ballot).unwrap_or(&self.initial_chain);
        // Several entries share a quorum system (a learners record keeps the
        // voters'): count each once.
        let mut counted: Vec<(&Voters, TailBitmap)> = Vec::new();
        for (j, e) in chain.iter().enumerate() {
            // Entry `j` counts the seqs appended before the next record.
            let end = chain.get(j + 1).map(|next| next.seq);
            if end.is_some_and(|end| already.prefix_len() >= end) {
                continue;
            }
            let usable = match e.usable {
                Usable::Always => true,
                Usable::AfterJointHeld(seq, author) => self.joint_held.contains(&(seq, author)),
                Usable::Never => false,
            };
            if !usable {
                continue;
            }
            let mut mine: Option<TailBitmap> = None;
            for q in &e.quorums {
                let c = match counted.iter().find(|(v, _)| *v == q) {
                    Some((_, c)) => c.clone(),
                    None => {
                        let c = q.committed(acc);
                        counted.push((q, c.clone()));
                        c
                    }
                };
                match mine.as_mut() {
                    None => mine = Some(c),
                    Some(m) => m.intersection(&c),
                }
            }
            let Some(mut mine) = mine else { continue };
            if let Some(end) = end {
                mine.intersection(&TailBitmap::from_prefix(end));
            }
            committed.union(&mine);
        }
        committed
    }

    /// Recomputes what is committed under `ballot` and checks every newly
    /// committed seq against the other views.
    fn recount(&mut self, nodes: &[Node], ballot: LeaderId) -> Check {
        self.find_joint_prefixes_held(ballot);
        let empty = TailBitmap::empty();
        let before = self.committed_under.get(&ballot).unwrap_or(&empty);
        let committed = self.count_commits(ballot, before);
        if before.is_superset(&committed) {
            return Ok(());
        }
        let fresh: Vec<Seq> = (&committed - before).iter_from(0).collect();
        self.committed_under.entry(ballot).or_default().union(&committed);
        for s in fresh {
            self.global_committed.set(s);
            let ident = self.ballot_logs.get(&ballot).and_then(|log| log.get(&s)).cloned();
            let e = self.global.entry(s).or_insert(GlobalCommit { ballot: None, ident: None, source: String::new() });
            if e.ballot.is_none_or(|b| ballot < b) {
                e.ballot = Some(ballot);
            }
            if let Some(ident) = ident {
                self.note_committed_record(s, ident, format!("log of ballot {ballot}"))?;
            }
            for node in nodes {
                if let Some(r) = node.replica.as_ref()
                    && let Some(l) = r.leader_ballot()
                    && l > ballot
                {
                    self.checks += 1;
                    self.leader_holds_commit(node, r, l, s)?;
                }
            }
        }
        Ok(())
    }

    /// Invariant 1's bookkeeping: `ident` is the record committed at `seq`.
    fn note_committed_record(&mut self, seq: Seq, ident: Ident, source: String) -> Check {
        let e = self.global.entry(seq).or_insert(GlobalCommit { ballot: None, ident: None, source: String::new() });
        match &e.ident {
            Some(known) if *known != ident => Err(Failure::new(
                "single commit per seq",
                format!(
                    "seq {seq}: {known} was committed (seen in {}), and now {ident} is committed there too (seen in \
                     {source})",
                    e.source
                ),
            )),
            Some(_) => Ok(()),
            None => {
                e.ident = Some(ident);
                e.source = source;
                Ok(())
            }
        }
    }

    // ---- invariant 1 ----------------------------------------------------

    /// At most one record is ever committed at a seq, across all replicas
    /// and all time.
    fn single_commit_per_seq(&mut self, node: &Node, r: &Replica, seqs: impl Iterator<Item = Seq>) -> Check {
        self.checks += 1;
        let committed = r.committed();
        for s in seqs {
            if !committed.contains(s) {
                continue;
            }
            let Some(rec) = r.log().get(&s).filter(|rec| !rec.empty()) else {
                continue;
            };
            if self.global.get(&s).and_then(|g| g.ident.as_ref()).is_some_and(|known| known.matches(rec)) {
                continue;
            }
            self.note_committed_record(s, Ident::of(rec), format!("node {} (committed there)", node.id))?;
        }
        Ok(())
    }

    // ---- invariant 2 ----------------------------------------------------

    /// Every record committed under a ballot below `l` is in the base of
    /// leader `l`.
    fn leader_holds_every_commit(&mut self, node: &Node, r: &Replica, l: LeaderId) -> Check {
        self.checks += 1;
        let seqs: Vec<Seq> =
            self.global.iter().filter(|(_, g)| g.ballot.is_some_and(|b| b < l)).map(|(&s, _)| s).collect();
        for s in seqs {
            self.leader_holds_commit(node, r, l, s)?;
        }
        Ok(())
    }

    fn leader_holds_commit(&self, node: &Node, r: &Replica, l: LeaderId, s: Seq) -> Check {
        let g = &self.global[&s];
        let fail = |what: String| {
            Err(Failure::new(
                "committed records survive into later leaders",
                format!(
                    "seq {s} was committed under {} ({}), but leader {l} on node {} {what}",
                    short_opt(&g.ballot),
                    g.ident.as_ref().map_or("record not seen".to_string(), |i| i.to_string()),
                    node.id
                ),
            ))
        };
        if !r.accepted().contains(s) {
            return fail(format!("lacks it in Accepted {}", short_bm(r.accepted())));
        }
        match r.log().get(&s).filter(|rec| !rec.empty()) {
            Some(rec) => {
                if let Some(ident) = &g.ident
                    && !ident.matches(rec)
                {
                    return fail(format!("holds {} there instead", Ident::of(rec)));
                }
            }
            None => {
                // Applied: compacted into (or installed from) a snapshot. A
                // held record's all-ones prefix does not count: the leader
                // could not hand the record to anyone.
                if !overridden_in(r.log(), s) && !r.applied().contains(s) {
                    return fail(
                        "neither holds it, nor holds a record that overrides it explicitly, nor applied it".to_string(),
                    );
                }
            }
        }
        Ok(())
    }

    // ---- invariant 3 ----------------------------------------------------

    /// Every record a replica holds is its committer's record at that seq,
    /// or the record globally committed there: an installed snapshot's tail
    /// records are committed records, possibly of a later ballot than the
    /// installer's committer (docs/protocol.md, "Installing").
    fn log_matches_committer(&mut self, node: &Node, r: &Replica, seqs: impl Iterator<Item = Seq>) -> Check {
        self.checks += 1;
        let committer = r.committer();
        for s in seqs {
            let Some(rec) = r.log().get(&s) else {
                continue;
            };
            if rec.empty() {
                continue;
            }
            // A committed record of a later ballot than the committer's is
            // not that committer's record; it says nothing about its log.
            let committed_here = self.global.get(&s).and_then(|g| g.ident.as_ref()).is_some_and(|i| i.matches(rec));
            if committed_here && r.committed().contains(s) && (committer.is_none() || rec.author > committer) {
                continue;
            }
            let Some(l) = committer else {
                return Err(Failure::new(
                    "log-committer consistency",
                    format!("node {} holds {} but has no committer", node.id, rec.short()),
                ));
            };
            if self.ballot_logs.get(&l).and_then(|log| log.get(&s)).is_some_and(|known| known.matches(rec)) {
                continue;
            }
            self.ballot_record(l, s, Ident::of(rec), format!("node {}", node.id))?;
        }
        Ok(())
    }

    /// A leader's configuration history includes the config records it got
    /// with an installed snapshot: they are committed, so they are in its
    /// log (invariant 2) even though it holds them apart.
    fn leader_snapshot_configs(&mut self, r: &Replica) -> Check {
        let Some(l) = r.leader_ballot() else { return Ok(()) };
        for (&s, rec) in r.snapshot_configs() {
            if self.ballot_logs.get(&l).and_then(|log| log.get(&s)).is_some_and(|known| known.matches(rec)) {
                continue;
            }
            self.checks += 1;
            self.ballot_record(l, s, Ident::of(rec), format!("snapshot configs of leader {l}"))?;
        }
        Ok(())
    }

    /// Records `ident` as ballot `l`'s record at `s`, or checks it against
    /// the copy seen first.
    fn ballot_record(&mut self, l: LeaderId, s: Seq, ident: Ident, source: String) -> Check {
        let log = self.ballot_logs.entry(l).or_default();
        match log.get(&s) {
            Some(known) if *known != ident => Err(Failure::new(
                "log-committer consistency",
                format!("{source} holds {ident} at seq {s} with committer {l}, but {l}'s log has {known} there"),
            )),
            Some(_) => Ok(()),
            None => {
                log.insert(s, ident.clone());
                if let Some(config) = ident.cmd.as_ref().and_then(|c| c.config_value()) {
                    let configs = self.ballot_configs.entry(l).or_default();
                    configs.insert(s, (ident.author, config.clone()));
                    let chain = build_chain(&self.initial, configs);
                    self.chains.insert(l, chain);
                    self.stale_ballots.insert(l);
                }
                if self.committed_under.get(&l).is_some_and(|c| c.contains(s)) {
                    self.note_committed_record(s, ident, format!("log of ballot {l}"))?;
                }
                Ok(())
            }
        }
    }

    /// Rule 5 for the seqs that just entered `Accepted`.
    fn accepted_is_backed(&mut self, node: &Node, r: &Replica, seqs: impl Iterator<Item = Seq>) -> Check {
        self.checks += 1;
        for s in seqs {
            let held = r.log().get(&s).is_some_and(|rec| !rec.empty());
            if !held && !r.applied().contains(s) && !overridden_in(r.log(), s) {
                return Err(Failure::new(
                    "backed Accepted",
                    format!(
                        "node {} claims seq {s} in Accepted but neither holds it, nor holds a record overriding it \
                         explicitly, nor applied it",
                        node.id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Rule 5 over the whole of `Accepted`.
    fn accepted_is_backed_full(&mut self, node: &Node, r: &Replica) -> Check {
        self.checks += 1;
        let mut backed = r.applied().clone();
        for rec in r.log().values().filter(|rec| !rec.empty()) {
            for s in vouched_by(rec) {
                backed.set(s);
            }
        }
        if backed.is_superset(r.accepted()) {
            return Ok(());
        }
        let unbacked = r.accepted() - &backed;
        Err(Failure::new(
            "backed Accepted",
            format!(
                "node {} claims {} in Accepted without holding, explicitly overriding or applying them",
                node.id,
                short_bm(&unbacked)
            ),
        ))
    }

    /// Where `Accepted` must be sendable: at or above the compaction point,
    /// which never passes the newest snapshot the node wrote or loaded.
    fn sendable_from(node: &Node, r: &Replica) -> Seq {
        r.compacted_below().min(node.snapshot_prefix)
    }

    /// Rules 3 and 5 for a voter: every seq it claims in `Accepted` at or
    /// above its compaction point is a held record's own seq or an explicit
    /// bit of its `Overrides`, so a granting vote can send a record for it.
    /// Applied does not count there: an out-of-order applied tail above a
    /// snapshot's prefix is claimed through Applied, and a candidate pulls a
    /// voter's snapshot only when it lacks a seq below the compaction point
    /// (issue #10: an install that dropped its tail records lost a write).
    fn accepted_is_sendable(&mut self, node: &Node, r: &Replica, seqs: impl Iterator<Item = Seq>) -> Check {
        self.checks += 1;
        let from = Self::sendable_from(node, r);
        for s in seqs.filter(|&s| s >= from && r.accepted().contains(s)) {
            let held = r.log().get(&s).is_some_and(|rec| !rec.empty());
            if !held && !overridden_in(r.log(), s) {
                return Err(Failure::new(
                    "sendable Accepted",
                    format!(
                        "node {} claims seq {s} in Accepted, at or above its compaction point {from} (compacted_below \
                         {}, newest snapshot prefix {}), but holds no record for it and none overriding it \
                         explicitly: a vote could not send it{}",
                        node.id,
                        r.compacted_below(),
                        node.snapshot_prefix,
                        if r.applied().contains(s) { " (it is claimed through Applied only)" } else { "" }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// [`Self::accepted_is_sendable`] over the whole of `Accepted`.
    fn accepted_is_sendable_full(&mut self, node: &Node, r: &Replica) -> Check {
        let from = Self::sendable_from(node, r);
        let mut sendable = TailBitmap::from_prefix(from);
        for rec in r.log().values().filter(|rec| !rec.empty()) {
            for s in vouched_by(rec) {
                sendable.set(s);
            }
        }
        if sendable.is_superset(r.accepted()) {
            self.checks += 1;
            return Ok(());
        }
        let first = (r.accepted() - &sendable).iter_from(from).next();
        self.accepted_is_sendable(node, r, first.into_iter())
    }

    // ---- invariant 4 ----------------------------------------------------

    fn applied_committed_accepted_nested(&mut self, node: &Node, r: &Replica) -> Check {
        self.checks += 1;
        if !r.committed().is_superset(r.applied()) {
            return Err(Failure::new(
                "Applied ⊆ Committed ⊆ Accepted",
                format!(
                    "node {} applied {} which is not committed (Committed {})",
                    node.id,
                    short_bm(&(r.applied() - r.committed())),
                    short_bm(r.committed())
                ),
            ));
        }
        if !r.accepted().is_superset(r.committed()) {
            return Err(Failure::new(
                "Applied ⊆ Committed ⊆ Accepted",
                format!(
                    "node {} has {} committed but not accepted (Accepted {})",
                    node.id,
                    short_bm(&(r.committed() - r.accepted())),
                    short_bm(r.accepted())
                ),
            ));
        }
        Ok(())
    }

    /// A replica's `Committed` never runs ahead of what a quorum durably
    /// accepted: otherwise it could apply a record the next leader drops.
    fn committed_is_global(&mut self, node: &Node, r: &Replica) -> Check {
        self.checks += 1;
        if self.global_committed.is_superset(r.committed()) {
            return Ok(());
        }
        let extra = r.committed() - &self.global_committed;
        Err(Failure::new(
            "local Committed is globally committed",
            format!(
                "node {} (committer {}) has {} committed, but no quorum durably accepted those seqs under one \
                 ballot (per ballot: {})",
                node.id,
                short_opt(&r.committer()),
                short_bm(&extra),
                self.describe_acceptors(extra.iter_from(0).next().unwrap_or(0))
            ),
        ))
    }

    fn describe_acceptors(&self, seq: Seq) -> String {
        let parts: Vec<String> = self
            .acceptors
            .iter()
            .map(|(l, m)| {
                let ids: Vec<String> =
                    m.iter().filter(|(_, b)| b.contains(seq)).map(|(id, _)| id.to_string()).collect();
                format!("{l}: seq {seq} durably accepted by {{{}}}", ids.join(","))
            })
            .collect();
        parts.join("; ")
    }

    // ---- invariant 5 ----------------------------------------------------

    fn ballots_monotonic(&mut self, node: &Node, r: &Replica, restarted: bool) -> Check {
        self.checks += 1;
        let sh = &self.shadows[node.index];
        let fail = |what: String| Err(Failure::new("VotedFor and Committer never decrease", what));
        if !restarted {
            if r.voted_for() < sh.voted_for {
                return fail(format!(
                    "node {} VotedFor went from {} to {}",
                    node.id,
                    short_opt(&sh.voted_for),
                    short_opt(&r.voted_for())
                ));
            }
            if r.committer() < sh.committer {
                return fail(format!(
                    "node {} Committer went from {} to {}",
                    node.id,
                    short_opt(&sh.committer),
                    short_opt(&r.committer())
                ));
            }
        }
        // Across restarts the floor is what reached the disk: state that was
        // never durable was never promised to anyone.
        let hard = &node.storage.hard;
        if r.voted_for() < hard.voted_for || r.committer() < hard.committer {
            return fail(format!(
                "node {} runs with VotedFor {} / Committer {} below its durable {} / {}",
                node.id,
                short_opt(&r.voted_for()),
                short_opt(&r.committer()),
                short_opt(&hard.voted_for),
                short_opt(&hard.committer)
            ));
        }
        if r.committer() > r.voted_for() {
            return Err(Failure::new(
                "Committer <= VotedFor",
                format!(
                    "node {} has Committer {} above VotedFor {}",
                    node.id,
                    short_opt(&r.committer()),
                    short_opt(&r.voted_for())
                ),
            ));
        }
        Ok(())
    }

    fn durable_ballots_monotonic(&mut self, node: &Node, before: &HardState) -> Check {
        self.checks += 1;
        let after = &node.storage.hard;
        if after.voted_for < before.voted_for || after.committer < before.committer {
            return Err(Failure::new(
                "VotedFor and Committer never decrease",
                format!(
                    "node {} durably wrote VotedFor {} / Committer {} over {} / {}",
                    node.id,
                    short_opt(&after.voted_for),
                    short_opt(&after.committer),
                    short_opt(&before.voted_for),
                    short_opt(&before.committer)
                ),
            ));
        }
        if after.committer > after.voted_for {
            return Err(Failure::new(
                "Committer <= VotedFor",
                format!(
                    "node {} durably wrote Committer {} above VotedFor {}",
                    node.id,
                    short_opt(&after.committer),
                    short_opt(&after.voted_for)
                ),
            ));
        }
        Ok(())
    }

    /// One leader per ballot, ever: a ballot names its node, and a restarted
    /// node takes a new ballot rather than resume an old one. Also fixes each
    /// leader's base length, which must not change during its reign.
    /// Every member here is correct, so the boundary that refuses malformed
    /// or out-of-reach messages (`replica::validate`) must never fire: a
    /// refusal would be a correct message lost for good.
    fn honest_messages_admitted(&mut self, node: &Node, r: &Replica) -> Check {
        self.checks += 1;
        match r.last_refusal() {
            None => Ok(()),
            Some((from, why)) => Err(Failure::new(
                "honest messages admitted",
                format!("node {} refused a message from node {from}: {why}", node.id),
            )),
        }
    }

    fn election_safety(&mut self, node: &Node, r: &Replica) -> Check {
        self.checks += 1;
        let Some(l) = r.leader_ballot() else {
            return Ok(());
        };
        if r.role() != Role::Leader || l.id != node.id {
            return Err(Failure::new(
                "election safety",
                format!("node {} reports leader ballot {l} with role {:?}", node.id, r.role()),
            ));
        }
        match self.leaders.get(&l) {
            Some(&(id, inc, _)) if (id, inc) != (node.id, node.incarnation) => {
                return Err(Failure::new(
                    "election safety",
                    format!(
                        "ballot {l} is led by node {} incarnation {}, and was led by node {id} incarnation {inc}",
                        node.id, node.incarnation
                    ),
                ));
            }
            Some(_) => {}
            None => {
                self.leaders.insert(l, (node.id, node.incarnation, self.now_ns));
            }
        }
        let Some(bl) = r.base_len() else {
            return Err(Failure::new(
                "election safety",
                format!("node {} leads {l} with a fixed base but reports no base length", node.id),
            ));
        };
        match self.base_lens.get(&l) {
            Some(&known) if known != bl => Err(Failure::new(
                "election safety",
                format!("leader {l} on node {} changed its base length from {known} to {bl}", node.id),
            )),
            Some(_) => Ok(()),
            None => {
                self.base_lens.insert(l, bl);
                Ok(())
            }
        }
    }

    // ---- invariant 6 ----------------------------------------------------

    /// Rule 11, checked where it is decided rather than through the client
    /// history (which only shows a stale read if some client happens to
    /// read at the old leader after writing at the new one): a linearizable
    /// read is answered only by a leader, and never by one that a greater
    /// ballot had already replaced with a fixed base when the read arrived.
    /// Leases and read-index rounds both exclude that: the new leader's vote
    /// quorum shares a member with every quorum the old one could hear from.
    pub fn read_served_by_current_leader(&mut self, node: &Node, r: &Replica, request: u64, arrival_ns: u64) -> Check {
        self.checks += 1;
        // The step that answered may also have ended the reign (a leader
        // whose change removed it answers its pending reads, then steps
        // down): the ballot it led at the step's start counts then. A
        // replica that is not leading fails its reads instead.
        let Some(l) = r.leader_ballot().or(self.shadows[node.index].leading) else {
            return Err(Failure::new(
                "reads served by the current leader",
                format!("node {} ({:?}) answered linearizable read {request} without leading", node.id, r.role()),
            ));
        };
        let newer = self.leaders.iter().find(|&(&b, &(_, _, since))| b > l && since <= arrival_ns);
        if let Some((b, (id, _, since))) = newer {
            return Err(Failure::new(
                "reads served by the current leader",
                format!(
                    "leader {l} on node {} answered linearizable read {request}, which arrived at {:.3}ms, though \
                     leader {b} on node {id} had fixed its base at {:.3}ms",
                    node.id,
                    arrival_ns as f64 / 1e6,
                    *since as f64 / 1e6
                ),
            ));
        }
        Ok(())
    }

    /// At most one leader holds a valid lease at this instant of true time.
    pub fn single_lease(&mut self, nodes: &[Node], now_ns: u64) -> Check {
        self.checks += 1;
        let mut holders: Vec<String> = Vec::new();
        for node in nodes {
            let Some(r) = node.replica.as_ref() else {
                continue;
            };
            if r.role() != Role::Leader {
                continue;
            }
            let local = node.clock.local(now_ns);
            if let Some(end) = r.lease_end()
                && end > local
            {
                holders.push(format!(
                    "node {} (ballot {}, lease ends at local {end}, now local {local}, {} ms left)",
                    node.id,
                    short_opt(&r.leader_ballot().or(r.committer())),
                    (end - local) / 1_000_000
                ));
            }
        }
        if holders.len() > 1 {
            return Err(Failure::new("single lease holder", format!("valid leases at once: {}", holders.join("; "))));
        }
        Ok(())
    }

    // ---- invariant 7 ----------------------------------------------------

    fn same_applied_same_state(&mut self, node: &Node, r: &Replica, force: bool) -> Check {
        if !force && self.shadows[node.index].applied.as_ref() == Some(r.applied()) {
            return Ok(());
        }
        self.checks += 1;
        self.shadows[node.index].applied = Some(r.applied().clone());
        let c = canonical(r.applied());
        let key = (c.offset, c.words);
        match self.applied_states.get(&key) {
            Some((other, kv)) if kv != r.kv() => Err(Failure::new(
                "same Applied, same state",
                format!(
                    "node {} and node {other} both applied {} but hold {:?} and {:?}",
                    node.id,
                    short_bm(r.applied()),
                    r.kv(),
                    kv
                ),
            )),
            Some(_) => Ok(()),
            None => {
                self.applied_states.insert(key, (node.id, r.kv().clone()));
                Ok(())
            }
        }
    }

    /// `--commit-order prefix`: the highest seq a step newly applied has
    /// every lower seq applied, or committed and explicitly overridden by a
    /// committed record the node holds (whose apply will mark it). A step
    /// after a restart or one that installed a snapshot is not judged: its
    /// applied set was made elsewhere.
    fn applies_in_order(&mut self, node: &Node, r: &Replica, restarted: bool) -> Check {
        let sh = &mut self.shadows[node.index];
        let before = std::mem::replace(&mut sh.in_order_applied, r.applied().clone());
        let installs = r.stats().snapshots_installed;
        let installed = std::mem::replace(&mut sh.in_order_installs, installs) != installs;
        if !self.in_order || restarted || installed {
            return Ok(());
        }
        let Some(top) = (r.applied() - &before).iter_from(0).last() else {
            return Ok(());
        };
        self.checks += 1;
        let stands_in = |d: Seq| {
            r.committed().contains(d)
                && r.log().values().any(|x| x.seq != d && r.committed().contains(x.seq) && vouches_for(x, d))
        };
        match r.applied().missing_below(top).find(|&d| !stands_in(d)) {
            None => Ok(()),
            Some(d) => Err(Failure::new(
                "applies in seq order",
                format!(
                    "node {} (commit order prefix) applied seq {top} while seq {d} below it is neither applied nor \
                     committed and overridden by a committed record it holds (Applied {}, Committed {})",
                    node.id,
                    short_bm(r.applied()),
                    short_bm(r.committed())
                ),
            )),
        }
    }

    // ---- invariant 8 ----------------------------------------------------

    fn accepted_covers_base(&mut self, node: &Node, r: &Replica) -> Check {
        self.checks += 1;
        let Some(l) = r.committer() else {
            return Ok(());
        };
        let Some(&bl) = self.base_lens.get(&l) else {
            return Ok(());
        };
        if r.accepted().prefix_len() >= bl || r.accepted().is_superset(&TailBitmap::from_prefix(bl)) {
            return Ok(());
        }
        Err(Failure::new(
            "Accepted covers the committer's base",
            format!(
                "node {} has committer {l} whose base is [0, {bl}), but Accepted is {}",
                node.id,
                short_bm(r.accepted())
            ),
        ))
    }

    // ---- rule 6: Overrides and Depends ------------------------------------

    /// Rule 6 where it is decided, at every record a leader appends (base
    /// no-ops included): each earlier seq at or above the record's floor
    /// whose record interferes with it is in exactly one of its `Overrides`
    /// and `Depends`. In neither, a follower may apply the two in either
    /// order; in both, the record claims to replace what it also waits for.
    /// The earlier records are the leader's log as seen during the reign,
    /// and, for a seq it no longer holds, the record committed there; the
    /// seqs a held record explicitly overrides count as records on its key
    /// (they are gone, but their chain is what a blind write replaces).
    fn overrides_depends_exact(&mut self, node: &Node, r: &Replica) -> Check {
        let Some(l) = r.leader_ballot() else {
            return Ok(());
        };
        let slot = &mut self.shadows[node.index].appends;
        if slot.as_ref().is_none_or(|v| v.ballot != l) {
            let records = r.snapshot_configs().clone();
            *slot = Some(AppendView { ballot: l, records, next: 0 });
        }
        let view = slot.as_mut().expect("set above");
        let applied_prefix = r.applied().prefix_len();
        for rec in r.log().range(view.next..).map(|(_, rec)| rec) {
            if rec.author == Some(l) {
                self.checks += 1;
                if let Err(why) = exact_at_append(rec, &view.records, &self.global, applied_prefix) {
                    return Err(Failure::new(
                        "rule 6: Overrides/Depends exact",
                        format!(
                            "leader {l} on node {} appended {} (Overrides {}, Depends {}): {why}",
                            node.id,
                            rec.short(),
                            short_bm(rec.overrides_bm()),
                            short_bm(rec.depends_bm())
                        ),
                    ));
                }
                // The floor only rises during a reign: what lies below it
                // can no longer matter to a later record.
                let floor = rec.overrides_bm().offset;
                if view.records.first_key_value().is_some_and(|(&s, _)| s < floor) {
                    view.records = view.records.split_off(&floor);
                }
            }
            view.records.insert(rec.seq, rec.clone());
            view.next = rec.seq + 1;
        }
        Ok(())
    }

    // ---- invariant 9: configuration changes --------------------------------

    /// Rule 9 where it is decided: each config record a leader appends (in
    /// `dirty`, this step's writes) is a legal next stage after the config
    /// record before it in the leader's log.
    fn config_records_appended(&mut self, nodes: &[Node], node: &Node, r: &Replica, dirty: &[Seq]) -> Check {
        let Some(l) = r.leader_ballot() else {
            return Ok(());
        };
        for &s in dirty {
            let Some(rec) = r.log().get(&s).filter(|rec| rec.author == Some(l)) else {
                continue;
            };
            let Some(config) = rec.cmd.as_ref().and_then(|c| c.config_value()) else {
                continue;
            };
            if !self.appends_checked.insert((l, s)) {
                continue;
            }
            self.checks += 1;
            let prev = r
                .log()
                .range(..s)
                .chain(r.snapshot_configs().range(..s))
                .filter_map(|(&ps, pr)| pr.cmd.as_ref().and_then(|c| c.config_value()).map(|c| (Some(ps), c)))
                .max_by_key(|(ps, _)| *ps);
            let (prev_seq, prev) = prev.unwrap_or((None, &self.initial));
            self.config_transition(node, r, l, s, config, prev_seq, prev)?;
            if stage_of(config) == Stage::Joint && stage_of(prev) == Stage::Learners {
                self.checks += 1;
                self.learners_caught_up(nodes, node, r, s, prev)?;
            }
        }
        Ok(())
    }

    /// One change at a time, through learners (if any), a joint
    /// configuration, and the target, or back (a change abandoned).
    #[allow(clippy::too_many_arguments)]
    fn config_transition(
        &self,
        node: &Node,
        r: &Replica,
        l: LeaderId,
        s: Seq,
        config: &ClusterConfig,
        prev_seq: Option<Seq>,
        prev: &ClusterConfig,
    ) -> Check {
        let (stage, prev_stage) = (stage_of(config), stage_of(prev));
        let fail = |invariant: &'static str, what: String| {
            Err(Failure::new(
                invariant,
                format!(
                    "leader {l} on node {} appended {stage:?} config {config} at seq {s}, after {prev_stage:?} config \
                     {prev} at seq {}: {what}",
                    node.id,
                    prev_seq.map_or("(initial)".to_string(), |p| p.to_string())
                ),
            ))
        };
        const ONE: &str = "one configuration change at a time";
        let (own, before) = (Voters::of(config), Voters::of(prev));
        let same_target =
            |a: Option<&ClusterConfig>, b: &ClusterConfig| a.is_some_and(|a| Voters::of(a) == Voters::of(b));
        // A change moves on from a record only once it is committed; a new
        // change starts only from a committed final configuration.
        let prev_committed = prev_seq.is_none_or(|p| r.committed().contains(p));
        match stage {
            Stage::Learners => {
                if prev_stage != Stage::Final || !prev_committed {
                    return fail(ONE, "a change began while another was in flight".into());
                }
                if own != before {
                    return fail(ONE, "a learners record changed the voters or their quorums".into());
                }
                let Some(next) = config.next.as_deref() else {
                    return fail(ONE, "a learners record without a target".into());
                };
                let newcomers: Vec<NodeId> =
                    next.members.keys().copied().filter(|id| !prev.members.contains_key(id)).collect();
                let learners: Vec<NodeId> = config.learners.keys().copied().collect();
                if learners != newcomers {
                    return fail(ONE, format!("learners {learners:?}, but the target adds {newcomers:?}"));
                }
                Ok(())
            }
            Stage::Joint => {
                let next = config.next.as_deref().expect("a joint record has a target");
                match prev_stage {
                    Stage::Learners if !same_target(prev.next.as_deref(), next) => {
                        return fail(ONE, "the joint record's target is not the learners record's".into());
                    }
                    Stage::Learners if !prev_committed => {
                        return fail(ONE, "learners promoted before their record committed".into());
                    }
                    Stage::Learners => {}
                    Stage::Final if !prev_committed => {
                        return fail(ONE, "a change began while another was in flight".into());
                    }
                    Stage::Final => {
                        if let Some(id) = next.members.keys().find(|id| !prev.members.contains_key(id)) {
                            return fail(ONE, format!("member {id} votes with no learners stage before"));
                        }
                    }
                    Stage::Joint => return fail(ONE, "a joint record followed another one".into()),
                }
                let mut old = prev.clone();
                old.learners.clear();
                old.next = None;
                match ClusterConfig::joint(&old, next) {
                    Ok(joint) if Voters::of(&joint) == own => Ok(()),
                    Ok(joint) => fail(
                        "a joint configuration needs a quorum of both",
                        format!("its quorums are not those of {old} and {next} together ({joint})"),
                    ),
                    Err(e) => fail(ONE, format!("no joint configuration of the two: {e}")),
                }
            }
            Stage::Final => match prev_stage {
                Stage::Joint if same_target(prev.next.as_deref(), config) => Ok(()),
                // An abort: only from the leader's own joint record, and
                // only while it is uncommitted (a final record to the
                // target may follow a committed one elsewhere).
                Stage::Joint if is_way_back(prev, config) => {
                    let joint_author = prev_seq.and_then(|p| r.log().get(&p)).and_then(|rec| rec.author);
                    if joint_author != Some(l) {
                        return fail(
                            ONE,
                            format!("went back from a joint record it did not append ({joint_author:?})"),
                        );
                    }
                    if prev_committed {
                        return fail(ONE, "went back after the joint record committed".into());
                    }
                    Ok(())
                }
                Stage::Joint => fail(ONE, "the final record is not the joint record's target".into()),
                _ if own == before => Ok(()),
                _ => fail(ONE, "new voters or quorums without a joint configuration".into()),
            },
        }
    }

    /// Learners vote only once they have caught up: when the leader appends
    /// the joint record, every learner has durably committed (hence can
    /// replay, and has reported no more than) all but `CATCH_UP_BOUND` seqs
    /// of the leader's committed prefix. What it reported is at most that,
    /// so a correct leader never trips this.
    fn learners_caught_up(&self, nodes: &[Node], node: &Node, r: &Replica, s: Seq, prev: &ClusterConfig) -> Check {
        let needed = r.committed().prefix_len() - CATCH_UP_BOUND;
        for id in prev.learners.keys() {
            let Some(learner) = nodes.iter().find(|n| n.id == *id) else {
                continue;
            };
            let reached = learner.storage.hard.committed.prefix_len();
            if reached < needed {
                return Err(Failure::new(
                    "learners vote only once caught up",
                    format!(
                        "leader on node {} appended the joint record at seq {s} while learner {id} had durably \
                         committed only [0, {reached}) of the leader's [0, {}) (bound {CATCH_UP_BOUND})",
                        node.id,
                        r.committed().prefix_len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A leader whose own change removed it stops leading once the change's
    /// final record is committed: the new configuration elects its own.
    fn removed_leader_steps_down(&mut self, node: &Node, r: &Replica) -> Check {
        let Some(l) = r.leader_ballot() else {
            return Ok(());
        };
        let config = r.config();
        if config.members.contains_key(&node.id) || stage_of(config) != Stage::Final {
            return Ok(());
        }
        self.checks += 1;
        let Some(rec) = r.log().values().rev().find(|rec| rec.cmd.as_ref().is_some_and(|c| c.is_config())) else {
            return Ok(());
        };
        if rec.author == Some(l) && r.committed().contains(rec.seq) {
            return Err(Failure::new(
                "a removed leader steps down",
                format!(
                    "leader {l} on node {} committed its change to {config} (seq {}), which removes it, and still \
                     leads",
                    node.id, rec.seq
                ),
            ));
        }
        Ok(())
    }

    // ---- at the end -------------------------------------------------------

    /// Every log-wide check on every live node.
    pub fn full_scan(&mut self, nodes: &[Node]) -> Check {
        for i in 0..nodes.len() {
            self.after_step(nodes, i, &[], true)?;
        }
        Ok(())
    }
}
