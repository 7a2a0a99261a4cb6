//! `traftctl bench`: concurrent clients against the leader; throughput,
//! latency percentiles, and how many records committed out of order.
//!
//! The clients share `--conns` connections, as etcd's `benchmark` tool does,
//! so that its figures compare with the side-by-side client
//! (`bench/side-by-side.sh`). The out-of-order share is the leader's own
//! count (`Status.CommittedOutOfOrder`) over the records it committed during
//! the run, read before and after; it is reported as unavailable when
//! leadership changed in between.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value as Json, json};
use tonic::transport::Channel;

use super::client::{Client, ClientOpts, LeaderReply, Verdict, admin, fmt_duration, parse_duration, raft, verdict};
use super::output::{self, Format};
use super::{CliError, CliResult, exit};
use traftctl::pb::{self, Cmd};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Runs --clients concurrent clients against the leader, each sending one request at a time: a
linearizable `get` with probability --read-ratio, otherwise `set` of a --value-size string on one of
--keys keys. Stops after --ops requests in total (default 1000) or after --duration. --timeout bounds
each request. A progress bar is drawn on stderr when it is a terminal.

The clients share --conns connections to the leader, round robin (etcd's benchmark tool does the
same).

Reports throughput, latency percentiles (p50, p90, p99, p99.9, max), errors by kind, and the share of
the records the leader committed during the run while a lower seq was still uncommitted.")]
pub struct Args {
    /// Concurrent clients.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub clients: u64,
    /// Connections the clients share (HTTP/2 carries many requests at once on each).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub conns: u64,
    /// Total requests across all clients [default: 1000, unless --duration is given].
    #[arg(long, conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: Option<u64>,
    /// Run for this long instead of a number of requests (e.g. 10s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
    /// Spread requests over this many keys (`bench-0` ...).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// Bytes in each written value.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub value_size: u64,
    /// The share of requests that are reads, from 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = parse_ratio)]
    pub read_ratio: f64,
}

const DEFAULT_OPS: u64 = 1000;

/// Latencies are recorded in microseconds, up to a minute.
const LATENCY_MAX_US: u64 = 60_000_000;

fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("`{s}` is not a ratio between 0 and 1")),
    }
}

/// When to stop issuing requests.
enum Budget {
    Ops(AtomicU64),
    Until(Instant),
}

impl Budget {
    fn claim(&self) -> bool {
        match self {
            Budget::Ops(left) => left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok(),
            Budget::Until(end) => Instant::now() < *end,
        }
    }
}

/// One client's tally, merged at the end.
struct Tally {
    latency_us: Histogram<u64>,
    writes: u64,
    reads: u64,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Self {
        Tally {
            latency_us: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds"),
            writes: 0,
            reads: 0,
            errors: BTreeMap::new(),
        }
    }

