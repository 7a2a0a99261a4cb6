//! Typed errors of the protocol core. They travel to clients as an
//! [`ErrorKind`] (what to do about it) plus their text (what happened); the
//! CLI maps the kind to an exit code and adds its own hints.

use crate::pb::{ErrorKind, LeaderId};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraftError {
    /// A vote was refused because the voter's log is ahead of the candidate's.
    #[error("stale log: replica {voter} has a more recent log ({detail})")]
    StaleLog { voter: i64, detail: String },

    /// A ballot lost to a greater one seen by a peer.
    #[error("stale term-id: {seen} is greater than {mine}")]
    StaleTermId { mine: LeaderId, seen: LeaderId },

    #[error("timed out after {elapsed_ms} ms waiting for {what}")]
    Timeout { what: String, elapsed_ms: u64 },

    /// The request reached the leader, which lost its leadership before it
    /// could answer: the outcome of a write is unknown, not failed.
    #[error("leadership lost by {leader} before the request completed; its outcome is unknown")]
    LeadershipLost { leader: LeaderId },

    /// No leader is known; one has to be elected first.
    #[error("no leader: the cluster has to elect one first")]
    NoLeader,

    /// A configuration change that would leave the cluster without a
    /// reachable quorum (or is otherwise unsafe); `force` overrides the
    /// reachability check.
    #[error("refused as unsafe: {0}")]
    Unsafe(String),

    /// Another configuration change has not finished; retry after it has.
    #[error("rejected: a configuration change is already in progress; wait for it to finish")]
    ChangeInProgress,

    /// A leadership transfer the leader cannot make: the target is not a
    /// voter, not reachable, or not caught up in time.
    #[error("leadership transfer refused: {0}")]
    TransferRefused(String),

    /// The leader is handing leadership over; the next leader takes the request.
    #[error("leadership is being handed over; retry at the new leader in a moment")]
    Transferring,

    /// The request itself is unacceptable; retrying will not help.
    #[error("rejected: {0}")]
    Rejected(String),

    /// The change this request asked for was cancelled (`traftctl config
    /// abort`) before its joint configuration committed; the previous
    /// configuration is in force again.
    #[error(
        "the configuration change was aborted (`traftctl config abort`); the previous configuration is in force again"
    )]
    ChangeAborted,

    /// The receiver is not the leader; retry at `leader`, if known.
    #[error("not the leader{}", match .leader { Some(l) => format!("; the leader is {l}"), None => String::new() })]
    NotLeader { leader: Option<LeaderId>, addr: Option<String> },
}

impl TraftError {
    /// What a client should make of this error; the one mapping the wire
    /// carries, so a client never decides by the message text.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TraftError::StaleLog { .. } | TraftError::StaleTermId { .. } => ErrorKind::ElectionLost,
            TraftError::Timeout { .. } => ErrorKind::Timeout,
            TraftError::LeadershipLost { .. } => ErrorKind::OutcomeUnknown,
            TraftError::NoLeader | TraftError::Transferring => ErrorKind::NoLeader,
            TraftError::Unsafe(_) | TraftError::TransferRefused(_) => ErrorKind::Unsafe,
            TraftError::Rejected(_) | TraftError::ChangeInProgress | TraftError::ChangeAborted => ErrorKind::Rejected,
            TraftError::NotLeader { .. } => ErrorKind::NotLeader,
        }
    }
}
