//! `traftctl local kill|pause|resume|restart ID` and `local list`: a
//! running `local-cluster`'s own members, through any member's admin
//! service (the process acts, so a paused member's port works too).

use serde_json::json;
use tonic::transport::Channel;

use super::client::{Client, ClientOpts, Failure, admin, unreachable_error};
use super::output::{self, Format};
use super::{CliError, CliResult, exit};
use traftctl::pb::{self, LocalAction};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Crash member ID: it stops at once, with no hand-over and its memory
    /// dropped, as a SIGKILL would leave it. Its data directory stays.
    Kill(IdArg),
    /// Freeze member ID, as SIGSTOP would: it stops processing and
    /// answering (requests to it wait and time out) while its sockets stay
    /// open.
    Pause(IdArg),
    /// Thaw a paused member: what queued meanwhile is processed.
    Resume(IdArg),
    /// Start member ID again from its data directory, on the same port
    /// (crashing it first if it runs), as a restart after a crash would.
    Restart(IdArg),
    /// List the members and their states: running, paused or killed.
    List,
}

#[derive(Debug, clap::Args)]
pub struct IdArg {
    /// The member's id.
    #[arg(value_parser = clap::value_parser!(i64).range(1..))]
    pub id: i64,
}

/// The `--help` text of `traftctl local`.
pub const AFTER_HELP: &str = "\
Acts on the members of a running `traftctl local-cluster` (started with or without --chaos),
through the admin service of whichever endpoint answers first; the endpoints default to the
local cluster's. Prints every member's state afterwards.
  traftctl local kill 1        # the leader crashes: the others elect a new one
  traftctl local restart 1     # it recovers from its data directory and catches up
  traftctl local pause 2       # a frozen member: writes continue on the other two
  traftctl local resume 2

Exit codes:
  0  done
  1  the member is not in a state for it (killing a killed member, resuming a running one)
  2  usage, an unknown member, or the endpoint is not a `traftctl local-cluster`
  3  no endpoint answered
  4  --timeout passed";

pub async fn run(opts: &ClientOpts, cmd: Command) -> CliResult<u8> {
    let (action, id) = match cmd {
        Command::Kill(a) => (LocalAction::Kill, a.id),
        Command::Pause(a) => (LocalAction::Pause, a.id),
        Command::Resume(a) => (LocalAction::Resume, a.id),
        Command::Restart(a) => (LocalAction::Restart, a.id),
        Command::List => (LocalAction::List, 0),
    };
    let client = Client::new(opts);
    let req = pb::LocalMemberReq { action: action as i32, id };
    let (_, reply) = ask_any(&client, async |ch| admin(ch).local_member(req).await.map(|r| r.into_inner())).await?;
    let members = reply.members;
    match opts.output {
        Format::Json => output::print_json(&json!({
            "members": members.iter().map(|m| json!({ "id": m.id, "address": m.address, "state": m.state }))
                .collect::<Vec<_>>(),
        }))?,
        format => {
            if format == Format::Table && action != LocalAction::List {
                let state = members.iter().find(|m| m.id == id).map_or("?", |m| m.state.as_str());
                output::print(format!("node {id} is {state}"))?;
            }
            let rows = members.iter().map(|m| vec![m.id.to_string(), m.address.clone(), m.state.clone()]).collect();
            output::print_rows(format, ["id", "address", "state"], rows)?;
        }
    }
    Ok(exit::OK)
}

/// Runs a request of the local-cluster controls on the first endpoint that
/// answers: any member speaks for the whole process.
pub async fn ask_any<T>(
    client: &Client,
    call: impl AsyncFn(Channel) -> Result<T, tonic::Status>,
) -> CliResult<(String, T)> {
    let mut failures = Vec::new();
    for addr in &client.endpoints {
        match client.call(addr, async |ch| call(ch).await).await {
            Ok(v) => return Ok((addr.clone(), v)),
            Err(f) if f.try_next() => failures.push(f),
            Err(f) => return Err(refused(f, client)),
        }
    }
    Err(unreachable_error(failures, client.timeout))
}

/// A refusal of the local-cluster controls, with its exit code.
fn refused(f: Failure, client: &Client) -> CliError {
    let Failure::Rpc { addr, status } = &f else { return f.into_error(client.timeout) };
    let message = status.message();
    match status.code() {
        tonic::Code::Unimplemented if message.is_empty() => CliError::usage(format!(
            "{addr} does not serve local-cluster controls: it is not a `traftctl local-cluster` of this version"
        )),
        tonic::Code::Unimplemented | tonic::Code::InvalidArgument => CliError::usage(format!("{addr}: {message}")),
        tonic::Code::FailedPrecondition => CliError::msg(exit::ERROR, message),
        _ => f.into_error(client.timeout),
    }
}
