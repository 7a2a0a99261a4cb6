//! Faults the simulator injects: crashes, restarts, partitions and their healing.

use super::*;

impl Sim {
    pub fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Some(r) = node.replica.take() else {
            return;
        };
        node.dead_stats.0 += r.stats().committed_out_of_order;
        node.dead_stats.1 += r.stats().applied_out_of_order;
        node.dead_snapshots.0 += r.stats().snapshots_taken;
        node.dead_snapshots.1 += r.stats().snapshots_installed;
        let lost = node.storage.pending.len();
        node.storage.pending.clear();
        node.storage.busy_until_ns = 0;
        node.held.clear();
        node.incarnation += 1;
        node.next_persist_id = None;
        node.storage.durable_id = 0;
        self.crashes += 1;
        let id = node.id;
        self.note(format!("CRASH node {id} ({lost} unsynced writes lost)"));
        self.checker.on_crash(i);
        for e in self.workload.on_crash(id, self.now_ns) {
            self.apply_effects(e);
        }
        self.admin_node_down(id);
    }

    pub fn restart(&mut self, i: usize) -> Check {
        let seed = self.jitter_seed(i);
        let node = &mut self.nodes[i];
        let opts = self.params.options(node.id, seed);
        let local = node.clock.local(self.now_ns);
        // Every other restart reads a disk that kept only what its snapshot
        // does not cover: both are what real storage may return.
        let state = node.storage.durable_state(node.restarts % 2 == 1);
        node.snapshot_prefix = state.snapshot.as_ref().map_or(0, |s| s.prefix());
        node.restarts += 1;
        let desc = format!(
            "RESTART node {} from disk: voted={} committer={} base_len={} committed={} records={}",
            node.id,
            short_opt(&state.hard_state.voted_for),
            short_opt(&state.hard_state.committer),
            state.hard_state.base_len,
            clip(state.hard_state.committed.to_string(), 80),
            state.records.len()
        );
        node.replica = Some(Replica::new(opts, node.initial_config.clone(), Some(state), local));
        self.note(desc);
        self.schedule_tick(i);
        self.after_input(i, true)
    }

    /// One of three shapes of network failure: a random split, the leader
    /// cut off from everyone, or random links cut (a partial partition:
    /// nodes that cannot hear the leader while the others still do are what
    /// tests the lease).
    pub(super) fn start_partition(&mut self) {
        let ids: Vec<NodeId> = self.nodes.iter().filter(|n| !n.retired).map(|n| n.id).collect();
        self.net.heal();
        let roll = self.fault_rng.below(100);
        let leader = self.leader();
        let desc = if roll < 40 || (roll < 65 && leader.is_none()) {
            let size = self.fault_rng.range(1, ids.len() as u64 - 1) as usize;
            let mut pool = ids.clone();
            let mut side = BTreeSet::new();
            for _ in 0..size {
                let k = self.fault_rng.below(pool.len() as u64) as usize;
                side.insert(pool.swap_remove(k));
            }
            let one_way = self.fault_rng.chance_ppm(200_000);
            self.net.partition(&ids, &side, one_way);
            format!("{side:?} cut off{}", if one_way { " (outbound only)" } else { "" })
        } else if roll < 55 {
            let side: BTreeSet<NodeId> = leader.into_iter().collect();
            self.net.partition(&ids, &side, false);
            format!("leader {side:?} cut off")
        } else if let (true, Some(l)) = (roll < 80, leader) {
            // Some followers lose the leader while the rest still hear it:
            // they campaign against a leader whose lease is valid.
            let mut links = Vec::new();
            for &x in ids.iter().filter(|&&x| x != l) {
                if self.fault_rng.chance_ppm(400_000) {
                    links.extend([(l, x), (x, l)]);
                }
            }
            self.net.cut_links(&links);
            format!("leader {l} cut from some followers: {}", self.net.describe_cuts())
        } else {
            let mut links = Vec::new();
            for &a in &ids {
                for &b in &ids {
                    if a != b && self.fault_rng.chance_ppm(250_000) {
                        links.push((a, b));
                    }
                }
            }
            self.net.cut_links(&links);
            format!("links cut: {}", self.net.describe_cuts())
        };
        self.partition_epoch += 1;
        let epoch = self.partition_epoch;
        let at = self.now_ns + self.fault_rng.range(100 * MS, self.params.partition_max_ns.max(100 * MS));
        self.schedule(at, Ev::PartitionHeal { epoch });
        self.note(format!("PARTITION {desc}"));
    }

    /// End of the safety phase: every fault stops.
    pub fn heal(&mut self) -> Check {
        self.phase = Phase::Liveness;
        self.partition_epoch += 1;
        self.net.heal();
        let mut calm = NetParams::calm();
        calm.delay_max_ns = self.params.net.delay_max_ns;
        self.net.params = calm;
        self.net.drop_filter = None;
        self.workload.stop();
        if let Some(h) = self.hunt.as_mut() {
            h.episode = None;
            h.silenced.clear();
        }
        self.note("HEAL: partitions removed, no more loss, crashes or new client ops".to_string());
        for i in 0..self.nodes.len() {
            if self.nodes[i].replica.is_some() || self.nodes[i].retired {
                continue;
            }
            if self.removed_for_good(self.nodes[i].id) {
                // A completed change removed it while it was down: the
                // operator does not bring it back.
                self.retire(i).map_err(|f| self.stamp(f))?;
            } else {
                self.restart(i).map_err(|f| self.stamp(f))?;
            }
        }
        Ok(())
    }

    /// Whether a completed membership step removed `id` (it is in neither
    /// the configuration in force nor the one being moved to).
    pub(super) fn removed_for_good(&self, id: NodeId) -> bool {
        self.driver.as_ref().is_some_and(|d| {
            !d.current.members.contains_key(&id) && d.target().is_none_or(|t| !t.members.contains_key(&id))
        })
    }

    /// The operator's `leader transfer`: to a random member (a learner, the
    /// leader itself or a crashed one are refused or answered at once), or
    /// to whoever is most caught up. The request reaches the leader at once.
    pub(super) fn ask_transfer(&mut self) -> Check {
        let Some(leader) = self.leader() else { return Ok(()) };
        let Some(i) = self.index_of(leader) else { return Ok(()) };
        let members: Vec<NodeId> = self.nodes[i].replica.as_ref().map_or(Vec::new(), |r| {
            let config = r.config();
            config.members.keys().chain(config.learners.keys()).copied().collect()
        });
        let to = if members.is_empty() || self.fault_rng.chance_ppm(500_000) {
            None
        } else {
            Some(*self.fault_rng.pick(&members))
        };
        let request = self.workload.new_request_id();
        self.transfer_requests.insert(request);
        self.note(format!("operator asks leader {leader} to transfer leadership to {to:?} (request {request})"));
        let local = self.nodes[i].clock.local(self.now_ns);
        self.nodes[i].replica.as_mut().expect("the leader is up").transfer_leadership(local, request, to);
        self.after_input(i, false)
    }
}
