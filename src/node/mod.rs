//! The runtime that turns a sans-IO [`Replica`] into a running member:
//! one driver task owns the replica, a storage thread makes its writes
//! durable (one fsync per batch), and tonic serves and calls the peers.
//!
//! ```text
//!  gRPC TRaft/TRaftAdmin ──► driver task (owns Replica) ──► storage thread (WAL, fsync)
//!          ▲                  │  ▲            ▲                    │
//!          └── responses ─────┘  └─ peer RPC  └──── durable(id) ───┘
//! ```
//!
//! No lock is held across an await: the replica lives in the driver task
//! alone and everything else talks to it through bounded channels.

mod driver;
mod metrics;
mod peers;
mod service;
mod wire_names;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::pb::{self, ClusterConfig};
use crate::replica::{DurableState, NodeId, Options, ReadConsistency, Replica};
use crate::storage::Storage;
use crate::tls::{ClientTls, ServerTls};

pub use driver::{ClientOutcome, StatusSnapshot};
pub use metrics::readiness;
pub use wire_names::{EventKind, MemberRole};

/// Everything needed to run one member.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    /// The initial configuration; after the first config record, the log
    /// decides (rule 9).
    pub initial_config: ClusterConfig,
    pub data_dir: PathBuf,
    pub options: Options,
    /// Deadline of one peer RPC.
    pub rpc_timeout: Duration,
    pub tls: NodeTls,
    /// Where to serve `/metrics`, `/livez` and `/readyz` over plain HTTP.
    pub metrics: Option<SocketAddr>,
    /// The cluster id a brand-new data directory records (see
    /// [`cluster_id_from`]); a directory that has one keeps it.
    pub cluster_id: u64,
}

/// `--initial-cluster-token`'s default.
pub const DEFAULT_CLUSTER_TOKEN: &str = "traft-cluster";

/// The gRPC metadata key that carries the sender's cluster id on every peer
/// RPC.
pub const CLUSTER_ID_HEADER: &str = "traft-cluster-id";

/// How a refusal for another cluster's message starts; the sender
/// recognises it by this.
pub(crate) const CLUSTER_MISMATCH: &str = "cluster id mismatch";

/// 16 hex digits: how ids are shown and sent.
pub fn format_cluster_id(id: u64) -> String {
    format!("{id:016x}")
}

pub fn parse_cluster_id(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim(), 16).ok().filter(|id| *id != 0)
}

/// A cluster id every initial member computes alike from what they all
/// are given (like etcd's): the token (`--initial-cluster-token`) and the
/// initial members. Two clusters started with the same members and token
/// share it, so give each cluster its own token. FNV-1a: stable across
/// builds and platforms, which `std`'s hasher does not promise.
pub fn cluster_id_from(token: &str, config: &ClusterConfig) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(token.as_bytes());
    // BTreeMap order: the same for every member however --peers was written.
    for m in config.members.values() {
        eat(format!("\n{}={}", m.id, m.addr).as_bytes());
    }
    hash.max(1)
}

/// A member's TLS: what its listeners present and require, and how it
/// dials its peers. All off by default.
#[derive(Debug, Clone, Default)]
pub struct NodeTls {
    /// The client listener's (`--cert-file`...), or the only listener's.
    pub client: Option<ServerTls>,
    /// The peer listener's (`--peer-cert-file`...).
    pub peer: Option<ServerTls>,
    /// Trust roots and certificate for dialing peers.
    pub dial: ClientTls,
}

/// Where a member listens: one port for everything, or a client port and
/// a peer port (so a firewall and the peer CA can fence peer RPCs off).
pub struct Listeners {
    pub client: tokio::net::TcpListener,
    pub peer: Option<tokio::net::TcpListener>,
}

impl NodeConfig {
    pub fn new(id: NodeId, initial_config: ClusterConfig, data_dir: PathBuf) -> Self {
        let mut options = Options::new(id);
        // Loopback and LAN round trips are far below a millisecond, so
        // heartbeats can be frequent and failover quick.
        options.lease_ns = 1_000_000_000;
        options.heartbeat_ns = 100_000_000;
        options.retransmit_ns = 300_000_000;
        options.election_jitter_ns = 300_000_000;
        options.jitter_seed = id as u64 ^ std::process::id() as u64;
        NodeConfig {
            id,
            cluster_id: cluster_id_from(DEFAULT_CLUSTER_TOKEN, &initial_config),
            initial_config,
            data_dir,
            options,
            rpc_timeout: Duration::from_secs(2),
            tls: NodeTls::default(),
            metrics: None,
        }
    }
}

