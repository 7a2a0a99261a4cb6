//! TLS and cluster identity end to end: real `traftctl` processes on
//! loopback, certificates made by the test (rcgen) in a temporary directory. Every wait is bounded and
//! polls; nothing asserts on timing. Every process is killed by its guard.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use traftctl::tls::ThrowawayCa;

use common::{free_consecutive, free_ports};

const BIN: &str = env!("CARGO_BIN_EXE_traftctl");

/// The bound on every wait (an election, a command), generous for a slow
/// two-core machine.
const WAIT: Duration = Duration::from_secs(40);

/// A child process killed and reaped however the test ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Certificates in a directory: one CA for the cluster, one that nobody
/// trusts, and certificates from each.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca = ThrowawayCa::new("test CA").expect("a CA");
        let other = ThrowawayCa::new("other CA").expect("another CA");
        std::fs::write(dir.path().join("ca.crt"), &ca.cert_pem).unwrap();
        std::fs::write(dir.path().join("other-ca.crt"), &other.cert_pem).unwrap();
        let names = ["127.0.0.1", "localhost"];
        for (name, issuer, expired) in
            [("member", &ca, false), ("client", &ca, false), ("expired", &ca, true), ("stranger", &other, false)]
        {
            let issued = issuer.issue(name, &names, expired).expect("a certificate");
            std::fs::write(dir.path().join(format!("{name}.crt")), issued.cert_pem).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), issued.key_pem).unwrap();
        }
        Certs { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    /// `--cacert ca.crt --cert NAME.crt --key NAME.key`.
    fn client_flags(&self, name: &str) -> Vec<String> {
        let mut flags = vec!["--cacert".to_string(), self.path("ca.crt")];
        if !name.is_empty() {
            flags.extend(["--cert".to_string(), self.path(&format!("{name}.crt"))]);
            flags.extend(["--key".to_string(), self.path(&format!("{name}.key"))]);
        }
        flags
    }
}

