//! `traftctl node`: one member of a real cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::cli::{exit, interrupted};
use traftctl::node::{self, NodeConfig};
use traftctl::pb::ClusterConfig;

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  traftctl node --id 1 --listen 0.0.0.0:7001 \\\n    \
                        --peers 1=host1:7001,2=host2:7001,3=host3:7001 --data-dir /var/lib/traft")]
pub struct Args {
    /// This member's id (a positive integer, unique in the cluster).
    #[arg(long)]
    pub id: i64,
    /// Address to listen on for peers and clients.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub listen: SocketAddr,
    /// Every initial member as ID=HOST:PORT, this one included, comma separated.
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
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
    #[command(flatten)]
    pub recovery: crate::cli::recover::ForceNewClusterArgs,
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

/// Parses `1=host1:7001` pairs into a member map.
pub fn parse_peers(peers: &[String]) -> anyhow::Result<BTreeMap<i64, String>> {
    let mut out = BTreeMap::new();
    for p in peers {
        let (id, addr) = p.split_once('=').with_context(|| format!("bad peer `{p}`: expected ID=HOST:PORT"))?;
        let id: i64 = id.trim().parse().with_context(|| format!("bad peer `{p}`: the id must be an integer"))?;
        if id <= 0 {
            bail!("bad peer `{p}`: ids are positive integers");
        }
        if addr.trim().is_empty() || !addr.contains(':') {
            bail!("bad peer `{p}`: expected ID=HOST:PORT");
        }
        if out.insert(id, addr.trim().to_string()).is_some() {
            bail!("peer id {id} is listed twice in --peers");
        }
    }
    Ok(out)
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
    let config = match &args.join {
        Some(addr) => {
            let config = fetch_config(addr).await?;
            if !config.members.contains_key(&args.id) {
                eprintln!(
                    "node {} joins the cluster of {addr}; add it with:\n  traftctl config add-member {} {} --endpoints {addr}",
                    args.id, args.id, args.listen
                );
            }
            config
        }
        None if args.recovery.force_new_cluster => {
            // Its address in --peers if given (the one peers dial), else --listen.
            let peers = parse_peers(&args.peers)?;
            let addr = peers.get(&args.id).cloned().unwrap_or_else(|| args.listen.to_string());
            crate::cli::recover::force_new_cluster(args.id, &addr, &args.data_dir)?
        }
        None => {
            let peers = parse_peers(&args.peers)?;
            if !peers.contains_key(&args.id) {
                bail!("--peers must include this member (id {}) with its address", args.id);
            }
            ClusterConfig::majority(peers).context("cannot build the initial configuration")?
        }
    };
    let listener = node::bind(args.listen).await?;
    let mut node_config = NodeConfig::new(args.id, args.listen, config, args.data_dir);
    args.snapshots.apply(&mut node_config);
    let handle = node::start(node_config, listener).await?;
    tracing::info!("node {} listening on {}", handle.id, handle.addr);
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
        Some(why) => bail!("node stopped: {why}"),
        None => Ok(exit::OK),
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
async fn fetch_config(addr: &str) -> anyhow::Result<ClusterConfig> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .with_context(|| format!("--join {addr}: not a HOST:PORT address"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(5));
    let channel = endpoint.connect().await.with_context(|| format!("cannot reach {addr} to join its cluster"))?;
    let mut admin = traftctl::pb::t_raft_admin_client::TRaftAdminClient::new(channel);
    let status = admin
        .status(traftctl::pb::StatusReq {})
        .await
        .map_err(|s| anyhow::anyhow!("{addr} did not report its configuration: {}", s.message()))?
        .into_inner();
    status.config.with_context(|| format!("{addr} did not report its configuration"))
}
