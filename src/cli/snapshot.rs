//! `traftctl snapshot save | status | restore`: backups of a cluster's state.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::client::{Client, ClientOpts, admin};
use super::output::{self, Format};
use super::{CliError, CliResult, exit};
use traftctl::backup::{Backup, restore_into};
use traftctl::pb::{self, SnapshotReq};
use traftctl::snapshot::Snapshot;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Save the leader's current snapshot (state, applied set, configuration, checksum) to FILE.
    #[command(after_help = "\
The leader serves the snapshot of everything it has applied, at least up to its applied prefix when
the command starts, in chunks; the file is written next to FILE and renamed into place once complete
and synced, so FILE is never a partial backup. --timeout bounds each chunk, not the whole transfer.")]
    Save(SaveArgs),
    /// Check a backup file and print what it holds.
    #[command(after_help = "A damaged or truncated file is refused with the offset and the cause (exit 1).")]
    Status(StatusArgs),
    /// Write a data directory from a backup, for a new cluster that starts with exactly that state.
    #[command(after_help = "\
Run it once per member of the new cluster, each with its own --id and --data-dir, then start each
member with `traftctl node` and the same --peers. A member started with an empty data directory
instead receives the state from the others as a snapshot. The directory must not exist or be empty.
The restored cluster keeps the cluster id of the one the backup was saved from (peers check it on
every message), unless --initial-cluster-token gives it a new one, as etcdutl does.

Example:
  traftctl snapshot restore backup.traft --data-dir /var/lib/traft --id 1 \\
    --peers 1=host1:7001,2=host2:7001,3=host3:7001")]
    Restore(RestoreArgs),
}

#[derive(Debug, clap::Args)]
pub struct SaveArgs {
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    pub file: PathBuf,
    /// The data directory to create.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The id this member will have in the new cluster.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    pub id: i64,
    /// The new cluster's members as ID=HOST:PORT (as `traftctl node --peers`).
    #[arg(long, value_delimiter = ',', required = true)]
    pub peers: Vec<String>,
    /// Give the restored cluster a new cluster id, made from TOKEN and --peers as `traftctl node`
    /// makes it (use the same TOKEN for every member). Without it, the cluster keeps the id the
    /// backup was saved from.
    #[arg(long, value_name = "TOKEN")]
    pub initial_cluster_token: Option<String>,
}

/// Pause before asking again when the leader has no snapshot that fresh yet.
const RETRY_EVERY: Duration = Duration::from_millis(50);

pub async fn run(opts: &ClientOpts, cmd: Command) -> CliResult<u8> {
    match cmd {
        Command::Save(args) => save(opts, &args.file).await,
        Command::Status(args) => status(opts.output, &args.file),
        Command::Restore(args) => restore(opts.output, &args),
    }
}

