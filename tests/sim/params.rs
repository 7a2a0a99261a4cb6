//! What one seed decides: the cluster shape and the parameters of the run.

use traftctl::pb::ClusterConfig;
use traftctl::replica::{CommitOrder, NodeId, Options};

use crate::membership::PlanKind;
use crate::network::NetParams;
use crate::rng::Rng;
use crate::workload::WorkloadParams;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

// ---- cluster shapes --------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Three members, majority quorums.
    Three,
    /// Five members, majority quorums.
    Five,
    /// Six members in a 2x3 grid: a quorum is a full row plus a full column
    /// (4 members), so some 4-member sets are quorums and others are not.
    Grid,
    /// Four members where member 1 is a hub: quorums {1,2} {1,3} {1,4} and
    /// {2,3,4}. Two members can commit, but only with the hub.
    Hub,
    /// Membership changes (`membership.rs`), all under the seeded faults:
    /// three members grow to five and shrink back to three.
    GrowShrink,
    /// Every one of three members replaced by a new one.
    Replace,
    /// Four members switch from majority to hand-made quorums and back.
    GridSwitch,
    /// A leader crashed right after the joint record of a change appears in
    /// its log; the next leader must finish the change.
    CrashMidChange,
    /// Three members steered into issue #10's state (`tailhunt.rs`): a
    /// snapshot installed with an out-of-order tail, the leader crashed
    /// right after, and a candidate missing one seq of that tail.
    SnapshotTail,
    /// The same with five members (two victims, two others).
    SnapshotTailFive,
}

pub const ALL_SHAPES: [Shape; 10] = [
    Shape::Three,
    Shape::Five,
    Shape::Grid,
    Shape::Hub,
    Shape::GrowShrink,
    Shape::Replace,
    Shape::GridSwitch,
    Shape::CrashMidChange,
    Shape::SnapshotTail,
    Shape::SnapshotTailFive,
];

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Three => "three",
            Shape::Five => "five",
            Shape::Grid => "grid",
            Shape::Hub => "hub",
            Shape::GrowShrink => "grow_shrink",
            Shape::Replace => "replace",
            Shape::GridSwitch => "grid_switch",
            Shape::CrashMidChange => "crash_mid_change",
            Shape::SnapshotTail => "snapshot_tail",
            Shape::SnapshotTailFive => "snapshot_tail_five",
        }
    }

    pub fn parse(s: &str) -> Option<Shape> {
        ALL_SHAPES.into_iter().find(|sh| sh.name() == s)
    }

    /// The membership plan this shape follows, if it changes membership.
    pub fn plan_kind(self) -> Option<PlanKind> {
        match self {
            Shape::Three | Shape::Five | Shape::Grid | Shape::Hub | Shape::SnapshotTail | Shape::SnapshotTailFive => {
                None
            }
            Shape::GrowShrink => Some(PlanKind::GrowShrink),
            Shape::Replace => Some(PlanKind::Replace),
            Shape::GridSwitch => Some(PlanKind::GridSwitch),
            Shape::CrashMidChange => Some(PlanKind::CrashMidChange),
        }
    }

    pub fn config(self) -> ClusterConfig {
        let members = |n: i64| (1..=n).map(|id| (id, format!("sim-{id}"))).collect::<Vec<_>>();
        let config = match self {
            Shape::Three | Shape::GrowShrink | Shape::Replace | Shape::CrashMidChange | Shape::SnapshotTail => {
                ClusterConfig::majority(members(3))
            }
            Shape::GridSwitch => ClusterConfig::majority(members(4)),
            Shape::Five | Shape::SnapshotTailFive => ClusterConfig::majority(members(5)),
            Shape::Grid => ClusterConfig::grid(2, 3, members(6)),
            Shape::Hub => ClusterConfig::custom(members(4), [vec![1, 2], vec![1, 3], vec![1, 4], vec![2, 3, 4]]),
        }
        .expect("the simulator's shapes are valid configurations");
        config.validate().expect("the simulator's shapes are valid configurations");
        config
    }

    /// Whether runs of this shape steer toward issue #10's state.
    pub fn hunts_tails(self) -> bool {
        matches!(self, Shape::SnapshotTail | Shape::SnapshotTailFive)
    }
}

