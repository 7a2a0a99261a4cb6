//! `traftctl config show | quorums`: the configuration in force.
//!
//! Membership changes (`add-member`, `remove-member`, `set-quorums`) are not
//! here: the server answers `ChangeConfig` with UNIMPLEMENTED until joint
//! configurations land, and a command that can only fail would mislead.

use serde_json::json;

use super::client::{Client, ClientOpts};
use super::output::{self, Format};
use super::{CliError, CliResult, exit};
use traftctl::pb::ClusterConfig;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Members (id, address, quorum-bitmap position) and quorums as member-id sets.
    Show,
    /// Each quorum by member, and the smallest sets of members whose loss stops the cluster.
    #[command(after_help = "\
A set of members that contains any listed quorum can elect a leader and commit. The cluster stops when
it loses every member of one of the smallest blocking sets: no quorum is left among the others.")]
    Quorums,
}

pub async fn run(opts: &ClientOpts, cmd: Command) -> CliResult<u8> {
    let client = Client::new(opts);
    let config = fetch(&client).await?;
    match cmd {
        Command::Show => show(opts.output, &config)?,
        Command::Quorums => quorums(opts.output, &config)?,
    }
    Ok(exit::OK)
}

/// The leader's configuration; every replica's view when there is no
/// leader (a follower may lag behind a change, so say whose view it is).
async fn fetch(client: &Client) -> CliResult<ClusterConfig> {
    let (addr, status) = match client.find_leader().await {
        Ok(found) => found,
        Err(e) if e.code == exit::UNAVAILABLE => {
            let (addr, status) = client.any_status().await.map_err(|_| e)?;
            eprintln!("note: no leader is elected; showing the configuration node {} at {addr} holds", status.id);
            (addr, status)
        }
        Err(e) => return Err(e),
    };
    status.config.ok_or_else(|| CliError::msg(exit::ERROR, format!("{addr} sent a status without a configuration")))
}

fn show(format: Format, config: &ClusterConfig) -> std::io::Result<()> {
    if format == Format::Json {
        return output::print_json(&output::config_json(config));
    }
    let mut members = config.sorted_members();
    members.sort_by_key(|m| m.id);
    let rows = members.iter().map(|m| vec![m.id.to_string(), m.addr.clone(), m.position.to_string()]).collect();
    match format {
        Format::Plain => {
            output::print_rows(format, [""; 0], rows)?;
            let quorums: Vec<String> =
                config.quorums.iter().map(|&q| output::id_set(&config.bitmap_to_ids(q))).collect();
            output::print(format!("quorums\t{}", quorums.join(" ")))
        }
        _ => {
            output::print_rows(format, ["id", "address", "position"], rows)?;
            let quorums: Vec<String> =
                config.quorums.iter().map(|&q| output::id_set(&config.bitmap_to_ids(q))).collect();
            output::print(format!("quorums: {}", quorums.join(" ")))
        }
    }
}

fn quorums(format: Format, config: &ClusterConfig) -> Result<(), CliError> {
    let blocking = config.minimal_blocking_sets().map_err(|e| CliError::new(exit::ERROR, e))?;
    let quorum_ids: Vec<Vec<i64>> = config.quorums.iter().map(|&q| config.bitmap_to_ids(q)).collect();
    // Losing one member fewer than the smallest blocking set is always survivable.
    let tolerates = blocking.first().map_or(0, |s| s.len().saturating_sub(1));
    if format == Format::Json {
        output::print_json(&json!({
            "quorums": quorum_ids,
            "minimal_blocking_sets": blocking,
            "tolerated_failures": tolerates,
        }))?;
        return Ok(());
    }
    let named = |ids: &[i64]| -> String {
        let parts: Vec<String> = ids
            .iter()
            .map(|id| match config.members.get(id) {
                Some(m) => format!("{id} ({})", m.addr),
                None => format!("{id} (not a member)"),
            })
            .collect();
        parts.join(", ")
    };
    let quorum_rows = quorum_ids.iter().map(|q| vec![output::id_set(q), named(q)]).collect();
    let blocking_rows = blocking.iter().map(|b| vec![output::id_set(b), named(b)]).collect();
    if format == Format::Plain {
        let tag = |tag: &str, rows: Vec<Vec<String>>| -> Vec<Vec<String>> {
            rows.into_iter().map(|r| std::iter::once(tag.to_string()).chain(r).collect()).collect()
        };
        output::print_rows(format, [""; 0], tag("quorum", quorum_rows))?;
        output::print_rows(format, [""; 0], tag("blocking", blocking_rows))?;
        return Ok(());
    }
    output::print("Quorums (any set of members containing one can elect a leader and commit):")?;
    output::print_rows(format, ["quorum", "members"], quorum_rows)?;
    output::print("Smallest sets of members whose loss stops the cluster:")?;
    output::print_rows(format, ["blocking set", "members"], blocking_rows)?;
    output::print(format!("The cluster survives the loss of any {tolerates} member(s)."))?;
    Ok(())
}
