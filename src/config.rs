//! Cluster configurations: members and explicit quorums.
//!
//! A configuration lists its quorums as `u64` bitmaps over member positions,
//! so majority, joint consensus and grid quorums are all the same data. A set
//! of replicas is a quorum when it *contains* a listed quorum: the family is
//! upward closed, and only the minimal sets need to be listed.
//!
//! Positions are local to one configuration. Bitmaps from one configuration
//! mean nothing in another; translate them through member ids
//! ([`ClusterConfig::bitmap_to_ids`], [`ClusterConfig::ids_to_bitmap`]), or
//! line the positions up first with [`ClusterConfig::aligned_to`].

use std::collections::BTreeMap;
use std::fmt;

use crate::pb::{ClusterConfig, ReplicaInfo};
use crate::types::NodeId;

/// Positions are bits of a `u64` quorum bitmap.
pub const MAX_MEMBERS: usize = 64;

/// [`ClusterConfig::majority`] lists every minimal majority explicitly. That
/// is C(n, n/2+1) bitmaps: 126 for 9 members but 462 for 11 and 1716 for 13,
/// and a joint configuration holds up to the product of two such lists, which
/// every quorum check scans. Nine members keep a 9 -> 9 joint configuration
/// within about 16k bitmaps; larger clusters should use a grid or a
/// hand-made quorum list.
pub const MAJORITY_MAX_MEMBERS: usize = 9;

/// [`ClusterConfig::minimal_blocking_sets`] tries member subsets by brute
/// force; 2^16 subsets is still instant, 2^64 never finishes.
pub const BLOCKING_SETS_MAX_MEMBERS: usize = 16;

/// Why a configuration was rejected or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration has no members; add at least one member")]
    NoMembers,

    #[error("member {id} is listed both as a voter and as a learner; a member is one or the other")]
    LearnerIsVoter { id: i64 },

    #[error(
        "the configuration has no quorums, so nothing could ever commit; list at least one \
         quorum (for example the majorities of the members)"
    )]
    NoQuorums,

    #[error("member {id} is listed more than once; every member needs a unique id")]
    DuplicateMember { id: i64 },

    #[error("the member map key {key} holds replica info with id {id}; the key must equal the member's id")]
    KeyMismatch { key: i64, id: i64 },

    #[error(
        "member {id} has position {position}, outside 0..=63; a position is a bit of a 64-bit \
         quorum bitmap"
    )]
    PositionOutOfRange { id: i64, position: i64 },

    #[error("members {first} and {second} both have position {position}; every member needs its own position")]
    DuplicatePosition { position: i64, first: i64, second: i64 },

    #[error(
        "quorum #{index} is empty (bitmap 0): it shares no member with any quorum, so it breaks \
         every intersection; remove it"
    )]
    EmptyQuorum { index: usize },

    #[error(
        "quorum #{index} (bitmap {bitmap:#x}) names bit {bit}, which is no member's position; \
         remove the bit or add a member at position {bit}"
    )]
    UnknownPosition { index: usize, bitmap: u64, bit: u32 },

    #[error("quorum #{index} names {id}, which is not a member; add the member or remove it from the quorum")]
    UnknownMember { index: usize, id: i64 },

    #[error(
        "quorums #{first} {} and #{second} {} do not intersect: each could decide without the \
         other; every pair of quorums must share a member",
        fmt_ids(.first_ids), fmt_ids(.second_ids)
    )]
    DisjointQuorums { first: usize, second: usize, first_ids: Vec<i64>, second_ids: Vec<i64> },

    #[error(
        "{count} members do not fit: a configuration has at most {MAX_MEMBERS} members, one per \
         bit of a quorum bitmap"
    )]
    TooManyMembers { count: usize },

    #[error(
        "majority quorums are listed explicitly only up to {MAJORITY_MAX_MEMBERS} members, got \
         {count}; use a grid or a hand-made quorum list for a larger cluster"
    )]
    MajorityTooLarge { count: usize },

    #[error(
        "a {rows}x{cols} grid needs {} members, got {count}; pass exactly rows * cols members",
        .rows.saturating_mul(*.cols)
    )]
    GridShape { rows: usize, cols: usize, count: usize },

    #[error(
        "minimal blocking sets are searched by brute force up to {BLOCKING_SETS_MAX_MEMBERS} \
         members; this configuration has {count}"
    )]
    TooManyForBlockingSets { count: usize },

    #[error(
        "member {id} has address {old_addr:?} in the old configuration and {new_addr:?} in the \
         new one; a member keeps its address across a change (give a moved replica a new id)"
    )]
    AddrMismatch { id: i64, old_addr: String, new_addr: String },

    /// An input of [`ClusterConfig::joint`] or [`ClusterConfig::aligned_to`]
    /// failed [`ClusterConfig::validate`].
    #[error("the {which} configuration is invalid: {reason}")]
    InvalidInput { which: &'static str, reason: Box<ConfigError> },
}

