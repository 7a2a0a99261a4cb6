//! `traftctl local-cluster N`: the front door. N embedded members on
//! 127.0.0.1, each with its own data directory, until Ctrl-C.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::cli::{exit, interrupted};
use traftctl::node::{self, Listeners, MemberRole, NodeConfig, NodeHandle, NodeTls};
use traftctl::pb::ClusterConfig;
use traftctl::tls::{CLIENT_FLAGS, ClientTls, PEER_DIAL_FLAGS, ServerFiles, ServerTls, ThrowawayCa};

#[derive(Debug, clap::Args)]
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
    #[command(flatten)]
    pub snapshots: super::node::SnapshotArgs,
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
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
    let config = ClusterConfig::majority((1..=n).map(|id| (id, format!("{scheme}{}", addrs[(id - 1) as usize]))))?;
    // A fresh cluster gets an id of its own; a recovered one keeps the id
    // its directories recorded.
    let token = format!("local-cluster {} {:?}", std::process::id(), std::time::SystemTime::now());
    let cluster_id = node::cluster_id_from(&token, &config);
    let mut handles: Vec<NodeHandle> = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = i as i64 + 1;
        let dir = root.join(format!("node-{id}"));
        let mut node_config = NodeConfig::new(id, config.clone(), dir);
        node_config.tls = node_tls.clone();
        node_config.metrics = metrics_addrs.as_ref().map(|m| m[i]);
        node_config.cluster_id = cluster_id;
        args.snapshots.apply(&mut node_config);
        match node::start(node_config, Listeners { client: listener, peer: None }).await {
            Ok(h) => handles.push(h),
            Err(e) => {
                for h in handles {
                    h.shutdown().await;
                }
                return Err(e);
            }
        }
    }

    let result = wait_for_leader(&handles, Duration::from_secs(args.election_timeout_secs)).await;
    match result {
        Ok(leader) => {
            print_banner(&handles, &root, leader, args.ephemeral, tls.as_ref(), metrics_addrs.as_deref()).await;
            tokio::select! {
                _ = interrupted() => eprintln!("\nshutting down..."),
                _ = any_fatal(&handles) => {}
            }
        }
        Err(e) => eprintln!("error: {e:#}"),
    }
    let fatal: Vec<String> =
        handles.iter().filter_map(|h| h.fatal_error().map(|e| format!("node {}: {e}", h.id))).collect();
    for h in &handles {
        h.begin_shutdown();
    }
    for h in handles {
        h.shutdown().await;
    }
    drop(temp);
    if !fatal.is_empty() {
        bail!("{}", fatal.join("; "));
    }
    Ok(exit::OK)
}

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

async fn wait_for_leader(handles: &[NodeHandle], limit: Duration) -> anyhow::Result<i64> {
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

async fn print_banner(
    handles: &[NodeHandle],
    root: &std::path::Path,
    leader: i64,
    ephemeral: bool,
    tls: Option<&LocalTls>,
    metrics: Option<&[SocketAddr]>,
) {
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

async fn any_fatal(handles: &[NodeHandle]) {
    loop {
        if handles.iter().any(|h| h.fatal_error().is_some()) {
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
