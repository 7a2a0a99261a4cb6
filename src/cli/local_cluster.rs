//! `traftctl local-cluster N`: the front door. N embedded members on
//! 127.0.0.1, each with its own data directory, until Ctrl-C. With
//! `--chaos`, every member-to-member connection goes through the fault proxy
//! (`traftctl::chaos`); `traftctl chaos` and `traftctl local` change the
//! faults and the members' lives while it runs, through any member's admin
//! service.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::cli::{CliError, CliResult, exit, interrupted};
use traftctl::chaos::{Chaos, FaultSpec};
use traftctl::node::local::{LocalControl, LocalControlHandle, NOT_CHAOS};
use traftctl::node::{self, Listeners, MemberRole, NodeConfig, NodeHandle, NodeTls};
use traftctl::pb::{self, ClusterConfig, LocalAction};
use traftctl::storage::Storage;
use traftctl::tls::{CLIENT_FLAGS, ClientTls, PEER_DIAL_FLAGS, ServerFiles, ServerTls, ThrowawayCa};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Faults (--chaos SPEC, repeatable; see `traftctl chaos --help` for SPEC):
  traftctl local-cluster 3 --chaos delay=5ms --chaos link=1-2,reset-every=200ms
  traftctl local-cluster 3 --chaos none          # the proxy in place, no faults yet
Every member-to-member connection then goes through an in-process proxy, one listener per
direction of each pair; clients still connect to the members directly. While it runs:
  traftctl chaos set partition=1|2,3 | clear | show
  traftctl local kill|pause|resume|restart ID, traftctl local list
(`local` works with or without --chaos.)")]
pub struct Args {
    /// How many members to start.
    #[arg(default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub members: u16,
    /// Member i listens on 127.0.0.1:(base-port + i - 1).
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
    /// Parent of the members' data directories; running again on the same
    /// directory recovers the cluster with its data.
    #[arg(long, default_value = "traft-local", conflicts_with = "ephemeral")]
    pub data_dir: PathBuf,
    /// Keep the data in a temporary directory that is removed on exit.
    #[arg(long)]
    pub ephemeral: bool,
    /// Mutual TLS on every listener, with a throwaway CA and certificates made
    /// in DATA_DIR/tls (and reused from there on the next run).
    #[arg(long)]
    pub tls: bool,
    /// Member i serves /metrics, /livez and /readyz on 127.0.0.1:(metrics-base-port + i - 1).
    #[arg(long, value_name = "PORT")]
    pub metrics_base_port: Option<u16>,
    /// Give up if no leader is elected within this many seconds.
    #[arg(long, default_value_t = 15)]
    pub election_timeout_secs: u64,
    /// Put every member-to-member connection through a fault proxy with
    /// these faults (repeatable, one rule each; `none`: the proxy without
    /// faults, to add some later with `traftctl chaos set`).
    #[arg(long, value_name = "SPEC", value_parser = parse_spec)]
    pub chaos: Vec<FaultSpec>,
    /// Seed of the proxy's random draws (jitter, drop), to repeat a run
    /// (default: from the clock; the banner shows it).
    #[arg(long, value_name = "SEED", requires = "chaos")]
    pub chaos_seed: Option<u64>,
    #[command(flatten)]
    pub snapshots: super::node::SnapshotArgs,
    #[command(flatten)]
    pub order: super::node::ReplicationArgs,
}

fn parse_spec(s: &str) -> Result<FaultSpec, String> {
    FaultSpec::parse(s).map_err(|e| e.to_string())
}

/// One member of the local cluster and what the process knows of it.
struct Member {
    id: i64,
    addr: SocketAddr,
    config: NodeConfig,
    /// `None` once killed.
    handle: Option<NodeHandle>,
    paused: bool,
    /// A kill that is still releasing the data directory.
    stopping: Option<tokio::task::JoinHandle<()>>,
}

