//! A process-level nemesis, in the manner of Jepsen: three real `traftctl
//! node` processes on loopback, every member-to-member connection through
//! this test's fault proxy (`--dial-via`), clients running set / get / incr /
//! del on a rotating set of keys while the nemesis kills (SIGKILL), pauses
//! (SIGSTOP / SIGCONT), restarts and partitions members and makes links
//! lossy. Snapshots are taken every few hundred records, so members snapshot,
//! compact and install each other's snapshots during the run. The history is
//! checked with the project's linearizability checker; a request whose answer
//! never came counts as "may have happened".
//!
//! The run in CI is short. The long one:
//! `TRAFT_NEMESIS_SECS=300 cargo test --release --test nemesis -- --ignored --nocapture`.
//! The seed (`TRAFT_NEMESIS_SEED`, printed on failure) drives the nemesis's
//! and the clients' random draws; which member leads and when answers come
//! depend on the processes' timing, so a run does not repeat exactly, and a
//! failure is chased by running its seed a few times.

mod common;
#[path = "sim/linearizability.rs"]
mod linearizability;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linearizability::{CheckResult, DEFAULT_STEP_BUDGET, Input, Operation, Output, Value};
use tonic::transport::{Channel, Endpoint};
use traftctl::chaos::{Chaos, parse_all};
use traftctl::pb::t_raft_admin_client::TRaftAdminClient;
use traftctl::pb::t_raft_client::TRaftClient;
use traftctl::pb::{self, Cmd, ErrorKind};

use common::free_ports;

const BIN: &str = env!("CARGO_BIN_EXE_traftctl");
const MEMBERS: i64 = 3;
const CLIENTS: u64 = 5;
/// A client gives up on a request after this long: its outcome is unknown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// After the faults end, the cluster must serve again within this.
const RECOVERY_BOUND: Duration = Duration::from_secs(20);

/// A seeded generator (SplitMix64), so a seed repeats the run's choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from + 1))
    }
}

