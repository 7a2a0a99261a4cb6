//! `traftctl config`: the configuration in force (`show`, `quorums`) and
//! membership changes (`add-member`, `remove-member`, `set-quorums`).
//!
//! A change is planned first: the leader answers a dry run with the joint and
//! final configurations, which are printed before anything changes (and are
//! all `--dry-run` prints). The change itself is one `ChangeConfig` call that
//! the leader answers when the final configuration commits, which may take a
//! while (learners catch up first), so it has its own deadline,
//! `--change-timeout`; meanwhile the leader's status is polled to show which
//! step the change is at and how far behind a new member still is.

use std::io::IsTerminal;
use std::time::Duration;

use serde_json::{Value as Json, json};

use super::client::{
    Answer, Client, ClientOpts, Failure, Verdict, admin, fmt_duration, parse_duration, refusal, verdict,
};
use super::output::{self, Format};
use super::{CliError, CliResult, exit};
use traftctl::config::ConfigError;
use traftctl::pb::{ClusterConfig, ConfigChangeReply, ConfigChangeReq, ErrorKind, StatusReply};

/// How often the leader's status is polled while a change runs.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// After the change call ends, how long at most to wait for the cluster to
/// settle on a configuration (a removed leader steps down; a leader that lost
/// its leadership mid-change leaves the outcome to its successor). Also
/// bounded by what is left of `--change-timeout`, but never below
/// [`SETTLE_AT_LEAST`].
const SETTLE_FOR: Duration = Duration::from_secs(15);
const SETTLE_AT_LEAST: Duration = Duration::from_secs(3);

/// Shared by every command that changes the configuration.
/// The part of the help every membership change shares (a macro, so that
/// `concat!` can join it to each command's own text).
macro_rules! change_help {
    () => {
        "\
How a change runs: new members first join as learners (they receive the log but do not vote) until each
is within a few records of the leader; then the joint configuration is in force, where a quorum must
contain a quorum of the old configuration and one of the new one; then the new configuration. One config
record per step; the command returns when the last one commits. Before sending the change it prints
the joint and final configurations; --dry-run prints them and changes nothing.

While the change runs, progress goes to stderr: a progress bar of how many records a new member is
behind when stderr is a terminal, otherwise one line per step.

With -o json, one document on stdout: `request`, `current`, `joint` and `final` (members with id,
address and position; quorums as id lists), `outcome` (dry_run, done, refused, refused_unsafe,
timeout, failed or unknown), `error` and `config` (the configuration in force when done).

Exit codes:
  0  the new configuration is in force (or, with --dry-run, the plan was printed)
  1  refused (a change is already in progress, an invalid target) or failed
  2  usage: e.g. adding a member twice, removing a non-member or the last member
  3  no leader is elected, or no endpoint answered
  4  --change-timeout passed: the change may still complete (check `traftctl config show`)
  5  refused as unsafe: the members the leader heard from within a lease are not a quorum of the
     current (or, before the joint step, the new) configuration; the message names the unreachable
     members. --force skips that check. For set-quorums also: quorums that do not all intersect."
    };
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Members (id, address, quorum-bitmap position) and quorums as member-id sets.
    Show,
    /// Each quorum by member, and the smallest sets of members whose loss stops the cluster.
    #[command(after_help = "\
A set of members that contains any listed quorum can elect a leader and commit. The cluster stops when
it loses every member of one of the smallest blocking sets: no quorum is left among the others.")]
    Quorums,
    /// Add a member (already started with `traftctl node --join`); quorums become majorities.
    #[command(after_help = ADD_HELP)]
    AddMember(AddMember),
    /// Remove a member; quorums become majorities of the remaining members.
    #[command(after_help = REMOVE_HELP)]
    RemoveMember(RemoveMember),
    /// Replace the quorums with a custom quorum system over the current members.
    #[command(after_help = SET_QUORUMS_HELP)]
    SetQuorums(SetQuorums),
}

