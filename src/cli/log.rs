//! `traftctl log`: a page of one replica's log records.

use serde_json::{Value as Json, json};

use super::client::{Client, ClientOpts, admin};
use super::output::{self, Format};
use super::{CliResult, exit};
use traftctl::pb::{self, LogEntry};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each record shows its author (the leader that first proposed it, `term 3, node 2`), its command, the
seqs it depends on and the seqs it overrides (as ranges, `0-119,123`; JSON keeps the `prefix:extra`
form), and whether this replica has committed and applied it.
Records commit and apply out of order: a later seq may be committed while an earlier one is not.")]
pub struct Args {
    /// Read this replica's log (HOST:PORT) instead of the leader's.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// The first seq to list.
    #[arg(long, default_value_t = 0, value_name = "SEQ")]
    pub from: i64,
    /// At most this many records (the server caps a page at 10000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub limit: i64,
}

pub async fn run(opts: &ClientOpts, args: Args) -> CliResult<u8> {
    let client = Client::new(opts);
    let addr = match args.addr {
        Some(addr) => addr,
        None => client.find_leader().await?.0,
    };
    let req = pb::LogReq { from: args.from.max(0), limit: args.limit };
    let reply = client
        .call(&addr, async |ch| admin(ch).log(req).await.map(|r| r.into_inner()))
        .await
        .map_err(|f| f.into_error(client.timeout))?;
    match opts.output {
        Format::Json => output::print_json(&json!({
            "address": addr,
            "records": reply.entries.iter().map(entry_json).collect::<Vec<_>>(),
            "status": output::replica_status_json(&reply.status),
        }))?,
        format => {
            let rows = reply.entries.iter().map(entry_row).collect();
            output::print_rows(
                format,
                ["seq", "author", "command", "depends", "overrides", "committed", "applied"],
                rows,
            )?;
            let full_page = reply.entries.len() as i64 == args.limit;
            if format == Format::Table
                && full_page
                && let Some(last) = reply.entries.last().and_then(|e| e.record.as_ref())
            {
                eprintln!("more records may follow: --from {}", last.seq + 1);
            }
        }
    }
    Ok(exit::OK)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn entry_row(e: &LogEntry) -> Vec<String> {
    let r = e.record.clone().unwrap_or_default();
    vec![
        r.seq.to_string(),
        output::ballot(&r.author),
        output::cmd_text(&r.cmd),
        output::bitmap(&r.depends),
        output::bitmap(&r.overrides),
        yes_no(e.committed),
        yes_no(e.applied),
    ]
}

fn entry_json(e: &LogEntry) -> Json {
    let r = e.record.clone().unwrap_or_default();
    json!({
        "seq": r.seq,
        "author": output::ballot_json(&r.author),
        "command": output::cmd_json(&r.cmd),
        "depends": output::bitmap_json(&r.depends),
        "overrides": output::bitmap_json(&r.overrides),
        "committed": e.committed,
        "applied": e.applied,
    })
}
