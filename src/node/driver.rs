//! The driver task: the only owner of the replica. It feeds inputs, carries
//! out actions, and holds back messages until what they claim is durable.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::peers::Peers;
use super::timings::Timings;
use super::{EventKind, Input, Responder};
use crate::kv::ApplyResult;
use crate::pb::{self, ClusterConfig, LeaderId};
use crate::replica::{Action, ClientReply, DurableWrite, Event, Message, Nanos, NodeId, Replica, RequestId, Role};
use crate::snapshot::Snapshot;
use crate::storage::{SavedSnapshot, Storage, StorageError};

/// Monotonic nanoseconds since the node started: the replica's clock.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Self {
        Clock(Instant::now())
    }

    pub fn now(&self) -> Nanos {
        self.0.elapsed().as_nanos() as Nanos
    }
}

/// What a client request came to.
#[derive(Debug, Clone)]
pub enum ClientOutcome {
    Reply(ClientReply),
    /// The node cannot answer (stopped, or its storage failed).
    Unavailable(String),
}

/// A point-in-time view of the replica for `status`.
#[derive(Debug, Clone)]
pub struct StatusSnapshot {
    pub id: NodeId,
    pub role: Role,
    pub status: pb::ReplicaStatus,
    pub config: ClusterConfig,
    pub leader: Option<LeaderId>,
    pub lease_remaining: Option<Duration>,
    pub peers: Vec<crate::replica::PeerProgress>,
    /// Why a peer refuses our calls, when retrying will not help (TLS,
    /// another cluster).
    pub peer_errors: std::collections::BTreeMap<NodeId, String>,
    pub committed_out_of_order: u64,
    pub applied_out_of_order: u64,
    pub snapshot_prefix: i64,
    pub compacted_below: i64,
    pub snapshots_installed: u64,
    pub log_records: usize,
    /// How much longer the lease this replica acknowledged to the leader it
    /// knows runs (`None`: it heard from no leader within a lease).
    pub follower_lease_remaining: Option<Duration>,
    pub stats: crate::replica::Stats,
    pub counters: Counters,
    pub requests_pending: usize,
}

/// What the driver asks of the storage thread.
pub(super) enum StorageJob {
    /// Make a write durable, then report `Input::Durable(id)`.
    Write(u64, DurableWrite),
    /// Save a snapshot on the side, then report `Input::SnapshotSaved(id)`.
    SaveSnapshot(u64, Arc<Snapshot>),
    /// A snapshot saver thread's result, for the storage thread to adopt
    /// before the driver hears the snapshot is saved.
    Saved(u64, Arc<Snapshot>, Result<SavedSnapshot, StorageError>),
}

