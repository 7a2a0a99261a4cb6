//! Membership during a run: replicas joining and retiring, and the
//! simulated operator's requests for configuration changes.

use super::*;

impl Sim {
    /// Starts a replica that is to join: a fresh disk, its own clock, and
    /// `config`, the configuration then in force, which does not list it.
    pub fn add_node(&mut self, id: NodeId, config: ClusterConfig) -> Check {
        let index = self.nodes.len();
        let drift = self.params.drift_max_ppm;
        let clock = Clock {
            offset_ns: self.join_rng.range(SEC, 1000 * SEC),
            drift_ppm: self.join_rng.range_i64(-drift, drift),
        };
        self.nodes.push(Node::new(id, index, clock, config.clone()));
        self.checker.add_node();
        self.workload.add_node(id);
        let seed = self.jitter_seed(index);
        let opts = self.params.options(id, seed);
        let local = clock.local(self.now_ns);
        self.nodes[index].replica = Some(Replica::new(opts, config.clone(), None, local));
        self.nodes_joined += 1;
        self.note(format!("JOIN node {id} ({}) started knowing {config}", joined_addr(id)));
        self.schedule_tick(index);
        self.after_input(index, true)
    }

    /// Shuts node `i` down for good: a change removed it.
    pub(super) fn retire(&mut self, i: usize) -> Check {
        if self.nodes[i].retired {
            return Ok(());
        }
        let node = &mut self.nodes[i];
        node.retired = true;
        if let Some(r) = node.replica.take() {
            node.dead_stats.0 += r.stats().committed_out_of_order;
            node.dead_stats.1 += r.stats().applied_out_of_order;
            node.dead_snapshots.0 += r.stats().snapshots_taken;
            node.dead_snapshots.1 += r.stats().snapshots_installed;
        }
        node.storage.pending.clear();
        node.held.clear();
        node.incarnation += 1;
        node.next_persist_id = None;
        node.storage.durable_id = 0;
        let id = node.id;
        self.nodes_retired += 1;
        self.note(format!("RETIRE node {id}: removed from the cluster, shut down for good"));
        self.checker.on_crash(i);
        for e in self.workload.retire_node(id, self.now_ns) {
            self.apply_effects(e);
        }
        self.admin_node_down(id);
        Ok(())
    }

    /// A node went down: a change request it held will not be answered.
    pub(super) fn admin_node_down(&mut self, id: NodeId) {
        let Some(d) = self.driver.as_mut() else { return };
        if d.node_down(id) {
            d.token += 1;
            let (at, token) = (self.now_ns + d.rng.range(10 * MS, 100 * MS), d.token);
            self.schedule(at, Ev::AdminWake { token });
        }
    }

    pub(super) fn admin_wake(&mut self, token: u64) -> Check {
        let Some(d) = self.driver.as_mut() else { return Ok(()) };
        if d.token != token || d.done() {
            return Ok(());
        }
        // A wake while a request is pending is that request's timeout.
        d.timed_out();
        self.admin_send(false)
    }

    /// Sends the current step's change request to some node; the first
    /// time, starts the replicas it adds.
    pub(super) fn admin_send(&mut self, duplicate: bool) -> Check {
        let Some(d) = self.driver.as_ref() else { return Ok(()) };
        let Some(target) = d.target().cloned() else { return Ok(()) };
        if !d.started {
            let current = d.current.clone();
            let newcomers: Vec<NodeId> =
                target.members.keys().copied().filter(|&id| self.index_of(id).is_none()).collect();
            for id in newcomers {
                self.add_node(id, current.clone())?;
            }
        }
        let candidates: Vec<NodeId> = self.nodes.iter().filter(|n| !n.retired).map(|n| n.id).collect();
        let request = self.workload.new_request_id();
        let d = self.driver.as_mut().expect("checked above");
        let node = if duplicate { *d.rng.pick(&candidates) } else { d.choose_node(&candidates).expect("a node") };
        let first = !d.started;
        let step = d.step;
        d.sent(request, node, duplicate);
        if !duplicate {
            d.token += 1;
            let token = d.token;
            self.schedule(self.now_ns + ATTEMPT_TIMEOUT_NS, Ev::AdminWake { token });
            let d = self.driver.as_mut().expect("checked above");
            if first && d.rng.chance_ppm(d.plan.duplicate_ppm) {
                let at = self.now_ns + d.rng.range(MS, 300 * MS);
                self.schedule(at, Ev::AdminDuplicate { step });
            }
            let d = self.driver.as_mut().expect("checked above");
            if first && let Some(after) = d.draw_abort() {
                self.schedule(self.now_ns + after, Ev::AdminAbort { step });
            }
        }
        let at = self.now_ns + self.net.delay_ns().max(1);
        self.schedule(at, Ev::AdminArrive { node, request, step, target: Box::new(target) });
        Ok(())
    }

    pub(super) fn admin_arrive(
        &mut self,
        node: NodeId,
        request: RequestId,
        step: usize,
        target: ClusterConfig,
    ) -> Check {
        if self.driver.as_ref().is_none_or(|d| d.step != step) {
            // The operator moved on; its old connection is gone.
            return Ok(());
        }
        let i = self.index_of(node).expect("the driver only asks replicas it started");
        if self.nodes[i].replica.is_none() {
            let at = self.now_ns + self.net.delay_ns().max(1);
            self.schedule(at, Ev::ClientReply { request, reply: None });
            return Ok(());
        }
        self.note(format!("admin req {request} -> {node}: change config to {target} (step {step})"));
        let local = self.nodes[i].clock.local(self.now_ns);
        self.nodes[i].replica.as_mut().expect("up").change_config(local, request, target, false);
        self.after_input(i, false)
    }

