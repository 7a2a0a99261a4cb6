//! The gRPC face of a member: `TRaft` (reference-compatible) and `TRaftAdmin`.

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::driver::ClientOutcome;
use super::{EventKind, Input, MemberRole, Responder, StatusSnapshot};
use crate::errors::TraftError;
use crate::kv::ApplyResult;
use crate::pb;
use crate::pb::t_raft_admin_server::{TRaftAdmin, TRaftAdminServer};
use crate::pb::t_raft_replication_server::{TRaftReplication, TRaftReplicationServer};
use crate::pb::t_raft_server::{TRaft, TRaftServer};
use crate::pb::t_raft_snapshot_server::{TRaftSnapshot, TRaftSnapshotServer};
use crate::replica::{ClientReply, Message, NodeId, ReadConsistency};

#[derive(Clone)]
pub(super) struct Service {
    pub inputs: mpsc::Sender<Input>,
    pub events: broadcast::Sender<pb::Event>,
    pub rpc_timeout: Duration,
    /// Ends the event streams, which would otherwise hold a graceful
    /// shutdown open forever.
    pub shutdown: watch::Receiver<bool>,
    pub cluster_id: u64,
    pub started: std::time::Instant,
    pub data_dir: std::path::PathBuf,
    pub local: Option<super::local::LocalControlHandle>,
    /// `--advertise-client`, for `status`.
    pub advertise_client: String,
}

/// The largest command a client may propose, encoded. A forward batch
/// carries up to `max_batch_records` of them, so the peer limit follows.
pub const MAX_CMD_BYTES: usize = 1 << 20;

/// Room for a message's other fields around its commands or chunk.
const ENVELOPE_BYTES: usize = 1 << 20;

/// What one listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Serves {
    /// `--listen`: one port for everything.
    Everything,
    /// `--listen-client`: `TRaftAdmin`, and `TRaft` for the reference
    /// clients' `Propose`.
    Clients,
    /// `--listen-peer`: `TRaft` (Vote, LogForward) and `TRaftSnapshot`.
    Peers,
}

/// Bounds on what the network can make a member hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// The largest peer message: a full forward batch of the largest
    /// commands, or a snapshot chunk.
    pub peer_message_bytes: usize,
}

impl Limits {
    pub fn new(options: &crate::replica::Options) -> Self {
        let batch = options.max_batch_records.saturating_mul(MAX_CMD_BYTES);
        Limits { peer_message_bytes: batch.max(options.snapshot_chunk_bytes).saturating_add(ENVELOPE_BYTES) }
    }
}

/// The largest client request (a command, a key, a configuration).
const CLIENT_MESSAGE_BYTES: usize = MAX_CMD_BYTES + ENVELOPE_BYTES;

/// Requests in progress on one connection; more wait. Above a peer's own
/// limit of calls in flight (`peers::MAX_CALLS_PER_PEER`), so a healthy
/// peer never waits.
const CONCURRENCY_PER_CONNECTION: usize = 256;

/// Builds one listener's server. Fails on a certificate or key that rustls
/// refuses (e.g. a key that is not the certificate's), before anything
/// listens.
pub(super) fn router(
    svc: &Service,
    serves: Serves,
    tls: Option<&crate::tls::ServerTls>,
    limits: Limits,
    health: &tonic_health::server::HealthReporter,
) -> Result<tonic::transport::server::Router, String> {
    let mut builder = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        .max_concurrent_streams(CONCURRENCY_PER_CONNECTION as u32);
    if let Some(tls) = tls {
        builder = builder.tls_config(tls.config()).map_err(|e| crate::tls::cause(&e))?;
    }
    let raft_limit = match serves {
        Serves::Clients => CLIENT_MESSAGE_BYTES,
        Serves::Everything | Serves::Peers => limits.peer_message_bytes,
    };
    let router = builder.add_service(TRaftServer::new(svc.clone()).max_decoding_message_size(raft_limit));
    let snapshots = TRaftSnapshotServer::new(svc.clone()).max_decoding_message_size(CLIENT_MESSAGE_BYTES);
    let replication = TRaftReplicationServer::new(svc.clone()).max_decoding_message_size(limits.peer_message_bytes);
    let admin = TRaftAdminServer::new(svc.clone()).max_decoding_message_size(CLIENT_MESSAGE_BYTES);
    let health = tonic_health::pb::health_server::HealthServer::new(
        tonic_health::server::HealthService::from_health_reporter(health.clone()),
    );
    Ok(match serves {
        Serves::Everything => {
            router.add_service(snapshots).add_service(replication).add_service(admin).add_service(health)
        }
        Serves::Clients => router.add_service(admin).add_service(health),
        Serves::Peers => router.add_service(snapshots).add_service(replication),
    })
}