/// Sends the writes to a dedicated thread that appends every write waiting
/// at that moment and fsyncs once: group commit without a timer. Snapshots
/// are encoded and saved on threads of their own, so the writes behind them
/// never wait for one; the storage thread registers each saved file
/// (`Storage::adopt_saved`) before the driver learns of it, so the write
/// that then stores the snapshot only names the file.
pub(super) fn spawn_storage(
    mut storage: Storage,
    inputs: mpsc::Sender<Input>,
    timings: Arc<Timings>,
) -> (mpsc::UnboundedSender<StorageJob>, std::thread::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<StorageJob>();
    // Savers report back on the same channel, through a sender that does
    // not hold it open: once the driver hangs up the thread ends, a save
    // under way or not.
    let saves_back = tx.downgrade();
    let dir = storage.dir().to_path_buf();
    let thread = std::thread::Builder::new()
        .name("traft-storage".into())
        .spawn(move || {
            let mut batch: Vec<DurableWrite> = Vec::new();
            let mut last_id = 0;
            let mut reports = Vec::new();
            while let Some(first) = rx.blocking_recv() {
                let mut job = Some(first);
                while let Some(j) = job.take().or_else(|| rx.try_recv().ok()) {
                    match j {
                        StorageJob::Write(id, w) => {
                            last_id = id;
                            batch.push(w);
                        }
                        StorageJob::SaveSnapshot(id, snapshot) => {
                            let (dir, back, timings) = (dir.clone(), saves_back.clone(), timings.clone());
                            let spawned = std::thread::Builder::new().name("traft-snapshot".into()).spawn(move || {
                                crate::storage::run_in_background();
                                let started = Instant::now();
                                let result = crate::storage::save_snapshot(&dir, &snapshot);
                                timings.snapshot_save.observe(started.elapsed());
                                if let Some(back) = back.upgrade() {
                                    let _ = back.send(StorageJob::Saved(id, snapshot, result));
                                }
                            });
                            if let Err(e) = spawned {
                                reports.push(Input::StorageFailed(format!("cannot start a snapshot saver: {e}")));
                            }
                        }
                        StorageJob::Saved(id, snapshot, Ok(saved)) => {
                            storage.adopt_saved(snapshot, saved);
                            reports.push(Input::SnapshotSaved(id));
                        }
                        StorageJob::Saved(_, _, Err(e)) => {
                            reports.push(Input::StorageFailed(format!("cannot save a snapshot: {e}")));
                        }
                    }
                }
                if !batch.is_empty() {
                    reports.push(match storage.append(std::mem::take(&mut batch)) {
                        Ok(stats) => {
                            timings.wal_fsync.observe(stats.sync);
                            Input::Durable(last_id)
                        }
                        Err(e) => Input::StorageFailed(e.to_string()),
                    });
                }
                for input in reports.drain(..) {
                    let failed = matches!(input, Input::StorageFailed(_));
                    if inputs.blocking_send(input).is_err() || failed {
                        return;
                    }
                }
            }
        })
        .expect("spawn the storage thread");
    (tx, thread)
}

/// `NodeHandle::pause`: while paused, waits, reading and ticking nothing.
/// False if the node shuts down meanwhile.
async fn until_resumed(paused: &mut Option<watch::Receiver<bool>>, shutdown: &mut watch::Receiver<bool>) -> bool {
    let Some(paused) = paused.as_mut().filter(|p| *p.borrow()) else { return true };
    tokio::select! {
        _ = paused.wait_for(|p| !*p) => true,
        _ = shutdown.changed() => false,
    }
}

pub(super) struct Driver {
    replica: Replica,
    clock: Clock,
    storage: Option<mpsc::UnboundedSender<StorageJob>>,
    peers: Peers,
    events: broadcast::Sender<pb::Event>,
    fatal: watch::Sender<Option<String>>,
    durable: u64,
    /// Sends and replies waiting for their `after_persist` to be durable.
    held: VecDeque<(u64, Action)>,
    clients: BTreeMap<RequestId, oneshot::Sender<ClientOutcome>>,
    next_request: RequestId,
    /// Inbound RPCs waiting for the replica's answer: votes by candidate,
    /// forwards by (leader, forward id).
    vote_waiters: BTreeMap<NodeId, VecDeque<oneshot::Sender<Message>>>,
    /// The replica answers every snapshot request, in order, per requester.
    snapshot_waiters: BTreeMap<NodeId, VecDeque<oneshot::Sender<Message>>>,
    forward_waiters: BTreeMap<(NodeId, u64), Responder>,
    counters: Counters,
    /// `NodeHandle::pause`: while true the loop waits, reading nothing.
    paused: Option<watch::Receiver<bool>>,
    timings: Option<Arc<Timings>>,
    /// When each forward in flight left, by peer and forward id, for the
    /// round-trip histogram.
    forwards_sent: HashMap<(NodeId, u64), Instant>,
}

/// Forwards remembered for their round trip at most; past this the oldest
/// half (long lost) is forgotten.
const MAX_TIMED_FORWARDS: usize = 4096;

/// What the driver counts for `/metrics`; the replica's own counters are
/// in its `Stats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub leader_changes: u64,
    pub requests_ok: u64,
    pub requests_failed: u64,
}