impl Member {
    fn state(&self) -> &'static str {
        match (&self.handle, self.paused) {
            (None, _) => "killed",
            (Some(_), true) => "paused",
            (Some(_), false) => "running",
        }
    }
}

/// A `LocalMember` request, carried out by the loop that owns the members.
struct MemberRequest {
    req: pb::LocalMemberReq,
    respond: oneshot::Sender<Result<pb::LocalMemberReply, Status>>,
}

/// What the members' admin services call for `traftctl chaos` and
/// `traftctl local`.
struct Control {
    chaos: Option<Chaos>,
    requests: mpsc::Sender<MemberRequest>,
}

#[tonic::async_trait]
impl LocalControl for Control {
    async fn chaos(&self, req: pb::ChaosReq) -> Result<pb::ChaosReply, Status> {
        let chaos = self.chaos.as_ref().ok_or_else(|| {
            Status::unimplemented(format!(
                "{NOT_CHAOS}: restart it with --chaos SPEC (--chaos none puts the proxy in place without faults)"
            ))
        })?;
        match pb::ChaosOp::try_from(req.op) {
            Ok(pb::ChaosOp::Show) => {}
            Ok(pb::ChaosOp::Clear) => {
                chaos.clear();
                eprintln!("local-cluster: faults cleared");
            }
            Ok(pb::ChaosOp::Set) => {
                let rules =
                    traftctl::chaos::parse_all(&req.specs).map_err(|e| Status::invalid_argument(e.to_string()))?;
                chaos.set(rules).map_err(|e| Status::invalid_argument(e.to_string()))?;
                eprintln!("local-cluster: faults now {}", describe_rules(&chaos.rules()));
            }
            Err(_) => return Err(Status::invalid_argument(format!("unknown chaos operation {}", req.op))),
        }
        Ok(chaos_reply(chaos))
    }

    async fn member(&self, req: pb::LocalMemberReq) -> Result<pb::LocalMemberReply, Status> {
        let (respond, reply) = oneshot::channel();
        self.requests
            .send(MemberRequest { req, respond })
            .await
            .map_err(|_| Status::unavailable("the local cluster is shutting down"))?;
        reply.await.map_err(|_| Status::unavailable("the local cluster is shutting down"))?
    }
}

fn chaos_reply(chaos: &Chaos) -> pb::ChaosReply {
    let status = chaos.status();
    let links = status
        .links
        .iter()
        .map(|l| {
            let (from, to) = l.ends.unwrap_or_default();
            pb::ChaosLink {
                from,
                to,
                listen: l.listen.to_string(),
                target: l.target.clone(),
                faults: l.faults.to_string(),
                accepted: l.accepted,
                cut: l.cut,
            }
        })
        .collect();
    pb::ChaosReply { rules: status.rules, seed: status.seed, links }
}

fn describe_rules(rules: &[String]) -> String {
    if rules.is_empty() { "none".to_string() } else { rules.join("; ") }
}

