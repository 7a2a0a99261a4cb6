//! `traftctl node`: one member of a real cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::cli::{exit, interrupted};
use traftctl::node::{self, Listeners, NodeConfig, NodeTls};
use traftctl::pb::ClusterConfig;
use traftctl::tls::{CLIENT_FLAGS, ClientTls, PEER_DIAL_FLAGS, PEER_FLAGS, ServerFiles, ServerTls};

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  traftctl node --id 1 --listen 0.0.0.0:7001 \\\n    \
                        --peers 1=host1:7001,2=host2:7001,3=host3:7001 --data-dir /var/lib/traft")]
pub struct Args {
    /// This member's id (a positive integer, unique in the cluster).
    #[arg(long)]
    pub id: i64,
    /// Address to listen on for peers and clients (one port for both; with TLS it
    /// presents the --cert-file set when given, else the --peer-cert-file set).
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub listen: SocketAddr,
    /// Address for clients (TRaftAdmin, and TRaft for Propose), instead of --listen.
    #[arg(long, value_name = "ADDR")]
    pub listen_client: Option<SocketAddr>,
    /// Address for peers (TRaft Vote and LogForward, TRaftSnapshot), instead of
    /// --listen; the address the other members list for this one.
    #[arg(long, value_name = "ADDR")]
    pub listen_peer: Option<SocketAddr>,
    /// Serve /metrics (Prometheus text format), /livez and /readyz over plain HTTP here.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen_metrics: Option<SocketAddr>,
    /// Every initial member as ID=HOST:PORT (or ID=https://HOST:PORT), this one
    /// included, comma separated: the addresses members dial each other at.
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present_any = ["join", "force_new_cluster"],
        conflicts_with = "join"
    )]
    pub peers: Vec<String>,
    /// Start as a new member of the running cluster that ADDR belongs to; it
    /// receives the log once the cluster adds it with `traftctl config add-member`.
    #[arg(long, value_name = "ADDR")]
    pub join: Option<String>,
    /// Where this member keeps its log and state.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Seeds the cluster id, with the --peers list, at the first start (like
    /// etcd's): give every cluster its own, so members of two clusters can never
    /// vote or forward into each other's. Ignored with --join (the member adopts
    /// the cluster's id) and after the first start (the data directory keeps it).
    #[arg(long, default_value = node::DEFAULT_CLUSTER_TOKEN, value_name = "TOKEN")]
    pub initial_cluster_token: String,
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub recovery: crate::cli::recover::ForceNewClusterArgs,
}

/// etcd's TLS flags: one set for the client listener, one for peers.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// Certificate (PEM) the client listener presents.
    #[arg(long, value_name = "FILE", requires = "key_file")]
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of --cert-file.
    #[arg(long, value_name = "FILE", requires = "cert_file")]
    pub key_file: Option<PathBuf>,
    /// CA (PEM) that client certificates must be signed by.
    #[arg(long, value_name = "FILE", requires = "cert_file")]
    pub trusted_ca_file: Option<PathBuf>,
    /// Require a client certificate signed by --trusted-ca-file.
    #[arg(long, requires = "trusted_ca_file")]
    pub client_cert_auth: bool,
    /// Certificate (PEM) the peer listener presents, and this member presents
    /// when it dials peers.
    #[arg(long, value_name = "FILE", requires = "peer_key_file")]
    pub peer_cert_file: Option<PathBuf>,
    /// Private key (PEM) of --peer-cert-file.
    #[arg(long, value_name = "FILE", requires = "peer_cert_file")]
    pub peer_key_file: Option<PathBuf>,
    /// CA (PEM) that peers' certificates must be signed by, both the ones
    /// peers present when they dial and the ones they serve.
    #[arg(long, value_name = "FILE", requires = "peer_cert_file")]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Accept peer RPCs only from certificates --peer-trusted-ca-file signed.
    #[arg(long, requires = "peer_trusted_ca_file")]
    pub peer_client_cert_auth: bool,
}