/// `{1,2,3}`: the form used in `Display` and in error messages.
fn fmt_ids(ids: &[i64]) -> String {
    let parts: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("{{{}}}", parts.join(","))
}

fn bits(mut bitmap: u64) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        (bitmap != 0).then(|| {
            let bit = bitmap.trailing_zeros();
            bitmap &= bitmap - 1;
            bit
        })
    })
}

/// Every `k`-subset of `0..n` as a bitmap, in increasing numeric order
/// (Gosper's hack). `n <= 63`.
fn combinations(n: usize, k: usize) -> Vec<u64> {
    debug_assert!(n < 64);
    if k > n {
        return Vec::new();
    }
    let limit = 1u64 << n;
    let mut out = Vec::new();
    let mut mask = (1u64 << k) - 1;
    while mask < limit {
        out.push(mask);
        if mask == 0 {
            break;
        }
        let low = mask & mask.wrapping_neg();
        let ripple = mask + low;
        mask = (((ripple ^ mask) >> 2) / low) | ripple;
    }
    out
}

/// Drops duplicates and every set that contains another: the upward closure
/// is unchanged, and shorter lists make every quorum check cheaper.
fn minimize(mut quorums: Vec<u64>) -> Vec<u64> {
    quorums.sort_by_key(|q| (q.count_ones(), *q));
    quorums.dedup();
    let mut kept: Vec<u64> = Vec::with_capacity(quorums.len());
    for q in quorums {
        if !kept.iter().any(|k| q & k == *k) {
            kept.push(q);
        }
    }
    kept.sort_unstable();
    kept
}

/// The bit of a position, if it is a valid one.
fn position_bit(position: i64) -> Option<u64> {
    (0..MAX_MEMBERS as i64).contains(&position).then(|| 1u64 << position)
}

/// Sorts the `(id, addr)` pairs by id and rejects duplicates and empty or
/// oversized lists.
fn collect_members<S: Into<String>>(
    members: impl IntoIterator<Item = (i64, S)>,
) -> Result<Vec<(NodeId, String)>, ConfigError> {
    let mut list: Vec<(i64, String)> = members.into_iter().map(|(id, addr)| (id, addr.into())).collect();
    list.sort_by_key(|(id, _)| *id);
    if let Some(w) = list.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(ConfigError::DuplicateMember { id: w[0].0 });
    }
    if list.is_empty() {
        return Err(ConfigError::NoMembers);
    }
    if list.len() > MAX_MEMBERS {
        return Err(ConfigError::TooManyMembers { count: list.len() });
    }
    Ok(list)
}

/// Members at positions `0..` in id order.
fn members_by_id_order(list: Vec<(NodeId, String)>) -> BTreeMap<NodeId, ReplicaInfo> {
    list.into_iter()
        .enumerate()
        .map(|(position, (id, addr))| (id, ReplicaInfo { id, addr, position: position as i64 }))
        .collect()
}

/// Adds `newcomers` to `members`, which keep their positions. A newcomer keeps
/// its own position when that bit is still free, otherwise it takes the lowest
/// free bit. Only a clash with an existing member forces a move (newcomers come
/// from one valid configuration, so they never clash with each other), so as
/// many newcomers as possible keep their positions.
fn add_members(members: &mut BTreeMap<i64, ReplicaInfo>, newcomers: Vec<&ReplicaInfo>) -> Result<(), ConfigError> {
    let count = members.len() + newcomers.len();
    if count > MAX_MEMBERS {
        return Err(ConfigError::TooManyMembers { count });
    }
    let mut used = members.values().filter_map(|m| position_bit(m.position)).fold(0, |acc, b| acc | b);
    let mut displaced = Vec::new();
    for info in newcomers {
        match position_bit(info.position) {
            Some(bit) if used & bit == 0 => {
                used |= bit;
                members.insert(info.id, info.clone());
            }
            _ => displaced.push(info),
        }
    }
    for info in displaced {
        let position = (!used).trailing_zeros();
        used |= 1 << position;
        members.insert(info.id, ReplicaInfo { position: i64::from(position), ..info.clone() });
    }
    Ok(())
}

