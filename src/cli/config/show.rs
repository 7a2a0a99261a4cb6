//! `config show` and `config quorums`.

use serde_json::{Value as Json, json};

use crate::cli::output::{self, Format};
use crate::cli::{CliError, exit};
use traftctl::pb::ClusterConfig;

/// The configuration, with the learners and the target of a change in
/// flight when there is one.
pub(super) fn show(format: Format, config: &ClusterConfig) -> std::io::Result<()> {
    if format == Format::Json {
        return output::print_json(&config_with_change_json(config));
    }
    let mut members = config.sorted_members();
    members.sort_by_key(|m| m.id);
    let rows = members.iter().map(|m| vec![m.id.to_string(), m.addr.clone(), m.position.to_string()]).collect();
    let learners: Vec<String> = config.learners.values().map(|m| format!("{} ({})", m.id, m.addr)).collect();
    match format {
        Format::Plain => {
            output::print_rows(format, [""; 0], rows)?;
            output::print(format!("quorums\t{}", quorum_list(config)))?;
            for m in config.learners.values() {
                output::print(format!("learner\t{}\t{}", m.id, m.addr))?;
            }
            if let Some(next) = &config.next {
                output::print(format!("next\t{next}"))?;
            }
            Ok(())
        }
        _ => {
            output::print_rows(format, ["id", "address", "position"], rows)?;
            output::print(format!("quorums: {}", quorum_list(config)))?;
            if !learners.is_empty() {
                output::print(format!("learners (receive the log, do not vote yet): {}", learners.join(", ")))?;
            }
            if let Some(next) = &config.next {
                output::print(format!("a change is in progress, to: {next}"))?;
            }
            Ok(())
        }
    }
}

/// [`output::config_json`] plus `learners` (`[{id, address}]`) and `next`
/// (the configuration a change in flight moves to, or null).
pub(super) fn config_with_change_json(config: &ClusterConfig) -> Json {
    let mut value = output::config_json(config);
    let learners: Vec<Json> = config.learners.values().map(|m| json!({ "id": m.id, "address": m.addr })).collect();
    value["learners"] = json!(learners);
    value["next"] = config.next.as_deref().map_or(Json::Null, output::config_json);
    value
}

/// `{1,2} {1,3} {2,3}`.
pub(super) fn quorum_list(config: &ClusterConfig) -> String {
    let quorums: Vec<String> = config.quorums.iter().map(|&q| output::id_set(&config.bitmap_to_ids(q))).collect();
    quorums.join(" ")
}

pub(super) fn quorums(format: Format, config: &ClusterConfig) -> Result<(), CliError> {
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
