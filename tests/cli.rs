//! The client commands end to end: the real `traftctl` binary against a real
//! cluster, in table, plain and JSON form, plus exit codes and the drift of
//! the committed completions and man pages.
//!
//! Most tests share one `local-cluster 3` (starting a cluster costs more
//! than all the commands together) and use keys of their own. Statics are
//! never dropped, so the cluster is not stopped by a guard: it runs under a
//! small shell watchdog that stops it when this test process closes the
//! watchdog's stdin, which the kernel does when the process exits, however
//! it exits. Tests that need a cluster of their own (a leaderless node, a
//! node that dies) own it through a guard that kills and waits on drop.
//!
//! Every wait is bounded; nothing asserts on timing.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{Value, json};

use common::{free_consecutive, spawn_launcher};

const BIN: &str = env!("CARGO_BIN_EXE_traftctl");

/// The bound on every wait: a cluster to elect, a command to finish, an
/// event to arrive.
const WAIT: Duration = Duration::from_secs(30);

/// `traftctl` with a clean environment, killed if it runs past [`WAIT`].
fn traftctl() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("TRAFTCTL_ENDPOINTS").env_remove("TRAFTCTL_LOG").timeout(WAIT);
    cmd
}

fn stdout_json(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out)))
}

/// Whether a text matches `pattern` (a regular expression).
fn matcher(pattern: &str) -> impl Fn(&str) -> bool {
    let regex = predicate::str::is_match(pattern).expect("a valid regex");
    move |text| regex.eval(text)
}

fn stdout_text(cmd: &mut Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).expect("UTF-8 output")
}

/// A port where nothing listens (connections are refused).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// Runs `traftctl local-cluster N --ephemeral` under a watchdog: when its
/// stdin reaches EOF (we dropped our end, or this process died) it stops the
/// cluster with SIGTERM, so the cluster removes its data, and with SIGKILL
/// if it has not stopped 5 s later. The shell exits when the cluster does.
const LAUNCHER: &str = r#"
exec 3<&0 0</dev/null
"$0" local-cluster "$1" --ephemeral --base-port "$2" >/dev/null 2>"$3" &
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

struct Cluster {
    endpoints: Vec<String>,
    shell: Child,
    /// Dropping it is the watchdog's signal to stop the cluster.
    stdin: Option<ChildStdin>,
}

impl Cluster {
    fn start(members: u16) -> Cluster {
        let mut last_log = String::new();
        for _ in 0..5 {
            let base = free_consecutive(members);
            // Overwritten by the next run: it only explains a failed start.
            let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-local-cluster.log");
            let (shell, stdin) = spawn_launcher(
                LAUNCHER,
                [BIN.into(), members.to_string().into(), base.to_string().into(), log.clone().into()],
            );
            let endpoints = (0..members).map(|i| format!("127.0.0.1:{}", base + i)).collect();
            let mut cluster = Cluster { endpoints, shell, stdin };
            if cluster.wait_ready() {
                return cluster;
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            // Dropping `cluster` stops whatever is left of it.
        }
        panic!("the local cluster did not start; its last log:\n{last_log}");
    }

    /// Polls `status` until a leader is elected and every member has adopted
    /// it (before that a follower knows no leader to redirect to). False when
    /// the cluster exited (e.g. a port was taken); panics after [`WAIT`].
    fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            if self.shell.try_wait().expect("poll the launcher").is_some() {
                return false;
            }
            if leader_settled(self.cmd()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no settled leader within {WAIT:?} at {:?}", self.endpoints);
    }

    fn endpoints(&self) -> String {
        self.endpoints.join(",")
    }

    /// `traftctl --endpoints <this cluster>`.
    fn cmd(&self) -> Command {
        let mut cmd = traftctl();
        cmd.arg("--endpoints").arg(self.endpoints());
        cmd
    }

    /// The leader's id and address, from `status -o json`.
    fn leader(&self) -> (i64, String) {
        let status = stdout_json(self.cmd().args(["status", "-o", "json"]));
        let id = status["leader"]["id"].as_i64().expect("a leader id");
        let addr = status["leader"]["address"].as_str().expect("a leader address").to_string();
        (id, addr)
    }

    fn follower(&self) -> String {
        let (_, leader) = self.leader();
        self.endpoints.iter().find(|e| **e != leader).expect("a follower").clone()
    }
}

/// `status` (run by `cmd`, which names the endpoints) finds a leader that
/// every member has adopted: before that a follower knows no leader to
/// redirect to.
fn leader_settled(mut cmd: Command) -> bool {
    let out = cmd.args(["status", "--timeout", "2s", "-o", "json"]).output().expect("run status");
    if !out.status.success() {
        return false;
    }
    let status: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let ballot = &status["leader"]["ballot"];
    let members = status["members"].as_array().expect("members");
    members.iter().all(|m| m["status"]["committer"] == *ballot)
}

impl Drop for Cluster {
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

fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start(3))
}

/// A child process that is killed and reaped however the test ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A single `traftctl node` whose data directory the test owns.
fn start_node(listen: u16, peers: &[(i64, u16)], dir: &Path) -> Guard {
    let peers: Vec<String> = peers.iter().map(|(id, port)| format!("{id}=127.0.0.1:{port}")).collect();
    let child = std::process::Command::new(BIN)
        .args(["node", "--id", "1", "--listen", &format!("127.0.0.1:{listen}"), "--peers", &peers.join(",")])
        .arg("--data-dir")
        .arg(dir)
        .env_remove("TRAFTCTL_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn traftctl node");
    Guard(child)
}

