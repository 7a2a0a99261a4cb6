//! A read-only data directory and a full disk, on real `traftctl` processes.
//!
//! The disk is a small tmpfs mounted for the test (`mount -t tmpfs -o
//! size=2m`), which gives a real ENOSPC, and is grown again with `mount -o
//! remount,size=64m`. Mounting needs root: without it these tests fail and
//! say so, rather than pass without testing anything. Every process is
//! killed and every mount unmounted by guards, whatever the outcome.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use traftctl::pb::t_raft_admin_client::TRaftAdminClient;
use traftctl::pb::t_raft_client::TRaftClient;
use traftctl::pb::{self, Cmd};

use common::{free_consecutive, free_ports};

const BIN: &str = env!("CARGO_BIN_EXE_traftctl");

/// Elections, restarts and catching up all fit well within this.
const BOUND: Duration = Duration::from_secs(30);

/// A tmpfs mounted over a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: PathBuf, options: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(&dir).output();
        match out {
            Ok(o) if o.status.success() => Tmpfs { dir },
            Ok(o) => panic!(
                "this test needs root: it mounts a small tmpfs to fill a disk for real, and `mount -t tmpfs -o {options} \
                 tmpfs {}` failed: {}",
                dir.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!("this test needs root and the `mount` command to mount a small tmpfs: {e}"),
        }
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,{options}")]).arg(&self.dir).output().unwrap();
        assert!(out.status.success(), "remount {options}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, so a process the test failed to reap cannot keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A `traftctl node` process, killed and reaped however the test ends.
struct Member {
    args: Vec<String>,
    stderr: PathBuf,
    child: Option<Child>,
    addr: String,
}

impl Member {
    fn new(id: i64, ports: &[u16], data: &Path, logs: &Path) -> Member {
        let peers: Vec<String> = ports.iter().enumerate().map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1)).collect();
        let addr = format!("127.0.0.1:{}", ports[id as usize - 1]);
        let args = ["node", "--id", &id.to_string(), "--listen", &addr, "--peers", &peers.join(",")]
            .iter()
            .map(|s| s.to_string())
            .chain(["--data-dir".to_string(), data.display().to_string()])
            // Snapshots go into the WAL too, so they fill the disk with it.
            .chain(["--snapshot-every".to_string(), "200".to_string()])
            .collect();
        Member { args, stderr: logs.join(format!("node-{id}.stderr")), child: None, addr }
    }

    fn start(&mut self) {
        let stderr = std::fs::File::create(&self.stderr).unwrap();
        let child = Command::new(BIN)
            .args(&self.args)
            .env_remove("TRAFTCTL_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn traftctl node");
        self.child = Some(child);
    }

    /// The exit status once the process has exited by itself.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < bound {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn channel(addr: &str) -> Option<tonic::transport::Channel> {
    let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).ok()?.timeout(Duration::from_secs(3));
    tokio::time::timeout(Duration::from_secs(2), ep.connect()).await.ok()?.ok()
}

async fn status(addr: &str) -> Option<pb::StatusReply> {
    let mut admin = TRaftAdminClient::new(channel(addr).await?);
    admin.status(pb::StatusReq {}).await.ok().map(|r| r.into_inner())
}

