//! Sets of log sequence numbers: [`TailBitmap`].
//!
//! A replica's `Accepted`, `Committed` and `Applied` sets and a record's
//! `Depends` and `Overrides` all share one shape: everything below some point
//! is in, plus a sparse tail above it. So the set is stored as that point,
//! `offset`, and a bitmap of the tail only; it stays small however long the log
//! grows.
//!
//! # Representation
//!
//! * every seq `< offset` is in the set;
//! * `words[i]` bit `j` (LSB first) stands for seq `(offset & !63) + 64 * i + j`:
//!   `words[0]` is the 64-aligned word holding `offset`;
//! * `offset` need not be a multiple of 64 (the issue's "the residual bits are
//!   set"): the bits of `words[0]` below `offset` are kept set, so every word is
//!   the plain 64-bit membership mask of its 64 seqs and word operations need
//!   no shifting;
//! * `reclamed` is carried on the wire for the reference implementation, which
//!   uses it for memory bookkeeping. It means nothing for membership; every
//!   operation keeps the receiver's value and new bitmaps start at 0.
//!
//! Seqs are non-negative: a negative seq is never a member.
//!
//! # Canonical form
//!
//! Every operation leaves its result *compacted*:
//!
//! * `offset` is the first seq not in the set (the contiguous prefix length);
//! * `words` is empty when no seq above `offset` is in the set, otherwise it
//!   runs from the word holding `offset` to the word holding the greatest
//!   member, with the bits below `offset` set.
//!
//! That form is a function of the set alone, so the derived `==` and `Hash`
//! are set equality, and values can be compared, deduplicated and keyed
//! without a separate "same set" function. `reclamed` is the one field
//! outside it: compare bitmaps built the same way, or reset it.
//!
//! Bitmaps that arrive off the wire need not be canonical (the reference
//! sends aligned offsets with the residual bits in `words[0]`, and a peer may
//! leave trailing zero words or unset residual bits). Every operation reads
//! its operands by the rules above, whatever their form, so any well-formed
//! or sloppy encoding is read as the set it describes.
//!
//! # Absent bitmaps
//!
//! Protobuf message fields are `Option<TailBitmap>`; an absent bitmap is the
//! empty set. [`OptionBitmapExt`] reads (`or_empty`) and writes
//! (`get_or_empty`) such fields without spelling that out at each use.
//!
//! # Cost
//!
//! `union`, `intersection`, `diff`, `is_superset` work a word at a time and
//! touch only the words between the operands' prefixes and their ends;
//! `union`, and `intersection` when `other`'s prefix is not shorter, work in
//! place without allocating. The exception is inherent to the
//! representation: `A \ B` with seq 0 in `B` has an empty prefix, so its
//! words start at seq 0 and the zero words up to `B`'s prefix are
//! materialized.

use std::fmt;
use std::iter::FusedIterator;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Sub, SubAssign};
use std::str::FromStr;

use crate::pb::TailBitmap;
use crate::types::Seq;

const ALL: u64 = !0;

/// Shared target for absent fields, so reading one never allocates.
static EMPTY: TailBitmap = TailBitmap { offset: 0, words: Vec::new(), reclamed: 0 };

/// The bits below `seq` within its word: the residual bits that must be set
/// in the word holding an unaligned offset.
fn low_mask(seq: i64) -> u64 {
    (1u64 << (seq & 63)) - 1
}

/// Bits `from..=to` of a word.
fn range_mask(from: i64, to: i64) -> u64 {
    (ALL << (from & 63)) & (ALL >> (63 - (to & 63)))
}

/// First seq of word `k`. Saturates so that hostile offsets near `i64::MAX`
/// give a wrong-but-harmless bound instead of an overflow panic.
fn word_start(k: i64) -> i64 {
    k.saturating_mul(64)
}

/// A bitmap read by the membership rules rather than by its encoding: lets
/// the binary operations treat canonical and wire-sloppy operands alike.
#[derive(Clone, Copy)]
struct View<'a> {
    words: &'a [u64],
    /// Word index of `words[0]`; negative for a negative offset.
    base: i64,
    /// Every seq below this is a member (the offset, clamped at 0).
    prefix: i64,
    /// Word holding `prefix`: words below it are all ones.
    lo: i64,
    /// From this word up, every word is zero.
    hi: i64,
}

