//! Process-level tests: real `traftctl` processes on loopback, killed with
//! SIGKILL, restarted from their data directories. Every wait is bounded and
//! every process is killed when its guard drops, whatever the outcome.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use traftctl::pb::t_raft_admin_client::TRaftAdminClient;
use traftctl::pb::t_raft_client::TRaftClient;
use traftctl::pb::{self, Cmd};

use common::{free_consecutive, free_ports};

const BIN: &str = env!("CARGO_BIN_EXE_traftctl");

/// The nodes' lease is 1 s; an election needs the old leader's lease to end
/// plus jitter, retries included. This is the deadline the tests allow.
const ELECTION_BOUND: Duration = Duration::from_secs(10);

struct Node {
    addr: String,
    args: Vec<String>,
    child: Option<Child>,
    stderr_path: PathBuf,
}

impl Node {
    fn spawn(&mut self) {
        let stderr = std::fs::File::create(&self.stderr_path).unwrap();
        let child =
            Command::new(BIN).args(&self.args).stdout(Stdio::null()).stderr(stderr).spawn().expect("spawn traftctl");
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// Owns the processes: dropping it kills them all.
struct Cluster {
    nodes: BTreeMap<i64, Node>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in self.nodes.values_mut() {
            n.kill9();
        }
    }
}

impl Cluster {
    fn start(n: i64) -> Cluster {
        Cluster::start_with(n, &[])
    }

    fn start_with(n: i64, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(n as usize);
        let peers: Vec<String> = (1..=n).map(|i| format!("{i}=127.0.0.1:{}", ports[(i - 1) as usize])).collect();
        let mut nodes = BTreeMap::new();
        for i in 1..=n {
            let addr = format!("127.0.0.1:{}", ports[(i - 1) as usize]);
            let data = dir.path().join(format!("node-{i}"));
            let args = vec![
                "node".to_string(),
                "--id".into(),
                i.to_string(),
                "--listen".into(),
                addr.clone(),
                "--peers".into(),
                peers.join(","),
                "--data-dir".into(),
                data.display().to_string(),
                "-v".into(),
            ];
            let args: Vec<String> = args.into_iter().chain(extra.iter().map(|a| a.to_string())).collect();
            let stderr_path = dir.path().join(format!("node-{i}.stderr"));
            let mut node = Node { addr, args, child: None, stderr_path };
            node.spawn();
            nodes.insert(i, node);
        }
        Cluster { nodes, _dir: dir }
    }

    fn data_dir(&self, id: i64) -> PathBuf {
        self._dir.path().join(format!("node-{id}"))
    }
}

async fn admin(addr: &str) -> Option<TRaftAdminClient<tonic::transport::Channel>> {
    let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).ok()?.timeout(Duration::from_secs(2));
    let channel = tokio::time::timeout(Duration::from_secs(2), ep.connect()).await.ok()?.ok()?;
    Some(TRaftAdminClient::new(channel))
}

async fn raft(addr: &str) -> Option<TRaftClient<tonic::transport::Channel>> {
    let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).ok()?.timeout(Duration::from_secs(3));
    let channel = tokio::time::timeout(Duration::from_secs(2), ep.connect()).await.ok()?.ok()?;
    Some(TRaftClient::new(channel))
}

