//! `--listen-metrics`: plain HTTP with `/metrics` (Prometheus text format),
//! `/livez` and `/readyz`. Answers come from the same status snapshot as
//! `traftctl status`, so a scrape sees one consistent instant.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::timings::{BUCKETS, HistogramSnapshot, Timings};
use super::{Input, MemberRole, StatusSnapshot};
use crate::replica::Role;

/// A request line and headers larger than this are refused.
const MAX_REQUEST: usize = 8 * 1024;
/// A client that sends no complete request within this is hung up on.
const READ_DEADLINE: Duration = Duration::from_secs(5);

pub(super) async fn serve(
    listener: TcpListener,
    inputs: mpsc::Sender<Input>,
    data_dir: PathBuf,
    timings: Arc<Timings>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("metrics listener: {e}");
                    continue;
                }
            },
        };
        let (inputs, data_dir, timings) = (inputs.clone(), data_dir.clone(), timings.clone());
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &inputs, &data_dir, &timings).await {
                tracing::debug!("metrics request: {e}");
            }
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    inputs: &mpsc::Sender<Input>,
    data_dir: &Path,
    timings: &Timings,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(READ_DEADLINE, async {
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if read.is_err() {
        return Ok(());
    }
    let request = String::from_utf8_lossy(&buf);
    let mut words = request.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (code, body) = if method != "GET" {
        (405, "only GET is served here\n".to_string())
    } else {
        match path {
            "/livez" => (200, "ok\n".to_string()),
            "/readyz" | "/metrics" => match super::ask_status(inputs).await {
                None => (503, "the node is shutting down\n".to_string()),
                Some(s) if path == "/readyz" => match readiness(&s) {
                    Ok(()) => (200, "ok\n".to_string()),
                    Err(why) => (503, format!("{why}\n")),
                },
                Some(s) => (200, render(&s, dir_bytes(data_dir), timings)),
            },
            _ => (404, "not found: try /metrics, /livez or /readyz\n".to_string()),
        }
    };
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Ready: this member knows a leader whose lease holds (its own, if it
/// leads) and has applied everything it knows committed.
pub fn readiness(s: &StatusSnapshot) -> Result<(), String> {
    let knows_leader = match s.role {
        Role::Leader => s.lease_remaining.is_some(),
        _ => s.leader.is_some() && s.follower_lease_remaining.is_some(),
    };
    if !knows_leader {
        return Err(match s.role {
            Role::Leader => "this member leads but holds no lease: a quorum has not acknowledged it".into(),
            _ => "no leader heard from within a lease".into(),
        });
    }
    let committed = s.status.committed.clone().unwrap_or_default();
    let applied = s.status.applied.clone().unwrap_or_default();
    let behind = (&committed - &applied).count_ones();
    if behind > 0 {
        return Err(format!("{behind} committed records are not applied yet"));
    }
    Ok(())
}

/// Every file under `dir`, in bytes.
pub(super) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The Prometheus text exposition format.
pub fn render(s: &StatusSnapshot, data_dir_bytes: u64, timings: &Timings) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP traft_{name} {help}\n# TYPE traft_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "traft_{name}{labels} {value}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    let b = |v: bool| if v { 1.0 } else { 0.0 };
    let committed = s.status.committed.clone().unwrap_or_default();
    let applied = s.status.applied.clone().unwrap_or_default();
    metric("has_leader", "gauge", "1 if this member knows a leader.", &one(b(s.leader.is_some())));
    metric("is_leader", "gauge", "1 if this member leads.", &one(b(s.role == Role::Leader)));
    let role = MemberRole::from(s.role);
    let roles: Vec<(String, f64)> = [MemberRole::Leader, MemberRole::Candidate, MemberRole::Follower]
        .iter()
        .map(|r| (format!("{{role=\"{r}\"}}"), b(*r == role)))
        .collect();
    metric("role", "gauge", "This member's role, as a 1 on its label.", &roles);
    let term = s.leader.map_or(0, |l| l.term);
    metric("term", "gauge", "The term of the leader this member knows (0: none).", &one(term as f64));
    metric(
        "leader_changes_total",
        "counter",
        "Leaders this member has followed or become since it started.",
        &one(s.counters.leader_changes as f64),
    );
    metric(
        "lease_remaining_seconds",
        "gauge",
        "How long this member's lease still holds: the leader's own, or the one it acknowledged.",
        &one(s.lease_remaining.or(s.follower_lease_remaining).map_or(0.0, |d| d.as_secs_f64())),
    );
    metric("committed_prefix", "gauge", "Every seq below this is committed.", &one(committed.prefix_len() as f64));
    metric("applied_prefix", "gauge", "Every seq below this is applied.", &one(applied.prefix_len() as f64));
    let stats = &s.stats;
    for (name, help, v) in [
        ("records_committed_total", "Records this member learned committed.", stats.committed),
        ("records_applied_total", "Records this member applied.", stats.applied),
        ("commits_out_of_order_total", "Commits while a lower seq was uncommitted.", stats.committed_out_of_order),
        ("applies_out_of_order_total", "Applies while a lower seq was unapplied.", stats.applied_out_of_order),
        ("elections_started_total", "Campaigns this member started.", stats.elections_started),
        ("elections_won_total", "Campaigns this member won.", stats.elections_won),
        ("snapshots_taken_total", "Snapshots this member took to compact its log.", stats.snapshots_taken),
        ("snapshots_installed_total", "Snapshots this member installed from a peer.", stats.snapshots_installed),
        ("leadership_transfers_total", "Times this member handed leadership over.", stats.transfers),
        ("requests_ok_total", "Client requests answered with success.", s.counters.requests_ok),
        ("requests_failed_total", "Client requests answered with a failure.", s.counters.requests_failed),
    ] {
        metric(name, "counter", help, &one(v as f64));
    }
    metric("requests_pending", "gauge", "Client requests waiting for an answer.", &one(s.requests_pending as f64));
    metric("log_records", "gauge", "Records held in the log.", &one(s.log_records as f64));
    metric("data_dir_bytes", "gauge", "Bytes in the data directory.", &one(data_dir_bytes as f64));
    let peers: Vec<(String, f64)> =
        s.peers.iter().map(|p| (format!("{{peer=\"{}\"}}", p.id), b(p.reachable))).collect();
    metric("peer_reachable", "gauge", "Leader only: 1 if the peer acknowledged within a lease.", &peers);
    let lag: Vec<(String, f64)> = s.peers.iter().map(|p| (format!("{{peer=\"{}\"}}", p.id), p.lag as f64)).collect();
    metric("peer_lag_records", "gauge", "Leader only: committed records the peer has not applied.", &lag);
    let mut histogram = |name: &str, help: &str, series: &[(String, HistogramSnapshot)]| {
        let _ = writeln!(out, "# HELP traft_{name} {help}\n# TYPE traft_{name} histogram");
        for (labels, h) in series {
            let sep = if labels.is_empty() { "" } else { "," };
            for (bound, n) in BUCKETS.iter().zip(&h.cumulative) {
                let _ = writeln!(out, "traft_{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "traft_{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
            let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
            let _ = writeln!(out, "traft_{name}_sum{braces} {}", h.sum_seconds);
            let _ = writeln!(out, "traft_{name}_count{braces} {}", h.count);
        }
    };
    histogram(
        "wal_fsync_duration_seconds",
        "One fdatasync of the write-ahead log (a group of writes).",
        &[(String::new(), timings.wal_fsync.snapshot())],
    );
    histogram(
        "snapshot_save_duration_seconds",
        "Encoding, writing and syncing one snapshot file.",
        &[(String::new(), timings.snapshot_save.snapshot())],
    );
    let round_trips: Vec<(String, HistogramSnapshot)> =
        timings.forward_round_trips().into_iter().map(|(id, h)| (format!("peer=\"{id}\""), h)).collect();
    histogram(
        "forward_round_trip_seconds",
        "From sending a forward to a peer to its reply (the peer's fsync included).",
        &round_trips,
    );
    out
}