impl<'a> View<'a> {
    fn of(b: &'a TailBitmap) -> Self {
        let prefix = b.offset.max(0);
        let base = b.offset >> 6;
        let lo = prefix >> 6;
        let stored_end = base.saturating_add(i64::try_from(b.words.len()).unwrap_or(i64::MAX));
        let residual_word = lo + i64::from(prefix & 63 != 0);
        View { words: &b.words, base, prefix, lo, hi: stored_end.max(residual_word) }
    }

    /// Membership mask of the seqs of word `k`.
    fn word(&self, k: i64) -> u64 {
        if k < self.lo {
            return ALL;
        }
        let stored = usize::try_from(k - self.base).ok().and_then(|i| self.words.get(i));
        let w = stored.copied().unwrap_or(0);
        if k == self.lo { w | low_mask(self.prefix) } else { w }
    }
}

impl TailBitmap {
    /// The set `[0, offset) ∪ set`.
    ///
    /// Members of `set` below `offset` are already in and are ignored, as are
    /// negative ones; `offset` need not be a multiple of 64.
    pub fn new(offset: Seq, set: impl IntoIterator<Item = Seq>) -> Self {
        let mut b = Self::from_prefix(offset);
        b.extend(set);
        b
    }

    /// The empty set; the same value as `Default` and as an absent field.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The set `[0, n)`.
    pub fn from_prefix(n: Seq) -> Self {
        TailBitmap { offset: n.max(0), words: Vec::new(), reclamed: 0 }
    }

    pub fn contains(&self, seq: Seq) -> bool {
        if seq < 0 {
            return false;
        }
        if seq < self.offset {
            return true;
        }
        let i = (seq >> 6) - (self.offset >> 6);
        let stored = usize::try_from(i).ok().and_then(|i| self.words.get(i));
        stored.is_some_and(|w| w & (1 << (seq & 63)) != 0)
    }

    /// The bit for `seq` in its position within its 64-bit word: `1 << (seq % 64)`
    /// when `seq` is a member, else 0. Kept from the reference API, where
    /// callers OR it straight into word masks.
    pub fn get(&self, seq: Seq) -> u64 {
        u64::from(self.contains(seq)) << (seq & 63)
    }

    /// 1 when `seq` is a member, else 0: the reference API's counting form.
    pub fn get1(&self, seq: Seq) -> u64 {
        u64::from(self.contains(seq))
    }

    /// Adds `seq`; a negative seq names no record and is ignored.
    pub fn set(&mut self, seq: Seq) {
        self.compact();
        if seq < self.offset {
            return;
        }
        *self.word_mut(seq >> 6) |= 1 << (seq & 63);
        if seq == self.offset {
            self.compact();
        }
    }

    /// Adds every seq in `[lo, hi)`, a word at a time: hole filling and
    /// parsing add long runs.
    pub fn set_range(&mut self, lo: Seq, hi: Seq) {
        self.compact();
        let lo = lo.max(self.offset);
        if lo >= hi {
            return;
        }
        let (first, last) = (lo >> 6, (hi - 1) >> 6);
        self.word_mut(last);
        let base = self.offset >> 6;
        for k in first..=last {
            let from = if k == first { lo } else { 0 };
            let to = if k == last { hi - 1 } else { 63 };
            self.words[(k - base) as usize] |= range_mask(from, to);
        }
        if lo == self.offset {
            self.compact();
        }
    }

    /// The word for seqs `[64k, 64k + 64)`, grown into existence. Needs a
    /// compacted `self` and `k` at or above the offset's word.
    fn word_mut(&mut self, k: i64) -> &mut u64 {
        let i = usize::try_from(k - (self.offset >> 6)).expect("word below the offset");
        if i >= self.words.len() {
            if self.words.is_empty() {
                self.words.push(low_mask(self.offset));
            }
            self.words.resize(i + 1, 0);
        }
        &mut self.words[i]
    }

    /// Brings `self` to the canonical form (see the module doc) without
    /// changing the set.
    ///
    /// Cheap on an already compacted bitmap, so every mutator calls it rather
    /// than trusting that its input came from this module.
    pub fn compact(&mut self) {
        if self.offset < 0 {
            // Words before word 0 can only describe negative seqs.
            let below_zero = usize::try_from(-(self.offset >> 6)).unwrap_or(usize::MAX);
            self.words.drain(..below_zero.min(self.words.len()));
            self.offset = 0;
        }
        if let Some(w0) = self.words.first_mut() {
            *w0 |= low_mask(self.offset);
        }
        let full = self.words.iter().take_while(|&&w| w == ALL).count();
        if full > 0 {
            self.words.drain(..full);
            self.offset = word_start((self.offset >> 6).saturating_add(full as i64));
        }
        if let Some(&w0) = self.words.first() {
            self.offset = (self.offset & !63) + i64::from(w0.trailing_ones());
        }
        let used = self.words.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        self.words.truncate(used);
        if self.words.len() == 1 && self.words[0] == low_mask(self.offset) {
            // Only the residual bits are left: nothing above the offset.
            self.words.clear();
        }
    }