const ADD_HELP: &str = concat!(
    "\
The new configuration is the current voters plus ID, with majority quorums: add-member and
remove-member always produce majority quorums, replacing any custom ones. For another quorum system
(a grid, weighted members) add the members first, then use `traftctl config set-quorums`.

Start the new member before adding it; it waits, without voting, until it is added:
  traftctl node --id 4 --listen 10.0.0.4:7001 --join 10.0.0.1:7001 --data-dir /var/lib/traft
  traftctl config add-member 4 10.0.0.4:7001

",
    change_help!()
);

const REMOVE_HELP: &str = concat!(
    "\
The new configuration is the current voters without ID, with majority quorums (replacing any custom
ones; use `traftctl config set-quorums` afterwards for another quorum system). Removing a member that
is not one, or the last member, is refused before anything is sent (exit 2). When the leader itself is
removed it steps down once the change commits, and the remaining members elect a new leader: requests
may briefly find no leader.

",
    change_help!()
);

const SET_QUORUMS_HELP: &str = concat!(
    "\
Each QUORUM is a set of member ids separated by commas, e.g. `1,2`; braces are accepted when quoted
(`'{1,2}'`; unquoted, the shell expands {1,2} into two arguments). A set of members that contains a
listed quorum can elect a leader and commit. The members stay as they are (use add-member and
remove-member to change them); every id must be a current member.

Every two quorums must share a member, or two groups could decide without each other and committed
records could be lost: such a quorum system is refused before anything is sent, naming two quorums that
do not intersect (exit 5).

Examples, for members 1 to 4:
  traftctl config set-quorums 1,2,3 1,2,4 1,3,4 2,3,4    # majorities (what add-member makes)
  traftctl config set-quorums 1,2 1,3 1,4                # member 1 and any other member
  traftctl config set-quorums 1,2,3 2,4 --dry-run        # print the plan only

",
    change_help!()
);

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Change options")]
pub struct ChangeOpts {
    /// Print the joint and final configurations the change would go through, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Skip the leader's check that the members it heard from within a lease hold a quorum of the
    /// current and the new configuration. A forced change can leave the cluster unable to commit.
    #[arg(long)]
    pub force: bool,
    /// How long to wait for the change to finish (exit 4 after that; the change may still complete).
    /// --timeout bounds every other request.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub change_timeout: Duration,
}

#[derive(Debug, clap::Args)]
pub struct AddMember {
    /// The new member's id: a positive integer no member has.
    #[arg(value_parser = clap::value_parser!(i64).range(1..))]
    pub id: i64,
    /// Where the new member listens (HOST:PORT), as given to its `traftctl node --listen`.
    #[arg(value_parser = parse_member_addr, value_name = "[https://]HOST:PORT")]
    pub addr: String,
    #[command(flatten)]
    pub change: ChangeOpts,
}

#[derive(Debug, clap::Args)]
pub struct RemoveMember {
    /// The id of the member to remove.
    #[arg(value_parser = clap::value_parser!(i64).range(1..))]
    pub id: i64,
    #[command(flatten)]
    pub change: ChangeOpts,
}

#[derive(Debug, clap::Args)]
pub struct SetQuorums {
    /// The quorums, one argument each, as comma-separated member ids: `1,2 1,3 2,3`.
    #[arg(required = true, value_parser = parse_quorum, value_name = "QUORUM")]
    pub quorums: Vec<Quorum>,
    #[command(flatten)]
    pub change: ChangeOpts,
}

/// One quorum as the member ids the user listed, in increasing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum(pub Vec<i64>);

/// `1,2,3`, or `{1,2,3}` (quoted, so the shell leaves the braces alone).
fn parse_quorum(s: &str) -> Result<Quorum, String> {
    let trimmed = s.trim();
    let inner = match (trimmed.strip_prefix('{'), trimmed.ends_with('}')) {
        (Some(rest), true) => &rest[..rest.len() - 1],
        (None, false) => trimmed,
        _ => return Err(format!("`{s}` has an unmatched brace; write a quorum as member ids: 1,2,3")),
    };
    let mut ids = Vec::new();
    for part in inner.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("`{s}` is not a quorum: write member ids separated by commas, e.g. 1,2,3"));
        }
        match part.parse::<i64>() {
            Ok(id) if id > 0 => ids.push(id),
            _ => return Err(format!("`{part}` in `{s}` is not a member id (a positive integer); e.g. 1,2,3")),
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(Quorum(ids))
}

