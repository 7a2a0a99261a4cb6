//! Quorum systems: majority, joint and grid configurations, validation, and
//! failure analysis, checked against brute-force models by member id.

use std::collections::BTreeMap;

use proptest::prelude::*;
use traftctl::config::{BLOCKING_SETS_MAX_MEMBERS, ConfigError, MAJORITY_MAX_MEMBERS};
use traftctl::pb::{ClusterConfig, ReplicaInfo};

fn addr(id: i64) -> String {
    format!("10.0.0.{id}:7000")
}

fn members(ids: impl IntoIterator<Item = i64>) -> Vec<(i64, String)> {
    ids.into_iter().map(|id| (id, addr(id))).collect()
}

fn majority(ids: impl IntoIterator<Item = i64>) -> ClusterConfig {
    ClusterConfig::majority(members(ids)).expect("majority")
}

/// Every subset of `ids`, as id lists.
fn subsets(ids: &[i64]) -> impl Iterator<Item = Vec<i64>> + '_ {
    (0u64..1 << ids.len())
        .map(move |mask| ids.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, &id)| id).collect())
}

fn intersect(set: &[i64], config: &ClusterConfig) -> Vec<i64> {
    set.iter().copied().filter(|id| config.members.contains_key(id)).collect()
}

fn union_ids(a: &ClusterConfig, b: &ClusterConfig) -> Vec<i64> {
    let mut ids: Vec<i64> = a.members.keys().chain(b.members.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The defining property of a joint configuration, over every subset of the
/// members of either half.
fn assert_joint_semantics(a: &ClusterConfig, b: &ClusterConfig, joint: &ClusterConfig) {
    assert_eq!(joint.voters(), union_ids(a, b));
    for set in subsets(&union_ids(a, b)) {
        let expected = a.is_quorum_of_ids(intersect(&set, a)) && b.is_quorum_of_ids(intersect(&set, b));
        assert_eq!(joint.is_quorum_of_ids(set.clone()), expected, "set {set:?} in {joint}");
    }
}

/// The same quorum system by id, whatever the positions.
fn assert_same_by_ids(x: &ClusterConfig, y: &ClusterConfig) {
    assert_eq!(x.voters(), y.voters());
    for set in subsets(&x.voters()) {
        assert_eq!(x.is_quorum_of_ids(set.clone()), y.is_quorum_of_ids(set.clone()), "set {set:?}");
    }
}

/// `config` with its i-th member (by id) moved to `positions[i]`.
fn relabel(config: &ClusterConfig, positions: &[i64]) -> ClusterConfig {
    let members: BTreeMap<i64, ReplicaInfo> = config
        .members
        .values()
        .zip(positions)
        .map(|(m, &position)| (m.id, ReplicaInfo { position, ..m.clone() }))
        .collect();
    let moved = ClusterConfig { members, quorums: Vec::new(), ..Default::default() };
    let quorums = config.quorums.iter().map(|&q| moved.ids_to_bitmap(config.bitmap_to_ids(q))).collect();
    ClusterConfig { quorums, ..moved }
}

fn binomial(n: u64, k: u64) -> u64 {
    (0..k).fold(1, |acc, i| acc * (n - i) / (i + 1))
}

#[test]
fn majority_is_valid_and_matches_counting() {
    for n in 1..=7i64 {
        // Ids unlike positions, so a mix-up of the two shows.
        let ids: Vec<i64> = (1..=n).map(|i| i * 10).collect();
        let config = majority(ids.clone());
        config.validate().unwrap_or_else(|e| panic!("n={n}: {e}"));
        assert_eq!(config.quorums.len() as u64, binomial(n as u64, n as u64 / 2 + 1), "n={n}");
        assert_eq!(config.max_position(), n - 1);
        let positions: Vec<i64> = config.sorted_members().iter().map(|m| m.position).collect();
        assert_eq!(positions, (0..n).collect::<Vec<_>>(), "positions follow id order");
        for set in subsets(&ids) {
            let expected = 2 * set.len() > n as usize;
            assert_eq!(config.is_quorum_of_ids(set.clone()), expected, "n={n} set={set:?}");
            assert_eq!(config.is_quorum(config.ids_to_bitmap(set.clone())), expected);
            assert_eq!(config.bitmap_to_ids(config.ids_to_bitmap(set.clone())), set);
        }
    }
}

#[test]
fn majority_limits_and_input_errors() {
    let empty: Vec<(i64, String)> = Vec::new();
    assert_eq!(ClusterConfig::majority(empty), Err(ConfigError::NoMembers));
    assert_eq!(ClusterConfig::majority([(1, "a"), (2, "b"), (1, "c")]), Err(ConfigError::DuplicateMember { id: 1 }));
    let limit = MAJORITY_MAX_MEMBERS as i64;
    let largest = majority(1..=limit);
    largest.validate().unwrap();
    assert_eq!(largest.quorums.len() as u64, binomial(limit as u64, limit as u64 / 2 + 1));
    let err = ClusterConfig::majority(members(1..=limit + 1)).unwrap_err();
    assert_eq!(err, ConfigError::MajorityTooLarge { count: MAJORITY_MAX_MEMBERS + 1 });
    assert!(err.to_string().contains("grid"), "{err}");
}

#[test]
fn display_lists_members_and_quorums_by_id() {
    assert_eq!(majority([3, 1, 2]).to_string(), "{1,2,3} quorums: {1,2} {1,3} {2,3}");
    assert_eq!(majority([7]).to_string(), "{7} quorums: {7}");
    let mut broken = majority([1, 2]);
    broken.quorums.push(1 << 5);
    assert_eq!(broken.to_string(), "{1,2} quorums: {1,2} {bit5}");
    broken.quorums.clear();
    assert_eq!(broken.to_string(), "{1,2} quorums: (none)");
}

#[test]
fn accessors() {
    let config = majority([5, 9, 2]);
    assert_eq!(config.position_of(2), Some(0));
    assert_eq!(config.position_of(9), Some(2));
    assert_eq!(config.position_of(4), None);
    assert_eq!(config.voters(), vec![2, 5, 9]);
    assert_eq!(config.sorted_members().iter().map(|m| m.id).collect::<Vec<_>>(), vec![2, 5, 9]);
    // Non-members count for nothing, even towards a quorum.
    assert_eq!(config.ids_to_bitmap([9, 4, 2]), 0b101);
    assert!(!config.is_quorum_of_ids([9, 4, 100]));
    assert!(config.is_quorum_of_ids([9, 2]));
    // Bits without a member are dropped.
    assert_eq!(config.bitmap_to_ids(0b1111_0110), vec![5, 9]);
    assert_eq!(ClusterConfig::default().max_position(), -1);
    assert_eq!(ClusterConfig::default().members_bitmap(), 0);
}

#[test]
fn joint_of_majorities_is_valid_and_means_both_quorums() {
    for na in 1..=7i64 {
        for nb in 1..=7i64 {
            // Same first member, partial overlap, and disjoint member sets.
            for offset in [0, 2, na] {
                let a = majority(1..=na);
                let b = majority(offset + 1..=offset + nb);
                let joint = ClusterConfig::joint(&a, &b).unwrap_or_else(|e| panic!("{a} + {b}: {e}"));
                joint.validate().unwrap_or_else(|e| panic!("{joint}: {e}"));
                assert_joint_semantics(&a, &b, &joint);
                for m in a.members.values() {
                    assert_eq!(joint.position_of(m.id), Some(m.position), "old members keep their positions");
                }
            }
        }
    }
}

#[test]
fn joint_named_cases() {
    let three = majority(1..=3);
    let five = majority(1..=5);
    for (a, b) in [(&three, &five), (&five, &three)] {
        let joint = ClusterConfig::joint(a, b).unwrap();
        joint.validate().unwrap();
        assert_joint_semantics(a, b, &joint);
        assert_eq!(joint.voters(), vec![1, 2, 3, 4, 5]);
    }
    // 3 -> 5: {1,2} is a majority of the old config but not of the new one.
    let up = ClusterConfig::joint(&three, &five).unwrap();
    assert!(!up.is_quorum_of_ids([1, 2]));
    assert!(up.is_quorum_of_ids([1, 2, 4]));
    assert!(!up.is_quorum_of_ids([3, 4, 5]));

    // Identical halves: the joint config is the config itself.
    assert_eq!(ClusterConfig::joint(&five, &five).unwrap(), five);

    // Disjoint halves: a quorum needs a majority of each.
    let other = majority(11..=13);
    let joint = ClusterConfig::joint(&three, &other).unwrap();
    joint.validate().unwrap();
    assert_eq!(joint.quorums.len(), 9);
    assert!(joint.is_quorum_of_ids([1, 2, 11, 13]));
    assert!(!joint.is_quorum_of_ids([1, 2, 3, 11]));
    assert_eq!(joint.to_string().split(' ').nth(1), Some("quorums:"));
}

#[test]
fn joint_position_rule() {
    // Old members keep their positions; a member only in the new config keeps
    // its position when the old config leaves it free, else takes the lowest
    // free one.
    let a = relabel(&majority([1, 2, 3]), &[0, 5, 2]);
    let b = relabel(&majority([2, 4, 5]), &[0, 1, 5]);
    a.validate().unwrap();
    b.validate().unwrap();
    let joint = ClusterConfig::joint(&a, &b).unwrap();
    let positions: BTreeMap<i64, i64> = joint.members.values().map(|m| (m.id, m.position)).collect();
    assert_eq!(positions, BTreeMap::from([(1, 0), (2, 5), (3, 2), (4, 1), (5, 3)]));
    assert_joint_semantics(&a, &b, &joint);

    // Growing a majority adds the newcomers after the old members.
    let grown = ClusterConfig::joint(&majority([1, 2, 3]), &majority([2, 3, 4])).unwrap();
    assert_eq!(grown.position_of(4), Some(3));

    // Leaving the joint config for the aligned new config keeps every bit.
    let final_config = b.aligned_to(&joint).unwrap();
    final_config.validate().unwrap();
    assert_same_by_ids(&b, &final_config);
    for m in final_config.members.values() {
        assert_eq!(joint.position_of(m.id), Some(m.position));
    }
}

#[test]
fn joint_errors() {
    let a = majority([1, 2, 3]);
    let mut b = majority([3, 4, 5]);
    b.members.get_mut(&3).unwrap().addr = "elsewhere:1".into();
    let err = ClusterConfig::joint(&a, &b).unwrap_err();
    assert!(matches!(&err, ConfigError::AddrMismatch { id: 3, .. }), "{err:?}");
    assert!(err.to_string().contains("elsewhere:1"), "{err}");

    let mut bad = majority([4, 5]);
    bad.quorums.clear();
    let err = ClusterConfig::joint(&a, &bad).unwrap_err();
    assert_eq!(err, ConfigError::InvalidInput { which: "new", reason: Box::new(ConfigError::NoQuorums) });
    assert!(err.to_string().starts_with("the new configuration is invalid: "), "{err}");
    let err = ClusterConfig::joint(&bad, &a).unwrap_err();
    assert!(matches!(err, ConfigError::InvalidInput { which: "old", .. }), "{err:?}");

    let big_a = ClusterConfig::grid(5, 8, members(1..=40)).unwrap();
    let big_b = ClusterConfig::grid(5, 8, members(101..=140)).unwrap();
    assert_eq!(ClusterConfig::joint(&big_a, &big_b), Err(ConfigError::TooManyMembers { count: 80 }));
}

#[test]
fn grid_quorums_are_a_row_plus_a_column() {
    let grid = ClusterConfig::grid(2, 3, members(1..=6)).unwrap();
    grid.validate().unwrap();
    let rows = [vec![1, 2, 3], vec![4, 5, 6]];
    let cols = [vec![1, 4], vec![2, 5], vec![3, 6]];
    let mut expected: Vec<Vec<i64>> = Vec::new();
    for row in &rows {
        for col in &cols {
            let mut q: Vec<i64> = row.iter().chain(col).copied().collect();
            q.sort_unstable();
            q.dedup();
            expected.push(q);
        }
    }
    expected.sort();
    let mut listed: Vec<Vec<i64>> = grid.quorums.iter().map(|&q| grid.bitmap_to_ids(q)).collect();
    listed.sort();
    assert_eq!(listed, expected);
    for (i, x) in listed.iter().enumerate() {
        for y in &listed[i + 1..] {
            assert!(x.iter().any(|id| y.contains(id)), "{x:?} and {y:?} must intersect");
        }
    }
    // A full row alone, or a full column alone, is not enough.
    assert!(!grid.is_quorum_of_ids([1, 2, 3]));
    assert!(!grid.is_quorum_of_ids([1, 4]));
    assert!(grid.is_quorum_of_ids([1, 2, 3, 5]));

    ClusterConfig::grid(3, 3, members(1..=9)).unwrap().validate().unwrap();
    ClusterConfig::grid(1, 1, members([1])).unwrap().validate().unwrap();
    let err = ClusterConfig::grid(2, 3, members(1..=5)).unwrap_err();
    assert_eq!(err, ConfigError::GridShape { rows: 2, cols: 3, count: 5 });
    assert!(err.to_string().contains("needs 6 members"), "{err}");
}

#[test]
fn disjoint_quorums_are_rejected_naming_both() {
    let mut config = majority(1..=4);
    config.quorums = vec![config.ids_to_bitmap([1, 2]), config.ids_to_bitmap([3, 4])];
    let err = config.validate().unwrap_err();
    assert_eq!(
        err,
        ConfigError::DisjointQuorums { first: 0, second: 1, first_ids: vec![1, 2], second_ids: vec![3, 4] }
    );
    let msg = err.to_string();
    assert!(msg.contains("{1,2}") && msg.contains("{3,4}") && msg.contains("do not intersect"), "{msg}");

    // The same through the hand-made constructor, which validates.
    let err = ClusterConfig::custom(members(1..=4), [vec![1, 2], vec![3, 4]]).unwrap_err();
    assert!(matches!(err, ConfigError::DisjointQuorums { .. }), "{err:?}");
    // A non-uniform but intersecting system is fine.
    let ok = ClusterConfig::custom(members(1..=4), [vec![1, 2], vec![1, 3, 4], vec![2, 3]]).unwrap();
    assert!(ok.is_quorum_of_ids([2, 3, 4]));
    assert_eq!(
        ClusterConfig::custom(members(1..=3), [vec![1, 7]]),
        Err(ConfigError::UnknownMember { index: 0, id: 7 })
    );
}

#[test]
fn other_validate_failures() {
    assert_eq!(ClusterConfig::default().validate(), Err(ConfigError::NoMembers));

    let mut config = majority(1..=3);
    config.quorums.clear();
    assert_eq!(config.validate(), Err(ConfigError::NoQuorums));

    let mut config = majority(1..=3);
    config.quorums.push(0);
    assert_eq!(config.validate(), Err(ConfigError::EmptyQuorum { index: 3 }));
    assert!(!config.is_quorum(0), "an empty quorum must not make everything a quorum");

    let mut config = majority(1..=3);
    config.quorums.push(0b1001);
    let err = config.validate().unwrap_err();
    assert_eq!(err, ConfigError::UnknownPosition { index: 3, bitmap: 0b1001, bit: 3 });
    assert!(err.to_string().contains("bit 3"), "{err}");

    for position in [-1, 64] {
        let mut config = majority(1..=3);
        config.members.get_mut(&2).unwrap().position = position;
        assert_eq!(config.validate(), Err(ConfigError::PositionOutOfRange { id: 2, position }));
    }

    let mut config = majority(1..=3);
    config.members.get_mut(&3).unwrap().position = 0;
    let err = config.validate().unwrap_err();
    assert_eq!(err, ConfigError::DuplicatePosition { position: 0, first: 1, second: 3 });
    assert!(err.to_string().contains("members 1 and 3"), "{err}");

    let mut config = majority(1..=3);
    let info = config.members.remove(&3).unwrap();
    config.members.insert(4, info);
    assert_eq!(config.validate(), Err(ConfigError::KeyMismatch { key: 4, id: 3 }));
}

#[test]
fn survival_and_blocking_sets_of_majorities() {
    let three = majority(1..=3);
    assert!(three.survives([]));
    assert!(three.survives([2]));
    assert!(three.survives([2, 99]), "non-members are not counted as down members");
    assert!(!three.survives([1, 3]));
    assert_eq!(three.minimal_blocking_sets().unwrap(), vec![vec![1, 2], vec![1, 3], vec![2, 3]]);

    let five = majority(1..=5);
    assert!(five.survives([1, 5]));
    assert!(!five.survives([1, 3, 5]));
    let sets = five.minimal_blocking_sets().unwrap();
    assert_eq!(sets.len(), 10);
    assert!(sets.iter().all(|s| s.len() == 3));
    let mut dedup = sets.clone();
    dedup.dedup();
    assert_eq!(dedup, sets, "sorted and distinct");

    assert_eq!(majority([4]).minimal_blocking_sets().unwrap(), vec![vec![4]]);
}

#[test]
fn survival_and_blocking_sets_of_grids() {
    // Rows {1,2,3} {4,5,6}; columns {1,4} {2,5} {3,6}. Losing one member of
    // each row leaves no full row; no single loss blocks.
    let grid = ClusterConfig::grid(2, 3, members(1..=6)).unwrap();
    for id in 1..=6 {
        assert!(grid.survives([id]));
    }
    assert!(!grid.survives([2, 6]));
    assert!(grid.survives([1, 2]));
    let mut expected = Vec::new();
    for x in 1..=3 {
        for y in 4..=6 {
            expected.push(vec![x, y]);
        }
    }
    assert_eq!(grid.minimal_blocking_sets().unwrap(), expected);

    // 3x3: one member from each row (27 ways) or from each column (27), the
    // 6 permutations counted once.
    let grid = ClusterConfig::grid(3, 3, members(1..=9)).unwrap();
    let sets = grid.minimal_blocking_sets().unwrap();
    assert_eq!(sets.len(), 48);
    assert!(sets.iter().all(|s| s.len() == 3 && !grid.survives(s.clone())));

    let n = BLOCKING_SETS_MAX_MEMBERS as i64 + 2;
    let wide = ClusterConfig::grid(1, n as usize, members(1..=n)).unwrap();
    assert_eq!(
        wide.minimal_blocking_sets(),
        Err(ConfigError::TooManyForBlockingSets { count: BLOCKING_SETS_MAX_MEMBERS + 2 })
    );
}

#[test]
fn blocking_sets_are_the_smallest_ones() {
    // Quorums {1,2} and {1,3,4}: losing 1 alone blocks, so only {1} is
    // returned, not the larger inclusion-minimal {2,3} or {2,4}.
    let config = ClusterConfig::custom(members(1..=4), [vec![1, 2], vec![1, 3, 4]]).unwrap();
    assert_eq!(config.minimal_blocking_sets().unwrap(), vec![vec![1]]);
    assert!(!config.survives([2, 3]));
}

/// Member ids from 1..=8 and distinct positions from 0..10 in any order.
fn placed_majority() -> impl Strategy<Value = ClusterConfig> {
    (
        proptest::sample::subsequence((1..=8).collect::<Vec<i64>>(), 1..=5),
        Just((0..10).collect::<Vec<i64>>()).prop_shuffle(),
    )
        .prop_map(|(ids, positions)| relabel(&majority(ids), &positions))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn joint_of_arbitrarily_placed_configs(a in placed_majority(), b in placed_majority()) {
        prop_assert!(a.validate().is_ok());
        prop_assert!(b.validate().is_ok());
        let joint = ClusterConfig::joint(&a, &b).unwrap();
        prop_assert!(joint.validate().is_ok(), "{}", joint);
        assert_joint_semantics(&a, &b, &joint);
        for m in a.members.values() {
            prop_assert_eq!(joint.position_of(m.id), Some(m.position));
        }
        for m in b.members.values().filter(|m| !a.members.contains_key(&m.id)) {
            let free = a.members.values().all(|o| o.position != m.position);
            prop_assert_eq!(joint.position_of(m.id) == Some(m.position), free);
        }
        let aligned = b.aligned_to(&joint).unwrap();
        prop_assert!(aligned.validate().is_ok());
        assert_same_by_ids(&b, &aligned);
    }
}

/// A quorum system by its definition. The model answers from this alone, so
/// a bug in building the bitmaps cannot hide behind a matching bug in
/// reading them back.
#[derive(Debug, Clone)]
enum Spec {
    Majority(Vec<i64>),
    Grid { rows: usize, cols: usize, ids: Vec<i64> },
    Custom { ids: Vec<i64>, quorums: Vec<Vec<i64>> },
}

impl Spec {
    fn ids(&self) -> &[i64] {
        match self {
            Spec::Majority(ids) | Spec::Grid { ids, .. } | Spec::Custom { ids, .. } => ids,
        }
    }

    fn build(&self) -> Result<ClusterConfig, ConfigError> {
        match self {
            Spec::Majority(ids) => ClusterConfig::majority(members(ids.clone())),
            Spec::Grid { rows, cols, ids } => ClusterConfig::grid(*rows, *cols, members(ids.clone())),
            Spec::Custom { ids, quorums } => ClusterConfig::custom(members(ids.clone()), quorums.clone()),
        }
    }

    /// Does `set` contain a quorum? `ids` are sorted, so a grid's cell
    /// `(r, c)` is `ids[r * cols + c]`, the fill order `grid` documents.
    fn holds_quorum(&self, set: &[i64]) -> bool {
        match self {
            Spec::Majority(ids) => 2 * ids.iter().filter(|id| set.contains(id)).count() > ids.len(),
            Spec::Grid { rows, cols, ids } => {
                (0..*rows).any(|r| contains_all(set, (0..*cols).map(|c| ids[r * cols + c])))
                    && (0..*cols).any(|c| contains_all(set, (0..*rows).map(|r| ids[r * cols + c])))
            }
            Spec::Custom { quorums, .. } => quorums.iter().any(|q| contains_all(set, q.iter().copied())),
        }
    }

    /// Brute force over the family itself rather than over the listed pairs:
    /// two disjoint quorums exist exactly when some set and its complement
    /// both hold one, since the family is upward closed.
    fn quorums_intersect(&self) -> bool {
        subsets(self.ids()).all(|set| {
            let rest: Vec<i64> = self.ids().iter().copied().filter(|id| !set.contains(id)).collect();
            !(self.holds_quorum(&set) && self.holds_quorum(&rest))
        })
    }
}

fn contains_all(set: &[i64], group: impl IntoIterator<Item = i64>) -> bool {
    group.into_iter().all(|id| set.contains(&id))
}

/// The ids at the set bits of `mask`, indexing into `ids`.
fn pick(ids: &[i64], mask: u64) -> Vec<i64> {
    ids.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, &id)| id).collect()
}

