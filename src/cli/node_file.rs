//! `traftctl node --config FILE`: the node's flags from a TOML file, for a
//! service manager to start the same command everywhere. Each key is a
//! flag's name without `--`; a flag given on the command line wins.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;

use super::node::Args;
use super::{CliError, CliResult, LogFormat};

/// Every key a node's config file may hold. Unknown keys are refused by
/// name: a misspelt key silently ignored would leave a default in force.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct NodeFile {
    id: Option<i64>,
    listen: Option<String>,
    listen_client: Option<String>,
    listen_peer: Option<String>,
    listen_metrics: Option<String>,
    #[serde(alias = "advertise-client-urls")]
    advertise_client: Option<String>,
    #[serde(alias = "initial-advertise-peer-urls")]
    advertise_peer: Option<String>,
    peers: Option<Peers>,
    join: Option<String>,
    data_dir: Option<PathBuf>,
    initial_cluster_token: Option<String>,
    heartbeat_interval: Option<u64>,
    election_timeout: Option<u64>,
    log_format: Option<LogFormat>,
    snapshot_every: Option<u32>,
    compact_retain: Option<u32>,
    commit_order: Option<super::node::CommitOrderArg>,
    peer_connections: Option<u8>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    trusted_ca_file: Option<PathBuf>,
    client_cert_auth: Option<bool>,
    peer_cert_file: Option<PathBuf>,
    peer_key_file: Option<PathBuf>,
    peer_trusted_ca_file: Option<PathBuf>,
    peer_client_cert_auth: Option<bool>,
    /// `-v`'s count: 1 info, 2 debug, 3 trace.
    verbose: Option<u8>,
}

/// `peers = ["1=h1:7001", "2=h2:7001"]`, or one comma-separated string as
/// on the command line.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Peers {
    List(Vec<String>),
    Joined(String),
}

/// Flags that must not be in a file: a service restarted with them would
/// repeat a one-time recovery.
const COMMAND_LINE_ONLY: [&str; 2] = ["force-new-cluster", "confirm-data-loss"];

/// Fills `args` (and the top-level `verbose`) from `args.config`, for every
/// flag the command line did not give; `top` and `sub` are the matches of
/// the whole command line and of `node`.
pub fn merge(args: &mut Args, verbose: &mut u8, top: &ArgMatches, sub: &ArgMatches) -> CliResult<()> {
    let Some(path) = args.config.clone() else { return Ok(()) };
    let file = read(&path)?;
    let given = |id: &str| sub.value_source(id) == Some(ValueSource::CommandLine);
    let addr = |key: &str, value: &str| -> CliResult<SocketAddr> {
        value.trim().parse().map_err(|_| {
            CliError::usage(format!("{}: `{key} = \"{value}\"` is not HOST:PORT (e.g. 0.0.0.0:7001)", path.display()))
        })
    };
    let member = |key: &str, value: &str| -> CliResult<String> {
        super::node::parse_advertised(value)
            .map_err(|why| CliError::usage(format!("{}: `{key}`: {why}", path.display())))
    };

    if !given("id") && file.id.is_some() {
        args.id = file.id;
    }
    if !given("listen")
        && let Some(v) = &file.listen
    {
        args.listen = addr("listen", v)?;
    }
    if !given("listen_client")
        && let Some(v) = &file.listen_client
    {
        args.listen_client = Some(addr("listen-client", v)?);
    }
    if !given("listen_peer")
        && let Some(v) = &file.listen_peer
    {
        args.listen_peer = Some(addr("listen-peer", v)?);
    }
    if !given("listen_metrics")
        && let Some(v) = &file.listen_metrics
    {
        args.listen_metrics = Some(addr("listen-metrics", v)?);
    }
    if !given("advertise_client")
        && let Some(v) = &file.advertise_client
    {
        args.advertise_client = Some(member("advertise-client", v)?);
    }
    if !given("advertise_peer")
        && let Some(v) = &file.advertise_peer
    {
        args.advertise_peer = Some(member("advertise-peer", v)?);
    }
    if !given("peers")
        && let Some(peers) = file.peers
    {
        args.peers = match peers {
            Peers::List(list) => list,
            Peers::Joined(joined) => joined.split(',').map(|p| p.trim().to_string()).collect(),
        };
    }
    if !given("join") && file.join.is_some() {
        args.join = file.join;
    }
    if !given("data_dir") && file.data_dir.is_some() {
        args.data_dir = file.data_dir;
    }
    if !given("initial_cluster_token")
        && let Some(v) = file.initial_cluster_token
    {
        args.initial_cluster_token = v;
    }
    if !given("heartbeat_interval")
        && let Some(v) = file.heartbeat_interval
    {
        args.heartbeat_interval = v;
    }
    if !given("election_timeout")
        && let Some(v) = file.election_timeout
    {
        args.election_timeout = v;
    }
    if !given("log_format")
        && let Some(v) = file.log_format
    {
        args.log_format = v;
    }
    if !given("commit_order")
        && let Some(order) = file.commit_order
    {
        args.order.commit_order = order;
    }
    if !given("peer_connections")
        && let Some(v) = file.peer_connections
    {
        let max = super::node::MAX_PEER_CONNECTIONS;
        if !(1..=max).contains(&v) {
            return Err(CliError::usage(format!("{}: `peer-connections = {v}`: give 1 to {max}", path.display())));
        }
        args.order.peer_connections = v;
    }
    if !given("snapshot_every")
        && let Some(v) = file.snapshot_every
    {
        args.snapshots.snapshot_every = v;
    }
    if !given("compact_retain")
        && let Some(v) = file.compact_retain
    {
        args.snapshots.compact_retain = v;
    }
    let tls = &mut args.tls;
    for (id, slot, value) in [
        ("cert_file", &mut tls.cert_file, file.cert_file),
        ("key_file", &mut tls.key_file, file.key_file),
        ("trusted_ca_file", &mut tls.trusted_ca_file, file.trusted_ca_file),
        ("peer_cert_file", &mut tls.peer_cert_file, file.peer_cert_file),
        ("peer_key_file", &mut tls.peer_key_file, file.peer_key_file),
        ("peer_trusted_ca_file", &mut tls.peer_trusted_ca_file, file.peer_trusted_ca_file),
    ] {
        if !given(id) && value.is_some() {
            *slot = value;
        }
    }
    for (id, slot, value) in [
        ("client_cert_auth", &mut tls.client_cert_auth, file.client_cert_auth),
        ("peer_client_cert_auth", &mut tls.peer_client_cert_auth, file.peer_client_cert_auth),
    ] {
        if !given(id)
            && let Some(v) = value
        {
            *slot = v;
        }
    }
    let v_given = [top, sub].iter().any(|m| m.value_source("verbose") == Some(ValueSource::CommandLine));
    if !v_given && let Some(v) = file.verbose {
        *verbose = v;
    }
    Ok(())
}

