//! The names the admin service puts on the wire for event kinds and member
//! roles. They travel as strings (`Event.kind`, `StatusReply.role`) so that
//! `-o json` output and reference tooling read them as words; this is the
//! one place that spells them, for the node that writes them and the CLI
//! that reads them.

use crate::replica::Role;

macro_rules! wire_names {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// `None` for a name this build does not know (a newer server).
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_names! {
    /// What one `Watch` event reports; `Lagged` means the watcher fell
    /// behind and the member dropped events for it.
    EventKind {
        VoteStart = "vote_start",
        VoteWin = "vote_win",
        VoteFail = "vote_fail",
        LeaderChange = "leader_change",
        Commit = "commit",
        Apply = "apply",
        ConfigChange = "config_change",
        SnapshotInstalled = "snapshot_installed",
        Compacted = "compacted",
        Lagged = "lagged",
    }
}

impl EventKind {
    /// Whether the event's `seq` field means something: the record's seq,
    /// the base length a leader won with, or the prefix a snapshot or a
    /// compaction covers.
    pub fn carries_seq(self) -> bool {
        matches!(
            self,
            EventKind::Commit
                | EventKind::Apply
                | EventKind::ConfigChange
                | EventKind::VoteWin
                | EventKind::SnapshotInstalled
                | EventKind::Compacted
        )
    }

    /// Whether the event means leadership may have moved.
    pub fn is_election(self) -> bool {
        matches!(self, EventKind::VoteStart | EventKind::VoteWin | EventKind::LeaderChange)
    }
}

wire_names! {
    /// What a member is, as `status` reports it.
    MemberRole {
        Leader = "leader",
        Candidate = "candidate",
        Follower = "follower",
        Learner = "learner",
    }
}

impl From<Role> for MemberRole {
    fn from(role: Role) -> MemberRole {
        match role {
            Role::Leader => MemberRole::Leader,
            Role::Candidate => MemberRole::Candidate,
            Role::Follower => MemberRole::Follower,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_variant() {
        for &kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        for &role in MemberRole::ALL {
            assert_eq!(MemberRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(EventKind::parse("no_such_kind"), None);
    }
}