impl ClusterConfig {
    /// Majority quorums over `members` (`(id, addr)` pairs): positions `0..`
    /// in id order, and every minimal majority (`n/2 + 1` members) listed as
    /// a quorum.
    ///
    /// Errors for no members, a repeated id, or more than
    /// [`MAJORITY_MAX_MEMBERS`] members (the explicit list grows as
    /// C(n, n/2+1)).
    pub fn majority<S: Into<String>>(members: impl IntoIterator<Item = (NodeId, S)>) -> Result<Self, ConfigError> {
        let list = collect_members(members)?;
        let n = list.len();
        if n > MAJORITY_MAX_MEMBERS {
            return Err(ConfigError::MajorityTooLarge { count: n });
        }
        Ok(ClusterConfig {
            members: members_by_id_order(list),
            quorums: combinations(n, n / 2 + 1),
            ..Default::default()
        })
    }

    /// Grid quorums: the `rows * cols` members fill the grid row by row in id
    /// order (position `r * cols + c` is row `r`, column `c`), and a quorum is
    /// one full row plus one full column. Row `r1` and column `c2` always share
    /// the member at `(r1, c2)`, so any two quorums intersect, while a quorum
    /// needs only `rows + cols - 1` members.
    pub fn grid<S: Into<String>>(
        rows: usize,
        cols: usize,
        members: impl IntoIterator<Item = (i64, S)>,
    ) -> Result<Self, ConfigError> {
        let list = collect_members(members)?;
        if rows.checked_mul(cols) != Some(list.len()) {
            return Err(ConfigError::GridShape { rows, cols, count: list.len() });
        }
        let row_bits = |r: usize| (0..cols).fold(0u64, |acc, c| acc | 1 << (r * cols + c));
        let col_bits = |c: usize| (0..rows).fold(0u64, |acc, r| acc | 1 << (r * cols + c));
        let quorums = (0..rows).flat_map(|r| (0..cols).map(move |c| row_bits(r) | col_bits(c))).collect();
        Ok(ClusterConfig { members: members_by_id_order(list), quorums: minimize(quorums), ..Default::default() })
    }

    /// A hand-made configuration: positions `0..` in id order, and each quorum
    /// given as a set of member ids. The result is validated, so quorums that
    /// do not pairwise intersect are rejected here.
    pub fn custom<S, Q>(
        members: impl IntoIterator<Item = (i64, S)>,
        quorums: impl IntoIterator<Item = Q>,
    ) -> Result<Self, ConfigError>
    where
        S: Into<String>,
        Q: IntoIterator<Item = i64>,
    {
        let config = ClusterConfig {
            members: members_by_id_order(collect_members(members)?),
            quorums: Vec::new(),
            ..Default::default()
        };
        let mut bitmaps = Vec::new();
        for (index, quorum) in quorums.into_iter().enumerate() {
            let mut bitmap = 0;
            for id in quorum {
                let position = config.position_of(id).ok_or(ConfigError::UnknownMember { index, id })?;
                bitmap |= 1u64 << position;
            }
            bitmaps.push(bitmap);
        }
        let config = ClusterConfig { quorums: bitmaps, ..config };
        config.validate()?;
        Ok(config)
    }

