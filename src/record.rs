//! Log records.

use std::fmt;

use crate::pb::{Cmd, LeaderId, Record, TailBitmap};
use crate::types::Seq;

static EMPTY_BITMAP: TailBitmap = TailBitmap { offset: 0, words: Vec::new(), reclamed: 0 };

impl Record {
    pub fn new(author: LeaderId, seq: Seq, cmd: Cmd, depends: TailBitmap, overrides: TailBitmap) -> Self {
        debug_assert!(overrides.contains(seq), "a record always overrides itself");
        Record { author: Some(author), seq, cmd: Some(cmd), depends: Some(depends), overrides: Some(overrides) }
    }

    /// An absent record: a placeholder for a seq whose record is not known.
    pub fn empty(&self) -> bool {
        self.cmd.is_none()
    }

    pub fn interfering(&self, other: &Record) -> bool {
        match (&self.cmd, &other.cmd) {
            (Some(a), Some(b)) => a.interfering(b),
            _ => false,
        }
    }

    /// Two copies of a record are the same record when author and seq agree:
    /// an author proposes at most one record per seq (a restarted leader takes
    /// a new ballot), and followers keep it unchanged.
    pub fn same_identity(&self, other: &Record) -> bool {
        self.author == other.author && self.seq == other.seq
    }

    /// `Overrides`, with an absent bitmap read as the empty set.
    pub fn overrides_bm(&self) -> &TailBitmap {
        self.overrides.as_ref().unwrap_or(&EMPTY_BITMAP)
    }

    /// The seqs this record backs in its holder's `Accepted` (rule 5): its
    /// own and the explicit bits of its `Overrides`. The all-ones prefix
    /// below the offset backs nothing: it claims every record below the
    /// author's floor, which a holder has only while other records or its
    /// applied set back them, and an adoption may drop those records.
    pub fn vouched(&self) -> impl Iterator<Item = Seq> + '_ {
        self.overrides_bm().iter().chain(std::iter::once(self.seq))
    }

    /// `Depends`, with an absent bitmap read as the empty set.
    pub fn depends_bm(&self) -> &TailBitmap {
        self.depends.as_ref().unwrap_or(&EMPTY_BITMAP)
    }

    /// `<003:001>7:set(x, 5)` : author, seq, command.
    pub fn short(&self) -> String {
        let author = crate::leader_id::short_opt(&self.author);
        match &self.cmd {
            Some(c) => format!("<{author}>{}:{c}", self.seq),
            None => format!("<{author}>{}:<empty>", self.seq),
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dep:{} ovr:{}", self.short(), self.depends_bm(), self.overrides_bm())
    }
}

/// `[<001:001>0:set(x, 1), <001:001>1:del(y)]`, the reference's `RecordsShortStr`.
pub fn records_short_str<'a>(records: impl IntoIterator<Item = &'a Record>) -> String {
    let parts: Vec<String> = records.into_iter().map(Record::short).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_interfering_and_short_forms() {
        let l = LeaderId::new(1, 1);
        let a = Record::new(l, 0, Cmd::set_i64("x", 1), TailBitmap::new(0, []), TailBitmap::new(0, [0]));
        let b = Record::new(l, 1, Cmd::incr("x", 2), TailBitmap::new(0, [0]), TailBitmap::new(0, [1]));
        let c = Record::new(l, 2, Cmd::del("y"), TailBitmap::new(0, []), TailBitmap::new(0, [2]));
        assert!(!a.empty() && Record::default().empty());
        assert!(a.interfering(&b) && !a.interfering(&c));
        assert!(!a.interfering(&Record::default()));
        assert_eq!(records_short_str([&a, &c]), "[<001:001>0:set(x, 1), <001:001>2:del(y)]");
    }
}
