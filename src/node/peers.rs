//! Outgoing RPCs: one long-lived channel per peer, each call bounded by a
//! timeout, replies fed back to the driver as ordinary inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tonic::transport::Channel;

use super::Input;
use super::{CLUSTER_ID_HEADER, CLUSTER_MISMATCH, format_cluster_id};
use crate::pb::t_raft_client::TRaftClient;
use crate::pb::t_raft_replication_client::TRaftReplicationClient;
use crate::pb::t_raft_snapshot_client::TRaftSnapshotClient;
use crate::pb::{self, ClusterConfig};
use crate::replica::{Message, NodeId};
use crate::tls::ClientTls;
use tonic::metadata::{Ascii, MetadataValue};

/// More than the replica's own in-flight limit per follower, so it is the
/// replica that does flow control; this only stops a runaway.
pub(super) const MAX_CALLS_PER_PEER: usize = 64;

struct Peer {
    addr: String,
    client: TRaftClient<Channel>,
    snapshots: TRaftSnapshotClient<Channel>,
    /// Replication streams, each on a connection of its own; forwards take
    /// them in turn.
    lanes: Vec<Lane>,
    next_lane: usize,
    /// The member does not serve `TRaftReplication` (a reference member):
    /// forwards go as `LogForward` calls.
    unary_only: Arc<AtomicBool>,
    calls: Arc<Semaphore>,
    /// Why the last call to this peer was refused, until one succeeds: a
    /// certificate from the wrong CA or a member of another cluster fails
    /// every retransmission, so it is logged once per cause and shown by
    /// `status` for as long as it lasts.
    refusal: Arc<std::sync::Mutex<Option<String>>>,
}

/// One replication stream to a peer, on its own connection. A broken
/// connection loses only the forwards it carried, and with out-of-order
/// commit the records of the forwards on the other lanes commit meanwhile
/// (docs/protocol.md, "Transport").
struct Lane {
    replication: TRaftReplicationClient<Channel>,
    /// The open stream, if any: forwards are written to it.
    stream: Option<mpsc::Sender<pb::LogForwardReq>>,
    /// Forwards given to the open stream and not yet answered: the ones to
    /// report lost if it breaks.
    unanswered: Arc<std::sync::Mutex<BTreeSet<u64>>>,
    /// Not before this may a stream be opened again: one that failed
    /// without an answer backs off, so a dead member is not redialed per
    /// forward.
    reopen_at: Arc<std::sync::Mutex<Option<(tokio::time::Instant, Duration)>>>,
}

impl Lane {
    fn backing_off(&self, now: tokio::time::Instant) -> bool {
        self.stream.as_ref().is_none_or(|s| s.is_closed()) && lock(&self.reopen_at).is_some_and(|(at, _)| now < at)
    }
}

/// Replication connections per peer unless the node says otherwise.
pub const DEFAULT_PEER_CONNECTIONS: usize = 2;

pub(super) struct Peers {
    self_id: NodeId,
    timeout: Duration,
    inputs: mpsc::Sender<Input>,
    peers: BTreeMap<NodeId, Peer>,
    tls: ClientTls,
    /// Sent with every call as [`CLUSTER_ID_HEADER`].
    cluster_id: MetadataValue<Ascii>,
    /// `NodeConfig::dial_overrides`.
    pub(super) dial_overrides: BTreeMap<NodeId, String>,
    /// `NodeConfig::peer_connections`: replication lanes per peer.
    pub(super) lanes: usize,
}

impl Peers {
    pub(super) fn new(
        self_id: NodeId,
        timeout: Duration,
        inputs: mpsc::Sender<Input>,
        tls: ClientTls,
        cluster_id: u64,
    ) -> Self {
        let cluster_id = format_cluster_id(cluster_id).parse().expect("hex digits are valid metadata");
        Peers {
            self_id,
            timeout,
            inputs,
            peers: BTreeMap::new(),
            tls,
            cluster_id,
            dial_overrides: BTreeMap::new(),
            lanes: DEFAULT_PEER_CONNECTIONS,
        }
    }