pub async fn run(args: Args) -> CliResult<u8> {
    let n = i64::from(args.members);
    let mut addrs = Vec::new();
    for i in 0..n {
        let port = u16::try_from(i64::from(args.base_port) + i)
            .ok()
            .filter(|p| *p > 0)
            .with_context(|| format!("--base-port {} leaves no room for {n} ports", args.base_port))?;
        addrs.push(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let metrics_addrs = match args.metrics_base_port {
        Some(base) => {
            let ports = (0..n).map(|i| {
                u16::try_from(i64::from(base) + i)
                    .ok()
                    .filter(|p| *p > 0)
                    .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
                    .with_context(|| format!("--metrics-base-port {base} leaves no room for {n} ports"))
            });
            Some(ports.collect::<anyhow::Result<Vec<_>>>()?)
        }
        None => None,
    };
    // Bind every port before touching any data (or making a temporary
    // directory), so a busy port fails fast and leaves nothing behind.
    let mut listeners = Vec::new();
    for addr in &addrs {
        listeners.push(node::bind(*addr).await?);
    }
    // Removed however this function returns.
    let temp = if args.ephemeral { Some(TempDir::new()?) } else { None };
    let root = temp.as_ref().map_or_else(|| args.data_dir.clone(), |t| t.0.clone());
    let tls = if args.tls { Some(LocalTls::ensure(&root.join("tls"))?) } else { None };
    let node_tls = tls.as_ref().map(LocalTls::load).transpose()?.unwrap_or_default();
    let scheme = if tls.is_some() { "https://" } else { "" };
    let config = ClusterConfig::majority((1..=n).map(|id| (id, format!("{scheme}{}", addrs[(id - 1) as usize]))))
        .map_err(anyhow::Error::from)?;
    // A recovered cluster keeps the id its directories recorded, and is
    // given it here: each member would keep it anyway, but warn that the
    // flags gave another, and running the same command again is how the
    // banner says to recover. A fresh cluster gets an id of its own. A
    // CLUSTER_ID that cannot be read is left for that member's open to
    // report, naming the file.
    let recorded = (1..=n).find_map(|id| Storage::recorded_cluster_id(&root.join(format!("node-{id}"))).ok().flatten());
    let cluster_id = recorded.unwrap_or_else(|| {
        let token = format!("local-cluster {} {:?}", std::process::id(), std::time::SystemTime::now());
        node::cluster_id_from(&token, &config)
    });

    // The proxy first: every member dials its peers through it from the start.
    let chaos = if args.chaos.is_empty() {
        None
    } else {
        let seed = args.chaos_seed.unwrap_or_else(clock_seed);
        Some(start_chaos(seed, &addrs, args.chaos.clone()).await?)
    };
    let (requests_tx, mut requests) = mpsc::channel(16);
    let control = LocalControlHandle(Arc::new(Control { chaos: chaos.clone(), requests: requests_tx }));

    let mut members: Vec<Member> = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = i as i64 + 1;
        let dir = root.join(format!("node-{id}"));
        let mut node_config = NodeConfig::new(id, config.clone(), dir);
        node_config.tls = node_tls.clone();
        node_config.metrics = metrics_addrs.as_ref().map(|m| m[i]);
        node_config.cluster_id = cluster_id;
        node_config.local_control = Some(control.clone());
        if let Some(chaos) = &chaos {
            node_config.dial_overrides = chaos
                .status()
                .links
                .iter()
                .filter_map(|l| l.ends.filter(|(from, _)| *from == id).map(|(_, to)| (to, l.listen.to_string())))
                .collect();
        }
        args.snapshots.apply(&mut node_config);
        args.order.apply(&mut node_config);
        match node::start_on_thread(node_config.clone(), Listeners { client: listener, peer: None }).await {
            Ok(h) => members.push(Member {
                id,
                addr: addrs[i],
                config: node_config,
                handle: Some(h),
                paused: false,
                stopping: None,
            }),
            Err(e) => {
                for m in members {
                    if let Some(h) = m.handle {
                        h.shutdown().await;
                    }
                }
                return Err(e.into());
            }
        }
    }

    let handles: Vec<&NodeHandle> = members.iter().filter_map(|m| m.handle.as_ref()).collect();
    let result = wait_for_leader(&handles, Duration::from_secs(args.election_timeout_secs)).await;
    match result {
        Ok(leader) => {
            let banner = Banner { root: &root, ephemeral: args.ephemeral, tls: tls.as_ref(), chaos: chaos.as_ref() };
            print_banner(&handles, leader, &banner, metrics_addrs.as_deref()).await;
            loop {
                tokio::select! {
                    _ = interrupted() => {
                        eprintln!("\nshutting down...");
                        break;
                    }
                    _ = any_fatal(&members) => break,
                    Some(request) = requests.recv() => {
                        let reply = act(&mut members, request.req).await;
                        let _ = request.respond.send(reply);
                    }
                }
            }
        }
        Err(e) => eprintln!("error: {e:#}"),
    }
    let fatal: Vec<String> = members
        .iter()
        .filter_map(|m| m.handle.as_ref().and_then(|h| h.fatal_error()).map(|e| format!("node {}: {e}", m.id)))
        .collect();
    for h in members.iter().filter_map(|m| m.handle.as_ref()) {
        h.begin_shutdown();
    }
    for m in members {
        if let Some(h) = m.handle {
            h.shutdown().await;
        }
        if let Some(stopping) = m.stopping {
            let _ = stopping.await;
        }
    }
    drop(chaos);
    drop(temp);
    if !fatal.is_empty() {
        return Err(anyhow::anyhow!("{}", fatal.join("; ")).into());
    }
    Ok(exit::OK)
}

/// A seed that differs from run to run.
fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (now.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(32)
}

/// One proxy listener per ordered pair of members, forwarding to the
/// target's real address, with `rules` in force. A rule that names a member
/// the cluster lacks is a usage error.
async fn start_chaos(seed: u64, addrs: &[SocketAddr], rules: Vec<FaultSpec>) -> CliResult<Chaos> {
    let chaos = Chaos::new(seed);
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    for (i, _) in addrs.iter().enumerate() {
        for (j, target) in addrs.iter().enumerate() {
            if i != j {
                let ends = (i as i64 + 1, j as i64 + 1);
                chaos
                    .add_link(Some(ends), any_port, target.to_string())
                    .await
                    .with_context(|| format!("cannot listen for the proxy of link {}>{}", ends.0, ends.1))?;
            }
        }
    }
    chaos.set(rules.into_iter().filter(|r| !r.is_empty()).collect()).map_err(CliError::usage)?;
    Ok(chaos)
}

/// Carries out one `traftctl local` request; answers with every member's
/// state.
async fn act(members: &mut [Member], req: pb::LocalMemberReq) -> Result<pb::LocalMemberReply, Status> {
    let action = LocalAction::try_from(req.action)
        .map_err(|_| Status::invalid_argument(format!("unknown local action {}", req.action)))?;
    if action != LocalAction::List {
        let ids: Vec<String> = members.iter().map(|m| m.id.to_string()).collect();
        let m = members.iter_mut().find(|m| m.id == req.id).ok_or_else(|| {
            Status::invalid_argument(format!(
                "no member {} in this local cluster (members: {})",
                req.id,
                ids.join(", ")
            ))
        })?;
        act_on(m, action).await?;
    }
    let members = members
        .iter()
        .map(|m| pb::LocalMember { id: m.id, address: m.addr.to_string(), state: m.state().to_string() })
        .collect();
    Ok(pb::LocalMemberReply { members })
}

async fn act_on(m: &mut Member, action: LocalAction) -> Result<(), Status> {
    let id = m.id;
    let state = m.state();
    let wrong_state = |what: &str| Status::failed_precondition(format!("node {id} is {state}: {what}"));
    match action {
        LocalAction::List => {}
        LocalAction::Kill => {
            let h = m.handle.take().ok_or_else(|| wrong_state("restart it with `traftctl local restart`"))?;
            // The replica is gone now; the rest runs while the reply leaves.
            m.stopping = Some(tokio::spawn(h.kill()));
            m.paused = false;
            eprintln!("local-cluster: killed node {id}");
        }
        LocalAction::Pause | LocalAction::Resume => {
            let pause = action == LocalAction::Pause;
            let h = m.handle.as_ref().ok_or_else(|| wrong_state("restart it with `traftctl local restart`"))?;
            if m.paused == pause {
                return Err(wrong_state(if pause { "resume it first" } else { "only a paused member resumes" }));
            }
            h.pause(pause);
            m.paused = pause;
            eprintln!("local-cluster: {} node {id}", if pause { "paused" } else { "resumed" });
        }
        LocalAction::Restart => {
            if let Some(h) = m.handle.take() {
                h.kill().await;
            }
            m.paused = false;
            if let Some(stopping) = m.stopping.take() {
                let _ = stopping.await;
            }
            let handle = restart(m).await.map_err(|e| Status::internal(format!("node {id} did not restart: {e:#}")))?;
            m.handle = Some(handle);
            eprintln!("local-cluster: restarted node {id} from {}", m.config.data_dir.display());
        }
    }
    Ok(())
}

/// Starts a stopped member again from its data directory, on its port. The
/// old instance's listener closes as it winds down, so the port may still
/// be held for a moment.
async fn restart(m: &Member) -> anyhow::Result<NodeHandle> {
    let start = Instant::now();
    let listener = loop {
        match node::bind(m.addr).await {
            Ok(l) => break l,
            Err(e) if start.elapsed() > RESTART_BIND_WAIT => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    node::start_on_thread(m.config.clone(), Listeners { client: listener, peer: None }).await
}

/// How long a restart waits for the old instance to free its port.
const RESTART_BIND_WAIT: Duration = Duration::from_secs(5);

/// `--ephemeral`'s data directory, removed when dropped: on exit, and on
/// every error after it was made.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("traft-local-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn wait_for_leader(handles: &[&NodeHandle], limit: Duration) -> anyhow::Result<i64> {
    let spinner = if std::io::stderr().is_terminal() {
        let s = indicatif::ProgressBar::new_spinner();
        s.set_message(format!("starting {} members, electing a leader...", handles.len()));
        s.enable_steady_tick(Duration::from_millis(80));
        Some(s)
    } else {
        None
    };
    let start = Instant::now();
    let outcome = loop {
        if let Some((id, e)) = handles.iter().find_map(|h| h.fatal_error().map(|e| (h.id, e))) {
            break Err(anyhow::anyhow!("node {id} stopped: {e}"));
        }
        let mut leader = None;
        for h in handles {
            if let Ok(s) = h.status().await
                && s.role == traftctl::replica::Role::Leader
            {
                leader = Some(h.id);
            }
        }
        if let Some(id) = leader {
            break Ok(id);
        }
        if start.elapsed() > limit {
            break Err(anyhow::anyhow!(
                "no leader elected within {}s; run with -v to see the elections",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    outcome
}

/// What the banner says about the cluster as a whole.
struct Banner<'a> {
    root: &'a std::path::Path,
    ephemeral: bool,
    tls: Option<&'a LocalTls>,
    chaos: Option<&'a Chaos>,
}

async fn print_banner(handles: &[&NodeHandle], leader: i64, banner: &Banner<'_>, metrics: Option<&[SocketAddr]>) {
    let Banner { root, ephemeral, tls, chaos } = *banner;
    let scheme = if tls.is_some() { "https://" } else { "" };
    let mut rows = Vec::new();
    for (i, h) in handles.iter().enumerate() {
        let role = match h.status().await {
            Ok(s) => MemberRole::from(s.role).as_str(),
            Err(_) => "stopped",
        };
        let dir = root.join(format!("node-{}", h.id));
        let mut row = vec![h.id.to_string(), h.addr.to_string(), dir.display().to_string(), role.to_string()];
        if let Some(m) = metrics {
            row.push(format!("http://{}/metrics", m[i]));
        }
        rows.push(row);
    }
    let mut headers = vec!["id", "address", "data directory", "role"];
    if metrics.is_some() {
        headers.push("metrics (also /livez, /readyz)");
    }
    let table = crate::cli::output::table(headers, rows);
    let endpoints: Vec<String> = handles.iter().map(|h| format!("{scheme}{}", h.addr)).collect();
    let endpoints = endpoints.join(",");
    println!("traft local cluster: {} members, leader is node {leader}", handles.len());
    println!("{table}");
    if let Some(chaos) = chaos {
        println!(
            "member-to-member links go through the fault proxy (seed {}); faults: {}",
            chaos.seed(),
            describe_rules(&chaos.rules())
        );
        println!("  change them with `traftctl chaos set SPEC`, `traftctl chaos clear`, `traftctl chaos show`");
    }
    println!("crash, freeze or restart members with `traftctl local kill|pause|resume|restart ID`");
    if ephemeral {
        println!("data is ephemeral and is removed on exit");
    } else {
        println!("data persists in {}; run the same command again to recover it", root.display());
    }
    println!();
    if let Some(tls) = tls {
        // The exact lines to paste: every listener requires a client
        // certificate from this cluster's CA.
        println!("Every listener requires mutual TLS; talk to it from another terminal after:");
        println!(
            "  export TRAFTCTL_CACERT={} TRAFTCTL_CERT={} TRAFTCTL_KEY={}",
            tls.ca.display(),
            tls.client_cert.display(),
            tls.client_key.display()
        );
        println!("  export TRAFTCTL_ENDPOINTS={endpoints}");
        println!("  traftctl propose set x 5");
        println!("  traftctl get x");
        println!();
        println!("Press Ctrl-C to stop the cluster.");
        return;
    }
    println!("Talk to it from another terminal:");
    println!("  traftctl propose set x 5 --endpoints {endpoints}");
    println!("  traftctl get x --endpoints {endpoints}");
    println!("  traftctl status --endpoints {endpoints}");
    if endpoints != crate::cli::client::DEFAULT_ENDPOINTS {
        println!("or set the endpoints once:");
        println!("  export TRAFTCTL_ENDPOINTS={endpoints}");
    }
    println!();
    println!("Press Ctrl-C to stop the cluster.");
}

async fn any_fatal(members: &[Member]) {
    loop {
        if members.iter().filter_map(|m| m.handle.as_ref()).any(|h| h.fatal_error().is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The throwaway certificates of a `--tls` local cluster: one CA, one
/// certificate all members share (for 127.0.0.1 and localhost), one client
/// certificate. Absolute paths, so the banner's lines work from anywhere.
struct LocalTls {
    ca: PathBuf,
    member_cert: PathBuf,
    member_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl LocalTls {
    /// Reuses the files in `dir` when all are there; otherwise makes a new
    /// set (a half-written set is replaced whole, since certificates from
    /// two CAs would not work together).
    fn ensure(dir: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let dir = dir.canonicalize().with_context(|| format!("cannot resolve {}", dir.display()))?;
        let tls = LocalTls {
            ca: dir.join("ca.crt"),
            member_cert: dir.join("member.crt"),
            member_key: dir.join("member.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        };
        let files = [&tls.ca, &tls.member_cert, &tls.member_key, &tls.client_cert, &tls.client_key];
        if files.iter().all(|f| f.is_file()) {
            return Ok(tls);
        }
        let ca = ThrowawayCa::new("traft local-cluster CA")?;
        let member = ca.issue("traft member", &["127.0.0.1", "localhost"], false)?;
        let client = ca.issue("traft operator", &["localhost"], false)?;
        write(&tls.ca, &ca.cert_pem, false)?;
        write(&tls.member_cert, &member.cert_pem, false)?;
        write(&tls.member_key, &member.key_pem, true)?;
        write(&tls.client_cert, &client.cert_pem, false)?;
        write(&tls.client_key, &client.key_pem, true)?;
        Ok(tls)
    }

    fn load(&self) -> anyhow::Result<NodeTls> {
        let files = ServerFiles {
            cert: self.member_cert.clone(),
            key: self.member_key.clone(),
            trusted_ca: Some(self.ca.clone()),
            client_cert_auth: true,
        };
        // One port per member serves clients and peers, so one TLS set.
        Ok(NodeTls {
            client: Some(ServerTls::load(&files, CLIENT_FLAGS)?),
            peer: None,
            dial: ClientTls::load(Some(&self.ca), Some((&self.member_cert, &self.member_key)), false, PEER_DIAL_FLAGS)?,
        })
    }
}

fn write(path: &std::path::Path, contents: &str, private: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}