    /// The joint configuration of `a` (old) and `b` (new): a set is a quorum
    /// of it exactly when it contains a quorum of `a` and a quorum of `b`.
    ///
    /// Members are the union. A member of both must have the same address in
    /// both. Positions: every member of `a` keeps its position in `a`
    /// (including members of both whose position in `b` differs); a member
    /// only in `b` keeps its position in `b` when `a` does not use that bit,
    /// and otherwise takes the lowest bit still free. The quorums are the
    /// unions of one quorum of `a` with one quorum of `b` (translated through
    /// ids), without duplicates and supersets, in increasing bitmap order.
    ///
    /// Both inputs must pass [`validate`](Self::validate); the union must
    /// have at most 64 members.
    pub fn joint(a: &Self, b: &Self) -> Result<Self, ConfigError> {
        a.validate().map_err(|e| ConfigError::InvalidInput { which: "old", reason: Box::new(e) })?;
        b.validate().map_err(|e| ConfigError::InvalidInput { which: "new", reason: Box::new(e) })?;
        let mut members = a.members.clone();
        let mut newcomers = Vec::new();
        for info in b.sorted_members() {
            match a.members.get(&info.id) {
                Some(old) if old.addr != info.addr => {
                    return Err(ConfigError::AddrMismatch {
                        id: info.id,
                        old_addr: old.addr.clone(),
                        new_addr: info.addr.clone(),
                    });
                }
                Some(_) => {}
                None => newcomers.push(info),
            }
        }
        add_members(&mut members, newcomers)?;
        let joint = ClusterConfig { members, quorums: Vec::new(), ..Default::default() };
        let b_quorums: Vec<u64> = b.quorums.iter().map(|&q| joint.ids_to_bitmap(b.bitmap_to_ids(q))).collect();
        let unions = a.quorums.iter().flat_map(|&qa| b_quorums.iter().map(move |&qb| qa | qb)).collect();
        Ok(ClusterConfig { quorums: minimize(unions), ..joint })
    }

    /// This configuration renumbered so that every member it shares with
    /// `reference` has the position it has there; the others are placed as
    /// the members only in `b` are in [`joint`](Self::joint). Same members,
    /// same quorums by id. Leaving a joint configuration for
    /// `b.aligned_to(&joint)` lets every member keep one bit throughout a
    /// change.
    pub fn aligned_to(&self, reference: &Self) -> Result<Self, ConfigError> {
        self.validate().map_err(|e| ConfigError::InvalidInput { which: "aligned", reason: Box::new(e) })?;
        reference.validate().map_err(|e| ConfigError::InvalidInput { which: "reference", reason: Box::new(e) })?;
        let mut members = BTreeMap::new();
        let mut newcomers = Vec::new();
        for info in self.sorted_members() {
            match reference.members.get(&info.id) {
                Some(r) => {
                    members.insert(info.id, ReplicaInfo { position: r.position, ..info.clone() });
                }
                None => newcomers.push(info),
            }
        }
        add_members(&mut members, newcomers)?;
        let aligned = ClusterConfig { members, quorums: Vec::new(), ..Default::default() };
        let quorums = self.quorums.iter().map(|&q| aligned.ids_to_bitmap(self.bitmap_to_ids(q))).collect();
        Ok(ClusterConfig { quorums, ..aligned })
    }

    /// True when `positions_bitmap` contains some quorum. An empty (0) quorum
    /// never matches: [`validate`](Self::validate) rejects it, and treating it
    /// as "anyone decides" would be the unsafe reading of a broken config.
    pub fn is_quorum(&self, positions_bitmap: u64) -> bool {
        self.quorums.iter().any(|&q| q != 0 && positions_bitmap & q == q)
    }

    /// [`is_quorum`](Self::is_quorum) of the members with these ids; ids that
    /// are not members count for nothing.
    pub fn is_quorum_of_ids(&self, ids: impl IntoIterator<Item = NodeId>) -> bool {
        self.is_quorum(self.ids_to_bitmap(ids))
    }

    pub fn position_of(&self, id: NodeId) -> Option<i64> {
        self.members.get(&id).map(|m| m.position)
    }

    /// The bitmap of these members' positions. Ids that are not members, and
    /// members whose position is not a valid bit, are left out.
    pub fn ids_to_bitmap(&self, ids: impl IntoIterator<Item = NodeId>) -> u64 {
        ids.into_iter().filter_map(|id| self.position_of(id).and_then(position_bit)).fold(0, |acc, bit| acc | bit)
    }

    /// The ids of the members whose bits are set, in increasing id order.
    /// Bits that are no member's position are left out.
    pub fn bitmap_to_ids(&self, bitmap: u64) -> Vec<NodeId> {
        self.members
            .values()
            .filter(|m| position_bit(m.position).is_some_and(|bit| bitmap & bit != 0))
            .map(|m| m.id)
            .collect()
    }

    /// The bitmap of every member's position.
    pub fn members_bitmap(&self) -> u64 {
        self.ids_to_bitmap(self.members.keys().copied())
    }

    /// The highest position in use, or -1 when there are no members.
    pub fn max_position(&self) -> i64 {
        self.members.values().map(|m| m.position).max().unwrap_or(-1)
    }

