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
pub mod local;
mod metrics;
mod peers;
mod service;
pub mod timings;
mod wire_names;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::pb::{self, ClusterConfig};
use crate::replica::{DurableState, NodeId, Options, ReadConsistency, Replica};
use crate::storage::Storage;
use crate::tls::{ClientTls, ServerTls};

pub use driver::{ClientOutcome, StatusSnapshot};
pub use metrics::readiness;
pub use peers::DEFAULT_PEER_CONNECTIONS;
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
    /// Where to dial a peer instead of its address in the configuration
    /// (`HOST:PORT`, e.g. a fault proxy's listener; the member address's
    /// `https://` carries over). The configuration, and so status, redirects
    /// and the cluster id, keep the real addresses.
    pub dial_overrides: BTreeMap<NodeId, String>,
    /// Replication connections (lanes) a leader keeps to each follower.
    pub peer_connections: usize,
    /// Set by `local-cluster`: serves `TRaftAdmin.Chaos` and `LocalMember`.
    pub local_control: Option<local::LocalControlHandle>,
    /// Where clients reach this member (`--advertise-client`), as `status`
    /// reports it; empty when unknown (a wildcard listen address).
    pub advertise_client: String,
}

/// The shortest heartbeat interval: the driver ticks every 10 ms, so a
/// shorter one would not be kept.
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(10);
/// An election timeout (lease) is at least this many heartbeats.
pub const HEARTBEATS_PER_ELECTION_TIMEOUT: u32 = 5;
/// etcd's upper bound on the election timeout.
pub const MAX_ELECTION_TIMEOUT: Duration = Duration::from_secs(50);

/// Why a heartbeat interval and election timeout do not go together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    #[error("--heartbeat-interval {0} ms is below the {min} ms the node ticks at", min = MIN_HEARTBEAT.as_millis())]
    HeartbeatTooShort(u128),
    #[error(
        "--election-timeout {election} ms must be at least {HEARTBEATS_PER_ELECTION_TIMEOUT} x --heartbeat-interval \
         ({heartbeat} ms), so a leader's lease is renewed several times before it runs out; raise \
         --election-timeout to {} or lower --heartbeat-interval",
        heartbeat * HEARTBEATS_PER_ELECTION_TIMEOUT as u128
    )]
    TooFewHeartbeats { election: u128, heartbeat: u128 },
    #[error("--election-timeout {0} ms is above the {max} ms limit", max = MAX_ELECTION_TIMEOUT.as_millis())]
    ElectionTimeoutTooLong(u128),
}

impl NodeConfig {
    /// Sets every timer from the two an operator tunes (etcd's names).
    /// The election timeout is the lease `D` (docs/protocol.md, "Timing"):
    /// a follower that heard from its leader refuses other ballots for `D`,
    /// and campaigns after `D` plus up to `0.3 D` of jitter without one. A
    /// lost forward is sent again after 3 heartbeats, and a leader without
    /// a quorum of acknowledgements for `2 D` steps down. Leases stay safe
    /// whatever the two are (that depends on `D` and the clock error
    /// alone); the ratio is what keeps them from lapsing between heartbeats.
    pub fn set_timing(&mut self, heartbeat: Duration, election_timeout: Duration) -> Result<(), TimingError> {
        check_timing(heartbeat, election_timeout)?;
        let (hb_ns, lease_ns) = (heartbeat.as_nanos() as u64, election_timeout.as_nanos() as u64);
        let o = &mut self.options;
        o.lease_ns = lease_ns;
        o.heartbeat_ns = hb_ns;
        o.retransmit_ns = 3 * hb_ns;
        o.election_jitter_ns = lease_ns * 3 / 10;
        o.leader_stale_ns = 2 * lease_ns;
        Ok(())
    }
}

/// Whether a heartbeat interval and an election timeout go together (see
/// [`NodeConfig::set_timing`]).
pub fn check_timing(heartbeat: Duration, election_timeout: Duration) -> Result<(), TimingError> {
    let (hb, et) = (heartbeat.as_millis(), election_timeout.as_millis());
    if heartbeat < MIN_HEARTBEAT {
        return Err(TimingError::HeartbeatTooShort(hb));
    }
    if election_timeout > MAX_ELECTION_TIMEOUT {
        return Err(TimingError::ElectionTimeoutTooLong(et));
    }
    if election_timeout < heartbeat * HEARTBEATS_PER_ELECTION_TIMEOUT {
        return Err(TimingError::TooFewHeartbeats { election: et, heartbeat: hb });
    }
    Ok(())
}

/// `--heartbeat-interval`'s default.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(100);
/// `--election-timeout`'s default.
pub const DEFAULT_ELECTION_TIMEOUT: Duration = Duration::from_millis(1000);

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