impl Driver {
    pub(super) fn new(
        replica: Replica,
        clock: Clock,
        storage: mpsc::UnboundedSender<StorageJob>,
        peers: Peers,
        events: broadcast::Sender<pb::Event>,
        fatal: watch::Sender<Option<String>>,
    ) -> Self {
        Driver {
            replica,
            clock,
            storage: Some(storage),
            peers,
            events,
            fatal,
            durable: 0,
            held: VecDeque::new(),
            clients: BTreeMap::new(),
            next_request: 1,
            vote_waiters: BTreeMap::new(),
            snapshot_waiters: BTreeMap::new(),
            forward_waiters: BTreeMap::new(),
            counters: Counters::default(),
            paused: None,
            timings: None,
            forwards_sent: HashMap::new(),
        }
    }

    /// Times forward round trips into `timings` (for `/metrics`).
    pub(super) fn timed(mut self, timings: Arc<Timings>) -> Self {
        self.timings = Some(timings);
        self
    }

    pub(super) fn pausable(mut self, paused: watch::Receiver<bool>) -> Self {
        self.paused = Some(paused);
        self
    }

    pub(super) async fn run(mut self, mut inputs: mpsc::Receiver<Input>, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.peers.update(self.replica.config());
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if !until_resumed(&mut self.paused, &mut shutdown).await {
                        break;
                    }
                    // What arrived before this tick goes first: after a
                    // stall (a pause, SIGSTOP, a starved thread) the
                    // leader's forwards are waiting, and a follower whose
                    // timers saw only the stall would campaign against a
                    // leader that never stopped.
                    self.drain_queued(&mut inputs);
                    let now = self.clock.now();
                    self.replica.tick(now);
                }
                input = inputs.recv() => {
                    let Some(input) = input else { break };
                    // Checked here, not before the select: an input that
                    // arrives after the pause must wait even if the loop was
                    // already waiting when the pause began.
                    if !until_resumed(&mut self.paused, &mut shutdown).await {
                        break;
                    }
                    self.handle(input);
                    // Drain what is already queued before acting, so one
                    // flush carries a whole burst of proposals.
                    self.drain_queued(&mut inputs);
                }
                _ = shutdown.changed() => break,
            }
            if self.storage.is_none() {
                break;
            }
            self.act();
        }
        self.fail_clients("the node is shutting down");
    }

    /// Handles what is already queued, up to a bound so ticks still come.
    fn drain_queued(&mut self, inputs: &mut mpsc::Receiver<Input>) {
        for _ in 0..256 {
            if self.paused.as_ref().is_some_and(|p| *p.borrow()) {
                break;
            }
            match inputs.try_recv() {
                Ok(input) => self.handle(input),
                Err(_) => break,
            }
        }
    }

    fn handle(&mut self, input: Input) {
        let now = self.clock.now();
        match input {
            Input::Peer { from, msg, respond } => {
                if let (Message::ForwardReply(r), None) = (&msg, &respond)
                    && let Some(sent) = self.forwards_sent.remove(&(from, r.forward_id))
                    && let Some(t) = &self.timings
                {
                    t.forward_round_trip(from, sent.elapsed());
                }
                match (&msg, respond) {
                    (Message::Vote(_), Some(Responder::Once(tx))) => {
                        self.vote_waiters.entry(from).or_default().push_back(tx)
                    }
                    (Message::SnapshotReq(_), Some(Responder::Once(tx))) => {
                        self.snapshot_waiters.entry(from).or_default().push_back(tx)
                    }
                    (Message::Forward(f), Some(respond)) => {
                        self.forward_waiters.insert((from, f.forward_id), respond);
                    }
                    _ => {}
                }
                let refused = self.replica.stats().refused_messages;
                self.replica.step(now, from, msg);
                if self.replica.stats().refused_messages > refused
                    && let Some((from, why)) = self.replica.last_refusal()
                {
                    tracing::warn!(
                        node = self.replica.id(),
                        "refused a message claimed to be from member {from}: {why}"
                    );
                }
            }
            Input::Propose { cmd, respond } => {
                let id = self.request_id(respond);
                self.replica.propose(now, id, cmd);
            }
            Input::Read { key, consistency, respond } => {
                let id = self.request_id(respond);
                self.replica.read(now, id, &key, consistency);
            }
            Input::ChangeConfig { target, force, respond } => {
                let id = self.request_id(respond);
                self.replica.change_config(now, id, target, force);
            }
            Input::AbortChange { respond } => {
                let id = self.request_id(respond);
                self.replica.abort_change(now, id);
            }
            Input::HashKv { respond } => {
                let r = &self.replica;
                let _ = respond.send(pb::HashKvReply {
                    id: r.id(),
                    applied: Some(r.applied().clone()),
                    hash: r.kv().digest(),
                    keys: r.kv().len() as i64,
                });
            }
            Input::TransferLeadership { to, respond } => {
                let id = self.request_id(respond);
                self.replica.transfer_leadership(now, id, to);
            }
            Input::Durable(id) => {
                self.durable = self.durable.max(id);
                self.replica.persisted(now, id);
            }
            Input::SnapshotSaved(id) => self.replica.snapshot_saved(now, id),
            Input::ForwardLost { peer, forward_id } => self.replica.forward_lost(now, peer, forward_id),
            Input::StorageFailed(why) => {
                // Nothing after the failed write can be acknowledged: stop.
                tracing::error!(node = self.replica.id(), "storage failed, stopping the node: {why}");
                let _ = self.fatal.send(Some(why.clone()));
                self.storage = None;
                self.held.clear();
                self.fail_clients(&format!("the node stopped because its storage failed: {why}"));
            }
            Input::Status { respond } => {
                let _ = respond.send(self.snapshot());
            }
            Input::Log { from, limit, respond } => {
                let _ = respond.send(self.log_page(from, limit));
            }
        }
    }

    fn request_id(&mut self, respond: oneshot::Sender<ClientOutcome>) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        self.clients.insert(id, respond);
        id
    }

    fn act(&mut self) {
        for action in self.replica.take_actions() {
            match action {
                Action::Persist { id, write } => self.submit_to_storage(StorageJob::Write(id, write)),
                Action::SaveSnapshot { id, snapshot } => self.submit_to_storage(StorageJob::SaveSnapshot(id, snapshot)),
                Action::Send { after_persist, .. } | Action::Reply { after_persist, .. }
                    if after_persist > self.durable =>
                {
                    self.held.push_back((after_persist, action));
                }
                Action::Send { to, msg, .. } => self.dispatch(to, msg),
                Action::Reply { request, reply, .. } => self.complete(request, reply),
                Action::Event(e) => self.publish(e),
            }
        }
        if let Some(records) = self.replica.take_discarded() {
            crate::storage::free_records_on_the_side(records);
        }
        while self.held.front().is_some_and(|(after, _)| *after <= self.durable) {
            match self.held.pop_front() {
                Some((_, Action::Send { to, msg, .. })) => self.dispatch(to, msg),
                Some((_, Action::Reply { request, reply, .. })) => self.complete(request, reply),
                _ => {}
            }
        }
    }

    fn submit_to_storage(&mut self, job: StorageJob) {
        if let Some(s) = &self.storage
            && s.send(job).is_err()
        {
            self.storage = None;
        }
    }

    fn dispatch(&mut self, to: NodeId, msg: Message) {
        match msg {
            Message::VoteReply(_) => {
                if let Some(tx) = self.vote_waiters.get_mut(&to).and_then(|q| q.pop_front()) {
                    let _ = tx.send(msg);
                }
            }
            Message::ForwardReply(ref r) => match self.forward_waiters.remove(&(to, r.forward_id)) {
                Some(Responder::Once(tx)) => {
                    let _ = tx.send(msg);
                }
                Some(Responder::Stream(tx)) => {
                    if let Message::ForwardReply(r) = msg {
                        // A full stream is a stalled leader; the reply is
                        // lost like any message, and it retransmits.
                        let _ = tx.try_send(Ok(r));
                    }
                }
                None => {}
            },
            Message::SnapshotChunk(_) => {
                if let Some(tx) = self.snapshot_waiters.get_mut(&to).and_then(|q| q.pop_front()) {
                    let _ = tx.send(msg);
                }
            }
            Message::Vote(_) | Message::Forward(_) | Message::SnapshotReq(_) => {
                if let (Message::Forward(f), Some(_)) = (&msg, &self.timings) {
                    if self.forwards_sent.len() >= MAX_TIMED_FORWARDS {
                        let mut sent: Vec<Instant> = self.forwards_sent.values().copied().collect();
                        sent.sort_unstable();
                        let cut = sent[sent.len() / 2];
                        self.forwards_sent.retain(|_, t| *t > cut);
                    }
                    self.forwards_sent.insert((to, f.forward_id), Instant::now());
                }
                let config = self.replica.config();
                if config.members.contains_key(&to) || config.learners.contains_key(&to) {
                    self.peers.update(config);
                }
                self.peers.send(to, msg);
            }
        }
    }

    fn complete(&mut self, request: RequestId, reply: ClientReply) {
        match reply {
            ClientReply::Failed(_) => self.counters.requests_failed += 1,
            _ => self.counters.requests_ok += 1,
        }
        if let Some(tx) = self.clients.remove(&request) {
            let _ = tx.send(ClientOutcome::Reply(reply));
        }
    }

    fn fail_clients(&mut self, why: &str) {
        for (_, tx) in std::mem::take(&mut self.clients) {
            let _ = tx.send(ClientOutcome::Unavailable(why.to_string()));
        }
    }

    fn publish(&mut self, event: Event) {
        // Two of these per record per member: skip building them when no
        // one is watching.
        if self.events.receiver_count() == 0 && matches!(event, Event::Committed { .. } | Event::Applied { .. }) {
            return;
        }
        let node = self.replica.id();
        let at_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut e = pb::Event { node, at_ms, ..Default::default() };
        match event {
            Event::VoteStart { candidate } => {
                e.kind = EventKind::VoteStart.to_string();
                e.leader = Some(candidate);
                tracing::info!(node, "campaigning as {candidate}");
            }
            Event::VoteWin { leader, base_len } => {
                e.kind = EventKind::VoteWin.to_string();
                e.leader = Some(leader);
                e.seq = base_len;
                tracing::info!(node, "elected leader {leader} with a base of {base_len} records");
            }
            Event::VoteFail { candidate, reason } => {
                e.kind = EventKind::VoteFail.to_string();
                e.leader = Some(candidate);
                e.detail = reason.to_string();
                tracing::info!(node, "election as {candidate} failed: {reason}");
            }
            Event::LeaderChange { leader } => {
                self.counters.leader_changes += 1;
                e.kind = EventKind::LeaderChange.to_string();
                e.leader = Some(leader);
                tracing::info!(node, "leader is now {leader}");
            }
            Event::Committed { seq } => {
                e.kind = EventKind::Commit.to_string();
                e.seq = seq;
                e.key = self.key_at(seq);
            }
            Event::Applied { seq, result } => {
                e.kind = EventKind::Apply.to_string();
                e.seq = seq;
                e.key = self.key_at(seq);
                e.detail = match result {
                    ApplyResult::Done => String::new(),
                    ApplyResult::Incremented(v) => format!("value={v}"),
                    ApplyResult::NotAnInteger => "not an integer".into(),
                    ApplyResult::Overridden => "overridden".into(),
                };
            }
            Event::ConfigChange { seq, config } => {
                e.kind = EventKind::ConfigChange.to_string();
                e.seq = seq;
                e.detail = config.to_string();
                tracing::info!(node, "configuration {config} in force from seq {seq}");
                self.peers.update(&config);
            }
            Event::SnapshotInstalled { from, prefix } => {
                e.kind = EventKind::SnapshotInstalled.to_string();
                e.seq = prefix;
                e.detail = format!("from {from}");
                tracing::info!(node, "installed the snapshot of member {from}, covering seqs below {prefix}");
            }
            Event::Compacted { below } => {
                e.kind = EventKind::Compacted.to_string();
                e.seq = below;
                tracing::debug!(node, "log compacted below seq {below}");
            }
        }
        // Nobody watching is fine.
        let _ = self.events.send(e);
    }

    /// The key of the record at `seq`, for `watch --key`; empty for config
    /// and no-op records.
    fn key_at(&self, seq: i64) -> String {
        let cmd = self.replica.log().get(&seq).and_then(|r| r.cmd.as_ref());
        cmd.filter(|c| !c.is_config() && !c.is_noop()).map(|c| c.key.clone()).unwrap_or_default()
    }

    fn snapshot(&self) -> StatusSnapshot {
        let r = &self.replica;
        let now = self.clock.now();
        StatusSnapshot {
            id: r.id(),
            role: r.role(),
            status: r.status(),
            config: r.config().clone(),
            leader: r.leader_ballot().or(r.known_leader()),
            lease_remaining: r.lease_end().map(|end| Duration::from_nanos(end.saturating_sub(now))),
            peers: r.peer_progress(),
            peer_errors: self.peers.refusals(),
            committed_out_of_order: r.stats().committed_out_of_order,
            applied_out_of_order: r.stats().applied_out_of_order,
            snapshot_prefix: r.snapshot_prefix(),
            compacted_below: r.compacted_below(),
            snapshots_installed: r.stats().snapshots_installed,
            log_records: r.log().len(),
            follower_lease_remaining: r
                .lease_pin()
                .filter(|(l, _)| Some(*l) == r.known_leader())
                .map(|(_, until)| Duration::from_nanos(until.saturating_sub(now)))
                .filter(|d| !d.is_zero()),
            stats: r.stats().clone(),
            counters: self.counters,
            requests_pending: self.clients.len(),
        }
    }

    fn log_page(&self, from: i64, limit: usize) -> pb::LogReply {
        let r = &self.replica;
        let entries = r
            .log()
            .range(from..)
            .take(limit)
            .map(|(seq, rec)| pb::LogEntry {
                record: Some(rec.clone()),
                committed: r.committed().contains(*seq),
                applied: r.applied().contains(*seq),
            })
            .collect();
        pb::LogReply { entries, status: Some(r.status()) }
    }
}

