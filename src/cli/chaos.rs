//! `traftctl chaos set|clear|show`: the faults of a running
//! `local-cluster --chaos`, changed through any member's admin service.

use serde_json::json;

use super::client::{Client, ClientOpts, admin};
use super::local::ask_any;
use super::output::{self, Format};
use super::{CliError, CliResult, exit};
use traftctl::chaos::FaultSpec;
use traftctl::pb::{self, ChaosOp};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Replace the faults with these rules (one SPEC each; `none`: no faults).
    Set(SetArgs),
    /// Remove every fault.
    Clear,
    /// Show the rules in force and every link through the proxy.
    Show,
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// One rule each, applied in order; for each kind of fault the last rule
    /// that names it for a link wins.
    #[arg(required = true, value_name = "SPEC", value_parser = parse_spec)]
    pub specs: Vec<FaultSpec>,
}

fn parse_spec(s: &str) -> Result<FaultSpec, String> {
    FaultSpec::parse(s).map_err(|e| e.to_string())
}

/// The `--help` text of `traftctl chaos`: the fault language.
pub const AFTER_HELP: &str = "\
SPEC is comma separated; each fault applies to every member-to-member link unless the spec
restricts it with link=:
  delay=5ms            each chunk of bytes is forwarded no earlier than its arrival + 5ms (both
                       directions of a connection: a round trip takes twice the delay)
  jitter=2ms           the delay is drawn from [delay, delay+2ms]; bytes never overtake each other
  drop=1%              each forwarded chunk resets its connection with this probability (what a
                       lossy network does to a TCP stream)
  reset-every=200ms    every connection of the link is reset at this period
  partition=1|2,3      no connection between the groups: new ones are refused, open ones reset;
                       a member in no group keeps all its links. partition=1|2,3@10s heals by
                       itself after 10s
  blackhole            connections stay open but nothing crosses, like a host whose packets
                       vanish; traffic resumes where it stopped when it is cleared
  link=1-2 / link=1>2  restrict the spec to the links between 1 and 2 / from 1 to 2 (1 dials 2)
  none                 no faults
Durations: 500us, 5ms, 1.5s, 2m. Randomness (jitter, drop) comes from the seed the banner shows
(local-cluster --chaos-seed to repeat it).

Examples:
  traftctl chaos set delay=5ms link=1-2,reset-every=200ms
  traftctl chaos set partition=1|2,3@10s
  traftctl chaos show
  traftctl chaos clear

Exit codes:
  0  done
  2  a bad SPEC, a member the cluster lacks, or the endpoint is not a local cluster started with
     --chaos (`traftctl local-cluster N --chaos none` starts one without faults)
  3  no endpoint answered
  4  --timeout passed";

pub async fn run(opts: &ClientOpts, cmd: Command) -> CliResult<u8> {
    let req = match cmd {
        Command::Set(args) => {
            let specs: Vec<String> = args.specs.iter().map(|s| s.to_string()).collect();
            pb::ChaosReq { op: ChaosOp::Set as i32, specs }
        }
        Command::Clear => pb::ChaosReq { op: ChaosOp::Clear as i32, specs: Vec::new() },
        Command::Show => pb::ChaosReq { op: ChaosOp::Show as i32, specs: Vec::new() },
    };
    let client = Client::new(opts);
    let (_, reply) = ask_any(&client, async |ch| admin(ch).chaos(req.clone()).await.map(|r| r.into_inner())).await?;
    print(opts.output, &reply).map_err(CliError::from)?;
    Ok(exit::OK)
}

fn print(format: Format, reply: &pb::ChaosReply) -> std::io::Result<()> {
    let link = |l: &pb::ChaosLink| format!("{}>{}", l.from, l.to);
    match format {
        Format::Json => output::print_json(&json!({
            "seed": reply.seed,
            "rules": reply.rules,
            "links": reply.links.iter().map(|l| json!({
                "from": l.from,
                "to": l.to,
                "listen": l.listen,
                "target": l.target,
                "faults": l.faults,
                "connections": l.accepted,
                "cut": l.cut,
            })).collect::<Vec<_>>(),
        })),
        Format::Plain => {
            let mut rows: Vec<Vec<String>> = reply.rules.iter().map(|r| vec!["rule".to_string(), r.clone()]).collect();
            rows.extend(reply.links.iter().map(|l| {
                vec![
                    "link".to_string(),
                    link(l),
                    l.listen.clone(),
                    l.target.clone(),
                    l.faults.clone(),
                    l.accepted.to_string(),
                    l.cut.to_string(),
                ]
            }));
            output::print_rows(Format::Plain, std::iter::empty::<&str>(), rows)
        }
        Format::Table => {
            let rules = if reply.rules.is_empty() { "none".to_string() } else { reply.rules.join("; ") };
            output::print(format!("faults (seed {}): {rules}", reply.seed))?;
            let rows = reply
                .links
                .iter()
                .map(|l| {
                    vec![
                        link(l),
                        l.listen.clone(),
                        l.target.clone(),
                        l.faults.clone(),
                        l.accepted.to_string(),
                        l.cut.to_string(),
                    ]
                })
                .collect();
            output::print(output::table(["link", "proxy", "target", "faults", "connections", "cut"], rows))
        }
    }
}
