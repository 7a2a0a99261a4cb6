//! `config abort`: cancel a membership change that is stuck before its
//! joint configuration committed.

use serde_json::json;

use crate::cli::client::{Client, ClientOpts, admin, classify, refusal};
use crate::cli::output::{self, Format};
use crate::cli::{CliError, CliResult, exit};
use traftctl::pb::{self, ErrorKind};

use super::render::print_config;

pub(super) async fn abort(opts: &ClientOpts) -> CliResult<u8> {
    let client = Client::new(opts);
    let (addr, reply) = client
        .on_leader(async |addr| {
            let req = pb::AbortConfigChangeReq {};
            let reply =
                client.call(addr, async |ch| admin(ch).abort_config_change(req).await.map(|r| r.into_inner())).await?;
            Ok(classify(reply, abort_refusal).map(|r| (addr.to_string(), r)))
        })
        .await?;
    let config = reply.r#final.unwrap_or_default();
    match opts.output {
        Format::Json => output::print_json(&json!({
            "outcome": "aborted",
            "leader_address": addr,
            "config": output::config_json(&config),
        }))?,
        format => {
            if format == Format::Table {
                output::print("Aborted. The configuration in force again:")?;
            }
            print_config(format, "in-force", &config, None)?;
        }
    }
    Ok(exit::OK)
}

/// Refused as unsafe (the joint configuration may have committed) is exit 5
/// with the leader's reason; nothing to abort is exit 1.
fn abort_refusal(reply: pb::ConfigChangeReply) -> CliError {
    match reply.kind() {
        ErrorKind::Unsafe => CliError::msg(exit::UNSAFE, format!("abort refused: {}", reply.err)),
        _ => refusal("abort refused", &reply),
    }
}
