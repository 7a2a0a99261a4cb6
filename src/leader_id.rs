//! Ballots. A `LeaderId` is `(term, id)`; replicas vote for any greater one,
//! so two candidates in the same term do not force a new term.

use std::cmp::Ordering;
use std::fmt;

use crate::pb::LeaderId;

impl LeaderId {
    pub fn new(term: i64, id: i64) -> Self {
        LeaderId { term, id }
    }

    /// Short form used in logs and tables: `003:002`.
    pub fn short(&self) -> String {
        format!("{:03}:{:03}", self.term, self.id)
    }
}

impl PartialOrd for LeaderId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LeaderId {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.term, self.id).cmp(&(other.term, other.id))
    }
}

/// What people read (errors, logs, the CLI's tables): `term 3, node 2`.
/// Traces that print many ballots per line use [`LeaderId::short`].
impl fmt::Display for LeaderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "term {}, node {}", self.term, self.id)
    }
}

/// Short form of an optional ballot; an absent one prints as `-`.
///
/// `Option<LeaderId>` already orders `None` below every `Some`, which is the
/// protocol's "absent is less than present", so no wrapper type is needed.
pub fn short_opt(leader: &Option<LeaderId>) -> String {
    match leader {
        Some(l) => l.short(),
        None => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_term_then_id_with_absent_lowest() {
        let a = LeaderId::new(1, 5);
        let b = LeaderId::new(2, 1);
        let c = LeaderId::new(2, 3);
        assert!(a < b && b < c);
        assert!(None < Some(a));
        assert_eq!(Some(c).max(None), Some(c));
        assert_eq!(c.short(), "002:003");
        assert_eq!(c.to_string(), "term 2, node 3");
        assert_eq!(short_opt(&None), "-");
    }
}
