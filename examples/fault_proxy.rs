//! The fault proxy of `traftctl local-cluster --chaos` in front of any TCP
//! service, so another system (etcd's peer links, say) can be measured
//! under the same faults:
//!
//! ```text
//! fault_proxy --listen 127.0.0.1:12380 --to 127.0.0.1:2380 --spec reset-every=200ms
//! fault_proxy --link '1>2@127.0.0.1:12380=127.0.0.1:2380' --link '2>1@127.0.0.1:22380=127.0.0.1:2381' \
//!     --spec delay=1ms --then 10s=link=1-2,reset-every=200ms --then 20s=none
//! ```
//!
//! One process runs any number of listener -> target pairs. A link given as
//! `FROM>TO@LISTEN=TARGET` carries member ids, so `link=` and `partition=`
//! specs can name it; a bare `LISTEN=TARGET` only takes the faults for all
//! links. For etcd, give each member the proxy's listener as the address of
//! each of its peers (one link per ordered pair).
//!
//! The faults can change while it runs: `--then AFTER=SPEC` replaces them
//! AFTER the start, and lines on stdin do too: `set SPEC [SPEC...]`,
//! `clear`, `show`. It runs until Ctrl-C or SIGTERM; the end of stdin only
//! ends the commands. SPEC is what `traftctl chaos --help` describes.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use traftctl::chaos::{Chaos, FaultSpec, parse_all, spec};

#[derive(Debug, Parser)]
#[command(name = "fault_proxy", about = "TCP proxy with traftctl's faults (see `traftctl chaos --help` for SPEC)")]
struct Args {
    /// The one link's listener (with --to).
    #[arg(long, requires = "to", conflicts_with = "link")]
    listen: Option<SocketAddr>,
    /// Where the one link forwards to (with --listen).
    #[arg(long, requires = "listen")]
    to: Option<String>,
    /// A link, as [FROM>TO@]LISTEN=TARGET; repeatable.
    #[arg(long, value_parser = parse_link, required_unless_present = "listen")]
    link: Vec<Link>,
    /// The faults at the start, one rule each; repeatable (default: none).
    #[arg(long, value_parser = parse_spec)]
    spec: Vec<FaultSpec>,
    /// AFTER=SPEC: replace the faults with SPEC that long after the start
    /// (`none` clears them); repeatable.
    #[arg(long, value_parser = parse_then, value_name = "AFTER=SPEC")]
    then: Vec<(Duration, FaultSpec)>,
    /// Seed of the random draws (jitter, drop); default: from the clock.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Clone)]
struct Link {
    ends: Option<(i64, i64)>,
    listen: SocketAddr,
    target: String,
}

fn parse_spec(s: &str) -> Result<FaultSpec, String> {
    FaultSpec::parse(s).map_err(|e| e.to_string())
}

fn parse_then(s: &str) -> Result<(Duration, FaultSpec), String> {
    let (after, spec) = s.split_once('=').ok_or_else(|| format!("`{s}` is not AFTER=SPEC, e.g. 10s=drop=1%"))?;
    Ok((spec::parse_duration(s, after).map_err(|e| e.to_string())?, parse_spec(spec)?))
}

fn parse_link(s: &str) -> Result<Link, String> {
    let bad = || format!("`{s}` is not [FROM>TO@]LISTEN=TARGET, e.g. 1>2@127.0.0.1:12380=127.0.0.1:2380");
    let (ends, pair) = match s.split_once('@') {
        Some((ends, pair)) => {
            let (from, to) = ends.split_once('>').ok_or_else(bad)?;
            let id = |x: &str| x.trim().parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(bad);
            (Some((id(from)?, id(to)?)), pair)
        }
        None => (None, s),
    };
    let (listen, target) = pair.split_once('=').ok_or_else(bad)?;
    let listen = listen.trim().parse().map_err(|_| bad())?;
    Ok(Link { ends, listen, target: target.trim().to_string() })
}

fn show(chaos: &Chaos) {
    let status = chaos.status();
    let rules = if status.rules.is_empty() { "none".to_string() } else { status.rules.join("; ") };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "faults (seed {}): {rules}", status.seed);
    for l in &status.links {
        let ends = l.ends.map_or("-".to_string(), |(a, b)| format!("{a}>{b}"));
        let _ = writeln!(
            out,
            "  {ends} {} -> {}: {} ({} connections, {} cut)",
            l.listen, l.target, l.faults, l.accepted, l.cut
        );
    }
    let _ = out.flush();
}

fn set(chaos: &Chaos, rules: Vec<FaultSpec>) {
    match chaos.set(rules.into_iter().filter(|r| !r.is_empty()).collect()) {
        Ok(()) => show(chaos),
        Err(e) => eprintln!("error: {e}"),
    }
}

/// One stdin line: `set SPEC...`, `clear` or `show`.
fn command(chaos: &Chaos, line: &str) {
    let mut words = line.split_whitespace();
    match words.next() {
        None => {}
        Some("show") => show(chaos),
        Some("clear") => set(chaos, Vec::new()),
        Some("set") => match parse_all(&words.collect::<Vec<_>>()) {
            Ok(rules) if !rules.is_empty() || line.contains("none") => set(chaos, rules),
            Ok(_) => eprintln!("error: `set` needs at least one SPEC (`none` for no faults)"),
            Err(e) => eprintln!("error: {e}"),
        },
        Some(other) => eprintln!("error: unknown command `{other}`; use set SPEC..., clear, show"),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut links = args.link.clone();
    if let (Some(listen), Some(to)) = (args.listen, &args.to) {
        links.push(Link { ends: None, listen, target: to.clone() });
    }
    let seed = args.seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        now.as_nanos() as u64
    });
    let chaos = Chaos::new(seed);
    for l in &links {
        if let Err(e) = chaos.add_link(l.ends, l.listen, l.target.clone()).await {
            eprintln!("error: cannot listen on {}: {e}", l.listen);
            return std::process::ExitCode::from(1);
        }
    }
    if let Err(e) = chaos.set(args.spec.into_iter().filter(|r| !r.is_empty()).collect()) {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    show(&chaos);
    for (after, rule) in args.then {
        let chaos = chaos.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            set(&chaos, vec![rule]);
        });
    }
    // Stdin is read on a thread of its own (tokio's stdin needs a feature
    // the crate does not enable for this example alone).
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let commands = {
        let chaos = chaos.clone();
        async move {
            while let Some(line) = lines.recv().await {
                command(&chaos, &line);
            }
            std::future::pending::<()>().await
        }
    };
    tokio::select! {
        _ = commands => {}
        _ = interrupted() => {}
    }
    std::process::ExitCode::SUCCESS
}

async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("install a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
