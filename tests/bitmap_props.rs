//! `TailBitmap` against a plain `BTreeSet<i64>` model.
//!
//! Inputs are either built through the API or are raw encodings as a peer
//! might send them: negative or unaligned offsets, unset residual bits,
//! all-ones and trailing zero words, the reference's aligned form. The model
//! of a raw encoding is computed here straight from the documented rules, and
//! every result is checked to be exactly the canonical encoding of the model's
//! answer, which is what makes `==` set equality.

use std::collections::BTreeSet;

use proptest::collection::{btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use traftctl::bitmap::OptionBitmapExt;
use traftctl::pb::TailBitmap;

type Model = BTreeSet<i64>;

/// Raw encodings reach at most `(400 / 64 + 8) * 64`; probe a bit beyond.
const PROBE: i64 = 1100;

/// The set an encoding stands for, by the module's rules, bit by bit.
fn model(b: &TailBitmap) -> Model {
    let mut m: Model = (0..b.offset.max(0)).collect();
    let base = b.offset.div_euclid(64) * 64;
    for (i, w) in b.words.iter().enumerate() {
        for j in 0..64 {
            let seq = base + 64 * i as i64 + j;
            if w >> j & 1 == 1 && seq >= 0 {
                m.insert(seq);
            }
        }
    }
    m
}

fn model_opt(b: &Option<TailBitmap>) -> Model {
    b.as_ref().map(model).unwrap_or_default()
}

fn first_missing(m: &Model) -> i64 {
    (0..).find(|s| !m.contains(s)).unwrap()
}

/// The unique canonical encoding of `m`, written out independently of the
/// implementation.
fn canonical(m: &Model, reclamed: i64) -> TailBitmap {
    let offset = first_missing(m);
    let words = match m.iter().next_back() {
        Some(&max) if max > offset => (offset >> 6..=max >> 6)
            .map(|k| (0..64).filter(|j| m.contains(&(64 * k + j))).fold(0u64, |w, j| w | 1 << j))
            .collect(),
        _ => Vec::new(),
    };
    TailBitmap { offset, words, reclamed }
}

fn assert_canonical(b: &TailBitmap, m: &Model, reclamed: i64) -> Result<(), TestCaseError> {
    prop_assert_eq!(b, &canonical(m, reclamed), "{}", b.debug_hex());
    Ok(())
}

/// The documented short form, from the model: `prefix:` then members above
/// it, runs of 3+ as inclusive `a..b`.
fn model_str(m: &Model) -> String {
    let prefix = first_missing(m);
    let mut parts = Vec::new();
    let mut seqs = m.range(prefix..).copied().peekable();
    while let Some(a) = seqs.next() {
        let mut b = a;
        while seqs.next_if_eq(&(b + 1)).is_some() {
            b += 1;
        }
        parts.push(match b - a {
            0 => a.to_string(),
            1 => format!("{a},{b}"),
            _ => format!("{a}..{b}"),
        });
    }
    format!("{prefix}:{}", parts.join(","))
}

fn word() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(!0),
        any::<u64>(),
        (0u32..64).prop_map(|n| (1u64 << n) - 1),
        (0u32..64).prop_map(|n| !0u64 << n),
        (0u32..64).prop_map(|n| 1u64 << n),
    ]
}