#[cfg(test)]
mod tests {
    //! The real driver loop (`run`), with the test standing in for the
    //! storage thread, so it decides when each write becomes durable, and
    //! for the peers, as gRPC servers on loopback that record what reaches
    //! them through the driver's real `Peers`. Rule 10: no Send or Reply may
    //! leave before the write it depends on is durable.

    use tokio::time::timeout;
    use tonic::{Request, Response, Status};

    use super::*;
    use crate::pb::t_raft_server::{TRaft, TRaftServer};
    use crate::pb::{Cmd, TailBitmap, VoteReq};
    use crate::replica::Options;

    /// How long a message must stay away to count as held. A wrongly
    /// released one crosses loopback in well under a millisecond.
    const SETTLE: Duration = Duration::from_millis(300);
    /// Generous bound on anything that should happen.
    const BOUND: Duration = Duration::from_secs(10);

    /// A peer that records every request the node sends it and grants every
    /// vote, so that a candidate goes on to lead.
    struct WirePeer {
        id: NodeId,
        seen: mpsc::UnboundedSender<(NodeId, Message)>,
    }

    #[tonic::async_trait]
    impl TRaft for WirePeer {
        async fn vote(&self, request: Request<pb::VoteReq>) -> Result<Response<pb::VoteReply>, Status> {
            let req = request.into_inner();
            let _ = self.seen.send((self.id, Message::Vote(req.clone())));
            Ok(Response::new(pb::VoteReply {
                id: self.id,
                voted_for: req.candidate,
                granted: true,
                accepted: Some(TailBitmap::empty()),
                committed: Some(TailBitmap::empty()),
                ..Default::default()
            }))
        }

