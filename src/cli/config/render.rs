//! The plan of a change and its outcome, as tables and JSON.

use serde_json::{Value as Json, json};

use crate::cli::output::{self, Format};
use traftctl::config::MembershipChange as Operation;
use traftctl::pb::ClusterConfig;

use super::change::{Plan, voters_only};
use super::show::quorum_list;

/// What a member does in the change: kept, added or removed.
pub(super) fn member_change(plan: &Plan, id: i64) -> &'static str {
    match (plan.current.members.contains_key(&id), plan.final_config.members.contains_key(&id)) {
        (true, true) => "",
        (false, _) => "added",
        (true, false) => "removed",
    }
}

/// The joint and final configurations, before the change is sent.
pub(super) fn print_plan(format: Format, plan: &Plan) -> std::io::Result<()> {
    if format == Format::Table {
        output::print("Joint configuration (a quorum needs a quorum of the current and of the new configuration):")?;
    }
    print_config(format, "joint", &plan.joint, Some(plan))?;
    if format == Format::Table {
        output::print("\nFinal configuration:")?;
    }
    print_config(format, "final", &plan.final_config, None)
}

/// One configuration as a table (with a change column when `plan` is given)
/// and its quorums; `-o plain` prefixes every line with `tag`.
pub(super) fn print_config(
    format: Format,
    tag: &str,
    config: &ClusterConfig,
    plan: Option<&Plan>,
) -> std::io::Result<()> {
    let mut members = config.sorted_members();
    members.sort_by_key(|m| m.id);
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            let mut row = vec![m.id.to_string(), m.addr.clone(), m.position.to_string()];
            if let Some(plan) = plan {
                row.push(member_change(plan, m.id).to_string());
            }
            row
        })
        .collect();
    if format == Format::Plain {
        let rows = rows.into_iter().map(|r| std::iter::once(tag.to_string()).chain(r).collect()).collect();
        output::print_rows(format, [""; 0], rows)?;
        return output::print(format!("{tag}\tquorums\t{}", quorum_list(config)));
    }
    let headers: &[&str] =
        if plan.is_some() { &["id", "address", "position", "change"] } else { &["id", "address", "position"] };
    output::print_rows(format, headers.iter(), rows)?;
    output::print(format!("quorums: {}", quorum_list(config)))
}

pub(super) fn outcome_json(
    op: &Operation,
    plan: &Plan,
    dry_run: bool,
    outcome: &str,
    in_force: Option<&ClusterConfig>,
    error: Option<&str>,
) -> Json {
    let mut request = json!({ "operation": op.name() });
    match op {
        Operation::Add { id, addr } => {
            request["id"] = json!(id);
            request["address"] = json!(addr);
        }
        Operation::Remove { id } => request["id"] = json!(id),
        Operation::SetQuorums { quorums } => request["quorums"] = json!(quorums),
    }
    json!({
        "request": request,
        "dry_run": dry_run,
        "current": output::config_json(&voters_only(&plan.current)),
        "joint": output::config_json(&plan.joint),
        "final": output::config_json(&plan.final_config),
        "outcome": outcome,
        "error": error,
        "config": in_force.map(output::config_json),
    })
}