// ---- parameters ------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct SimParams {
    pub safety_ns: u64,
    pub liveness_ns: u64,
    pub net: NetParams,
    /// Mean time between crashes (of any node); `None`: no crashes.
    pub crash_mean_ns: Option<u64>,
    /// Odds that a crash hits the current leader rather than a random node:
    /// leader crashes are what make elections, merges and base adoption.
    pub crash_leader_ppm: u64,
    pub restart_min_ns: u64,
    pub restart_max_ns: u64,
    pub partition_mean_ns: Option<u64>,
    pub partition_max_ns: u64,
    /// Mean time between leadership transfers an operator asks the leader
    /// for (to a random member or the most caught up); `None`: none.
    pub transfer_mean_ns: Option<u64>,
    pub fsync_min_ns: u64,
    pub fsync_max_ns: u64,
    pub slow_fsync_ppm: u64,
    pub slow_fsync_max_ns: u64,
    pub tick_min_ns: u64,
    pub tick_max_ns: u64,
    pub drift_max_ppm: i64,
    pub workload: Option<WorkloadParams>,
    pub lease_ns: u64,
    pub clock_error_ppm: u64,
    /// Log-wide invariants run on every node at least this often.
    pub full_check_every: u64,
    /// Replica tunables some seeds shrink, so that batching, flow control
    /// and the `Overrides` floor are pushed to their edges (swarm testing:
    /// one run stresses one corner instead of every run averaging them).
    pub max_batch_records: usize,
    pub max_inflight_per_follower: usize,
    pub window: i64,
    pub floor_lag: i64,
    /// Snapshot and compaction knobs: small values make every run snapshot,
    /// compact and ship snapshots in many chunks.
    pub snapshot_every: i64,
    pub compact_retain: i64,
    pub snapshot_chunk_bytes: usize,
    /// How long new commits may wait for a write to carry them.
    pub commit_persist_ns: u64,
    /// Odds that a lost forward is reported lost to its sender (a twentieth
    /// of that for one that arrived anyway).
    pub lost_notice_ppm: u64,
    /// Never drawn: set with the `prefix` knob (`seeds_prefix_commit_order`).
    pub commit_order: CommitOrder,
}

impl SimParams {
    /// Faults and load drawn from the seed: some runs calm, some hostile.
    pub fn random(rng: &mut Rng) -> Self {
        let clock_error_ppm = 50_000;
        let delay_max_ns = rng.range(MS, 20 * MS);
        let safety_ns = rng.range(5 * SEC, 10 * SEC);
        let mut pauses = Vec::new();
        if rng.chance_ppm(500_000) {
            let mut t = 0;
            while t < safety_ns {
                t += rng.around_ns(2 * SEC);
                let end = t + rng.range(100 * MS, 1500 * MS);
                pauses.push((t, end));
                t = end;
            }
        }
        SimParams {
            safety_ns,
            liveness_ns: 30 * SEC,
            net: NetParams {
                delay_min_ns: 100_000,
                delay_max_ns,
                long_delay_ppm: *rng.pick(&[0, 2_000, 10_000, 30_000]),
                long_delay_max_ns: rng.range(50 * MS, 600 * MS),
                drop_ppm: *rng.pick(&[0, 10_000, 50_000, 150_000]),
                dup_ppm: *rng.pick(&[0, 10_000, 50_000]),
            },
            crash_mean_ns: *rng.pick(&[None, Some(3 * SEC), Some(SEC), Some(400 * MS)]),
            crash_leader_ppm: *rng.pick(&[0, 300_000, 700_000]),
            restart_min_ns: 10 * MS,
            restart_max_ns: rng.range(100 * MS, 2 * SEC),
            partition_mean_ns: *rng.pick(&[None, Some(2 * SEC), Some(700 * MS)]),
            partition_max_ns: rng.range(200 * MS, 3 * SEC),
            fsync_min_ns: 20_000,
            fsync_max_ns: *rng.pick(&[200_000, 2 * MS, 8 * MS]),
            slow_fsync_ppm: 10_000,
            slow_fsync_max_ns: 50 * MS,
            tick_min_ns: 10 * MS,
            tick_max_ns: 50 * MS,
            // e covers the ratio of two clocks: (1 + d) / (1 - d) <= 1 / (1 - e).
            drift_max_ppm: (clock_error_ppm * 2 / 5) as i64,
            workload: Some(WorkloadParams {
                clients: rng.range(3, 6) as usize,
                keys: rng.range(2, 3) as usize,
                think_max_ns: rng.range(0, 20 * MS),
                // Short timeouts make clients leave a stuck leader early and
                // find the new one while others still talk to the old.
                timeout_ns: *rng.pick(&[300 * MS, 800 * MS, 2 * SEC]),
                wander_ppm: *rng.pick(&[0, 20_000, 100_000]),
                pauses,
            }),
            lease_ns: *rng.pick(&[300 * MS, 500 * MS, SEC]),
            clock_error_ppm,
            full_check_every: 32,
            max_batch_records: *rng.pick(&[1, 4, 256]),
            max_inflight_per_follower: *rng.pick(&[1, 2, 8]),
            window: *rng.pick(&[16, 64, 4096]),
            // 0: the floor runs at the leader's own prefix, so any member
            // that falls behind has to catch up through a snapshot.
            floor_lag: *rng.pick(&[0, 32, 8192]),
            snapshot_every: *rng.pick(&[0, 8, 32, 200]),
            compact_retain: *rng.pick(&[0, 4, 64]),
            snapshot_chunk_bytes: *rng.pick(&[16, 256, 1 << 20]),
            // Drawn last, so the draws above mean what they meant before.
            transfer_mean_ns: *rng.pick(&[None, Some(2 * SEC), Some(500 * MS)]),
            commit_persist_ns: *rng.pick(&[0, 20 * MS, 200 * MS]),
            lost_notice_ppm: *rng.pick(&[0, 500_000, 1_000_000]),
            commit_order: CommitOrder::Any,
        }
    }