/// `HOST:PORT` or `https://HOST:PORT`: what peers dial.
fn parse_member_addr(s: &str) -> Result<String, String> {
    let s = s.trim();
    if super::node::valid_member_addr(s) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not HOST:PORT or https://HOST:PORT (e.g. 10.0.0.4:7001)"))
    }
}

pub async fn run(opts: &ClientOpts, cmd: Command) -> CliResult<u8> {
    let client = Client::new(opts);
    match cmd {
        Command::Show => show(opts.output, &fetch(&client).await?)?,
        Command::Quorums => quorums(opts.output, &fetch(&client).await?)?,
        Command::AddMember(args) => {
            return change(opts, Operation::Add { id: args.id, addr: args.addr }, &args.change).await;
        }
        Command::RemoveMember(args) => return change(opts, Operation::Remove { id: args.id }, &args.change).await,
        Command::SetQuorums(args) => {
            let quorums = args.quorums.into_iter().map(|q| q.0).collect();
            return change(opts, Operation::SetQuorums { quorums }, &args.change).await;
        }
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

/// The configuration, with the learners and the target of a change in
/// flight when there is one.
fn show(format: Format, config: &ClusterConfig) -> std::io::Result<()> {
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
fn config_with_change_json(config: &ClusterConfig) -> Json {
    let mut value = output::config_json(config);
    let learners: Vec<Json> = config.learners.values().map(|m| json!({ "id": m.id, "address": m.addr })).collect();
    value["learners"] = json!(learners);
    value["next"] = config.next.as_deref().map_or(Json::Null, output::config_json);
    value
}

/// `{1,2} {1,3} {2,3}`.
fn quorum_list(config: &ClusterConfig) -> String {
    let quorums: Vec<String> = config.quorums.iter().map(|&q| output::id_set(&config.bitmap_to_ids(q))).collect();
    quorums.join(" ")
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

// ---- membership changes ----

#[derive(Debug, Clone)]
enum Operation {
    Add { id: i64, addr: String },
    Remove { id: i64 },
    SetQuorums { quorums: Vec<Vec<i64>> },
}

impl Operation {
    fn name(&self) -> &'static str {
        match self {
            Operation::Add { .. } => "add-member",
            Operation::Remove { .. } => "remove-member",
            Operation::SetQuorums { .. } => "set-quorums",
        }
    }
}

/// The voters of `config` without learners or a change in flight.
fn voters_only(config: &ClusterConfig) -> ClusterConfig {
    ClusterConfig { learners: Default::default(), next: None, ..config.clone() }
}

/// The configuration `op` asks for, checked locally: what can be refused
/// without asking the leader is refused here, before anything is sent.
/// Existing members keep their quorum-bitmap positions.
fn target_config(current: &ClusterConfig, op: &Operation) -> CliResult<ClusterConfig> {
    let voters: Vec<(i64, String)> = current.members.values().map(|m| (m.id, m.addr.clone())).collect();
    let members = || output::id_set(&current.voters());
    let target = match op {
        Operation::Add { id, addr } => {
            if let Some(m) = current.members.get(id) {
                return Err(CliError::usage(format!(
                    "node {id} is already a member (at {}); members: {}",
                    m.addr,
                    members()
                )));
            }
            if let Some(m) = current.members.values().find(|m| m.addr == *addr) {
                return Err(CliError::usage(format!(
                    "member {} already has the address {addr}; every member needs its own address",
                    m.id
                )));
            }
            let with_new = voters.into_iter().chain([(*id, addr.clone())]);
            ClusterConfig::majority(with_new).map_err(|e| match e {
                ConfigError::MajorityTooLarge { .. } => CliError::usage(e),
                e => CliError::new(exit::ERROR, e),
            })?
        }
        Operation::Remove { id } => {
            if !current.members.contains_key(id) {
                let learner = if current.learners.contains_key(id) {
                    " (it is a learner of the change in progress; wait for that change to finish)"
                } else {
                    ""
                };
                return Err(CliError::usage(format!("node {id} is not a member{learner}; members: {}", members())));
            }
            if current.members.len() == 1 {
                return Err(CliError::usage(format!(
                    "node {id} is the last member; a cluster needs at least one (add another member first)"
                )));
            }
            ClusterConfig::majority(voters.into_iter().filter(|(m, _)| m != id))
                .map_err(|e| CliError::new(exit::ERROR, e))?
        }
        Operation::SetQuorums { quorums } => ClusterConfig::custom(voters, quorums.iter().map(|q| q.iter().copied()))
            .map_err(|e| match e {
            ConfigError::DisjointQuorums { .. } => {
                let hint = if quorums.iter().all(|q| q.len() == 1) {
                    "; note: unquoted, the shell expands {1,2} into `1 2`: write quorums as 1,2"
                } else {
                    ""
                };
                CliError::msg(exit::UNSAFE, format!("refused as unsafe: {e}{hint}"))
            }
            ConfigError::UnknownMember { .. } => {
                CliError::usage(format!("{e} (set-quorums keeps the members {}; add members first)", members()))
            }
            e => CliError::usage(e),
        })?,
    };
    // Aligning cannot fail for a valid target and a valid current
    // configuration; keep the unaligned target if it somehow does.
    Ok(target.aligned_to(&voters_only(current)).unwrap_or(target))
}

/// What a leader said to a `ChangeConfig` request. A refusal comes back
/// as `Done` too: the caller tells the kinds apart (unsafe, outcome unknown).
fn change_answer(reply: ConfigChangeReply) -> Answer<ConfigChangeReply> {
    match verdict(reply) {
        Verdict::Done(r) | Verdict::Refused(r) => Answer::Done(r),
        Verdict::Redirect { leader, addr } => Answer::Redirect { leader, addr },
        Verdict::NoLeader => Answer::NoLeader,
    }
}

/// Sends `req` to `addr`, following redirects to the leader, without trying
/// other endpoints: a change that may have arrived must not be sent twice.
async fn send_change(
    client: &Client,
    mut addr: String,
    req: ConfigChangeReq,
) -> Result<Answer<ConfigChangeReply>, Failure> {
    let mut hops = 0;
    loop {
        let reply =
            client.call(&addr, async |ch| admin(ch).change_config(req.clone()).await.map(|r| r.into_inner())).await?;
        match change_answer(reply) {
            Answer::Redirect { addr: next, .. } if !next.is_empty() && hops < 4 => {
                tracing::info!("{addr} is not the leader; following the redirect to {next}");
                hops += 1;
                addr = next;
            }
            answer => return Ok(answer),
        }
    }
}

/// The plan the leader computed, as the dry run returned it.
struct Plan {
    leader_addr: String,
    current: ClusterConfig,
    target: ClusterConfig,
    joint: ClusterConfig,
    final_config: ClusterConfig,
}

async fn change(opts: &ClientOpts, op: Operation, change_opts: &ChangeOpts) -> CliResult<u8> {
    let format = opts.output;
    let client = Client::new(opts);
    let (leader_addr, status) = client.find_leader().await?;
    let current = status
        .config
        .ok_or_else(|| CliError::msg(exit::ERROR, format!("{leader_addr} sent a status without a configuration")))?;
    let target = target_config(&current, &op)?;
    let dry = ConfigChangeReq { target: Some(target.clone()), force: change_opts.force, dry_run: true };
    let reply = match send_change(&client, leader_addr.clone(), dry).await.map_err(|f| f.into_error(client.timeout))? {
        Answer::Done(reply) => reply,
        Answer::NoLeader | Answer::Redirect { .. } => {
            return Err(CliError::msg(
                exit::UNAVAILABLE,
                format!("{leader_addr} is no longer the leader and names none; retry once one is elected"),
            ));
        }
        Answer::Failed(e) => return Err(e),
    };
    if !reply.ok {
        return Err(change_refusal(&reply));
    }
    let (Some(joint), Some(final_config)) = (reply.joint, reply.r#final) else {
        return Err(CliError::msg(exit::ERROR, format!("{leader_addr} planned the change but sent no configurations")));
    };
    let plan = Plan { leader_addr, current, target, joint, final_config };
    if format != Format::Json {
        print_plan(format, &plan)?;
    }
    if change_opts.dry_run {
        if format == Format::Json {
            output::print_json(&outcome_json(&op, &plan, true, "dry_run", None, None))?;
        } else if format == Format::Table {
            output::print("Dry run: nothing was changed.")?;
        }
        return Ok(exit::OK);
    }
    if plan.current.next.is_some() {
        // The leader refuses it too; saying so here names the change.
        let next = plan.current.next.as_deref().map(ToString::to_string).unwrap_or_default();
        let e = format!(
            "a configuration change is already in progress (to {next}); wait for it to finish (`traftctl status`)"
        );
        return finish_refused(format, &op, &plan, "refused", CliError::msg(exit::ERROR, e));
    }

    let outcome = run_change(opts, &plan, change_opts).await;
    match outcome {
        Ok(in_force) => {
            if format == Format::Json {
                output::print_json(&outcome_json(&op, &plan, false, "done", Some(&in_force), None))?;
            } else {
                if format == Format::Table {
                    output::print("\nDone. The configuration in force:")?;
                }
                print_config(format, "in-force", &in_force, None)?;
            }
            Ok(exit::OK)
        }
        Err((kind, e)) => finish_refused(format, &op, &plan, kind, e),
    }
}

/// Prints the JSON outcome of a change that did not happen (the error goes
/// to stderr as for every command), and returns the error.
fn finish_refused(format: Format, op: &Operation, plan: &Plan, kind: &str, e: CliError) -> CliResult<u8> {
    if format == Format::Json {
        output::print_json(&outcome_json(op, plan, false, kind, None, Some(&format!("{:#}", e.error))))?;
    }
    Err(e)
}

/// A refusal from the leader, with the exit code of its kind.
fn change_refusal(reply: &ConfigChangeReply) -> CliError {
    match reply.kind() {
        ErrorKind::Unsafe => CliError::msg(exit::UNSAFE, &reply.err),
        _ => refusal("the leader refused the change", reply),
    }
}

/// Sends the change and shows its progress until the leader answers; then
/// the configuration in force. Errors come with their JSON outcome kind.
async fn run_change(
    opts: &ClientOpts,
    plan: &Plan,
    change_opts: &ChangeOpts,
) -> Result<ClusterConfig, (&'static str, CliError)> {
    let change_client = Client::new(&ClientOpts { timeout: change_opts.change_timeout, ..opts.clone() });
    let now = tokio::time::Instant::now();
    let settle_until = (now + change_opts.change_timeout).min(now + SETTLE_FOR);
    let req = ConfigChangeReq { target: Some(plan.target.clone()), force: change_opts.force, dry_run: false };
    let mut progress = Progress::new(plan);
    let answer = {
        let send = send_change(&change_client, plan.leader_addr.clone(), req);
        tokio::pin!(send);
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                answer = &mut send => break answer,
                _ = tick.tick() => {
                    let poll = poll_client(opts);
                    // The change call keeps running while the poll waits.
                    tokio::select! {
                        found = poll.find_leader() => progress.update(found.ok().map(|(_, s)| s)),
                        answer = &mut send => break answer,
                    }
                }
            }
        }
    };
    progress.finish(matches!(&answer, Ok(Answer::Done(reply)) if reply.ok));
    let timeout = change_opts.change_timeout;
    match answer {
        Ok(Answer::Done(reply)) if reply.ok => {
            // The final record committed; a removed leader steps down now,
            // so the cluster may need a moment to answer again.
            Ok(settle(opts, &plan.target, settle_until).await.map(|(c, _)| c).unwrap_or_else(|| plan.target.clone()))
        }
        Ok(Answer::Done(reply)) if reply.kind() == ErrorKind::OutcomeUnknown => {
            unknown_outcome(opts, plan, &reply.err, settle_until).await
        }
        Ok(Answer::Done(reply)) => {
            let kind = if reply.kind() == ErrorKind::Unsafe { "refused_unsafe" } else { "refused" };
            Err((kind, change_refusal(&reply)))
        }
        Ok(Answer::Failed(e)) => Err(("failed", e)),
        Ok(Answer::NoLeader | Answer::Redirect { .. }) => Err((
            "failed",
            CliError::msg(
                exit::UNAVAILABLE,
                format!("{} is no longer the leader and names none; nothing was changed; retry", plan.leader_addr),
            ),
        )),
        Err(Failure::TimedOut { addr, sent: true }) => Err((
            "timeout",
            CliError::msg(
                exit::TIMEOUT,
                format!(
                    "the change did not finish within --change-timeout {} ({addr} is still working on it); it may \
                     still complete: check `traftctl config show` and `traftctl status`",
                    fmt_duration(timeout)
                ),
            ),
        )),
        Err(f) if f.maybe_arrived() => unknown_outcome(opts, plan, &f.describe(), settle_until).await,
        Err(f) => Err(("failed", f.into_error(timeout))),
    }
}

/// The change call ended without saying whether the change happened (its
/// leader lost leadership, or the connection broke): a new leader finishes a
/// change the log holds, so wait for the cluster to settle and compare.
async fn unknown_outcome(
    opts: &ClientOpts,
    plan: &Plan,
    why: &str,
    until: tokio::time::Instant,
) -> Result<ClusterConfig, (&'static str, CliError)> {
    eprintln!("note: {why}; waiting for the cluster to settle on a configuration");
    match settle(opts, &plan.target, until).await {
        Some((config, true)) => Ok(config),
        Some((config, false)) => Err((
            "failed",
            CliError::msg(
                exit::ERROR,
                format!("the change did not happen ({why}); the configuration in force is {config}"),
            ),
        )),
        None => Err((
            "unknown",
            CliError::msg(
                exit::ERROR,
                format!(
                    "the outcome of the change is unknown ({why}); check `traftctl config show` and `traftctl status`"
                ),
            ),
        )),
    }
}

/// A client for one status poll.
fn poll_client(opts: &ClientOpts) -> Client {
    Client::new(&ClientOpts { timeout: opts.timeout.min(Duration::from_secs(2)), ..opts.clone() })
}

/// Waits until `until` (or [`SETTLE_AT_LEAST`] from now) for a leader whose configuration has no change in
/// flight; returns it and whether it is `target` (same members and quorums).
async fn settle(
    opts: &ClientOpts,
    target: &ClusterConfig,
    until: tokio::time::Instant,
) -> Option<(ClusterConfig, bool)> {
    let until = until.max(tokio::time::Instant::now() + SETTLE_AT_LEAST);
    loop {
        if let Ok((_, status)) = poll_client(opts).find_leader().await
            && let Some(config) = status.config
            && config.next.is_none()
            && config.learners.is_empty()
        {
            let same = same_config(&config, target);
            return Some((config, same));
        }
        if tokio::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Same members (ids and addresses) and the same quorums as id sets:
/// positions may differ.
fn same_config(a: &ClusterConfig, b: &ClusterConfig) -> bool {
    let members =
        |c: &ClusterConfig| -> Vec<(i64, String)> { c.members.values().map(|m| (m.id, m.addr.clone())).collect() };
    let quorums = |c: &ClusterConfig| -> Vec<Vec<i64>> {
        let mut q: Vec<Vec<i64>> = c.quorums.iter().map(|&q| c.bitmap_to_ids(q)).collect();
        q.sort();
        q
    };
    members(a) == members(b) && quorums(a) == quorums(b)
}

// ---- progress ----

/// The step a change is at, as the leader's configuration shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Not started yet (or already over): the configuration has no change in flight.
    Idle,
    Learners,
    Joint,
}

fn step_of(config: &ClusterConfig) -> Step {
    if !config.learners.is_empty() {
        Step::Learners
    } else if config.next.is_some() {
        Step::Joint
    } else {
        Step::Idle
    }
}

/// How many records the new members are behind the leader, at most. The
/// leader reports a learner without its `Info` (it is not in `Members`), so a
/// member status without one is taken to be a learner's.
fn learner_lag(status: &StatusReply) -> Option<i64> {
    let learners = status.config.as_ref().map(|c| c.learners.clone()).unwrap_or_default();
    status.members.iter().filter(|m| m.info.as_ref().is_none_or(|i| learners.contains_key(&i.id))).map(|m| m.lag).max()
}

/// Catch-up and step reporting on stderr: a progress bar on a terminal,
/// otherwise a line per step.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    step: Step,
    newcomers: Vec<i64>,
    has_newcomers: bool,
    last_lag: Option<i64>,
}

impl Progress {
    fn new(plan: &Plan) -> Self {
        let newcomers: Vec<i64> =
            plan.target.members.keys().copied().filter(|id| !plan.current.members.contains_key(id)).collect();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(100));
            bar.set_message("sending the change to the leader");
            bar
        });
        let has_newcomers = !newcomers.is_empty();
        Progress { bar, step: Step::Idle, newcomers, has_newcomers, last_lag: None }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.set_message(text),
            None => eprintln!("{text}"),
        }
    }

    fn update(&mut self, status: Option<StatusReply>) {
        let Some(status) = status else { return };
        let Some(config) = status.config.as_ref() else { return };
        let step = step_of(config);
        let who = output::id_set(&self.newcomers);
        if step != self.step {
            self.step = step.clone();
            match step {
                Step::Learners => match &self.bar {
                    Some(bar) => {
                        let style = indicatif::ProgressStyle::with_template(
                            "{spinner} step 1/3: learner {msg} catching up [{bar:30}] {pos}/{len} records",
                        );
                        bar.set_style(style.unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
                        bar.set_message(who.clone());
                    }
                    None => eprintln!("step 1/3: {who} joined as learners and receive the log"),
                },
                Step::Joint => {
                    if let Some(bar) = &self.bar {
                        bar.set_style(indicatif::ProgressStyle::default_spinner());
                    }
                    self.line(format!(
                        "step {}: the joint configuration is in force; waiting for a quorum of the old and of the \
                         new members to hold it",
                        if self.has_newcomers { "2/3" } else { "1/2" }
                    ));
                }
                Step::Idle => {}
            }
        }
        let lag = if step == Step::Learners { learner_lag(&status) } else { None };
        if let Some(lag) = lag.map(|l| l.max(0) as u64) {
            match &self.bar {
                Some(bar) => {
                    // The bar starts at the first lag seen; more writes may
                    // make the learner fall further behind.
                    let len = bar.length().unwrap_or(0).max(lag);
                    bar.set_length(len);
                    bar.set_position(len - lag);
                }
                None if self.last_lag.is_none() => eprintln!("  {who} is {lag} records behind the leader"),
                None => {}
            }
            self.last_lag = Some(lag as i64);
        }
    }

    /// Clears the bar; on success, says the last step is done (a line in
    /// any case: the bar is gone and the table follows on stdout).
    fn finish(&mut self, done: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if done {
            let n = if self.has_newcomers { "3/3" } else { "2/2" };
            eprintln!("step {n}: the new configuration is in force");
        }
    }
}