/// `traftctl ARGS` with a clean environment, killed if it outlives [`WAIT`].
fn run(args: &[String]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("TRAFTCTL_ENDPOINTS")
        .env_remove("TRAFTCTL_CACERT")
        .env_remove("TRAFTCTL_CERT")
        .env_remove("TRAFTCTL_KEY")
        .env_remove("TRAFTCTL_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn traftctl");
    let start = Instant::now();
    while child.try_wait().expect("poll traftctl").is_none() {
        if start.elapsed() > WAIT {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("traftctl output")
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `make()` until it succeeds; panics with the last stderr after [`WAIT`].
fn until_ok(mut make: impl FnMut() -> Vec<String>) -> Output {
    let start = Instant::now();
    loop {
        let out = run(&make());
        if out.status.success() {
            return out;
        }
        assert!(start.elapsed() < WAIT, "never succeeded; last stderr: {}", stderr(&out));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `make()` until its stderr contains `wanted` (the member may not
/// listen yet), and checks the refusal: exit 3, one line naming `endpoint`.
fn refused(mut make: impl FnMut() -> Vec<String>, endpoint: &str, wanted: &str) {
    let start = Instant::now();
    loop {
        let out = run(&make());
        let err = stderr(&out);
        if err.contains(wanted) {
            assert_eq!(out.status.code(), Some(3), "exit code for: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
            assert!(err.contains(endpoint), "names {endpoint}: {err}");
            return;
        }
        assert!(start.elapsed() < WAIT, "stderr never contained {wanted:?}; last: {err}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `traftctl node` with `extra` flags; its stderr goes to `log`.
fn node(id: i64, listen: &[String], peers: &str, data: &Path, log: &Path, extra: &[String]) -> Guard {
    let log = std::fs::File::create(log).expect("create the node log");
    let child = Command::new(BIN)
        .args(["node", "--id", &id.to_string(), "--peers", peers, "-v"])
        .args(listen)
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env_remove("TRAFTCTL_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn traftctl node");
    Guard(child)
}

/// One member whose client listener is `tls` (no TLS when empty).
fn single(certs: &Certs, tls: &[&str]) -> (Guard, String) {
    let port = free_ports(1)[0];
    let addr = format!("127.0.0.1:{port}");
    let extra: Vec<String> = tls.iter().map(|f| f.replace("DIR", &certs.dir.path().display().to_string())).collect();
    let guard = node(
        1,
        &args(&["--listen", &addr]),
        &format!("1={addr}"),
        &certs.dir.path().join("data"),
        &certs.dir.path().join("node.log"),
        &extra,
    );
    (guard, addr)
}

/// Peers dial the one port too, so a TLS listener needs the peer set.
const PEER_TLS: &[&str] = &[
    "--peer-cert-file",
    "DIR/member.crt",
    "--peer-key-file",
    "DIR/member.key",
    "--peer-trusted-ca-file",
    "DIR/ca.crt",
];

const SERVER_TLS: &[&str] = &["--cert-file", "DIR/member.crt", "--key-file", "DIR/member.key"];

const CLIENT_AUTH: &[&str] = &["--trusted-ca-file", "DIR/ca.crt", "--client-cert-auth"];

#[test]
fn client_cert_auth_refuses_each_wrong_certificate_with_its_own_message() {
    let certs = Certs::new();
    let (_node, addr) = single(&certs, &[SERVER_TLS, CLIENT_AUTH, PEER_TLS].concat());
    let https = format!("https://{addr}");
    let with = |name: &str, cmd: &[&str]| {
        let mut a = args(&["--endpoints", &https]);
        a.extend(certs.client_flags(name));
        a.extend(args(cmd));
        a
    };
    until_ok(|| with("client", &["propose", "set", "k", "7"]));
    let out = until_ok(|| with("client", &["get", "k"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "k = 7");

    // A client that connects and never starts its handshake is hung up on.
    let mut stalled = std::net::TcpStream::connect(&addr).expect("connect");
    stalled.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 16];
    // EOF or a reset is a hang-up; our own read timeout is not.
    let hung_up = match std::io::Read::read(&mut stalled, &mut buf) {
        Ok(n) => n == 0,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    };
    assert!(hung_up, "the member kept a silent connection open");
    until_ok(|| with("client", &["get", "k"]));

    refused(|| with("", &["get", "k"]), &https, "requires a client certificate");
    refused(|| with("stranger", &["get", "k"]), &https, "signed by a CA the server does not trust");
    refused(|| with("expired", &["get", "k"]), &https, "our certificate: it expired");
    // The member's own certificate from a CA the client does not trust.
    refused(
        || {
            let mut a = args(&["--endpoints", &https, "--cacert", &certs.path("other-ca.crt")]);
            a.extend(args(&["get", "k"]));
            a
        },
        &https,
        "signed by an unknown CA",
    );
}

#[test]
fn plaintext_and_tls_never_meet_silently() {
    let certs = Certs::new();
    let (_tls_node, tls_addr) = single(&certs, &[SERVER_TLS, PEER_TLS].concat());
    let plain_certs = Certs::new();
    let (_plain_node, plain_addr) = single(&plain_certs, &[]);

    // Plaintext client -> TLS member.
    refused(|| args(&["--endpoints", &tls_addr, "get", "k"]), &tls_addr, "the server speaks TLS");
    // TLS client -> plaintext member: a bare address with --cacert is TLS.
    refused(
        || args(&["--endpoints", &plain_addr, "--cacert", &certs.path("ca.crt"), "get", "k"]),
        &plain_addr,
        "does not speak TLS",
    );
    // https:// with nothing to verify the member against, and a client
    // certificate without a CA: refused, not sent in plaintext.
    let https = format!("https://{tls_addr}");
    refused(|| args(&["--endpoints", &https, "get", "k"]), &https, "without trust roots");
    refused(
        || {
            let cert = ["--cert", &certs.path("client.crt"), "--key", &certs.path("client.key")];
            [&["--endpoints", plain_addr.as_str()][..], &cert, &["get", "k"]]
                .concat()
                .iter()
                .map(|s| s.to_string())
                .collect()
        },
        &plain_addr,
        "without trust roots",
    );
    // The name checked is the address dialed.
    let wrong_name = Certs::new();
    let ca = ThrowawayCa::new("names CA").unwrap();
    let issued = ca.issue("elsewhere", &["elsewhere.example"], false).unwrap();
    std::fs::write(wrong_name.dir.path().join("ca.crt"), &ca.cert_pem).unwrap();
    std::fs::write(wrong_name.dir.path().join("member.crt"), issued.cert_pem).unwrap();
    std::fs::write(wrong_name.dir.path().join("member.key"), issued.key_pem).unwrap();
    let (_named_node, named_addr) = single(&wrong_name, &[SERVER_TLS, PEER_TLS].concat());
    refused(
        || args(&["--endpoints", &named_addr, "--cacert", &wrong_name.path("ca.crt"), "get", "k"]),
        &named_addr,
        "does not name the address dialed",
    );
}

#[test]
fn bad_tls_files_are_named_with_their_flag() {
    let certs = Certs::new();
    let out = run(&args(&["--cacert", "/nonexistent/ca.crt", "get", "k"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--cacert /nonexistent/ca.crt: cannot read it"), "{}", stderr(&out));
    let out = run(&args(&["--cacert", &certs.path("member.key"), "get", "k"]));
    assert!(stderr(&out).contains("holds no PEM certificate"), "{}", stderr(&out));
    let out = run(&args(&["--cert", &certs.path("client.crt"), "get", "k"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--key <FILE>"), "{}", stderr(&out));
    let data = certs.dir.path().join("d");
    let out = run(&args(&[
        "node",
        "--id",
        "1",
        "--peers",
        "1=127.0.0.1:1",
        "--data-dir",
        &data.display().to_string(),
        "--cert-file",
        "/nonexistent/member.crt",
        "--key-file",
        &certs.path("member.key"),
    ]));
    assert!(stderr(&out).contains("--cert-file /nonexistent/member.crt: cannot read it"), "{}", stderr(&out));
    assert!(!data.exists(), "nothing is written before the files are checked");
    // One TLS port that peers could not dial.
    let port = free_ports(1)[0].to_string();
    let out = run(&args(&[
        "node",
        "--id",
        "1",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--peers",
        &format!("1=127.0.0.1:{port}"),
        "--data-dir",
        &data.display().to_string(),
        "--cert-file",
        &certs.path("member.crt"),
        "--key-file",
        &certs.path("member.key"),
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--peer-cert-file"), "{}", stderr(&out));
    assert!(!data.exists(), "nothing is written before the flags are checked");
}

/// Three members with mutual peer TLS on peer ports of their own; member 3
/// holds a peer certificate from another CA.
#[test]
fn a_member_with_a_certificate_from_another_ca_never_joins_the_quorum() {
    let certs = Certs::new();
    let client_ports = free_ports(3);
    let peer_ports = free_ports(3);
    let peers: Vec<String> = (0..3).map(|i| format!("{}=https://127.0.0.1:{}", i + 1, peer_ports[i])).collect();
    let peers = peers.join(",");
    let mut guards = Vec::new();
    for i in 0..3 {
        let id = i as i64 + 1;
        let name = if id == 3 { "stranger" } else { "member" };
        let listen = args(&[
            "--listen-client",
            &format!("127.0.0.1:{}", client_ports[i]),
            "--listen-peer",
            &format!("127.0.0.1:{}", peer_ports[i]),
        ]);
        let tls = args(&[
            "--peer-cert-file",
            &certs.path(&format!("{name}.crt")),
            "--peer-key-file",
            &certs.path(&format!("{name}.key")),
            "--peer-trusted-ca-file",
            &certs.path("ca.crt"),
            "--peer-client-cert-auth",
        ]);
        let data = certs.dir.path().join(format!("node-{id}"));
        let log = certs.dir.path().join(format!("node-{id}.log"));
        guards.push(node(id, &listen, &peers, &data, &log, &tls));
    }
    // Clients use the plaintext client ports; a follower's redirect names
    // the leader's peer port, which this client cannot use, so the client
    // moves on to its next endpoint.
    let endpoints = format!("127.0.0.1:{},127.0.0.1:{}", client_ports[0], client_ports[1]);
    until_ok(|| args(&["--endpoints", &endpoints, "propose", "set", "q", "1"]));
    let out = until_ok(|| args(&["--endpoints", &endpoints, "get", "q"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "q = 1");

    // Member 3 can reach nobody and nobody reaches it: it never learns of
    // the leader that the write above proves exists, and its status and log
    // say why.
    let addr3 = format!("127.0.0.1:{}", client_ports[2]);
    let start = Instant::now();
    let status = loop {
        let out = until_ok(|| args(&["status", "--addr", &addr3, "-o", "json"]));
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
        let errors: Vec<String> = status["members"]
            .as_array()
            .expect("members")
            .iter()
            .filter_map(|m| m["error"].as_str().map(str::to_string))
            .collect();
        if errors.iter().any(|e| e.contains("TLS: ")) {
            break status;
        }
        assert!(start.elapsed() < WAIT, "member 3's status never showed a TLS error: {status}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status["leader"].is_null(), "member 3 knows no leader: {status}");
    let log3 = std::fs::read_to_string(certs.dir.path().join("node-3.log")).unwrap_or_default();
    assert!(log3.contains("refused us: TLS: "), "member 3 logs its TLS failure: {log3}");
    assert_ne!(status["role"], "leader");
}

#[test]
fn local_cluster_tls_banner_exports_work_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_consecutive(3);
    let mut child = Command::new(BIN)
        .args(["local-cluster", "3", "--tls", "--base-port", &base.to_string(), "--data-dir"])
        .arg(dir.path())
        .env_remove("TRAFTCTL_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn local-cluster");
    let stdout = child.stdout.take().unwrap();
    let _guard = Guard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut env: Vec<(String, String)> = Vec::new();
    let start = Instant::now();
    while !env.iter().any(|(k, _)| k == "TRAFTCTL_ENDPOINTS") || env.len() < 4 {
        let left = WAIT.checked_sub(start.elapsed()).expect("the banner within the wait");
        let line = rx.recv_timeout(left).expect("a banner line");
        if let Some(rest) = line.trim().strip_prefix("export ") {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("KEY=VALUE");
                env.push((k.to_string(), v.to_string()));
            }
        }
    }
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    for wanted in ["TRAFTCTL_CACERT", "TRAFTCTL_CERT", "TRAFTCTL_KEY", "TRAFTCTL_ENDPOINTS"] {
        assert!(names.contains(&wanted), "the banner exports {wanted}: {names:?}");
    }
    let endpoints = env.iter().find(|(k, _)| k == "TRAFTCTL_ENDPOINTS").unwrap().1.clone();
    assert!(endpoints.split(',').all(|e| e.starts_with("https://")), "{endpoints}");

    let with_env = |cmd: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(cmd).env_remove("TRAFTCTL_LOG");
        for (k, v) in &env {
            c.env(k, v);
        }
        c.output().expect("run traftctl")
    };
    let start = Instant::now();
    while !with_env(&["propose", "set", "lc", "1"]).status.success() {
        assert!(start.elapsed() < WAIT, "the exported flags never worked");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = with_env(&["get", "lc"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "lc = 1");

    let plain = format!("127.0.0.1:{base}");
    refused(|| args(&["--endpoints", &plain, "get", "lc"]), &plain, "the server speaks TLS");
}

#[test]
fn oversized_requests_and_garbage_are_refused_and_the_member_keeps_serving() {
    let certs = Certs::new();
    let (_node, addr) = single(&certs, &[]);
    until_ok(|| args(&["--endpoints", &addr, "propose", "set", "before", "1"]));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .timeout(Duration::from_secs(20))
            .connect()
            .await
            .expect("connect");
        // A command past the proposal bound.
        let big = "x".repeat(2 << 20);
        let mut raft = traftctl::pb::t_raft_client::TRaftClient::new(channel.clone());
        let status = raft.propose(traftctl::pb::Cmd::set_str("big", &big)).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("at most"), "{status:?}");
        // An admin request past the decoding limit.
        let mut admin = traftctl::pb::t_raft_admin_client::TRaftAdminClient::new(channel);
        let req = traftctl::pb::GetReq { key: "k".repeat(4 << 20), ..Default::default() };
        let status = admin.get(req).await.expect_err("refused");
        assert!(status.message().contains("too large"), "{status:?}");
    });
    // Raw garbage where HTTP/2 is expected, and a preface followed by junk.
    for junk in
        [&b"\x00\x01garbage that is not HTTP/2 at all\r\n"[..], b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff"]
    {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.write_all(junk).expect("write garbage");
        drop(s);
    }
    until_ok(|| args(&["--endpoints", &addr, "propose", "set", "after", "2"]));
    let out = until_ok(|| args(&["--endpoints", &addr, "get", "before"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "before = 1");
}

/// `status --addr ADDR -o json`, once the member answers.
fn status_of(addr: &str) -> serde_json::Value {
    let out = until_ok(|| args(&["status", "--addr", addr, "-o", "json"]));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

#[test]
fn a_member_of_another_cluster_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(3);
    let peers: Vec<String> = (0..3).map(|i| format!("{}=127.0.0.1:{}", i + 1, ports[i])).collect();
    let peers = peers.join(",");
    let mut guards = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let id = i as i64 + 1;
        // Same members, another token: member 3 seeds another cluster id.
        let token = if id == 3 { "cluster-b" } else { "cluster-a" };
        let listen = args(&["--listen", &format!("127.0.0.1:{port}")]);
        let data = dir.path().join(format!("node-{id}"));
        let log = dir.path().join(format!("node-{id}.log"));
        guards.push(node(id, &listen, &peers, &data, &log, &args(&["--initial-cluster-token", token])));
    }
    let endpoints = format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]);
    until_ok(|| args(&["--endpoints", &endpoints, "propose", "set", "c", "1"]));

    let id = |s: &serde_json::Value| s["cluster_id"].as_str().expect("a cluster id").to_string();
    let (one, two) = (status_of(&format!("127.0.0.1:{}", ports[0])), status_of(&format!("127.0.0.1:{}", ports[1])));
    assert_eq!(id(&one), id(&two), "the same token and members give the same id");
    let addr3 = format!("127.0.0.1:{}", ports[2]);
    let start = Instant::now();
    let three = loop {
        let three = status_of(&addr3);
        let refused = three["members"]
            .as_array()
            .expect("members")
            .iter()
            .filter_map(|m| m["error"].as_str())
            .any(|e| e.contains("cluster id mismatch"));
        if refused {
            break three;
        }
        assert!(start.elapsed() < WAIT, "member 3 was never refused by cluster id: {three}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_ne!(id(&three), id(&one));
    let error = three["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["error"].as_str())
        .find(|e| e.contains("cluster id mismatch"))
        .unwrap()
        .to_string();
    assert!(error.contains(&id(&one)) && error.contains(&id(&three)), "the refusal names both ids: {error}");
    assert!(three["leader"].is_null(), "member 3 knows no leader: {three}");
}