impl TlsArgs {
    /// Loads and checks every file, so a wrong path stops the start before
    /// any data is touched.
    pub fn load(&self) -> anyhow::Result<NodeTls> {
        let server = |cert: &Option<PathBuf>, key: &Option<PathBuf>, ca: &Option<PathBuf>, auth, flags| {
            let (Some(cert), Some(key)) = (cert, key) else { return Ok(None) };
            let files =
                ServerFiles { cert: cert.clone(), key: key.clone(), trusted_ca: ca.clone(), client_cert_auth: auth };
            ServerTls::load(&files, flags).map(Some)
        };
        let client =
            server(&self.cert_file, &self.key_file, &self.trusted_ca_file, self.client_cert_auth, CLIENT_FLAGS)?;
        let peer = server(
            &self.peer_cert_file,
            &self.peer_key_file,
            &self.peer_trusted_ca_file,
            self.peer_client_cert_auth,
            PEER_FLAGS,
        )?;
        let dial = match (&self.peer_cert_file, &self.peer_key_file) {
            (Some(cert), Some(key)) => {
                if self.peer_trusted_ca_file.is_none() {
                    bail!(
                        "--peer-cert-file needs --peer-trusted-ca-file: the CA to verify the peers' certificates with"
                    );
                }
                ClientTls::load(self.peer_trusted_ca_file.as_deref(), Some((cert, key)), false, PEER_DIAL_FLAGS)?
            }
            _ => ClientTls::none(),
        };
        Ok(NodeTls { client, peer, dial })
    }
}

/// How often a member snapshots its state and compacts its log.
#[derive(Debug, Clone, clap::Args)]
pub struct SnapshotArgs {
    /// Snapshot the state and compact the log after this many applied
    /// records (0: never, and the log grows without bound).
    #[arg(long, default_value_t = 10_000, value_name = "RECORDS")]
    pub snapshot_every: u32,
    /// Applied records kept behind a snapshot, so a member that trails by
    /// less catches up from the log instead of a whole snapshot.
    #[arg(long, default_value_t = 8192, value_name = "RECORDS")]
    pub compact_retain: u32,
}

impl SnapshotArgs {
    pub fn apply(&self, config: &mut NodeConfig) {
        config.options.snapshot_every = i64::from(self.snapshot_every);
        config.options.compact_retain = i64::from(self.compact_retain);
    }
}