    /// Members in position order (ties, only possible in an invalid
    /// configuration, by id).
    pub fn sorted_members(&self) -> Vec<&ReplicaInfo> {
        let mut list: Vec<&ReplicaInfo> = self.members.values().collect();
        list.sort_by_key(|m| (m.position, m.id));
        list
    }

    /// The ids of the voting members, in increasing id order. Every member
    /// votes: a replica that is catching up as a learner is not in the
    /// configuration at all.
    pub fn voters(&self) -> Vec<NodeId> {
        self.members.keys().copied().collect()
    }

    /// Checks that the configuration is usable: at least one member, map keys
    /// equal to member ids, distinct positions in `0..=63`, at least one
    /// quorum, no empty quorum, no quorum bit without a member, and every two
    /// quorums sharing a member (otherwise two disjoint groups could both
    /// decide, and committed records could be lost).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.members.is_empty() {
            return Err(ConfigError::NoMembers);
        }
        let mut by_position: BTreeMap<i64, i64> = BTreeMap::new();
        for (&key, info) in &self.members {
            if key != info.id {
                return Err(ConfigError::KeyMismatch { key, id: info.id });
            }
            if position_bit(info.position).is_none() {
                return Err(ConfigError::PositionOutOfRange { id: info.id, position: info.position });
            }
            if let Some(&first) = by_position.get(&info.position) {
                return Err(ConfigError::DuplicatePosition { position: info.position, first, second: info.id });
            }
            by_position.insert(info.position, info.id);
        }
        for (&key, info) in &self.learners {
            if key != info.id {
                return Err(ConfigError::KeyMismatch { key, id: info.id });
            }
            if self.members.contains_key(&key) {
                return Err(ConfigError::LearnerIsVoter { id: key });
            }
        }
        if self.quorums.is_empty() {
            return Err(ConfigError::NoQuorums);
        }
        let members = self.members_bitmap();
        for (index, &q) in self.quorums.iter().enumerate() {
            if q == 0 {
                return Err(ConfigError::EmptyQuorum { index });
            }
            if let Some(bit) = bits(q & !members).next() {
                return Err(ConfigError::UnknownPosition { index, bitmap: q, bit });
            }
        }
        for (i, &qi) in self.quorums.iter().enumerate() {
            for (j, &qj) in self.quorums.iter().enumerate().skip(i + 1) {
                if qi & qj == 0 {
                    return Err(ConfigError::DisjointQuorums {
                        first: i,
                        second: j,
                        first_ids: self.bitmap_to_ids(qi),
                        second_ids: self.bitmap_to_ids(qj),
                    });
                }
            }
        }
        Ok(())
    }

    /// With the members `down_ids` unavailable, do the others still contain
    /// a quorum? Ids that are not members are ignored.
    pub fn survives(&self, down_ids: impl IntoIterator<Item = NodeId>) -> bool {
        self.is_quorum(self.members_bitmap() & !self.ids_to_bitmap(down_ids))
    }

    /// The minimum-size sets of members whose loss stops the cluster (no
    /// quorum is left among the others): every smallest hitting set of the
    /// quorum family. Only the minimum-cardinality ones are returned; larger
    /// inclusion-minimal blocking sets (possible for non-uniform quorum
    /// systems) are not. Each set lists ids in increasing order; the sets are
    /// in lexicographic order.
    ///
    /// Subsets are tried by increasing size, so this is limited to
    /// [`BLOCKING_SETS_MAX_MEMBERS`] members.
    pub fn minimal_blocking_sets(&self) -> Result<Vec<Vec<NodeId>>, ConfigError> {
        let members = self.sorted_members();
        let n = members.len();
        if n > BLOCKING_SETS_MAX_MEMBERS {
            return Err(ConfigError::TooManyForBlockingSets { count: n });
        }
        let all = self.members_bitmap();
        // Index i of a subset mask stands for the i-th member by position.
        let down_bitmap = |mask: u64| -> u64 {
            bits(mask).filter_map(|i| position_bit(members[i as usize].position)).fold(0, |acc, b| acc | b)
        };
        for size in 0..=n {
            let mut found: Vec<Vec<i64>> = combinations(n, size)
                .into_iter()
                .filter(|&mask| !self.is_quorum(all & !down_bitmap(mask)))
                .map(|mask| {
                    let mut ids: Vec<i64> = bits(mask).map(|i| members[i as usize].id).collect();
                    ids.sort_unstable();
                    ids
                })
                .collect();
            if !found.is_empty() {
                found.sort();
                return Ok(found);
            }
        }
        // Losing every member leaves the empty set, which contains no
        // (non-empty) quorum, so the loop always returns.
        Ok(Vec::new())
    }
}

