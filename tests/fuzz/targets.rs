//! The fuzz targets on stored and transferred bytes, shared by the
//! proptest runs in `tests/fuzz.rs` and the cargo-fuzz crate in `fuzz/`.
//! Each target panics when a property fails; both drivers report that.
//!
//! The WAL targets reach the log's format only through
//! `traftctl::storage::fuzzing` and `Storage::open`, so a new format needs
//! only that module re-pointed.

#![allow(dead_code)] // each driver uses a different part

use std::cell::Cell;
use std::sync::Arc;

use traftctl::backup::Backup;
use traftctl::kv::KvState;
use traftctl::pb::{Cmd, LeaderId, Record, TailBitmap};
use traftctl::replica::{DurableState, DurableWrite, HardState};
use traftctl::snapshot::Snapshot;
use traftctl::storage::{Storage, StorageError, StorageOptions, fuzzing};

// ------------------------------------------------------------- allocations

thread_local! {
    /// The largest single allocation this thread asked for since the last
    /// [`largest_allocation`] reset. Const-initialised and without a
    /// destructor, so the allocator can touch it without allocating.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// A global allocator that notes the largest request per thread, so a
/// target can check that damaged input never makes it allocate absurdly
/// (a length field that decides a buffer's size, a bitmap grown to a seq).
pub struct Tracking;

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size)
        }
    });
}

unsafe impl std::alloc::GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the largest single allocation it
/// made (0 unless [`Tracking`] is the global allocator).
pub fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(0));
    let r = f();
    (r, LARGEST.with(Cell::get))
}

/// What damaged input of `len` bytes may make a decoder allocate at once:
/// a few copies of the input, never what a length field inside it claims.
fn allocation_bound(len: usize) -> usize {
    4 * len + (1 << 20)
}

// ------------------------------------------------------- snapshot, backup

/// `Snapshot::decode` on arbitrary bytes: an error or a snapshot that
/// encodes and decodes to itself; never a panic, never a large allocation.
pub fn snapshot_bytes(data: &[u8]) {
    let (decoded, largest) = largest_allocation(|| Snapshot::decode(data));
    assert!(largest <= allocation_bound(data.len()), "decoding {} bytes allocated {largest} at once", data.len());
    if let Ok(snap) = decoded {
        assert_eq!(Snapshot::decode(&snap.encode()).as_ref(), Ok(&snap), "a decoded snapshot does not round-trip");
    }
}

/// `Backup::decode` on arbitrary bytes: damage is an error that names an
/// offset inside the file; a backup that decodes round-trips.
pub fn backup_bytes(data: &[u8]) {
    let (decoded, largest) = largest_allocation(|| Backup::decode(data));
    assert!(largest <= allocation_bound(data.len()), "decoding {} bytes allocated {largest} at once", data.len());
    match decoded {
        Ok(b) => assert_eq!(Backup::decode(&b.encode()).as_ref(), Ok(&b), "a decoded backup does not round-trip"),
        Err(e) => {
            let msg = e.to_string();
            let offset: u64 = msg
                .strip_prefix("at offset ")
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a backup error that names no offset: {msg}"));
            assert!(offset <= data.len() as u64, "offset {offset} is past the end of {} bytes: {msg}", data.len());
        }
    }
}

/// `data` behind a valid backup header and before its checksum: arbitrary
/// bytes as the payload, past the magic, version and length checks.
pub fn framed_backup(data: &[u8]) -> Vec<u8> {
    let mut framed = b"TRAFTBAK\x01\0\0\0".to_vec();
    framed.extend_from_slice(&(data.len() as u64).to_le_bytes());
    framed.extend_from_slice(data);
    framed.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    framed
}

/// A valid backup with `damage` applied: `(position, xor mask)` pairs and
/// a final length. Decoding the damaged file must fail, naming an offset,
/// unless the damage left the file as it was.
pub fn damaged_backup(backup: &Backup, damage: &[(usize, u8)], keep_len: Option<usize>) {
    let original = backup.encode();
    let mut bytes = original.clone();
    for &(at, mask) in damage {
        let at = at % bytes.len();
        bytes[at] ^= mask;
    }
    if let Some(keep) = keep_len {
        bytes.truncate(keep % (bytes.len() + 1));
    }
    backup_bytes(&bytes);
    if bytes != original {
        assert!(Backup::decode(&bytes).is_err(), "damaged backup decoded");
    }
}

// ------------------------------------------------------------------- WAL

