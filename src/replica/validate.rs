//! The boundary: what a message must look like before the protocol reads it
//! (docs/protocol.md, "Hostile input").
//!
//! Two layers. [`check_message`] needs nothing but the message: it refuses
//! what no correct member can send (a negative seq, a bitmap reaching past
//! [`MAX_WIRE_VALUE`], a record that does not override itself, two records at
//! one seq, base runs that overlap), so the runtime can refuse such a request
//! before it is queued. [`Replica::check_reach`] compares the message with
//! the receiver's state: a seq it would record must lie within
//! [`REACH_SLACK`] of what the receiver holds (a bitmap costs one word per 64
//! seqs from its prefix up, so a far seq is a huge allocation), a ballot
//! within [`TERM_LEAP`] of the greatest term seen, and records must not
//! contradict the receiver's log in ways rule 4 rules out. Everything a
//! correct member sends passes both (the simulator checks that no message
//! of its honest members is ever refused).

use std::collections::BTreeMap;

use super::*;
use crate::pb::cmd::Value;
use crate::pb::{BaseRun, LogForwardReply, LogForwardReq, SnapshotChunk, SnapshotReq, VoteReply, VoteReq};

pub use crate::types::MAX_WIRE_VALUE;

/// How far above the receiver's own reach (the end of its accepted,
/// committed and applied sets, or a leader's next seq) a message may name a
/// seq that the receiver would record. A leader sends a follower records
/// only within its window (4096 by default) of the follower's accepted
/// prefix, so this is far above what a correct leader sends.
pub const REACH_SLACK: Seq = 1 << 22;

/// How far above the greatest term the receiver has seen a ballot's term may
/// be. Terms grow by one per election, so a correct cluster never jumps this
/// far; a forged ballot cannot use up the term space in one step.
pub const TERM_LEAP: i64 = 1 << 32;

/// Why a message was refused: the field (named as in proto/traft.proto)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("{0} is missing")]
    Missing(String),
    #[error("{field} is {value}, outside {min}..={max}")]
    OutOfRange { field: String, value: i64, min: i64, max: i64 },
    #[error("{field}: {detail}")]
    Invalid { field: String, detail: String },
}

fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Malformed {
    Malformed::Invalid { field: field.into(), detail: detail.into() }
}

/// A field's name, built only when it is reported: the checks run on every
/// message, and most pass.
type Name<'a> = &'a dyn Fn() -> String;

fn in_range(field: Name, value: i64, min: i64, max: i64) -> Result<(), Malformed> {
    if (min..=max).contains(&value) { Ok(()) } else { Err(Malformed::OutOfRange { field: field(), value, min, max }) }
}

fn ballot(field: Name, b: &LeaderId) -> Result<(), Malformed> {
    in_range(&|| format!("{}.Term", field()), b.term, 1, MAX_WIRE_VALUE)?;
    in_range(&|| format!("{}.Id", field()), b.id, 1, MAX_WIRE_VALUE)
}

fn opt_ballot(field: Name, b: &Option<LeaderId>) -> Result<(), Malformed> {
    b.as_ref().map_or(Ok(()), |b| ballot(field, b))
}

fn required<'a, T>(field: Name, value: &'a Option<T>) -> Result<&'a T, Malformed> {
    value.as_ref().ok_or_else(|| Malformed::Missing(field()))
}

/// One past the last seq the bitmap's stored words describe (trailing zero
/// words included: operations walk them).
pub(super) fn stored_end(b: &TailBitmap) -> i64 {
    let words = i64::try_from(b.words.len()).unwrap_or(i64::MAX);
    (b.offset >> 6).saturating_add(words).saturating_mul(64).max(b.offset)
}

fn bitmap(field: Name, b: &TailBitmap) -> Result<(), Malformed> {
    in_range(&|| format!("{}.Offset", field()), b.offset, 0, MAX_WIRE_VALUE)?;
    let end = stored_end(b);
    if end > MAX_WIRE_VALUE {
        return Err(invalid(
            format!("{}.Words", field()),
            format!("{} words from offset {} reach seq {end}, past {MAX_WIRE_VALUE}", b.words.len(), b.offset),
        ));
    }
    Ok(())
}

fn opt_bitmap(field: Name, b: &Option<TailBitmap>) -> Result<(), Malformed> {
    b.as_ref().map_or(Ok(()), |b| bitmap(field, b))
}

fn prefix(field: Name, value: i64) -> Result<(), Malformed> {
    in_range(field, value, 0, MAX_WIRE_VALUE)
}

/// The name of a top-level field.
fn top(name: &'static str) -> impl Fn() -> String {
    move || name.to_string()
}