/// Runs `cmd` until its stderr contains `wanted` (the node may not listen
/// yet), returning its exit code.
fn poll_until_stderr(mut cmd: impl FnMut() -> Command, wanted: &str) -> i32 {
    let start = Instant::now();
    loop {
        let out = cmd().output().expect("run traftctl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains(wanted) {
            return out.status.code().expect("an exit code");
        }
        assert!(start.elapsed() < WAIT, "stderr never contained {wanted:?}; last: {stderr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `traftctl watch` with its stdout lines arriving on a channel.
fn spawn_watch(args: &[&str]) -> (Guard, mpsc::Receiver<String>, tempfile::NamedTempFile) {
    let stderr = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut child = std::process::Command::new(BIN)
        .arg("watch")
        .args(args)
        .env_remove("TRAFTCTL_ENDPOINTS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr.reopen().expect("reopen the watch stderr file"))
        .spawn()
        .expect("spawn traftctl watch");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (Guard(child), rx, stderr)
}

/// Proposes `set key i` until a watch line satisfies `wanted`: the watch may
/// subscribe after the first proposal.
fn propose_until_seen(
    cluster_cmd: impl Fn() -> Command,
    key: &str,
    rx: &mpsc::Receiver<String>,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let start = Instant::now();
    for i in 0.. {
        assert!(start.elapsed() < WAIT, "watch printed no matching line");
        cluster_cmd().args(["propose", "set", key, &i.to_string()]).assert().success();
        let until = Instant::now() + Duration::from_millis(500);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    unreachable!()
}

// ---- propose and get ----

#[test]
fn propose_and_get_in_every_format() {
    let c = shared();
    c.cmd().args(["propose", "set", "pg-x", "5"]).assert().success().stdout(
        predicate::str::is_match(r"^set\(pg-x, 5\) committed at seq \d+ by the leader \(term \d+, node \d\)\n$")
            .unwrap(),
    );

    let set = stdout_json(c.cmd().args(["propose", "set", "pg-x", "5", "-o", "json"]));
    assert!(set["seq"].is_i64(), "{set}");
    assert!(set["leader"]["term"].is_i64() && set["leader"]["id"].is_i64(), "{set}");
    assert_eq!(set["value"], Value::Null);
    assert_eq!(set["command"], json!({"op": "set", "key": "pg-x", "value": 5}));

    let incr = stdout_json(c.cmd().args(["propose", "incr", "pg-n", "2", "-o", "json"]));
    assert_eq!(incr["value"], json!(2));
    c.cmd().args(["propose", "incr", "pg-n", "3"]).assert().success().stdout(predicate::str::contains("pg-n = 5"));
    let plain = stdout_text(c.cmd().args(["propose", "incr", "pg-n", "-1", "-o", "plain"]));
    let fields: Vec<&str> = plain.trim_end().split('\t').collect();
    assert_eq!(fields.len(), 3, "{plain:?}");
    assert_eq!(fields[2], "4");

    assert_eq!(
        stdout_json(c.cmd().args(["get", "pg-n", "-o", "json"])),
        json!({"key": "pg-n", "value": 4, "found": true})
    );
    c.cmd().args(["get", "pg-n"]).assert().success().stdout("pg-n = 4\n");
    c.cmd().args(["get", "pg-n", "-o", "plain"]).assert().success().stdout("4\n");
    let serializable = stdout_json(c.cmd().args(["get", "pg-x", "--consistency", "serializable", "-o", "json"]));
    assert_eq!(serializable["found"], json!(true), "{serializable}");

    c.cmd().args(["propose", "set", "pg-s", "hello"]).assert().success();
    assert_eq!(stdout_json(c.cmd().args(["get", "pg-s", "-o", "json"]))["value"], json!("hello"));
    c.cmd().args(["get", "pg-s", "-o", "plain"]).assert().success().stdout("hello\n");

    let del = stdout_json(c.cmd().args(["propose", "del", "pg-x", "-o", "json"]));
    assert_eq!(del["command"], json!({"op": "del", "key": "pg-x", "value": null}));
    assert_eq!(
        stdout_json(c.cmd().args(["get", "pg-x", "-o", "json"])),
        json!({"key": "pg-x", "value": null, "found": false})
    );
    c.cmd().args(["get", "pg-x"]).assert().success().stdout("pg-x is not set\n");
    c.cmd().args(["get", "pg-x", "-o", "plain"]).assert().success().stdout("");
}

#[test]
fn a_follower_redirects_to_the_leader() {
    let c = shared();
    let (leader_id, _) = c.leader();
    let follower = c.follower();
    let done =
        stdout_json(traftctl().args(["propose", "set", "redirect-k", "1", "-o", "json", "--endpoints", &follower]));
    assert_eq!(done["leader"]["id"], json!(leader_id), "{done}");
    let read = stdout_json(traftctl().args(["get", "redirect-k", "-o", "json", "--endpoints", &follower]));
    assert_eq!(read["value"], json!(1));
}

#[test]
fn the_endpoints_come_from_the_environment_too() {
    let c = shared();
    traftctl().env("TRAFTCTL_ENDPOINTS", c.endpoints()).args(["propose", "set", "env-k", "env"]).assert().success();
    traftctl().env("TRAFTCTL_ENDPOINTS", c.endpoints()).args(["get", "env-k", "-o", "plain"]).assert().stdout("env\n");
}

// ---- status, log, config ----

#[test]
fn status_shows_every_member() {
    let c = shared();
    let status = stdout_json(c.cmd().args(["status", "-o", "json"]));
    let members = status["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{status}");
    let ids: Vec<i64> = members.iter().map(|m| m["id"].as_i64().expect("numeric id")).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(members.iter().filter(|m| m["role"] == "leader").count(), 1, "{status}");
    for m in members {
        assert_eq!(m["reachable"], json!(true), "{m}");
        assert!(m["lag"].is_i64(), "{m}");
        for field in ["accepted", "committed", "applied"] {
            let set = m["status"][field].as_str().expect("a bitmap string");
            assert!(set.contains(':'), "{field}: {set}");
        }
        assert!(m["status"]["committer"]["term"].is_i64(), "{m}");
    }
    assert!(status["leader"]["ballot"]["term"].is_i64());

    // One endpoint is enough: the others are found through the configuration.
    let table = stdout_text(traftctl().args(["status", "--endpoints", &c.endpoints[0]]));
    for word in ["voted for", "committer", "accepted", "committed", "applied", "lag", "leader", "follower"] {
        assert!(table.contains(word), "{word} missing from\n{table}");
    }
    for word in ["version", "uptime", "data", "cluster id: ", "learners: none", "change in progress: none"] {
        assert!(table.contains(word), "{word} missing from\n{table}");
    }
    let plain = stdout_text(c.cmd().args(["status", "-o", "plain"]));
    assert_eq!(plain.lines().count(), 3, "{plain}");
    assert!(plain.lines().all(|l| l.split('\t').count() == 14), "{plain}");
    // People read ballots as words and sets as ranges; JSON (above) keeps the raw form.
    let ballot = matcher(r"^term \d+, node \d+$");
    let ranges = matcher(r"^(none|\d+(-\d+)?(,\d+(-\d+)?)*)$");
    for line in plain.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert!(ballot(fields[3]) && ballot(fields[5]), "voted for, committer: {line}");
        for set in &fields[6..9] {
            assert!(ranges(set), "accepted, committed, applied as ranges: {line}");
        }
    }
    assert!(!matcher(r"\d{3}:\d{3}")(&table), "no `001:002` ballots in\n{table}");
    for m in members {
        assert_eq!(m["version"], json!(env!("CARGO_PKG_VERSION")), "{m}");
        assert!(m["uptime_ms"].as_i64().is_some_and(|u| u > 0), "{m}");
        assert!(m["data_dir_bytes"].as_i64().is_some_and(|b| b > 0), "{m}");
    }
    assert!(status["cluster_id"].as_str().is_some_and(|id| id.len() == 16), "{status}");
    assert_eq!((&status["learners"], &status["change"]), (&json!([]), &Value::Null), "{status}");

    let (leader_id, leader_addr) = c.leader();
    let one = stdout_json(c.cmd().args(["status", "--addr", &leader_addr, "-o", "json"]));
    assert_eq!(one["id"], json!(leader_id));
    assert_eq!(one["role"], json!("leader"));
    assert_eq!(one["config"]["members"].as_array().map(Vec::len), Some(3));
    assert_eq!(one["members"].as_array().map(Vec::len), Some(2), "the leader lists its followers: {one}");
    assert_eq!(one["version"], json!(env!("CARGO_PKG_VERSION")), "{one}");
    assert!(one["uptime_ms"].as_i64().is_some_and(|u| u > 0), "{one}");
    assert!(one["data_dir_bytes"].as_i64().is_some_and(|b| b > 0), "{one}");
    assert_eq!(one["learners"], json!([]), "{one}");
    assert_eq!(one["change"], json!(null), "no change in flight: {one}");
    let one_table = stdout_text(c.cmd().args(["status", "--addr", &c.follower()]));
    assert!(one_table.contains("follower") && one_table.contains("quorums"), "{one_table}");
}

/// An idle member that applied everything the leader committed has no lag:
/// the lag column agrees with the applied columns next to it.
#[test]
fn status_lag_agrees_with_the_applied_columns() {
    let c = NodeCluster::start(3);
    for i in 0..5 {
        c.cmd().args(["propose", "set", "lag-k", &i.to_string()]).assert().success();
    }
    let start = Instant::now();
    loop {
        let status = stdout_json(c.cmd().args(["status", "-o", "json"]));
        let members = status["members"].as_array().expect("members").clone();
        let leader = members.iter().find(|m| m["role"] == "leader").expect("a leader row");
        let committed = leader["status"]["committed"].clone();
        // Idle: every member applied exactly what the leader committed.
        if members.iter().all(|m| m["status"]["applied"] == committed) {
            for m in &members {
                assert_eq!(m["lag"], json!(0), "member {} applied {committed}: {status}", m["id"]);
            }
            return;
        }
        assert!(start.elapsed() < WAIT, "the cluster never went idle: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn status_of_an_unreachable_member_exits_3() {
    let addr = format!("127.0.0.1:{}", closed_port());
    traftctl()
        .args(["status", "--addr", &addr, "--timeout", "5s"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!("cannot reach {addr}")));
}

#[test]
fn log_lists_records_with_their_flags() {
    let c = shared();
    let seq = stdout_json(c.cmd().args(["propose", "set", "log-k", "42", "-o", "json"]))["seq"].as_i64().expect("seq");
    let from = seq.to_string();
    let log = stdout_json(c.cmd().args(["log", "--from", &from, "--limit", "1", "-o", "json"]));
    let record = &log["records"][0];
    assert_eq!(record["seq"], json!(seq));
    assert_eq!(record["command"], json!({"op": "set", "key": "log-k", "value": 42}));
    assert_eq!(record["committed"], json!(true));
    assert!(record["author"]["id"].is_i64() && record["overrides"].is_string() && record["depends"].is_string());
    assert!(record["applied"].is_boolean());

    let table = stdout_text(c.cmd().args(["log", "--from", &from, "--limit", "1"]));
    assert!(table.contains("set(log-k, 42)") && table.contains("overrides"), "{table}");
    let follower = c.follower();
    let plain = stdout_text(c.cmd().args(["log", "--addr", &follower, "--from", &from, "--limit", "1", "-o", "plain"]));
    let fields: Vec<&str> = plain.trim_end().split('\t').collect();
    assert_eq!((fields.len(), fields[0], fields[2]), (7, from.as_str(), "set(log-k, 42)"), "{plain:?}");
}

#[test]
fn config_shows_members_quorums_and_blocking_sets() {
    let c = shared();
    let show = stdout_json(c.cmd().args(["config", "show", "-o", "json"]));
    assert_eq!(show["quorums"], json!([[1, 2], [1, 3], [2, 3]]));
    let ids: Vec<i64> =
        show["members"].as_array().expect("members").iter().map(|m| m["id"].as_i64().expect("id")).collect();
    assert_eq!(ids, [1, 2, 3]);
    c.cmd().args(["config", "show"]).assert().success().stdout(predicate::str::contains("quorums: {1,2} {1,3} {2,3}"));

    let quorums = stdout_json(c.cmd().args(["config", "quorums", "-o", "json"]));
    assert_eq!(quorums["minimal_blocking_sets"], json!([[1, 2], [1, 3], [2, 3]]));
    assert_eq!(quorums["tolerated_failures"], json!(1));
    let table = stdout_text(c.cmd().args(["config", "quorums"]));
    assert!(table.contains(&format!("1 ({})", c.endpoints[0])), "{table}");
    assert!(table.contains("survives the loss of any 1 member"), "{table}");
}

// ---- membership changes ----
//
// These change the configuration, so each test has a cluster of its own, of
// separate `traftctl node` processes so that one member can be killed.

/// `traftctl node` processes with one data directory each, killed and reaped
/// on drop, plus a spare port for a member that joins later (id `members + 1`).
struct NodeCluster {
    base: u16,
    members: u16,
    /// Member `id` at index `id - 1`; `None` once killed. Dropped (killed)
    /// before `dir` is removed.
    nodes: Vec<Option<Guard>>,
    dir: tempfile::TempDir,
}

impl NodeCluster {
    fn start(members: u16) -> NodeCluster {
        let mut logs = String::new();
        for _ in 0..5 {
            let base = free_consecutive(members + 1);
            let dir = tempfile::tempdir().expect("a temporary directory");
            let mut c = NodeCluster { base, members, nodes: Vec::new(), dir };
            let peers: Vec<String> = (1..=i64::from(members)).map(|id| format!("{id}={}", c.addr(id))).collect();
            for id in 1..=i64::from(members) {
                let node = c.spawn(id, &["--peers", &peers.join(",")]);
                c.nodes.push(Some(node));
            }
            if c.wait_ready() {
                return c;
            }
            // A port was taken before a node bound it; try others.
            logs = c.logs();
        }
        panic!("the node cluster did not start; its logs:\n{logs}");
    }

    fn addr(&self, id: i64) -> String {
        format!("127.0.0.1:{}", i64::from(self.base) + id - 1)
    }

    /// `traftctl node --id ID` on its port; stderr goes to `node-ID.log`.
    fn spawn(&self, id: i64, args: &[&str]) -> Guard {
        let log = std::fs::File::create(self.dir.path().join(format!("node-{id}.log"))).expect("create a node log");
        let child = std::process::Command::new(BIN)
            .args(["node", "--id", &id.to_string(), "--listen", &self.addr(id)])
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("node-{id}")))
            .env("TRAFTCTL_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn traftctl node");
        Guard(child)
    }

    /// A new node with id `id` that joins the cluster through member 1.
    fn join(&self, id: i64) -> Guard {
        self.spawn(id, &["--join", &self.addr(1)])
    }

    /// Polls until a leader is settled; false when a node exited.
    fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        while start.elapsed() < WAIT {
            for node in self.nodes.iter_mut().flatten() {
                if node.0.try_wait().expect("poll a node").is_some() {
                    return false;
                }
            }
            if leader_settled(self.cmd()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The initial members' addresses.
    fn endpoints(&self) -> String {
        let addrs: Vec<String> = (1..=i64::from(self.members)).map(|id| self.addr(id)).collect();
        addrs.join(",")
    }

    fn cmd(&self) -> Command {
        let mut cmd = traftctl();
        cmd.arg("--endpoints").arg(self.endpoints());
        cmd
    }

    fn leader(&self) -> i64 {
        stdout_json(self.cmd().args(["status", "-o", "json"]))["leader"]["id"].as_i64().expect("a leader id")
    }

    fn kill(&mut self, id: i64) {
        drop(self.nodes[(id - 1) as usize].take());
    }

    /// Every node's log, for a failure message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for id in 1..=i64::from(self.members) + 1 {
            if let Ok(log) = std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log"))) {
                let lines: Vec<&str> = log.lines().collect();
                out += &format!("--- node {id} (last lines)\n{}\n", lines[lines.len().saturating_sub(30)..].join("\n"));
            }
        }
        out
    }

    /// Runs a config change that must succeed; its JSON outcome.
    fn change(&self, args: &[&str]) -> Value {
        let out = self.cmd().args(["config"]).args(args).args(["-o", "json"]).output().expect("run traftctl config");
        assert!(
            out.status.success(),
            "`traftctl config {}` exited {:?}\nstdout: {}\nstderr: {}\n{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        serde_json::from_slice(&out.stdout).expect("JSON outcome")
    }

    fn config(&self) -> Value {
        stdout_json(self.cmd().args(["config", "show", "-o", "json"]))
    }
}

fn member_ids(config: &Value) -> Vec<i64> {
    config["members"].as_array().expect("members").iter().map(|m| m["id"].as_i64().expect("id")).collect()
}

/// Proposes `set PREFIX-i i` in a loop until finished, on its own thread.
struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// How many proposals were acknowledged so far.
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<Vec<(String, i64)>>>,
}

impl Writer {
    fn start(endpoints: String, prefix: &'static str) -> Writer {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = count.clone();
        let thread = std::thread::spawn(move || {
            let mut acked = Vec::new();
            // Bounded, so the reads afterwards stay quick.
            for i in 0..400 {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let key = format!("{prefix}-{i}");
                let out = traftctl()
                    .args(["--endpoints", &endpoints, "--timeout", "5s", "propose", "set", &key, &i.to_string()])
                    .output()
                    .expect("run propose");
                // A proposal during a leader change may fail or have an
                // unknown outcome; only acknowledged ones are checked.
                if out.status.success() {
                    acked.push((key, i));
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            acked
        });
        Writer { stop, count, thread: Some(thread) }
    }

    /// Waits until `n` proposals were acknowledged, so that a change that
    /// starts afterwards runs while the writes continue.
    fn wait_acked(&self, n: usize) {
        let start = Instant::now();
        while self.count.load(std::sync::atomic::Ordering::Relaxed) < n {
            assert!(start.elapsed() < WAIT, "the writer got no acknowledgement");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the writer; the writes the cluster acknowledged.
    fn finish(mut self) -> Vec<(String, i64)> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().expect("running").join().expect("the writer thread panicked")
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn config_add_and_remove_a_member_while_writes_continue() {
    let c = NodeCluster::start(3);
    let addr4 = c.addr(4);
    let before = c.config();
    assert_eq!(member_ids(&before), [1, 2, 3]);

    // A dry run prints the joint and final configurations and changes nothing.
    let table = stdout_text(c.cmd().args(["config", "add-member", "4", &addr4, "--dry-run"]));
    for words in ["Joint configuration", "Final configuration", "added", "Dry run: nothing was changed"] {
        assert!(table.contains(words), "{words} missing from\n{table}");
    }
    let plan = stdout_json(c.cmd().args(["config", "add-member", "4", &addr4, "--dry-run", "-o", "json"]));
    assert_eq!(plan["outcome"], json!("dry_run"), "{plan}");
    assert_eq!(plan["dry_run"], json!(true));
    assert_eq!(plan["current"]["quorums"], json!([[1, 2], [1, 3], [2, 3]]), "{plan}");
    assert_eq!(member_ids(&plan["joint"]), [1, 2, 3, 4], "{plan}");
    assert_eq!(plan["final"]["quorums"], json!([[1, 2, 3], [1, 2, 4], [1, 3, 4], [2, 3, 4]]), "{plan}");
    assert_eq!(plan["final"]["members"][3], json!({"id": 4, "address": addr4, "position": 3}), "{plan}");
    assert_eq!(c.config(), before, "a dry run changed the configuration");

    // What cannot work is refused before anything is sent.
    c.cmd().args(["config", "add-member", "2", &addr4]).assert().code(2).stderr(predicate::str::contains("already"));
    c.cmd().args(["config", "remove-member", "9"]).assert().code(2).stderr(predicate::str::contains("not a member"));

    // A log of some length, so that node 4 has to catch up (a learner within
    // CATCH_UP_BOUND records of the leader counts as caught up at once).
    c.cmd().args(["bench", "--clients", "4", "--ops", "1000", "--keys", "20", "-o", "json"]).assert().success();
    let _node4 = c.join(4);
    let writer = Writer::start(c.endpoints(), "mc");
    writer.wait_acked(1);

    let added = c.change(&["add-member", "4", &addr4, "--change-timeout", "25s"]);
    assert_eq!(added["outcome"], json!("done"), "{added}");
    assert_eq!(member_ids(&added["config"]), [1, 2, 3, 4], "{added}");
    let with4 = c.config();
    assert_eq!(member_ids(&with4), [1, 2, 3, 4], "{with4}");
    assert_eq!(with4["quorums"], json!([[1, 2, 3], [1, 2, 4], [1, 3, 4], [2, 3, 4]]), "{with4}");
    assert_eq!((&with4["learners"], &with4["next"]), (&json!([]), &Value::Null), "{with4}");

    let removed = c.change(&["remove-member", "4", "--change-timeout", "25s"]);
    assert_eq!(removed["outcome"], json!("done"), "{removed}");
    let after = c.config();
    assert_eq!(member_ids(&after), [1, 2, 3], "{after}");
    assert_eq!(after["quorums"], json!([[1, 2], [1, 3], [2, 3]]), "{after}");

    let acked = writer.finish();
    assert!(!acked.is_empty(), "no write was acknowledged during the changes");
    for (key, value) in acked {
        c.cmd().args(["get", &key, "-o", "plain"]).assert().success().stdout(format!("{value}\n"));
    }
}

#[test]
fn config_remove_member_with_another_member_down_is_refused_as_unsafe() {
    let mut c = NodeCluster::start(3);
    let leader = c.leader();
    let down = (1..=3).find(|&id| id != leader).expect("a follower");
    let victim = (1..=3).find(|&id| id != leader && id != down).expect("another follower");
    c.kill(down);
    // Wait until the leader has noticed (it heard nothing within a lease).
    let leader_addr = c.addr(leader);
    let start = Instant::now();
    loop {
        let status = stdout_json(c.cmd().args(["status", "--addr", &leader_addr, "-o", "json"]));
        let members = status["members"].as_array().expect("members");
        if members.iter().any(|m| m["id"] == json!(down) && m["reachable"] == json!(false)) {
            break;
        }
        assert!(start.elapsed() < WAIT, "the leader never noticed node {down} is down: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = c.config();

    // Quorums that do not intersect are refused before anything is sent.
    let all_but_down: Vec<String> = (1..=3).filter(|&id| id != down).map(|id| id.to_string()).collect();
    c.cmd()
        .args(["config", "set-quorums", &all_but_down.join(","), &down.to_string()])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("do not intersect"));

    // Removing `victim` leaves {leader, down}, whose only quorum needs
    // `down`: neither the joint nor the new configuration could commit
    // anything until `down` is back, so the leader must refuse.
    let out = c
        .cmd()
        .args(["config", "remove-member", &victim.to_string(), "--change-timeout", "10s"])
        .output()
        .expect("run remove-member");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(5),
        "removing node {victim} while node {down} is down leaves a configuration whose only quorum needs node \
         {down}: it must be refused as unsafe\nstderr: {stderr}\n{}",
        c.logs()
    );
    let named = mentions_id(&stderr, down);
    assert!(stderr.contains("unsafe") && named, "the refusal must name node {down}: {stderr}");
    assert_eq!(c.config(), before, "a refused change changed the configuration");
}

#[test]
fn config_abort_cancels_a_change_stuck_on_a_dead_member() {
    let c = NodeCluster::start(3);
    let before = c.config();
    // Nothing listens at node 4's address: it never catches up.
    let stderr = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut add = std::process::Command::new(BIN);
    add.args(["--endpoints", &c.endpoints(), "config", "add-member", "4", &c.addr(4), "--change-timeout", "25s"])
        .env_remove("TRAFTCTL_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.reopen().expect("reopen the stderr file"));
    let mut add = Guard(add.spawn().expect("spawn traftctl config add-member"));
    let start = Instant::now();
    while c.config()["learners"] != json!([{"id": 4, "address": c.addr(4)}]) {
        assert!(start.elapsed() < WAIT, "node 4 never became a learner: {}", c.config());
        std::thread::sleep(Duration::from_millis(50));
    }

    // The cluster view shows the change in flight and its learner.
    let status = stdout_json(c.cmd().args(["status", "-o", "json"]));
    assert_eq!(status["learners"], json!([4]), "{status}");
    assert_eq!(status["change"]["stage"], json!("learners"), "{status}");
    assert_eq!(member_ids(&status["change"]["target"]), [1, 2, 3, 4], "{status}");
    let four = status["members"].as_array().expect("members").iter().find(|m| m["id"] == json!(4)).cloned();
    let four = four.unwrap_or_else(|| panic!("a row for learner 4: {status}"));
    assert_eq!((&four["role"], &four["reachable"]), (&Value::Null, &json!(false)), "{four}");
    let table = stdout_text(c.cmd().args(["status"]));
    assert!(table.contains("learners: {4}") && table.contains("change in progress: learners catching up"), "{table}");

    let aborted = stdout_json(c.cmd().args(["config", "abort", "-o", "json"]));
    assert_eq!(aborted["outcome"], json!("aborted"), "{aborted}");
    assert_eq!(member_ids(&aborted["config"]), [1, 2, 3], "{aborted}");
    assert_eq!(c.config(), before, "the configuration the change started from is in force again");

    let code = loop {
        if let Some(status) = add.0.try_wait().expect("poll add-member") {
            break status.code();
        }
        assert!(start.elapsed() < WAIT, "add-member did not return after the abort");
        std::thread::sleep(Duration::from_millis(50));
    };
    let told = std::fs::read_to_string(stderr.path()).expect("read add-member's stderr");
    assert_eq!(code, Some(1), "add-member of an aborted change fails: {told}");
    assert!(told.contains("aborted"), "add-member says its change was aborted: {told}");

    c.cmd()
        .args(["config", "abort"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no configuration change is in flight"));
}

/// `text` mentions `id` as a number of its own, not inside an address.
fn mentions_id(text: &str, id: i64) -> bool {
    let id = id.to_string();
    text.match_indices(&id).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + id.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == ':' || c == '.')
            && !after.is_some_and(|c| c.is_ascii_digit() || c == '.' || c == ':')
    })
}

#[test]
fn set_quorums_that_do_not_intersect_exit_5_before_anything_is_sent() {
    let c = shared();
    let before = stdout_json(c.cmd().args(["config", "show", "-o", "json"]));
    c.cmd()
        .args(["config", "set-quorums", "1,2", "3"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("refused as unsafe"))
        .stderr(predicate::str::contains("{1,2}").and(predicate::str::contains("{3}")))
        .stderr(predicate::str::contains("do not intersect"));
    // What an unquoted `{1,2} {1,3}` becomes in the shell.
    c.cmd()
        .args(["config", "set-quorums", "1", "2", "1", "3"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("write quorums as 1,2"));
    c.cmd().args(["config", "set-quorums", "1,9"]).assert().code(2).stderr(predicate::str::contains("not a member"));
    c.cmd().args(["config", "set-quorums", "1,x"]).assert().code(2).stderr(predicate::str::contains("member id"));

    let plan = stdout_json(c.cmd().args(["config", "set-quorums", "{1,2}", "1,3", "--dry-run", "-o", "json"]));
    assert_eq!(plan["final"]["quorums"], json!([[1, 2], [1, 3]]), "{plan}");
    assert_eq!(plan["request"]["quorums"], json!([[1, 2], [1, 3]]), "{plan}");
    assert_eq!(stdout_json(c.cmd().args(["config", "show", "-o", "json"])), before);

    traftctl()
        .args(["config", "set-quorums", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("comma").and(predicate::str::contains("1,2 1,3")));
}

// ---- watch ----

#[test]
fn watch_prints_one_line_per_event() {
    let c = shared();
    let (leader_id, leader) = c.leader();
    let (_json_watch, rx, _) = spawn_watch(&["--addr", &leader, "-o", "json"]);
    let line = propose_until_seen(|| c.cmd(), "watch-k", &rx, |l| l.contains("\"commit\""));
    let event: Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert_eq!(event["node"], json!(leader_id), "{event}");
    assert!(event["seq"].is_i64() && event["at_ms"].is_i64(), "{event}");

    let (_table_watch, rx, _) = spawn_watch(&["--endpoints", &c.endpoints()]);
    let line = propose_until_seen(|| c.cmd(), "watch-k", &rx, |l| l.contains(" commit "));
    assert!(line.contains("node ") && line.contains("seq="), "{line}");
}

#[test]
fn watch_exits_3_when_the_server_goes_away() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = closed_port();
    let endpoint = format!("127.0.0.1:{port}");
    let mut node = start_node(port, &[(1, port)], dir.path());
    let cmd = || {
        let mut cmd = traftctl();
        cmd.args(["--endpoints", &endpoint]);
        cmd
    };
    let start = Instant::now();
    while !cmd().args(["status"]).output().expect("run status").status.success() {
        assert!(start.elapsed() < WAIT, "the single node elected no leader");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (mut watch, rx, stderr) = spawn_watch(&["--endpoints", &endpoint]);
    propose_until_seen(cmd, "gone-k", &rx, |l| l.contains(" commit "));
    node.0.kill().expect("kill the node");
    let _ = node.0.wait();
    let start = Instant::now();
    let code = loop {
        if let Some(status) = watch.0.try_wait().expect("poll watch") {
            break status.code();
        }
        assert!(start.elapsed() < WAIT, "watch did not notice the server went away");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(3));
    let stderr = std::fs::read_to_string(stderr.path()).unwrap_or_default();
    assert!(stderr.contains("went away"), "{stderr}");
}

// ---- bench ----

#[test]
fn bench_reports_throughput_and_latency() {
    let c = shared();
    let report = stdout_json(c.cmd().args(["bench", "--clients", "2", "--ops", "40", "--keys", "5", "-o", "json"]));
    assert_eq!(report["ops"], json!(40), "{report}");
    assert_eq!(report["writes"], json!(40));
    assert_eq!(report["errors"], json!(0), "{report}");
    for p in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(report["latency_ms"][p].as_f64().is_some_and(|v| v > 0.0), "{p}: {report}");
    }
    assert!(report["throughput_ops_per_s"].as_f64().is_some_and(|v| v > 0.0));
    // Either measured, or absent with the reason: never a guess.
    match &report["committed_out_of_order"] {
        Value::Null => assert!(report["committed_out_of_order_unavailable"].is_string(), "{report}"),
        measured => {
            // Every record the leader committed during the run: the bench's
            // 40, and whatever other tests on the shared cluster wrote.
            assert!(measured["records"].as_i64().is_some_and(|n| n >= 40), "{report}");
            assert!(measured["share"].as_f64().is_some_and(|s| (0.0..=1.0).contains(&s)));
        }
    }
    let table = stdout_text(c.cmd().args(["bench", "--clients", "2", "--ops", "20", "--read-ratio", "0.5"]));
    for word in ["throughput", "latency p50", "latency p99.9", "latency max", "committed out of order"] {
        assert!(table.contains(word), "{word} missing from\n{table}");
    }
}

#[test]
fn watch_kinds_prints_only_those_kinds() {
    let c = shared();
    let (_, leader) = c.leader();
    let (_watch, rx, _) = spawn_watch(&["--addr", &leader, "-o", "json", "--kinds", "apply"]);
    // Every line it prints is an apply: the commits of the same writes,
    // which come first, are left out.
    let other = std::cell::RefCell::new(Vec::new());
    let line = propose_until_seen(
        || c.cmd(),
        "watch-kinds",
        &rx,
        |l| {
            let apply = l.contains("\"apply\"");
            if !apply {
                other.borrow_mut().push(l.to_string());
            }
            apply
        },
    );
    assert!(line.contains("\"apply\""), "{line}");
    while let Ok(more) = rx.recv_timeout(Duration::from_millis(300)) {
        let event: Value = serde_json::from_str(&more).expect("JSON");
        assert_eq!(event["kind"], "apply", "{more}");
    }
    assert_eq!(other.into_inner(), Vec::<String>::new(), "lines of other kinds");
    traftctl().args(["watch", "--kinds", "commit,nonsense"]).assert().code(2).stderr(
        predicate::str::contains("`nonsense` is not an event kind").and(predicate::str::contains("leader_change")),
    );
}

/// Proposes to `keys` in turn until a watch line satisfies `wanted`; every
/// line the watch printed meanwhile, and a little after.
fn lines_while_proposing(
    c: &Cluster,
    keys: &[&str],
    rx: &mpsc::Receiver<String>,
    wanted: impl Fn(&str) -> bool,
) -> Vec<String> {
    let start = Instant::now();
    let mut lines = Vec::new();
    for i in 0.. {
        assert!(start.elapsed() < WAIT, "watch printed no matching line: {lines:?}");
        for key in keys {
            c.cmd().args(["propose", "set", key, &i.to_string()]).assert().success();
        }
        let until = Instant::now() + Duration::from_millis(500);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        if lines.iter().any(|l| wanted(l)) {
            break;
        }
    }
    while let Ok(more) = rx.recv_timeout(Duration::from_millis(300)) {
        lines.push(more);
    }
    lines
}

#[test]
fn watch_key_and_prefix_print_only_those_keys() {
    let c = shared();
    let (_, leader) = c.leader();
    let key_of = |line: &str| serde_json::from_str::<Value>(line).expect("JSON")["key"].clone();

    let (_watch, rx, _) = spawn_watch(&["wk-a", "--addr", &leader, "-o", "json"]);
    let lines = lines_while_proposing(c, &["wk-b", "wk-a", "wk-ab"], &rx, |l| l.contains("\"wk-a\""));
    let kinds: Vec<Value> =
        lines.iter().map(|l| serde_json::from_str::<Value>(l).expect("JSON")["kind"].clone()).collect();
    assert!(kinds.contains(&json!("commit")) && kinds.contains(&json!("apply")), "{lines:?}");
    for line in &lines {
        assert_eq!(key_of(line), json!("wk-a"), "only wk-a: {line}");
    }

    let (_watch, rx, _) = spawn_watch(&["wp-", "--prefix", "--addr", &leader, "-o", "json"]);
    let lines = lines_while_proposing(c, &["wq-1", "wp-1", "wp-2"], &rx, |l| l.contains("\"wp-2\""));
    for line in &lines {
        assert!(key_of(line).as_str().is_some_and(|k| k.starts_with("wp-")), "only wp-*: {line}");
    }

    let (_watch, rx, _) = spawn_watch(&["wk-t", "--addr", &leader]);
    let lines = lines_while_proposing(c, &["wk-t"], &rx, |l| l.contains(" commit "));
    assert!(lines.iter().all(|l| l.contains("key=wk-t")), "{lines:?}");
}

#[test]
fn watch_help_names_every_event_kind() {
    let help = stdout_text(traftctl().args(["watch", "--help"]));
    let missing: Vec<&str> =
        traftctl::node::EventKind::ALL.iter().map(|k| k.as_str()).filter(|k| !help.contains(k)).collect();
    assert!(missing.is_empty(), "`watch --help` does not explain {missing:?}:\n{help}");
}

// ---- exit codes and errors ----

#[test]
fn help_documents_the_exit_codes() {
    traftctl()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes:").and(predicate::str::contains("4  timeout")));
}

#[test]
fn usage_errors_exit_2() {
    traftctl()
        .args(["propose", "write", "x", "1", "--endpoints", "127.0.0.1:1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("valid forms: `set KEY VALUE` (or `put`), `incr KEY [DELTA]`, `del KEY`"));
    traftctl().args(["propose", "set", "x"]).assert().code(2).stderr(predicate::str::contains("valid forms"));
    traftctl().args(["get", "x", "--timeout", "5"]).assert().code(2).stderr(predicate::str::contains("500ms"));
    traftctl().args(["status", "-o", "xml"]).assert().code(2);
    traftctl()
        .args(["get", "x", "--endpoints", "nohost"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("HOST:PORT"));
}

#[test]
fn a_failed_request_exits_1() {
    let c = shared();
    c.cmd().args(["propose", "set", "exit1-s", "text"]).assert().success();
    c.cmd().args(["propose", "incr", "exit1-s"]).assert().code(1).stderr(predicate::str::contains("not an integer"));
}

#[test]
fn nothing_listening_exits_3_and_names_the_address() {
    let addr = format!("127.0.0.1:{}", closed_port());
    for args in
        [&["propose", "set", "x", "1"][..], &["get", "x"], &["status"], &["log"], &["watch"], &["config", "show"]]
    {
        traftctl()
            .args(args)
            .args(["--endpoints", &addr])
            .assert()
            .code(3)
            .stderr(predicate::str::contains(format!("cannot reach {addr}: connection refused")))
            .stderr(predicate::str::contains("traftctl local-cluster 3"));
    }
}

#[test]
fn no_leader_exits_3_and_points_at_status() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = closed_port();
    // Two of the three peers never exist, so no quorum can ever form.
    let _node = start_node(port, &[(1, port), (2, closed_port()), (3, closed_port())], dir.path());
    let endpoint = format!("127.0.0.1:{port}");
    let status = || {
        let mut c = traftctl();
        c.args(["status", "--endpoints", &endpoint]);
        c
    };
    assert_eq!(poll_until_stderr(status, "no leader"), 3);
    traftctl()
        .args(["propose", "set", "x", "1", "--endpoints", &endpoint])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("no leader").and(predicate::str::contains("traftctl status")));
}

#[test]
fn a_black_hole_times_out_with_exit_4() {
    // The kernel completes the TCP handshake for the listen backlog, but
    // nothing ever reads: every request waits until the deadline.
    let hole = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = hole.local_addr().expect("local address").to_string();
    for args in [&["get", "x"][..], &["status"], &["propose", "set", "x", "1"]] {
        traftctl()
            .args(args)
            .args(["--endpoints", &addr, "--timeout", "300ms"])
            .assert()
            .code(4)
            .stderr(predicate::str::contains(addr.as_str()));
    }
    // The client waits for the server's HTTP/2 SETTINGS before it sends a
    // request (see `traftctl::tls`), so a black hole never received the
    // proposal and its outcome is known: nothing happened.
    traftctl()
        .args(["propose", "set", "x", "1", "--endpoints", &addr, "--timeout", "300ms"])
        .assert()
        .stderr(predicate::str::contains("outcome is unknown").not());
    drop(hole);
}

#[test]
fn a_closed_stdout_exits_quietly() {
    let mut child = std::process::Command::new(BIN)
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn traftctl");
    // Usually closed before the first write (a broken pipe); either way the
    // command must neither complain nor fail.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

// ---- the command line itself ----

const CLIENT_FLAGS: [&str; 7] =
    ["--endpoints", "--timeout", "--output", "--cacert", "--cert <", "--key <", "--insecure-skip-tls-verify"];

#[test]
fn member_commands_do_not_offer_client_options() {
    for member in ["node", "local-cluster"] {
        let help = stdout_text(traftctl().args([member, "--help"]));
        for flag in CLIENT_FLAGS {
            assert!(!help.contains(flag), "`{member} --help` lists the client option {flag}:\n{help}");
        }
    }
    for client in [&["status"][..], &["config", "show"], &["snapshot", "save"], &["watch"]] {
        let help = stdout_text(traftctl().args(client).arg("--help"));
        for flag in CLIENT_FLAGS {
            assert!(help.contains(flag), "`{} --help` lacks {flag}:\n{help}", client.join(" "));
        }
    }
    // Given anyway, they are refused rather than silently ignored.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    traftctl()
        .args(["node", "--id", "1", "--peers", "1=127.0.0.1:1", "--timeout", "2s", "--data-dir"])
        .arg(&data)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--timeout is a client option"));
    traftctl()
        .args(["--endpoints", "127.0.0.1:1", "local-cluster", "--ephemeral"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--endpoints is a client option"));
    assert!(!data.exists(), "a refused node touched its data directory");
}

/// A plain HTTP/1.1 server on a free port that answers every connection
/// with `200 ok`, until the test ends.
fn plain_http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let port = listener.local_addr().expect("local address").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = stream.read(&mut [0; 1024]);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    port
}

#[test]
fn node_join_to_nothing_it_can_join_says_so_once_and_exits_3() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let listen = format!("127.0.0.1:{}", closed_port());
    let join = |target: &str| {
        let out = traftctl()
            .args(["node", "--id", "4", "--listen", &listen, "--join", target, "--data-dir"])
            .arg(&data)
            .output()
            .expect("run traftctl node");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };

    let dead = format!("127.0.0.1:{}", closed_port());
    let (code, stderr) = join(&dead);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&format!("cannot join through {dead}: connection refused")), "{stderr}");
    assert_eq!(stderr.matches("refused").count(), 1, "the cause once: {stderr}");
    assert!(!stderr.contains("transport error"), "{stderr}");

    let http = format!("127.0.0.1:{}", plain_http_server());
    let (code, stderr) = join(&http);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("does not answer as a traft member"), "{stderr}");
    assert!(!stderr.contains("version"), "not blamed on a version skew: {stderr}");
    assert!(!data.exists(), "a node that joined nothing touched its data directory");
}

// ---- completions and man pages ----

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files_under(root: &Path, dirs: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for e in entries.flatten() {
            if e.path().is_file() {
                files.push(Path::new(dir).join(e.file_name()));
            }
        }
    }
    files.sort();
    files
}

/// The committed `completions/` and `man/` must be what the current clap
/// definition generates. `TRAFTCTL_REGENERATE=1` rewrites them instead.
#[test]
fn completions_and_man_pages_match_the_committed_files() {
    let fresh = tempfile::tempdir().expect("a temporary directory");
    traftctl().arg("gen-docs").arg(fresh.path()).assert().success();
    let dirs = ["completions", "man"];
    let generated = files_under(fresh.path(), &dirs);
    assert!(generated.contains(&PathBuf::from("man/traftctl.1")), "{generated:?}");
    assert!(generated.contains(&PathBuf::from("man/traftctl-propose.1")), "{generated:?}");

    if std::env::var_os("TRAFTCTL_REGENERATE").is_some() {
        for stale in files_under(repo(), &dirs).iter().filter(|f| !generated.contains(f)) {
            std::fs::remove_file(repo().join(stale)).expect("remove a stale file");
        }
        traftctl().arg("gen-docs").arg(repo()).assert().success();
        return;
    }
    let mut drift = Vec::new();
    for f in &generated {
        let new = std::fs::read(fresh.path().join(f)).expect("read a generated file");
        match std::fs::read(repo().join(f)) {
            Ok(old) if old == new => {}
            Ok(_) => drift.push(format!("{} differs", f.display())),
            Err(_) => drift.push(format!("{} is missing", f.display())),
        }
    }
    for f in files_under(repo(), &dirs).iter().filter(|f| !generated.contains(f)) {
        drift.push(format!("{} is no longer generated", f.display()));
    }
    assert!(
        drift.is_empty(),
        "the committed completions and man pages drifted from the CLI:\n  {}\nregenerate them with \
         `TRAFTCTL_REGENERATE=1 cargo test --test cli completions_and_man_pages` (or `traftctl gen-docs .` \
         at the repository root) and commit the result",
        drift.join("\n  ")
    );
}

#[test]
fn completions_print_the_committed_scripts() {
    for (shell, file) in [("bash", "traftctl.bash"), ("zsh", "_traftctl"), ("fish", "traftctl.fish")] {
        let out = traftctl().args(["completions", shell]).assert().success().get_output().stdout.clone();
        assert!(!out.is_empty());
        if let Ok(committed) = std::fs::read(repo().join("completions").join(file)) {
            assert!(out == committed, "`traftctl completions {shell}` differs from completions/{file}");
        }
    }
}
