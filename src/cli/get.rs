//! `traftctl get KEY`: one read, linearizable by default.

use serde_json::json;

use super::client::{Client, ClientOpts, admin, classify, refusal};
use super::output::{self, Format};
use super::{CliError, CliResult, exit};
use traftctl::pb::{self, ReadConsistency};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Consistency {
    /// Served by the leader under its lease: sees every write committed before the read began.
    Linearizable,
    /// Served by whichever replica answers, from its applied state: fast, possibly stale.
    Serializable,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Prints the value (-o plain: the bare value, nothing when the key is absent). A missing key is not an
error: the exit code is 0 and JSON says \"found\": false.")]
pub struct Args {
    pub key: String,
    /// Linearizable reads go to the leader (following redirects); serializable reads are answered
    /// by the first endpoint that responds.
    #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
    pub consistency: Consistency,
}

pub async fn run(opts: &ClientOpts, args: Args) -> CliResult<u8> {
    if args.key.is_empty() {
        return Err(CliError::usage("the key must not be empty"));
    }
    let client = Client::new(opts);
    let consistency = match args.consistency {
        Consistency::Linearizable => ReadConsistency::Linearizable,
        Consistency::Serializable => ReadConsistency::Serializable,
    };
    let req = pb::GetReq { key: args.key.clone(), consistency: consistency as i32 };
    let reply = client
        .on_leader(async |addr| {
            let reply = client.call(addr, async |ch| admin(ch).get(req.clone()).await.map(|r| r.into_inner())).await?;
            Ok(classify(reply, |r| refusal(format_args!("get {} failed at {addr}", args.key), &r)))
        })
        .await?;
    let value = reply.value.and_then(|c| c.value);
    match opts.output {
        Format::Json => output::print_json(&json!({
            "key": args.key,
            "found": reply.found,
            "value": output::value_json(&value),
        }))?,
        Format::Plain if reply.found => output::print(output::value_raw(&value))?,
        Format::Plain => {}
        Format::Table if reply.found => output::print(format!("{} = {}", args.key, output::value_text(&value)))?,
        Format::Table => output::print(format!("{} is not set", args.key))?,
    }
    Ok(exit::OK)
}