/// Sets built through the API, and raw encodings as they may arrive.
fn bitmap() -> impl Strategy<Value = TailBitmap> {
    let built = (0i64..400, btree_set(0i64..450, 0..40)).prop_map(|(o, s)| TailBitmap::new(o, s));
    let runs = vec((0i64..450, 1i64..100), 0..4).prop_map(|rs| {
        let mut b = TailBitmap::empty();
        for (lo, n) in rs {
            b.set_range(lo, lo + n);
        }
        b
    });
    let raw = (-130i64..400, vec(word(), 0..8), 0i64..3).prop_map(|(offset, words, reclamed)| TailBitmap {
        offset,
        words,
        reclamed,
    });
    let reference =
        (0i64..7, vec(word(), 0..8)).prop_map(|(k, words)| TailBitmap { offset: 64 * k, words, reclamed: 64 * k });
    prop_oneof![built, runs, raw, reference]
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(4096)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn queries_agree_with_model(b in bitmap(), lo in -3i64..PROBE, hi in -3i64..PROBE) {
        let m = model(&b);
        for s in -3..PROBE {
            let inside = m.contains(&s);
            prop_assert_eq!(b.contains(s), inside, "seq {}", s);
            prop_assert_eq!(b.get1(s), u64::from(inside));
            prop_assert_eq!(b.get(s), if inside { 1 << (s & 63) } else { 0 });
        }
        let len = m.iter().next_back().map_or(0, |&x| x + 1);
        prop_assert_eq!(b.len(), len);
        prop_assert_eq!(b.is_empty(), m.is_empty());
        prop_assert_eq!(b.count_ones(), m.len() as i64);
        prop_assert_eq!(b.prefix_len(), first_missing(&m));

        let from_offset: Vec<i64> = m.range(b.offset.max(0)..).copied().collect();
        prop_assert_eq!(b.iter().collect::<Vec<_>>(), from_offset);
        let from_lo: Vec<i64> = m.range(lo.max(0)..).copied().collect();
        prop_assert_eq!(b.iter_from(lo).collect::<Vec<_>>(), from_lo);
        let in_range: Vec<i64> = m.iter().copied().filter(|&s| lo <= s && s < hi).collect();
        prop_assert_eq!(b.iter_range(lo, hi).collect::<Vec<_>>(), in_range);
        let missing: Vec<i64> = (0..hi).filter(|s| !m.contains(s)).collect();
        prop_assert_eq!(b.missing_below(hi).collect::<Vec<_>>(), missing);
    }

    #[test]
    fn compact_keeps_the_set_and_is_canonical(b in bitmap()) {
        let m = model(&b);
        let mut c = b.clone();
        c.compact();
        assert_canonical(&c, &m, b.reclamed)?;
        let again = c.clone();
        c.compact();
        prop_assert_eq!(c, again);
    }

    #[test]
    fn new_set_and_set_range(
        offset in -5i64..400,
        seqs in vec(-3i64..600, 0..30),
        b in bitmap(),
        s in -3i64..700,
        lo in -3i64..700,
        n in 0i64..300,
    ) {
        let mut m: Model = (0..offset.max(0)).chain(seqs.iter().copied().filter(|&s| s >= 0)).collect();
        assert_canonical(&TailBitmap::new(offset, seqs.iter().copied()), &m, 0)?;
        m = seqs.iter().copied().filter(|&s| s >= 0).collect();
        assert_canonical(&seqs.iter().copied().collect(), &m, 0)?;

        let mut set = b.clone();
        set.set(s);
        let mut m = model(&b);
        if s >= 0 {
            m.insert(s);
        }
        assert_canonical(&set, &m, b.reclamed)?;

        let mut ranged = b.clone();
        ranged.set_range(lo, lo + n);
        let mut m = model(&b);
        m.extend((lo.max(0)..lo + n).collect::<Vec<_>>());
        assert_canonical(&ranged, &m, b.reclamed)?;
    }

    #[test]
    fn binary_operations_agree_with_model(a in option::of(bitmap()), b in option::of(bitmap())) {
        let (ma, mb) = (model_opt(&a), model_opt(&b));
        let (ra, rb) = (a.or_empty(), b.or_empty());
        let reclamed = ra.reclamed;

        let union: Model = ma.union(&mb).copied().collect();
        let inter: Model = ma.intersection(&mb).copied().collect();
        let diff: Model = ma.difference(&mb).copied().collect();

        let mut r = ra.clone();
        r.union(rb);
        assert_canonical(&r, &union, reclamed)?;
        prop_assert_eq!(&(ra | rb), &r);

        let mut r = ra.clone();
        r.intersection(rb);
        assert_canonical(&r, &inter, reclamed)?;
        prop_assert_eq!(&(ra & rb), &r);

        let mut r = ra.clone();
        r.diff(rb);
        assert_canonical(&r, &diff, reclamed)?;
        prop_assert_eq!(&(ra - rb), &r);

        // In place on an optional field: absent becomes the empty set.
        let mut field = a.clone();
        *field.get_or_empty() |= rb;
        prop_assert_eq!(model_opt(&field), union.clone());
        let mut field = a.clone();
        *field.get_or_empty() &= rb;
        prop_assert_eq!(model_opt(&field), inter);
        let mut field = a.clone();
        *field.get_or_empty() -= rb;
        prop_assert_eq!(model_opt(&field), diff);

        prop_assert_eq!(ra.is_superset(rb), ma.is_superset(&mb));
        prop_assert_eq!(ra.is_subset(rb), ma.is_subset(&mb));
        prop_assert!(ra.is_subset(&(ra | rb)));

        let (mut ca, mut cb) = (ra.clone(), rb.clone());
        ca.compact();
        cb.compact();
        ca.reclamed = 0;
        cb.reclamed = 0;
        prop_assert_eq!(ca == cb, ma == mb);
    }

    /// Every encoding of a set compacts to the same struct.
    #[test]
    fn equal_sets_compact_equal(
        b in bitmap(),
        lower in 0i64..300,
        clear_residual in any::<bool>(),
        extra_zeros in 0usize..3,
    ) {
        let m = model(&b);
        let offset = (first_missing(&m) - lower).max(-70);
        let base = offset.div_euclid(64) * 64;
        let end = m.iter().next_back().map_or(0, |&x| x + 1).max(offset);
        let mut words: Vec<u64> = (0..(end - base + 63) / 64)
            .map(|i| (0..64).filter(|j| m.contains(&(base + 64 * i + j))).fold(0u64, |w, j| w | 1 << j))
            .collect();
        if clear_residual && offset > 0 && !words.is_empty() {
            words[0] &= !((1u64 << (offset & 63)) - 1);
        }
        words.extend(std::iter::repeat_n(0, extra_zeros));
        let mut other = TailBitmap { offset, words, reclamed: b.reclamed };
        prop_assert_eq!(model(&other), m.clone());
        other.compact();
        let mut c = b.clone();
        c.compact();
        prop_assert_eq!(other, c);
    }

    #[test]
    fn short_string_round_trips(b in bitmap()) {
        let m = model(&b);
        let s = b.to_string();
        prop_assert_eq!(&s, &model_str(&m));
        let parsed: TailBitmap = s.parse().unwrap();
        assert_canonical(&parsed, &m, 0)?;
    }
}