    /// Replaces the set with `words` starting at word `lo`, everything below
    /// word `lo` being in.
    fn assign_words(&mut self, lo: i64, words: Vec<u64>) {
        self.offset = word_start(lo);
        self.words = words;
        self.compact();
    }

    /// `self ∪ other`, in place: merging acknowledgements into `Accepted` and
    /// `Committed` is the hot case, and it only touches `other`'s words.
    pub fn union(&mut self, other: &TailBitmap) {
        self.compact();
        let b = View::of(other);
        let lo = self.offset >> 6;
        if b.hi <= lo {
            // `other` lies inside our prefix: an older acknowledgement.
            return;
        }
        self.word_mut(b.hi - 1);
        // Below `other`'s prefix its words are all ones; the folding in
        // `compact` turns them into offset.
        for (w, k) in self.words.iter_mut().zip(lo..b.hi) {
            *w |= b.word(k);
        }
        self.compact();
    }

    /// `self ∩ other`.
    pub fn intersection(&mut self, other: &TailBitmap) {
        self.compact();
        let b = View::of(other);
        let lo = self.offset >> 6;
        if b.lo >= lo {
            // The result starts at our word: mask in place.
            if self.words.is_empty() && self.offset & 63 != 0 {
                // The residual bits may be lost too, so they need a word.
                self.words.push(low_mask(self.offset));
            }
            let keep = usize::try_from(b.hi - lo).unwrap_or(usize::MAX);
            self.words.truncate(keep);
            for (w, k) in self.words.iter_mut().zip(lo..) {
                *w &= b.word(k);
            }
            // `words[0]` now holds the whole of word `lo`, the residual bits
            // included: the offset restarts at that word.
            self.offset = word_start(lo);
            self.compact();
        } else {
            // `other`'s prefix is shorter: the result starts at its word, so
            // the words below ours come from `other`.
            let a = View::of(self);
            let hi = a.hi.min(b.hi);
            let words = (b.lo..hi).map(|k| a.word(k) & b.word(k)).collect();
            self.assign_words(b.lo, words);
        }
    }

    /// `self \ other`.
    ///
    /// Removing `other`'s prefix can empty seqs below our own offset, so the
    /// offset may drop (to 0 when `other` holds seq 0) and the words between
    /// are materialized.
    pub fn diff(&mut self, other: &TailBitmap) {
        let (a, b) = (View::of(self), View::of(other));
        // Below `other`'s prefix word everything is removed; above our end
        // there is nothing to keep.
        let (lo, hi) = (b.lo, a.hi);
        let mut words: Vec<u64> = (lo..hi).map(|k| a.word(k) & !b.word(k)).collect();
        let used = words.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        words.truncate(used);
        if words.is_empty() {
            self.assign_words(0, words);
        } else if lo > 0 {
            // Seq 0 is gone, so the result has no prefix: its words start at 0.
            let mut all = vec![0; lo as usize + words.len()];
            all[lo as usize..].copy_from_slice(&words);
            self.assign_words(0, all);
        } else {
            self.assign_words(0, words);
        }
    }

    /// Whether every member of `other` is in `self`.
    pub fn is_superset(&self, other: &TailBitmap) -> bool {
        let (a, b) = (View::of(self), View::of(other));
        (a.lo..b.hi).all(|k| b.word(k) & !a.word(k) == 0)
    }

    pub fn is_subset(&self, other: &TailBitmap) -> bool {
        other.is_superset(self)
    }

