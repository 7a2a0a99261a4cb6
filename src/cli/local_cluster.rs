//! `traftctl local-cluster N`: the front door. N embedded members on
//! 127.0.0.1, each with its own data directory, until Ctrl-C.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::cli::{exit, interrupted};
use traftctl::node::{self, Listeners, NodeConfig, NodeHandle};
use traftctl::pb::ClusterConfig;
use traftctl::replica::Role;

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
    /// Give up if no leader is elected within this many seconds.
    #[arg(long, default_value_t = 15)]
    pub election_timeout_secs: u64,
    #[command(flatten)]
    pub snapshots: super::node::SnapshotArgs,
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
    let n = i64::from(args.members);
    let temp = if args.ephemeral { Some(tempdir()?) } else { None };
    let root = temp.clone().unwrap_or_else(|| args.data_dir.clone());
    let mut addrs = Vec::new();
    for i in 0..n {
        let port = u16::try_from(i64::from(args.base_port) + i)
            .ok()
            .filter(|p| *p > 0)
            .with_context(|| format!("--base-port {} leaves no room for {n} ports", args.base_port))?;
        addrs.push(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    // Bind every port before touching any data, so a busy port fails fast.
    let mut listeners = Vec::new();
    for addr in &addrs {
        listeners.push(node::bind(*addr).await?);
    }
    let config = ClusterConfig::majority((1..=n).map(|id| (id, addrs[(id - 1) as usize].to_string())))?;
    let mut handles: Vec<NodeHandle> = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = i as i64 + 1;
        let dir = root.join(format!("node-{id}"));
        let mut node_config = NodeConfig::new(id, config.clone(), dir);
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
            print_banner(&handles, &root, leader, args.ephemeral).await;
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
    if let Some(dir) = temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    if !fatal.is_empty() {
        bail!("{}", fatal.join("; "));
    }
    Ok(exit::OK)
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("traft-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
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
                && s.role == Role::Leader
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

async fn print_banner(handles: &[NodeHandle], root: &std::path::Path, leader: i64, ephemeral: bool) {
    let mut rows = Vec::new();
    for h in handles {
        let role = match h.status().await.map(|s| s.role) {
            Ok(Role::Leader) => "leader",
            Ok(Role::Candidate) => "candidate",
            Ok(Role::Follower) => "follower",
            Err(_) => "stopped",
        };
        let dir = root.join(format!("node-{}", h.id));
        rows.push(vec![h.id.to_string(), h.addr.to_string(), dir.display().to_string(), role.to_string()]);
    }
    let table = crate::cli::output::table(["id", "address", "data directory", "role"], rows);
    let endpoints: Vec<String> = handles.iter().map(|h| h.addr.to_string()).collect();
    let endpoints = endpoints.join(",");
    println!("traft local cluster: {} members, leader is node {leader}", handles.len());
    println!("{table}");
    if ephemeral {
        println!("data is ephemeral and is removed on exit");
    } else {
        println!("data persists in {}; run the same command again to recover it", root.display());
    }
    println!();
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