#[test]
fn short_form_example() {
    let b = TailBitmap::new(0, (1..=120).chain([123, 125]));
    assert_eq!(b.to_string(), "0:1..120,123,125");
    assert_eq!("0:1..120,123,125".parse::<TailBitmap>().unwrap(), b);
    assert_eq!(TailBitmap::new(5, [6, 7, 9]).to_string(), "5:6,7,9");
    assert_eq!(TailBitmap::new(5, [5, 6, 7, 9]).to_string(), "8:9");
    assert_eq!(TailBitmap::new(0, [2, 3, 7, 8, 9]).to_string(), "0:2,3,7..9");
    assert_eq!(TailBitmap::empty().to_string(), "0:");
    assert!("0:5..3".parse::<TailBitmap>().is_err());
    assert!("12".parse::<TailBitmap>().is_err());
    assert!("0:-1".parse::<TailBitmap>().is_err());
}

#[test]
fn unaligned_offset_keeps_residual_bits_set() {
    let b = TailBitmap::new(130, [131, 200]);
    assert_eq!(b.offset, 130);
    // Word 2 holds seqs 128..192: 128, 129 (below the offset) and 131.
    assert_eq!(b.words, vec![0b1011, 1 << (200 - 192)]);
    assert_eq!(b.len(), 201);
    assert_eq!(b.get(129), 1 << 1);
    assert_eq!(b.get1(130), 0);
    assert_eq!(b.iter().collect::<Vec<_>>(), vec![131, 200]);
    assert_eq!(b.missing_below(134).collect::<Vec<_>>(), vec![130, 132, 133]);
}

#[test]
fn reference_encoding_reads_as_the_same_set() {
    // The reference's NewTailBitmap(130) keeps the offset aligned and puts the
    // residual bits in the first word.
    let reference = TailBitmap { offset: 128, words: vec![0b11], reclamed: 128 };
    let mut ours = TailBitmap::from_prefix(130);
    ours.reclamed = 128;
    assert_eq!(reference.prefix_len(), 130);
    assert!(reference.is_superset(&ours) && ours.is_superset(&reference));
    let mut compacted = reference.clone();
    compacted.compact();
    assert_eq!(compacted, ours);
}

#[test]
fn diff_lowers_the_offset() {
    let mut a = TailBitmap::from_prefix(200);
    a.diff(&TailBitmap::new(0, [3, 70]));
    // Seq 3 is gone, so only 0..3 remains as prefix; the rest is words.
    assert_eq!(a.offset, 3);
    assert_eq!(a.to_string(), "3:4..69,71..199");

    let mut a = TailBitmap::new(100, [150]);
    a.diff(&TailBitmap::from_prefix(64));
    assert_eq!(a.offset, 0);
    assert_eq!(a.to_string(), "0:64..99,150");
    assert_eq!(a.words.len(), 3);
}

#[test]
fn absent_operands_are_the_empty_set() {
    let none: Option<TailBitmap> = None;
    let some = Some(TailBitmap::new(2, [5]));

    let mut a = some.clone();
    a.get_or_empty().union(none.or_empty());
    assert_eq!(a, some);

    let mut a = none.clone();
    a.get_or_empty().union(some.or_empty());
    assert_eq!(a, some);

    let mut a = some.clone();
    a.get_or_empty().intersection(none.or_empty());
    assert!(a.or_empty().is_empty());

    assert!(some.or_empty().is_superset(none.or_empty()));
    assert!(!none.or_empty().is_superset(some.or_empty()));
}

#[test]
fn operations_leave_canonical_results() {
    let mut a = TailBitmap::new(0, [1, 2, 3]);
    a.set(0);
    assert_eq!(a, TailBitmap::from_prefix(4));
    let mut b = TailBitmap::new(0, 64..128);
    b.union(&TailBitmap::from_prefix(64));
    assert_eq!(b, TailBitmap::from_prefix(128));
    assert!(b.words.is_empty());
    let hex = format!("{:?}", TailBitmap::new(2, [5]).debug_hex());
    assert_eq!(hex, "TailBitmap { offset: 2, words: [0x23], reclamed: 0 }");
}