async fn save(opts: &ClientOpts, file: &Path) -> CliResult<u8> {
    let client = Client::new(opts);
    let (addr, status) = client.find_leader().await?;
    let min_prefix = status.status.as_ref().and_then(|s| s.applied.as_ref()).map_or(0, |a| a.prefix_len());
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} {bar:40} {bytes}/{total_bytes}") {
            bar.set_style(style);
        }
        bar.set_message(format!("snapshot of node {}", status.id));
        bar
    });
    let give_up = tokio::time::Instant::now() + opts.timeout;
    let mut bytes: Vec<u8> = Vec::new();
    let mut snapshot_id = 0;
    let crc = loop {
        let req = SnapshotReq { snapshot_id, offset: bytes.len() as i64, min_prefix, id: 0 };
        let chunk_client = client.renewed();
        let chunk = chunk_client
            .call(&addr, async |ch| admin(ch).snapshot_save(req).await.map(|r| r.into_inner()))
            .await
            .map_err(|f| f.into_error(opts.timeout))?;
        if chunk.snapshot_id == 0 {
            // None fresh enough yet, or the one we were reading was replaced.
            if tokio::time::Instant::now() >= give_up {
                return Err(CliError::msg(exit::TIMEOUT, format!("{addr} served no snapshot")));
            }
            bytes.clear();
            snapshot_id = 0;
            tokio::time::sleep(RETRY_EVERY).await;
            continue;
        }
        if snapshot_id != 0 && chunk.snapshot_id != snapshot_id || chunk.offset != bytes.len() as i64 {
            return Err(CliError::msg(exit::ERROR, format!("{addr} sent a chunk out of order; try again")));
        }
        snapshot_id = chunk.snapshot_id;
        bytes.extend_from_slice(&chunk.data);
        if let Some(bar) = &bar {
            bar.set_length(chunk.total_len as u64);
            bar.set_position(bytes.len() as u64);
        }
        if bytes.len() as i64 >= chunk.total_len {
            break chunk.crc;
        }
        if chunk.data.is_empty() {
            return Err(CliError::msg(exit::ERROR, format!("{addr} sent an empty chunk before the end")));
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if crc32fast::hash(&bytes) != crc {
        return Err(CliError::msg(exit::ERROR, format!("the snapshot from {addr} arrived damaged; try again")));
    }
    let snapshot = Snapshot::decode(&bytes)
        .map_err(|e| CliError::msg(exit::ERROR, format!("{addr} sent an invalid snapshot: {e}")))?;
    let backup = Backup {
        snapshot,
        config: status.config.clone().unwrap_or_default(),
        saved_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        leader: status.leader,
        cluster_id: traftctl::node::parse_cluster_id(&status.cluster_id),
    };
    write_atomically(file, &backup.encode())
        .map_err(|e| CliError::msg(exit::ERROR, format!("cannot write {}: {e}", file.display())))?;
    match opts.output {
        Format::Json => output::print_json(&json!({
            "file": file.display().to_string(),
            "from": { "id": status.id, "address": addr },
            "summary": summary_json(&backup),
        }))?,
        _ => output::print(format!(
            "saved the snapshot of node {} at {addr} to {}: {}",
            status.id,
            file.display(),
            summary_line(&backup)
        ))?,
    }
    Ok(exit::OK)
}

/// Temp file, fsync, rename, fsync of the directory: a crash leaves either
/// the old FILE or the complete new one.
fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file.file_name().ok_or_else(|| std::io::Error::other("not a file name"))?;
    let tmp = dir.join(format!(".{}.partial", name.to_string_lossy()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, file)?;
    std::fs::File::open(&dir)?.sync_all()
}

fn read_backup(file: &Path) -> CliResult<Backup> {
    let bytes =
        std::fs::read(file).map_err(|e| CliError::msg(exit::ERROR, format!("cannot read {}: {e}", file.display())))?;
    Backup::decode(&bytes).map_err(|e| CliError::msg(exit::ERROR, format!("{}: {e}", file.display())))
}

fn summary_line(b: &Backup) -> String {
    let s = &b.snapshot;
    format!(
        "{} keys, applied {} ({} records below the log length {}), checksum ok",
        s.kv.len(),
        output::seq_set(&s.applied),
        s.applied.count_ones(),
        s.applied.len()
    )
}

fn summary_json(b: &Backup) -> serde_json::Value {
    let s = &b.snapshot;
    json!({
        "keys": s.kv.len(),
        "applied": s.applied.to_string(),
        "applied_records": s.applied.count_ones(),
        "log_length": s.applied.len(),
        "saved_at_ms": b.saved_at_ms,
        "leader": output::ballot_json(&b.leader),
        "members": b.config.voters(),
        "cluster_id": b.cluster_id.map(traftctl::node::format_cluster_id),
    })
}

fn status(format: Format, file: &Path) -> CliResult<u8> {
    let backup = read_backup(file)?;
    let size = std::fs::metadata(file).map_or(0, |m| m.len());
    match format {
        Format::Json => output::print_json(&json!({
            "file": file.display().to_string(),
            "bytes": size,
            "checksum": "ok",
            "summary": summary_json(&backup),
        }))?,
        _ => output::print_fields(
            format,
            vec![
                ("file", file.display().to_string()),
                ("bytes", size.to_string()),
                ("checksum", "ok".to_string()),
                ("saved at", output::utc_timestamp(backup.saved_at_ms)),
                ("saved from", output::ballot(&backup.leader)),
                (
                    "cluster id",
                    backup.cluster_id.map_or_else(
                        || "unknown (saved before backups carried it)".to_string(),
                        traftctl::node::format_cluster_id,
                    ),
                ),
                ("members then", output::id_set(&backup.config.voters())),
                ("keys", backup.snapshot.kv.len().to_string()),
                ("applied", output::seq_set(&backup.snapshot.applied)),
                ("log length", backup.snapshot.applied.len().to_string()),
            ],
        )?,
    }
    Ok(exit::OK)
}

fn restore(format: Format, args: &RestoreArgs) -> CliResult<u8> {
    let peers = super::node::parse_peers(&args.peers).map_err(|e| CliError::usage(format!("{e:#}")))?;
    let Some(listen) = peers.get(&args.id) else {
        return Err(CliError::usage(format!("--peers must include this member (id {}) with its address", args.id)));
    };
    let config = pb::ClusterConfig::majority(peers.clone())
        .map_err(|e| CliError::usage(format!("--peers does not make a cluster: {e}")))?;
    let backup = read_backup(&args.file)?;
    let cluster_id = match &args.initial_cluster_token {
        Some(token) => Some(traftctl::node::cluster_id_from(token, &config)),
        None => backup.cluster_id,
    };
    restore_into(&args.data_dir, &backup, cluster_id).map_err(|e| CliError::msg(exit::ERROR, e))?;
    let id_text = match (cluster_id, &args.initial_cluster_token) {
        (Some(id), Some(_)) => format!("new cluster id {}", traftctl::node::format_cluster_id(id)),
        (Some(id), None) => format!("cluster id {} kept from the backup", traftctl::node::format_cluster_id(id)),
        (None, _) => {
            "no cluster id in this older backup: the member takes one from its flags at its first start".to_string()
        }
    };
    let peers_arg = args.peers.join(",");
    let start = format!(
        "traftctl node --id {} --listen {listen} --peers {peers_arg} --data-dir {}",
        args.id,
        args.data_dir.display()
    );
    match format {
        Format::Json => output::print_json(&json!({
            "data_dir": args.data_dir.display().to_string(),
            "id": args.id,
            "summary": summary_json(&backup),
            "cluster_id": cluster_id.map(traftctl::node::format_cluster_id),
            "start": start,
        }))?,
        _ => output::print(format!(
            "restored {} into {}: {}; {id_text}\nstart the member with:\n  {start}",
            args.file.display(),
            args.data_dir.display(),
            summary_line(&backup)
        ))?,
    }
    Ok(exit::OK)
}
