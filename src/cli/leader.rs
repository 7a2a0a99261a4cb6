//! `traftctl leader transfer`: move leadership without waiting out a lease.

use std::time::Duration;

use serde_json::json;

use super::client::{Answer, Client, ClientOpts, admin, classify, fmt_duration, refusal};
use super::output::{self, Format};
use super::{CliError, CliResult, exit};
use traftctl::pb;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Hand leadership to another voting member.
    #[command(after_help = "\
The leader stops taking new proposals (they wait, and are answered by the new leader's redirect),
brings the target up to date, steps down and tells the target to campaign at once. The voters set
the old leader's lease aside for that target alone, so no election timeout is waited out.

Without --to, the most caught-up reachable voter takes over. Returns once the target leads (or
--timeout passes: exit 4).

Exit codes:
  0  the target leads
  3  no leader to ask, or no endpoint answered
  4  --timeout passed before the target was seen leading
  5  refused: the target is a learner, not a member, or unreachable; a configuration change is in
     progress; or the target did not catch up within a lease (proposals then resume at the leader)")]
    Transfer(TransferArgs),
}

#[derive(Debug, clap::Args)]
pub struct TransferArgs {
    /// The member to hand leadership to (default: the most caught up).
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(1..))]
    pub to: Option<i64>,
}

/// How often the new leader is looked for after the hand-over.
const POLL_EVERY: Duration = Duration::from_millis(20);

pub async fn run(opts: &ClientOpts, cmd: Command) -> CliResult<u8> {
    let Command::Transfer(args) = cmd;
    let client = Client::new(opts);
    let req = pb::TransferLeadershipReq { to: args.to.unwrap_or(0) };
    let (addr, reply) = client
        .on_leader(async |addr| {
            let reply =
                client.call(addr, async |ch| admin(ch).transfer_leadership(req).await.map(|r| r.into_inner())).await?;
            let answer = classify(reply, |r| refusal(format_args!("leader transfer at {addr}"), &r));
            Ok(match answer {
                Answer::Done(r) => Answer::Done((addr.to_string(), r)),
                Answer::Redirect { leader, addr } => Answer::Redirect { leader, addr },
                Answer::NoLeader => Answer::NoLeader,
                Answer::Failed(e) => Answer::Failed(e),
            })
        })
        .await?;
    let from = reply.from;
    let to = reply.to;
    // The hand-over is done; the target's election takes a round trip more.
    let leader = loop {
        match client.find_leader().await {
            Ok((leader_addr, status)) if status.id == to => break (leader_addr, status),
            Ok(_) | Err(_) if client.expired() => {
                return Err(CliError::msg(
                    exit::TIMEOUT,
                    format!(
                        "node {to} was handed leadership by {addr} but was not seen leading within {}; check \
                         `traftctl status`",
                        fmt_duration(opts.timeout)
                    ),
                ));
            }
            _ => tokio::time::sleep(POLL_EVERY).await,
        }
    };
    let (leader_addr, status) = leader;
    match opts.output {
        Format::Json => output::print_json(&json!({
            "from": output::ballot_json(&from),
            "to": { "id": to, "address": leader_addr, "leader": output::ballot_json(&status.leader) },
        }))?,
        Format::Plain => output::print(format!("{to}\t{leader_addr}"))?,
        Format::Table => output::print(format!(
            "leadership moved from {} to node {to} at {leader_addr} ({})",
            output::ballot(&from),
            output::ballot(&status.leader)
        ))?,
    }
    Ok(exit::OK)
}
