//! Rendering, kept apart from the commands: tables for people, JSON for
//! scripts, plain tab-separated lines for `cut` and `awk`.
//!
//! Tables and plain lines are for people: a ballot reads `term 3, node 2`
//! and a set of seqs as ranges, `0-119,123` (`none` when empty).
//!
//! JSON conventions, stable across commands: member ids and seqs are
//! numbers; a ballot is `{"term": 3, "id": 2}` or `null`; a set of seqs is
//! the `TailBitmap` short form as a string (`"0:1..120,123"`: every seq
//! below the prefix, plus the listed ones, runs inclusive); a value is a JSON
//! number for integers and a string for strings.

use std::fmt::Display;
use std::io::Write;

use comfy_table::{Table, presets};
use serde_json::{Value as Json, json};

use traftctl::pb::{self, ClusterConfig, Cmd, LeaderId, TailBitmap, cmd::Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned tables and sentences.
    Table,
    /// One JSON document (JSON lines for `watch`).
    Json,
    /// Tab-separated fields, no headers or borders.
    Plain,
}

/// A table in the style every command (and `local-cluster`) uses.
pub fn table<H: Display>(headers: impl IntoIterator<Item = H>, rows: Vec<Vec<String>>) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header(headers.into_iter().map(|h| h.to_string()));
    for row in rows {
        table.add_row(row);
    }
    table
}

/// Rows as a table (with headers) or as plain tab-separated lines (without).
pub fn print_rows<H: Display>(
    format: Format,
    headers: impl IntoIterator<Item = H>,
    rows: Vec<Vec<String>>,
) -> std::io::Result<()> {
    match format {
        Format::Plain => {
            let mut out = std::io::stdout().lock();
            for row in rows {
                writeln!(out, "{}", row.join("\t"))?;
            }
            out.flush()
        }
        _ => print(table(headers, rows)),
    }
}

/// A vertical `field | value` table for one object.
pub fn print_fields(format: Format, fields: Vec<(&str, String)>) -> std::io::Result<()> {
    let rows = fields.into_iter().map(|(k, v)| vec![k.to_string(), v]).collect();
    print_rows(format, ["field", "value"], rows)
}

/// Writes a line to stdout, returning the error (a closed pipe) instead of
/// panicking as `println!` does.
pub fn print(line: impl Display) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

pub fn print_json(value: &Json) -> std::io::Result<()> {
    print(serde_json::to_string_pretty(value).map_err(std::io::Error::other)?)
}

/// One compact line: for streams (JSON lines).
pub fn print_json_line(value: &Json) -> std::io::Result<()> {
    print(serde_json::to_string(value).map_err(std::io::Error::other)?)
}

pub fn ballot_json(leader: &Option<LeaderId>) -> Json {
    match leader {
        Some(l) => json!({ "term": l.term, "id": l.id }),
        None => Json::Null,
    }
}

/// `term 3, node 2`, or `-` when there is none.
pub fn ballot(leader: &Option<LeaderId>) -> String {
    leader.map_or_else(|| "-".to_string(), |l| l.to_string())
}

/// An optional set of seqs as ranges; absent is the empty set.
pub fn bitmap(b: &Option<TailBitmap>) -> String {
    b.as_ref().map_or_else(|| seq_set(&TailBitmap::empty()), seq_set)
}

/// The JSON form of an optional set of seqs: the `TailBitmap` short form.
pub fn bitmap_json(b: &Option<TailBitmap>) -> Json {
    json!(b.as_ref().map_or_else(|| TailBitmap::empty().to_string(), |b| b.to_string()))
}

