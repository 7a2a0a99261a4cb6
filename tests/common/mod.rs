//! Loopback ports for the tests that start real members, and the start of
//! a watchdog launcher for `local-cluster`. Each file under
//! `tests/` is a crate of its own; those that need these declare `mod
//! common;`. Another process (or another test of the same binary) may take
//! a port between the check here and the member's bind; the callers that
//! can retry do.

// Each test crate uses only some of these.
#![allow(dead_code)]

use std::ffi::OsString;
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};

/// `n` distinct ports the kernel handed out as free a moment ago.
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port")).collect();
    held.iter().map(|l| l.local_addr().expect("local address").port()).collect()
}

/// One free port.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// A base port with the `n - 1` ports above it free too, for `local-cluster
/// --base-port`, which binds all of them: a free port's neighbours need not
/// be, while other tests' members run.
pub fn free_consecutive(n: u16) -> u16 {
    for _ in 0..100 {
        let first = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let base = first.local_addr().expect("local address").port();
        if u32::from(base) + u32::from(n) > 65_535 {
            continue;
        }
        let rest: Result<Vec<TcpListener>, _> = (1..n).map(|i| TcpListener::bind(("127.0.0.1", base + i))).collect();
        if rest.is_ok() {
            return base;
        }
    }
    panic!("found no {n} consecutive free ports on 127.0.0.1");
}

/// Runs the shell script `launcher` with `args` as its `$0 $1 ...` (the
/// binary first): a watchdog that stops what it starts once its stdin, the
/// pipe returned here, closes. Its stdout is discarded, and `TRAFTCTL_LOG`
/// is unset so the cluster logs at its default level.
pub fn spawn_launcher(launcher: &str, args: impl IntoIterator<Item = OsString>) -> (Child, Option<ChildStdin>) {
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg(launcher)
        .args(args)
        .env_remove("TRAFTCTL_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let stdin = shell.stdin.take();
    (shell, stdin)
}