/// Random non-empty quorums over `ids`, kept only while they meet every
/// quorum kept before, so the family always passes `validate`.
fn intersecting_quorums(ids: &[i64]) -> impl Strategy<Value = Vec<Vec<i64>>> + use<> {
    let ids = ids.to_vec();
    let full = (1u64 << ids.len()) - 1;
    proptest::collection::vec(1..=full, 1..=6).prop_map(move |masks| {
        let mut kept: Vec<u64> = Vec::new();
        for m in masks {
            if kept.iter().all(|k| k & m != 0) {
                kept.push(m);
            }
        }
        kept.into_iter().map(|m| pick(&ids, m)).collect()
    })
}

/// Every `rows x cols` layout of `n` members.
fn grid_shapes(n: usize) -> Vec<(usize, usize)> {
    (1..=n).filter(|&r| n.is_multiple_of(r)).map(|r| (r, n / r)).collect()
}

/// Any of the three kinds of valid system over `ids` (sorted).
fn valid_system(ids: Vec<i64>) -> impl Strategy<Value = Spec> {
    let n = ids.len();
    let grid_ids = ids.clone();
    prop_oneof![
        Just(Spec::Majority(ids.clone())),
        proptest::sample::select(grid_shapes(n)).prop_map(move |(rows, cols)| Spec::Grid {
            rows,
            cols,
            ids: grid_ids.clone()
        }),
        intersecting_quorums(&ids).prop_map(move |quorums| Spec::Custom { ids: ids.clone(), quorums }),
    ]
}

