//! The driver task: the only owner of the replica. It feeds inputs, carries
//! out actions, and holds back messages until what they claim is durable.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::Input;
use super::peers::Peers;
use crate::kv::ApplyResult;
use crate::pb::{self, ClusterConfig, LeaderId};
use crate::replica::{Action, ClientReply, DurableWrite, Event, Message, Nanos, NodeId, Replica, RequestId, Role};
use crate::storage::Storage;

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
    pub committed_out_of_order: u64,
    pub applied_out_of_order: u64,
    pub snapshot_prefix: i64,
    pub compacted_below: i64,
    pub snapshots_installed: u64,
    pub log_records: usize,
}

/// Sends the writes to a dedicated thread that appends every write waiting
/// at that moment and fsyncs once: group commit without a timer.
pub(super) fn spawn_storage(
    mut storage: Storage,
    inputs: mpsc::Sender<Input>,
) -> (mpsc::UnboundedSender<(u64, DurableWrite)>, std::thread::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, DurableWrite)>();
    let thread = std::thread::Builder::new()
        .name("traft-storage".into())
        .spawn(move || {
            let mut batch: Vec<DurableWrite> = Vec::new();
            while let Some((first_id, first)) = rx.blocking_recv() {
                let mut last_id = first_id;
                batch.push(first);
                while let Ok((id, w)) = rx.try_recv() {
                    last_id = id;
                    batch.push(w);
                }
                let result = storage.append(&batch);
                batch.clear();
                let input = match result {
                    Ok(()) => Input::Durable(last_id),
                    Err(e) => Input::StorageFailed(e.to_string()),
                };
                let failed = matches!(input, Input::StorageFailed(_));
                if inputs.blocking_send(input).is_err() || failed {
                    return;
                }
            }
        })
        .expect("spawn the storage thread");
    (tx, thread)
}

pub(super) struct Driver {
    replica: Replica,
    clock: Clock,
    storage: Option<mpsc::UnboundedSender<(u64, DurableWrite)>>,
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
    forward_waiters: BTreeMap<(NodeId, u64), oneshot::Sender<Message>>,
}

impl Driver {
    pub(super) fn new(
        replica: Replica,
        clock: Clock,
        storage: mpsc::UnboundedSender<(u64, DurableWrite)>,
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
        }
    }

    pub(super) async fn run(mut self, mut inputs: mpsc::Receiver<Input>, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.peers.update(&self.replica.config().clone());
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let now = self.clock.now();
                    self.replica.tick(now);
                }
                input = inputs.recv() => {
                    let Some(input) = input else { break };
                    self.handle(input);
                    // Drain what is already queued before acting, so one
                    // flush carries a whole burst of proposals.
                    for _ in 0..256 {
                        match inputs.try_recv() {
                            Ok(input) => self.handle(input),
                            Err(_) => break,
                        }
                    }
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

    fn handle(&mut self, input: Input) {
        let now = self.clock.now();
        match input {
            Input::Peer { from, msg, respond } => {
                if let Some(tx) = respond {
                    match &msg {
                        Message::Vote(_) => self.vote_waiters.entry(from).or_default().push_back(tx),
                        Message::SnapshotReq(_) => self.snapshot_waiters.entry(from).or_default().push_back(tx),
                        Message::Forward(f) => {
                            self.forward_waiters.insert((from, f.forward_id), tx);
                        }
                        _ => {}
                    }
                }
                self.replica.step(now, from, msg);
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
            Input::Durable(id) => {
                self.durable = self.durable.max(id);
                self.replica.persisted(now, id);
            }
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
                Action::Persist { id, write } => {
                    if let Some(s) = &self.storage
                        && s.send((id, write)).is_err()
                    {
                        self.storage = None;
                    }
                }
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
        while self.held.front().is_some_and(|(after, _)| *after <= self.durable) {
            match self.held.pop_front() {
                Some((_, Action::Send { to, msg, .. })) => self.dispatch(to, msg),
                Some((_, Action::Reply { request, reply, .. })) => self.complete(request, reply),
                _ => {}
            }
        }
    }

    fn dispatch(&mut self, to: NodeId, msg: Message) {
        match msg {
            Message::VoteReply(_) => {
                if let Some(tx) = self.vote_waiters.get_mut(&to).and_then(|q| q.pop_front()) {
                    let _ = tx.send(msg);
                }
            }
            Message::ForwardReply(ref r) => {
                if let Some(tx) = self.forward_waiters.remove(&(to, r.forward_id)) {
                    let _ = tx.send(msg);
                }
            }
            Message::SnapshotChunk(_) => {
                if let Some(tx) = self.snapshot_waiters.get_mut(&to).and_then(|q| q.pop_front()) {
                    let _ = tx.send(msg);
                }
            }
            Message::Vote(_) | Message::Forward(_) | Message::SnapshotReq(_) => {
                let config = self.replica.config();
                if config.members.contains_key(&to) || config.learners.contains_key(&to) {
                    self.peers.update(&self.replica.config().clone());
                }
                self.peers.send(to, msg);
            }
        }
    }

    fn complete(&mut self, request: RequestId, reply: ClientReply) {
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
                e.kind = "vote_start".into();
                e.leader = Some(candidate);
                tracing::info!(node, "campaigning as {candidate}");
            }
            Event::VoteWin { leader, base_len } => {
                e.kind = "vote_win".into();
                e.leader = Some(leader);
                e.seq = base_len;
                tracing::info!(node, "elected leader {leader} with a base of {base_len} records");
            }
            Event::VoteFail { candidate, reason } => {
                e.kind = "vote_fail".into();
                e.leader = Some(candidate);
                e.detail = reason.to_string();
                tracing::info!(node, "election as {candidate} failed: {reason}");
            }
            Event::LeaderChange { leader } => {
                e.kind = "leader_change".into();
                e.leader = Some(leader);
                tracing::info!(node, "leader is now {leader}");
            }
            Event::Committed { seq } => {
                e.kind = "commit".into();
                e.seq = seq;
            }
            Event::Applied { seq, result } => {
                e.kind = "apply".into();
                e.seq = seq;
                e.detail = match result {
                    ApplyResult::Done => String::new(),
                    ApplyResult::Incremented(v) => format!("value={v}"),
                    ApplyResult::NotAnInteger => "not an integer".into(),
                    ApplyResult::Overridden => "overridden".into(),
                };
            }
            Event::ConfigChange { seq, config } => {
                e.kind = "config_change".into();
                e.seq = seq;
                e.detail = config.to_string();
                tracing::info!(node, "configuration {config} in force from seq {seq}");
                self.peers.update(&config);
            }
            Event::SnapshotInstalled { from, prefix } => {
                e.kind = "snapshot_installed".into();
                e.seq = prefix;
                e.detail = format!("from {from}");
                tracing::info!(node, "installed the snapshot of member {from}, covering seqs below {prefix}");
            }
            Event::Compacted { below } => {
                e.kind = "compacted".into();
                e.seq = below;
                tracing::debug!(node, "log compacted below seq {below}");
            }
        }
        // Nobody watching is fine.
        let _ = self.events.send(e);
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
            committed_out_of_order: r.stats().committed_out_of_order,
            applied_out_of_order: r.stats().applied_out_of_order,
            snapshot_prefix: r.snapshot_prefix(),
            compacted_below: r.compacted_below(),
            snapshots_installed: r.stats().snapshots_installed,
            log_records: r.log().len(),
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