    fn error(&mut self, why: String) {
        // Keep the report short when every request fails differently.
        let key = if self.errors.len() < 10 || self.errors.contains_key(&why) { why } else { "other errors".into() };
        *self.errors.entry(key).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        // Both histograms share the same bounds, so adding cannot fail.
        self.latency_us.add(&other.latency_us).expect("histograms with equal bounds");
        self.writes += other.writes;
        self.reads += other.reads;
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
    }
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

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub async fn run(opts: &ClientOpts, args: Args) -> CliResult<u8> {
    let client = Client::new(opts);
    let (leader_addr, leader) = client.find_leader().await?;
    let before = client.renewed().status_of(&leader_addr).await.ok();
    let mut conns = Vec::new();
    for _ in 0..args.conns {
        conns.push(client.renewed().channel(&leader_addr).await.map_err(|f| f.into_error(client.timeout))?);
    }

    let budget = Arc::new(match args.duration {
        Some(d) => Budget::Until(Instant::now() + d),
        None => Budget::Ops(AtomicU64::new(args.ops.unwrap_or(DEFAULT_OPS))),
    });
    let progress = progress_bar(&args);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.clients {
        let worker = Worker {
            client: client.clone(),
            addr: leader_addr.clone(),
            channel: Some(conns[i as usize % conns.len()].clone()),
            budget: budget.clone(),
            progress: progress.clone(),
            keys: args.keys,
            read_ratio: args.read_ratio,
            value: "v".repeat(args.value_size as usize),
            rng: Rng(i ^ start.elapsed().as_nanos() as u64 ^ u64::from(std::process::id()) << 32),
        };
        tasks.spawn(worker.run());
    }
    let mut total = Tally::new();
    while let Some(joined) = tasks.join_next().await {
        total.merge(joined.map_err(|e| CliError::msg(exit::ERROR, format!("a bench client failed: {e}")))?);
    }
    let elapsed = start.elapsed();
    if let Some(p) = &progress {
        p.finish_and_clear();
    }
    let after = client.renewed().status_of(&leader_addr).await.ok();
    let ooo = out_of_order(before.as_ref(), after.as_ref(), leader.id);
    render(opts.output, &args, &leader_addr, leader.id, &total, elapsed, &ooo)?;
    let done = total.writes + total.reads;
    if done == 0 {
        let why = total.errors.keys().next().cloned().unwrap_or_else(|| "no request was sent".into());
        return Err(CliError::msg(exit::ERROR, format!("every request failed; the first error: {why}")));
    }
    Ok(exit::OK)
}

/// The share of the records the leader committed during the run that it
/// committed while a lower seq was still uncommitted.
fn out_of_order(
    before: Option<&pb::StatusReply>,
    after: Option<&pb::StatusReply>,
    leader: i64,
) -> Result<OutOfOrder, String> {
    let (Some(before), Some(after)) = (before, after) else {
        return Err("the leader's status could not be read before and after the run".into());
    };
    let ballot = |s: &pb::StatusReply| s.status.as_ref().and_then(|st| st.committer);
    if before.id != leader || after.id != leader || ballot(before) != ballot(after) || after.leader != before.leader {
        return Err("leadership changed during the run".into());
    }
    let committed =
        |s: &pb::StatusReply| s.status.as_ref().and_then(|st| st.committed.as_ref()).map_or(0, |c| c.count_ones());
    let records = committed(after) - committed(before);
    if records <= 0 {
        return Err("the run committed no records".into());
    }
    let out_of_order = (after.committed_out_of_order - before.committed_out_of_order).clamp(0, records);
    Ok(OutOfOrder { records: records as usize, out_of_order: out_of_order as usize })
}

fn progress_bar(args: &Args) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match args.duration {
        Some(_) => indicatif::ProgressBar::new_spinner(),
        None => indicatif::ProgressBar::new(args.ops.unwrap_or(DEFAULT_OPS)),
    };
    let template = if args.duration.is_some() {
        "{spinner} {elapsed} {pos} requests ({per_sec})"
    } else {
        "{bar:40} {pos}/{len} requests ({per_sec}, eta {eta})"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    Some(bar)
}

struct Worker {
    client: Client,
    addr: String,
    /// A shared connection to the leader; after a redirect, the worker's own
    /// to the new one.
    channel: Option<Channel>,
    budget: Arc<Budget>,
    progress: Option<indicatif::ProgressBar>,
    keys: u64,
    read_ratio: f64,
    value: String,
    rng: Rng,
}

/// What one request came to.
enum Outcome {
    Wrote,
    Read,
    /// Not the leader: retry at this address.
    Redirect(String),
    Failed(String),
}

impl Worker {
    async fn run(mut self) -> Tally {
        let mut tally = Tally::new();
        let mut channel = self.channel.take();
        while self.budget.claim() {
            let key = format!("bench-{}", self.rng.next() % self.keys);
            let read = self.rng.unit() < self.read_ratio;
            let started = Instant::now();
            // One redirect per request: a new leader was just elected.
            let mut outcome = Outcome::Failed(String::new());
            for _ in 0..2 {
                let ch = match &channel {
                    Some(ch) => Ok(ch),
                    None => self.client.renewed().channel(&self.addr).await.map(|ch| &*channel.insert(ch)),
                };
                outcome = match ch {
                    Ok(ch) => self.request(ch.clone(), &key, read).await,
                    Err(f) => Outcome::Failed(f.into_error(self.client.timeout).error.to_string()),
                };
                match &outcome {
                    Outcome::Redirect(addr) => {
                        self.addr = addr.clone();
                        channel = None;
                    }
                    _ => break,
                }
            }
            let latency_us = started.elapsed().as_micros() as u64;
            match outcome {
                Outcome::Wrote => {
                    tally.latency_us.saturating_record(latency_us.max(1));
                    tally.writes += 1;
                }
                Outcome::Read => {
                    tally.latency_us.saturating_record(latency_us.max(1));
                    tally.reads += 1;
                }
                Outcome::Redirect(addr) => tally.error(format!("redirected again, to {addr}")),
                Outcome::Failed(why) => tally.error(why),
            }
            if let Some(p) = &self.progress {
                p.inc(1);
            }
        }
        tally
    }