/// `replay_segment` on arbitrary bytes, as the newest segment with and
/// without a checkpoint: never a panic, never a large allocation, and a
/// valid prefix that ends inside the input.
pub fn wal_bytes(data: &[u8]) {
    for checkpoint in [false, true] {
        let (replayed, largest) = largest_allocation(|| fuzzing::replay_segment(data, checkpoint));
        assert!(largest <= allocation_bound(data.len()), "replaying {} bytes allocated {largest} at once", data.len());
        match replayed {
            Ok(r) => assert!(r.valid_len <= data.len() as u64),
            Err((offset, _)) => assert!(offset <= data.len() as u64),
        }
    }
    let spans = fuzzing::entry_spans(data);
    assert!(spans.windows(2).all(|w| w[0].end == w[1].start) && spans.last().is_none_or(|s| s.end <= data.len()));
}

/// One durable write, described small.
#[derive(Debug, Clone)]
pub struct WriteSpec {
    pub put: Vec<i64>,
    pub delete: Vec<i64>,
    pub vote_term: Option<i64>,
    /// Store a snapshot whose applied prefix is this.
    pub snapshot: Option<i64>,
}

impl WriteSpec {
    fn build(&self, index: usize) -> DurableWrite {
        // One record per seq in a write, as the replica emits them.
        let mut seqs = self.put.clone();
        seqs.sort_unstable();
        seqs.dedup();
        let put = seqs
            .iter()
            .map(|&seq| {
                let cmd = Cmd::set_str(format!("k{seq}"), format!("v{index}"));
                Record::new(LeaderId::new(1, 1), seq, cmd, TailBitmap::empty(), TailBitmap::new(0, [seq]))
            })
            .collect();
        let hard_state = self.vote_term.map(|term| HardState {
            voted_for: Some(LeaderId::new(term, 1)),
            committed: TailBitmap::from_prefix(index as i64),
            ..HardState::default()
        });
        let snapshot = self.snapshot.map(|prefix| {
            let mut kv = KvState::default();
            kv.apply(&Cmd::set_i64("snap", index as i64));
            Arc::new(Snapshot { applied: TailBitmap::from_prefix(prefix), kv, ..Snapshot::default() })
        });
        let delete = self.delete.iter().copied().filter(|s| !self.put.contains(s)).collect();
        DurableWrite { hard_state, snapshot, put, delete }
    }
}

/// What is done to the newest segment's bytes after the writes.
#[derive(Debug, Clone)]
pub enum Damage {
    /// Cut the file at this byte (modulo its length).
    Truncate(usize),
    /// Flip one bit of this byte.
    Flip { at: usize, bit: u8 },
    /// Write this entry's bytes twice, one after the other.
    Duplicate(usize),
    /// Swap this entry with the next one.
    Swap(usize),
    /// Append zeros, as a preallocated or extended file holds.
    Zeros(usize),
    /// Overwrite bytes from this position with these: anything at all.
    Overwrite { at: usize, bytes: Vec<u8> },
}

#[derive(Debug, Clone)]
pub struct WalCase {
    /// Writes, by `append` call: each call is one fsync group.
    pub groups: Vec<Vec<WriteSpec>>,
    /// Segment capacity; small enough to make rotations (checkpoints)
    /// happen.
    pub segment_bytes: u64,
    pub damage: Damage,
}

fn sorted(mut state: DurableState) -> DurableState {
    state.records.sort_by_key(|r| r.seq);
    state
}

/// The storage's documented relaxation: a record the current snapshot's
/// applied set covers is not kept (config records excepted), also when it
/// is put after the snapshot.
fn drop_covered(state: &mut DurableState) {
    if let Some(snapshot) = &state.snapshot {
        state.records.retain(|r| r.cmd.as_ref().is_some_and(Cmd::is_config) || !snapshot.applied.contains(r.seq));
    }
}

/// What recovery must make of the damage, by the rules in the storage
/// module's docs.
#[derive(Debug, PartialEq)]
enum Expected {
    /// Exactly this many writes, with a torn tail cut off or not.
    Writes { writes: usize, torn: bool },
    /// Refused as corrupt, naming this offset.
    Corrupt { offset: u64 },
    /// Anything recovery may do with arbitrary damage: some prefix of the
    /// writes, or refusal.
    Prefix,
}

