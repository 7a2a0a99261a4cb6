//! `traftctl node`: one member of a real cluster.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::{CliError, CliResult, exit, interrupted};
use traftctl::node::{self, Listeners, NodeConfig, NodeTls};
use traftctl::pb::ClusterConfig;
use traftctl::tls::{CLIENT_FLAGS, ClientTls, PEER_DIAL_FLAGS, PEER_FLAGS, ServerFiles, ServerTls};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Every flag can also be given in a TOML file (--config FILE): the key is the flag's name without the
leading `--` (`data-dir = \"/var/lib/traft\"`, `peers = [\"1=host1:7001\", \"2=host2:7001\"]`,
`verbose = 1` for -v). Flags given on the command line win over the file; an unknown key is an
error. The recovery flags (--force-new-cluster, --confirm-data-loss) are command-line only: in a file
they would run again at every restart.

Examples:
  traftctl node --id 1 --listen 0.0.0.0:7001 --advertise-peer host1:7001 \\
    --peers 1=host1:7001,2=host2:7001,3=host3:7001 --data-dir /var/lib/traft
  traftctl node --config /etc/traft/node.toml")]
pub struct Args {
    /// Read flags from this TOML file (keys are the flags' names); flags given here win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This member's id (a positive integer, unique in the cluster). Required, here or in --config.
    #[arg(long)]
    pub id: Option<i64>,
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
    /// Where clients reach this member, when it listens on a wildcard (0.0.0.0) or behind NAT;
    /// `status` reports it. Default: the client listen address, unless that is a wildcard.
    #[arg(
        long,
        visible_alias = "advertise-client-urls",
        value_name = "[https://]HOST:PORT",
        value_parser = parse_advertised
    )]
    pub advertise_client: Option<String>,
    /// Where the other members reach this one: what `--join` tells the operator to add and
    /// what --force-new-cluster records; must match this member's --peers entry. Default: the
    /// peer listen address, unless that is a wildcard (then it is required where it is used).
    #[arg(
        long,
        visible_alias = "initial-advertise-peer-urls",
        value_name = "[https://]HOST:PORT",
        value_parser = parse_advertised
    )]
    pub advertise_peer: Option<String>,
    /// Every initial member as ID=HOST:PORT (or ID=https://HOST:PORT), this one
    /// included, comma separated: the addresses members dial each other at.
    /// Required unless --join or --force-new-cluster.
    #[arg(long, value_delimiter = ',', conflicts_with = "join")]
    pub peers: Vec<String>,
    /// Start as a new member of the running cluster that ADDR belongs to; it
    /// receives the log once the cluster adds it with `traftctl config add-member`.
    #[arg(long, value_name = "ADDR")]
    pub join: Option<String>,
    /// Where this member keeps its log and state. Required, here or in --config.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seeds the cluster id, with the --peers list, at the first start (like
    /// etcd's): give every cluster its own, so members of two clusters can never
    /// vote or forward into each other's. Ignored with --join (the member adopts
    /// the cluster's id) and after the first start (the data directory keeps it).
    #[arg(long, default_value = node::DEFAULT_CLUSTER_TOKEN, value_name = "TOKEN")]
    pub initial_cluster_token: String,
    /// How often an idle leader renews its lease, in milliseconds (etcd's name).
    #[arg(long, value_name = "MS", default_value_t = node::DEFAULT_HEARTBEAT.as_millis() as u64)]
    pub heartbeat_interval: u64,
    /// The lease, in milliseconds: how long a follower stays with a leader it heard from before
    /// it may elect another (at least 5 x --heartbeat-interval, at most 50000; etcd's name).
    #[arg(long, value_name = "MS", default_value_t = node::DEFAULT_ELECTION_TIMEOUT.as_millis() as u64)]
    pub election_timeout: u64,
    /// How log lines look on stderr: `text` (coloured only on a terminal) or `json`, one object
    /// per line for log collectors.
    #[arg(long, value_enum, default_value_t = crate::cli::LogFormat::Text)]
    pub log_format: crate::cli::LogFormat,
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
    #[command(flatten)]
    pub order: ReplicationArgs,
    // Hidden, as it is not an operator's flag (nor a --config key):
    // process-level tests put a fault proxy (`traftctl::chaos`) between
    // separate node processes by telling each to dial its peers at the
    // proxy's listeners. The configuration, and so status, redirects and the
    // cluster id, keep the real addresses (`NodeConfig::dial_overrides`).
    #[arg(
        long,
        value_name = "ID=HOST:PORT",
        hide = true,
        help = "Dial member ID at HOST:PORT instead of its configured address (for tests; repeatable)"
    )]
    pub dial_via: Vec<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub recovery: crate::cli::recover::ForceNewClusterArgs,
}