    /// No faults and no clients: for scripted scenarios.
    pub fn calm() -> Self {
        SimParams {
            safety_ns: 0,
            liveness_ns: 30 * SEC,
            net: NetParams::calm(),
            crash_mean_ns: None,
            crash_leader_ppm: 0,
            restart_min_ns: 10 * MS,
            restart_max_ns: 100 * MS,
            partition_mean_ns: None,
            partition_max_ns: 0,
            fsync_min_ns: 20_000,
            fsync_max_ns: 500_000,
            slow_fsync_ppm: 0,
            slow_fsync_max_ns: 0,
            tick_min_ns: 10 * MS,
            tick_max_ns: 20 * MS,
            drift_max_ppm: 0,
            workload: None,
            lease_ns: 500 * MS,
            clock_error_ppm: 50_000,
            full_check_every: 1,
            max_batch_records: 256,
            max_inflight_per_follower: 8,
            window: 4096,
            floor_lag: 8192,
            snapshot_every: 0,
            compact_retain: 0,
            snapshot_chunk_bytes: 1 << 20,
            transfer_mean_ns: None,
            commit_persist_ns: 0,
            lost_notice_ppm: 0,
            commit_order: CommitOrder::Any,
        }
    }

    /// The knobs under which a lagging follower must catch up through a
    /// snapshot while the leader's applied set has a tail (`tailhunt.rs`):
    /// the floor at the leader's own applied prefix, or a leader that
    /// snapshots every few seqs and retains nothing; more keys, so records
    /// above a hole apply out of order more often.
    pub fn tail_preset(&mut self, rng: &mut Rng) {
        self.floor_lag = *rng.pick(&[0, 0, 32]);
        self.snapshot_every = *rng.pick(&[2, 4, 8]);
        self.compact_retain = *rng.pick(&[0, 0, 4]);
        if let Some(w) = self.workload.as_mut() {
            w.keys = rng.range(3, 6) as usize;
        }
    }