/// `HOST:PORT` or `https://HOST:PORT`: what peers dial. An explicit
/// `http://` is refused, since without TLS flags a bare address is already
/// plaintext and with them plaintext is not what the operator asked for.
pub fn valid_member_addr(addr: &str) -> bool {
    let hostport = addr.strip_prefix("https://").unwrap_or(addr);
    hostport
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// Parses `1=host1:7001` pairs into a member map.
pub fn parse_peers(peers: &[String]) -> anyhow::Result<BTreeMap<i64, String>> {
    let mut out = BTreeMap::new();
    for p in peers {
        let (id, addr) = p.split_once('=').with_context(|| format!("bad peer `{p}`: expected ID=HOST:PORT"))?;
        let id: i64 = id.trim().parse().with_context(|| format!("bad peer `{p}`: the id must be an integer"))?;
        if id <= 0 {
            bail!("bad peer `{p}`: ids are positive integers");
        }
        if !valid_member_addr(addr.trim()) {
            bail!("bad peer `{p}`: expected ID=HOST:PORT");
        }
        if out.insert(id, addr.trim().to_string()).is_some() {
            bail!("peer id {id} is listed twice in --peers");
        }
    }
    Ok(out)
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
    let tls = args.tls.load()?;
    let (config, cluster_id) = match &args.join {
        Some(addr) => {
            let (config, cluster_id) = fetch_config(addr, &tls.dial).await?;
            if !config.members.contains_key(&args.id) {
                eprintln!(
                    "node {} joins the cluster of {addr}; add it with:\n  traftctl config add-member {} {} --endpoints {addr}",
                    args.id,
                    args.id,
                    args.listen_peer.unwrap_or(args.listen)
                );
            }
            (config, cluster_id)
        }
        None if args.recovery.force_new_cluster => {
            // Its address in --peers if given (the one peers dial), else --listen.
            let peers = parse_peers(&args.peers)?;
            let listen = args.listen_peer.unwrap_or(args.listen).to_string();
            let addr = peers.get(&args.id).cloned().unwrap_or(listen);
            let config = crate::cli::recover::force_new_cluster(args.id, &addr, &args.data_dir)?;
            let cluster_id = node::cluster_id_from(&args.initial_cluster_token, &config);
            (config, cluster_id)
        }
        None => {
            let peers = parse_peers(&args.peers)?;
            if !peers.contains_key(&args.id) {
                bail!("--peers must include this member (id {}) with its address", args.id);
            }
            if tls.peer.is_none()
                && let Some(addr) = peers.values().find(|a| a.starts_with("https://"))
            {
                bail!(
                    "--peers lists {addr}, but TLS to peers needs --peer-cert-file, --peer-key-file and --peer-trusted-ca-file"
                );
            }
            let config = ClusterConfig::majority(peers).context("cannot build the initial configuration")?;
            let cluster_id = node::cluster_id_from(&args.initial_cluster_token, &config);
            (config, cluster_id)
        }
    };
    let client_addr = args.listen_client.unwrap_or(args.listen);
    let peer_addr = args.listen_peer.unwrap_or(args.listen);
    if client_addr == peer_addr && tls.client.is_some() && tls.peer.is_none() {
        bail!(
            "--cert-file makes {client_addr} speak TLS, and peers dial that port too: give the peer TLS files \
             as well (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file; they may be the same files), \
             or a separate --listen-peer"
        );
    }
    let listeners = Listeners {
        client: node::bind(client_addr).await?,
        peer: if peer_addr == client_addr { None } else { Some(node::bind(peer_addr).await?) },
    };
    let mut node_config = NodeConfig::new(args.id, config, args.data_dir);
    node_config.tls = tls;
    node_config.metrics = args.listen_metrics;
    node_config.cluster_id = cluster_id;
    args.snapshots.apply(&mut node_config);
    let handle = node::start(node_config, listeners).await?;
    match handle.peer_addr {
        Some(peer) => tracing::info!("node {} listening for clients on {} and peers on {peer}", handle.id, handle.addr),
        None => tracing::info!("node {} listening on {}", handle.id, handle.addr),
    }
    tokio::select! {
        _ = interrupted() => {
            // A leader that just stops leaves the others to wait out its
            // lease before they may elect anyone.
            if let Some(leader) = handle.hand_over(HAND_OVER_WAIT).await {
                tracing::info!("{leader} leads now; stopping");
            }
        }
        _ = wait_fatal(&handle) => {}
    }
    let fatal = handle.fatal_error();
    handle.shutdown().await;
    match fatal {
        Some(why) => bail!("node stopped: {why}{}", full_disk_hint(&why)),
        None => Ok(exit::OK),
    }
}

/// What to do when the member stopped because its disk is full (ENOSPC,
/// EDQUOT). The storage's error comes as text, with the OS error number.
fn full_disk_hint(why: &str) -> &'static str {
    if why.contains("(os error 28)") || why.contains("(os error 122)") {
        "; free space on that file system (or grow it) and start the member again: every write it acknowledged \
         is on disk"
    } else {
        ""
    }
}

/// How long a stopping leader waits for the member it handed over to.
const HAND_OVER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

async fn wait_fatal(handle: &node::NodeHandle) {
    loop {
        if handle.fatal_error().is_some() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The configuration in force at a member of the cluster to join.
/// It dials with the peer TLS files: a joining member has no others. The
/// cluster id comes along: a joining member adopts it.
async fn fetch_config(addr: &str, tls: &ClientTls) -> anyhow::Result<(ClusterConfig, u64)> {
    let dial = tls
        .endpoint(addr)
        .map_err(|e| anyhow::anyhow!("--join {addr}: {e}"))?
        .map(|ep| ep.connect_timeout(std::time::Duration::from_secs(5)).timeout(std::time::Duration::from_secs(5)));
    let channel = dial
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {addr} to join its cluster: {}", traftctl::tls::cause(&e)))?;
    let mut admin = traftctl::pb::t_raft_admin_client::TRaftAdminClient::new(channel);
    let status = admin
        .status(traftctl::pb::StatusReq {})
        .await
        .map_err(|s| anyhow::anyhow!("{addr} did not report its configuration: {}", s.message()))?
        .into_inner();
    let cluster_id = node::parse_cluster_id(&status.cluster_id)
        .with_context(|| format!("{addr} did not report its cluster id; is it running the same traftctl version?"))?;
    let config = status.config.with_context(|| format!("{addr} did not report its configuration"))?;
    Ok((config, cluster_id))
}