/// A record as a correct leader builds it (rule 6, `Record::new`): an
/// author, a command, `Overrides` that hold its own seq and nothing above
/// it (so its floor is at most the seq after it), and `Depends` strictly
/// below it.
fn record(field: Name, r: &Record) -> Result<(), Malformed> {
    let sub = |name: &'static str| move || format!("{}.{name}", field());
    prefix(&sub("Seq"), r.seq)?;
    ballot(&sub("Author"), required(&sub("Author"), &r.author)?)?;
    let cmd = required(&sub("Cmd"), &r.cmd)?;
    if cmd.is_config() {
        match &cmd.value {
            Some(Value::VClusterConfig(c)) => {
                c.validate().map_err(|e| invalid(sub("Cmd.VClusterConfig")(), e.to_string()))?
            }
            _ => return Err(invalid(sub("Cmd")(), "a config command without a configuration")),
        }
    }
    let overrides = required(&sub("Overrides"), &r.overrides)?;
    bitmap(&sub("Overrides"), overrides)?;
    if !overrides.contains(r.seq) || overrides.len() > r.seq + 1 {
        return Err(invalid(
            sub("Overrides")(),
            format!("must hold the record's seq {} and nothing above it ({overrides})", r.seq),
        ));
    }
    if let Some(depends) = &r.depends {
        bitmap(&sub("Depends"), depends)?;
        if depends.len() > r.seq {
            return Err(invalid(sub("Depends")(), format!("must lie below the record's seq {} ({depends})", r.seq)));
        }
    }
    Ok(())
}

/// Records of one message: each well formed, and one record per seq (rule 4:
/// the same record may come twice, two different ones never).
fn records(field: &'static str, logs: &[Record]) -> Result<(), Malformed> {
    let mut seen: BTreeMap<Seq, &Record> = BTreeMap::new();
    for (i, r) in logs.iter().enumerate() {
        record(&|| format!("{field}[{i}]"), r)?;
        if let Some(first) = seen.insert(r.seq, r)
            && !first.same_identity(r)
        {
            return Err(invalid(
                format!("{field}[{i}]"),
                format!("two different records at seq {}: {} and {}", r.seq, first.short(), r.short()),
            ));
        }
    }
    Ok(())
}

pub fn check_vote_req(m: &VoteReq) -> Result<(), Malformed> {
    let candidate = required(&top("VoteReq.Candidate"), &m.candidate)?;
    ballot(&top("VoteReq.Candidate"), candidate)?;
    opt_ballot(&top("VoteReq.Committer"), &m.committer)?;
    opt_ballot(&top("VoteReq.TransferFrom"), &m.transfer_from)?;
    opt_bitmap(&top("VoteReq.Accepted"), &m.accepted)?;
    // A candidate has voted for itself, and Committer <= VotedFor (rule 1);
    // the leader that handed over is below the candidacy it started.
    if m.committer > m.candidate {
        return Err(invalid("VoteReq.Committer", "above the candidate's own ballot"));
    }
    if m.transfer_from.is_some() && m.transfer_from >= m.candidate {
        return Err(invalid("VoteReq.TransferFrom", "not below the candidate's ballot"));
    }
    Ok(())
}

pub fn check_vote_reply(m: &VoteReply) -> Result<(), Malformed> {
    in_range(&top("VoteReply.Id"), m.id, 1, MAX_WIRE_VALUE)?;
    opt_ballot(&top("VoteReply.VotedFor"), &m.voted_for)?;
    opt_ballot(&top("VoteReply.Committer"), &m.committer)?;
    if m.committer > m.voted_for {
        return Err(invalid("VoteReply.Committer", "above VotedFor (rule 1: Committer <= VotedFor)"));
    }
    opt_bitmap(&top("VoteReply.Accepted"), &m.accepted)?;
    opt_bitmap(&top("VoteReply.Committed"), &m.committed)?;
    records("VoteReply.Logs", &m.logs)?;
    prefix(&top("VoteReply.AppliedPrefix"), m.applied_prefix)?;
    prefix(&top("VoteReply.CompactedPrefix"), m.compacted_prefix)
}

fn base_runs(runs: &[BaseRun], base_len: Seq) -> Result<(), Malformed> {
    let mut end = 0;
    for (i, run) in runs.iter().enumerate() {
        let field = || format!("LogForwardReq.BaseRuns[{i}]");
        opt_ballot(&|| format!("{}.Author", field()), &run.author)?;
        if run.start < end || run.start >= run.end || run.end > base_len {
            return Err(invalid(
                field(),
                format!(
                    "[{}, {}) is not a non-empty run after the previous one (ending at {end}) within the base [0, {base_len})",
                    run.start, run.end
                ),
            ));
        }
        end = run.end;
    }
    Ok(())
}