/// Old and new member sets in the relations a change goes through: the same
/// members under another system, growing, shrinking, partly overlapping and
/// disjoint. Each side has at most 7 of the ids 1..=10, so the union has at
/// most 10 and every subset of it can be tried.
fn old_and_new_members() -> impl Strategy<Value = (Vec<i64>, Vec<i64>)> {
    let pool: Vec<i64> = (1..=10).collect();
    (proptest::sample::subsequence(pool.clone(), 1..=6), proptest::sample::subsequence(pool.clone(), 1..=6), 0..5u8)
        .prop_map(move |(old, other, relation)| {
            let outside: Vec<i64> = pool.iter().copied().filter(|id| !old.contains(id)).collect();
            let mut new: Vec<i64> = match relation {
                0 => old.clone(),
                1 => old.iter().chain(outside.iter().take(7 - old.len()).take(other.len())).copied().collect(),
                2 => {
                    let kept: Vec<i64> = old.iter().copied().filter(|id| other.contains(id)).collect();
                    if kept.is_empty() { old[..1].to_vec() } else { kept }
                }
                3 => outside.into_iter().take(other.len()).collect(),
                _ => other,
            };
            new.sort_unstable();
            (old, new)
        })
}

/// A system, and the positions its members are moved to, if they are.
type Placed = (Spec, Option<Vec<i64>>);

