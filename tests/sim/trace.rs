//! What a failing run prints: the last events, and the evidence of a
//! replica stuck in a known way.

use std::collections::VecDeque;
use std::fmt::Write as _;

use traftctl::pb::{Record, TailBitmap};
use traftctl::replica::{Action, Event, Message, Replica, Seq, clip};

const MS: u64 = 1_000_000;

// ---- trace -----------------------------------------------------------------

/// The last events, printed when a run fails; every event when verbose.
pub struct Trace {
    lines: VecDeque<String>,
    cap: usize,
    pub verbose: bool,
}

impl Trace {
    pub fn new(cap: usize, verbose: bool) -> Self {
        Trace { lines: VecDeque::with_capacity(cap), cap, verbose }
    }

    pub fn push(&mut self, step: u64, now_ns: u64, line: String) {
        let line = format!("#{step:<7} {:>10.3}ms {line}", now_ns as f64 / MS as f64);
        if self.verbose {
            eprintln!("{line}");
        }
        if self.lines.len() == self.cap {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    pub fn dump(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            let _ = writeln!(s, "  {l}");
        }
        s
    }
}

pub fn bm(b: &Option<TailBitmap>) -> String {
    clip(b.as_ref().map_or("-".to_string(), |b| b.to_string()), 80)
}

/// The apply cycle of `docs/protocol.md`'s config exception that the
/// replica must break (see `APPLY_CYCLE`): the first committed seq
/// `a` the replica has not applied is not held, only overridden by a
/// committed held record `w`, which depends on a committed config record
/// `c` between them that is not applied either. `c` waits for everything
/// below it, including some held record that waits for `a`, which only
/// `w`'s apply would mark done. The evidence, if `r` is stuck that way.
pub fn apply_cycle_through_config(r: &Replica) -> Option<String> {
    let backlog = r.committed() - r.applied();
    let a = backlog.iter_from(0).next()?;
    if r.log().contains_key(&a) {
        return None;
    }
    let is_config = |rec: &Record| rec.cmd.as_ref().is_some_and(|c| c.is_config());
    let overriders = r
        .log()
        .range(a + 1..)
        .map(|(_, w)| w)
        .filter(|w| r.committed().contains(w.seq) && w.overrides_bm().contains(a));
    for w in overriders {
        let config = r
            .log()
            .range(a + 1..w.seq)
            .map(|(_, c)| c)
            .find(|c| is_config(c) && backlog.contains(c.seq) && w.depends_bm().contains(c.seq));
        if let Some(c) = config {
            return Some(format!(
                "seq {a} is not held, only overridden by {}, which depends on config record {} that waits for \
                 everything below it",
                w.short(),
                c.short()
            ));
        }
    }
    None
}

/// The applied tails (seqs at or above the prefix) of the snapshots whose
/// install `actions` report. The snapshot itself is in the batch's writes;
/// should it not be, what the replica applied above the prefix stands in.
pub fn installed_tails(r: &Replica, actions: &[Action]) -> Vec<Vec<Seq>> {
    let installs = actions.iter().filter_map(|a| match a {
        Action::Event(Event::SnapshotInstalled { prefix, .. }) => Some(*prefix),
        _ => None,
    });
    let snapshot_with = |p: Seq| {
        actions.iter().find_map(|a| match a {
            Action::Persist { write, .. } => write.snapshot.as_ref().filter(|s| s.prefix() == p),
            _ => None,
        })
    };
    installs
        .map(|p| match snapshot_with(p) {
            Some(s) => s.tail().collect::<Vec<Seq>>(),
            None => r.applied().iter_from(p).collect(),
        })
        .filter(|tail| !tail.is_empty())
        .collect()
}

/// What a replica has committed but not applied, with the first few stuck
/// records and what they wait for; `None` when it applied everything.
pub fn apply_backlog(r: &Replica) -> Option<String> {
    let backlog = r.committed() - r.applied();
    let first = backlog.iter_from(0).next()?;
    let stuck: Vec<String> = backlog
        .iter_from(first)
        .take(6)
        .map(|seq| match r.log().get(&seq) {
            Some(rec) => format!("{} (Overrides {}, Depends {})", rec.short(), bm(&rec.overrides), bm(&rec.depends)),
            None => format!("{seq}: not held"),
        })
        .collect();
    Some(format!(
        "has committed but not applied {} (applied prefix {}); the first: {}",
        clip(backlog.to_string(), 120),
        r.applied().prefix_len(),
        stuck.join("; ")
    ))
}

/// Trace fields are clipped to this many bytes.
pub const TRACE_FIELD: usize = 200;

pub fn describe_msg(msg: &Message) -> String {
    msg.describe(TRACE_FIELD)
}