/// Inputs to the driver task.
pub(crate) enum Input {
    /// A request from a peer (with where to send the reply) or the reply to
    /// one of our own requests (`respond` is `None`).
    Peer {
        from: NodeId,
        msg: crate::replica::Message,
        respond: Option<oneshot::Sender<crate::replica::Message>>,
    },
    Propose {
        cmd: pb::Cmd,
        respond: oneshot::Sender<ClientOutcome>,
    },
    Read {
        key: String,
        consistency: ReadConsistency,
        respond: oneshot::Sender<ClientOutcome>,
    },
    Durable(u64),
    StorageFailed(String),
    ChangeConfig {
        target: ClusterConfig,
        force: bool,
        respond: oneshot::Sender<ClientOutcome>,
    },
    HashKv {
        respond: oneshot::Sender<pb::HashKvReply>,
    },
    TransferLeadership {
        to: Option<NodeId>,
        respond: oneshot::Sender<ClientOutcome>,
    },
    Status {
        respond: oneshot::Sender<StatusSnapshot>,
    },
    Log {
        from: i64,
        limit: usize,
        respond: oneshot::Sender<pb::LogReply>,
    },
}

/// The replica's status, asked of the driver; `None` once it has stopped.
async fn ask_status(inputs: &mpsc::Sender<Input>) -> Option<StatusSnapshot> {
    let (tx, rx) = oneshot::channel();
    inputs.send(Input::Status { respond: tx }).await.ok()?;
    rx.await.ok()
}

/// A running member. Dropping it does not stop it; call [`NodeHandle::shutdown`].
pub struct NodeHandle {
    pub id: NodeId,
    /// The client address (the only one with a single listener).
    pub addr: SocketAddr,
    /// The peer address, when it has its own listener.
    pub peer_addr: Option<SocketAddr>,
    inputs: mpsc::Sender<Input>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    storage_thread: Option<std::thread::JoinHandle<()>>,
    /// Set when the node stopped by itself (storage failure).
    fatal: tokio::sync::watch::Receiver<Option<String>>,
}

impl NodeHandle {
    pub async fn status(&self) -> anyhow::Result<StatusSnapshot> {
        ask_status(&self.inputs).await.ok_or_else(|| anyhow::anyhow!("node {} stopped", self.id))
    }

    /// If this node leads, hands leadership to the most caught-up member
    /// and waits (at most `wait`) until another member leads; returns that
    /// leader. A follower has nothing to hand over. Called before stopping a
    /// leader, so a rolling restart costs no election timeout.
    pub async fn hand_over(&self, wait: Duration) -> Option<pb::LeaderId> {
        let status = self.status().await.ok()?;
        if status.role != crate::replica::Role::Leader {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.inputs.send(Input::TransferLeadership { to: None, respond: tx }).await.ok()?;
        match rx.await.ok()? {
            ClientOutcome::Reply(crate::replica::ClientReply::Transferred { to, .. }) => {
                tracing::info!(node = self.id, "handing leadership to node {to} before stopping");
            }
            // A one-member cluster, or no other member reachable: nobody to
            // hand over to, which is not a fault.
            ClientOutcome::Reply(crate::replica::ClientReply::Failed(err)) => {
                tracing::info!(node = self.id, "not handing leadership over before stopping: {err}");
                return None;
            }
            other => {
                tracing::warn!(node = self.id, "could not hand leadership over before stopping: {other:?}");
                return None;
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            if let Ok(s) = self.status().await
                && let Some(leader) = s.leader.filter(|l| l.id != self.id)
            {
                return Some(leader);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Why the node stopped by itself, if it did.
    pub fn fatal_error(&self) -> Option<String> {
        self.fatal.borrow().clone()
    }

    /// Tells the node to stop, without waiting. Stopping several embedded
    /// nodes at once lets each one's peers hang up on it.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Stops serving, lets in-flight writes finish, and releases the data
    /// directory.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for mut t in self.tasks.drain(..) {
            // A graceful server shutdown waits for every connection to close,
            // and a peer's long-lived channel may never close: cut it short.
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut t).await.is_err() {
                t.abort();
                let _ = t.await;
            }
        }
        drop(self.inputs);
        if let Some(t) = self.storage_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// How long shutdown waits for in-flight RPCs before closing connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Binds the listen address first, so a busy port is reported before any
/// data is touched.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "cannot listen on {addr}: the port is busy or not permitted; choose another with --listen / --base-port"
        )
    })
}