    /// Opens channels to new members (lazily: nothing connects until the
    /// first call) and keeps existing ones.
    pub(super) fn update(&mut self, config: &ClusterConfig) {
        for m in config.members.values().chain(config.learners.values()) {
            if m.id == self.self_id || self.peers.get(&m.id).is_some_and(|p| p.addr == m.addr) {
                continue;
            }
            match self.tls.endpoint(&super::dial_address(&m.addr, self.dial_overrides.get(&m.id))) {
                Ok(dial) => {
                    let dial = dial.map(|ep| {
                        ep.connect_timeout(self.timeout)
                            .timeout(self.timeout)
                            .http2_keep_alive_interval(Duration::from_secs(1))
                            .keep_alive_timeout(self.timeout)
                    });
                    // Each connect_lazy() is a connection of its own.
                    let channel = dial.connect_lazy();
                    let lanes = (0..self.lanes.max(1))
                        .map(|i| Lane {
                            replication: TRaftReplicationClient::new(if i == 0 {
                                channel.clone()
                            } else {
                                dial.connect_lazy()
                            }),
                            stream: None,
                            unanswered: Arc::default(),
                            reopen_at: Arc::default(),
                        })
                        .collect();
                    let peer = Peer {
                        addr: m.addr.clone(),
                        client: TRaftClient::new(channel.clone()),
                        snapshots: TRaftSnapshotClient::new(channel),
                        lanes,
                        next_lane: 0,
                        unary_only: Arc::default(),
                        calls: Arc::new(Semaphore::new(MAX_CALLS_PER_PEER)),
                        refusal: Arc::default(),
                    };
                    self.peers.insert(m.id, peer);
                }
                Err(e) => tracing::warn!(peer = m.id, "cannot dial member {} at {:?}: {e}", m.id, m.addr),
            }
        }
    }

    /// The peers whose last call was refused, and why.
    pub(super) fn refusals(&self) -> BTreeMap<NodeId, String> {
        let refusal = |p: &Peer| lock(&p.refusal).clone();
        self.peers.iter().filter_map(|(id, p)| refusal(p).map(|e| (*id, e))).collect()
    }

    /// Sends a request; its reply arrives later as `Input::Peer`. A lost
    /// call is simply dropped: the replica retransmits on its own timers.
    /// Forwards go on the member's replication stream when it has one.
    pub(super) fn send(&mut self, to: NodeId, msg: Message) {
        let msg = match msg {
            Message::Forward(req) => match self.stream_forward(to, req) {
                Some(req) => Message::Forward(req),
                None => return,
            },
            other => other,
        };
        let Some(peer) = self.peers.get(&to) else { return };
        let Ok(permit) = peer.calls.clone().try_acquire_owned() else { return };
        let mut client = peer.client.clone();
        let mut snapshots = peer.snapshots.clone();
        let inputs = self.inputs.clone();
        let addr = peer.addr.clone();
        let refusal = peer.refusal.clone();
        let cluster_id = self.cluster_id.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let reply = match msg {
                Message::Vote(req) => {
                    client.vote(with_id(req, cluster_id)).await.map(|r| Message::VoteReply(r.into_inner()))
                }
                Message::Forward(req) => {
                    client.log_forward(with_id(req, cluster_id)).await.map(|r| Message::ForwardReply(r.into_inner()))
                }
                Message::SnapshotReq(req) => {
                    snapshots.fetch(with_id(req, cluster_id)).await.map(|r| Message::SnapshotChunk(r.into_inner()))
                }
                _ => return,
            };
            match reply {
                Ok(msg) => {
                    // A fixed refusal is worth a warning again if it comes back.
                    *lock(&refusal) = None;
                    let _ = inputs.send(Input::Peer { from: to, msg, respond: None }).await;
                }
                Err(status) => note_failure(to, &addr, &refusal, &status),
            }
        });
    }
}

impl Peers {
    /// Writes a forward to one of `to`'s replication streams (the next in
    /// turn that is not backing off), opening it if it is not open; hands
    /// the forward back when it must go as a `LogForward` call.
    fn stream_forward(&mut self, to: NodeId, req: pb::LogForwardReq) -> Option<pb::LogForwardReq> {
        let peer = self.peers.get_mut(&to)?;
        if peer.unary_only.load(Ordering::Relaxed) {
            return Some(req);
        }
        let now = tokio::time::Instant::now();
        let n = peer.lanes.len();
        let Some(lane) = (0..n).map(|i| (peer.next_lane + i) % n).find(|&i| !peer.lanes[i].backing_off(now)) else {
            // Lost like any message to an unreachable member.
            return None;
        };
        peer.next_lane = (lane + 1) % n;
        if peer.lanes[lane].stream.as_ref().is_none_or(|s| s.is_closed()) {
            let shared = (peer.addr.clone(), peer.refusal.clone(), peer.unary_only.clone());
            let opened = open_stream(to, &mut peer.lanes[lane], shared, self.inputs.clone(), self.cluster_id.clone());
            peer.lanes[lane].stream = Some(opened);
        }
        let lane = &mut peer.lanes[lane];
        let stream = lane.stream.as_ref()?;
        let forward_id = req.forward_id;
        // Noted before it is sent, as its answer may come back first.
        lock(&lane.unanswered).insert(forward_id);
        let sent = stream.try_send(req);
        if sent.is_err() {
            lock(&lane.unanswered).remove(&forward_id);
        }
        match sent {
            Ok(()) => None,
            // More forwards queued than any leader keeps in flight: the
            // stream is stuck, and these are lost like any message.
            Err(mpsc::error::TrySendError::Full(_)) => None,
            Err(mpsc::error::TrySendError::Closed(req)) => {
                lane.stream = None;
                Some(req)
            }
        }
    }
}