/// Writes `case.groups` through `Storage`, damages the newest segment,
/// and reopens: recovery never panics or allocates absurdly, recovers a
/// valid prefix exactly (a torn final group is cut, damage before a later
/// group is refused as corrupt), and a recovered directory reopens to the
/// same state.
pub fn wal_case(case: &WalCase) {
    // In memory where there is a tmpfs: this target is about the bytes,
    // and an fsync per write would make each case cost a disk's latency.
    let shm = std::path::Path::new("/dev/shm");
    let dir =
        if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("a temporary directory");
    let options = StorageOptions { segment_bytes: case.segment_bytes };
    let mut states = vec![DurableState::default()];
    let mut group_of_write = Vec::new();
    {
        let (mut storage, _, _) = Storage::open_with(dir.path(), options.clone()).expect("open a new directory");
        for (g, group) in case.groups.iter().enumerate() {
            let done = group_of_write.len();
            let writes: Vec<DurableWrite> = group.iter().enumerate().map(|(i, w)| w.build(done + i + 1)).collect();
            storage.append(writes.clone()).expect("append");
            for w in writes {
                let mut next = states.last().unwrap().clone();
                next.apply(w);
                drop_covered(&mut next);
                states.push(next);
                group_of_write.push(g);
            }
        }
    }
    let total = group_of_write.len();
    let (path, checkpointed) = fuzzing::newest_segment(dir.path()).expect("a segment");
    let original = std::fs::read(&path).unwrap();
    let spans = fuzzing::entry_spans(&original);
    // Segments are preallocated: after the entries, zeros to the end.
    let used = spans.last().map_or(0, |s| s.end);
    // Entries after the checkpoint are one write each, the newest ones.
    let entries_after = spans.len() - usize::from(checkpointed);
    let first_write = total - entries_after;
    // The write count once entry `e` and those before it are replayed.
    let writes_through = |e: usize| if checkpointed { first_write + e } else { e + 1 };
    let writes_before = |e: usize| if checkpointed { first_write + e.saturating_sub(1) } else { e };
    // Whether an entry of a later fsync group follows entry `e`.
    let later_group_after = |e: usize| {
        if checkpointed && e == 0 {
            return true;
        }
        let write = writes_through(e) - 1;
        group_of_write.get(write).is_some_and(|g| group_of_write[write..].iter().any(|h| h > g))
    };
    let entry_at = |at: usize| spans.iter().position(|s| s.contains(&at));

    let mut bytes = original.clone();
    let expected = match &case.damage {
        Damage::Truncate(at) => {
            let at = at % (used + 1);
            bytes.truncate(at);
            let whole = spans.iter().filter(|s| s.end <= at).count();
            if checkpointed && whole == 0 {
                Expected::Corrupt { offset: 0 }
            } else {
                let writes = if whole == 0 { 0 } else { writes_through(whole - 1) };
                Expected::Writes { writes, torn: at != spans.get(whole.wrapping_sub(1)).map_or(0, |s| s.end) }
            }
        }
        Damage::Flip { at, bit } if used > 0 => {
            let at = at % used;
            bytes[at] ^= 1 << (bit % 8);
            let e = entry_at(at).expect("every byte belongs to an entry");
            if later_group_after(e) {
                Expected::Corrupt { offset: spans[e].start as u64 }
            } else {
                Expected::Writes { writes: writes_before(e), torn: true }
            }
        }
        Damage::Flip { .. } => Expected::Writes { writes: total, torn: false },
        Damage::Duplicate(e) if !spans.is_empty() => {
            // Written over what follows, as a segment's size is fixed.
            let e = e % spans.len();
            let copy = &original[spans[e].clone()];
            let at = spans[e].end;
            if at + copy.len() <= bytes.len() {
                bytes[at..at + copy.len()].copy_from_slice(copy);
                Expected::Corrupt { offset: at as u64 }
            } else {
                Expected::Writes { writes: total, torn: false }
            }
        }
        Damage::Duplicate(_) => Expected::Writes { writes: total, torn: false },
        Damage::Swap(e) if spans.len() >= 2 => {
            let e = e % (spans.len() - 1);
            let (a, b) = (spans[e].clone(), spans[e + 1].clone());
            let swapped: Vec<u8> = original[b.clone()].iter().chain(&original[a.clone()]).copied().collect();
            bytes.splice(a.start..b.end, swapped);
            Expected::Corrupt { offset: a.start as u64 }
        }
        Damage::Swap(_) => Expected::Writes { writes: total, torn: false },
        Damage::Zeros(n) => {
            // More of what a preallocated segment ends with anyway.
            bytes.resize(bytes.len() + n, 0);
            Expected::Writes { writes: total, torn: false }
        }
        Damage::Overwrite { at, bytes: junk } => {
            let at = at % bytes.len();
            for (i, b) in junk.iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + i) {
                    *slot = *b;
                }
            }
            if bytes == original { Expected::Writes { writes: total, torn: false } } else { Expected::Prefix }
        }
    };
    std::fs::write(&path, &bytes).unwrap();

    let (opened, largest) = largest_allocation(|| Storage::open_with(dir.path(), options.clone()));
    assert!(largest <= allocation_bound(bytes.len()), "recovering {} bytes allocated {largest} at once", bytes.len());
    let expect_state = |writes: usize| sorted(states[writes].clone());
    let newest_snapshot = states[total].snapshot.clone();
    let superseded_snapshot = |writes: usize| {
        states[writes].snapshot.as_ref().is_some_and(|s| newest_snapshot.as_ref().is_none_or(|n| !Arc::ptr_eq(s, n)))
    };
    match (expected, opened) {
        (Expected::Writes { writes, torn }, Ok((_, state, warnings))) => {
            assert_eq!(sorted(state), expect_state(writes), "recovered the wrong writes (expected {writes})");
            let said_torn = warnings.iter().any(|w| w.contains("torn"));
            assert_eq!(said_torn, torn, "torn-write warning: {warnings:?}");
        }
        (Expected::Corrupt { offset }, Err(StorageError::Corrupt { offset: found, .. })) => {
            assert_eq!(found, offset, "corruption reported at the wrong offset");
        }
        (Expected::Prefix, Ok((_, state, _))) => {
            let state = sorted(state);
            // A checksum is no signature: bytes that happen to form an entry
            // with a matching CRC (libFuzzer finds such bytes) are a write
            // as far as anyone can tell. Short of that, what recovery keeps
            // is some prefix of what was written.
            let forged = fuzzing::entry_spans(&bytes)
                .iter()
                .any(|new| !spans.iter().any(|old| original[old.clone()] == bytes[new.clone()]));
            assert!(
                forged || states.iter().any(|s| sorted(s.clone()) == state),
                "recovered a state no prefix of the writes gives"
            );
        }
        (Expected::Prefix, Err(StorageError::Corrupt { offset, .. })) => assert!(offset <= bytes.len() as u64),
        // Damage that makes recovery stop before the newest snapshot
        // marker leads it back to an older one, whose file was removed
        // once the newer marker was durable. A crash cannot do that (an
        // entry is only torn if it was never durable), so the refusal is
        // right: the directory does not hold what its log says.
        (Expected::Writes { writes, .. }, Err(StorageError::Inconsistent { detail, .. }))
            if superseded_snapshot(writes) && detail.contains("is missing") => {}
        (Expected::Prefix, Err(StorageError::Inconsistent { detail, .. })) if detail.contains("is missing") => {}
        (expected, got) => panic!("expected {expected:?}, recovery gave {:?}", got.map(|(_, s, w)| (s, w))),
    }
    // Recovery made the directory whole: it opens again to the same state,
    // with nothing left to repair.
    // (The `Storage` is dropped at once: it holds the directory's lock.)
    if let Ok(first) = Storage::open_with(dir.path(), options.clone()).map(|(_, state, _)| state) {
        let (again, warnings) = Storage::open_with(dir.path(), options)
            .map(|(_, state, warnings)| (state, warnings))
            .expect("a recovered directory reopens");
        assert_eq!(sorted(again), sorted(first));
        assert!(warnings.is_empty(), "a second recovery repaired something: {warnings:?}");
    }
}