pub fn check_forward(m: &LogForwardReq) -> Result<(), Malformed> {
    let committer = required(&top("LogForwardReq.Committer"), &m.committer)?;
    ballot(&top("LogForwardReq.Committer"), committer)?;
    records("LogForwardReq.Logs", &m.logs)?;
    opt_bitmap(&top("LogForwardReq.Committed"), &m.committed)?;
    prefix(&top("LogForwardReq.BaseLen"), m.base_len)?;
    base_runs(&m.base_runs, m.base_len)?;
    prefix(&top("LogForwardReq.SnapshotPrefix"), m.snapshot_prefix)
}

pub fn check_forward_reply(m: &LogForwardReply) -> Result<(), Malformed> {
    opt_ballot(&top("LogForwardReply.VotedFor"), &m.voted_for)?;
    opt_ballot(&top("LogForwardReply.Committer"), &m.committer)?;
    if m.committer > m.voted_for {
        return Err(invalid("LogForwardReply.Committer", "above VotedFor (rule 1: Committer <= VotedFor)"));
    }
    opt_bitmap(&top("LogForwardReply.Accepted"), &m.accepted)?;
    opt_bitmap(&top("LogForwardReply.Committed"), &m.committed)?;
    opt_bitmap(&top("LogForwardReply.Missing"), &m.missing)?;
    prefix(&top("LogForwardReply.AppliedPrefix"), m.applied_prefix)
}

pub fn check_snapshot_req(m: &SnapshotReq) -> Result<(), Malformed> {
    prefix(&top("SnapshotReq.Offset"), m.offset)?;
    prefix(&top("SnapshotReq.MinPrefix"), m.min_prefix)?;
    // 0 is `traftctl snapshot save`, which is no member.
    prefix(&top("SnapshotReq.Id"), m.id)
}

pub fn check_snapshot_chunk(m: &SnapshotChunk) -> Result<(), Malformed> {
    prefix(&top("SnapshotChunk.Offset"), m.offset)?;
    prefix(&top("SnapshotChunk.TotalLen"), m.total_len)?;
    prefix(&top("SnapshotChunk.Prefix"), m.prefix)
}

/// The checks that need nothing but the message.
pub fn check_message(msg: &Message) -> Result<(), Malformed> {
    match msg {
        Message::Vote(m) => check_vote_req(m),
        Message::VoteReply(m) => check_vote_reply(m),
        Message::Forward(m) => check_forward(m),
        Message::ForwardReply(m) => check_forward_reply(m),
        Message::SnapshotReq(m) => check_snapshot_req(m),
        Message::SnapshotChunk(m) => check_snapshot_chunk(m),
    }
}

/// The ballot with the greatest term a message carries, with its field.
fn highest_ballot(msg: &Message) -> Option<(&'static str, LeaderId)> {
    let mut highest: Option<(&'static str, LeaderId)> = None;
    let mut note = |field: &'static str, b: Option<LeaderId>| {
        if let Some(b) = b
            && highest.is_none_or(|(_, h)| b.term > h.term)
        {
            highest = Some((field, b));
        }
    };
    match msg {
        Message::Vote(m) => {
            note("VoteReq.Candidate", m.candidate);
            note("VoteReq.Committer", m.committer);
            note("VoteReq.TransferFrom", m.transfer_from);
        }
        Message::VoteReply(m) => {
            note("VoteReply.VotedFor", m.voted_for);
            note("VoteReply.Committer", m.committer);
            m.logs.iter().for_each(|r| note("VoteReply.Logs.Author", r.author));
        }
        Message::Forward(m) => {
            note("LogForwardReq.Committer", m.committer);
            m.logs.iter().for_each(|r| note("LogForwardReq.Logs.Author", r.author));
            m.base_runs.iter().for_each(|r| note("LogForwardReq.BaseRuns.Author", r.author));
        }
        Message::ForwardReply(m) => {
            note("LogForwardReply.VotedFor", m.voted_for);
            note("LogForwardReply.Committer", m.committer);
        }
        Message::SnapshotReq(_) | Message::SnapshotChunk(_) => {}
    }
    highest
}

impl Replica {
    /// One past the greatest seq this replica holds, knows committed or
    /// applied, or (as leader) will assign next.
    fn reach(&self) -> Seq {
        let own = self.accepted.len().max(self.hard.committed().len()).max(self.applied.len());
        own.max(self.leader_ref().map_or(0, |l| l.next_seq))
    }

