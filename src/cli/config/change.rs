//! Running one membership change: the local check, the dry run, the call,
//! and settling an unknown outcome.

use std::time::Duration;

use crate::cli::client::{Answer, Client, ClientOpts, Failure, Verdict, admin, fmt_duration, refusal, verdict};
use crate::cli::output::{self, Format};
use crate::cli::{CliError, CliResult, exit};
use traftctl::config::{ChangeError, ConfigError, MembershipChange as Operation};
use traftctl::pb::{ClusterConfig, ConfigChangeReply, ConfigChangeReq, ErrorKind};

use super::ChangeOpts;
use super::progress::Progress;
use super::render::{outcome_json, print_config, print_plan};

/// How often the leader's status is polled while a change runs.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// After the change call ends, how long at most to wait for the cluster to
/// settle on a configuration (a removed leader steps down; a leader that lost
/// its leadership mid-change leaves the outcome to its successor). Also
/// bounded by what is left of `--change-timeout`, but never below
/// [`SETTLE_AT_LEAST`].
const SETTLE_FOR: Duration = Duration::from_secs(15);
const SETTLE_AT_LEAST: Duration = Duration::from_secs(3);

/// The voters of `config` without learners or a change in flight.
pub(super) fn voters_only(config: &ClusterConfig) -> ClusterConfig {
    ClusterConfig { learners: Default::default(), next: None, ..config.clone() }
}

/// The configuration `op` asks for, checked locally: what can be refused
/// without asking the leader is refused here, before anything is sent. The
/// policy is the library's ([`ClusterConfig::after`], which the simulator's
/// operator uses too); this adds exit codes and hints.
pub(super) fn target_config(current: &ClusterConfig, op: &Operation) -> CliResult<ClusterConfig> {
    let members = || output::id_set(&current.voters());
    current.after(op).map_err(|e| match e {
        ChangeError::AlreadyMember { .. } => CliError::usage(format!("{e}; members: {}", members())),
        ChangeError::AddressTaken { .. } => CliError::usage(e),
        ChangeError::NotAMember { learner, .. } => {
            let learner = if learner {
                " (it is a learner of the change in progress; wait for that change to finish)"
            } else {
                ""
            };
            CliError::usage(format!("{e}{learner}; members: {}", members()))
        }
        ChangeError::LastMember { .. } => CliError::usage(format!("{e} (add another member first)")),
        ChangeError::Config(e) => match (op, e) {
            (Operation::Add { .. }, e @ ConfigError::MajorityTooLarge { .. }) => CliError::usage(e),
            (Operation::Add { .. } | Operation::Remove { .. }, e) => CliError::new(exit::ERROR, e),
            (Operation::SetQuorums { quorums }, e @ ConfigError::DisjointQuorums { .. }) => {
                let hint = if quorums.iter().all(|q| q.len() == 1) {
                    "; note: unquoted, the shell expands {1,2} into `1 2`: write quorums as 1,2"
                } else {
                    ""
                };
                CliError::msg(exit::UNSAFE, format!("refused as unsafe: {e}{hint}"))
            }
            (Operation::SetQuorums { .. }, e @ ConfigError::UnknownMember { .. }) => {
                CliError::usage(format!("{e} (set-quorums keeps the members {}; add members first)", members()))
            }
            (Operation::SetQuorums { .. }, e) => CliError::usage(e),
        },
    })
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
pub(super) struct Plan {
    pub(super) leader_addr: String,
    pub(super) current: ClusterConfig,
    pub(super) target: ClusterConfig,
    pub(super) joint: ClusterConfig,
    pub(super) final_config: ClusterConfig,
}

pub(super) async fn change(opts: &ClientOpts, op: Operation, change_opts: &ChangeOpts) -> CliResult<u8> {
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
pub(super) fn same_config(a: &ClusterConfig, b: &ClusterConfig) -> bool {
    let members =
        |c: &ClusterConfig| -> Vec<(i64, String)> { c.members.values().map(|m| (m.id, m.addr.clone())).collect() };
    let quorums = |c: &ClusterConfig| -> Vec<Vec<i64>> {
        let mut q: Vec<Vec<i64>> = c.quorums.iter().map(|&q| c.bitmap_to_ids(q)).collect();
        q.sort();
        q
    };
    members(a) == members(b) && quorums(a) == quorums(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> ClusterConfig {
        ClusterConfig::majority([(1, "a:1"), (2, "b:1"), (3, "c:1")]).unwrap()
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