/// Reads and parses the file; every problem is one line naming the file
/// (and the line, and the key, when there is one).
fn read(path: &Path) -> CliResult<NodeFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("--config {}: cannot read it: {e}", path.display())))?;
    // Named before serde's generic "unknown field" would.
    if let Ok(table) = toml::from_str::<toml::Table>(&text)
        && let Some(key) = COMMAND_LINE_ONLY.iter().find(|k| table.contains_key(**k))
    {
        return Err(CliError::usage(format!(
            "{}: `{key}` is a one-time recovery flag and belongs on the command line, not in a config file (a \
             restarted service would run the recovery again)",
            path.display()
        )));
    }
    toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start].matches('\n').count() + 1);
        let at = line.map_or_else(String::new, |l| format!(", line {l}"));
        let message = e.message().trim().replace("unknown field", "unknown key").replace('\n', " ");
        CliError::usage(format!("{}{at}: {message}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeFile, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        read(&path).map_err(|e| format!("{:#}", e.error))
    }

    #[test]
    fn every_key_is_a_flag_name() {
        let file = parse(
            "id = 2\nlisten = \"0.0.0.0:7001\"\nadvertise-peer = \"h2:7001\"\npeers = [\"1=h1:7001\", \"2=h2:7001\"]\n\
             data-dir = \"/var/lib/traft\"\nheartbeat-interval = 50\nelection-timeout = 500\nlog-format = \"json\"\n\
             snapshot-every = 100\ncert-file = \"c.pem\"\nverbose = 1\n",
        )
        .unwrap();
        assert_eq!(file.id, Some(2));
        assert!(matches!(file.peers, Some(Peers::List(ref l)) if l.len() == 2));
        assert_eq!(file.log_format, Some(LogFormat::Json));
        assert_eq!(file.heartbeat_interval, Some(50));
        assert!(matches!(parse("peers = \"1=h1:7001,2=h2:7001\"").unwrap().peers, Some(Peers::Joined(_))));
        assert_eq!(parse("advertise-client-urls = \"h:1\"").unwrap().advertise_client.as_deref(), Some("h:1"));
    }

    #[test]
    fn the_shipped_example_is_a_valid_config() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/node.toml");
        let file = read(&example).map_err(|e| format!("{:#}", e.error)).unwrap();
        assert_eq!(file.id, Some(1));
        assert_eq!(file.advertise_peer.as_deref(), Some("host1:2380"));
        assert!(matches!(file.peers, Some(Peers::List(ref l)) if l.len() == 3));
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let err = parse("id = 1\nlisen = \"0.0.0.0:7001\"\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("unknown key `lisen`"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let err = parse("force-new-cluster = true\n").unwrap_err();
        assert!(err.contains("command line"), "{err}");
        let err = parse("id = \"one\"\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }
}
