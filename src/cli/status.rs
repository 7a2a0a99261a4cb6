//! `traftctl status`: the whole cluster in one table, or one replica in full.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value as Json, json};

use super::client::{Client, ClientOpts, Failure, unreachable_error};
use super::output::{self, Format};
use super::{CliError, CliResult, exit};
use traftctl::node::MemberRole;
use traftctl::pb::{ClusterConfig, MemberStatus, StatusReply, TailBitmap};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without --addr, asks every endpoint and every member they know for its status, finds the leader, and
prints one row per member (learners of a change in flight included): its ballots (`term 3, node 2`:
the leader it voted for and the one whose log it follows), its accepted / committed / applied seqs (as
ranges: `0-119,123`), its lag behind the leader (seqs committed on the leader that its applied column lacks),
whether it answered, and its version, uptime and data directory size. Below the table: the cluster
id, the learners, and the stage of a configuration change in flight. Exits 3 when no leader is
elected.

With --addr, prints that replica's full status, including the members as it sees them (only a
leader tracks the others; any member lists those it cannot talk to for a TLS reason).")]
pub struct Args {
    /// Show this replica's full status (HOST:PORT) instead of the cluster table.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
}

pub async fn run(opts: &ClientOpts, args: Args) -> CliResult<u8> {
    let client = Client::new(opts);
    match args.addr {
        Some(addr) => one(&client, opts.output, &addr).await,
        None => cluster(&client, opts.output).await,
    }
}

/// One replica's full status.
async fn one(client: &Client, format: Format, addr: &str) -> CliResult<u8> {
    let s = client.status_of(addr).await.map_err(|f| f.into_error(client.timeout))?;
    let status = s.status.clone().unwrap_or_default();
    let config = s.config.clone().unwrap_or_default();
    if format == Format::Json {
        let members: Vec<Json> = s.members.iter().map(member_view_json).collect();
        output::print_json(&json!({
            "id": s.id,
            "address": addr,
            "client_address": non_empty(&s.client_addr),
            "cluster_id": non_empty(&s.cluster_id),
            "role": s.role,
            "leader": output::ballot_json(&s.leader),
            "leader_address": non_empty(&s.leader_addr),
            "lease_remaining_ms": s.lease_remaining_ms,
            "status": output::replica_status_json(&s.status),
            "committed_out_of_order": s.committed_out_of_order,
            "applied_out_of_order": s.applied_out_of_order,
            "snapshot_prefix": s.snapshot_prefix,
            "compacted_below": s.compacted_below,
            "snapshots_installed": s.snapshots_installed,
            "log_records": s.log_records,
            "version": s.version,
            "uptime_ms": s.uptime_ms,
            "data_dir_bytes": s.data_dir_bytes,
            "learners": config.learners.keys().collect::<Vec<_>>(),
            "change": change_stage(&config),
            "config": output::config_json(&config),
            "members": members,
        }))?;
        return Ok(exit::OK);
    }
    let fields = vec![
        ("id", s.id.to_string()),
        ("address", addr.to_string()),
        ("client address", if s.client_addr.is_empty() { "-".to_string() } else { s.client_addr.clone() }),
        ("cluster id", s.cluster_id.clone()),
        ("role", s.role.clone()),
        ("leader", leader_text(&s)),
        ("voted for", output::ballot(&status.voted_for)),
        ("lease remaining", output::lease(s.lease_remaining_ms)),
        ("committer", output::ballot(&status.committer)),
        ("accepted", output::bitmap(&status.accepted)),
        ("committed", output::bitmap(&status.committed)),
        ("applied", output::bitmap(&status.applied)),
        ("committed out of order", s.committed_out_of_order.to_string()),
        ("applied out of order", s.applied_out_of_order.to_string()),
        ("snapshot covers", format!("seqs below {}", s.snapshot_prefix)),
        ("log", format!("{} records, compacted below seq {}", s.log_records, s.compacted_below)),
        ("snapshots installed", s.snapshots_installed.to_string()),
        ("config", config.to_string()),
        ("learners", learners_text(&config)),
        ("change in progress", change_stage(&config).unwrap_or("none").to_string()),
        ("version", s.version.clone()),
        ("uptime", format_uptime(s.uptime_ms)),
        ("data directory", format!("{} bytes", s.data_dir_bytes)),
    ];
    output::print_fields(format, fields)?;
    if !s.members.is_empty() {
        let rows: Vec<Vec<String>> = s.members.iter().map(member_view_row).collect();
        if format == Format::Table {
            output::print(format!("\nMembers as node {} sees them:", s.id))?;
        }
        let rows = if format == Format::Plain {
            // Keeps member lines apart from the field lines above.
            rows.into_iter().map(|r| std::iter::once("member".to_string()).chain(r).collect()).collect()
        } else {
            rows
        };
        output::print_rows(format, ["id", "address", "role", "committer", "accepted", "lag", "reachable"], rows)?;
    }
    Ok(exit::OK)
}