/// What to dial for the member at `addr`: `via` when given, with `addr`'s
/// `https://` if it has one and `via` has none.
pub(crate) fn dial_address(addr: &str, via: Option<&String>) -> String {
    match via {
        None => addr.to_string(),
        Some(via) if addr.starts_with("https://") && !via.starts_with("https://") => format!("https://{via}"),
        Some(via) => via.clone(),
    }
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
        options.jitter_seed = id as u64 ^ std::process::id() as u64;
        let mut config = NodeConfig {
            id,
            cluster_id: cluster_id_from(DEFAULT_CLUSTER_TOKEN, &initial_config),
            initial_config,
            data_dir,
            options,
            rpc_timeout: Duration::from_secs(2),
            tls: NodeTls::default(),
            metrics: None,
            dial_overrides: BTreeMap::new(),
            peer_connections: DEFAULT_PEER_CONNECTIONS,
            local_control: None,
            advertise_client: String::new(),
        };
        // Loopback and LAN round trips are far below a millisecond, so
        // heartbeats can be frequent and failover quick.
        config.set_timing(DEFAULT_HEARTBEAT, DEFAULT_ELECTION_TIMEOUT).expect("the defaults go together");
        config
    }
}

/// Where the driver sends its answer to a peer's request.
pub(crate) enum Responder {
    /// A unary call waits for this one answer.
    Once(oneshot::Sender<crate::replica::Message>),
    /// A replication stream (`TRaftReplication.Replicate`): forward replies
    /// go out on it as each becomes due.
    Stream(mpsc::Sender<Result<pb::LogForwardReply, tonic::Status>>),
}