impl Args {
    /// What clap could not check because the value may come from --config:
    /// the required flags, --peers against --join, the TLS pairs, the
    /// timing. Run after the file is merged; usage errors (exit 2).
    pub fn check(&self) -> CliResult<()> {
        let from = if self.config.is_some() { " (on the command line or in --config)" } else { "" };
        match self.id {
            None => return Err(CliError::usage(format!("--id is required{from}"))),
            Some(id) if id <= 0 => return Err(CliError::usage(format!("--id {id}: ids are positive integers"))),
            Some(_) => {}
        }
        if self.data_dir.is_none() {
            return Err(CliError::usage(format!("--data-dir is required{from}")));
        }
        match (&self.join, self.peers.is_empty(), self.recovery.force_new_cluster) {
            (Some(_), false, _) => return Err(CliError::usage("--peers and --join cannot be used together")),
            (None, true, false) => {
                return Err(CliError::usage(format!(
                    "--peers is required{from}, unless the member joins a running cluster (--join) or recovers \
                     one (--force-new-cluster)"
                )));
            }
            _ => {}
        }
        self.tls.check_pairs()?;
        let (heartbeat, election) = self.timing();
        node::check_timing(heartbeat, election).map_err(CliError::usage)?;
        Ok(())
    }

    fn timing(&self) -> (Duration, Duration) {
        (Duration::from_millis(self.heartbeat_interval), Duration::from_millis(self.election_timeout))
    }
}

/// `--advertise-*`: a member address, which must be one others can dial.
pub(super) fn parse_advertised(s: &str) -> Result<String, String> {
    let s = s.trim();
    if !valid_member_addr(s) {
        return Err(format!("`{s}` is not HOST:PORT or https://HOST:PORT (e.g. 10.0.0.1:7001)"));
    }
    if wildcard_host(s) {
        return Err(format!("`{s}` is a wildcard; advertise the address others reach this machine at"));
    }
    Ok(s.to_string())
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
    /// The pairs clap's `requires` checks on the command line, checked
    /// again once --config may have filled some in.
    pub fn check_pairs(&self) -> CliResult<()> {
        let pairs = [
            (self.cert_file.is_some(), "--cert-file", self.key_file.is_some(), "--key-file"),
            (self.key_file.is_some(), "--key-file", self.cert_file.is_some(), "--cert-file"),
            (self.trusted_ca_file.is_some(), "--trusted-ca-file", self.cert_file.is_some(), "--cert-file"),
            (self.client_cert_auth, "--client-cert-auth", self.trusted_ca_file.is_some(), "--trusted-ca-file"),
            (self.peer_cert_file.is_some(), "--peer-cert-file", self.peer_key_file.is_some(), "--peer-key-file"),
            (self.peer_key_file.is_some(), "--peer-key-file", self.peer_cert_file.is_some(), "--peer-cert-file"),
            (
                self.peer_trusted_ca_file.is_some(),
                "--peer-trusted-ca-file",
                self.peer_cert_file.is_some(),
                "--peer-cert-file",
            ),
            (
                self.peer_client_cert_auth,
                "--peer-client-cert-auth",
                self.peer_trusted_ca_file.is_some(),
                "--peer-trusted-ca-file",
            ),
        ];
        match pairs.iter().find(|(given, _, needed, _)| *given && !*needed) {
            Some((_, flag, _, needs)) => Err(CliError::usage(format!("{flag} needs {needs}"))),
            None => Ok(()),
        }
    }

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

/// Whether a member address names no host in particular (`0.0.0.0`,
/// `[::]`): fine to listen on, useless to dial.
pub fn wildcard_host(addr: &str) -> bool {
    let hostport = addr.strip_prefix("https://").unwrap_or(addr);
    let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
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
        if wildcard_host(addr.trim()) {
            bail!(
                "bad peer `{p}`: {} is a wildcard that other members cannot dial; list the address they reach \
                 member {id} at (and let it listen on the wildcard with --listen)",
                addr.trim()
            );
        }
        if out.insert(id, addr.trim().to_string()).is_some() {
            bail!("peer id {id} is listed twice in --peers");
        }
    }
    Ok(out)
}