        async fn log_forward(
            &self,
            request: Request<pb::LogForwardReq>,
        ) -> Result<Response<pb::LogForwardReply>, Status> {
            let _ = self.seen.send((self.id, Message::Forward(request.into_inner())));
            Err(Status::unavailable("a recording peer does not follow"))
        }

        async fn propose(&self, _request: Request<pb::Cmd>) -> Result<Response<pb::ProposeReply>, Status> {
            Err(Status::unimplemented("a recording peer takes no proposals"))
        }
    }

    struct Harness {
        inputs: mpsc::Sender<Input>,
        /// What the driver handed to "storage"; nothing is durable until
        /// the test calls `durable`.
        writes: mpsc::UnboundedReceiver<StorageJob>,
        /// Requests that reached the peers over the wire.
        wire: mpsc::UnboundedReceiver<(NodeId, Message)>,
        shutdown: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Harness {
        /// Member 1 plus recording peers `peer_ids`, run by the real driver.
        async fn start(peer_ids: &[NodeId], tune: impl FnOnce(&mut Options)) -> Harness {
            let (seen, wire) = mpsc::unbounded_channel();
            let mut members = vec![(1, "127.0.0.1:1".to_string())];
            for &id in peer_ids {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                members.push((id, listener.local_addr().unwrap().to_string()));
                let svc = TRaftServer::new(WirePeer { id, seen: seen.clone() });
                tokio::spawn(
                    tonic::transport::Server::builder()
                        .add_service(svc)
                        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
                );
            }
            let config = ClusterConfig::majority(members).unwrap();
            let mut opts = Options::new(1);
            // No election or lease may time out while a write is held.
            opts.lease_ns = 60_000_000_000;
            tune(&mut opts);
            let clock = Clock::new();
            let replica = Replica::new(opts, config, None, clock.now());
            let (inputs, inputs_rx) = mpsc::channel(64);
            let (storage, writes) = mpsc::unbounded_channel();
            let peers = Peers::new(1, Duration::from_secs(2), inputs.clone(), crate::tls::ClientTls::none(), 1);
            let (events, _) = broadcast::channel(64);
            let (fatal, _) = watch::channel(None);
            let (shutdown, shutdown_rx) = watch::channel(false);
            let driver = Driver::new(replica, clock, storage, peers, events, fatal);
            let task = tokio::spawn(driver.run(inputs_rx, shutdown_rx));
            Harness { inputs, writes, wire, shutdown, task }
        }

        async fn next_write(&mut self) -> (u64, DurableWrite) {
            loop {
                let job = timeout(BOUND, self.writes.recv()).await.expect("the replica wrote nothing");
                if let StorageJob::Write(id, write) = job.expect("driver stopped") {
                    return (id, write);
                }
            }
        }

        /// What the storage thread reports once `append` returned.
        async fn durable(&self, id: u64) {
            self.inputs.send(Input::Durable(id)).await.unwrap();
        }

        /// Fails if a request `is_bad` reaches a peer within `SETTLE`.
        async fn nothing_on_wire(&mut self, is_bad: impl Fn(&Message) -> bool, why: &str) {
            let deadline = tokio::time::Instant::now() + SETTLE;
            while let Ok(Some((to, msg))) = tokio::time::timeout_at(deadline, self.wire.recv()).await {
                assert!(!is_bad(&msg), "{why}: {msg:?} reached peer {to}");
            }
        }

        async fn next_on_wire(&mut self, wanted: impl Fn(&Message) -> bool) -> (NodeId, Message) {
            loop {
                let got = timeout(BOUND, self.wire.recv()).await.expect("nothing reached the peers");
                let (to, msg) = got.unwrap();
                if wanted(&msg) {
                    return (to, msg);
                }
            }
        }

        async fn role(&self) -> Role {
            let (tx, rx) = oneshot::channel();
            self.inputs.send(Input::Status { respond: tx }).await.unwrap();
            rx.await.unwrap().role
        }

        async fn stop(self) {
            let _ = self.shutdown.send(true);
            timeout(BOUND, self.task).await.expect("the driver did not stop").unwrap();
        }
    }