    /// The greatest member plus one; 0 for the empty set. The reference's
    /// `Len`: what a log with these records must be at least as long as.
    pub fn len(&self) -> Seq {
        let prefix = self.offset.max(0);
        let base = self.offset >> 6;
        match self.words.iter().rposition(|&w| w != 0) {
            Some(r) => {
                let k = base.saturating_add(r as i64);
                let end = word_start(k + 1) - i64::from(self.words[r].leading_zeros());
                end.max(prefix)
            }
            None => prefix,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of members, prefix included.
    pub fn count_ones(&self) -> i64 {
        let v = View::of(self);
        let tail: i64 = (v.lo..v.hi).map(|k| i64::from(v.word(k).count_ones())).sum();
        word_start(v.lo) + tail
    }

    /// The first seq not in the set: every seq below it is a member. Equals
    /// `offset` on a compacted bitmap; computed here so it is right for
    /// bitmaps straight off the wire too.
    pub fn prefix_len(&self) -> Seq {
        let v = View::of(self);
        let mut k = v.lo;
        loop {
            let w = v.word(k);
            if w != ALL {
                return word_start(k) + i64::from(w.trailing_ones());
            }
            k += 1;
        }
    }

    /// The members at or above `offset`, ascending.
    ///
    /// The prefix below `offset` is implicit and not yielded: it can be
    /// millions of seqs long. Use [`iter_from`](Self::iter_from) to include it.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(self.offset)
    }

    /// The members `>= lo`, ascending, prefix included.
    pub fn iter_from(&self, lo: Seq) -> Iter<'_> {
        Iter::new(View::of(self), lo, self.len(), false)
    }

    /// The members in `[lo, hi)`, ascending, prefix included.
    pub fn iter_range(&self, lo: Seq, hi: Seq) -> Iter<'_> {
        Iter::new(View::of(self), lo, hi.min(self.len()), false)
    }

    /// The seqs `< hi` that are not members, ascending: the holes a leader
    /// must fill or a follower must fetch.
    pub fn missing_below(&self, hi: Seq) -> Iter<'_> {
        let v = View::of(self);
        Iter::new(v, v.prefix, hi, true)
    }

    /// A `Debug`/`Display` adapter showing the raw encoding, words in hex.
    ///
    /// `{:?}` on the bitmap itself is prost's derived impl (decimal words);
    /// this is the form for debugging the encoding.
    pub fn debug_hex(&self) -> DebugHex<'_> {
        DebugHex(self)
    }
}

/// Ascending seqs of a [`TailBitmap`]: its members, or for
/// [`TailBitmap::missing_below`] its non-members. Walks a word at a time.
#[derive(Clone)]
pub struct Iter<'a> {
    view: View<'a>,
    /// Word of `bits`.
    k: i64,
    /// Seqs of word `k` still to yield.
    bits: u64,
    /// Exclusive bound; `i64::MIN` once exhausted.
    end: i64,
    missing: bool,
}

impl<'a> Iter<'a> {
    fn new(view: View<'a>, start: i64, end: i64, missing: bool) -> Self {
        let start = start.max(0);
        let mut it = Iter { view, k: start >> 6, bits: 0, end, missing };
        if start < end {
            it.bits = it.load(it.k) & (ALL << (start & 63));
        }
        it
    }

    fn load(&self, k: i64) -> u64 {
        let w = self.view.word(k);
        if self.missing { !w } else { w }
    }
}

impl Iterator for Iter<'_> {
    type Item = Seq;

    fn next(&mut self) -> Option<Seq> {
        loop {
            if self.bits != 0 {
                let seq = word_start(self.k) + i64::from(self.bits.trailing_zeros());
                if seq >= self.end {
                    break;
                }
                self.bits &= self.bits - 1;
                return Some(seq);
            }
            if word_start(self.k + 1) >= self.end {
                break;
            }
            self.k += 1;
            self.bits = self.load(self.k);
        }
        self.bits = 0;
        self.end = i64::MIN;
        None
    }
}

impl FusedIterator for Iter<'_> {}

/// See [`TailBitmap::debug_hex`].
pub struct DebugHex<'a>(&'a TailBitmap);

impl fmt::Debug for DebugHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Words<'a>(&'a [u64]);
        impl fmt::Debug for Words<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.iter().map(|w| fmt::from_fn(move |f| write!(f, "{w:#x}")))).finish()
            }
        }
        f.debug_struct("TailBitmap")
            .field("offset", &self.0.offset)
            .field("words", &Words(&self.0.words))
            .field("reclamed", &self.0.reclamed)
            .finish()
    }
}