/// A set of seqs as inclusive ranges: `0-7`, `0-1,3`, `none`.
pub fn seq_set(b: &TailBitmap) -> String {
    let prefix = b.prefix_len();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    if prefix > 0 {
        runs.push((0, prefix - 1));
    }
    for s in b.iter_from(prefix) {
        match runs.last_mut() {
            Some((_, hi)) if *hi + 1 == s => *hi = s,
            _ => runs.push((s, s)),
        }
    }
    if runs.is_empty() {
        return "none".to_string();
    }
    let parts: Vec<String> =
        runs.iter().map(|&(lo, hi)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") }).collect();
    parts.join(",")
}

pub fn value_json(value: &Option<Value>) -> Json {
    match value {
        None => Json::Null,
        Some(Value::Vi64(n)) => json!(n),
        Some(Value::VStr(s)) => json!(s),
        Some(Value::VClusterConfig(c)) => config_json(c),
    }
}

/// A value as it is, for `-o plain`: integers bare, strings unquoted.
pub fn value_raw(value: &Option<Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::Vi64(n)) => n.to_string(),
        Some(Value::VStr(s)) => s.clone(),
        Some(Value::VClusterConfig(c)) => c.to_string(),
    }
}

/// A value as a person reads it: a string that looks like a number is
/// quoted, so `set x "5"` and `set x 5` look different.
pub fn value_text(value: &Option<Value>) -> String {
    value.as_ref().map_or_else(String::new, traftctl::cmd::value_short)
}

pub fn cmd_json(cmd: &Option<Cmd>) -> Json {
    match cmd {
        Some(c) => json!({ "op": c.op, "key": c.key, "value": value_json(&c.value) }),
        None => Json::Null,
    }
}

pub fn cmd_text(cmd: &Option<Cmd>) -> String {
    cmd.as_ref().map_or_else(|| "-".to_string(), |c| c.to_string())
}

/// `{1,2,3}`.
pub fn id_set(ids: &[i64]) -> String {
    let parts: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("{{{}}}", parts.join(","))
}

/// Members by id and quorums as member-id sets (quorum bitmaps are over
/// positions, which mean nothing outside the configuration).
pub fn config_json(config: &ClusterConfig) -> Json {
    let members: Vec<Json> = config
        .sorted_members()
        .iter()
        .map(|m| json!({ "id": m.id, "address": m.addr, "position": m.position }))
        .collect();
    let quorums: Vec<Vec<i64>> = config.quorums.iter().map(|&q| config.bitmap_to_ids(q)).collect();
    json!({ "members": members, "quorums": quorums })
}

pub fn replica_status_json(status: &Option<pb::ReplicaStatus>) -> Json {
    let s = status.clone().unwrap_or_default();
    json!({
        "voted_for": ballot_json(&s.voted_for),
        "committer": ballot_json(&s.committer),
        "accepted": bitmap_json(&s.accepted),
        "committed": bitmap_json(&s.committed),
        "applied": bitmap_json(&s.applied),
    })
}

/// A lease's remaining time; `-` when there is none.
pub fn lease(ms: i64) -> String {
    if ms <= 0 { "-".to_string() } else { format!("{ms}ms") }
}

/// `2025-11-27T03:45:12.345Z` from milliseconds since the Unix epoch, without
/// a date library: days to a civil date (Howard Hinnant's algorithm).
pub fn utc_timestamp(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_timestamp(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc_timestamp(1_764_215_112_345), "2025-11-27T03:45:12.345Z");
    }

    #[test]
    fn sets_read_as_ranges_and_ballots_as_words() {
        let set = |s: &str| seq_set(&s.parse::<TailBitmap>().unwrap());
        assert_eq!(set("8:"), "0-7");
        assert_eq!(set("0:1"), "1");
        assert_eq!(set("2:3"), "0-1,3");
        assert_eq!(set("1:"), "0");
        assert_eq!(set("0:1..120,123"), "1-120,123");
        assert_eq!(set("0:"), "none");
        assert_eq!(bitmap(&None), "none");
        assert_eq!(bitmap_json(&Some("2:3".parse().unwrap())), json!("2:3"), "JSON keeps the raw form");
        assert_eq!(ballot(&Some(LeaderId::new(1, 2))), "term 1, node 2");
        assert_eq!(ballot(&None), "-");
    }

    #[test]
    fn values_keep_their_json_type() {
        assert_eq!(value_json(&Some(Value::Vi64(5))), json!(5));
        assert_eq!(value_json(&Some(Value::VStr("5".into()))), json!("5"));
        assert_eq!(value_json(&None), Json::Null);
    }
}
