//! `traftctl check hash`: do the members that applied the same records hold
//! the same state? (etcd's `endpoint hashkv`.)

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::client::{Client, ClientOpts, Failure, admin, fmt_duration};
use super::output::{self, Format};
use super::{CliError, CliResult, exit};
use traftctl::pb::{self, TailBitmap};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Compare a digest of every member's state at its applied set.
    #[command(after_help = "\
Asks every member of the configuration (found through --endpoints) for a CRC-32 of its key-value
state and the set of records it has applied. Members with the same applied set must have the same
digest; one that differs holds a state that no run of the protocol produces (a damaged disk, a bug).
While writes arrive the members' applied sets rarely agree, so the command asks again until every
member it reached holds the same set as another, or --timeout passes.

Exit codes:
  0  every member that could be compared agrees
  1  a member's state differs from another's at the same applied set (named in the output)
  3  no endpoint answered
  4  --timeout passed before the members could be compared (writes kept coming)")]
    Hash,
}

/// Pause between rounds while the members' applied sets differ.
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// One member's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberHash {
    pub id: i64,
    pub addr: String,
    pub applied: TailBitmap,
    pub hash: u32,
    pub keys: i64,
}

/// What a round of answers shows.
#[derive(Debug, PartialEq)]
pub enum Finding {
    /// Every member shares its applied set with another, and each group agrees.
    Agree,
    /// Members of one applied set disagree: the ids whose digest is not
    /// the group's most common one (all of them when there is no majority).
    Differ { applied: TailBitmap, odd: Vec<i64> },
    /// Some member's applied set is its own: nothing to compare it with yet.
    Incomparable { alone: Vec<i64> },
}

/// Groups members by applied set and checks each group's digests.
pub fn compare(members: &[MemberHash]) -> Finding {
    let mut groups: BTreeMap<String, Vec<&MemberHash>> = BTreeMap::new();
    for m in members {
        groups.entry(m.applied.to_string()).or_default().push(m);
    }
    for group in groups.values() {
        let mut votes: BTreeMap<u32, usize> = BTreeMap::new();
        for m in group {
            *votes.entry(m.hash).or_default() += 1;
        }
        if votes.len() > 1 {
            let (&common, &count) = votes.iter().max_by_key(|&(_, n)| *n).expect("a group is not empty");
            let majority = count * 2 > group.len();
            let odd = group.iter().filter(|m| !majority || m.hash != common).map(|m| m.id).collect();
            return Finding::Differ { applied: group[0].applied.clone(), odd };
        }
    }
    let alone: Vec<i64> = groups.values().filter(|g| g.len() == 1).map(|g| g[0].id).collect();
    if alone.is_empty() || members.len() < 2 { Finding::Agree } else { Finding::Incomparable { alone } }
}

pub async fn run(opts: &ClientOpts, cmd: Command) -> CliResult<u8> {
    let Command::Hash = cmd;
    let client = Client::new(opts);
    let (_, status) = client.any_status().await?;
    let config = status.config.unwrap_or_default();
    let members: Vec<(i64, String)> =
        config.members.values().chain(config.learners.values()).map(|m| (m.id, m.addr.clone())).collect();
    loop {
        let mut answers: Vec<MemberHash> = Vec::new();
        let mut unreachable = Vec::new();
        let hash_of = |addr: &str, r: pb::HashKvReply| MemberHash {
            id: r.id,
            addr: addr.to_string(),
            applied: r.applied.unwrap_or_default(),
            hash: r.hash,
            keys: r.keys,
        };
        // The endpoints first: they are client ports. The configuration
        // lists the addresses peers dial, which with --listen-peer do not
        // serve HashKV; they are asked only for members no endpoint was.
        for addr in &client.endpoints {
            if let Ok(r) = ask(&client, addr).await
                && !answers.iter().any(|a| a.id == r.id)
            {
                answers.push(hash_of(addr, r));
            }
        }
        for (id, addr) in &members {
            if answers.iter().any(|a| a.id == *id) {
                continue;
            }
            match ask(&client, addr).await {
                Ok(r) => answers.push(hash_of(addr, r)),
                Err(f) => unreachable.push(f.describe()),
            }
        }
        if answers.is_empty() {
            return Err(CliError::msg(exit::UNAVAILABLE, format!("no member answered: {}", unreachable.join("; "))));
        }
        let finding = compare(&answers);
        if matches!(finding, Finding::Incomparable { .. }) && !client.expired() {
            tokio::time::sleep(RETRY_EVERY).await;
            continue;
        }
        print_answers(opts.output, &answers, &finding, &unreachable)?;
        for why in &unreachable {
            eprintln!("warning: not compared: {why}");
        }
        return match finding {
            Finding::Agree => Ok(exit::OK),
            Finding::Differ { applied, odd } => Err(CliError::msg(
                exit::ERROR,
                format!(
                    "member(s) {} hold a different state than the others that applied seqs {}",
                    output::id_set(&odd),
                    output::seq_set(&applied)
                ),
            )),
            Finding::Incomparable { alone } => Err(CliError::msg(
                exit::TIMEOUT,
                format!(
                    "member(s) {} never held the same applied set as another within {}: writes kept coming; \
                     run it again when they pause, or with a longer --timeout",
                    output::id_set(&alone),
                    fmt_duration(opts.timeout)
                ),
            )),
        };
    }
}