    fn never_campaign(opts: &mut Options) {
        // The first campaign lands somewhere in the next ~30 years.
        opts.election_jitter_ns = 1 << 60;
    }

    fn campaign_at_once(opts: &mut Options) {
        opts.election_jitter_ns = 1_000_000;
    }

    #[tokio::test]
    async fn a_granted_vote_is_answered_only_after_the_vote_is_durable() {
        let mut h = Harness::start(&[2, 3], never_campaign).await;
        let candidate = LeaderId::new(5, 2);
        let (tx, mut rx) = oneshot::channel();
        let req = VoteReq {
            candidate: Some(candidate),
            committer: None,
            accepted: Some(TailBitmap::empty()),
            ..Default::default()
        };
        let respond = Some(Responder::Once(tx));
        h.inputs.send(Input::Peer { from: 2, msg: Message::Vote(req), respond }).await.unwrap();

        let (id, write) = h.next_write().await;
        assert_eq!(write.hard_state.and_then(|s| s.voted_for), Some(candidate));
        if let Ok(reply) = timeout(SETTLE, &mut rx).await {
            panic!("the vote reply left before VotedFor was durable: {reply:?}");
        }

        h.durable(id).await;
        match timeout(BOUND, rx).await.expect("no vote reply after the write was durable").unwrap() {
            Message::VoteReply(r) => assert!(r.granted && r.voted_for == Some(candidate), "{r:?}"),
            other => panic!("expected a vote reply, got {other:?}"),
        }
        h.stop().await;
    }