/// How records travel and commit: out of order or not, and on how many
/// connections per peer.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplicationArgs {
    /// `any`: traft's out-of-order commit and apply (each record commits on
    /// its own quorum and applies once its dependencies have). `prefix`: the
    /// leader commits strictly in seq order and every member applies in seq
    /// order, as Raft does. `prefix` is a diagnostic, not a production mode:
    /// it exists to measure what out-of-order commit buys, with the same
    /// binary under the same faults.
    #[arg(long, value_enum, default_value_t = CommitOrderArg::Any, value_name = "ORDER")]
    pub commit_order: CommitOrderArg,
    /// Connections a leader replicates on to each follower, forwards taking
    /// them in turn: a connection that breaks loses only its own forwards,
    /// and the records on the others commit meanwhile.
    #[arg(long, default_value_t = traftctl::node::DEFAULT_PEER_CONNECTIONS as u8, value_name = "N",
          value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_PEER_CONNECTIONS)))]
    pub peer_connections: u8,
}

/// The most `--peer-connections` (or the `peer-connections` key) may ask for.
pub const MAX_PEER_CONNECTIONS: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitOrderArg {
    Any,
    Prefix,
}

impl ReplicationArgs {
    pub fn apply(&self, config: &mut NodeConfig) {
        config.peer_connections = usize::from(self.peer_connections);
        config.options.commit_order = match self.commit_order {
            CommitOrderArg::Any => traftctl::replica::CommitOrder::Any,
            CommitOrderArg::Prefix => traftctl::replica::CommitOrder::Prefix,
        };
    }
}

/// Parses `--dial-via ID=HOST:PORT` pairs.
fn parse_dial_via(pairs: &[String]) -> anyhow::Result<BTreeMap<i64, String>> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let bad = || anyhow::anyhow!("bad --dial-via `{p}`: expected ID=HOST:PORT");
        let (id, addr) = p.split_once('=').ok_or_else(bad)?;
        let id: i64 = id.trim().parse().ok().filter(|id| *id > 0).ok_or_else(bad)?;
        if !valid_member_addr(addr.trim()) || addr.contains("://") {
            return Err(bad());
        }
        if out.insert(id, addr.trim().to_string()).is_some() {
            bail!("--dial-via names member {id} twice");
        }
    }
    Ok(out)
}

pub async fn run(args: Args) -> CliResult<u8> {
    args.check()?;
    // Checked here, before anything starts, for the usage error's exit code.
    parse_dial_via(&args.dial_via).map_err(CliError::usage)?;
    let tls = args.tls.load()?;
    let peers = parse_peers(&args.peers).map_err(|e| CliError::usage(format!("{e:#}")))?;
    let advertised_peer = advertised_peer(&args, &tls, &peers)?;
    let joined = match &args.join {
        Some(addr) => Some(fetch_config(addr, &tls.dial).await?),
        None => None,
    };
    // A joining member is added by the address it advertises: it must be
    // one the others can dial.
    if let (Some(addr), Some((config, _))) = (&args.join, &joined) {
        let id = args.id.expect("checked");
        if !config.members.contains_key(&id) {
            let advertised = advertised_peer.as_deref().ok_or_else(|| wildcard_error(&args))?;
            eprintln!(
                "node {id} joins the cluster of {addr}; add it with:\n  traftctl config add-member {id} {advertised} \
                 --endpoints {addr}"
            );
        }
    }
    Ok(start(args, tls, peers, advertised_peer, joined).await?)
}

/// The address the other members reach this one at: `--advertise-peer`,
/// else the peer listen address unless it is a wildcard (`None` then).
/// With TLS to peers, an `https://` address. It must agree with this
/// member's `--peers` entry, which is what the member table holds.
fn advertised_peer(args: &Args, tls: &NodeTls, peers: &BTreeMap<i64, String>) -> CliResult<Option<String>> {
    let listen = args.listen_peer.unwrap_or(args.listen);
    let scheme = if tls.peer.is_some() { "https://" } else { "" };
    let advertised = match &args.advertise_peer {
        Some(a) => Some(a.clone()),
        None if listen.ip().is_unspecified() => None,
        None => Some(format!("{scheme}{listen}")),
    };
    let id = args.id.expect("checked");
    if let (Some(a), Some(listed)) = (&args.advertise_peer, peers.get(&id))
        && a != listed
    {
        return Err(CliError::usage(format!(
            "--advertise-peer {a} is not this member's --peers entry ({id}={listed}); the member table uses --peers, \
             so make them the same"
        )));
    }
    Ok(advertised)
}

fn wildcard_error(args: &Args) -> CliError {
    let (flag, listen) = match args.listen_peer {
        Some(l) => ("--listen-peer", l),
        None => ("--listen", args.listen),
    };
    CliError::usage(format!(
        "{flag} {listen} is a wildcard the other members cannot dial, and it would go into the member table: \
         give --advertise-peer HOST:PORT, the address they reach this machine at"
    ))
}

