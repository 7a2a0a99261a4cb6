//! The client of the side-by-side benchmark (`bench/side-by-side.sh`): one
//! closed-loop load generator that speaks both traft's API and etcd's v3 KV
//! API, so the two systems are measured by the same code, the same gRPC
//! stack and the same connection layout.
//!
//! Each of `--clients` tasks sends one request at a time: a write (traft
//! `Propose(set)`, etcd `Put`) or, with probability `--read-ratio`, a
//! linearizable read (traft `Get` served on the leader's lease, etcd's
//! default `Range`, which does a ReadIndex round). The tasks share
//! `--connections` HTTP/2 connections round-robin (etcd's own benchmark tool
//! defaults to one, as `traftctl bench` uses one).
//!
//! Prints one JSON object: throughput, latency percentiles in microseconds,
//! errors, and the CPU this process used (user + system), so the script can
//! report client CPU per operation next to the cluster's.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;
use tonic::transport::{Channel, Endpoint};

use traftctl::pb::t_raft_admin_client::TRaftAdminClient;
use traftctl::pb::t_raft_client::TRaftClient;
use traftctl::pb::{Cmd, GetReq, ReadConsistency};

mod etcd {
    tonic::include_proto!("etcdserverpb");
}

#[derive(Clone, Copy, PartialEq)]
enum System {
    Traft,
    Etcd,
}

struct Args {
    system: System,
    endpoint: String,
    clients: usize,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    value_size: usize,
    keys: u64,
    read_ratio: f64,
}

