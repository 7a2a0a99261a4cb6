//! One-line renderings of messages and durable writes for traces: the
//! simulator's replay and the scripted interaction tests read the same
//! words. Each field is clipped to `max_field` bytes so a trace line stays
//! readable when a forward carries hundreds of records.

use crate::leader_id::short_opt;
use crate::pb::{Record, TailBitmap};

use super::{DurableWrite, Message};

/// `s`, cut to at most `max` bytes (on a character boundary) and marked
/// with `...` when cut.
pub fn clip(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &s[..cut])
}

fn bitmap(b: &Option<TailBitmap>, max: usize) -> String {
    clip(b.as_ref().map_or("-".to_string(), |b| b.to_string()), max)
}

fn records(rs: &[Record], max: usize) -> String {
    let v: Vec<String> = rs.iter().map(|r| r.short()).collect();
    clip(v.join(" "), max)
}

impl Message {
    pub fn describe(&self, max_field: usize) -> String {
        let bm = |b: &Option<TailBitmap>| bitmap(b, max_field);
        match self {
            Message::Vote(v) => {
                format!(
                    "Vote cand={} committer={} acc={}",
                    short_opt(&v.candidate),
                    short_opt(&v.committer),
                    bm(&v.accepted)
                )
            }
            Message::VoteReply(v) => format!(
                "VoteReply granted={} voted={} committer={} acc={} logs=[{}]",
                v.granted,
                short_opt(&v.voted_for),
                short_opt(&v.committer),
                bm(&v.accepted),
                records(&v.logs, max_field)
            ),
            Message::Forward(f) => format!(
                "Forward #{} committer={} base_len={} committed={} logs=[{}]",
                f.forward_id,
                short_opt(&f.committer),
                f.base_len,
                bm(&f.committed),
                records(&f.logs, max_field)
            ),
            Message::ForwardReply(f) => format!(
                "ForwardReply #{} ok={} voted={} committer={} acc={} committed={} missing={}",
                f.forward_id,
                f.ok,
                short_opt(&f.voted_for),
                short_opt(&f.committer),
                bm(&f.accepted),
                bm(&f.committed),
                bm(&f.missing)
            ),
            Message::SnapshotReq(r) => {
                format!("SnapshotReq id={} offset={} min_prefix={}", r.snapshot_id, r.offset, r.min_prefix)
            }
            Message::SnapshotChunk(c) => format!(
                "SnapshotChunk id={} offset={} len={} of {} prefix={}",
                c.snapshot_id,
                c.offset,
                c.data.len(),
                c.total_len,
                c.prefix
            ),
        }
    }
}

impl DurableWrite {
    pub fn describe(&self, max_field: usize) -> String {
        let hard = self.hard_state.as_ref().map_or("-".to_string(), |h| {
            format!(
                "voted {} committer {} base_len {} committed {}",
                short_opt(&h.voted_for),
                short_opt(&h.committer),
                h.base_len,
                clip(h.committed.to_string(), max_field)
            )
        });
        let snapshot = match &self.snapshot {
            Some(s) => format!(" snapshot={}", clip(s.applied.to_string(), max_field)),
            None => String::new(),
        };
        format!("hard={hard}{snapshot} put=[{}] delete={:?}", records(&self.put, max_field), self.delete)
    }
}