/// Starts the member and runs it until SIGTERM or Ctrl-C; `joined` is the
/// configuration and cluster id fetched through `--join`.
async fn start(
    args: Args,
    tls: NodeTls,
    peers: BTreeMap<i64, String>,
    advertised_peer: Option<String>,
    joined: Option<(ClusterConfig, u64)>,
) -> anyhow::Result<u8> {
    let id = args.id.expect("checked");
    let data_dir = args.data_dir.clone().expect("checked");
    let (config, cluster_id) = match (&args.join, joined) {
        (Some(_), Some(joined)) => joined,
        (Some(_), None) => unreachable!("run fetches the configuration of --join first"),
        (None, _) if args.recovery.force_new_cluster => {
            // Its address in --peers if given (the one peers dial), else the advertised one.
            let addr = match peers.get(&id).cloned().or(advertised_peer) {
                Some(addr) => addr,
                None => return Err(wildcard_error(&args).error),
            };
            let config = crate::cli::recover::force_new_cluster(id, &addr, &data_dir)?;
            let cluster_id = node::cluster_id_from(&args.initial_cluster_token, &config);
            (config, cluster_id)
        }
        (None, _) => {
            if !peers.contains_key(&id) {
                bail!("--peers must include this member (id {id}) with its address");
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
    let advertise_client = match &args.advertise_client {
        Some(a) => a.clone(),
        None if client_addr.ip().is_unspecified() => String::new(),
        None => format!("{}{client_addr}", if tls.client.is_some() { "https://" } else { "" }),
    };
    let mut node_config = NodeConfig::new(id, config, data_dir);
    node_config.tls = tls;
    node_config.metrics = args.listen_metrics;
    node_config.cluster_id = cluster_id;
    node_config.advertise_client = advertise_client.clone();
    node_config.dial_overrides = parse_dial_via(&args.dial_via)?;
    let (heartbeat, election_timeout) = args.timing();
    node_config.set_timing(heartbeat, election_timeout)?;
    args.snapshots.apply(&mut node_config);
    args.order.apply(&mut node_config);
    let handle = node::start_on_thread(node_config, listeners).await?;
    let clients_at =
        if advertise_client.is_empty() { String::new() } else { format!(" (advertised: {advertise_client})") };
    match handle.peer_addr {
        Some(peer) => {
            tracing::info!(
                "node {} listening for clients on {}{clients_at} and peers on {peer}",
                handle.id,
                handle.addr
            )
        }
        None => tracing::info!("node {} listening on {}{clients_at}", handle.id, handle.addr),
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
/// cluster id comes along: a joining member adopts it. Every way of not
/// getting it is one line and exit 3: nothing to join there.
async fn fetch_config(addr: &str, tls: &ClientTls) -> CliResult<(ClusterConfig, u64)> {
    let unavailable = |why: String| CliError::msg(exit::UNAVAILABLE, format!("cannot join through {addr}: {why}"));
    let dial = tls
        .endpoint(addr)
        .map_err(|e| CliError::usage(format!("--join {addr}: {e}")))?
        .map(|ep| ep.connect_timeout(JOIN_TIMEOUT).timeout(JOIN_TIMEOUT));
    let channel = dial.connect().await.map_err(|e| {
        unavailable(format!(
            "{}; is a member of the cluster running there? (--join takes a running member's client address)",
            crate::cli::client::connect_cause(&e)
        ))
    })?;
    let mut admin = traftctl::pb::t_raft_admin_client::TRaftAdminClient::new(channel);
    let status = admin.status(traftctl::pb::StatusReq {}).await.map_err(|s| unavailable(join_refusal(&s)))?;
    let status = status.into_inner();
    let not_a_member = || {
        unavailable("it answered, but not with a traft member's status (another program, or an older traftctl)".into())
    };
    let cluster_id = node::parse_cluster_id(&status.cluster_id).ok_or_else(not_a_member)?;
    let config = status.config.ok_or_else(not_a_member)?;
    Ok((config, cluster_id))
}

/// How long `--join` waits to connect, and for the answer.
const JOIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the member at `--join` did not give its status, in words.
fn join_refusal(status: &tonic::Status) -> String {
    if let Some(tls) = traftctl::tls::tls_cause(status) {
        return tls;
    }
    match status.code() {
        tonic::Code::Unimplemented => {
            "it does not serve the admin service: is it a member's peer port? Give its client address \
             (--listen-client)"
                .into()
        }
        tonic::Code::DeadlineExceeded => format!("no answer within {}s", JOIN_TIMEOUT.as_secs()),
        _ => format!(
            "it does not answer as a traft member does ({}); is another program listening on that port?",
            crate::cli::client::status_cause(status)
        ),
    }
}
