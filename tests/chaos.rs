//! Faults as a feature, end to end: a real `traftctl local-cluster --chaos`
//! process driven by the real `traftctl chaos` and `traftctl local`
//! commands, and separate `traftctl node` processes dialing each other
//! through this test's own fault proxy (`--dial-via`).
//!
//! Every wait is bounded; nothing asserts on timing. Each local cluster runs
//! under a watchdog that stops it when this test process goes away, however
//! it goes; node processes are killed and reaped by their guards.
#![cfg(unix)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

use traftctl::chaos::{Chaos, parse_all};

use common::{free_consecutive, free_port, spawn_launcher};

const BIN: &str = env!("CARGO_BIN_EXE_traftctl");

/// The bound on every wait: an election, a catch-up, a command.
const WAIT: Duration = Duration::from_secs(30);

fn traftctl() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("TRAFTCTL_ENDPOINTS").env_remove("TRAFTCTL_LOG").timeout(WAIT);
    cmd
}

/// Stops the cluster with SIGTERM when stdin reaches EOF (the test dropped
/// its end, or died), with SIGKILL 5 s later if it is still there.
const LAUNCHER: &str = r#"
exec 3<&0 0</dev/null
log="$1"; shift
"$0" local-cluster "$@" >/dev/null 2>"$log" &
pid=$!
( read -r _ <&3; kill -TERM "$pid" 2>/dev/null
  n=0; while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n+1)); done
  kill -KILL "$pid" 2>/dev/null ) &
dog=$!
wait "$pid"
code=$?
kill "$dog" 2>/dev/null
exit "$code"
"#;

/// A `traftctl local-cluster 3` of this test's own.
struct LocalCluster {
    endpoints: Vec<String>,
    shell: Child,
    stdin: Option<ChildStdin>,
    log: std::path::PathBuf,
    /// The data directory's parent and the first port: what starting the
    /// same cluster again needs. Taken by [`stop_keeping_data`](Self::stop_keeping_data).
    dir: Option<(tempfile::TempDir, u16)>,
}