/// The stage of a configuration change in flight: new members catching up
/// as learners, or the joint configuration in force.
fn change_stage(config: &ClusterConfig) -> Option<&'static str> {
    if !config.learners.is_empty() {
        Some("learners catching up")
    } else if config.next.is_some() {
        Some("joint configuration")
    } else {
        None
    }
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
fn format_uptime(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn leader_text(s: &StatusReply) -> String {
    match (&s.leader, s.leader_addr.as_str()) {
        (Some(l), "") => l.to_string(),
        (Some(l), addr) => format!("{l}, at {addr}"),
        (None, _) => "none known".to_string(),
    }
}

fn non_empty(s: &str) -> Json {
    if s.is_empty() { Json::Null } else { json!(s) }
}

fn member_view_json(m: &MemberStatus) -> Json {
    let info = m.info.clone().unwrap_or_default();
    let status = m.status.clone().unwrap_or_default();
    json!({
        "id": info.id,
        "address": info.addr,
        "role": m.role,
        "committer": output::ballot_json(&status.committer),
        "accepted": output::bitmap_json(&status.accepted),
        "lag": m.lag,
        "reachable": m.reachable,
        "error": non_empty(&m.error),
    })
}

fn member_view_row(m: &MemberStatus) -> Vec<String> {
    let info = m.info.clone().unwrap_or_default();
    let status = m.status.clone().unwrap_or_default();
    let reachable = match (m.reachable, m.error.as_str()) {
        (true, _) => "yes".to_string(),
        (false, "") => "no".to_string(),
        (false, e) => format!("no: {e}"),
    };
    vec![
        info.id.to_string(),
        info.addr,
        m.role.clone(),
        output::ballot(&status.committer),
        output::bitmap(&status.accepted),
        m.lag.to_string(),
        reachable,
    ]
}

/// Asks every address at once; the answers keep the order of `addrs`.
async fn ask_all(client: &Client, addrs: Vec<String>) -> Vec<(String, Result<StatusReply, Failure>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, addr) in addrs.into_iter().enumerate() {
        let client = client.clone();
        tasks.spawn(async move {
            let result = client.status_of(&addr).await;
            (i, addr, result)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        // A panic in a status task is a bug here, not a cluster condition.
        out.push(joined.expect("a status request task panicked"));
    }
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, addr, result)| (addr, result)).collect()
}

fn same_addr(a: &str, b: &str) -> bool {
    a.trim_start_matches("http://") == b.trim_start_matches("http://")
}