/// Keeps `grpc.health.v1` in step with [`readiness`](super::readiness): the
/// whole server ("") and `TRaftAdmin` are SERVING exactly while `/readyz`
/// would answer 200.
pub(super) async fn report_health(
    health: tonic_health::server::HealthReporter,
    inputs: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) {
    use tonic::server::NamedService;
    use tonic_health::ServingStatus;
    let admin = <TRaftAdminServer<Service> as NamedService>::NAME;
    loop {
        let ready = super::ask_status(&inputs).await.is_some_and(|s| super::readiness(&s).is_ok());
        let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
        health.set_service_status("", status).await;
        health.set_service_status(admin, status).await;
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tokio::time::sleep(HEALTH_EVERY) => {}
        }
    }
}

/// How often the health status is brought up to date.
const HEALTH_EVERY: Duration = Duration::from_millis(250);

pub(super) async fn serve(
    router: tonic::transport::server::Router,
    listener: tokio::net::TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let result = router
        .serve_with_incoming_shutdown(accept_nodelay(listener), async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!("gRPC server stopped: {e}");
    }
}

/// Accepted connections with Nagle's algorithm off. `Server::tcp_nodelay`
/// only reaches sockets tonic accepts itself, not an incoming stream given
/// to it, and with Nagle on a small response written while the client's
/// delayed ACK is pending waits up to 40 ms.
fn accept_nodelay(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        // Only fails on a connection already gone, which the server then
        // finds out about by itself.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    })
}

/// Refuses a peer request that no correct member could send, before it is
/// queued for the replica (which would refuse it too): the sender learns
/// which field was wrong, and the log says who sent it.
fn well_formed<T>(
    request: &Request<T>,
    check: impl FnOnce(&T) -> Result<(), crate::replica::Malformed>,
) -> Result<(), Status> {
    check(request.get_ref()).map_err(|why| {
        let who = request.remote_addr().map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
        tracing::warn!("refused a malformed request from {who}: {why}");
        Status::invalid_argument(format!("malformed request: {why}"))
    })
}

fn unavailable(what: &str) -> Status {
    Status::unavailable(format!("{what}: the node is stopping or its storage failed"))
}

impl Service {
    /// Refuses a peer RPC from another cluster, naming both ids. A request
    /// without the id (a reference-protocol member) is let through.
    fn same_cluster<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(theirs) = request.metadata().get(super::CLUSTER_ID_HEADER) else { return Ok(()) };
        let theirs = theirs.to_str().ok().and_then(super::parse_cluster_id);
        if theirs == Some(self.cluster_id) {
            return Ok(());
        }
        let theirs = theirs
            .map_or_else(|| "an unreadable id".to_string(), |id| format!("cluster {}", super::format_cluster_id(id)));
        Err(Status::failed_precondition(format!(
            "{}: this member is in cluster {}, the request comes from {theirs}",
            super::CLUSTER_MISMATCH,
            super::format_cluster_id(self.cluster_id)
        )))
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Input, what: &str) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        self.inputs.send(make(tx)).await.map_err(|_| unavailable(what))?;
        // The replica may legitimately never answer (e.g. a forward from a
        // ballot it ignores); the caller retries on its own timer.
        match tokio::time::timeout(self.rpc_timeout, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(unavailable(what)),
            Err(_) => Err(Status::deadline_exceeded(format!("{what}: no answer within {:?}", self.rpc_timeout))),
        }
    }

    async fn client_request(
        &self,
        make: impl FnOnce(oneshot::Sender<ClientOutcome>) -> Input,
    ) -> Result<ClientReply, Status> {
        match self.ask(make, "client request").await? {
            ClientOutcome::Reply(r) => Ok(r),
            ClientOutcome::Unavailable(why) => Err(Status::unavailable(why)),
        }
    }

    /// One chunk of the replica's snapshot, asked for as member `from`.
    async fn snapshot_chunk(&self, from: NodeId, req: pb::SnapshotReq) -> Result<Response<pb::SnapshotChunk>, Status> {
        let reply = self
            .ask(
                |tx| Input::Peer { from, msg: Message::SnapshotReq(req), respond: Some(Responder::Once(tx)) },
                "snapshot",
            )
            .await?;
        match reply {
            Message::SnapshotChunk(c) => Ok(Response::new(c)),
            _ => Err(Status::internal("the replica answered a snapshot request with something else")),
        }
    }

    async fn snapshot(&self) -> Result<StatusSnapshot, Status> {
        self.ask(|respond| Input::Status { respond }, "status").await
    }
}