/// Waits for a member among `candidates` that reports itself leader.
async fn wait_leader(cluster: &Cluster, candidates: &[i64], deadline: Duration) -> Option<i64> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        for id in candidates {
            if let Some(mut c) = admin(&cluster.nodes[id].addr).await
                && let Ok(s) = c.status(pb::StatusReq {}).await
                && s.get_ref().role == "leader"
            {
                return Some(*id);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn put(client: &mut TRaftClient<tonic::transport::Channel>, key: &str, value: i64) -> bool {
    match client.propose(Cmd::set_i64(key, value)).await {
        Ok(r) => r.get_ref().ok,
        Err(_) => false,
    }
}

async fn get(addr: &str, key: &str) -> Option<pb::GetReply> {
    let mut c = admin(addr).await?;
    let req = pb::GetReq { key: key.into(), consistency: pb::ReadConsistency::Linearizable as i32 };
    c.get(req).await.ok().map(|r| r.into_inner())
}

fn int_value(reply: &pb::GetReply) -> Option<i64> {
    match reply.value.as_ref()?.value.as_ref()? {
        pb::cmd::Value::Vi64(v) => Some(*v),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_the_leader_keeps_every_acknowledged_write() {
    let mut cluster = Cluster::start(3);
    let ids: Vec<i64> = cluster.nodes.keys().copied().collect();
    let leader = wait_leader(&cluster, &ids, ELECTION_BOUND).await.expect("a first leader");

    // 1,000 writes from 16 concurrent clients; remember what was acknowledged.
    let addr = cluster.nodes[&leader].addr.clone();
    let mut tasks = Vec::new();
    for c in 0..16 {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = raft(&addr).await.expect("connect to the leader");
            let mut acked = Vec::new();
            for i in (c..1000).step_by(16) {
                if put(&mut client, &format!("k{i}"), i).await {
                    acked.push(i);
                }
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert_eq!(acked.len(), 1000, "a healthy cluster acknowledges every write");

    cluster.nodes.get_mut(&leader).unwrap().kill9();
    let survivors: Vec<i64> = ids.iter().copied().filter(|&i| i != leader).collect();
    let killed_at = Instant::now();
    let new_leader = wait_leader(&cluster, &survivors, ELECTION_BOUND).await.expect("a new leader");
    eprintln!("new leader {new_leader} after {:?}", killed_at.elapsed());

    let new_addr = cluster.nodes[&new_leader].addr.clone();
    for i in &acked {
        let reply = get(&new_addr, &format!("k{i}")).await.expect("read from the new leader");
        assert!(reply.ok, "get k{i}: {}", reply.err);
        assert_eq!(int_value(&reply), Some(*i), "acknowledged write k{i} survives");
    }

    // The killed node restarts from its data directory and catches up.
    let mut client = raft(&new_addr).await.unwrap();
    assert!(put(&mut client, "after", 1).await);
    cluster.nodes.get_mut(&leader).unwrap().spawn();
    let restarted = cluster.nodes[&leader].addr.clone();
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(30), "the restarted node catches up");
        if let Some(mut c) = admin(&restarted).await {
            let req = pb::GetReq { key: "after".into(), consistency: pb::ReadConsistency::Serializable as i32 };
            if let Ok(r) = c.get(req).await
                && r.get_ref().found
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Where a segment's entries end and its zero-filled space begins, read with
/// the documented framing (u32 LE length, u32 checksum, payload).
fn wal_data_end(bytes: &[u8]) -> usize {
    let mut off = 0;
    while off + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        off += 8 + len;
    }
    assert!(off > 0 && bytes[off..].iter().all(|&b| b == 0), "entries, then zeros");
    off
}

/// Runs a one-member cluster until `keys` are written, then SIGKILLs it.
async fn single_node_with_keys(keys: usize) -> Cluster {
    let cluster = Cluster::start(1);
    wait_leader(&cluster, &[1], ELECTION_BOUND).await.expect("a single member elects itself");
    let mut client = raft(&cluster.nodes[&1].addr).await.unwrap();
    for i in 0..keys {
        assert!(put(&mut client, &format!("k{i}"), i as i64).await);
    }
    cluster
}

/// A `kB` field of a /proc file such as `smaps_rollup`.
fn proc_kb(text: &str, field: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Transparent huge pages were the one-shot commands' 30-100 ms outliers
/// (docs/performance.md): a fault in one zeroes 2 MiB. A member refuses them
/// for itself, whatever the kernel's mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_under_load_holds_no_transparent_huge_pages() {
    let cluster = single_node_with_keys(3000).await;
    let pid = cluster.nodes[&1].child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    // Linux 5.0 and later report the process's own setting.
    if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "the member did not disable THP for itself: {line}");
    }
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let huge = proc_kb(&rollup, "AnonHugePages:").expect("smaps_rollup names AnonHugePages");
    assert_eq!(huge, 0, "the member's memory is backed by {huge} kB of transparent huge pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_wal_tail_is_zeroed_and_the_node_recovers() {
    let mut cluster = single_node_with_keys(20).await;
    cluster.nodes.get_mut(&1).unwrap().kill9();
    let wal = wal_files(&cluster.data_dir(1)).pop().expect("a WAL segment");
    // A crash in the middle of writing an entry: a header promising bytes
    // that never arrived, where the log's zero-filled space begins.
    let mut bytes = std::fs::read(&wal).unwrap();
    let end = wal_data_end(&bytes);
    bytes[end..end + 10].copy_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
    std::fs::write(&wal, bytes).unwrap();

    cluster.nodes.get_mut(&1).unwrap().spawn();
    wait_leader(&cluster, &[1], ELECTION_BOUND).await.expect("the node restarts");
    let reply = get(&cluster.nodes[&1].addr, "k19").await.expect("read after recovery");
    assert_eq!(int_value(&reply), Some(19));
    let log = cluster.nodes[&1].stderr();
    assert!(log.contains(&wal.display().to_string()), "the warning names the file:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_wal_entry_in_the_middle_stops_the_node_with_its_offset() {
    let mut cluster = single_node_with_keys(20).await;
    cluster.nodes.get_mut(&1).unwrap().kill9();
    let wal = wal_files(&cluster.data_dir(1)).pop().expect("a WAL segment");
    let mut bytes = std::fs::read(&wal).unwrap();
    // The segment is preallocated: the middle of its entries, not of the file.
    let middle = wal_data_end(&bytes) / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&wal, bytes).unwrap();

    let node = cluster.nodes.get_mut(&1).unwrap();
    node.spawn();
    let mut child = node.child.take().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("a node with a corrupt WAL must refuse to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let log = node.stderr();
    assert!(log.contains("corrupt WAL entry at byte offset"), "{log}");
    assert!(log.contains(&wal.display().to_string()), "the error names the file:\n{log}");
}

#[test]
fn a_second_local_cluster_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_consecutive(3);
    let data = dir.path().join("data");
    let mut first = Command::new(BIN)
        .args(["local-cluster", "3", "--base-port", &base.to_string(), "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // Wait for its banner, so it holds the directory.
    let stdout = first.stdout.take().unwrap();
    let mut first = Kill(first);
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.contains("leader is node"))
    });
    let start = Instant::now();
    while !reader.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(30), "the first cluster starts");
        if first.0.try_wait().unwrap().is_some() {
            panic!("the first cluster exited early");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(reader.join().unwrap(), "the first cluster printed its banner");

    // Other ports, same directory.
    let other = free_consecutive(3);
    let second = Command::new(BIN)
        .args(["local-cluster", "3", "--base-port", &other.to_string(), "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("locked") && err.contains("another traftctl"), "{err}");
    drop(first);
}

async fn status(addr: &str) -> Option<pb::StatusReply> {
    let mut c = admin(addr).await?;
    c.status(pb::StatusReq {}).await.ok().map(|r| r.into_inner())
}

async fn local_value(addr: &str, key: &str) -> Option<i64> {
    let mut c = admin(addr).await?;
    let req = pb::GetReq { key: key.into(), consistency: pb::ReadConsistency::Serializable as i32 };
    let reply = c.get(req).await.ok()?.into_inner();
    int_value(&reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_far_behind_catches_up_through_a_snapshot() {
    // Snapshots every 50 applied records, 10 kept behind each: 600 writes
    // while a member is down put it far behind what the others still hold.
    let mut cluster = Cluster::start_with(3, &["--snapshot-every", "50", "--compact-retain", "10"]);
    let ids: Vec<i64> = cluster.nodes.keys().copied().collect();
    let leader = wait_leader(&cluster, &ids, ELECTION_BOUND).await.expect("a first leader");
    let behind = *ids.iter().find(|&&i| i != leader).unwrap();
    let addr = cluster.nodes[&leader].addr.clone();
    let mut client = raft(&addr).await.expect("connect to the leader");
    assert!(put(&mut client, "k-first", -1).await);
    cluster.nodes.get_mut(&behind).unwrap().kill9();

    for i in 0..600 {
        assert!(put(&mut client, &format!("k{i}"), i).await, "write k{i} with one member down");
    }
    let s = status(&addr).await.expect("leader status");
    assert!(s.compacted_below > 100, "the leader compacted its log (below {})", s.compacted_below);
    assert!(s.log_records < 200, "the leader's log stays small: {} records", s.log_records);

    cluster.nodes.get_mut(&behind).unwrap().spawn();
    let behind_addr = cluster.nodes[&behind].addr.clone();
    let start = Instant::now();
    while local_value(&behind_addr, "k599").await != Some(599) {
        assert!(start.elapsed() < Duration::from_secs(30), "the restarted member catches up within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = status(&behind_addr).await.expect("status of the member that was behind");
    assert!(s.snapshots_installed >= 1, "it caught up through a snapshot, not the log: {s:?}");
    assert!(s.log_records < 200, "its log holds only the tail: {} records", s.log_records);
    assert_eq!(local_value(&behind_addr, "k-first").await, Some(-1));
    for i in 0..600 {
        assert_eq!(local_value(&behind_addr, &format!("k{i}")).await, Some(i), "k{i} on the member that was behind");
    }
    // It takes part again: a write commits with the other follower down.
    let other = *ids.iter().find(|&&i| i != leader && i != behind).unwrap();
    cluster.nodes.get_mut(&other).unwrap().kill9();
    assert!(put(&mut client, "k-last", 7).await, "the caught-up member completes a quorum");
}

/// Writes `key = value` through `traftctl propose`, which follows redirects
/// to whoever leads; true if acknowledged.
fn propose_cli(endpoints: &str, key: &str, value: i64) -> bool {
    Command::new(BIN)
        .args(["--endpoints", endpoints, "--timeout", "5s", "propose", "set", key, &value.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn endpoints(cluster: &Cluster) -> String {
    cluster.nodes.values().map(|n| n.addr.clone()).collect::<Vec<_>>().join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_transfer_moves_leadership_while_writes_continue() {
    let mut cluster = Cluster::start(3);
    let ids: Vec<i64> = cluster.nodes.keys().copied().collect();
    let leader = wait_leader(&cluster, &ids, ELECTION_BOUND).await.expect("a first leader");
    let target = *ids.iter().find(|&&i| i != leader).unwrap();
    let all = endpoints(&cluster);

    // A writer keeps proposing through the CLI (which follows redirects)
    // while leadership moves.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, all) = (stop.clone(), all.clone());
        tokio::task::spawn_blocking(move || {
            let mut acked = Vec::new();
            let mut i = 0;
            // Counts acknowledgements, not attempts: a propose that lands in
            // the transfer's leaderless moment fails ("no leader"), and how
            // many land before the transfer depends on the machine's speed.
            let started = Instant::now();
            while (!stop.load(std::sync::atomic::Ordering::Relaxed) || acked.len() < 20)
                && started.elapsed() < Duration::from_secs(60)
            {
                if propose_cli(&all, &format!("w{i}"), i) {
                    acked.push(i);
                }
                i += 1;
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let transfer = tokio::task::spawn_blocking({
        let (all, to) = (all.clone(), target.to_string());
        move || {
            Command::new(BIN)
                .args(["--endpoints", &all, "--timeout", "10s", "leader", "transfer", "--to", &to, "-o", "json"])
                .output()
                .expect("run leader transfer")
        }
    })
    .await
    .unwrap();
    assert!(transfer.status.success(), "leader transfer failed: {}", String::from_utf8_lossy(&transfer.stderr));
    let out: serde_json::Value = serde_json::from_slice(&transfer.stdout).expect("transfer JSON");
    assert_eq!(out["to"]["id"], target, "{out}");
    assert_eq!(wait_leader(&cluster, &[target], Duration::from_secs(1)).await, Some(target));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert!(acked.len() >= 20, "writes continue around the transfer: {} acknowledged", acked.len());
    let target_addr = cluster.nodes[&target].addr.clone();
    for i in &acked {
        let reply = get(&target_addr, &format!("w{i}")).await.expect("read from the new leader");
        assert_eq!(int_value(&reply), Some(*i), "acknowledged write w{i} survives the transfer");
    }

    // Refusals: exit 5, naming the target.
    let refused = |to: i64| {
        Command::new(BIN)
            .args(["--endpoints", &all, "--timeout", "5s", "leader", "transfer", "--to", &to.to_string()])
            .output()
            .expect("run leader transfer")
    };
    let unknown = refused(9);
    assert_eq!(unknown.status.code(), Some(5), "{}", String::from_utf8_lossy(&unknown.stderr));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("node 9 is not a voting member"));
    let other = *ids.iter().find(|&&i| i != target).unwrap();
    cluster.nodes.get_mut(&other).unwrap().kill9();
    let expected = format!("node {other} has not acknowledged");
    let start = Instant::now();
    let down = loop {
        let out = refused(other);
        let named = String::from_utf8_lossy(&out.stderr).contains(&expected);
        if (out.status.code() == Some(5) && named) || start.elapsed() > ELECTION_BOUND {
            break out;
        }
        // Until a lease passes the leader still counts the member as
        // reachable: it may accept the transfer, or refuse it for another
        // reason (the dead target did not catch up, or the transfer it
        // accepted is still in progress).
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert_eq!(down.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_with_sigterm_hands_over_first() {
    let mut cluster = Cluster::start(3);
    let ids: Vec<i64> = cluster.nodes.keys().copied().collect();
    let leader = wait_leader(&cluster, &ids, ELECTION_BOUND).await.expect("a first leader");
    assert!(propose_cli(&endpoints(&cluster), "before", 1));
    let node = cluster.nodes.get_mut(&leader).unwrap();
    let mut child = node.child.take().expect("running");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > ELECTION_BOUND {
            let _ = child.kill();
            panic!("node {leader} did not exit after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "a stopped leader exits 0: {status:?}\n{}", node.stderr());
    // The old leader saw its successor lead before it exited: no member
    // waited out its lease.
    let log = node.stderr();
    assert!(log.contains("handing leadership to node"), "{log}");
    assert!(log.contains("leads now; stopping"), "{log}");
    let survivors: Vec<i64> = ids.iter().copied().filter(|&i| i != leader).collect();
    let new_leader = wait_leader(&cluster, &survivors, ELECTION_BOUND).await.expect("a new leader");
    let reply = get(&cluster.nodes[&new_leader].addr, "before").await.expect("read");
    assert_eq!(int_value(&reply), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_hash_agrees_on_a_healthy_cluster_and_names_an_altered_member() {
    let mut cluster = Cluster::start(3);
    let ids: Vec<i64> = cluster.nodes.keys().copied().collect();
    let leader = wait_leader(&cluster, &ids, ELECTION_BOUND).await.expect("a leader");
    let all = endpoints(&cluster);
    for i in 0..20 {
        assert!(propose_cli(&all, &format!("h{i}"), i));
    }
    let check = |all: &str| {
        Command::new(BIN)
            .args(["--endpoints", all, "--timeout", "10s", "check", "hash", "-o", "json"])
            .output()
            .unwrap()
    };
    let healthy = check(&all);
    assert!(healthy.status.success(), "{}", String::from_utf8_lossy(&healthy.stderr));
    let report: serde_json::Value = serde_json::from_slice(&healthy.stdout).unwrap();
    assert_eq!(report["agree"], true, "{report}");
    assert_eq!(report["members"].as_array().unwrap().len(), 3, "{report}");

    // Member `victim` gets a record rewritten on its disk while it is down: a
    // valid entry with the same identity and another command, which no
    // protocol run produces. After its restart it replays that record.
    let victim = *ids.iter().find(|&&i| i != leader).unwrap();
    cluster.nodes.get_mut(&victim).unwrap().kill9();
    {
        let (mut storage, state, _) = traftctl::storage::Storage::open(&cluster.data_dir(victim)).unwrap();
        let mut rec = state.records.iter().find(|r| r.cmd.as_ref().is_some_and(|c| c.key == "h7")).unwrap().clone();
        rec.cmd = Some(Cmd::set_i64("h7", 700));
        let write = traftctl::replica::DurableWrite { put: vec![rec], ..Default::default() };
        storage.append(vec![write]).unwrap();
    }
    cluster.nodes.get_mut(&victim).unwrap().spawn();
    let start = Instant::now();
    let altered = loop {
        let out = check(&all);
        if out.status.code() == Some(1) || start.elapsed() > ELECTION_BOUND {
            break out;
        }
        // Until the restarted member answers it is not compared.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stderr = String::from_utf8_lossy(&altered.stderr);
    assert_eq!(altered.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("member(s) {{{victim}}} hold a different state")), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&altered.stdout).unwrap();
    let verdicts: Vec<(i64, String)> = report["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_i64().unwrap(), m["verdict"].as_str().unwrap().to_string()))
        .collect();
    for (id, verdict) in verdicts {
        assert_eq!(verdict, if id == victim { "DIFFERS" } else { "ok" }, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_snapshot_restores_into_a_new_cluster_with_every_key() {
    let cluster = Cluster::start(3);
    let ids: Vec<i64> = cluster.nodes.keys().copied().collect();
    wait_leader(&cluster, &ids, ELECTION_BOUND).await.expect("a leader");
    let all = endpoints(&cluster);
    for i in 0..30 {
        assert!(propose_cli(&all, &format!("b{i}"), i));
    }
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("backup.traft");
    let cli = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();
    let saved = cli(&["--endpoints", &all, "snapshot", "save", file.to_str().unwrap()]);
    assert!(saved.status.success(), "{}", String::from_utf8_lossy(&saved.stderr));
    let status = cli(&["snapshot", "status", file.to_str().unwrap(), "-o", "json"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["summary"]["keys"], 30, "{status}");
    let original_id = self::status(&cluster.nodes[&1].addr).await.expect("status").cluster_id;
    assert_eq!(status["summary"]["cluster_id"], serde_json::json!(original_id), "the backup carries the cluster id");

    // Damage is refused with the offset; a truncated copy too.
    let bytes = std::fs::read(&file).unwrap();
    let damaged = work.path().join("damaged.traft");
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    std::fs::write(&damaged, &flipped).unwrap();
    let refused = cli(&["snapshot", "status", damaged.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("checksum mismatch"), "{refused:?}");
    std::fs::write(&damaged, &bytes[..bytes.len() - 7]).unwrap();
    let refused = cli(&["snapshot", "status", damaged.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("truncated"), "{refused:?}");
    drop(cluster);

    // A new cluster on new ports, each member restored from the file.
    let ports = free_ports(3);
    let peers: Vec<String> = (1..=3).map(|i| format!("{i}=127.0.0.1:{}", ports[i - 1])).collect();
    let peers = peers.join(",");
    let mut nodes = BTreeMap::new();
    for i in 1..=3i64 {
        let data = work.path().join(format!("new-{i}"));
        let out = cli(&[
            "snapshot",
            "restore",
            file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "--id",
            &i.to_string(),
            "--peers",
            &peers,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let addr = format!("127.0.0.1:{}", ports[(i - 1) as usize]);
        let args = ["node", "--id", &i.to_string(), "--listen", &addr, "--peers", &peers, "--data-dir"]
            .iter()
            .map(|s| s.to_string())
            .chain([data.display().to_string()])
            .collect();
        let stderr_path = work.path().join(format!("new-{i}.stderr"));
        let mut node = Node { addr, args, child: None, stderr_path };
        node.spawn();
        nodes.insert(i, node);
    }
    let restored = Cluster { nodes, _dir: tempfile::tempdir().unwrap() };
    let leader = wait_leader(&restored, &[1, 2, 3], ELECTION_BOUND).await.expect("the restored cluster elects");
    let addr = restored.nodes[&leader].addr.clone();
    for i in 0..30 {
        let reply = get(&addr, &format!("b{i}")).await.expect("read");
        assert_eq!(int_value(&reply), Some(i), "b{i} after the restore");
    }
    assert!(propose_cli(&endpoints(&restored), "after-restore", 1), "the restored cluster takes writes");
    for node in restored.nodes.values() {
        let id = self::status(&node.addr).await.expect("status").cluster_id;
        assert_eq!(id, original_id, "a restored member keeps the backup's cluster id");
    }

    // --initial-cluster-token gives a new id, the one `node` makes from it.
    let data = work.path().join("renamed");
    let out = cli(&[
        "snapshot",
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--id",
        "1",
        "--peers",
        &peers,
        "--initial-cluster-token",
        "second-life",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: Vec<(i64, String)> = (1..=3).map(|i| (i, format!("127.0.0.1:{}", ports[i as usize - 1]))).collect();
    let config = pb::ClusterConfig::majority(members).unwrap();
    let expected = traftctl::node::format_cluster_id(traftctl::node::cluster_id_from("second-life", &config));
    assert_eq!(out["cluster_id"], serde_json::json!(expected), "{out}");
    assert_ne!(expected, original_id);
    let recorded = traftctl::storage::Storage::open(&data).unwrap().0.cluster_id().unwrap();
    assert_eq!(recorded.map(traftctl::node::format_cluster_id), Some(expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_new_cluster_serves_a_lone_survivors_data() {
    let mut cluster = Cluster::start(3);
    let ids: Vec<i64> = cluster.nodes.keys().copied().collect();
    wait_leader(&cluster, &ids, ELECTION_BOUND).await.expect("a leader");
    let all = endpoints(&cluster);
    for i in 0..20 {
        assert!(propose_cli(&all, &format!("d{i}"), i));
    }
    // Wait until member 1 has applied every write, then lose the other two
    // for good, and stop 1 as well.
    let start = Instant::now();
    while get_serializable(&cluster.nodes[&1].addr, "d19").await != Some(19) {
        assert!(start.elapsed() < ELECTION_BOUND, "member 1 applies the writes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &ids {
        cluster.nodes.get_mut(id).unwrap().kill9();
    }

    let survivor = cluster.nodes.get_mut(&1).unwrap();
    let args = survivor.args.clone();
    // Without the confirmation it is a usage error, and nothing is touched.
    let unconfirmed = Command::new(BIN).args(&args).arg("--force-new-cluster").output().unwrap();
    assert_eq!(unconfirmed.status.code(), Some(2), "{}", String::from_utf8_lossy(&unconfirmed.stderr));
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--confirm-data-loss"));

    survivor.args.extend(["--force-new-cluster".to_string(), "--confirm-data-loss".to_string()]);
    survivor.spawn();
    assert_eq!(wait_leader(&cluster, &[1], ELECTION_BOUND).await, Some(1), "the survivor leads alone");
    let addr = cluster.nodes[&1].addr.clone();
    for i in 0..20 {
        let reply = get(&addr, &format!("d{i}")).await.expect("read");
        assert_eq!(int_value(&reply), Some(i), "d{i} survives the recovery");
    }
    assert!(propose_cli(&addr, "after-recovery", 1), "the one-member cluster takes writes");
    let log = cluster.nodes[&1].stderr();
    assert!(log.contains("NEW ONE-MEMBER CLUSTER"), "{log}");
    let kept_aside = std::fs::read_dir(cluster.data_dir(1).parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("node-1.before-force-new-cluster-"));
    assert!(kept_aside, "the old data directory is kept");
}

async fn get_serializable(addr: &str, key: &str) -> Option<i64> {
    let mut c = admin(addr).await?;
    let req = pb::GetReq { key: key.into(), consistency: pb::ReadConsistency::Serializable as i32 };
    let reply = c.get(req).await.ok()?.into_inner();
    int_value(&reply)
}

/// `GET path` over plain HTTP; the status code and the body.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((code, body))
}

/// Polls `path` on `addr` until `wanted(code, body)`; the last answer.
async fn poll_http(addr: &str, path: &str, wanted: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let start = Instant::now();
    loop {
        let answer = http_get(addr, path).unwrap_or((0, String::new()));
        if wanted(answer.0, &answer.1) || start.elapsed() > ELECTION_BOUND {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `grpc.health.v1.Health/Check` on `addr` until it reports `wanted`.
async fn poll_health(addr: &str, wanted: tonic_health::pb::health_check_response::ServingStatus) -> bool {
    let start = Instant::now();
    while start.elapsed() < ELECTION_BOUND {
        let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap();
        if let Ok(channel) = ep.connect().await {
            let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
            let req = tonic_health::pb::HealthCheckRequest { service: String::new() };
            if let Ok(reply) = client.check(req).await
                && reply.get_ref().status() == wanted
            {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_probes_follow_the_cluster() {
    let mut cluster = Cluster::start(3);
    let ports = free_ports(3);
    let metrics: BTreeMap<i64, String> =
        (1..=3).map(|i| (i, format!("127.0.0.1:{}", ports[(i - 1) as usize]))).collect();
    for (id, addr) in &metrics {
        let node = cluster.nodes.get_mut(id).unwrap();
        node.kill9();
        node.args.extend(["--listen-metrics".to_string(), addr.clone()]);
        node.spawn();
    }
    let ids: Vec<i64> = cluster.nodes.keys().copied().collect();
    wait_leader(&cluster, &ids, ELECTION_BOUND).await.expect("a leader");
    assert!(propose_cli(&endpoints(&cluster), "m", 1));
    for addr in metrics.values() {
        assert_eq!(http_get(addr, "/livez").map(|a| a.0), Some(200));
        let (code, body) = poll_http(addr, "/readyz", |c, _| c == 200).await;
        assert_eq!(code, 200, "{addr} /readyz: {body}");
    }
    let mut leaders = 0.0;
    for addr in metrics.values() {
        // A follower learns of the commit with the leader's next forward.
        let (code, body) =
            poll_http(addr, "/metrics", |_, b| sample(b, "traft_committed_prefix").is_some_and(|v| v >= 1.0)).await;
        assert_eq!(code, 200);
        assert_eq!(sample(&body, "traft_has_leader"), Some(1.0), "{body}");
        assert!(sample(&body, "traft_committed_prefix").is_some_and(|v| v >= 1.0), "{body}");
        assert!(sample(&body, "traft_data_dir_bytes").is_some_and(|v| v > 0.0), "{body}");
        assert!(body.contains("# TYPE traft_leader_changes_total counter"), "{body}");
        // Every member made a write durable, so its fsync histogram counts it.
        assert!(body.contains("# TYPE traft_wal_fsync_duration_seconds histogram"), "{body}");
        assert!(sample(&body, "traft_wal_fsync_duration_seconds_count").is_some_and(|v| v >= 1.0), "{body}");
        assert_eq!(
            sample(&body, "traft_wal_fsync_duration_seconds_bucket{le=\"+Inf\"}"),
            sample(&body, "traft_wal_fsync_duration_seconds_count"),
            "{body}"
        );
        assert!(body.contains("# TYPE traft_snapshot_save_duration_seconds histogram"), "{body}");
        let is_leader = sample(&body, "traft_is_leader").expect("traft_is_leader");
        if is_leader == 1.0 {
            // The leader timed the forwards of that write, per follower.
            for peer in ids.iter().filter(|&&p| metrics[&p] != *addr) {
                let count = format!("traft_forward_round_trip_seconds_count{{peer=\"{peer}\"}}");
                assert!(sample(&body, &count).is_some_and(|v| v >= 1.0), "{count}: {body}");
            }
        }
        leaders += is_leader;
    }
    assert_eq!(leaders, 1.0, "exactly one member reports itself leader");
    assert_eq!(http_get(&metrics[&1], "/nope").map(|a| a.0), Some(404));
    use tonic_health::pb::health_check_response::ServingStatus;
    assert!(poll_health(&cluster.nodes[&1].addr, ServingStatus::Serving).await, "grpc.health.v1 SERVING");

    // Without a quorum nobody is ready, with a reason; with it back, ready again.
    for id in [2, 3] {
        cluster.nodes.get_mut(&id).unwrap().kill9();
    }
    let (code, reason) = poll_http(&metrics[&1], "/readyz", |c, _| c == 503).await;
    assert_eq!(code, 503, "{reason}");
    assert!(reason.contains("lease"), "{reason}");
    assert!(poll_health(&cluster.nodes[&1].addr, ServingStatus::NotServing).await, "NOT_SERVING without a quorum");
    for id in [2, 3] {
        cluster.nodes.get_mut(&id).unwrap().spawn();
    }
    let (code, body) = poll_http(&metrics[&1], "/readyz", |c, _| c == 200).await;
    assert_eq!(code, 200, "{body}");
    assert!(poll_health(&cluster.nodes[&1].addr, ServingStatus::Serving).await, "SERVING again");
}

/// A child process killed and reaped however the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `child`'s stdout until a line containing `last`; every line up to
/// it. Panics if the process exits first or [`ELECTION_BOUND`] passes.
fn read_banner(child: &mut Killed, last: &str) -> String {
    let stdout = child.0.stdout.take().expect("piped stdout");
    let last = last.to_string();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut banner = String::new();
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            banner.push_str(&line);
            banner.push('\n');
            if line.contains(&last) {
                break;
            }
        }
        banner
    });
    let start = Instant::now();
    while !reader.is_finished() {
        assert!(start.elapsed() < ELECTION_BOUND * 3, "no banner");
        if child.0.try_wait().unwrap().is_some() {
            std::thread::sleep(Duration::from_millis(200));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

#[test]
fn local_cluster_banner_lists_the_metrics_ports() {
    let tmp = tempfile::tempdir().unwrap();
    let base = free_consecutive(6);
    let metrics = base + 3;
    let stderr = tmp.path().join("stderr");
    let child = Command::new(BIN)
        .args(["local-cluster", "3", "--ephemeral", "--base-port", &base.to_string()])
        .args(["--metrics-base-port", &metrics.to_string()])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let banner = read_banner(&mut child, "Press Ctrl-C");
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(banner.contains("metrics"), "banner:\n{banner}\nstderr:\n{log}");
    for i in 0..3 {
        let addr = format!("127.0.0.1:{}", metrics + i);
        assert!(banner.contains(&format!("http://{addr}/metrics")), "member {} metrics missing:\n{banner}", i + 1);
        assert_eq!(http_get(&addr, "/livez").map(|a| a.0), Some(200), "the banner's port serves: {addr}");
    }
}

#[test]
fn an_ephemeral_local_cluster_on_a_busy_port_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let base = free_consecutive(3);
    let _busy = TcpListener::bind(("127.0.0.1", base + 1)).expect("hold member 2's port");
    let out = Command::new(BIN)
        .args(["local-cluster", "3", "--ephemeral", "--base-port", &base.to_string()])
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{}", base + 1)), "{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "the temporary directory was left behind: {left:?}");
}

// ---- a node an operator deploys ----

/// Three members started from TOML files (`node --config`), with tuned
/// timing, JSON logs and advertised client addresses; member 3 overrides
/// the file's advertised client address on the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_started_from_config_files_form_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(3);
    let addr = |i: i64| format!("127.0.0.1:{}", ports[(i - 1) as usize]);
    let peers: Vec<String> = (1..=3).map(|i| format!("\"{i}={}\"", addr(i))).collect();
    let mut nodes = BTreeMap::new();
    for i in 1..=3i64 {
        let file = dir.path().join(format!("node-{i}.toml"));
        let data = dir.path().join(format!("node-{i}"));
        let toml = format!(
            "id = {i}\nlisten = \"{}\"\npeers = [{}]\ndata-dir = \"{}\"\nheartbeat-interval = 40\n\
             election-timeout = 400\nlog-format = \"json\"\nverbose = 1\nadvertise-client = \"client-{i}.example:2379\"\n",
            addr(i),
            peers.join(", "),
            data.display()
        );
        std::fs::write(&file, toml).unwrap();
        let mut args = vec!["node".to_string(), "--config".into(), file.display().to_string()];
        if i == 3 {
            args.extend(["--advertise-client".to_string(), "override-3.example:2379".into()]);
        }
        let stderr_path = dir.path().join(format!("node-{i}.stderr"));
        let mut node = Node { addr: addr(i), args, child: None, stderr_path };
        node.spawn();
        nodes.insert(i, node);
    }
    let cluster = Cluster { nodes, _dir: dir };
    let leader = wait_leader(&cluster, &[1, 2, 3], ELECTION_BOUND).await.expect("a leader");
    assert!(propose_cli(&endpoints(&cluster), "from-file", 1), "the cluster takes writes");
    for (id, node) in &cluster.nodes {
        let s = status(&node.addr).await.expect("status");
        let wanted = if *id == 3 { "override-3.example:2379".to_string() } else { format!("client-{id}.example:2379") };
        assert_eq!(s.client_addr, wanted, "--advertise-client from the file, or the command line that overrides it");
    }
    // The file's election timeout is the lease: what a leader reports left
    // of it never exceeds 400 ms (the default would be 1000 ms).
    let bound = 400;
    let start = Instant::now();
    let lease = loop {
        let s = status(&cluster.nodes[&leader].addr).await.expect("status");
        if s.lease_remaining_ms > 0 {
            break s.lease_remaining_ms;
        }
        assert!(start.elapsed() < ELECTION_BOUND, "the leader never reported a lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(lease <= bound, "lease {lease} ms left with an election timeout of {bound} ms");
    // log-format = "json" from the file: every line is one JSON object.
    let log = cluster.nodes[&1].stderr();
    assert!(!log.is_empty(), "verbose = 1 from the file logs something");
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
    }
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.toml");
    std::fs::write(&file, "id = 1\ndata-dir = \"d\"\npeers = [\"1=127.0.0.1:7001\"]\nlisen = \"0.0.0.0:7001\"\n")
        .unwrap();
    let out = Command::new(BIN).args(["node", "--config"]).arg(&file).current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&file.display().to_string()) && err.contains("unknown key `lisen`"), "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert!(!dir.path().join("d").exists(), "nothing was started");
}

#[test]
fn timing_and_wildcard_addresses_are_checked_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_ports(1)[0];
    let node = |extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["node", "--id", "4", "--data-dir"])
            .arg(&data)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let peers = format!("1=127.0.0.1:{port}");
    let (code, err) = node(&["--peers", &peers, "--heartbeat-interval", "100", "--election-timeout", "300"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("at least 5 x --heartbeat-interval"), "{err}");
    let (code, err) = node(&["--peers", "4=0.0.0.0:7001"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("wildcard"), "{err}");
    let (code, err) = node(&["--peers", &peers, "--advertise-peer", "0.0.0.0:7001"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("wildcard"), "{err}");
    assert!(!data.exists(), "a refused node touched its data directory");
}

/// A member joining on 0.0.0.0 is added by its advertised address; without
/// one the wildcard would go into the member table, and it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_member_on_a_wildcard_needs_an_advertised_address() {
    let cluster = Cluster::start(1);
    wait_leader(&cluster, &[1], ELECTION_BOUND).await.expect("a leader");
    let seed = cluster.nodes[&1].addr.clone();
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(1)[0];
    let join = |host: &str, extra: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["node", "--id", "2", "--listen", &format!("{host}:{port}"), "--join", &seed, "--data-dir"])
            .arg(dir.path().join("node-2"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    };
    // Refused before it binds anything.
    let out = join("0.0.0.0", &[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--advertise-peer") && err.contains("member table"), "{err}");
    assert!(!dir.path().join("node-2").exists(), "nothing was started");

    // Tests bind 127.0.0.1 only: the joiner listens there and advertises
    // another name for it, which the hint must use.
    let advertised = format!("localhost:{port}");
    let stderr_path = dir.path().join("joiner.stderr");
    let child = join("127.0.0.1", &["--advertise-peer", &advertised])
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn();
    let _joiner = Killed(child.unwrap());
    let start = Instant::now();
    let hint = loop {
        let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        if log.contains("add it with") {
            break log;
        }
        assert!(start.elapsed() < ELECTION_BOUND, "no join hint: {log}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(hint.contains(&format!("traftctl config add-member 2 {advertised}")), "{hint}");
}

/// Log lines written to a file carry no terminal colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_in_a_file_have_no_colour_codes() {
    let cluster = Cluster::start(1);
    wait_leader(&cluster, &[1], ELECTION_BOUND).await.expect("a leader");
    let log = cluster.nodes[&1].stderr();
    assert!(log.contains("INFO"), "-v logs something: {log}");
    assert!(!log.contains('\u{1b}'), "escape codes in a log file: {log:?}");
}