    /// Asks some running node to abort the change in flight, as an
    /// operator would with `traftctl config abort`.
    pub(super) fn admin_send_abort(&mut self, redirect: Option<NodeId>) -> Check {
        let candidates: Vec<NodeId> = self.nodes.iter().filter(|n| !n.retired).map(|n| n.id).collect();
        let request = self.workload.new_request_id();
        let d = self.driver.as_mut().expect("driving");
        let node = match redirect {
            Some(node) if candidates.contains(&node) => node,
            Some(_) => return Ok(()),
            None => match d.choose_abort_node(&candidates) {
                Some(node) => node,
                None => return Ok(()),
            },
        };
        d.abort_sent(request, redirect.is_some());
        let at = self.now_ns + self.net.delay_ns().max(1);
        self.schedule(at, Ev::AdminAbortArrive { node, request });
        Ok(())
    }

    pub(super) fn admin_abort_arrive(&mut self, node: NodeId, request: RequestId) -> Check {
        let i = self.index_of(node).expect("the driver only asks replicas it started");
        if self.nodes[i].replica.is_none() {
            let at = self.now_ns + self.net.delay_ns().max(1);
            self.schedule(at, Ev::ClientReply { request, reply: None });
            return Ok(());
        }
        self.note(format!("admin req {request} -> {node}: abort the change in flight"));
        let local = self.nodes[i].clock.local(self.now_ns);
        self.nodes[i].replica.as_mut().expect("up").abort_change(local, request);
        self.after_input(i, false)
    }

    pub(super) fn admin_abort_reply(&mut self, request: RequestId, reply: Option<ClientReply>) -> Check {
        let d = self.driver.as_mut().expect("owned by the driver");
        let verdict = d.on_abort_reply(request, reply.as_ref());
        self.note(format!("admin abort reply to {request}: {reply:?}"));
        match verdict.map_err(|why| Failure::new("membership driver", why))? {
            Some(leader) => self.admin_send_abort(Some(leader)),
            None => Ok(()),
        }
    }

    pub(super) fn admin_reply(&mut self, request: RequestId, reply: Option<ClientReply>) -> Check {
        let d = self.driver.as_mut().expect("owned by the driver");
        let outcome = d.on_reply(request, reply.as_ref());
        let line = format!("admin reply to {request}: {reply:?} => {outcome:?}");
        self.note(line);
        match outcome {
            Outcome::Ignore => Ok(()),
            Outcome::Retry { after_ns } => {
                let d = self.driver.as_mut().expect("owned by the driver");
                d.token += 1;
                let token = d.token;
                self.schedule(self.now_ns + after_ns, Ev::AdminWake { token });
                Ok(())
            }
            Outcome::Fatal(why) => Err(Failure::new("membership driver", why)),
            Outcome::Done => self.admin_complete(),
        }
    }

    /// The current step is complete: note who finished it, schedule the
    /// shutdown of what it removed, and the next step.
    pub(super) fn admin_complete(&mut self) -> Check {
        let d = self.driver.as_ref().expect("driving");
        let target = d.target().cloned().expect("a step in progress");
        if let Some((step, crashed)) = d.crashed_mid_joint
            && step == d.step
        {
            let author = self.final_record_author(&target);
            if author.is_some_and(|a| a != crashed) {
                self.driver.as_mut().expect("driving").stats.finished_by_next_leader += 1;
            }
        }
        let under_faults = self.phase == Phase::Safety;
        let d = self.driver.as_mut().expect("driving");
        let step = d.step;
        let removed = d.complete(under_faults);
        let retire_max = d.plan.retire_delay_max_ns;
        let delays: Vec<u64> = removed.iter().map(|_| d.rng.range(0, retire_max)).collect();
        let next = (!d.done()).then(|| {
            d.token += 1;
            (d.rng.range(0, d.plan.gap_max_ns), d.token)
        });
        self.note(format!("MEMBERSHIP step {step} complete: {target} (removed {removed:?})"));
        for (id, delay) in removed.iter().zip(delays) {
            let i = self.index_of(*id).expect("removed members ran");
            self.schedule(self.now_ns + delay, Ev::Retire { node: i });
        }
        if let Some((gap, token)) = next {
            self.schedule(self.now_ns + gap, Ev::AdminWake { token });
        }
        Ok(())
    }

    /// The author of the newest config record equal to `target`, on any
    /// running replica whose newest config record it is.
    pub(super) fn final_record_author(&self, target: &ClusterConfig) -> Option<traftctl::pb::LeaderId> {
        self.nodes.iter().filter_map(|n| n.replica.as_ref()).find_map(|r| {
            let rec = r.log().values().rev().find(|rec| rec.cmd.as_ref().is_some_and(|c| c.is_config()))?;
            let c = rec.cmd.as_ref()?.config_value()?;
            (c.next.is_none() && c.learners.is_empty() && crate::membership::same_quorum_system(c, target))
                .then_some(rec.author)
                .flatten()
        })
    }
}