/// Forwards a stream may have queued before they are written to the wire.
const STREAM_QUEUE: usize = 256;

/// How long to wait before reopening a stream that failed without an
/// answer, at first and at most; doubled on each failure in a row.
const REOPEN_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_millis(500));

/// Opens a replication stream to `to`: forwards written to the returned
/// sender go out in order; replies come back as `Input::Peer`. The stream
/// ends on any error, and the sender then reports closed, so the next
/// forward opens another (unanswered forwards are retransmitted by the
/// replica).
fn open_stream(
    to: NodeId,
    lane: &mut Lane,
    (addr, refusal, unary_only): (String, Arc<std::sync::Mutex<Option<String>>>, Arc<AtomicBool>),
    inputs: mpsc::Sender<Input>,
    cluster_id: MetadataValue<Ascii>,
) -> mpsc::Sender<pb::LogForwardReq> {
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    let mut client = lane.replication.clone();
    // Each stream its own set: the task of a broken one may still be about
    // to report its own as lost.
    lane.unanswered = Arc::default();
    let (unanswered, reopen_at) = (lane.unanswered.clone(), lane.reopen_at.clone());
    tokio::spawn(async move {
        let request = with_id(tokio_stream::wrappers::ReceiverStream::new(rx), cluster_id);
        let mut answered = false;
        let failure = match client.replicate(request).await {
            Ok(response) => {
                let mut replies = response.into_inner();
                loop {
                    match replies.message().await {
                        Ok(Some(reply)) => {
                            if !answered {
                                answered = true;
                                *lock(&reopen_at) = None;
                                *lock(&refusal) = None;
                            }
                            lock(&unanswered).remove(&reply.forward_id);
                            let msg = Message::ForwardReply(reply);
                            if inputs.send(Input::Peer { from: to, msg, respond: None }).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break None,
                        Err(status) => break Some(status),
                    }
                }
            }
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                tracing::info!(peer = to, "member {to} at {addr} has no replication stream; forwarding call by call");
                unary_only.store(true, Ordering::Relaxed);
                return;
            }
            Err(status) => Some(status),
        };
        let lasting = failure.as_ref().is_some_and(|status| lasting_cause(status).is_some());
        if let Some(status) = failure {
            note_failure(to, &addr, &refusal, &status);
        }
        // A stream that worked and then broke (a reset connection) lost the
        // forwards on it: say so, so the replica resends them (on another
        // lane, or this one reopened) now rather than after its retransmit
        // time. Not for one that never worked, which would have the replica
        // resend to a dead member as fast as the dial fails.
        let lost = std::mem::take(&mut *lock(&unanswered));
        if answered && !lasting {
            for forward_id in lost {
                let _ = inputs.send(Input::ForwardLost { peer: to, forward_id: Some(forward_id) }).await;
            }
        }
        if !answered {
            let mut at = lock(&reopen_at);
            let backoff = at.map_or(REOPEN_BACKOFF.0, |(_, b)| (b * 2).min(REOPEN_BACKOFF.1));
            *at = Some((tokio::time::Instant::now() + backoff, backoff));
        }
    });
    tx
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Logs a failed call: once per cause for a refusal that retrying will
/// not change (shown by `status` while it lasts), at debug level otherwise.
fn note_failure(to: NodeId, addr: &str, refusal: &std::sync::Mutex<Option<String>>, status: &tonic::Status) {
    match lasting_cause(status) {
        Some(cause) => {
            let mut last = lock(refusal);
            if last.as_deref() != Some(cause.as_str()) {
                tracing::warn!(peer = to, "member {to} at {addr} refused us: {cause}");
                *last = Some(cause);
            }
        }
        None => tracing::debug!(peer = to, "call to {addr} failed: {}", status.message()),
    }
}

/// A refusal that retrying will not change: TLS, or another cluster.
fn lasting_cause(status: &tonic::Status) -> Option<String> {
    if let Some(cause) = crate::tls::tls_cause(status) {
        return Some(format!("TLS: {cause}"));
    }
    (status.code() == tonic::Code::FailedPrecondition && status.message().starts_with(CLUSTER_MISMATCH))
        .then(|| status.message().to_string())
}

fn with_id<T>(req: T, cluster_id: MetadataValue<Ascii>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(req);
    r.metadata_mut().insert(CLUSTER_ID_HEADER, cluster_id);
    r
}