/// What the replica starts from: `None` makes it a brand-new member, which
/// may vote at once; `Some` makes it a restarted one, which keeps its
/// `VotedFor` and sits out a lease before voting or campaigning (rule 2), since
/// before the crash it may have voted or acknowledged a leader.
///
/// Fresh exactly when no write was ever durable in the directory. That
/// covers a directory just created, one left empty or half initialised by a
/// crash during the first start (only `LOCK`, `*.tmp`, an empty first
/// segment), and one whose only write was torn, and all of them are safe to
/// treat as fresh: the driver lets nothing that promises anything (a granted
/// vote, a forward's acknowledgement, a candidate's vote request) leave before
/// the write it depends on is durable (rule 10), and every such promise first
/// changes or records `VotedFor`. So a member with no durable write never made
/// one, and a torn write was never acknowledged. Write numbers continue across
/// checkpoints, so a long-lived directory never counts zero again. Treating
/// these as restarted would also be safe, only slower: a member that crashed
/// during its first start would wait a lease for nothing.
fn restored_state(durable_writes: u64, recovered: DurableState) -> Option<DurableState> {
    (durable_writes > 0).then_some(recovered)
}

/// What to do about a data directory the member may not write: it writes
/// there from its first step (the lock, the log), so this is the usual
/// cause of a refused start after a disk error remounted the file system.
fn unwritable_hint(e: &crate::storage::StorageError) -> Option<&'static str> {
    let crate::storage::StorageError::Io { error, .. } = e else { return None };
    match error.kind() {
        std::io::ErrorKind::ReadOnlyFilesystem => Some(
            "the file system is read-only, and a member writes to its data directory: remount it read-write, or \
             choose another directory with --data-dir",
        ),
        std::io::ErrorKind::PermissionDenied => Some(
            "a member writes to its data directory: give this user write permission there, or choose another \
             directory with --data-dir",
        ),
        _ => None,
    }
}