/// `{1,2,3} quorums: {1,2} {1,3} {2,3}`: members and quorums as id sets.
/// A quorum bit with no member shows as `bit5`.
impl fmt::Display for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&fmt_ids(&self.voters()))?;
        f.write_str(" quorums:")?;
        if self.quorums.is_empty() {
            return f.write_str(" (none)");
        }
        let members = self.members_bitmap();
        for &q in &self.quorums {
            let mut parts: Vec<String> = self.bitmap_to_ids(q).iter().map(i64::to_string).collect();
            parts.extend(bits(q & !members).map(|bit| format!("bit{bit}")));
            write!(f, " {{{}}}", parts.join(","))?;
        }
        if !self.learners.is_empty() {
            let learners: Vec<i64> = self.learners.keys().copied().collect();
            write!(f, " learners: {}", fmt_ids(&learners))?;
        }
        if let Some(next) = &self.next {
            write!(f, " -> {}", fmt_ids(&next.voters()))?;
        }
        Ok(())
    }
}

/// One membership change an operator asks for, as `traftctl config`
/// spells it; [`ClusterConfig::after`] turns it into the configuration to
/// move to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    Add {
        id: NodeId,
        addr: String,
    },
    Remove {
        id: NodeId,
    },
    /// New quorums over the same members, as lists of ids.
    SetQuorums {
        quorums: Vec<Vec<NodeId>>,
    },
}

impl MembershipChange {
    pub fn name(&self) -> &'static str {
        match self {
            MembershipChange::Add { .. } => "add-member",
            MembershipChange::Remove { .. } => "remove-member",
            MembershipChange::SetQuorums { .. } => "set-quorums",
        }
    }
}

/// Why a [`MembershipChange`] cannot be made from a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("node {id} is already a member (at {addr})")]
    AlreadyMember { id: NodeId, addr: String },
    #[error("member {id} already has the address {addr}; every member needs its own address")]
    AddressTaken { id: NodeId, addr: String },
    /// `learner`: the node is a learner of the change in progress.
    #[error("node {id} is not a member")]
    NotAMember { id: NodeId, learner: bool },
    #[error("node {id} is the last member; a cluster needs at least one")]
    LastMember { id: NodeId },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl ClusterConfig {
    /// The configuration `change` asks for from this one: members added or
    /// removed keep majority quorums, `SetQuorums` keeps the members. The
    /// voters keep their positions (learners and a change in flight are
    /// not part of the result), so bitmaps line up across the joint stage.
    pub fn after(&self, change: &MembershipChange) -> Result<ClusterConfig, ChangeError> {
        let voters: Vec<(NodeId, String)> = self.members.values().map(|m| (m.id, m.addr.clone())).collect();
        let target = match change {
            MembershipChange::Add { id, addr } => {
                if let Some(m) = self.members.get(id) {
                    return Err(ChangeError::AlreadyMember { id: *id, addr: m.addr.clone() });
                }
                if let Some(m) = self.members.values().find(|m| m.addr == *addr) {
                    return Err(ChangeError::AddressTaken { id: m.id, addr: addr.clone() });
                }
                ClusterConfig::majority(voters.into_iter().chain([(*id, addr.clone())]))?
            }
            MembershipChange::Remove { id } => {
                if !self.members.contains_key(id) {
                    return Err(ChangeError::NotAMember { id: *id, learner: self.learners.contains_key(id) });
                }
                if self.members.len() == 1 {
                    return Err(ChangeError::LastMember { id: *id });
                }
                ClusterConfig::majority(voters.into_iter().filter(|(m, _)| m != id))?
            }
            MembershipChange::SetQuorums { quorums } => {
                ClusterConfig::custom(voters, quorums.iter().map(|q| q.iter().copied()))?
            }
        };
        let current_voters = ClusterConfig { learners: Default::default(), next: None, ..self.clone() };
        // Aligning cannot fail for a valid target and a valid current
        // configuration; keep the unaligned target if it somehow does.
        Ok(target.aligned_to(&current_voters).unwrap_or(target))
    }
}