/// Inputs to the driver task.
pub(crate) enum Input {
    /// A request from a peer (with where to send the reply) or the reply to
    /// one of our own requests (`respond` is `None`).
    Peer {
        from: NodeId,
        msg: crate::replica::Message,
        respond: Option<Responder>,
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
    /// The transport lost the forward `forward_id` to `peer`, or (`None`)
    /// every forward in flight on a connection that broke.
    ForwardLost {
        peer: NodeId,
        forward_id: Option<u64>,
    },
    Durable(u64),
    /// The snapshot of `Action::SaveSnapshot { id, .. }` is durable.
    SnapshotSaved(u64),
    StorageFailed(String),
    ChangeConfig {
        target: ClusterConfig,
        force: bool,
        respond: oneshot::Sender<ClientOutcome>,
    },
    AbortChange {
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
    /// While true, the driver neither reads its inputs nor ticks.
    paused: tokio::sync::watch::Sender<bool>,
    driver: Option<tokio::task::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    storage_thread: Option<std::thread::JoinHandle<()>>,
    /// Set when the node stopped by itself (storage failure).
    fatal: tokio::sync::watch::Receiver<Option<String>>,
    /// The member's own thread and runtime ([`start_on_thread`]), and what
    /// lets it end once the tasks above have finished.
    thread: Option<(std::thread::JoinHandle<()>, oneshot::Sender<()>)>,
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

    /// Freezes the member as SIGSTOP would: the replica stops processing
    /// (no input is read, no timer fires) and so stops answering; its
    /// sockets stay open and requests queue. `false` thaws it, and what
    /// queued is processed.
    pub fn pause(&self, paused: bool) {
        let _ = self.paused.send(paused);
    }

    /// Stops the member as SIGKILL would: the replica and everything in its
    /// memory go at once (no hand-over, no reply to what is in flight);
    /// then the listeners close and the data directory is released. Writes
    /// already handed to storage may still land, as they may after a crash.
    ///
    /// The replica is gone when this returns; the future finishes once the
    /// data directory is released (so the member may be started again),
    /// leaving the connections to close in the background as their requests
    /// fail: waiting for them could wait for the very request that asked
    /// for the kill.
    pub fn kill(mut self) -> impl std::future::Future<Output = ()> {
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
        let _ = self.shutdown.send(true);
        async move {
            let tasks = std::mem::take(&mut self.tasks);
            // The member's own thread and runtime serve its connections, the
            // one that asked for the kill perhaps among them: they end only
            // after those tasks.
            let thread = self.thread.take();
            tokio::spawn(async move {
                for mut t in tasks {
                    if tokio::time::timeout(SHUTDOWN_GRACE, &mut t).await.is_err() {
                        t.abort();
                    }
                }
                if let Some((thread, done)) = thread {
                    let _ = done.send(());
                    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
                }
            });
            drop(self.inputs);
            if let Some(t) = self.storage_thread.take() {
                let _ = tokio::task::spawn_blocking(move || t.join()).await;
            }
        }
    }

    /// Stops serving, lets in-flight writes finish, and releases the data
    /// directory.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let _ = self.paused.send(false);
        let driver = self.driver.take();
        for mut t in self.tasks.drain(..).chain(driver) {
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
        if let Some((thread, done)) = self.thread.take() {
            let _ = done.send(());
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
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
        local: config.local_control.clone(),
        advertise_client: config.advertise_client.clone(),
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

    let timings = Arc::new(timings::Timings::default());
    let (storage_tx, storage_thread) = driver::spawn_storage(storage, inputs_tx.clone(), timings.clone());
    let mut peers =
        peers::Peers::new(config.id, config.rpc_timeout, inputs_tx.clone(), config.tls.dial.clone(), cluster_id);
    peers.dial_overrides = config.dial_overrides.clone();
    peers.lanes = config.peer_connections;
    let (paused_tx, paused_rx) = tokio::sync::watch::channel(false);
    let driver = driver::Driver::new(replica, clock, storage_tx, peers, events_tx.clone(), fatal_tx)
        .pausable(paused_rx)
        .timed(timings.clone());
    let driver_task = tokio::spawn(driver.run(inputs_rx, shutdown_rx.clone()));

    let mut tasks: Vec<_> =
        servers.into_iter().map(|(router, l)| tokio::spawn(service::serve(router, l, shutdown_rx.clone()))).collect();
    tasks.push(tokio::spawn(service::report_health(health, inputs_tx.clone(), shutdown_rx.clone())));
    if let Some(listener) = metrics_listener {
        let serve = metrics::serve(listener, inputs_tx.clone(), config.data_dir.clone(), timings, shutdown_rx.clone());
        tasks.push(tokio::spawn(serve));
    }

    Ok(NodeHandle {
        id: config.id,
        addr,
        peer_addr,
        inputs: inputs_tx,
        shutdown: shutdown_tx,
        paused: paused_tx,
        driver: Some(driver_task),
        tasks,
        storage_thread: Some(storage_thread),
        fatal: fatal_rx,
        thread: None,
    })
}

/// Like [`start`], but the member runs on a thread of its own with a
/// single-threaded runtime: its gRPC connections, driver and peer calls
/// never hop between threads, and members embedded in one process
/// (`local-cluster`) do not steal each other's tasks. Only the storage
/// thread (fsync) runs beside it. The returned handle is used from the
/// caller's runtime as usual; [`NodeHandle::shutdown`] also ends the
/// thread, and dropping the handle without it stops the member abruptly.
pub async fn start_on_thread(config: NodeConfig, listeners: Listeners) -> anyhow::Result<NodeHandle> {
    // A tokio socket belongs to the runtime that registered it.
    let client = listeners.client.into_std()?;
    let peer = listeners.peer.map(|l| l.into_std()).transpose()?;
    let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<NodeHandle>>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let id = config.id;
    let thread = std::thread::Builder::new()
        .name(format!("traft-node-{id}"))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::Error::new(e).context("cannot start the member's runtime")));
                    return;
                }
            };
            runtime.block_on(async move {
                let listeners = (|| {
                    anyhow::Ok(Listeners {
                        client: tokio::net::TcpListener::from_std(client)?,
                        peer: peer.map(tokio::net::TcpListener::from_std).transpose()?,
                    })
                })();
                match listeners {
                    Ok(listeners) => match start(config, listeners).await {
                        Ok(handle) => {
                            let _ = ready_tx.send(Ok(handle));
                            // Keeps driving the member's tasks until the
                            // handle's shutdown has seen them finish.
                            let _ = done_rx.await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    },
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })
        .with_context(|| format!("node {id}: cannot start its thread"))?;
    let mut handle = match ready_rx.await {
        Ok(result) => result?,
        Err(_) => anyhow::bail!("node {id}: its thread ended before the member started"),
    };
    handle.thread = Some((thread, done_tx));
    Ok(handle)
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
    fn timing_keeps_the_ratios_and_refuses_what_would_let_leases_lapse() {
        let config = || NodeConfig::new(1, ClusterConfig::majority([(1, "h:1".to_string())]).unwrap(), "d".into());
        let defaults = config();
        let o = &defaults.options;
        assert_eq!(
            (o.lease_ns, o.heartbeat_ns, o.retransmit_ns, o.election_jitter_ns, o.leader_stale_ns),
            (1_000_000_000, 100_000_000, 300_000_000, 300_000_000, 2_000_000_000),
            "the defaults are what nodes always ran with"
        );
        let mut c = config();
        c.set_timing(Duration::from_millis(50), Duration::from_millis(250)).unwrap();
        assert_eq!((c.options.lease_ns, c.options.retransmit_ns), (250_000_000, 150_000_000));
        let ms = Duration::from_millis;
        assert!(matches!(c.set_timing(ms(100), ms(499)), Err(TimingError::TooFewHeartbeats { .. })));
        assert!(matches!(c.set_timing(ms(5), ms(1000)), Err(TimingError::HeartbeatTooShort(5))));
        assert!(matches!(c.set_timing(ms(100), ms(60_000)), Err(TimingError::ElectionTimeoutTooLong(60_000))));
        assert_eq!(c.options.lease_ns, 250_000_000, "a refused setting changes nothing");
    }

    #[test]
    fn a_directory_without_a_durable_write_starts_fresh() {
        assert_eq!(restored_state(0, DurableState::default()), None);
    }
}