/// Reads fuzzer bytes as a sequence of small numbers, zero once used up.
pub struct ByteReader<'a>(pub &'a [u8]);

impl ByteReader<'_> {
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub fn below(&mut self, n: u8) -> u8 {
        self.byte() % n.max(1)
    }

    pub fn u16(&mut self) -> u16 {
        u16::from(self.byte()) << 8 | u16::from(self.byte())
    }
}

/// A [`WalCase`] from fuzzer bytes, for the cargo-fuzz target.
pub fn wal_case_from_bytes(data: &[u8]) -> WalCase {
    let mut r = ByteReader(data);
    let groups = (0..1 + r.below(5))
        .map(|_| {
            (0..1 + r.below(3))
                .map(|_| WriteSpec {
                    put: (0..r.below(3)).map(|_| i64::from(r.below(40))).collect(),
                    delete: (0..r.below(2)).map(|_| i64::from(r.below(40))).collect(),
                    vote_term: (r.below(2) == 0).then(|| i64::from(r.below(5))),
                    snapshot: (r.below(6) == 0).then(|| i64::from(r.below(40))),
                })
                .collect()
        })
        .collect();
    let segment_bytes = if r.below(2) == 0 { 1 << 20 } else { u64::from(r.below(200)) + 1 };
    let at = usize::from(r.u16());
    let damage = match r.below(6) {
        0 => Damage::Truncate(at),
        1 => Damage::Flip { at, bit: r.byte() },
        2 => Damage::Duplicate(at),
        3 => Damage::Swap(at),
        4 => Damage::Zeros(usize::from(r.below(40))),
        _ => Damage::Overwrite { at, bytes: r.0.to_vec() },
    };
    WalCase { groups, segment_bytes, damage }
}