impl fmt::Display for DebugHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The short form, a function of the set alone: `{prefix}:{members}`, e.g.
/// `0:1..120,123,125`.
///
/// `{prefix}` is [`prefix_len`](TailBitmap::prefix_len) (the offset once
/// compacted); `{members}` lists the members above it, comma-separated, with a
/// run of three or more consecutive seqs written `a..b`, **inclusive** of both
/// `a` and `b`. The empty set is `0:`. [`FromStr`] reads it back.
impl fmt::Display for TailBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.prefix_len();
        write!(f, "{prefix}:")?;
        let mut seqs = self.iter_from(prefix).peekable();
        let mut sep = "";
        while let Some(a) = seqs.next() {
            let mut b = a;
            while seqs.next_if_eq(&(b + 1)).is_some() {
                b += 1;
            }
            match b - a {
                0 => write!(f, "{sep}{a}")?,
                1 => write!(f, "{sep}{a},{b}")?,
                _ => write!(f, "{sep}{a}..{b}")?,
            }
            sep = ",";
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bitmap {input:?}: {reason}; expected `prefix:a,b..c` (runs inclusive)")]
pub struct ParseBitmapError {
    input: String,
    reason: &'static str,
}

/// Reads the [`Display`](fmt::Display) form. Lenient about what the printer
/// never emits (members below the prefix, short runs as `a..b`, any order),
/// since operators type these by hand.
impl FromStr for TailBitmap {
    type Err = ParseBitmapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseBitmapError { input: s.to_owned(), reason };
        let seq = |t: &str| match t.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            _ => Err(err("a seq is not a non-negative integer")),
        };
        let (prefix, members) = s.split_once(':').ok_or_else(|| err("missing `:`"))?;
        let mut b = TailBitmap::from_prefix(seq(prefix)?);
        if members.trim().is_empty() {
            return Ok(b);
        }
        for item in members.split(',') {
            match item.split_once("..") {
                Some((first, last)) => {
                    let (first, last) = (seq(first)?, seq(last)?);
                    if first > last {
                        return Err(err("a run `a..b` has a > b"));
                    }
                    b.set_range(first, last.checked_add(1).ok_or_else(|| err("seq too large"))?);
                }
                None => b.set(seq(item)?),
            }
        }
        Ok(b)
    }
}

impl FromIterator<Seq> for TailBitmap {
    fn from_iter<I: IntoIterator<Item = Seq>>(iter: I) -> Self {
        TailBitmap::new(0, iter)
    }
}

impl Extend<Seq> for TailBitmap {
    fn extend<I: IntoIterator<Item = Seq>>(&mut self, iter: I) {
        for seq in iter {
            self.set(seq);
        }
    }
}

impl BitOr for &TailBitmap {
    type Output = TailBitmap;
    fn bitor(self, other: &TailBitmap) -> TailBitmap {
        let mut r = self.clone();
        r.union(other);
        r
    }
}

impl BitAnd for &TailBitmap {
    type Output = TailBitmap;
    fn bitand(self, other: &TailBitmap) -> TailBitmap {
        let mut r = self.clone();
        r.intersection(other);
        r
    }
}

/// `a - b` is `a \ b`, as for `BTreeSet`.
impl Sub for &TailBitmap {
    type Output = TailBitmap;
    fn sub(self, other: &TailBitmap) -> TailBitmap {
        let mut r = self.clone();
        r.diff(other);
        r
    }
}

impl BitOrAssign<&TailBitmap> for TailBitmap {
    fn bitor_assign(&mut self, other: &TailBitmap) {
        self.union(other);
    }
}

impl BitAndAssign<&TailBitmap> for TailBitmap {
    fn bitand_assign(&mut self, other: &TailBitmap) {
        self.intersection(other);
    }
}

impl SubAssign<&TailBitmap> for TailBitmap {
    fn sub_assign(&mut self, other: &TailBitmap) {
        self.diff(other);
    }
}

/// Absent-is-empty access to the `Option<TailBitmap>` fields prost generates.
///
/// ```
/// use traftctl::bitmap::OptionBitmapExt;
/// use traftctl::pb::TailBitmap;
///
/// let mut accepted: Option<TailBitmap> = None;
/// let incoming: Option<TailBitmap> = Some(TailBitmap::new(0, [3]));
/// accepted.get_or_empty().union(incoming.or_empty());
/// assert_eq!(accepted.or_empty().to_string(), "0:3");
/// assert!(None::<TailBitmap>.or_empty().is_empty());
/// ```
pub trait OptionBitmapExt {
    /// The bitmap, or the empty set when absent; never allocates.
    fn or_empty(&self) -> &TailBitmap;

    /// The bitmap, made present (as the empty set) if absent, for in-place
    /// updates. A field that was `None` becomes `Some(empty)`: the same set,
    /// though not the same encoding.
    fn get_or_empty(&mut self) -> &mut TailBitmap;
}

impl OptionBitmapExt for Option<TailBitmap> {
    fn or_empty(&self) -> &TailBitmap {
        self.as_ref().unwrap_or(&EMPTY)
    }

    fn get_or_empty(&mut self) -> &mut TailBitmap {
        self.get_or_insert_with(TailBitmap::empty)
    }
}