/// Opens storage, recovers the replica, and starts serving on `listeners`.
pub async fn start(config: NodeConfig, listeners: Listeners) -> anyhow::Result<NodeHandle> {
    let addr = listeners.client.local_addr()?;
    let peer_addr = listeners.peer.as_ref().map(|l| l.local_addr()).transpose()?;
    let metrics_listener = match config.metrics {
        Some(addr) => Some(bind(addr).await.context("--listen-metrics")?),
        None => None,
    };
    let (mut storage, recovered, warnings) = Storage::open(&config.data_dir).map_err(|e| {
        let hint = unwritable_hint(&e).map_or_else(String::new, |h| format!("; {h}"));
        anyhow::anyhow!("node {}: cannot open data directory {}: {e}{hint}", config.id, config.data_dir.display())
    })?;
    let dir_error = || format!("node {}: data directory {}", config.id, config.data_dir.display());
    let recorded_cluster_id = storage.cluster_id().with_context(dir_error)?;
    let cluster_id = recorded_cluster_id.unwrap_or(config.cluster_id);
    if cluster_id != config.cluster_id {
        tracing::warn!(
            node = config.id,
            "keeping cluster id {} from the data directory (the flags give {}: a different \
             --initial-cluster-token or --peers than at the first start)",
            format_cluster_id(cluster_id),
            format_cluster_id(config.cluster_id)
        );
    }
    for w in warnings {
        tracing::warn!(node = config.id, "{w}");
    }
    let restored = restored_state(storage.durable_writes(), recovered);
    let clock = driver::Clock::new();
    let replica = Replica::new(config.options.clone(), config.initial_config.clone(), restored, clock.now());

    let (inputs_tx, inputs_rx) = mpsc::channel::<Input>(4096);
    let (events_tx, _) = broadcast::channel(1024);
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let (fatal_tx, fatal_rx) = tokio::sync::watch::channel(None);

    let svc = service::Service {
        inputs: inputs_tx.clone(),
        events: events_tx.clone(),
        rpc_timeout: config.rpc_timeout,
        shutdown: shutdown_rx.clone(),
        cluster_id,
        started: std::time::Instant::now(),
        data_dir: config.data_dir.clone(),
    };
    // Built before anything is spawned: a certificate rustls refuses stops
    // the start with nothing running.
    let limits = service::Limits::new(&config.options);
    let health = tonic_health::server::HealthReporter::new();
    let id = config.id;
    let tls_error = |which: &'static str| move |e: String| anyhow::anyhow!("node {id}: {which} TLS: {e}");
    let servers = match listeners.peer {
        None => {
            let tls = config.tls.client.as_ref().or(config.tls.peer.as_ref());
            let router =
                service::router(&svc, service::Serves::Everything, tls, limits, &health).map_err(tls_error("the"))?;
            vec![(router, listeners.client)]
        }
        Some(peer) => {
            let clients = service::router(&svc, service::Serves::Clients, config.tls.client.as_ref(), limits, &health)
                .map_err(tls_error("client"))?;
            let peers = service::router(&svc, service::Serves::Peers, config.tls.peer.as_ref(), limits, &health)
                .map_err(tls_error("peer"))?;
            vec![(clients, listeners.client), (peers, peer)]
        }
    };

    // Recorded once the listeners' TLS is known to be good, and before any
    // peer hears from this member.
    if recorded_cluster_id.is_none() {
        storage.record_cluster_id(cluster_id).with_context(dir_error)?;
    }

    let (storage_tx, storage_thread) = driver::spawn_storage(storage, inputs_tx.clone());
    let peers =
        peers::Peers::new(config.id, config.rpc_timeout, inputs_tx.clone(), config.tls.dial.clone(), cluster_id);
    let driver = driver::Driver::new(replica, clock, storage_tx, peers, events_tx.clone(), fatal_tx);
    let driver_task = tokio::spawn(driver.run(inputs_rx, shutdown_rx.clone()));

    let mut tasks: Vec<_> =
        servers.into_iter().map(|(router, l)| tokio::spawn(service::serve(router, l, shutdown_rx.clone()))).collect();
    tasks.push(driver_task);
    tasks.push(tokio::spawn(service::report_health(health, inputs_tx.clone(), shutdown_rx.clone())));
    if let Some(listener) = metrics_listener {
        let serve = metrics::serve(listener, inputs_tx.clone(), config.data_dir.clone(), shutdown_rx.clone());
        tasks.push(tokio::spawn(serve));
    }

    Ok(NodeHandle {
        id: config.id,
        addr,
        peer_addr,
        inputs: inputs_tx,
        shutdown: shutdown_tx,
        tasks,
        storage_thread: Some(storage_thread),
        fatal: fatal_rx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::LeaderId;
    use crate::replica::HardState;

    #[test]
    fn a_directory_with_a_durable_write_restarts_with_its_vote() {
        let voted = LeaderId::new(7, 2);
        let state = DurableState {
            hard_state: HardState { voted_for: Some(voted), ..HardState::default() },
            ..DurableState::default()
        };
        let restored = restored_state(1, state.clone()).expect("a member with a durable write is not fresh");
        assert_eq!(restored, state);
        // Even a write that left nothing visible in the state: the messages
        // that waited for it may have left.
        assert!(restored_state(5, DurableState::default()).is_some());
    }

    #[test]
    fn the_cluster_id_follows_the_token_and_the_members_alone() {
        let config =
            |addrs: &[(i64, &str)]| ClusterConfig::majority(addrs.iter().map(|(id, a)| (*id, a.to_string()))).unwrap();
        let abc = config(&[(1, "h1:1"), (2, "h2:1"), (3, "h3:1")]);
        let cba = config(&[(3, "h3:1"), (2, "h2:1"), (1, "h1:1")]);
        assert_eq!(cluster_id_from("t", &abc), cluster_id_from("t", &cba));
        assert_ne!(cluster_id_from("t", &abc), cluster_id_from("u", &abc));
        assert_ne!(cluster_id_from("t", &abc), cluster_id_from("t", &config(&[(1, "h1:1"), (2, "h2:1"), (3, "h4:1")])));
        let id = cluster_id_from("t", &abc);
        assert_eq!(parse_cluster_id(&format_cluster_id(id)), Some(id));
        assert_eq!(parse_cluster_id("0000000000000000"), None, "0 means no id");
    }

    #[test]
    fn a_directory_without_a_durable_write_starts_fresh() {
        assert_eq!(restored_state(0, DurableState::default()), None);
    }
}