/// Fills the redirect fields from a `NotLeader` error.
fn redirect(err: &TraftError) -> (Option<pb::LeaderId>, String) {
    match err {
        TraftError::NotLeader { leader, addr } => (*leader, addr.clone().unwrap_or_default()),
        _ => (None, String::new()),
    }
}

/// Forward replies a replication stream may have waiting to be sent: above
/// any leader's forwards in flight, so a live leader never finds it full.
const REPLICATION_QUEUE: usize = 1024;

#[tonic::async_trait]
impl TRaftReplication for Service {
    type ReplicateStream = tokio_stream::wrappers::ReceiverStream<Result<pb::LogForwardReply, Status>>;

    /// Feeds each forward to the driver as it arrives; the driver puts the
    /// reply on the return stream once what it acknowledges is durable.
    async fn replicate(
        &self,
        request: Request<tonic::Streaming<pb::LogForwardReq>>,
    ) -> Result<Response<Self::ReplicateStream>, Status> {
        self.same_cluster(&request)?;
        let sender = request.remote_addr();
        let mut forwards = request.into_inner();
        let (replies, out) = mpsc::channel(REPLICATION_QUEUE);
        let inputs = self.inputs.clone();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    next = forwards.message() => next,
                    _ = shutdown.wait_for(|stop| *stop) => return,
                };
                let req = match next {
                    Ok(Some(req)) => req,
                    // The leader hung up, or the connection broke: it opens
                    // another stream and resends what went unanswered.
                    Ok(None) | Err(_) => return,
                };
                if let Err(why) = crate::replica::check_forward(&req) {
                    let who = sender.map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
                    tracing::warn!("refused a malformed forward stream from {who}: {why}");
                    let _ = replies.send(Err(Status::invalid_argument(format!("malformed request: {why}")))).await;
                    return;
                }
                let Some(from) = req.committer.map(|c| c.id) else {
                    let _ = replies.send(Err(Status::invalid_argument("LogForwardReq without a Committer"))).await;
                    return;
                };
                let respond = Some(Responder::Stream(replies.clone()));
                if inputs.send(Input::Peer { from, msg: Message::Forward(req), respond }).await.is_err() {
                    let _ = replies.send(Err(unavailable("forward"))).await;
                    return;
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(out)))
    }
}

#[tonic::async_trait]
impl TRaftSnapshot for Service {
    async fn fetch(&self, request: Request<pb::SnapshotReq>) -> Result<Response<pb::SnapshotChunk>, Status> {
        self.same_cluster(&request)?;
        well_formed(&request, crate::replica::check_snapshot_req)?;
        let req = request.into_inner();
        self.snapshot_chunk(req.id, req).await
    }
}

#[tonic::async_trait]
impl TRaft for Service {
    async fn vote(&self, request: Request<pb::VoteReq>) -> Result<Response<pb::VoteReply>, Status> {
        self.same_cluster(&request)?;
        well_formed(&request, crate::replica::check_vote_req)?;
        let req = request.into_inner();
        let from = req.candidate.ok_or_else(|| Status::invalid_argument("VoteReq without a Candidate"))?.id;
        let reply = self
            .ask(|tx| Input::Peer { from, msg: Message::Vote(req), respond: Some(Responder::Once(tx)) }, "vote")
            .await?;
        match reply {
            Message::VoteReply(r) => Ok(Response::new(r)),
            _ => Err(Status::internal("the replica answered a vote with something else")),
        }
    }

    async fn log_forward(&self, request: Request<pb::LogForwardReq>) -> Result<Response<pb::LogForwardReply>, Status> {
        self.same_cluster(&request)?;
        well_formed(&request, crate::replica::check_forward)?;
        let req = request.into_inner();
        let from = req.committer.ok_or_else(|| Status::invalid_argument("LogForwardReq without a Committer"))?.id;
        let reply = self
            .ask(|tx| Input::Peer { from, msg: Message::Forward(req), respond: Some(Responder::Once(tx)) }, "forward")
            .await?;
        match reply {
            Message::ForwardReply(r) => Ok(Response::new(r)),
            _ => Err(Status::internal("the replica answered a forward with something else")),
        }
    }