const USAGE: &str = "usage: side_by_side --system traft|etcd --endpoint HOST:PORT [--clients N] [--connections N] \
[--duration 10s] [--warmup 1s] [--value-size 256] [--keys 10000] [--read-ratio 0]
  --endpoint: the leader's client address (traft) or any member (etcd; give the leader to avoid a forward)";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        system: System::Traft,
        endpoint: String::new(),
        clients: 1,
        connections: 1,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        value_size: 256,
        keys: 10_000,
        read_ratio: 0.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        let number = |s: String| s.parse::<u64>().map_err(|_| format!("{flag}: `{s}` is not a number"));
        match flag.as_str() {
            "--system" => {
                args.system = match value()?.as_str() {
                    "traft" => System::Traft,
                    "etcd" => System::Etcd,
                    other => return Err(format!("--system: `{other}` is neither traft nor etcd")),
                }
            }
            "--endpoint" => args.endpoint = value()?,
            "--clients" => args.clients = number(value()?)?.max(1) as usize,
            "--connections" => args.connections = number(value()?)?.max(1) as usize,
            "--duration" => args.duration = parse_duration(&value()?)?,
            "--warmup" => args.warmup = parse_duration(&value()?)?,
            "--value-size" => args.value_size = number(value()?)? as usize,
            "--keys" => args.keys = number(value()?)?.max(1),
            "--read-ratio" => {
                let s = value()?;
                args.read_ratio = s
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("--read-ratio: `{s}` is not between 0 and 1"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if args.endpoint.is_empty() {
        return Err(format!("--endpoint is required\n{USAGE}"));
    }
    Ok(args)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration like 500ms or 10s");
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().map(Duration::from_millis).map_err(|_| bad());
    }
    s.strip_suffix('s').ok_or_else(bad)?.parse().map(Duration::from_secs).map_err(|_| bad())
}

/// This process's user + system CPU time, from /proc (Linux).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces; the fields after it do not.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// splitmix64: the workload needs variety, not cryptographic randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

enum Conn {
    Traft { raft: TRaftClient<Channel>, admin: TRaftAdminClient<Channel> },
    Etcd(etcd::kv_client::KvClient<Channel>),
}

impl Conn {
    async fn request(&mut self, key: String, value: &str, read: bool) -> Result<(), String> {
        match self {
            Conn::Traft { raft, admin } if read => {
                let req = GetReq { key, consistency: ReadConsistency::Linearizable as i32 };
                let r = admin.get(req).await.map_err(|s| s.message().to_string())?.into_inner();
                if r.ok { Ok(()) } else { Err(r.err) }
            }
            Conn::Traft { raft, .. } => {
                let r = raft.propose(Cmd::set_str(key, value)).await.map_err(|s| s.message().to_string())?;
                let r = r.into_inner();
                if r.ok { Ok(()) } else { Err(if r.err.is_empty() { "not committed".into() } else { r.err }) }
            }
            Conn::Etcd(kv) if read => {
                let req = etcd::RangeRequest { key: key.into_bytes(), ..Default::default() };
                kv.range(req).await.map(|_| ()).map_err(|s| s.message().to_string())
            }
            Conn::Etcd(kv) => {
                let req =
                    etcd::PutRequest { key: key.into_bytes(), value: value.as_bytes().to_vec(), ..Default::default() };
                kv.put(req).await.map(|_| ()).map_err(|s| s.message().to_string())
            }
        }
    }
}

struct Tally {
    latency_us: Histogram<u64>,
    ops: u64,
    /// Including the warm-up: what the CPU figures are divided by.
    ops_all: u64,
    errors: u64,
    first_error: Option<String>,
}

async fn worker(mut conn: Conn, args: std::sync::Arc<Args>, seed: u64, start: Instant) -> Tally {
    let mut tally = Tally {
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
        ops: 0,
        ops_all: 0,
        errors: 0,
        first_error: None,
    };
    let value = "v".repeat(args.value_size);
    let mut rng = Rng(seed);
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let key = format!("bench-{}", rng.next() % args.keys);
        let unit = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let read = unit < args.read_ratio;
        let outcome = conn.request(key, &value, read).await;
        tally.ops_all += u64::from(outcome.is_ok());
        if sent < measure_from {
            continue;
        }
        match outcome {
            Ok(()) => {
                tally.ops += 1;
                tally.latency_us.saturating_record(sent.elapsed().as_micros() as u64);
            }
            Err(why) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(why);
            }
        }
    }
    tally
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => std::sync::Arc::new(a),
        Err(why) => {
            eprintln!("{why}");
            std::process::exit(2);
        }
    };
    let uri = format!("http://{}", args.endpoint);
    let mut channels = Vec::new();
    for _ in 0..args.connections {
        let channel = match Endpoint::from_shared(uri.clone()) {
            Ok(ep) => ep.tcp_nodelay(true).connect().await,
            Err(e) => {
                eprintln!("--endpoint {}: {e}", args.endpoint);
                std::process::exit(2);
            }
        };
        match channel {
            Ok(c) => channels.push(c),
            Err(e) => {
                eprintln!("cannot connect to {}: {e}", args.endpoint);
                std::process::exit(3);
            }
        }
    }
    let start = Instant::now();
    let cpu_before = cpu_time();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.clients {
        let channel = channels[i % channels.len()].clone();
        let conn = match args.system {
            System::Traft => {
                Conn::Traft { raft: TRaftClient::new(channel.clone()), admin: TRaftAdminClient::new(channel) }
            }
            System::Etcd => Conn::Etcd(etcd::kv_client::KvClient::new(channel)),
        };
        tasks.spawn(worker(conn, args.clone(), (i as u64 + 1) * 0x1234_5678_9abc, start));
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let (mut ops, mut ops_all, mut errors, mut first_error) = (0, 0, 0, None);
    while let Some(joined) = tasks.join_next().await {
        let t = joined.expect("a worker panicked");
        total.add(&t.latency_us).expect("equal bounds");
        ops += t.ops;
        ops_all += t.ops_all;
        errors += t.errors;
        first_error = first_error.or(t.first_error);
    }
    // Over the warm-up too, so it is divided by every op, warm-up included.
    let cpu = cpu_time().saturating_sub(cpu_before);
    let secs = args.duration.as_secs_f64();
    let q = |p: f64| total.value_at_quantile(p);
    let report = json!({
        "system": if args.system == System::Traft { "traft" } else { "etcd" },
        "clients": args.clients,
        "connections": args.connections,
        "read_ratio": args.read_ratio,
        "seconds": secs,
        "ops": ops,
        "ops_all": ops_all,
        "ops_per_s": ops as f64 / secs,
        "p50_us": q(0.50),
        "p99_us": q(0.99),
        "p999_us": q(0.999),
        "max_us": total.max(),
        "errors": errors,
        "first_error": first_error,
        "client_cpu_us_per_op": if ops_all > 0 { cpu.as_micros() as f64 / ops_all as f64 } else { 0.0 },
    });
    println!("{report}");
    if ops == 0 {
        std::process::exit(1);
    }
}