/// The cluster table: one row per member.
async fn cluster(client: &Client, format: Format) -> CliResult<u8> {
    let mut answers = ask_all(client, client.endpoints.clone()).await;
    // Members the endpoints did not cover (the user may name only one).
    let seen: BTreeSet<i64> = answers.iter().filter_map(|(_, r)| r.as_ref().ok().map(|s| s.id)).collect();
    let mut extra: Vec<String> = Vec::new();
    for (_, reply) in &answers {
        let Ok(reply) = reply else { continue };
        for m in reply.config.iter().flat_map(|c| c.members.values()) {
            let asked =
                answers.iter().any(|(a, _)| same_addr(a, &m.addr)) || extra.iter().any(|a| same_addr(a, &m.addr));
            if !seen.contains(&m.id) && !asked {
                extra.push(m.addr.clone());
            }
        }
    }
    answers.extend(ask_all(client, extra).await);

    let replies: BTreeMap<i64, (&str, &StatusReply)> =
        answers.iter().filter_map(|(a, r)| r.as_ref().ok().map(|s| (s.id, (a.as_str(), s)))).collect();
    if replies.is_empty() {
        let failures = answers.into_iter().filter_map(|(_, r)| r.err()).collect();
        return Err(unreachable_error(failures, client.timeout));
    }
    // A deposed leader that has not heard of its successor still says
    // "leader"; the greatest ballot is the current one.
    let leader = replies
        .values()
        .filter(|(_, s)| MemberRole::parse(&s.role) == Some(MemberRole::Leader))
        .max_by_key(|(_, s)| s.leader)
        .map(|(_, s)| *s);
    let config: ClusterConfig =
        leader.or_else(|| replies.values().next().map(|(_, s)| *s)).and_then(|s| s.config.clone()).unwrap_or_default();

    let mut rows: Vec<Row> = config
        .members
        .values()
        .chain(config.learners.values())
        .map(|m| Row::new(m.id, &m.addr, replies.get(&m.id).map(|(_, s)| *s), leader, &answers))
        .collect();
    for row in &mut rows {
        row.learner = config.learners.contains_key(&row.id);
    }
    // Replicas that answered but are not in the configuration (e.g. a
    // removed member still running), and endpoints that matched no member.
    for (id, (addr, s)) in &replies {
        if !config.members.contains_key(id) && !config.learners.contains_key(id) {
            rows.push(Row::new(*id, addr, Some(s), leader, &answers));
        }
    }
    for (addr, result) in &answers {
        if result.is_err() && !rows.iter().any(|r| same_addr(&r.addr, addr)) {
            rows.push(Row::new(0, addr, None, leader, &answers));
        }
    }

    // Whose view of the cluster the summary is: the leader's, else any
    // member's that answered.
    let viewer = leader.or_else(|| replies.values().next().map(|(_, s)| *s));
    let cluster_id = viewer.map(|s| s.cluster_id.as_str()).unwrap_or_default();
    let learners: Vec<i64> = config.learners.keys().copied().collect();
    match format {
        Format::Json => output::print_json(&json!({
            "leader": leader.map(|l| json!({
                "id": l.id,
                "ballot": output::ballot_json(&l.leader),
                "address": replies.get(&l.id).map(|(a, _)| *a),
            })),
            "cluster_id": non_empty(cluster_id),
            "learners": learners,
            "change": change_json(&config),
            "members": rows.iter().map(Row::json).collect::<Vec<_>>(),
        }))?,
        _ => {
            output::print_rows(
                format,
                [
                    "id",
                    "address",
                    "role",
                    "voted for",
                    "lease",
                    "committer",
                    "accepted",
                    "committed",
                    "applied",
                    "lag",
                    "reachable",
                    "version",
                    "uptime",
                    "data",
                ],
                rows.iter().map(|r| r.cells(format)).collect(),
            )?;
            if format == Format::Table {
                output::print(format!("cluster id: {}", if cluster_id.is_empty() { "unknown" } else { cluster_id }))?;
                output::print(format!("learners: {}", learners_text(&config)))?;
                output::print(format!("change in progress: {}", change_text(&config)))?;
            }
        }
    }
    match leader {
        Some(_) => Ok(exit::OK),
        None => Err(CliError::msg(
            exit::UNAVAILABLE,
            "no leader: no replica that answered is the leader; the cluster may be electing one, or too few \
             members are up to form a quorum",
        )),
    }
}

fn learners_text(config: &ClusterConfig) -> String {
    let ids: Vec<i64> = config.learners.keys().copied().collect();
    if ids.is_empty() { "none".to_string() } else { output::id_set(&ids) }
}

/// The stage of the change in flight and where it goes, for the summary
/// under the table.
fn change_text(config: &ClusterConfig) -> String {
    match (change_stage(config), config.next.as_deref()) {
        (Some(stage), Some(next)) => format!("{stage}, moving to {next}"),
        (Some(stage), None) => stage.to_string(),
        (None, _) => "none".to_string(),
    }
}

fn change_json(config: &ClusterConfig) -> Json {
    let Some(stage) = change_stage(config) else { return Json::Null };
    let key = if config.learners.is_empty() { "joint" } else { "learners" };
    json!({
        "stage": key,
        "description": stage,
        "learners": config.learners.keys().collect::<Vec<_>>(),
        "target": config.next.as_deref().map(output::config_json),
    })
}

/// Seqs in the leader's `committed` that `applied` lacks: the lag the
/// applied columns show. (The leader's own view of a follower counts from
/// the prefix the follower can replay from its disk, which trails what it
/// applied by the last commit.)
fn lag_behind(committed: &TailBitmap, applied: &TailBitmap) -> i64 {
    committed.iter_from(applied.prefix_len()).filter(|&s| !applied.contains(s)).count() as i64
}