impl LocalCluster {
    fn start(extra: &[&str]) -> LocalCluster {
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let base = free_consecutive(3);
            match Self::start_in(dir, base, extra) {
                Ok(cluster) => return cluster,
                Err((log, _)) => last_log = log,
            }
        }
        panic!("the local cluster did not start; its last log:\n{last_log}");
    }

    /// Starts the cluster whose data is (or is to be) under `dir`, on ports
    /// from `base`. If it exited before electing a leader (a port was
    /// taken): its log, and `dir` back.
    fn start_in(
        dir: tempfile::TempDir,
        base: u16,
        extra: &[&str],
    ) -> Result<LocalCluster, (String, tempfile::TempDir)> {
        let log = dir.path().join("local-cluster.log");
        let data = dir.path().join("data");
        let mut args = vec!["3".to_string(), "--base-port".into(), base.to_string(), "--data-dir".into()];
        args.push(data.display().to_string());
        args.extend(extra.iter().map(|a| a.to_string()));
        let launcher_args = [BIN.into(), log.clone().into()].into_iter().chain(args.into_iter().map(Into::into));
        let (shell, stdin) = spawn_launcher(LAUNCHER, launcher_args);
        let endpoints = (0..3).map(|i| format!("127.0.0.1:{}", base + i)).collect();
        let mut cluster = LocalCluster { endpoints, shell, stdin, log, dir: Some((dir, base)) };
        if cluster.wait_leader(None).is_some() {
            return Ok(cluster);
        }
        let log = cluster.log();
        let (dir, _) = cluster.dir.take().expect("set above");
        drop(cluster);
        Err((log, dir))
    }

    /// Stops the cluster the way the watchdog does (SIGTERM) and hands back
    /// what [`start_in`](Self::start_in) needs to start it again.
    fn stop_keeping_data(mut self) -> (tempfile::TempDir, u16) {
        let kept = self.dir.take().expect("the data is kept once");
        drop(self);
        kept
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn endpoints(&self) -> String {
        self.endpoints.join(",")
    }

    fn addr(&self, id: i64) -> &str {
        &self.endpoints[(id - 1) as usize]
    }

    /// `traftctl --endpoints <all members>`.
    fn cmd(&self) -> Command {
        let mut cmd = traftctl();
        cmd.arg("--endpoints").arg(self.endpoints());
        cmd
    }

    /// `traftctl --endpoints <these members>`.
    fn cmd_at(&self, ids: &[i64]) -> Command {
        let mut cmd = traftctl();
        let endpoints: Vec<&str> = ids.iter().map(|&id| self.addr(id)).collect();
        cmd.arg("--endpoints").arg(endpoints.join(","));
        cmd
    }

    /// Waits for a leader other than `not`, seen by `status`; `None` if the
    /// cluster process exited first.
    fn wait_leader(&mut self, not: Option<i64>) -> Option<i64> {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            if self.shell.try_wait().expect("poll the launcher").is_some() {
                return None;
            }
            if let Some(status) = json_of(self.cmd().args(["status", "--timeout", "2s", "-o", "json"]))
                && let Some(id) = status["leader"]["id"].as_i64()
                && Some(id) != not
            {
                return Some(id);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no leader (other than {not:?}) within {WAIT:?}; cluster log:\n{}", self.log());
    }

    /// Member `id`'s own view: `status --addr`.
    fn member_status(&self, id: i64) -> Option<Value> {
        json_of(traftctl().args(["status", "--timeout", "2s", "-o", "json", "--addr", self.addr(id)]))
    }

    /// Proposes `set key value` through `ids`' endpoints; whether it was
    /// acknowledged.
    fn propose_at(&self, ids: &[i64], key: &str, value: i64) -> bool {
        self.cmd_at(ids)
            .args(["propose", "set", key, &value.to_string(), "--timeout", "3s"])
            .output()
            .unwrap()
            .status
            .success()
    }

    /// Proposes until one is acknowledged (an election may be under way).
    fn propose(&self, key: &str, value: i64) {
        self.propose_through(&[1, 2, 3], key, value);
    }

    fn propose_through(&self, ids: &[i64], key: &str, value: i64) {
        let start = Instant::now();
        while !self.propose_at(ids, key, value) {
            assert!(start.elapsed() < WAIT, "set {key} {value} was never acknowledged; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until member `id` has applied `key = value` (a serializable
    /// read of its own state).
    fn wait_applied(&self, id: i64, key: &str, value: i64) {
        let start = Instant::now();
        loop {
            let got = json_of(self.cmd_at(&[id]).args(["get", key, "--consistency", "serializable", "-o", "json"]));
            if got.as_ref().is_some_and(|g| g["value"] == value) {
                return;
            }
            assert!(start.elapsed() < WAIT, "node {id} never applied {key} = {value} (last read: {got:?})");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `traftctl local ...` (JSON): every member's state by id.
    fn local(&self, args: &[&str]) -> Vec<(i64, String)> {
        let out = self.cmd().args(["-o", "json", "local"]).args(args).assert().success().get_output().stdout.clone();
        let v: Value = serde_json::from_slice(&out).expect("local prints JSON");
        v["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| (m["id"].as_i64().unwrap(), m["state"].as_str().unwrap().to_string()))
            .collect()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if !matches!(self.shell.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The watchdog still SIGKILLs the cluster on its own.
        let _ = self.shell.kill();
        let _ = self.shell.wait();
    }
}

/// The command's stdout as JSON, if it succeeded.
fn json_of(cmd: &mut Command) -> Option<Value> {
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn state_of(states: &[(i64, String)], id: i64) -> &str {
    &states.iter().find(|(i, _)| *i == id).expect("the member is listed").1
}

#[test]
fn the_same_command_again_recovers_a_local_cluster_under_its_cluster_id() {
    let cluster = LocalCluster::start(&[]);
    cluster.propose("kept", 7);
    let id_of = |cluster: &LocalCluster| {
        json_of(cluster.cmd().args(["status", "-o", "json"])).expect("status")["cluster_id"].clone()
    };
    let cluster_id = id_of(&cluster);
    assert!(cluster_id.is_string(), "{cluster_id}");
    let (mut dir, base) = cluster.stop_keeping_data();
    // The same ports again: another test's client may hold one for a
    // moment, so a failed start is retried.
    let mut attempts = 0;
    let cluster = loop {
        match LocalCluster::start_in(dir, base, &[]) {
            Ok(cluster) => break cluster,
            Err((log, back)) => {
                attempts += 1;
                assert!(attempts < 5, "no restart on ports from {base}; log:\n{log}");
                dir = back;
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    };
    cluster.wait_applied(1, "kept", 7);
    assert_eq!(id_of(&cluster), cluster_id);
    // The banner says to run the same command again: that is no mistake
    // to warn about.
    let log = cluster.log();
    assert!(!log.contains("WARN"), "warnings on a plain restart:\n{log}");
}

#[test]
fn killing_restarting_and_pausing_members_of_a_local_cluster() {
    let mut c = LocalCluster::start(&["--chaos", "none"]);
    let leader = c.wait_leader(None).unwrap();
    c.propose("k0", 0);

    // The leader crashes: the others elect a new one and keep writing.
    assert_eq!(state_of(&c.local(&["kill", &leader.to_string()]), leader), "killed");
    c.wait_leader(Some(leader)).expect("a new leader after the kill");
    c.propose("k1", 1);
    let killed_again = c.cmd().args(["local", "kill", &leader.to_string()]).assert().code(1);
    let stderr = String::from_utf8_lossy(&killed_again.get_output().stderr).to_string();
    assert!(stderr.contains(&format!("node {leader} is killed")), "{stderr}");

    // It restarts from its data directory and catches up.
    assert_eq!(state_of(&c.local(&["restart", &leader.to_string()]), leader), "running");
    c.wait_applied(leader, "k1", 1);
    c.wait_applied(leader, "k0", 0);

    // A paused follower: writes go on without it, and it catches up once resumed.
    let current = c.wait_leader(None).unwrap();
    let follower = [1, 2, 3].into_iter().find(|&id| id != current).unwrap();
    assert_eq!(state_of(&c.local(&["pause", &follower.to_string()]), follower), "paused");
    let paused_status = traftctl().args(["status", "--timeout", "1s", "--addr", c.addr(follower)]).output().unwrap();
    assert!(!paused_status.status.success(), "a paused member does not answer its status");
    let others: Vec<i64> = [1, 2, 3].into_iter().filter(|&id| id != follower).collect();
    for i in 0..5 {
        assert!(c.propose_at(&others, "during-pause", i), "write {i} while node {follower} is paused");
    }
    assert_eq!(state_of(&c.local(&["resume", &follower.to_string()]), follower), "running");
    c.wait_applied(follower, "during-pause", 4);
    assert!(c.local(&["list"]).iter().all(|(_, s)| s == "running"));
    let log = c.log();
    for line in [
        format!("killed node {leader}"),
        format!("restarted node {leader}"),
        format!("paused node {follower}"),
        format!("resumed node {follower}"),
    ] {
        assert!(log.contains(&line), "the cluster's log says `{line}`:\n{log}");
    }
}

/// A follower frozen for longer than the lease (SIGSTOP, a VM that stalls)
/// thaws to find the leader's forwards waiting. It must take them before it
/// lets its timers decide: otherwise it campaigns against a leader that
/// never stopped, refuses that leader's forwards under its new ballot, and
/// the leader steps down, costing every client a failed request and an
/// election.
#[test]
fn a_thawed_follower_reads_what_waited_before_its_timers_fire() {
    let mut c = LocalCluster::start(&[]);
    let leader = c.wait_leader(None).unwrap();
    c.propose("before", 1);
    let ballot = |c: &LocalCluster| {
        json_of(c.cmd().args(["status", "--timeout", "2s", "-o", "json"])).map(|s| s["leader"]["ballot"].clone())
    };
    let before = ballot(&c).expect("status answers");
    let follower = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    for round in 0..3 {
        c.local(&["pause", &follower.to_string()]);
        // Past the lease (1 s) and its jitter: every timer of the frozen
        // member has expired by the time it thaws.
        std::thread::sleep(Duration::from_millis(2_500));
        c.local(&["resume", &follower.to_string()]);
        c.propose(&format!("after-{round}"), round);
        c.wait_applied(follower, &format!("after-{round}"), round);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(ballot(&c), Some(before), "the leader kept its ballot through three thaws:\n{}", c.log());
}

#[test]
fn a_partition_isolating_the_leader_moves_leadership_and_clear_heals_it() {
    let mut c = LocalCluster::start(&["--chaos", "delay=1ms"]);
    let old = c.wait_leader(None).unwrap();
    c.propose("before", 1);
    let others: Vec<i64> = [1, 2, 3].into_iter().filter(|&id| id != old).collect();
    let spec = format!("partition={old}|{},{}", others[0], others[1]);
    let shown = json_of(c.cmd().args(["chaos", "set", &spec, "-o", "json"])).expect("chaos set");
    assert_eq!(shown["rules"], serde_json::json!([spec]));

    // A new leader on the majority side, which keeps writing.
    let start = Instant::now();
    while !others.iter().any(|&id| c.member_status(id).is_some_and(|s| s["role"] == "leader")) {
        assert!(start.elapsed() < WAIT, "no leader on the majority side; log:\n{}", c.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    c.propose_through(&others, "during", 2);

    // The old leader stops serving: it steps down, and writes through it
    // alone are not acknowledged.
    let start = Instant::now();
    while c.member_status(old).is_some_and(|s| s["role"] == "leader") {
        assert!(start.elapsed() < WAIT, "node {old} kept leading while cut off");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!c.propose_at(&[old], "cut-off", 3), "the cut-off old leader acknowledged a write");

    // Healed: the old leader catches up and follows a member of the side
    // that wrote (its own log is behind theirs, so it cannot win).
    let cleared = json_of(c.cmd().args(["chaos", "clear", "-o", "json"])).expect("chaos clear");
    assert_eq!(cleared["rules"], serde_json::json!([]));
    c.wait_applied(old, "during", 2);
    let start = Instant::now();
    loop {
        let status = c.member_status(old).expect("the old leader answers");
        let leader = status["leader"]["id"].as_i64();
        if status["role"] == "follower" && leader.is_some_and(|l| others.contains(&l)) {
            break;
        }
        assert!(start.elapsed() < WAIT, "node {old} does not follow the majority's leader: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Connections went through the proxy, and the partition cut some.
    let show = json_of(c.cmd().args(["chaos", "show", "-o", "json"])).expect("chaos show");
    let links = show["links"].as_array().unwrap();
    assert_eq!(links.len(), 6, "one link per ordered pair");
    assert!(links.iter().map(|l| l["cut"].as_u64().unwrap()).sum::<u64>() > 0, "{show}");
    assert!(c.log().contains("faults cleared"));
}

/// `--peer-connections 3`: the leader replicates to each follower on three
/// connections of its own (so a reset of one loses only its forwards).
#[test]
fn a_leader_replicates_on_as_many_connections_as_asked() {
    let mut c = LocalCluster::start(&["--chaos", "none", "--peer-connections", "3"]);
    let leader = c.wait_leader(None).unwrap();
    for i in 0..12 {
        c.propose(&format!("k{i}"), i);
    }
    let show = json_of(c.cmd().args(["chaos", "show", "-o", "json"])).expect("chaos show");
    let from_leader: Vec<&Value> =
        show["links"].as_array().unwrap().iter().filter(|l| l["from"].as_i64() == Some(leader)).collect();
    assert_eq!(from_leader.len(), 2, "{show}");
    for link in from_leader {
        assert!(link["connections"].as_u64().unwrap() >= 3, "three connections to each follower: {show}");
    }
}

#[test]
fn the_controls_refuse_clearly_where_they_do_not_apply() {
    // A local cluster without --chaos: `local` works, `chaos` says how to
    // get it. It runs in seq order, to see that mode take writes end to end.
    let c = LocalCluster::start(&["--commit-order", "prefix"]);
    assert!(c.local(&["list"]).iter().all(|(_, s)| s == "running"));
    let out = c.cmd().args(["chaos", "show"]).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("this endpoint is not a local cluster started with --chaos"), "{stderr}");
    assert!(stderr.contains("--chaos none"), "says how: {stderr}");
    for i in 0..5 {
        c.propose("in-order", i);
    }
    c.wait_applied(1, "in-order", 4);

    // A member the cluster lacks, and a bad spec: usage errors.
    let out = c.cmd().args(["local", "kill", "7"]).assert().code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("no member 7"));
    let out = traftctl().args(["chaos", "set", "delay=5"]).assert().code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("`5` is not a duration"));
    let out = traftctl().args(["local-cluster", "3", "--ephemeral", "--chaos", "drop=5"]).assert().code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("percentage"));
    let base = free_consecutive(3).to_string();
    let out = traftctl()
        .args(["local-cluster", "3", "--ephemeral", "--base-port", &base, "--chaos", "link=1-4,delay=1ms"])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("names member 4"));

    // A plain `traftctl node` refuses both, naming why.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _node = Guard::spawn(&node_args(1, &format!("127.0.0.1:{port}"), &format!("1=127.0.0.1:{port}"), dir.path()));
    let endpoint = format!("127.0.0.1:{port}");
    let start = Instant::now();
    loop {
        let out = traftctl().args(["--endpoints", &endpoint, "chaos", "show"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if stderr.contains("not a local cluster started with --chaos") {
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            break;
        }
        assert!(start.elapsed() < WAIT, "the node never refused `chaos show`: {stderr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = traftctl().args(["--endpoints", &endpoint, "local", "list"]).assert().code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("not a `traftctl local-cluster`"));
}

/// A child process killed and reaped however the test ends.
struct Guard(Child);

impl Guard {
    fn spawn(args: &[String]) -> Guard {
        let child = std::process::Command::new(BIN)
            .args(args)
            .env_remove("TRAFTCTL_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn traftctl node");
        Guard(child)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node_args(id: i64, listen: &str, peers: &str, dir: &Path) -> Vec<String> {
    ["node", "--id", &id.to_string(), "--listen", listen, "--peers", peers, "--data-dir"]
        .iter()
        .map(|s| s.to_string())
        .chain([dir.display().to_string()])
        .collect()
}

/// `status --addr` of a node process: its role and the leader it knows.
fn node_view(addr: &str) -> Option<(String, Option<i64>, Option<String>)> {
    let s = json_of(traftctl().args(["status", "--timeout", "2s", "-o", "json", "--addr", addr]))?;
    Some((
        s["role"].as_str()?.to_string(),
        s["leader"]["id"].as_i64(),
        s["leader_address"].as_str().map(str::to_string),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_node_processes_dial_each_other_through_the_test_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_consecutive(3);
    let addr = |id: i64| format!("127.0.0.1:{}", base + id as u16 - 1);
    let peers: Vec<String> = (1..=3).map(|id| format!("{id}={}", addr(id))).collect();
    let chaos = Chaos::new(5);
    let mut nodes = Vec::new();
    for id in 1..=3i64 {
        let mut args = node_args(id, &addr(id), &peers.join(","), &dir.path().join(format!("node-{id}")));
        for to in (1..=3).filter(|&to| to != id) {
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let listen = chaos.add_link(Some((id, to)), any, addr(to)).await.unwrap();
            args.extend(["--dial-via".to_string(), format!("{to}={listen}")]);
        }
        nodes.push(Guard::spawn(&args));
    }
    let leader_seen_by_all = |addrs: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            let views: Vec<_> = addrs.iter().map(|a| node_view(a)).collect();
            let leader = views.iter().flatten().find(|v| v.0 == "leader").and_then(|v| v.1)?;
            views.iter().all(|v| v.as_ref().is_some_and(|v| v.1 == Some(leader))).then_some(leader)
        })
        .await
        .unwrap()
    };
    let wait = async |addrs: Vec<String>, not: Option<i64>| {
        let start = Instant::now();
        loop {
            if let Some(l) = leader_seen_by_all(addrs.clone()).await.filter(|l| Some(*l) != not) {
                return l;
            }
            assert!(start.elapsed() < WAIT, "no leader (other than {not:?}) seen by {addrs:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let all: Vec<String> = (1..=3).map(addr).collect();
    let leader = wait(all.clone(), None).await;
    // Status and redirects name the real addresses, not the proxy's.
    let (_, _, leader_address) = node_view(&addr(leader)).unwrap();
    assert_eq!(leader_address.as_deref(), Some(addr(leader).as_str()));
    let accepted: u64 = (1..=3)
        .filter(|&to| to != leader)
        .map(|to| chaos.counters(leader, to).unwrap().accepted.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert!(accepted > 0, "the leader reached its followers through the proxy");

    let others: Vec<i64> = (1..=3).filter(|&id| id != leader).collect();
    chaos.set(parse_all(&[format!("partition={leader}|{},{}", others[0], others[1])]).unwrap()).unwrap();
    wait(others.iter().map(|&id| addr(id)).collect(), Some(leader)).await;
    // A write on the majority side puts the old leader's log behind.
    let endpoints: Vec<String> = others.iter().map(|&id| addr(id)).collect();
    let start = Instant::now();
    loop {
        let mut cmd = traftctl();
        cmd.args(["--endpoints", &endpoints.join(","), "propose", "set", "during", "1", "--timeout", "3s"]);
        if tokio::task::spawn_blocking(move || cmd.output().unwrap().status.success()).await.unwrap() {
            break;
        }
        assert!(start.elapsed() < WAIT, "the majority side never acknowledged a write");
    }
    chaos.clear();
    let healed = wait(all, None).await;
    assert!(others.contains(&healed), "healed, everyone follows a leader of the majority side, not {healed}");
    drop(nodes);
}