    async fn propose(&self, request: Request<pb::Cmd>) -> Result<Response<pb::ProposeReply>, Status> {
        let cmd = request.into_inner();
        // The decoding limit on the peer port must admit a full forward
        // batch, so one command's own bound is checked here.
        let len = prost::Message::encoded_len(&cmd);
        if len > MAX_CMD_BYTES {
            return Err(Status::invalid_argument(format!(
                "the command is {len} bytes encoded; a command may have at most {MAX_CMD_BYTES}"
            )));
        }
        let reply = self.client_request(|respond| Input::Propose { cmd, respond }).await?;
        let mut out = pb::ProposeReply::default();
        match reply {
            ClientReply::Proposed { seq, leader, result } => {
                out.ok = true;
                out.seq = seq;
                out.leader = Some(leader);
                match result {
                    ApplyResult::Incremented(v) => {
                        out.has_value = true;
                        out.value = v;
                    }
                    ApplyResult::NotAnInteger => {
                        out.ok = false;
                        out.kind = pb::ErrorKind::NotAnInteger as i32;
                        out.err = "incr: the key holds a value that is not an integer; nothing changed".into();
                    }
                    ApplyResult::Done | ApplyResult::Overridden => {}
                }
            }
            ClientReply::Failed(err) => {
                out.kind = err.kind() as i32;
                out.err = err.to_string();
                (out.other_leader, out.other_leader_addr) = redirect(&err);
                out.outcome_unknown = err.kind() == pb::ErrorKind::OutcomeUnknown;
            }
            ClientReply::Read { .. } | ClientReply::Transferred { .. } => {
                return Err(Status::internal("a proposal answered with something else"));
            }
        }
        Ok(Response::new(out))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl TRaftAdmin for Service {
    async fn status(&self, _request: Request<pb::StatusReq>) -> Result<Response<pb::StatusReply>, Status> {
        let s = self.snapshot().await?;
        let leader_addr =
            s.leader.and_then(|l| s.config.members.get(&l.id)).map(|m| m.addr.clone()).unwrap_or_default();
        let mut members = s
            .peers
            .iter()
            .map(|p| pb::MemberStatus {
                info: s.config.members.get(&p.id).or_else(|| s.config.learners.get(&p.id)).cloned(),
                status: Some(pb::ReplicaStatus {
                    committer: p.committer,
                    accepted: Some(p.accepted.clone()),
                    ..Default::default()
                }),
                role: if p.id == s.id {
                    MemberRole::from(s.role)
                } else if s.config.learners.contains_key(&p.id) {
                    MemberRole::Learner
                } else {
                    MemberRole::Follower
                }
                .to_string(),
                lag: p.lag,
                reachable: p.reachable,
                error: s.peer_errors.get(&p.id).cloned().unwrap_or_default(),
            })
            .collect::<Vec<_>>();
        // Only a leader tracks its peers, but any member can say which it
        // cannot talk to (a certificate from the wrong CA keeps a member out
        // of every quorum, and it never becomes leader to report it).
        for (id, error) in &s.peer_errors {
            if !s.peers.iter().any(|p| p.id == *id) {
                let info = s.config.members.get(id).or_else(|| s.config.learners.get(id)).cloned();
                let role = if s.config.learners.contains_key(id) { "learner" } else { "follower" };
                members.push(pb::MemberStatus {
                    info,
                    role: role.into(),
                    reachable: false,
                    error: error.clone(),
                    ..Default::default()
                });
            }
        }
        Ok(Response::new(pb::StatusReply {
            id: s.id,
            status: Some(s.status),
            config: Some(s.config),
            leader: s.leader,
            leader_addr,
            role: MemberRole::from(s.role).to_string(),
            members,
            lease_remaining_ms: s.lease_remaining.map_or(0, |d| d.as_millis() as i64),
            committed_out_of_order: s.committed_out_of_order as i64,
            applied_out_of_order: s.applied_out_of_order as i64,
            snapshot_prefix: s.snapshot_prefix,
            compacted_below: s.compacted_below,
            snapshots_installed: s.snapshots_installed as i64,
            log_records: s.log_records as i64,
            cluster_id: super::format_cluster_id(self.cluster_id),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_ms: self.started.elapsed().as_millis() as i64,
            data_dir_bytes: super::metrics::dir_bytes(&self.data_dir) as i64,
            client_addr: self.advertise_client.clone(),
        }))
    }

    async fn get(&self, request: Request<pb::GetReq>) -> Result<Response<pb::GetReply>, Status> {
        let req = request.into_inner();
        let consistency = match pb::ReadConsistency::try_from(req.consistency) {
            Ok(pb::ReadConsistency::Serializable) => ReadConsistency::Serializable,
            Ok(pb::ReadConsistency::Linearizable) => ReadConsistency::Linearizable,
            Err(_) => return Err(Status::invalid_argument(format!("unknown read consistency {}", req.consistency))),
        };
        let key = req.key;
        let reply = self.client_request(|respond| Input::Read { key: key.clone(), consistency, respond }).await?;
        let mut out = pb::GetReply::default();
        match reply {
            ClientReply::Read { value } => {
                out.ok = true;
                out.found = value.is_some();
                out.value = value.map(|v| pb::Cmd { op: "value".into(), key, value: Some(v) });
            }
            ClientReply::Failed(err) => {
                out.kind = err.kind() as i32;
                out.err = err.to_string();
                (out.other_leader, out.other_leader_addr) = redirect(&err);
            }
            ClientReply::Proposed { .. } | ClientReply::Transferred { .. } => {
                return Err(Status::internal("a read answered with something else"));
            }
        }
        Ok(Response::new(out))
    }

    async fn change_config(
        &self,
        request: Request<pb::ConfigChangeReq>,
    ) -> Result<Response<pb::ConfigChangeReply>, Status> {
        let req = request.into_inner();
        let target = req.target.ok_or_else(|| Status::invalid_argument("ConfigChangeReq without a Target"))?;
        let current = self.snapshot().await?.config;
        let mut out = pb::ConfigChangeReply::default();
        match crate::replica::plan_change(&current, &target) {
            Ok((joint, final_config)) => {
                out.joint = Some(joint);
                out.r#final = Some(final_config);
            }
            Err(err) => {
                out.kind = err.kind() as i32;
                out.err = err.to_string();
                return Ok(Response::new(out));
            }
        }
        if req.dry_run {
            out.ok = true;
            return Ok(Response::new(out));
        }
        let force = req.force;
        // A change waits for learners to catch up, so it may take far longer
        // than one RPC deadline; the client sets its own.
        let (tx, rx) = oneshot::channel();
        self.inputs
            .send(Input::ChangeConfig { target, force, respond: tx })
            .await
            .map_err(|_| unavailable("config change"))?;
        let outcome = rx.await.map_err(|_| unavailable("config change"))?;
        match outcome {
            ClientOutcome::Reply(ClientReply::Proposed { .. }) => out.ok = true,
            ClientOutcome::Reply(ClientReply::Failed(err)) => {
                out.kind = err.kind() as i32;
                out.r#unsafe = err.kind() == pb::ErrorKind::Unsafe;
                out.err = err.to_string();
                (out.other_leader, out.other_leader_addr) = redirect(&err);
            }
            ClientOutcome::Reply(ClientReply::Read { .. } | ClientReply::Transferred { .. }) => {
                return Err(Status::internal("a config change answered with something else"));
            }
            ClientOutcome::Unavailable(why) => return Err(Status::unavailable(why)),
        }
        Ok(Response::new(out))
    }

    async fn abort_config_change(
        &self,
        _request: Request<pb::AbortConfigChangeReq>,
    ) -> Result<Response<pb::ConfigChangeReply>, Status> {
        // Waits, like a change, for its record to commit: the client sets
        // the deadline.
        let (tx, rx) = oneshot::channel();
        self.inputs.send(Input::AbortChange { respond: tx }).await.map_err(|_| unavailable("config abort"))?;
        let outcome = rx.await.map_err(|_| unavailable("config abort"))?;
        let mut out = pb::ConfigChangeReply::default();
        match outcome {
            ClientOutcome::Reply(ClientReply::Proposed { .. }) => {
                out.ok = true;
                out.r#final = Some(self.snapshot().await?.config);
            }
            ClientOutcome::Reply(ClientReply::Failed(err)) => {
                out.kind = err.kind() as i32;
                out.r#unsafe = err.kind() == pb::ErrorKind::Unsafe;
                out.err = err.to_string();
                (out.other_leader, out.other_leader_addr) = redirect(&err);
            }
            ClientOutcome::Reply(ClientReply::Read { .. } | ClientReply::Transferred { .. }) => {
                return Err(Status::internal("a config abort answered with something else"));
            }
            ClientOutcome::Unavailable(why) => return Err(Status::unavailable(why)),
        }
        Ok(Response::new(out))
    }

    async fn transfer_leadership(
        &self,
        request: Request<pb::TransferLeadershipReq>,
    ) -> Result<Response<pb::TransferLeadershipReply>, Status> {
        let to = match request.into_inner().to {
            0 => None,
            id if id > 0 => Some(id),
            id => return Err(Status::invalid_argument(format!("member ids are positive, not {id}"))),
        };
        let reply = self.client_request(|respond| Input::TransferLeadership { to, respond }).await?;
        let mut out = pb::TransferLeadershipReply::default();
        match reply {
            ClientReply::Transferred { to, from } => {
                out.ok = true;
                out.to = to;
                out.from = Some(from);
            }
            ClientReply::Failed(err) => {
                out.kind = err.kind() as i32;
                out.err = err.to_string();
                (out.other_leader, out.other_leader_addr) = redirect(&err);
            }
            ClientReply::Proposed { .. } | ClientReply::Read { .. } => {
                return Err(Status::internal("a leadership transfer answered with something else"));
            }
        }
        Ok(Response::new(out))
    }

    async fn snapshot_save(&self, request: Request<pb::SnapshotReq>) -> Result<Response<pb::SnapshotChunk>, Status> {
        // Served as to a peer, under id 0, which no member has: the same
        // blob and chunking, so a backup is what a member would install.
        let req = pb::SnapshotReq { id: 0, ..request.into_inner() };
        crate::replica::check_snapshot_req(&req)
            .map_err(|why| Status::invalid_argument(format!("malformed request: {why}")))?;
        self.snapshot_chunk(0, req).await
    }

    async fn hash_kv(&self, _request: Request<pb::HashKvReq>) -> Result<Response<pb::HashKvReply>, Status> {
        Ok(Response::new(self.ask(|respond| Input::HashKv { respond }, "hash").await?))
    }

    async fn log(&self, request: Request<pb::LogReq>) -> Result<Response<pb::LogReply>, Status> {
        let req = request.into_inner();
        let limit = if req.limit <= 0 { 100 } else { req.limit.min(10_000) as usize };
        let from = req.from.max(0);
        let reply = self.ask(|respond| Input::Log { from, limit, respond }, "log").await?;
        Ok(Response::new(reply))
    }

    type WatchStream = EventStream;

    async fn watch(&self, _request: Request<pb::WatchReq>) -> Result<Response<Self::WatchStream>, Status> {
        let mut rx = self.events.subscribe();
        let mut shutdown = self.shutdown.clone();
        let (tx, out) = mpsc::channel(256);
        // A forwarding task rather than the broadcast stream itself, so the
        // stream ends when the node shuts down instead of holding the
        // server's graceful shutdown open.
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    e = rx.recv() => e,
                };
                let event = match event {
                    Ok(e) => e,
                    // A slow watcher misses events rather than slowing the
                    // node, and is told how many it missed.
                    Err(broadcast::error::RecvError::Lagged(n)) => pb::Event {
                        kind: EventKind::Lagged.to_string(),
                        detail: format!("{n} events dropped because this watcher fell behind"),
                        ..Default::default()
                    },
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(out);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn chaos(&self, request: Request<pb::ChaosReq>) -> Result<Response<pb::ChaosReply>, Status> {
        let local = self.local.as_ref().ok_or_else(|| Status::unimplemented(super::local::NOT_CHAOS))?;
        local.0.chaos(request.into_inner()).await.map(Response::new)
    }

    async fn local_member(
        &self,
        request: Request<pb::LocalMemberReq>,
    ) -> Result<Response<pb::LocalMemberReply>, Status> {
        let local = self.local.as_ref().ok_or_else(|| Status::unimplemented(super::local::NOT_LOCAL))?;
        local.0.member(request.into_inner()).await.map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        use tokio_stream::StreamExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = Box::pin(accept_nodelay(listener));
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap(), "an accepted connection still delays small writes (Nagle)");
    }
}