    #[tokio::test]
    async fn a_candidate_and_then_a_leader_send_nothing_before_their_writes_are_durable() {
        let mut h = Harness::start(&[2, 3], campaign_at_once).await;
        let ballot = LeaderId::new(1, 1);

        let (vote_id, write) = h.next_write().await;
        assert_eq!(write.hard_state.and_then(|s| s.voted_for), Some(ballot));
        h.nothing_on_wire(|_| true, "sent before the candidate's own vote was durable").await;

        h.durable(vote_id).await;
        let (_, msg) = h.next_on_wire(|m| matches!(m, Message::Vote(_))).await;
        assert!(matches!(msg, Message::Vote(ref v) if v.candidate == Some(ballot)), "{msg:?}");

        // The peers grant; the new leader writes `Committer == L` and its
        // base, and its forwards claim both.
        let (base_id, write) = h.next_write().await;
        assert_eq!(write.hard_state.and_then(|s| s.committer), Some(ballot));
        h.nothing_on_wire(|m| matches!(m, Message::Forward(_)), "a forward left before the leader's base was durable")
            .await;
        assert_eq!(h.role().await, Role::Leader);

        h.durable(base_id).await;
        let (_, msg) = h.next_on_wire(|m| matches!(m, Message::Forward(_))).await;
        assert!(matches!(msg, Message::Forward(ref f) if f.committer == Some(ballot)), "{msg:?}");
        h.stop().await;
    }

    #[tokio::test]
    async fn a_leader_answers_a_proposal_only_after_the_record_is_durable() {
        // Alone, the leader's own acceptance is the quorum, so the commit,
        // and with it the answer, must wait for its write.
        let mut h = Harness::start(&[], campaign_at_once).await;
        while h.role().await != Role::Leader {
            let (id, _) = h.next_write().await;
            h.durable(id).await;
        }
        let (tx, mut rx) = oneshot::channel();
        h.inputs.send(Input::Propose { cmd: Cmd::set_i64("x", 1), respond: tx }).await.unwrap();

        let (id, write) = h.next_write().await;
        assert!(write.put.iter().any(|r| r.cmd.as_ref().is_some_and(|c| c.key == "x")), "{write:?}");
        if let Ok(reply) = timeout(SETTLE, &mut rx).await {
            panic!("the proposal was answered before its record was durable: {reply:?}");
        }

        h.durable(id).await;
        match timeout(BOUND, rx).await.expect("no answer after the record was durable").unwrap() {
            ClientOutcome::Reply(ClientReply::Proposed { .. }) => {}
            other => panic!("expected the proposal to commit, got {other:?}"),
        }
        h.stop().await;
    }
}