/// `512 B`, `3.4 KiB`, `12.0 MiB`, `1.2 GiB`.
fn format_bytes(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{} B", bytes.max(0));
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// One member's row, merged from its own answer and the leader's view of it.
struct Row {
    /// 0 when an endpoint did not answer and matched no member.
    id: i64,
    addr: String,
    status: Option<StatusReply>,
    error: Option<String>,
    /// (lag, acknowledged the leader recently); the lag by the member's own
    /// applied set when it answered, else by the leader's view.
    seen_by_leader: Option<(i64, bool)>,
    /// A learner of the change in flight.
    learner: bool,
}

impl Row {
    fn new(
        id: i64,
        addr: &str,
        status: Option<&StatusReply>,
        leader: Option<&StatusReply>,
        answers: &[(String, Result<StatusReply, Failure>)],
    ) -> Self {
        let error = if status.is_some() {
            None
        } else {
            let failure = answers.iter().find(|(a, _)| same_addr(a, addr)).and_then(|(_, r)| r.as_ref().err());
            Some(failure.map_or_else(|| "did not answer".to_string(), Failure::cause))
        };
        let seen_by_leader = leader.and_then(|l| {
            let committed = l.status.as_ref().and_then(|s| s.committed.clone()).unwrap_or_default();
            let own_applied = status.and_then(|s| s.status.as_ref()).and_then(|s| s.applied.clone());
            if l.id == id {
                // The leader does not list itself.
                return Some((lag_behind(&committed, &own_applied.unwrap_or_default()), true));
            }
            let view = l.members.iter().find(|m| m.info.as_ref().is_some_and(|i| i.id == id));
            match (view, own_applied) {
                (Some(m), Some(applied)) => Some((lag_behind(&committed, &applied), m.reachable)),
                (Some(m), None) => Some((m.lag, m.reachable)),
                (None, _) => None,
            }
        });
        Row { id, addr: addr.to_string(), status: status.cloned(), error, seen_by_leader, learner: false }
    }

    fn role(&self, s: &StatusReply) -> String {
        if self.learner { MemberRole::Learner.to_string() } else { s.role.clone() }
    }

    fn cells(&self, format: Format) -> Vec<String> {
        let dash = || "-".to_string();
        let id = if self.id == 0 { dash() } else { self.id.to_string() };
        let lag = self.seen_by_leader.map_or_else(dash, |(lag, _)| lag.to_string());
        let reachable = match (&self.error, self.seen_by_leader) {
            (Some(e), _) => format!("no: {e}"),
            (None, Some((_, false))) => "yes (no recent ack to the leader)".to_string(),
            (None, _) => "yes".to_string(),
        };
        let Some(s) = &self.status else {
            let mut cells = vec![id, self.addr.clone()];
            cells.extend(std::iter::repeat_with(dash).take(7));
            cells.extend([lag, reachable, dash(), dash(), dash()]);
            return cells;
        };
        let st = s.status.clone().unwrap_or_default();
        let (uptime, data) = match format {
            // Plain output is for scripts: milliseconds and bytes.
            Format::Plain => (s.uptime_ms.to_string(), s.data_dir_bytes.to_string()),
            _ => (format_uptime(s.uptime_ms), format_bytes(s.data_dir_bytes)),
        };
        vec![
            id,
            self.addr.clone(),
            self.role(s),
            output::ballot(&st.voted_for),
            output::lease(s.lease_remaining_ms),
            output::ballot(&st.committer),
            output::bitmap(&st.accepted),
            output::bitmap(&st.committed),
            output::bitmap(&st.applied),
            lag,
            reachable,
            if s.version.is_empty() { dash() } else { s.version.clone() },
            uptime,
            data,
        ]
    }

    fn json(&self) -> Json {
        let s = self.status.as_ref();
        let st = s.and_then(|s| s.status.clone());
        json!({
            "id": if self.id == 0 { Json::Null } else { json!(self.id) },
            "address": self.addr,
            "reachable": self.error.is_none(),
            "error": self.error,
            "role": s.map(|s| self.role(s)),
            "lease_remaining_ms": s.map(|s| s.lease_remaining_ms),
            "version": s.map(|s| non_empty(&s.version)),
            "uptime_ms": s.map(|s| s.uptime_ms),
            "data_dir_bytes": s.map(|s| s.data_dir_bytes),
            "status": st.as_ref().map(|_| output::replica_status_json(&st)),
            "lag": self.seen_by_leader.map(|(lag, _)| lag),
            "leader_sees_reachable": self.seen_by_leader.map(|(_, r)| r),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_at_a_glance() {
        assert_eq!(format_uptime(12_345), "12s");
        assert_eq!(format_uptime(250_000), "4m 10s");
        assert_eq!(format_uptime(2 * 3_600_000 + 5 * 60_000), "2h 5m");
        assert_eq!(format_uptime(3 * 86_400_000 + 4 * 3_600_000), "3d 4h");
    }

    #[test]
    fn sizes_read_at_a_glance() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 * 1024 + 400), "3.4 KiB");
        assert_eq!(format_bytes(12 * 1024 * 1024), "12.0 MiB");
    }

    #[test]
    fn lag_counts_committed_seqs_the_applied_set_lacks() {
        let set = |s: &str| s.parse::<TailBitmap>().unwrap();
        assert_eq!(lag_behind(&set("10:"), &set("10:")), 0, "an idle member that applied everything");
        assert_eq!(lag_behind(&set("10:"), &set("9:")), 1);
        assert_eq!(lag_behind(&set("10:12"), &set("8:9,12")), 1, "only 8 is missing");
        assert_eq!(lag_behind(&set("0:"), &set("0:")), 0);
    }
}
