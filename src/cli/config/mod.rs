//! `traftctl config`: the configuration in force (`show`, `quorums`) and
//! membership changes (`add-member`, `remove-member`, `set-quorums`,
//! `abort`).
//!
//! A change is planned first: the leader answers a dry run with the joint and
//! final configurations, which are printed before anything changes (and are
//! all `--dry-run` prints). The change itself is one `ChangeConfig` call that
//! the leader answers when the final configuration commits, which may take a
//! while (learners catch up first), so it has its own deadline,
//! `--change-timeout`; meanwhile the leader's status is polled to show which
//! step the change is at and how far behind a new member still is.

mod abort;
mod change;
mod progress;
mod render;
mod show;

use std::time::Duration;

use crate::cli::client::{Client, ClientOpts, parse_duration};
use crate::cli::{CliError, CliResult, exit};
use traftctl::config::MembershipChange as Operation;
use traftctl::pb::ClusterConfig;

use change::change;
use show::{quorums, show};

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
    /// Cancel the membership change in flight, if its joint configuration has not committed.
    #[command(after_help = ABORT_HELP)]
    Abort,
}

const ABORT_HELP: &str = "\
A change that cannot finish (a new member that never catches up, or whose machine died after the
joint configuration was appended) holds back every other change. Abort puts the configuration the
change started from back in force: the leader appends it as a new config record and answers once
that record commits. The member that asked for the change gets `aborted` (exit 1).

Abort is possible while new members are learners, and while the joint configuration is appended but
not committed (and was appended by the current leader). Once the joint configuration is committed,
the change can only go forward, so abort is refused (exit 5): it finishes as soon as a quorum of the
joint configuration holds the log; undo it with the reverse change afterwards.

Exit codes:
  0  aborted: the configuration the change started from is in force again
  1  there is no change in flight, or it is already being aborted
  3  no leader is elected, or no endpoint answered
  4  --timeout passed: the abort may still complete (check `traftctl config show`)
  5  refused: the joint configuration is committed (or may be), or the change is finishing";

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
    if crate::cli::node::valid_member_addr(s) {
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
        Command::Abort => return abort::abort(opts).await,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