// ---- plan and outcome rendering ----

/// What a member does in the change: kept, added or removed.
fn member_change(plan: &Plan, id: i64) -> &'static str {
    match (plan.current.members.contains_key(&id), plan.final_config.members.contains_key(&id)) {
        (true, true) => "",
        (false, _) => "added",
        (true, false) => "removed",
    }
}

/// The joint and final configurations, before the change is sent.
fn print_plan(format: Format, plan: &Plan) -> std::io::Result<()> {
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
fn print_config(format: Format, tag: &str, config: &ClusterConfig, plan: Option<&Plan>) -> std::io::Result<()> {
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

fn outcome_json(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ClusterConfig {
        ClusterConfig::majority([(1, "a:1"), (2, "b:1"), (3, "c:1")]).unwrap()
    }

    #[test]
    fn quorums_parse_with_or_without_braces() {
        assert_eq!(parse_quorum("1,2"), Ok(Quorum(vec![1, 2])));
        assert_eq!(parse_quorum("{3, 1}"), Ok(Quorum(vec![1, 3])));
        assert_eq!(parse_quorum("2"), Ok(Quorum(vec![2])));
        assert_eq!(parse_quorum("1,1,2"), Ok(Quorum(vec![1, 2])));
        for bad in ["", "{}", "1,", ",1", "{1,2", "1,2}", "a", "0", "-1", "1;2", "1 2"] {
            assert!(parse_quorum(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn member_addresses_are_host_port() {
        assert!(parse_member_addr("10.0.0.4:7001").is_ok());
        assert!(parse_member_addr("[::1]:7001").is_ok());
        assert!(parse_member_addr("https://10.0.0.4:7001").is_ok());
        for bad in ["host", "host:0", ":7001", "http://h:1"] {
            assert!(parse_member_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn add_and_remove_make_majorities_and_keep_positions() {
        let add = target_config(&three(), &Operation::Add { id: 4, addr: "d:1".into() }).unwrap();
        assert_eq!(add.voters(), [1, 2, 3, 4]);
        assert_eq!(add.quorums.len(), 4, "every 3 of 4");
        assert_eq!(add.members[&4].position, 3);

        let removed = target_config(&three(), &Operation::Remove { id: 2 }).unwrap();
        assert_eq!(removed.voters(), [1, 3]);
        assert_eq!(removed.quorums.iter().map(|&q| removed.bitmap_to_ids(q)).collect::<Vec<_>>(), [vec![1, 3]]);
        assert_eq!(removed.members[&3].position, 2, "member 3 keeps its bit");
    }

    #[test]
    fn local_refusals_have_their_exit_codes() {
        let code = |op| target_config(&three(), &op).err().map(|e| e.code);
        assert_eq!(code(Operation::Add { id: 2, addr: "x:1".into() }), Some(exit::USAGE));
        assert_eq!(code(Operation::Add { id: 4, addr: "a:1".into() }), Some(exit::USAGE));
        assert_eq!(code(Operation::Remove { id: 9 }), Some(exit::USAGE));
        let one = ClusterConfig::majority([(1, "a:1")]).unwrap();
        assert_eq!(target_config(&one, &Operation::Remove { id: 1 }).err().map(|e| e.code), Some(exit::USAGE));
        assert_eq!(code(Operation::SetQuorums { quorums: vec![vec![1, 5]] }), Some(exit::USAGE));

        let disjoint = target_config(&three(), &Operation::SetQuorums { quorums: vec![vec![1, 2], vec![3]] });
        let e = disjoint.expect_err("refused");
        assert_eq!(e.code, exit::UNSAFE);
        let text = format!("{:#}", e.error);
        assert!(text.contains("{1,2}") && text.contains("{3}"), "{text}");
    }

    #[test]
    fn set_quorums_keeps_the_members() {
        let t = target_config(&three(), &Operation::SetQuorums { quorums: vec![vec![1, 2], vec![1, 3]] }).unwrap();
        assert_eq!(t.voters(), [1, 2, 3]);
        assert!(same_config(
            &t,
            &ClusterConfig::custom([(1, "a:1"), (2, "b:1"), (3, "c:1")], [[1, 3], [1, 2]]).unwrap()
        ));
        assert!(!same_config(&t, &three()));
    }
}