    /// Replaces drawn knobs after the draw, so the rest of the run stays
    /// what the seed makes it: `"floor_lag=0,window=16"`. Keys: `batch`,
    /// `inflight`, `window`, `floor_lag`, `lease_ms`, `drop_ppm`.
    pub fn override_knobs(&mut self, spec: &str) -> Result<(), String> {
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| format!("`{item}` is not key=value"))?;
            let v: i64 = value.trim().parse().map_err(|_| format!("`{item}`: the value is not an integer"))?;
            let n = u64::try_from(v).map_err(|_| format!("`{item}`: the value is negative"))?;
            match key.trim() {
                "batch" => self.max_batch_records = n as usize,
                "inflight" => self.max_inflight_per_follower = n as usize,
                "window" => self.window = v,
                "floor_lag" => self.floor_lag = v,
                "lease_ms" => self.lease_ns = n * MS,
                "snapshot_every" => self.snapshot_every = v,
                "retain" => self.compact_retain = v,
                "chunk" => self.snapshot_chunk_bytes = n as usize,
                "drop_ppm" => self.net.drop_ppm = n,
                "prefix" => self.commit_order = if n > 0 { CommitOrder::Prefix } else { CommitOrder::Any },
                other => {
                    return Err(format!(
                        "unknown knob `{other}`; known: batch, inflight, window, floor_lag, lease_ms, drop_ppm, \
                         snapshot_every, retain, chunk, prefix"
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn options(&self, id: NodeId, jitter_seed: u64) -> Options {
        let mut o = Options::new(id);
        o.lease_ns = self.lease_ns;
        o.clock_error_ppm = self.clock_error_ppm;
        o.heartbeat_ns = self.lease_ns / 5;
        o.retransmit_ns = self.lease_ns * 3 / 10;
        o.election_jitter_ns = self.lease_ns / 2;
        o.max_batch_records = self.max_batch_records;
        o.max_inflight_per_follower = self.max_inflight_per_follower;
        o.window = self.window;
        o.floor_lag = self.floor_lag;
        o.snapshot_every = self.snapshot_every;
        o.compact_retain = self.compact_retain;
        o.snapshot_chunk_bytes = self.snapshot_chunk_bytes;
        o.commit_persist_ns = self.commit_persist_ns;
        o.jitter_seed = jitter_seed;
        o.commit_order = self.commit_order;
        o
    }

    pub fn describe(&self) -> String {
        let opt_ms = |o: Option<u64>| o.map_or("off".to_string(), |v| format!("{}ms", v / MS));
        let w = self.workload.as_ref();
        format!(
            "safety {}ms, lease {}ms, delay {:.1}-{:.1}ms (long {}ppm up to {}ms), drop {}ppm, dup {}ppm, crash \
             every ~{} ({}ppm the leader, restart <= {}ms), partition every ~{} (<= {}ms), fsync <= {:.1}ms, drift \
             <= {}ppm, transfer every ~{}, {} clients on {} keys (timeout {}ms, {}ppm to a random node), {} quiet spells; replica: \
             batch {}, inflight {}, window {}, floor lag {}, snapshot every {} (retain {}, chunk {} B), commits written within {}ms, {}ppm of lost forwards reported, commit order {:?}",
            self.safety_ns / MS,
            self.lease_ns / MS,
            self.net.delay_min_ns as f64 / MS as f64,
            self.net.delay_max_ns as f64 / MS as f64,
            self.net.long_delay_ppm,
            self.net.long_delay_max_ns / MS,
            self.net.drop_ppm,
            self.net.dup_ppm,
            opt_ms(self.crash_mean_ns),
            self.crash_leader_ppm,
            self.restart_max_ns / MS,
            opt_ms(self.partition_mean_ns),
            self.partition_max_ns / MS,
            self.fsync_max_ns as f64 / MS as f64,
            self.drift_max_ppm,
            opt_ms(self.transfer_mean_ns),
            w.map_or(0, |w| w.clients),
            w.map_or(0, |w| w.keys),
            w.map_or(0, |w| w.timeout_ns / MS),
            w.map_or(0, |w| w.wander_ppm),
            w.map_or(0, |w| w.pauses.len()),
            self.max_batch_records,
            self.max_inflight_per_follower,
            self.window,
            self.floor_lag,
            self.snapshot_every,
            self.compact_retain,
            self.snapshot_chunk_bytes,
            self.commit_persist_ns / MS,
            self.lost_notice_ppm,
            self.commit_order,
        )
    }
}
