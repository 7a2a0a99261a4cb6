//! Outgoing RPCs: one long-lived channel per peer, each call bounded by a
//! timeout, replies fed back to the driver as ordinary inputs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tonic::transport::Channel;

use super::Input;
use crate::pb::ClusterConfig;
use crate::pb::t_raft_client::TRaftClient;
use crate::pb::t_raft_snapshot_client::TRaftSnapshotClient;
use crate::replica::{Message, NodeId};
use crate::tls::ClientTls;

/// More than the replica's own in-flight limit per follower, so it is the
/// replica that does flow control; this only stops a runaway.
pub(super) const MAX_CALLS_PER_PEER: usize = 64;

struct Peer {
    addr: String,
    client: TRaftClient<Channel>,
    snapshots: TRaftSnapshotClient<Channel>,
    calls: Arc<Semaphore>,
    /// The TLS failure of the last call to this peer, until one succeeds: a
    /// misconfigured certificate fails every retransmission, so it is logged
    /// once per cause and shown by `status` for as long as it lasts.
    tls_error: Arc<std::sync::Mutex<Option<String>>>,
}

pub(super) struct Peers {
    self_id: NodeId,
    timeout: Duration,
    inputs: mpsc::Sender<Input>,
    peers: BTreeMap<NodeId, Peer>,
    tls: ClientTls,
}

impl Peers {
    pub(super) fn new(self_id: NodeId, timeout: Duration, inputs: mpsc::Sender<Input>, tls: ClientTls) -> Self {
        Peers { self_id, timeout, inputs, peers: BTreeMap::new(), tls }
    }

    /// Opens channels to new members (lazily: nothing connects until the
    /// first call) and keeps existing ones.
    pub(super) fn update(&mut self, config: &ClusterConfig) {
        for m in config.members.values().chain(config.learners.values()) {
            if m.id == self.self_id || self.peers.get(&m.id).is_some_and(|p| p.addr == m.addr) {
                continue;
            }
            match self.tls.endpoint(&m.addr) {
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
                        tls_error: Arc::default(),
                    };
                    self.peers.insert(m.id, peer);
                }
                Err(e) => tracing::warn!(peer = m.id, "cannot dial member {} at {:?}: {e}", m.id, m.addr),
            }
        }
    }

    /// The peers whose last call failed in TLS, and why.
    pub(super) fn tls_errors(&self) -> BTreeMap<NodeId, String> {
        let error = |p: &Peer| p.tls_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.peers.iter().filter_map(|(id, p)| error(p).map(|e| (*id, format!("TLS: {e}")))).collect()
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
        let tls_error = peer.tls_error.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let reply = match msg {
                Message::Vote(req) => client.vote(req).await.map(|r| Message::VoteReply(r.into_inner())),
                Message::Forward(req) => client.log_forward(req).await.map(|r| Message::ForwardReply(r.into_inner())),
                Message::SnapshotReq(req) => snapshots.fetch(req).await.map(|r| Message::SnapshotChunk(r.into_inner())),
                _ => return,
            };
            match reply {
                Ok(msg) => {
                    // A fixed certificate is worth a warning again if it breaks.
                    *tls_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    let _ = inputs.send(Input::Peer { from: to, msg, respond: None }).await;
                }
                Err(status) => match crate::tls::tls_cause(&status) {
                    Some(cause) => {
                        let mut last = tls_error.lock().unwrap_or_else(|e| e.into_inner());
                        if last.as_deref() != Some(cause.as_str()) {
                            tracing::warn!(peer = to, "TLS with member {to} at {addr} failed: {cause}");
                            *last = Some(cause);
                        }
                    }
                    None => tracing::debug!(peer = to, "call to {addr} failed: {}", status.message()),
                },
            }
        });
    }
}