/// The address of a member among `addrs` that reports itself leader.
async fn wait_leader(addrs: &[String]) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < BOUND {
        for addr in addrs {
            if status(addr).await.is_some_and(|s| s.role == "leader") {
                return Some(addr.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn value(i: usize) -> String {
    // 1 KiB per write: a 2 MiB disk holds about two thousand of them.
    format!("{i:06}-{}", "x".repeat(1017))
}

/// Writes keys `k{i}` for `i` in `range` from `clients` concurrent clients
/// at `addr`; returns the keys acknowledged. A client stops at its first
/// failure when `stop_at_failure`, otherwise it goes on.
async fn write_keys(addr: &str, range: std::ops::Range<usize>, clients: usize, stop_at_failure: bool) -> Vec<usize> {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let addr = addr.to_string();
        let keys: Vec<usize> = range.clone().skip(c).step_by(clients).collect();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let Some(ch) = channel(&addr).await else { return acked };
            let mut client = TRaftClient::new(ch);
            for i in keys {
                match client.propose(Cmd::set_str(format!("k{i}"), value(i))).await {
                    Ok(r) if r.get_ref().ok => acked.push(i),
                    _ if stop_at_failure => break,
                    _ => {}
                }
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    acked.sort_unstable();
    acked
}

/// Reads every key in `keys` linearizably at `addr`, sixteen readers at a
/// time (a lone member answers a linearizable read at its next heartbeat);
/// returns the keys missing or wrong.
async fn missing_keys(addr: &str, keys: &[usize]) -> Vec<usize> {
    let channel = channel(addr).await.expect("connect to read");
    let mut tasks = Vec::new();
    for r in 0..16 {
        let mut admin = TRaftAdminClient::new(channel.clone());
        let mine: Vec<usize> = keys.iter().copied().skip(r).step_by(16).collect();
        tasks.push(tokio::spawn(async move {
            let mut wrong = Vec::new();
            for i in mine {
                let req = pb::GetReq { key: format!("k{i}"), consistency: pb::ReadConsistency::Linearizable as i32 };
                let got = admin.get(req).await.ok().and_then(|r| r.into_inner().value).and_then(|v| v.value);
                if got != Some(pb::cmd::Value::VStr(value(i))) {
                    wrong.push(i);
                }
            }
            wrong
        }));
    }
    let mut wrong = Vec::new();
    for t in tasks {
        wrong.extend(t.await.unwrap());
    }
    wrong.sort_unstable();
    wrong
}

/// The line of `stderr` that says why the node stopped.
fn error_line(stderr: &str) -> Option<&str> {
    stderr.lines().find(|l| l.starts_with("error:"))
}

#[test]
fn a_read_only_data_directory_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(tmp.path().join("disk"), "size=4m");
    let ports = free_ports(1);
    let data = disk.dir.join("node-1");

    // A member that has run, then finds its disk mounted read-only.
    let mut member = Member::new(1, &ports, &data, tmp.path());
    member.start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(rt.block_on(wait_leader(std::slice::from_ref(&member.addr))).is_some(), "{}", member.stderr());
    drop(member);
    disk.remount("ro");
    let fresh = disk.dir.join("never-created");
    for dir in [&data, &fresh] {
        let mut member = Member::new(1, &ports, dir, tmp.path());
        member.start();
        let status = member.wait_exit(BOUND).expect("a node on a read-only directory kept running");
        let stderr = member.stderr();
        assert_eq!(status.code(), Some(1), "{stderr}");
        let line = error_line(&stderr).unwrap_or_else(|| panic!("no error line: {stderr}"));
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
        assert!(line.contains(&dir.display().to_string()), "the error does not name the directory: {line}");
        assert!(line.contains("read-only"), "the error does not name the cause: {line}");
        assert!(line.contains("read-write"), "the error does not say what to do: {line}");
    }

    // local-cluster likewise, before it starts anyone.
    let base = free_consecutive(3);
    let out = Command::new(BIN)
        .args(["local-cluster", "3", "--base-port", &base.to_string(), "--data-dir"])
        .arg(disk.dir.join("cluster"))
        .env_remove("TRAFTCTL_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = error_line(&stderr).unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(line.contains("read-only") && line.contains(&disk.dir.display().to_string()), "{line}");
}

#[test]
fn a_member_whose_disk_fills_stops_and_keeps_every_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(tmp.path().join("disk"), "size=2m");
    let ports = free_ports(1);
    let mut member = Member::new(1, &ports, &disk.dir.join("node-1"), tmp.path());
    member.start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = member.addr.clone();
    assert!(rt.block_on(wait_leader(std::slice::from_ref(&addr))).is_some(), "{}", member.stderr());

    // About 3 MiB of writes for a 2 MiB disk, from four clients.
    let acked = rt.block_on(write_keys(&addr, 0..3000, 4, true));
    let status = member.wait_exit(BOUND).expect("the member kept running on a full disk");
    let stderr = member.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let line = error_line(&stderr).unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(line.contains("No space left on device"), "{line}");
    assert!(line.contains("free space"), "the error does not say what to do: {line}");
    assert!(!acked.is_empty() && acked.len() < 3000, "{} of 3000 writes acknowledged", acked.len());

    // Grown and restarted, it has every write it acknowledged.
    disk.remount("size=64m");
    member.start();
    assert!(rt.block_on(wait_leader(std::slice::from_ref(&addr))).is_some(), "{}", member.stderr());
    let missing = rt.block_on(missing_keys(&addr, &acked));
    assert!(missing.is_empty(), "acknowledged writes lost: {:?} of {}", &missing[..missing.len().min(10)], acked.len());
    assert_eq!(rt.block_on(write_keys(&addr, 5000..5010, 1, false)).len(), 10, "{}", member.stderr());
}

#[test]
fn a_full_disk_on_one_follower_leaves_the_other_two_committing() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(tmp.path().join("disk"), "size=2m");
    let ports = free_ports(3);
    let data = |id: i64| if id == 3 { disk.dir.join("node-3") } else { tmp.path().join(format!("node-{id}")) };
    let mut members: Vec<Member> = (1..=3).map(|id| Member::new(id, &ports, &data(id), tmp.path())).collect();
    for m in &mut members {
        m.start();
    }
    let addrs: Vec<String> = members.iter().map(|m| m.addr.clone()).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut leader = rt.block_on(wait_leader(&addrs)).expect("a leader");
    if leader == addrs[2] {
        // The member whose disk fills is to be a follower.
        rt.block_on(async {
            let mut admin = TRaftAdminClient::new(channel(&leader).await.unwrap());
            admin.transfer_leadership(pb::TransferLeadershipReq { to: 1 }).await.unwrap();
        });
        leader = rt.block_on(wait_leader(&addrs[..2])).expect("member 1 or 2 leads");
    }

    // More than member 3's disk holds, which it must also store.
    let mut acked = rt.block_on(write_keys(&leader, 0..3000, 8, false));
    let exit = members[2].wait_exit(BOUND).expect("member 3 kept running on a full disk");
    let stderr = members[2].stderr();
    assert_eq!(exit.code(), Some(1), "{stderr}");
    assert!(error_line(&stderr).is_some_and(|l| l.contains("No space left on device")), "{stderr}");
    // Two of three are a quorum: everything commits without member 3.
    let late = rt.block_on(write_keys(&leader, 3000..3200, 8, false));
    assert_eq!(late.len(), 200, "writes failed after member 3 stopped");
    acked.extend(late);
    assert_eq!(acked.len(), 3200, "writes failed while member 3's disk filled");
    assert_eq!(rt.block_on(missing_keys(&leader, &acked)), Vec::<usize>::new());

    // Its disk grown, member 3 comes back and catches up.
    disk.remount("size=64m");
    members[2].start();
    let caught_up = rt.block_on(async {
        let start = Instant::now();
        while start.elapsed() < BOUND {
            let (Some(l), Some(m)) = (status(&leader).await, status(&addrs[2]).await) else { continue };
            if l.status.and_then(|s| s.applied) == m.status.and_then(|s| s.applied) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    assert!(caught_up, "member 3 did not catch up after its disk grew: {}", members[2].stderr());
}
