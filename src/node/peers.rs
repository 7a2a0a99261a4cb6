//! Outgoing RPCs: one long-lived channel per peer, each call bounded by a
//! timeout, replies fed back to the driver as ordinary inputs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tonic::transport::Channel;

use super::Input;
use super::{CLUSTER_ID_HEADER, CLUSTER_MISMATCH, format_cluster_id};
use crate::pb::ClusterConfig;
use crate::pb::t_raft_client::TRaftClient;
use crate::pb::t_raft_snapshot_client::TRaftSnapshotClient;
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
    calls: Arc<Semaphore>,
    /// Why the last call to this peer was refused, until one succeeds: a
    /// certificate from the wrong CA or a member of another cluster fails
    /// every retransmission, so it is logged once per cause and shown by
    /// `status` for as long as it lasts.
    refusal: Arc<std::sync::Mutex<Option<String>>>,
}

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
        Peers { self_id, timeout, inputs, peers: BTreeMap::new(), tls, cluster_id, dial_overrides: BTreeMap::new() }
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
                    let channel = dial
                        .map(|ep| {
                            ep.connect_timeout(self.timeout)
                                .timeout(self.timeout)
                                .http2_keep_alive_interval(Duration::from_secs(1))
                                .keep_alive_timeout(self.timeout)
                        })
                        .connect_lazy();
                    let peer = Peer {
                        addr: m.addr.clone(),
                        client: TRaftClient::new(channel.clone()),
                        snapshots: TRaftSnapshotClient::new(channel),
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
        let refusal = |p: &Peer| p.refusal.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.peers.iter().filter_map(|(id, p)| refusal(p).map(|e| (*id, e))).collect()
    }

    /// Sends a request; its reply arrives later as `Input::Peer`. A lost
    /// call is simply dropped: the replica retransmits on its own timers.
    pub(super) fn send(&mut self, to: NodeId, msg: Message) {
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
                    *refusal.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    let _ = inputs.send(Input::Peer { from: to, msg, respond: None }).await;
                }
                Err(status) => match lasting_cause(&status) {
                    Some(cause) => {
                        let mut last = refusal.lock().unwrap_or_else(|e| e.into_inner());
                        if last.as_deref() != Some(cause.as_str()) {
                            tracing::warn!(peer = to, "member {to} at {addr} refused us: {cause}");
                            *last = Some(cause);
                        }
                    }
                    None => tracing::debug!(peer = to, "call to {addr} failed: {}", status.message()),
                },
            }
        });
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