async fn ask(client: &Client, addr: &str) -> Result<pb::HashKvReply, Failure> {
    client.call(addr, async |ch| admin(ch).hash_kv(pb::HashKvReq {}).await.map(|r| r.into_inner())).await
}

fn print_answers(
    format: Format,
    answers: &[MemberHash],
    finding: &Finding,
    unreachable: &[String],
) -> std::io::Result<()> {
    let odd: &[i64] = match finding {
        Finding::Differ { odd, .. } => odd,
        _ => &[],
    };
    let verdict = |m: &MemberHash| if odd.contains(&m.id) { "DIFFERS" } else { "ok" };
    match format {
        Format::Json => output::print_json(&json!({
            "agree": matches!(finding, Finding::Agree),
            "members": answers.iter().map(|m| json!({
                "id": m.id,
                "address": m.addr,
                "applied": m.applied.to_string(),
                "hash": m.hash,
                "keys": m.keys,
                "verdict": verdict(m),
            })).collect::<Vec<_>>(),
            "unreachable": unreachable,
        })),
        _ => {
            let rows = answers
                .iter()
                .map(|m| {
                    vec![
                        m.id.to_string(),
                        m.addr.clone(),
                        output::seq_set(&m.applied),
                        m.keys.to_string(),
                        format!("{:08x}", m.hash),
                        verdict(m).to_string(),
                    ]
                })
                .collect();
            output::print_rows(format, ["id", "address", "applied", "keys", "hash", "verdict"], rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: i64, applied: TailBitmap, hash: u32) -> MemberHash {
        MemberHash { id, addr: format!("h{id}:1"), applied, hash, keys: 1 }
    }

    #[test]
    fn the_odd_member_of_an_applied_set_is_named() {
        let a = TailBitmap::from_prefix(10);
        let all = [member(1, a.clone(), 7), member(2, a.clone(), 7), member(3, a.clone(), 9)];
        assert_eq!(compare(&all), Finding::Differ { applied: a.clone(), odd: vec![3] });
        assert_eq!(compare(&all[..2]), Finding::Agree);
        // Two members, two digests: no majority says which one is wrong.
        let pair = [member(1, a.clone(), 7), member(2, a.clone(), 9)];
        assert_eq!(compare(&pair), Finding::Differ { applied: a, odd: vec![1, 2] });
    }

    #[test]
    fn different_applied_sets_are_not_compared() {
        let all = [member(1, TailBitmap::from_prefix(10), 7), member(2, TailBitmap::from_prefix(11), 9)];
        assert_eq!(compare(&all), Finding::Incomparable { alone: vec![1, 2] });
        let three = [
            member(1, TailBitmap::from_prefix(10), 7),
            member(2, TailBitmap::from_prefix(10), 7),
            member(3, TailBitmap::from_prefix(12), 1),
        ];
        assert_eq!(compare(&three), Finding::Incomparable { alone: vec![3] });
        assert_eq!(compare(&three[..1]), Finding::Agree, "one member agrees with itself");
    }
}