/// One member's process. Dropping it kills the process.
struct Member {
    id: i64,
    addr: String,
    args: Vec<String>,
    stderr_path: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Member {
    fn spawn(&mut self) {
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&self.stderr_path).unwrap();
        let child = Command::new(BIN)
            .args(&self.args)
            .env_remove("TRAFTCTL_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn traftctl node");
        self.child = Some(child);
        self.paused = false;
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    fn signal(&mut self, signal: &str) {
        let Some(child) = &self.child else { return };
        let status = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill {signal} {}", child.id());
        self.paused = signal == "-STOP";
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn start_members(dir: &Path, chaos: &Chaos) -> BTreeMap<i64, Member> {
    let ports = free_ports(MEMBERS as usize);
    let addr = |id: i64| format!("127.0.0.1:{}", ports[(id - 1) as usize]);
    let peers: Vec<String> = (1..=MEMBERS).map(|id| format!("{id}={}", addr(id))).collect();
    let mut members = BTreeMap::new();
    for id in 1..=MEMBERS {
        let mut args: Vec<String> = [
            "node",
            "--id",
            &id.to_string(),
            "--listen",
            &addr(id),
            "--peers",
            &peers.join(","),
            "--data-dir",
            &dir.join(format!("node-{id}")).display().to_string(),
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
            // Snapshots and compaction every few hundred records, so they
            // happen many times during the run, faults and all.
            "--snapshot-every",
            "300",
            "--compact-retain",
            "100",
            "-v",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for to in (1..=MEMBERS).filter(|&to| to != id) {
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let listen = chaos.add_link(Some((id, to)), any, addr(to)).await.unwrap();
            args.extend(["--dial-via".to_string(), format!("{to}={listen}")]);
        }
        let stderr_path = dir.join(format!("node-{id}.stderr"));
        let mut member = Member { id, addr: addr(id), args, stderr_path, child: None, paused: false };
        member.spawn();
        members.insert(id, member);
    }
    members
}

async fn channel(addr: &str) -> Option<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).ok()?.timeout(REQUEST_TIMEOUT);
    tokio::time::timeout(Duration::from_millis(500), endpoint.connect()).await.ok()?.ok()
}

async fn role(addr: &str) -> Option<String> {
    let mut admin = TRaftAdminClient::new(channel(addr).await?);
    let reply = tokio::time::timeout(Duration::from_millis(500), admin.status(pb::StatusReq {})).await.ok()?.ok()?;
    Some(reply.into_inner().role)
}

/// The history, shared by the clients, with times in nanoseconds since the
/// run began (one process's monotonic clock, so real-time order holds).
struct History {
    start: Instant,
    ops: Mutex<Vec<Operation>>,
    next_client: AtomicU64,
    next_value: AtomicU64,
}

impl History {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    unknown: AtomicU64,
    refused: AtomicU64,
}

enum Outcome {
    Done(Output),
    /// Certainly not applied: it never reached a member that could apply it.
    NotApplied,
    Unknown,
}

/// One client: a single request at a time, to the member it believes leads.
struct Client {
    history_id: u64,
    addrs: Vec<String>,
    target: usize,
    channels: BTreeMap<usize, Channel>,
    rng: Rng,
}

impl Client {
    async fn channel(&mut self) -> Option<Channel> {
        if let Some(c) = self.channels.get(&self.target) {
            return Some(c.clone());
        }
        let c = channel(&self.addrs[self.target]).await?;
        self.channels.insert(self.target, c.clone());
        Some(c)
    }

    /// The connection to the target failed: drop it and try another member.
    fn failed(&mut self) {
        self.channels.remove(&self.target);
        self.redirect("");
    }

    /// To the member `hint` names (a leader's address), or another one.
    fn redirect(&mut self, hint: &str) {
        self.target = match self.addrs.iter().position(|a| a == hint) {
            Some(i) => i,
            None => (self.target + 1 + self.rng.below(self.addrs.len() as u64 - 1) as usize) % self.addrs.len(),
        };
    }

    async fn run(&mut self, input: &Input, key: &str) -> Outcome {
        // Now and then a request goes to any member, as a client spreading
        // its load over the endpoints would send it: a member that must not
        // answer it has to say who leads.
        if self.rng.below(3) == 0 {
            self.target = self.rng.below(self.addrs.len() as u64) as usize;
        }
        let Some(ch) = self.channel().await else {
            // Not connected, so nothing was sent.
            self.failed();
            return Outcome::NotApplied;
        };
        if let Input::Get = input {
            let req = pb::GetReq { key: key.into(), consistency: pb::ReadConsistency::Linearizable as i32 };
            return match TRaftAdminClient::new(ch).get(req).await {
                Ok(r) if r.get_ref().ok => {
                    let r = r.into_inner();
                    let value = r.value.and_then(|c| c.value).map(|v| match v {
                        pb::cmd::Value::Vi64(i) => Value::Int(i),
                        other => Value::Str(format!("{other:?}")),
                    });
                    Outcome::Done(Output::Get(if r.found { value } else { None }))
                }
                Ok(r) => {
                    self.redirect(&r.get_ref().other_leader_addr);
                    Outcome::NotApplied
                }
                Err(_) => {
                    self.failed();
                    Outcome::NotApplied
                }
            };
        }
        let cmd = match input {
            Input::Set(Value::Int(v)) => Cmd::set_i64(key, *v),
            Input::Set(Value::Str(s)) => Cmd::set_str(key, s.clone()),
            Input::Del => Cmd::del(key),
            Input::Incr(d) => Cmd::incr(key, *d),
            Input::Get => unreachable!(),
        };
        match TRaftClient::new(ch).propose(cmd).await {
            Ok(r) => {
                let r = r.into_inner();
                let kind = ErrorKind::try_from(r.kind).unwrap_or(ErrorKind::None);
                match (r.ok, kind, input) {
                    (true, _, Input::Incr(_)) => Outcome::Done(Output::Incr(r.has_value.then_some(r.value))),
                    (true, _, _) => Outcome::Done(Output::Done),
                    (false, ErrorKind::NotAnInteger, Input::Incr(_)) => Outcome::Done(Output::IncrNotInteger),
                    (false, ErrorKind::NotLeader | ErrorKind::NoLeader, _) => {
                        self.redirect(&r.other_leader_addr);
                        Outcome::NotApplied
                    }
                    _ => {
                        self.redirect("");
                        Outcome::Unknown
                    }
                }
            }
            // The request may have reached the leader before the connection
            // broke or the deadline passed.
            Err(_) => {
                self.failed();
                Outcome::Unknown
            }
        }
    }
}

/// Keys rotate: every few seconds the clients move on to a fresh handful, so
/// each key's history stays short enough to check exhaustively.
fn key_for(rng: &mut Rng, elapsed: Duration) -> String {
    format!("k{}", elapsed.as_secs() / 4 * 10 + rng.below(4))
}

fn choose(rng: &mut Rng, history: &History) -> Input {
    match rng.below(100) {
        0..=34 => Input::Set(Value::Int(history.next_value.fetch_add(1, Ordering::Relaxed) as i64)),
        35..=54 => Input::Incr(1 + rng.below(3) as i64),
        55..=64 => Input::Del,
        _ => Input::Get,
    }
}

async fn client_loop(mut client: Client, history: Arc<History>, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let key = key_for(&mut client.rng, history.start.elapsed());
        let input = choose(&mut client.rng, &history);
        let call = history.now();
        let outcome = client.run(&input, &key).await;
        let (ret, output) = match outcome {
            Outcome::Done(output) => (Some(history.now()), Some(output)),
            Outcome::NotApplied => {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            Outcome::Unknown => {
                tally.unknown.fetch_add(1, Ordering::Relaxed);
                if matches!(input, Input::Get) {
                    continue;
                }
                (None, None)
            }
        };
        if output.is_some() {
            tally.ok.fetch_add(1, Ordering::Relaxed);
        }
        let op = Operation { client: client.history_id, key, input, call, ret, output };
        history.ops.lock().unwrap().push(op);
        if ret.is_none() {
            // The write may still take effect after this client's next
            // operation, so from here on the client is another one.
            client.history_id = history.next_client.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn leader(members: &BTreeMap<i64, Member>) -> Option<i64> {
    for m in members.values().filter(|m| m.child.is_some() && !m.paused) {
        if role(&m.addr).await.as_deref() == Some("leader") {
            return Some(m.id);
        }
    }
    None
}

#[derive(Default, Debug)]
struct Faults {
    kills: u32,
    pauses: u32,
    partitions: u32,
    lossy_links: u32,
}

/// Runs one fault at a time, each followed by a calm spell, until `until`.
async fn nemesis(members: &mut BTreeMap<i64, Member>, chaos: &Chaos, rng: &mut Rng, until: Instant) -> Faults {
    let mut faults = Faults::default();
    while Instant::now() < until {
        tokio::time::sleep(rng.millis(500, 1200)).await;
        let victim = match leader(members).await {
            Some(l) if rng.below(2) == 0 => l,
            _ => 1 + rng.below(MEMBERS as u64) as i64,
        };
        let hold = rng.millis(700, 2000);
        match rng.below(4) {
            0 => {
                faults.kills += 1;
                members.get_mut(&victim).unwrap().kill9();
                tokio::time::sleep(hold).await;
                members.get_mut(&victim).unwrap().spawn();
            }
            1 => {
                faults.pauses += 1;
                members.get_mut(&victim).unwrap().signal("-STOP");
                tokio::time::sleep(hold).await;
                members.get_mut(&victim).unwrap().signal("-CONT");
            }
            2 => {
                faults.partitions += 1;
                let others: Vec<String> = (1..=MEMBERS).filter(|&i| i != victim).map(|i| i.to_string()).collect();
                chaos.set(parse_all(&[format!("partition={victim}|{}", others.join(","))]).unwrap()).unwrap();
                tokio::time::sleep(hold).await;
                chaos.clear();
            }
            _ => {
                faults.lossy_links += 1;
                chaos.set(parse_all(&["drop=2%,reset-every=300ms,delay=1ms,jitter=3ms"]).unwrap()).unwrap();
                tokio::time::sleep(hold).await;
                chaos.clear();
            }
        }
    }
    faults
}

fn seed() -> u64 {
    match std::env::var("TRAFT_NEMESIS_SEED") {
        Ok(s) => s.parse().expect("TRAFT_NEMESIS_SEED is a number"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    }
}

async fn run(fault_time: Duration) {
    let seed = seed();
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let chaos = Chaos::new(seed);
    let mut members = start_members(dir.path(), &chaos).await;
    let addrs: Vec<String> = members.values().map(|m| m.addr.clone()).collect();
    let ready = Instant::now();
    while leader(&members).await.is_none() {
        assert!(ready.elapsed() < RECOVERY_BOUND, "seed {seed}: no leader at start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let history = Arc::new(History {
        start: Instant::now(),
        ops: Mutex::default(),
        next_client: AtomicU64::new(CLIENTS),
        next_value: AtomicU64::new(1),
    });
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = Client {
                history_id: c,
                addrs: addrs.clone(),
                target: c as usize % addrs.len(),
                channels: BTreeMap::new(),
                rng: Rng(seed ^ (c + 1).wrapping_mul(0x2545_F491_4F6C_DD1D)),
            };
            tokio::spawn(client_loop(client, history.clone(), tally.clone(), stop.clone()))
        })
        .collect();

    let faults = nemesis(&mut members, &chaos, &mut rng, Instant::now() + fault_time).await;

    // Heal everything, then the cluster must serve again: the clients keep
    // going until a few requests are answered after the faults ended.
    chaos.clear();
    for m in members.values_mut() {
        if m.child.is_none() {
            m.spawn();
        } else if m.paused {
            m.signal("-CONT");
        }
    }
    let healed = Instant::now();
    let ok_at_heal = tally.ok.load(Ordering::Relaxed);
    while tally.ok.load(Ordering::Relaxed) < ok_at_heal + 20 {
        if healed.elapsed() >= RECOVERY_BOUND {
            let tails: Vec<String> =
                members.values().map(|m| format!("member {}:\n{}", m.id, m.stderr_tail())).collect();
            panic!(
                "seed {seed}: the healed cluster served no requests within {RECOVERY_BOUND:?}\n{}",
                tails.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }

    // Every member snapshotted during the run.
    let mut snapshot_prefixes = Vec::new();
    for m in members.values() {
        let mut admin = TRaftAdminClient::new(channel(&m.addr).await.expect("a healed member answers"));
        let status = admin.status(pb::StatusReq {}).await.expect("status").into_inner();
        snapshot_prefixes.push(status.snapshot_prefix);
    }

    let ops = std::mem::take(&mut *history.ops.lock().unwrap());
    let checked = ops.len();
    let verdict = tokio::task::spawn_blocking(move || linearizability::check(&ops, DEFAULT_STEP_BUDGET)).await.unwrap();
    println!(
        "nemesis seed {seed}: {:.1} s of faults ({faults:?}), {} operations in the history ({} answered, {} \
         unknown, {} refused and left out), snapshot prefixes {snapshot_prefixes:?}: {verdict}",
        fault_time.as_secs_f64(),
        checked,
        tally.ok.load(Ordering::Relaxed),
        tally.unknown.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
    );
    assert!(matches!(verdict, CheckResult::Ok), "seed {seed} (rerun with TRAFT_NEMESIS_SEED={seed}): {verdict}");
    assert!(
        snapshot_prefixes.iter().all(|&p| p > 0),
        "seed {seed}: every member should have snapshotted during the run: {snapshot_prefixes:?}"
    );
    assert!(tally.ok.load(Ordering::Relaxed) >= 100, "seed {seed}: too few answered operations to mean anything");
    drop(members);
}

/// The CI run: about fifteen seconds of faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_operations_stay_linearizable_under_kills_pauses_and_partitions() {
    run(Duration::from_secs(15)).await;
}

/// The long run, `TRAFT_NEMESIS_SECS` seconds of faults (300 unless given).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long; run with --ignored"]
async fn nemesis_long_run() {
    let secs = std::env::var("TRAFT_NEMESIS_SECS").map_or(300, |s| s.parse().expect("TRAFT_NEMESIS_SECS is seconds"));
    run(Duration::from_secs(secs)).await;
}
