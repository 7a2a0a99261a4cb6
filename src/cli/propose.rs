//! `traftctl propose OP KEY [VALUE]`: one write, sent to the leader.

use serde_json::json;

use super::client::{Answer, Client, ClientOpts, Failure, classify, fmt_duration, raft, refusal};
use super::output::{self, Format};
use super::{CliError, CliResult, exit};
use traftctl::pb::{Cmd, ErrorKind, LeaderId};

#[derive(Debug, clap::Args)]
#[command(
    override_usage = "traftctl propose [OPTIONS] OP KEY [VALUE]",
    after_help = "\
Examples:
  traftctl propose set x 5        # integers are stored as integers
  traftctl propose set name alice # anything else as a string
  traftctl propose incr n 2       # prints the value after the increment
  traftctl propose del x

Prints the seq the record took and the leader that committed it (-o plain: `SEQ LEADER [VALUE]`,
tab separated). If the leader loses its leadership, or --timeout passes, after the request reached
it, the record may or may not have been committed: traftctl says the outcome is unknown and exits 1
(4 for a timeout). Check with `traftctl get KEY` before retrying an `incr`."
)]
pub struct Args {
    /// The operation and its arguments: `set KEY VALUE` (or `put KEY VALUE`), `incr KEY [DELTA]` or `del KEY`.
    #[arg(value_name = "OP KEY [VALUE]", num_args = 0.., allow_negative_numbers = true)]
    pub words: Vec<String>,
}

/// A committed proposal.
struct Committed {
    seq: i64,
    leader: Option<LeaderId>,
    value: Option<i64>,
}

const UNKNOWN_OUTCOME: &str = "the outcome is unknown: the record may or may not have been committed; \
                               check with `traftctl get KEY` before retrying";

pub async fn run(opts: &ClientOpts, args: Args) -> CliResult<u8> {
    let cmd = Cmd::parse_words(&args.words).map_err(CliError::usage)?;
    let client = Client::new(opts);
    let done = propose(&client, &cmd).await?;
    render(opts.output, &cmd, &done)?;
    Ok(exit::OK)
}

async fn propose(client: &Client, cmd: &Cmd) -> CliResult<Committed> {
    client
        .on_leader(async |addr| {
            let sent = client.call(addr, async |ch| raft(ch).propose(cmd.clone()).await.map(|r| r.into_inner())).await;
            let reply = match sent {
                Ok(reply) => reply,
                // Trying another endpoint is safe only when nothing was sent:
                // a proposal that reached a leader may commit (and an `incr`
                // retried elsewhere would then count twice).
                Err(f) if f.maybe_arrived() => {
                    let timed_out = match &f {
                        Failure::TimedOut { .. } => true,
                        Failure::Rpc { status, .. } => status.code() == tonic::Code::DeadlineExceeded,
                        _ => false,
                    };
                    let code = if timed_out { exit::TIMEOUT } else { exit::ERROR };
                    let what = match &f {
                        Failure::TimedOut { addr, .. } => {
                            format!("no answer from {addr} within --timeout {}", fmt_duration(client.timeout))
                        }
                        other => other.describe(),
                    };
                    return Ok(Answer::Failed(CliError::msg(code, format!("{what}; {UNKNOWN_OUTCOME}"))));
                }
                Err(f) => return Err(f),
            };
            let answer = classify(reply, |r| match r.kind() {
                ErrorKind::OutcomeUnknown => {
                    CliError::msg(exit::of_kind(r.kind()), format!("{addr}: {}; {UNKNOWN_OUTCOME}", r.err))
                }
                _ => refusal(format_args!("{cmd} failed"), &r),
            });
            Ok(answer.map(|r| Committed { seq: r.seq, leader: r.leader, value: r.has_value.then_some(r.value) }))
        })
        .await
}

fn render(format: Format, cmd: &Cmd, done: &Committed) -> std::io::Result<()> {
    match format {
        Format::Json => output::print_json(&json!({
            "command": output::cmd_json(&Some(cmd.clone())),
            "seq": done.seq,
            "leader": output::ballot_json(&done.leader),
            "value": done.value,
        })),
        Format::Plain => {
            let mut fields = vec![done.seq.to_string(), output::ballot(&done.leader)];
            fields.extend(done.value.map(|v| v.to_string()));
            output::print(fields.join("\t"))
        }
        Format::Table => {
            let leader = done.leader.map_or_else(|| "an unknown leader".to_string(), |l| format!("the leader ({l})"));
            output::print(format!("{cmd} committed at seq {} by {leader}", done.seq))?;
            match done.value {
                Some(v) => output::print(format!("{} = {v}", cmd.key)),
                None => Ok(()),
            }
        }
    }
}
