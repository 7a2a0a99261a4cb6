//! `traftctl watch`: the members' event streams, merged, one line per event.

use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use super::client::{Client, ClientOpts, Failure, admin, unreachable_error};
use super::output::{self, Format};
use super::{CliError, CliResult, exit, interrupted};
use traftctl::node::EventKind;
use traftctl::pb;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Every member reports its own events: elections (vote_start, vote_win, vote_fail, leader_change),
commit and apply of each seq, config_change, snapshot_installed and compacted (seq is the prefix
they cover). `lagged` means this watcher fell behind and the member dropped events for it. Runs until Ctrl-C (exit 0), or until every watched member goes away
(exit 3). --timeout bounds connecting, not the stream.

With KEY (or KEY --prefix, every key starting with KEY), only the commit and apply events of those
keys are printed, and the events that concern no key (elections) are not; with --kinds as well, both
must match. (`--key` is the client's TLS key file, so the key is positional, as in `etcdctl watch`.)

-o json prints one JSON object per line: {\"node\", \"at_ms\", \"kind\", \"seq\", \"key\", \"leader\",
\"detail\"}; -o plain appends the key as the last field.")]
pub struct Args {
    /// Watch only this member (HOST:PORT) instead of every endpoint.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Print only these kinds of event (comma separated), e.g. --kinds vote_win,leader_change,config_change.
    #[arg(long, value_delimiter = ',', value_parser = parse_kind, value_name = "KIND,...")]
    pub kinds: Vec<EventKind>,
    /// Print only the events of this key: the commit and apply of its records (as `etcdctl watch KEY`).
    #[arg(value_name = "KEY")]
    pub key: Option<String>,
    /// KEY is a prefix: print the events of every key that starts with it (as etcdctl's --prefix).
    #[arg(long, requires = "key")]
    pub prefix: bool,
}

impl Args {
    /// Whether `e` passes the filters; `lagged` always does: it says events
    /// are missing.
    fn wants(&self, e: &pb::Event) -> bool {
        let kind = EventKind::parse(&e.kind);
        if kind == Some(EventKind::Lagged) {
            return true;
        }
        let kind_ok = self.kinds.is_empty() || kind.is_some_and(|k| self.kinds.contains(&k));
        let key_ok = match &self.key {
            None => true,
            Some(_) if e.key.is_empty() => false,
            Some(prefix) if self.prefix => e.key.starts_with(prefix.as_str()),
            Some(key) => e.key == *key,
        };
        kind_ok && key_ok
    }
}

fn parse_kind(s: &str) -> Result<EventKind, String> {
    EventKind::parse(s.trim()).ok_or_else(|| {
        let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("`{s}` is not an event kind; kinds: {}", known.join(", "))
    })
}

/// What the per-member stream tasks report to the printer.
enum Report {
    Event(pb::Event),
    Ended { addr: String, why: String },
}

pub async fn run(opts: &ClientOpts, args: Args) -> CliResult<u8> {
    let client = Client::new(opts);
    let addrs = args.addr.clone().map_or_else(|| client.endpoints.clone(), |a| vec![a]);
    let (tx, mut rx) = mpsc::channel::<Report>(1024);
    let mut failures = Vec::new();
    let mut watching = 0;
    for addr in addrs {
        match open(&client, &addr).await {
            Ok(stream) => {
                watching += 1;
                tokio::spawn(forward(addr, stream, tx.clone()));
            }
            Err(Failure::TimedOut { .. }) if client.expired() => {
                return Err(CliError::msg(
                    exit::TIMEOUT,
                    format!(
                        "could not start watching {addr} within --timeout {}",
                        super::client::fmt_duration(client.timeout)
                    ),
                ));
            }
            Err(f) => failures.push(f),
        }
    }
    if watching == 0 {
        return Err(unreachable_error(failures, client.timeout));
    }
    for f in &failures {
        eprintln!("warning: not watching {}", f.describe());
    }
    drop(tx);
    let format = opts.output;
    let mut interrupt = std::pin::pin!(interrupted());
    loop {
        tokio::select! {
            _ = &mut interrupt => return Ok(exit::OK),
            report = rx.recv() => match report {
                Some(Report::Event(e)) if args.wants(&e) => print_event(format, &e)?,
                Some(Report::Event(_)) => {}
                Some(Report::Ended { addr, why }) => {
                    watching -= 1;
                    eprintln!("{addr} went away: {why}");
                }
                // Every stream task has ended and dropped its sender.
                None => break,
            },
        }
    }
    debug_assert_eq!(watching, 0);
    Err(CliError::msg(exit::UNAVAILABLE, "every watched member went away; is the cluster still running?"))
}

async fn open(client: &Client, addr: &str) -> Result<tonic::Streaming<pb::Event>, Failure> {
    client.call(addr, async |ch| admin(ch).watch(pb::WatchReq {}).await.map(|r| r.into_inner())).await
}

async fn forward(addr: String, mut stream: tonic::Streaming<pb::Event>, tx: mpsc::Sender<Report>) {
    // A `lagged` notice carries no node id; fill in the stream's member.
    let mut node = 0;
    let why = loop {
        match stream.next().await {
            Some(Ok(mut e)) => {
                if e.node == 0 {
                    e.node = node;
                } else {
                    node = e.node;
                }
                if tx.send(Report::Event(e)).await.is_err() {
                    return;
                }
            }
            Some(Err(status)) => break super::client::status_cause(&status),
            None => break "the server closed the stream".to_string(),
        }
    };
    let _ = tx.send(Report::Ended { addr, why }).await;
}

fn print_event(format: Format, e: &pb::Event) -> std::io::Result<()> {
    // A kind this build does not know (a newer member) prints without its seq.
    let seq = EventKind::parse(&e.kind).is_some_and(EventKind::carries_seq).then_some(e.seq);
    match format {
        Format::Json => output::print_json_line(&json!({
            "node": e.node,
            "at_ms": e.at_ms,
            "kind": e.kind,
            "seq": seq,
            "key": if e.key.is_empty() { serde_json::Value::Null } else { json!(e.key) },
            "leader": output::ballot_json(&e.leader),
            "detail": e.detail,
        })),
        Format::Plain => output::print(
            [
                e.at_ms.to_string(),
                e.node.to_string(),
                e.kind.clone(),
                seq.map_or_else(|| "-".to_string(), |s| s.to_string()),
                output::ballot(&e.leader),
                e.detail.clone(),
                e.key.clone(),
            ]
            .join("\t"),
        ),
        Format::Table => {
            let mut line = format!("{} node {} {:<13}", output::utc_timestamp(e.at_ms), e.node, e.kind);
            if let Some(seq) = seq {
                line.push_str(&format!(" seq={seq}"));
            }
            if !e.key.is_empty() {
                line.push_str(&format!(" key={}", e.key));
            }
            if let Some(l) = e.leader {
                line.push_str(&format!(" leader ({l})"));
            }
            if !e.detail.is_empty() {
                line.push_str(&format!(" {}", e.detail));
            }
            output::print(line.trim_end())
        }
    }
}