    /// The checks that compare a (well-formed) message with this replica's
    /// state; see the module docs.
    pub(super) fn check_reach(&self, msg: &Message) -> Result<(), Malformed> {
        let max_term = self.max_term_seen.saturating_add(TERM_LEAP);
        if let Some((field, b)) = highest_ballot(msg)
            && b.term > max_term
        {
            return Err(invalid(
                field,
                format!(
                    "term {} is more than {TERM_LEAP} above the greatest term this member has seen ({})",
                    b.term, self.max_term_seen
                ),
            ));
        }
        let limit = self.reach().saturating_add(REACH_SLACK);
        let far = |field: Name, end: Seq| {
            if end > limit {
                Err(invalid(
                    field(),
                    format!(
                        "reaches seq {end}, more than {REACH_SLACK} beyond what this member holds ({})",
                        self.reach()
                    ),
                ))
            } else {
                Ok(())
            }
        };
        let within_reach = |field: &'static str, logs: &[Record]| {
            for r in logs {
                far(&|| format!("{field}[seq {}]", r.seq), r.seq.saturating_add(1))?;
                far(&|| format!("{field}[seq {}].Overrides", r.seq), stored_end(r.overrides_bm()))?;
            }
            Ok(())
        };
        match msg {
            Message::Forward(m) => {
                within_reach("LogForwardReq.Logs", &m.logs)?;
                if m.committer.is_some() && m.committer == self.hard.committer() {
                    self.check_same_records("LogForwardReq.Logs", &m.logs)?;
                }
            }
            Message::VoteReply(m) => {
                within_reach("VoteReply.Logs", &m.logs)?;
                if let Some(accepted) = &m.accepted {
                    far(&top("VoteReply.Accepted"), stored_end(accepted))?;
                }
                self.check_grant(m)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Rule 4: a record of our own committer's log at a seq we hold is the
    /// one we hold.
    fn check_same_records(&self, field: &str, logs: &[Record]) -> Result<(), Malformed> {
        for r in logs {
            if let Some(held) = self.log.get(&r.seq)
                && !held.same_identity(r)
            {
                return Err(invalid(
                    format!("{field}[seq {}]", r.seq),
                    format!(
                        "{} differs from the record held there ({}) under the same committer",
                        r.short(),
                        held.short()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A grant the merge will read (rule 3): its records must agree with
    /// our log and with the grants already counted (one committer, one
    /// record per seq), and every seq its `Accepted` claims that we lack
    /// must be backed by one of its records, unless it is below the voter's
    /// compaction point (then `check_elected` fetches its snapshot first).
    fn check_grant(&self, reply: &VoteReply) -> Result<(), Malformed> {
        let RoleState::Candidate(c) = &self.role else { return Ok(()) };
        if !reply.granted || reply.voted_for != Some(c.ballot) || reply.committer != self.hard.committer() {
            return Ok(());
        }
        self.check_same_records("VoteReply.Logs", &reply.logs)?;
        for other in c.granted.values().filter(|g| g.committer == reply.committer) {
            let theirs: BTreeMap<Seq, &Record> = other.logs.iter().map(|r| (r.seq, r)).collect();
            for r in &reply.logs {
                if theirs.get(&r.seq).is_some_and(|o| !o.same_identity(r)) {
                    return Err(invalid(
                        format!("VoteReply.Logs[seq {}]", r.seq),
                        format!(
                            "{} differs from member {}'s record there under the same committer",
                            r.short(),
                            other.id
                        ),
                    ));
                }
            }
        }
        let Some(accepted) = &reply.accepted else { return Ok(()) };
        let mut backed = TailBitmap::empty();
        for r in &reply.logs {
            vouch(&mut backed, r);
        }
        let floor = reply.compacted_prefix;
        if let Some(s) = accepted
            .iter_from(floor.max(self.accepted.prefix_len()))
            .find(|&s| !self.accepted.contains(s) && !backed.contains(s))
        {
            return Err(invalid(
                "VoteReply.Accepted",
                format!("claims seq {s}, which this candidate lacks, without a record in Logs that backs it"),
            ));
        }
        Ok(())
    }

    /// A message refused at the boundary changes nothing; a request still
    /// gets an answer (the runtime waits for one per request) that grants
    /// and acknowledges nothing.
    pub(super) fn refuse(&mut self, from: NodeId, msg: Message, why: Malformed) {
        self.stats.refused_messages += 1;
        self.last_refusal = Some((from, why));
        let reply = match msg {
            Message::Vote(_) => Message::VoteReply(VoteReply {
                id: self.opts.id,
                voted_for: self.hard.voted_for(),
                committer: self.hard.committer(),
                refusal: crate::pb::VoteRefusal::Malformed as i32,
                ..Default::default()
            }),
            Message::Forward(f) => Message::ForwardReply(LogForwardReply {
                ok: false,
                voted_for: self.hard.voted_for(),
                committer: self.hard.committer(),
                forward_id: f.forward_id,
                ..Default::default()
            }),
            Message::SnapshotReq(_) => Message::SnapshotChunk(SnapshotChunk::default()),
            Message::VoteReply(_) | Message::ForwardReply(_) | Message::SnapshotChunk(_) => return,
        };
        self.send(from, reply, 0);
    }
}