    async fn request(&self, ch: tonic::transport::Channel, key: &str, read: bool) -> Outcome {
        let timeout = self.client.timeout;
        // A redirect is followed only to an address; a bench tallies the rest.
        fn refused<R: LeaderReply>(reply: R) -> Outcome {
            match verdict(reply) {
                Verdict::Redirect { addr, .. } if !addr.is_empty() => Outcome::Redirect(addr),
                Verdict::Redirect { .. } | Verdict::NoLeader => Outcome::Failed("no leader".into()),
                Verdict::Done(r) | Verdict::Refused(r) => Outcome::Failed(r.err().to_string()),
            }
        }
        if read {
            let req = pb::GetReq { key: key.to_string(), consistency: pb::ReadConsistency::Linearizable as i32 };
            match tokio::time::timeout(timeout, admin(ch).get(req)).await {
                Err(_) => Outcome::Failed(format!("timed out after {}", fmt_duration(timeout))),
                Ok(Err(status)) => Outcome::Failed(status.message().to_string()),
                Ok(Ok(r)) => {
                    let r = r.into_inner();
                    if r.ok { Outcome::Read } else { refused(r) }
                }
            }
        } else {
            let cmd = Cmd::set_str(key, self.value.clone());
            match tokio::time::timeout(timeout, raft(ch).propose(cmd)).await {
                Err(_) => Outcome::Failed(format!("timed out after {}", fmt_duration(timeout))),
                Ok(Err(status)) => Outcome::Failed(status.message().to_string()),
                Ok(Ok(r)) => {
                    let r = r.into_inner();
                    if r.ok { Outcome::Wrote } else { refused(r) }
                }
            }
        }
    }
}

/// The share of the bench's records that committed out of order.
struct OutOfOrder {
    records: usize,
    out_of_order: usize,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn render(
    format: Format,
    args: &Args,
    addr: &str,
    leader_id: i64,
    t: &Tally,
    elapsed: Duration,
    ooo: &Result<OutOfOrder, String>,
) -> std::io::Result<()> {
    let done = t.writes + t.reads;
    let throughput = done as f64 / elapsed.as_secs_f64().max(1e-9);
    let h = &t.latency_us;
    let percentiles = [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)];
    let errors: u64 = t.errors.values().sum();
    if format == Format::Json {
        let mut latency: serde_json::Map<String, Json> = percentiles
            .iter()
            .map(|(name, q)| (name.replace('.', "_"), json!(ms(h.value_at_quantile(q / 100.0)))))
            .collect();
        latency.insert("max".into(), json!(ms(h.max())));
        let (ooo_json, ooo_why) = match ooo {
            Ok(o) => (
                json!({ "records": o.records, "out_of_order": o.out_of_order, "share": o.out_of_order as f64 / o.records as f64 }),
                Json::Null,
            ),
            Err(why) => (Json::Null, json!(why)),
        };
        return output::print_json(&json!({
            "leader": { "id": leader_id, "address": addr },
            "clients": args.clients,
            "ops": done,
            "writes": t.writes,
            "reads": t.reads,
            "errors": errors,
            "error_kinds": t.errors,
            "elapsed_s": elapsed.as_secs_f64(),
            "throughput_ops_per_s": throughput,
            "latency_ms": latency,
            "committed_out_of_order": ooo_json,
            "committed_out_of_order_unavailable": ooo_why,
        }));
    }
    let mut fields = vec![
        ("leader", format!("node {leader_id} at {addr}")),
        ("clients", args.clients.to_string()),
        ("requests", format!("{done} ({} writes, {} reads)", t.writes, t.reads)),
        ("errors", errors.to_string()),
        ("elapsed", format!("{:.3}s", elapsed.as_secs_f64())),
        ("throughput", format!("{throughput:.1} requests/s")),
    ];
    if done > 0 {
        for (name, q) in [("latency p50", 50.0), ("latency p90", 90.0), ("latency p99", 99.0), ("latency p99.9", 99.9)]
        {
            fields.push((name, format!("{:.3}ms", ms(h.value_at_quantile(q / 100.0)))));
        }
        fields.push(("latency max", format!("{:.3}ms", ms(h.max()))));
    }
    fields.push((
        "committed out of order",
        match ooo {
            Ok(o) => format!(
                "{:.1}% ({} of {} records)",
                100.0 * o.out_of_order as f64 / o.records as f64,
                o.out_of_order,
                o.records
            ),
            Err(why) => format!("unavailable: {why}"),
        },
    ));
    output::print_fields(format, fields)?;
    if format == Format::Table && errors > 0 {
        output::print("Errors:")?;
        let rows = t.errors.iter().map(|(k, n)| vec![n.to_string(), k.clone()]).collect();
        output::print_rows(format, ["count", "error"], rows)?;
    }
    Ok(())
}
