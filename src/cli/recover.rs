//! `traftctl node --force-new-cluster`: disaster recovery when a quorum is
//! lost for good. The member's data directory is set aside and replaced by
//! one from which it starts as the only member; `config add-member` then
//! grows the cluster back.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use traftctl::backup::{restore_into, survivor_state};
use traftctl::pb::ClusterConfig;
use traftctl::storage::Storage;

/// The flags, as `traftctl node` takes them.
#[derive(Debug, Clone, clap::Args)]
pub struct ForceNewClusterArgs {
    /// Disaster recovery: start a one-member cluster from this member's data directory, when a
    /// quorum of the old cluster is lost for good. Writes only the lost members held are gone.
    /// Needs --confirm-data-loss. The old directory is kept next to the new one.
    #[arg(long, requires = "confirm_data_loss", conflicts_with = "join")]
    pub force_new_cluster: bool,
    /// Confirms --force-new-cluster.
    #[arg(long, requires = "force_new_cluster")]
    pub confirm_data_loss: bool,
}

/// Rewrites `data_dir` for a cluster of `id` alone at `addr`; returns that
/// configuration. Loud on stderr: this discards the old membership.
pub fn force_new_cluster(id: i64, addr: &str, data_dir: &Path) -> anyhow::Result<ClusterConfig> {
    if !data_dir.exists() {
        bail!(
            "--force-new-cluster: {} does not exist; it must be a surviving member's data directory",
            data_dir.display()
        );
    }
    let (storage, recovered, warnings) =
        Storage::open(data_dir).with_context(|| format!("--force-new-cluster: cannot open {}", data_dir.display()))?;
    drop(storage);
    for w in warnings {
        tracing::warn!("{w}");
    }
    let held = recovered.records.len();
    let (state, unapplied) = survivor_state(id, recovered);
    let old_members = state.config.voters();
    let aside = set_aside_name(data_dir);
    std::fs::rename(data_dir, &aside)
        .with_context(|| format!("cannot move {} aside to {}", data_dir.display(), aside.display()))?;
    // A new cluster: its id comes from the flags at the first start.
    restore_into(data_dir, &state, None).with_context(|| {
        format!("cannot write the new {} (the old data is intact at {})", data_dir.display(), aside.display())
    })?;
    eprintln!(
        "WARNING: --force-new-cluster: node {id} now forms a NEW ONE-MEMBER CLUSTER from its own data.\n\
         WARNING: the members of the old cluster {old_members:?} are no longer part of it; do not restart them \
         with their old data.\n\
         WARNING: kept {} keys, applied through seq {}; of {held} records it held, {unapplied} could not be \
         applied (they depend on records only the lost members had) and are dropped.\n\
         WARNING: the old data directory is kept at {}.\n\
         Grow the cluster back with `traftctl config add-member ID HOST:PORT`.",
        state.snapshot.kv.len(),
        state.snapshot.applied.len(),
        aside.display()
    );
    ClusterConfig::majority([(id, addr.to_string())]).context("cannot build the one-member configuration")
}

/// `DIR.before-force-new-cluster-UNIXSECONDS`, next to `DIR`.
fn set_aside_name(dir: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let name = dir.file_name().map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!("{name}.before-force-new-cluster-{secs}"))
}