/// A valid system, and whether to move its members off the id-order
/// positions the constructors give them.
fn placed(spec: Spec) -> impl Strategy<Value = Placed> {
    let positions = proptest::option::of(Just((0..10).collect::<Vec<i64>>()).prop_shuffle());
    (Just(spec), positions)
}

fn old_and_new_systems() -> impl Strategy<Value = (Placed, Placed)> {
    old_and_new_members()
        .prop_flat_map(|(old, new)| (valid_system(old).prop_flat_map(placed), valid_system(new).prop_flat_map(placed)))
}

fn build_placed((spec, positions): &Placed) -> ClusterConfig {
    let config = spec.build().unwrap_or_else(|e| panic!("{spec:?}: {e}"));
    match positions {
        Some(positions) => relabel(&config, positions),
        None => config,
    }
}

/// Custom systems over 1..=7 members, over a third of them with disjoint
/// quorums, so that both verdicts are tested often: raw random lists, lists
/// forced to intersect, lists with a quorum taken from outside another one,
/// and unions of one or two lines of a grid layout. A row meets every column
/// but no other row, so those structured families land on both sides.
fn any_custom_system() -> impl Strategy<Value = Spec> {
    (1usize..=7).prop_flat_map(|n| {
        let ids: Vec<i64> = (1..=n as i64).map(|i| i * 10).collect();
        let full = (1u64 << n) - 1;
        let raw = {
            let ids = ids.clone();
            proptest::collection::vec(1..=full, 1..=6)
                .prop_map(move |masks| masks.into_iter().map(|m| pick(&ids, m)).collect())
        };
        let apart = {
            let ids = ids.clone();
            (proptest::collection::vec(1..=full, 1..=5), any::<proptest::sample::Index>(), any::<u64>()).prop_map(
                move |(mut masks, which, bits)| {
                    let outside = full & !masks[which.index(masks.len())];
                    if outside & bits != 0 {
                        masks.push(outside & bits);
                    } else if outside != 0 {
                        masks.push(outside);
                    }
                    masks.into_iter().map(|m| pick(&ids, m)).collect()
                },
            )
        };
        let lines = {
            let ids = ids.clone();
            (proptest::sample::select(grid_shapes(n)), proptest::collection::vec(any::<u16>(), 1..=6)).prop_map(
                move |((rows, cols), choices)| {
                    let line = |k: usize| -> u64 {
                        if k < rows {
                            (0..cols).fold(0, |acc, c| acc | 1 << (k * cols + c))
                        } else {
                            (0..rows).fold(0, |acc, r| acc | 1 << (r * cols + k - rows))
                        }
                    };
                    let lines = rows + cols;
                    choices
                        .into_iter()
                        .map(|c| {
                            let (a, b) = (c as usize % lines, (c as usize / lines) % (lines + 1));
                            pick(&ids, line(a) | if b < lines { line(b) } else { 0 })
                        })
                        .collect()
                },
            )
        };
        let quorums = prop_oneof![raw, intersecting_quorums(&ids), apart, lines];
        quorums.prop_map(move |quorums| Spec::Custom { ids: ids.clone(), quorums })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn joint_quorums_hold_a_quorum_of_each_side(
        (old, new) in old_and_new_systems()
    ) {
        let a = build_placed(&old);
        let b = build_placed(&new);
        let union = union_ids(&a, &b);
        // The model below only means something if each side is what its
        // definition says.
        for (spec, config) in [(&old.0, &a), (&new.0, &b)] {
            for set in subsets(spec.ids()) {
                let listed = config.is_quorum_of_ids(set.clone());
                prop_assert_eq!(listed, spec.holds_quorum(&set), "{:?} set {:?}", spec, set);
            }
        }
        let joint = ClusterConfig::joint(&a, &b).unwrap_or_else(|e| panic!("{a} -> {b}: {e}"));
        prop_assert!(joint.validate().is_ok(), "{}", joint);
        prop_assert_eq!(joint.voters(), union.clone());
        for set in subsets(&union) {
            let (in_old, in_new) = (old.0.holds_quorum(&set), new.0.holds_quorum(&set));
            if joint.is_quorum_of_ids(set.clone()) {
                prop_assert!(in_old, "joint {} accepts {:?}, which holds no old quorum", joint, set);
                prop_assert!(in_new, "joint {} accepts {:?}, which holds no new quorum", joint, set);
            } else {
                let both = in_old && in_new;
                prop_assert!(!both, "joint {} rejects {:?}, which holds a quorum of each side", joint, set);
            }
        }
    }

    #[test]
    fn validate_accepts_exactly_the_intersecting_systems(spec in any_custom_system()) {
        let Spec::Custom { quorums, .. } = &spec else { unreachable!() };
        let expected = spec.quorums_intersect();
        match spec.build() {
            Ok(config) => {
                prop_assert!(expected, "accepted {} although two of its quorums are disjoint", config);
                prop_assert!(config.validate().is_ok());
            }
            Err(err) => {
                prop_assert!(!expected, "rejected {:?}, whose quorums all intersect: {}", quorums, err);
                let ConfigError::DisjointQuorums { first, second, first_ids, second_ids } = &err else {
                    return Err(TestCaseError::fail(format!("{quorums:?} rejected for another reason: {err:?}")));
                };
                // The error must point at a real offending pair, by index and
                // by members, so an operator can find it in what they wrote.
                prop_assert!(first < second && *second < quorums.len(), "{:?}", err);
                let sorted = |q: &Vec<i64>| {
                    let mut q = q.clone();
                    q.sort_unstable();
                    q
                };
                prop_assert_eq!(first_ids, &sorted(&quorums[*first]));
                prop_assert_eq!(second_ids, &sorted(&quorums[*second]));
                prop_assert!(first_ids.iter().all(|id| !second_ids.contains(id)), "{:?}", err);
                let msg = err.to_string();
                let show = |q: &[i64]| format!("{{{}}}", q.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
                prop_assert!(msg.contains(&show(first_ids)) && msg.contains(&show(second_ids)), "{}", msg);
                prop_assert!(msg.contains("do not intersect"), "{}", msg);
            }
        }
    }

    /// What every valid system, joint or not, must give a replica counting
    /// votes: more votes never lose a quorum, no votes are never a quorum, and
    /// two disjoint groups never both are one.
    #[test]
    fn is_quorum_is_monotone_and_never_split(
        (old, new) in old_and_new_systems(),
        joined in any::<bool>(),
    ) {
        let a = build_placed(&old);
        let config = if joined { ClusterConfig::joint(&a, &build_placed(&new)).unwrap() } else { a };
        let ids = config.voters();
        prop_assert!(!config.is_quorum_of_ids([]), "{}", config);
        for set in subsets(&ids) {
            if !config.is_quorum_of_ids(set.clone()) {
                continue;
            }
            for &extra in ids.iter().filter(|id| !set.contains(id)) {
                let mut more = set.clone();
                more.push(extra);
                prop_assert!(config.is_quorum_of_ids(more.clone()), "{} accepts {:?} but not {:?}", config, set, more);
            }
            let rest: Vec<i64> = ids.iter().copied().filter(|id| !set.contains(id)).collect();
            prop_assert!(!config.is_quorum_of_ids(rest.clone()), "{} accepts both {:?} and {:?}", config, set, rest);
        }
    }
}
