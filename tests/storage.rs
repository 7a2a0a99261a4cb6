//! The WAL and the snapshot files through the public API and the files they
//! leave, including the damage a crash or a failing disk does to them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;

use traftctl::kv::KvState;
use traftctl::pb::cmd::Value;
use traftctl::pb::{ClusterConfig, Cmd, LeaderId, Record, TailBitmap};
use traftctl::replica::{DurableState, DurableWrite, HardState, Seq};
use traftctl::snapshot::Snapshot;
use traftctl::storage::{Storage, StorageError, StorageOptions, save_snapshot};

fn record(seq: Seq, value: &str) -> Record {
    Record {
        author: Some(LeaderId::new(1, 1)),
        seq,
        cmd: Some(Cmd { op: "set".into(), key: format!("key-{seq}"), value: Some(Value::VStr(value.into())) }),
        depends: Some(TailBitmap::new(0, [seq - 1])),
        overrides: Some(TailBitmap::new(0, [seq])),
    }
}

fn hard(term: i64, committed_prefix: i64) -> HardState {
    HardState {
        voted_for: Some(LeaderId::new(term, 2)),
        committer: Some(LeaderId::new(term, 2)),
        committed: TailBitmap::from_prefix(committed_prefix),
        base_len: committed_prefix,
    }
}

fn put(seqs: impl IntoIterator<Item = Seq>) -> DurableWrite {
    DurableWrite { put: seqs.into_iter().map(|s| record(s, &format!("v{s}"))).collect(), ..DurableWrite::default() }
}

/// What the state must be: the write semantics, written independently of
/// the storage's own, with the documented relaxation: a record the current
/// snapshot's applied set covers is not kept, config records excepted.
#[derive(Default, Clone)]
struct Model {
    hard_state: HardState,
    snapshot: Option<Arc<Snapshot>>,
    records: BTreeMap<Seq, Record>,
}

impl Model {
    fn covers(&self, r: &Record) -> bool {
        let config = r.cmd.as_ref().is_some_and(|c| c.is_config());
        !config && self.snapshot.as_ref().is_some_and(|s| s.applied.contains(r.seq))
    }

    fn apply(&mut self, writes: &[DurableWrite]) {
        for w in writes {
            if let Some(h) = &w.hard_state {
                self.hard_state = h.clone();
            }
            if let Some(snap) = &w.snapshot {
                self.snapshot = Some(snap.clone());
                let all = std::mem::take(&mut self.records);
                self.records = all.into_iter().filter(|(_, r)| !self.covers(r)).collect();
            }
            for s in &w.delete {
                self.records.remove(s);
            }
            for r in &w.put {
                if !self.covers(r) {
                    self.records.insert(r.seq, r.clone());
                }
            }
        }
    }

    fn state(&self) -> DurableState {
        DurableState {
            hard_state: self.hard_state.clone(),
            snapshot: self.snapshot.clone(),
            records: self.records.values().cloned().collect(),
        }
    }
}

/// Appends `writes` to both.
fn step(storage: &mut Storage, model: &mut Model, writes: Vec<DurableWrite>) {
    model.apply(&writes);
    storage.append(writes).unwrap();
}

fn names(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| keep(p.file_name().unwrap().to_str().unwrap()))
        .collect();
    v.sort();
    v
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    names(dir, |n| n.starts_with("wal-") && n.ends_with(".log"))
}

fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    names(dir, |n| n.starts_with("snap-") && n.ends_with(".snap"))
}

fn only_segment(dir: &Path) -> PathBuf {
    let segs = segments(dir);
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs[0].clone()
}

/// What the files the log keeps take: not the obsolete ones, whose removal
/// on the side may be under way ([`wait_until_obsolete_files_are_gone`]).
fn dir_bytes(dir: &Path) -> u64 {
    // A file may vanish between the listing and its metadata: the storage
    // removes files as it goes.
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".obsolete"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn wait_until_obsolete_files_are_gone(dir: &Path) {
    let start = Instant::now();
    while !names(dir, |n| n.ends_with(".obsolete")).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "obsolete files were never removed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("wal-{number:08}.log"))
}

/// Entry offsets in a segment, read with the documented framing (u32 LE
/// length, u32 checksum, payload), up to the zeros that end the log.
fn entry_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut off = 0;
    while off + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        offsets.push(off);
        off += 8 + len;
    }
    assert!(bytes[off..].iter().all(|&b| b == 0), "only zeros after the entries");
    offsets
}

/// Where the entries end.
fn data_end(bytes: &[u8]) -> usize {
    match entry_offsets(bytes).last() {
        Some(&last) => last + 8 + u32::from_le_bytes(bytes[last..last + 4].try_into().unwrap()) as usize,
        None => 0,
    }
}

/// Small segments keep the tests' files small; the default sizes (1 MiB
/// first, then doubling) are checked once.
const TEST_SEGMENT: u64 = 256 << 10;

fn options(segment_bytes: u64) -> StorageOptions {
    StorageOptions { segment_bytes }
}

fn open(dir: &Path) -> (Storage, DurableState, Vec<String>) {
    open_with(dir, TEST_SEGMENT)
}

fn open_with(dir: &Path, segment_bytes: u64) -> (Storage, DurableState, Vec<String>) {
    Storage::open_with(dir, options(segment_bytes)).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// Waits (bounded) until `path` exists with `len` bytes.
fn wait_for_file(path: &Path, len: u64) {
    let start = Instant::now();
    while fs::metadata(path).map(|m| m.len()).ok() != Some(len) {
        assert!(start.elapsed() < Duration::from_secs(60), "{} never reached {len} bytes", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_new_directory_starts_empty_with_a_preallocated_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (storage, state, warnings) = Storage::open(&dir).unwrap();
    assert_eq!(state, DurableState::default());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(storage.durable_writes(), 0);
    assert_eq!(storage.dir(), dir);
    assert_eq!(fs::read_to_string(dir.join("FORMAT")).unwrap(), "traftctl-data v2\n");
    let seg = fs::read(only_segment(&dir)).unwrap();
    assert_eq!(seg.len(), 1 << 20, "a new directory's first segment is 1 MiB");
    assert!(seg.iter().all(|&b| b == 0), "zero-filled");
    assert!(!dir.join("wal-00000002.log.tmp").exists(), "nothing is prepared for an empty segment");
    // Once it is half full, the next one, twice as large, is prepared in
    // the background.
    let mut storage = storage;
    storage.append(vec![half_of(1 << 20, 0)]).unwrap();
    wait_for_file(&dir.join("wal-00000002.log.tmp"), 2 << 20);
}

/// A write whose one record fills half a segment of `capacity` bytes.
fn half_of(capacity: u64, seq: Seq) -> DurableWrite {
    let value = "x".repeat(capacity as usize / 2);
    DurableWrite { put: vec![record(seq, &value)], ..DurableWrite::default() }
}

#[test]
fn a_missing_nested_data_directory_is_created_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster/node-1/data");
    let (mut storage, _, _) = open(&dir);
    storage.append(vec![put([0])]).unwrap();
    drop(storage);
    let (storage, state, _) = open(&dir);
    assert_eq!(storage.durable_writes(), 1);
    assert_eq!(state.records.len(), 1);
}

#[test]
fn a_data_directory_that_cannot_be_created_is_refused_naming_the_level() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let err = Storage::open(&file.join("node/data")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StorageError::Io { .. }), "{msg}");
    assert!(msg.contains(&format!("cannot create directory {}:", file.join("node").display())), "{msg}");
    assert!(msg.to_lowercase().contains("not a directory"), "{msg}");
}

#[test]
fn writes_survive_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let mut appended = 0;
    let mut checked_step = |storage: &mut Storage, model: &mut Model, writes: Vec<DurableWrite>| {
        appended += writes.len() as u64;
        step(storage, model, writes);
        assert_eq!(storage.state(), &model.state());
    };

    let (mut storage, _, _) = open(tmp.path());
    checked_step(&mut storage, &mut model, vec![put(1..=3)]);
    checked_step(
        &mut storage,
        &mut model,
        vec![DurableWrite { hard_state: Some(hard(1, 0)), ..DurableWrite::default() }],
    );
    // Replacing records, deleting, and a new hard state in one write.
    checked_step(
        &mut storage,
        &mut model,
        vec![DurableWrite {
            hard_state: Some(hard(2, 2)),
            put: vec![record(2, "replaced"), record(4, "v4")],
            delete: vec![1, 99],
            ..DurableWrite::default()
        }],
    );
    // Many writes committed as groups of various sizes.
    let mut seq = 5;
    for group in 1..=40 {
        let writes: Vec<DurableWrite> = (0..group % 7 + 1)
            .map(|i| {
                seq += 1;
                DurableWrite {
                    hard_state: (i == 0).then(|| hard(3, seq - 2)),
                    put: vec![record(seq, &format!("g{group}"))],
                    delete: if seq % 5 == 0 { vec![seq - 3] } else { vec![] },
                    ..DurableWrite::default()
                }
            })
            .collect();
        checked_step(&mut storage, &mut model, writes);
    }
    checked_step(&mut storage, &mut model, vec![]);
    drop(storage);

    let (mut storage, state, warnings) = open(tmp.path());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
    assert!(state.records.windows(2).all(|w| w[0].seq < w[1].seq), "records are sorted by seq");
    let writes_before = storage.durable_writes();

    // Appending after a reopen continues the same log.
    checked_step(
        &mut storage,
        &mut model,
        vec![put([1000]), DurableWrite { delete: vec![2], ..DurableWrite::default() }],
    );
    drop(storage);
    let (storage, state, _) = open(tmp.path());
    assert_eq!(state, model.state());
    assert_eq!(storage.durable_writes(), writes_before + 2);
    assert_eq!(storage.durable_writes(), appended);
}

#[test]
fn append_reports_the_bytes_it_wrote_and_its_fsync_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open_with(tmp.path(), 4096);
    let (mut seg, mut end) = (only_segment(tmp.path()), 0);
    let mut rotated = false;
    for round in 0..40 {
        let start = Instant::now();
        let stats = storage.append(vec![put([round * 2]), put([round * 2 + 1])]).unwrap();
        let wall = start.elapsed();
        assert!(stats.sync > Duration::ZERO && stats.sync <= wall, "{stats:?} within {wall:?}");
        let new_seg = only_segment(tmp.path());
        let new_end = data_end(&fs::read(&new_seg).unwrap()) as u64;
        if new_seg == seg {
            assert_eq!(stats.bytes, new_end - end, "round {round}");
        } else {
            // A new segment: its checkpoint and the append.
            assert_eq!(stats.bytes, new_end, "round {round}");
            rotated = true;
        }
        (seg, end) = (new_seg, new_end);
    }
    assert!(rotated, "the test must cover a rotation");
    assert_eq!(storage.append(vec![]).unwrap(), Default::default(), "nothing to write, nothing synced");
}

#[test]
fn the_zero_filled_end_of_a_segment_is_the_clean_end_of_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open(tmp.path());
    storage.append(vec![put([1, 2])]).unwrap();
    storage.append(vec![put([3])]).unwrap();
    let state = storage.state().clone();
    drop(storage);
    let seg = only_segment(tmp.path());
    let bytes = fs::read(&seg).unwrap();
    assert_eq!(bytes.len() as u64, TEST_SEGMENT, "appends write in place: the segment keeps its size");
    let end = data_end(&bytes);
    assert!(end > 0 && bytes[end..].iter().all(|&b| b == 0));

    let (_, recovered, warnings) = open(tmp.path());
    assert!(warnings.is_empty(), "zeros after the last entry are no damage: {warnings:?}");
    assert_eq!(recovered, state);
    assert_eq!(fs::read(&seg).unwrap(), bytes, "recovery changed nothing");
}

/// Three appends (three fsync groups); returns the segment, its bytes and
/// the state after the first two.
fn three_groups(dir: &Path) -> (PathBuf, Vec<u8>, DurableState) {
    let (mut storage, _, _) = open(dir);
    storage.append(vec![put([1])]).unwrap();
    storage.append(vec![DurableWrite { hard_state: Some(hard(1, 1)), ..put([2]) }]).unwrap();
    let after_two = storage.state().clone();
    storage.append(vec![put([3, 4])]).unwrap();
    drop(storage);
    let seg = only_segment(dir);
    let bytes = fs::read(&seg).unwrap();
    (seg, bytes, after_two)
}

#[test]
fn a_torn_tail_is_zeroed_with_a_warning_and_the_log_goes_on() {
    let probe = tempfile::tempdir().unwrap();
    let (_, bytes, _) = three_groups(probe.path());
    let last = *entry_offsets(&bytes).last().unwrap();
    let end = data_end(&bytes);
    let cuts = [last + 1, last + 4, last + 7, last + 8, last + 9, (last + end) / 2, end - 1];

    for cut in cuts {
        let tmp = tempfile::tempdir().unwrap();
        let (seg, original, after_two) = three_groups(tmp.path());
        // The last group's bytes from `cut` on never reached the disk.
        let mut bytes = original.clone();
        bytes[cut..end].fill(0);
        assert_ne!(bytes, original, "cut at {cut}");
        fs::write(&seg, &bytes).unwrap();

        let (mut storage, state, warnings) = open(tmp.path());
        assert_eq!(state, after_two, "cut at {cut}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains(&seg.display().to_string()), "{warnings:?}");
        assert!(warnings[0].contains(&format!("torn write at byte offset {last}")), "{warnings:?}");
        let repaired = fs::read(&seg).unwrap();
        assert_eq!(repaired.len(), bytes.len(), "zeroed, not truncated");
        assert!(repaired[last..].iter().all(|&b| b == 0), "cut at {cut}: the torn bytes are zeroed");

        // The log goes on from the last intact write.
        storage.append(vec![put([5])]).unwrap();
        drop(storage);
        let (_, state, warnings) = open(tmp.path());
        assert!(warnings.is_empty(), "{warnings:?}");
        let seqs: Vec<Seq> = state.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 5], "cut at {cut}");
    }
}

#[test]
fn a_torn_write_inside_preallocated_space_is_zeroed_and_appends_continue() {
    let tmp = tempfile::tempdir().unwrap();
    let (seg, mut bytes, _) = three_groups(tmp.path());
    let end = data_end(&bytes);
    let state_before = open(tmp.path()).1;
    // A later page of a write whose start never made it: bytes far out in
    // the zeros, with zeros where its header would be.
    bytes[end + 5000..end + 5100].fill(0x5a);
    fs::write(&seg, &bytes).unwrap();

    let (mut storage, state, warnings) = open(tmp.path());
    assert_eq!(state, state_before);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(&format!("torn write at byte offset {end} (5100 bytes")), "{warnings:?}");
    let repaired = fs::read(&seg).unwrap();
    assert_eq!(repaired.len() as u64, TEST_SEGMENT);
    assert!(repaired[end..].iter().all(|&b| b == 0));

    storage.append(vec![put([7])]).unwrap();
    let after = storage.state().clone();
    drop(storage);
    let (_, state, warnings) = open(tmp.path());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, after);
    assert_eq!(entry_offsets(&fs::read(&seg).unwrap()).last(), Some(&end), "the append went where the log ended");
}

#[test]
fn a_damaged_or_lost_last_group() {
    // All its pages lost: zeros, the same as never written.
    let tmp = tempfile::tempdir().unwrap();
    let (seg, mut bytes, after_two) = three_groups(tmp.path());
    let last = *entry_offsets(&bytes).last().unwrap();
    bytes[last..].fill(0);
    fs::write(&seg, &bytes).unwrap();
    let (mut storage, state, warnings) = open(tmp.path());
    assert_eq!(state, after_two);
    assert!(warnings.is_empty(), "{warnings:?}");
    storage.append(vec![put([9])]).unwrap();
    drop(storage);
    assert_eq!(entry_offsets(&fs::read(&seg).unwrap()).last(), Some(&last));

    // The last group failing its checksum: half of its pages made it.
    let tmp = tempfile::tempdir().unwrap();
    let (seg, mut bytes, after_two) = three_groups(tmp.path());
    let end = data_end(&bytes);
    bytes[end - 2] ^= 0x40;
    fs::write(&seg, &bytes).unwrap();
    let (_, state, warnings) = open(tmp.path());
    assert_eq!(state, after_two);
    assert!(warnings[0].contains("checksum"), "{warnings:?}");
}

#[test]
fn a_corrupt_entry_before_the_last_group_stops_the_node() {
    let tmp = tempfile::tempdir().unwrap();
    let (seg, mut bytes, _) = three_groups(tmp.path());
    let second = entry_offsets(&bytes)[1];
    bytes[second + 8 + 3] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();

    let err = Storage::open_with(tmp.path(), options(TEST_SEGMENT)).unwrap_err();
    match &err {
        StorageError::Corrupt { file, offset, .. } => {
            assert_eq!(file, &seg);
            assert_eq!(*offset, second as u64);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(&seg.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("offset {second}")), "{msg}");
    assert!(msg.contains("will not start"), "{msg}");
    assert_eq!(fs::read(&seg).unwrap(), bytes, "a failed recovery must not touch the data");

    // A damaged length must not pass for a torn tail either.
    let tmp = tempfile::tempdir().unwrap();
    let (seg, mut bytes, _) = three_groups(tmp.path());
    let second = entry_offsets(&bytes)[1];
    bytes[second + 3] = 0x10;
    fs::write(&seg, &bytes).unwrap();
    match Storage::open_with(tmp.path(), options(TEST_SEGMENT)).unwrap_err() {
        StorageError::Corrupt { offset, .. } => assert_eq!(offset, second as u64),
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn a_directory_is_used_by_one_storage_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut first, _, _) = open(tmp.path());
    first.append(vec![put([1])]).unwrap();

    let err = Storage::open(tmp.path()).unwrap_err();
    assert!(matches!(&err, StorageError::Locked { dir } if dir == tmp.path()), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("another traftctl is using it"), "{msg}");
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");

    drop(first);
    let (_, state, _) = open(tmp.path());
    assert_eq!(state.records.len(), 1);
}

#[test]
fn a_foreign_or_newer_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("FORMAT"), "traftctl-data v3\n").unwrap();
    let err = Storage::open(tmp.path()).unwrap_err();
    assert!(matches!(&err, StorageError::BadFormat { found, .. } if found == "traftctl-data v3"), "{err}");
    assert!(err.to_string().contains("traftctl-data v2"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let err = Storage::open(tmp.path()).unwrap_err();
    assert!(matches!(&err, StorageError::NotDataDir { found, .. } if found == "notes.txt"), "{err}");
    assert!(err.to_string().contains("not a traftctl data directory"), "{err}");
    let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["notes.txt"], "nothing is created in a directory that is refused");

    // A data directory whose log was removed does not start empty.
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open(tmp.path());
    storage.append(vec![put([1])]).unwrap();
    drop(storage);
    fs::remove_file(only_segment(tmp.path())).unwrap();
    let err = Storage::open_with(tmp.path(), options(TEST_SEGMENT)).unwrap_err();
    assert!(matches!(err, StorageError::Inconsistent { .. }), "{err}");
}

/// Segments of this size rotate every few appends in `churn`.
const SMALL_SEGMENT: u64 = 16 << 10;

/// Appends `rounds` groups that keep about 30 live records, calling `each`
/// with the storage, the segment from before the append, and the state from
/// before it; stops when `each` returns false. Returns a lower bound of the
/// bytes appended: the encoded records alone.
fn churn(
    storage: &mut Storage,
    model: &mut Model,
    rounds: i64,
    mut each: impl FnMut(&Storage, &(PathBuf, Vec<u8>), &DurableState) -> bool,
) -> usize {
    let value = "v".repeat(100);
    let mut appended = 0;
    for round in 0..rounds {
        let seq = 1 + round * 3;
        let writes = vec![
            DurableWrite {
                hard_state: Some(hard(round, seq)),
                put: (seq..seq + 3).map(|s| record(s, &value)).collect(),
                ..DurableWrite::default()
            },
            DurableWrite { delete: (seq - 30..seq - 27).collect(), ..DurableWrite::default() },
        ];
        appended += writes[0].put.iter().map(Message::encoded_len).sum::<usize>();
        let seg = only_segment(storage.dir());
        let before = (seg.clone(), fs::read(&seg).unwrap());
        let state_before = storage.state().clone();
        step(storage, model, writes);
        if !each(storage, &before, &state_before) {
            break;
        }
    }
    appended
}

#[test]
fn rotation_bounds_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open_with(tmp.path(), SMALL_SEGMENT);
    let mut model = Model::default();
    let mut max_dir_bytes = 0;
    let appended = churn(&mut storage, &mut model, 3000, |storage, _, _| {
        max_dir_bytes = max_dir_bytes.max(dir_bytes(storage.dir()));
        let seg = only_segment(storage.dir());
        assert_eq!(fs::metadata(&seg).unwrap().len(), SMALL_SEGMENT, "{seg:?} kept its capacity");
        true
    });
    assert_eq!(storage.state(), &model.state());
    let seg = only_segment(tmp.path());
    assert!(seg > segment_path(tmp.path(), 50), "{seg:?}");
    assert!(appended > 1 << 20, "the test must write far more than the bound ({appended} bytes)");
    // The current segment and the next, prepared, plus FORMAT and LOCK.
    assert!(max_dir_bytes <= 2 * SMALL_SEGMENT + 64, "the directory grew to {max_dir_bytes} bytes");
    wait_until_obsolete_files_are_gone(tmp.path());
    drop(storage);

    let (storage, state, warnings) = open_with(tmp.path(), SMALL_SEGMENT);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
    assert_eq!(storage.durable_writes(), 6000);
}

#[test]
fn a_rotation_that_does_not_fit_makes_its_segment_larger() {
    const CAPACITY: u64 = 4096;
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open_with(tmp.path(), CAPACITY);
    let mut model = Model::default();
    let value = "w".repeat(1000);
    // Records of 1 KB, none deleted: the checkpoints soon outgrow 4 KiB.
    let mut seq = 0;
    let grown = loop {
        let before = only_segment(tmp.path());
        step(&mut storage, &mut model, vec![DurableWrite { put: vec![record(seq, &value)], ..Default::default() }]);
        seq += 1;
        let seg = only_segment(tmp.path());
        if seg != before && fs::metadata(&seg).unwrap().len() > CAPACITY {
            break seg;
        }
        assert!(seq < 100, "no rotation grew a segment");
    };
    // Twice the checkpoint and the append that started it.
    let bytes = fs::read(&grown).unwrap();
    let offsets = entry_offsets(&bytes);
    assert_eq!(offsets.len(), 2, "the checkpoint and the append");
    assert_eq!(bytes.len(), 2 * data_end(&bytes), "{grown:?}");
    // The grown segment takes the next appends in place.
    step(&mut storage, &mut model, vec![put([100])]);
    assert_eq!(only_segment(tmp.path()), grown);
    drop(storage);
    let (_, state, warnings) = open_with(tmp.path(), CAPACITY);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
}

/// Runs until the first rotation and returns the segment from before it
/// and the state from before the append that did it.
fn until_rotation(dir: &Path) -> (Model, (PathBuf, Vec<u8>), DurableState) {
    let (mut storage, _, _) = open_with(dir, SMALL_SEGMENT);
    let mut model = Model::default();
    let mut found = None;
    churn(&mut storage, &mut model, 1000, |storage, before, state_before| {
        if only_segment(storage.dir()) != before.0 {
            found = Some((before.clone(), state_before.clone()));
            return false;
        }
        true
    });
    let (before, state_before) = found.expect("a rotation within 1000 appends");
    (model, before, state_before)
}

#[test]
fn a_crash_before_the_old_segment_is_removed_recovers_from_the_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, (old_path, old_bytes), _) = until_rotation(tmp.path());
    let new_path = only_segment(tmp.path());
    fs::write(&old_path, &old_bytes).unwrap();
    assert_eq!(segments(tmp.path()).len(), 2);

    let (mut storage, state, warnings) = open_with(tmp.path(), SMALL_SEGMENT);
    assert_eq!(state, model.state());
    assert_eq!(only_segment(tmp.path()), new_path, "the older segment is removed");
    assert!(warnings.iter().any(|w| w.contains("interrupted rotation")), "{warnings:?}");
    storage.append(vec![put([100_000])]).unwrap();
}

#[test]
fn a_crash_before_the_new_segment_is_named_recovers_from_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, (old_path, old_bytes), state_before) = until_rotation(tmp.path());
    let new_path = only_segment(tmp.path());
    let new_bytes = fs::read(&new_path).unwrap();
    // As the crash left it: the old segment, and the new one under its
    // temporary name, written or not.
    fs::write(&old_path, &old_bytes).unwrap();
    fs::write(format!("{}.tmp", new_path.display()), &new_bytes).unwrap();
    fs::remove_file(&new_path).unwrap();

    let (mut storage, state, warnings) = open_with(tmp.path(), SMALL_SEGMENT);
    assert_eq!(state, state_before);
    assert!(warnings.iter().any(|w| w.contains(".tmp")), "{warnings:?}");
    assert_eq!(segments(tmp.path()), std::slice::from_ref(&old_path));
    let others = names(tmp.path(), |n| !n.ends_with(".tmp"));
    assert_eq!(others.len(), 3, "FORMAT, LOCK and the segment: {others:?}");

    // The next append that does not fit rotates again.
    while only_segment(tmp.path()) == old_path {
        storage.append(vec![put([100_000])]).unwrap();
    }
    assert_eq!(only_segment(tmp.path()), new_path);
    drop(storage);
    let (_, state, _) = open_with(tmp.path(), SMALL_SEGMENT);
    assert!(state.records.iter().any(|r| r.seq == 100_000));
}

#[test]
fn an_unused_prepared_segment_is_removed_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open(tmp.path());
    storage.append(vec![half_of(TEST_SEGMENT, 1)]).unwrap();
    let prepared = tmp.path().join("wal-00000002.log.tmp");
    wait_for_file(&prepared, TEST_SEGMENT);
    drop(storage);
    assert!(prepared.exists());
    let (_, _, warnings) = open(tmp.path());
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn a_damaged_checkpoint_stops_the_node() {
    let tmp = tempfile::tempdir().unwrap();
    until_rotation(tmp.path());
    let seg = only_segment(tmp.path());
    let mut bytes = fs::read(&seg).unwrap();
    bytes[20] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    match Storage::open_with(tmp.path(), options(SMALL_SEGMENT)).unwrap_err() {
        StorageError::Corrupt { file, offset, .. } => {
            assert_eq!(file, seg);
            assert_eq!(offset, 0);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

/// A snapshot of the seqs below `prefix`, holding `keys` keys whose values
/// name the prefix, so snapshots of different prefixes differ.
fn snapshot(prefix: Seq, keys: usize) -> Arc<Snapshot> {
    let mut kv = KvState::default();
    for i in 0..keys {
        kv.apply(&Cmd::set_str(format!("key-{i}"), format!("{prefix:0>60}")));
    }
    Arc::new(Snapshot { applied: TailBitmap::from_prefix(prefix), kv, ..Snapshot::default() })
}

/// A compaction: store `snap` and delete the records it covers.
fn compact(snap: &Arc<Snapshot>, delete: impl IntoIterator<Item = Seq>) -> DurableWrite {
    DurableWrite { snapshot: Some(snap.clone()), delete: delete.into_iter().collect(), ..DurableWrite::default() }
}

#[test]
fn a_snapshot_written_with_deletes_survives_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let (mut storage, _, _) = open(tmp.path());
    let snap = snapshot(4, 10);
    let writes = vec![
        put(1..=5),
        DurableWrite { hard_state: Some(hard(1, 4)), put: vec![record(6, "v6")], ..compact(&snap, 1..4) },
    ];
    step(&mut storage, &mut model, writes);
    assert_eq!(storage.state(), &model.state());
    assert!(Arc::ptr_eq(storage.state().snapshot.as_ref().unwrap(), &snap), "the written snapshot is kept, not copied");
    // Saved synchronously, since nobody saved it first: in a file of its own.
    assert_eq!(snapshot_files(tmp.path()).len(), 1);
    // A write without a snapshot keeps the stored one.
    step(&mut storage, &mut model, vec![put([7])]);
    drop(storage);

    let (_, state, warnings) = open(tmp.path());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
    assert_eq!(state.snapshot.as_deref(), Some(&*snap));
    let seqs: Vec<Seq> = state.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [4, 5, 6, 7]);
}

#[test]
fn records_the_snapshot_covers_are_not_kept_but_config_records_are() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let (mut storage, _, _) = open(tmp.path());
    let config = ClusterConfig::majority([(1, "127.0.0.1:7001")]).unwrap();
    let config_record = Record { cmd: Some(Cmd::config(config)), ..record(2, "") };
    step(
        &mut storage,
        &mut model,
        vec![put([1, 3, 5, 8]), DurableWrite { put: vec![config_record.clone()], ..Default::default() }],
    );
    // The snapshot applied 0..5 and, out of order, 8; the compaction
    // deletes nothing itself.
    let snap = Arc::new(Snapshot {
        applied: TailBitmap::new(5, [8]),
        tail_records: vec![record(8, "v8")],
        ..(*snapshot(5, 3)).clone()
    });
    step(&mut storage, &mut model, vec![compact(&snap, []), put([4, 6])]);
    let seqs: Vec<Seq> = storage.state().records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [2, 5, 6], "covered records go, even when put after the snapshot; config records stay");
    assert_eq!(storage.state(), &model.state());
    drop(storage);
    let (_, state, _) = open(tmp.path());
    assert_eq!(state, model.state());
    assert_eq!(state.records[0], config_record);
}

#[test]
fn a_replaced_snapshot_file_is_removed_on_the_side_and_a_leftover_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open(tmp.path());
    storage.append(vec![put(1..=9), compact(&snapshot(3, 5), 1..3)]).unwrap();
    let first = snapshot_files(tmp.path()).pop().unwrap();
    storage.append(vec![compact(&snapshot(6, 5), 3..6)]).unwrap();
    assert!(!first.exists(), "gone by name once the new marker is durable");
    wait_until_obsolete_files_are_gone(tmp.path());
    // One that a stop left behind goes at the next open, without a warning:
    // it is not a sign of a crash.
    drop(storage);
    let leftover = PathBuf::from(format!("{}.obsolete", first.display()));
    fs::write(&leftover, b"the replaced snapshot").unwrap();
    let (_, state, warnings) = open(tmp.path());
    assert!(!leftover.exists());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state.snapshot.as_deref(), Some(&*snapshot(6, 5)));
}

#[test]
fn a_later_snapshot_replaces_the_earlier_one_and_its_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open(tmp.path());
    storage.append(vec![put(1..=9), compact(&snapshot(3, 5), 1..3)]).unwrap();
    let first = snapshot_files(tmp.path());
    storage.append(vec![compact(&snapshot(6, 5), 3..6)]).unwrap();
    assert_eq!(storage.state().snapshot.as_deref(), Some(&*snapshot(6, 5)));
    let second = snapshot_files(tmp.path());
    assert_eq!(second.len(), 1, "the replaced snapshot's file is removed once the new marker is durable");
    assert_ne!(first, second);
    drop(storage);
    let (mut storage, state, _) = open(tmp.path());
    assert_eq!(state.snapshot.as_deref(), Some(&*snapshot(6, 5)));

    // Within one fsync group the last snapshot wins too.
    storage.append(vec![compact(&snapshot(7, 1), [6]), compact(&snapshot(8, 2), [7]), put([10])]).unwrap();
    assert_eq!(snapshot_files(tmp.path()).len(), 1);
    drop(storage);
    let (_, state, warnings) = open(tmp.path());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state.snapshot.as_deref(), Some(&*snapshot(8, 2)));
    let seqs: Vec<Seq> = state.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [8, 9, 10]);
}

#[test]
fn a_snapshot_survives_rotations() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open_with(tmp.path(), SMALL_SEGMENT);
    let mut model = Model::default();
    step(&mut storage, &mut model, vec![compact(&snapshot(0, 20), [])]);
    let file = snapshot_files(tmp.path());
    // Two rotations: the second is written from a segment that named the
    // snapshot only in its own checkpoint.
    churn(&mut storage, &mut model, 1000, |storage, _, _| only_segment(storage.dir()) < segment_path(storage.dir(), 3));
    assert_eq!(only_segment(tmp.path()), segment_path(tmp.path(), 3));
    assert_eq!(storage.state(), &model.state());
    assert_eq!(snapshot_files(tmp.path()), file, "rotation names the snapshot file, never rewrites it");
    drop(storage);

    let (_, state, warnings) = open_with(tmp.path(), SMALL_SEGMENT);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
    assert_eq!(state.snapshot.as_deref(), Some(&*snapshot(0, 20)));
}

#[test]
fn a_snapshot_saved_on_another_thread_while_appends_go_on_is_named_and_survives() {
    let tmp = tempfile::tempdir().unwrap();
    // Room for however many appends run while the snapshot is saved.
    let (mut storage, _, _) = open_with(tmp.path(), 4 << 20);
    let mut model = Model::default();
    step(&mut storage, &mut model, vec![put(0..100)]);
    let snap = snapshot(100, 2000);
    let saver = {
        let (dir, snap) = (tmp.path().to_path_buf(), snap.clone());
        std::thread::spawn(move || save_snapshot(&dir, &snap).unwrap())
    };
    // The storage thread keeps appending meanwhile.
    let mut seq = 100;
    while !saver.is_finished() || seq < 110 {
        step(&mut storage, &mut model, vec![put([seq])]);
        seq += 1;
    }
    let saved = saver.join().unwrap();
    assert_eq!(saved.prefix(), 100);
    let saved_path = tmp.path().join(saved.file_name());
    assert_eq!(snapshot_files(tmp.path()), std::slice::from_ref(&saved_path));

    storage.adopt_saved(snap.clone(), saved);
    let seg = only_segment(tmp.path());
    let before = data_end(&fs::read(&seg).unwrap());
    step(&mut storage, &mut model, vec![compact(&snap, 0..100)]);
    assert_eq!(only_segment(tmp.path()), seg);
    let after = data_end(&fs::read(&seg).unwrap());
    assert_eq!(
        snapshot_files(tmp.path()),
        std::slice::from_ref(&saved_path),
        "the write named the saved file, no other"
    );
    assert!(((after - before) as u64) < 1024, "the WAL holds only the marker ({} bytes)", after - before);
    drop(storage);

    let (_, state, warnings) = open_with(tmp.path(), 4 << 20);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
    assert_eq!(state.snapshot.as_deref(), Some(&*snap));
    assert!(saved_path.exists());
}

#[test]
fn a_crash_between_a_snapshot_save_and_its_naming_write_keeps_the_old_state() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open(tmp.path());
    let mut model = Model::default();
    step(&mut storage, &mut model, vec![put(0..10), compact(&snapshot(5, 4), 0..5)]);
    let named = snapshot_files(tmp.path());
    step(&mut storage, &mut model, vec![put(10..20)]);
    let newer = snapshot(15, 4);
    let saved = save_snapshot(tmp.path(), &newer).unwrap();
    let orphan = tmp.path().join(saved.file_name());
    storage.adopt_saved(newer.clone(), saved);
    // Appends that do not name it: the file stays while the storage is open.
    step(&mut storage, &mut model, vec![put([20])]);
    assert!(orphan.exists(), "a registered snapshot not yet named is kept");
    drop(storage);

    let (_, state, warnings) = open(tmp.path());
    assert_eq!(state, model.state(), "the old snapshot and the records since");
    assert_eq!(state.snapshot.as_deref(), Some(&*snapshot(5, 4)));
    assert!(!orphan.exists(), "the orphan is removed");
    assert_eq!(snapshot_files(tmp.path()), named);
    assert!(warnings.iter().any(|w| w.contains(&orphan.display().to_string())), "{warnings:?}");
}

#[test]
fn a_snapshot_adopted_twice_or_skipped_leaves_no_file_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open(tmp.path());
    let mut model = Model::default();
    step(&mut storage, &mut model, vec![put(0..30)]);
    // Named before its background save was adopted: `append` saved it too.
    let a = snapshot(10, 3);
    let saved_a = save_snapshot(tmp.path(), &a).unwrap();
    step(&mut storage, &mut model, vec![compact(&a, 0..10)]);
    storage.adopt_saved(a.clone(), saved_a);
    // Saved and adopted, but a later snapshot is named first.
    let b = snapshot(20, 3);
    let c = snapshot(25, 3);
    for s in [&b, &c] {
        let saved = save_snapshot(tmp.path(), s).unwrap();
        storage.adopt_saved(s.clone(), saved);
    }
    step(&mut storage, &mut model, vec![compact(&c, 10..25)]);
    assert_eq!(snapshot_files(tmp.path()).len(), 1, "{:?}", snapshot_files(tmp.path()));
    // Naming the skipped one after all saves it again.
    step(&mut storage, &mut model, vec![compact(&b, [])]);
    assert_eq!(snapshot_files(tmp.path()).len(), 1);
    drop(storage);
    let (_, state, warnings) = open(tmp.path());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
}

#[test]
fn a_marker_naming_a_missing_or_damaged_snapshot_file_stops_the_node() {
    let build = |dir: &Path| {
        let (mut storage, _, _) = open(dir);
        storage.append(vec![put(0..10), compact(&snapshot(5, 50), 0..5)]).unwrap();
        storage.append(vec![put([10])]).unwrap();
        drop(storage);
        snapshot_files(dir).pop().unwrap()
    };
    let damages: [(&str, &FileChange<'_>); 4] = [
        ("is missing", &|p: &Path| fs::remove_file(p).unwrap()),
        ("truncated", &|p: &Path| {
            let bytes = fs::read(p).unwrap();
            fs::write(p, &bytes[..bytes.len() / 2]).unwrap();
        }),
        ("checksum", &|p: &Path| {
            let mut bytes = fs::read(p).unwrap();
            let n = bytes.len();
            bytes[n - 10] ^= 0x01;
            fs::write(p, &bytes).unwrap();
        }),
        ("magic", &|p: &Path| fs::write(p, b"not a snapshot file at all, and long enough").unwrap()),
    ];
    for (what, damage) in damages {
        let tmp = tempfile::tempdir().unwrap();
        let file = build(tmp.path());
        damage(&file);
        let err = Storage::open_with(tmp.path(), options(TEST_SEGMENT)).unwrap_err();
        assert!(matches!(err, StorageError::Inconsistent { .. }), "{what}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(&file.display().to_string()), "{what}: {msg}");
        assert!(msg.contains(what), "{what}: {msg}");
        assert!(msg.contains("will not start"), "{what}: {msg}");
        assert!(msg.contains(&only_segment(tmp.path()).display().to_string()), "names the marker's segment: {msg}");
    }
}

/// Something done to a file or a directory to simulate damage or a crash.
type FileChange<'a> = dyn Fn(&Path) + 'a;

/// Three fsync groups, the second storing a snapshot; returns the segment,
/// its bytes, and the offsets of the entries.
fn groups_with_a_snapshot(dir: &Path, snapshot_last: bool) -> (PathBuf, Vec<u8>, Vec<usize>) {
    let (mut storage, _, _) = open(dir);
    storage.append(vec![put([1, 2])]).unwrap();
    if snapshot_last {
        storage.append(vec![put([3])]).unwrap();
    }
    storage.append(vec![compact(&snapshot(2, 10), [1])]).unwrap();
    if !snapshot_last {
        storage.append(vec![put([3])]).unwrap();
    }
    drop(storage);
    let seg = only_segment(dir);
    let bytes = fs::read(&seg).unwrap();
    let offsets = entry_offsets(&bytes);
    (seg, bytes, offsets)
}

#[test]
fn a_damaged_snapshot_marker() {
    // Before a later group: corruption.
    let tmp = tempfile::tempdir().unwrap();
    let (seg, mut bytes, offsets) = groups_with_a_snapshot(tmp.path(), false);
    // The marker is the entry's last field: this byte is inside it.
    bytes[offsets[2] - 5] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    match Storage::open_with(tmp.path(), options(TEST_SEGMENT)).unwrap_err() {
        StorageError::Corrupt { file, offset, .. } => {
            assert_eq!(file, seg);
            assert_eq!(offset, offsets[1] as u64);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert_eq!(fs::read(&seg).unwrap(), bytes, "a failed recovery must not touch the data");

    // The same damage in the last group is a torn write: the snapshot was
    // never acknowledged, the records it would have replaced are there, and
    // its file is an orphan.
    let tmp = tempfile::tempdir().unwrap();
    let (seg, mut bytes, offsets) = groups_with_a_snapshot(tmp.path(), true);
    let end = data_end(&bytes);
    bytes[end - 5] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    let (_, state, warnings) = open(tmp.path());
    assert!(warnings[0].contains(&format!("offset {}", offsets[2])), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("no durable write names this snapshot file")), "{warnings:?}");
    assert_eq!(state.snapshot, None);
    let seqs: Vec<Seq> = state.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(snapshot_files(tmp.path()).is_empty());
}

#[test]
fn rotation_bounds_the_directory_under_churn_with_periodic_snapshots() {
    const SEGMENT: u64 = 64 << 10;
    // Per-entry bytes beyond the records: framing, write numbers, flags,
    // hard state, a snapshot marker, and each record's key and length.
    const ENTRY_OVERHEAD: usize = 256;
    const FIELD_OVERHEAD: usize = 4;
    let encoded = |records: &mut dyn Iterator<Item = &Record>| -> usize {
        records.map(|r| r.encoded_len() + FIELD_OVERHEAD).sum()
    };
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open_with(tmp.path(), SEGMENT);
    let mut model = Model::default();
    let value = "v".repeat(100);
    let (mut max_dir_bytes, mut max_snapshot_file, mut max_rotation, mut written) = (0, 0, 0, 0);
    let mut saving: Option<(Arc<Snapshot>, std::thread::JoinHandle<_>)> = None;
    let mut seq = 1;
    for round in 0..3000 {
        let mut writes = vec![DurableWrite {
            hard_state: Some(hard(round, seq)),
            put: (seq..seq + 3).map(|s| record(s, &value)).collect(),
            ..DurableWrite::default()
        }];
        seq += 3;
        if round % 20 == 0 && saving.is_none() {
            // A snapshot saved on another thread, named a few appends later.
            let snap = snapshot(seq, 40);
            let (dir, s) = (tmp.path().to_path_buf(), snap.clone());
            saving = Some((snap, std::thread::spawn(move || save_snapshot(&dir, &s).unwrap())));
        } else if round % 20 == 5
            && let Some((snap, saver)) = saving.take()
        {
            storage.adopt_saved(snap.clone(), saver.join().unwrap());
            writes.push(compact(&snap, model.records.range(..snap.prefix()).map(|(s, _)| *s).collect::<Vec<_>>()));
        } else if round % 100 == 50 {
            // One nobody saved first, as an installed snapshot is.
            writes.push(compact(&snapshot(seq, 40), []));
        }
        // A rotation before this append would write the live records, then
        // the append: the documented bound on a segment.
        let append: usize =
            writes.iter().map(|w| ENTRY_OVERHEAD + encoded(&mut w.put.iter()) + 10 * w.delete.len()).sum();
        let checkpoint = ENTRY_OVERHEAD + encoded(&mut model.records.values());
        max_rotation = max_rotation.max(checkpoint + append);
        written += append;
        step(&mut storage, &mut model, writes);
        max_dir_bytes = max_dir_bytes.max(dir_bytes(tmp.path()));
        for f in snapshot_files(tmp.path()) {
            max_snapshot_file = max_snapshot_file.max(fs::metadata(f).map_or(0, |m| m.len()));
        }
        assert!(snapshot_files(tmp.path()).len() <= 2, "round {round}: {:?}", snapshot_files(tmp.path()));
    }
    // Two segments (the current one and the next, prepared), the current
    // snapshot file and one being saved, FORMAT and LOCK.
    let segment = SEGMENT.max(2 * max_rotation as u64);
    let bound = 2 * segment + 2 * max_snapshot_file + 64;
    assert!(max_dir_bytes <= bound, "the directory grew to {max_dir_bytes} bytes; the bound is {bound}");
    assert!(
        written as u64 > 10 * bound,
        "the test must write far more than the bound ({written} bytes, bound {bound})"
    );
    assert!(only_segment(tmp.path()) > segment_path(tmp.path(), 10), "rotations happened");
    wait_until_obsolete_files_are_gone(tmp.path());
    drop(storage);

    let (_, state, warnings) = open_with(tmp.path(), SEGMENT);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
    assert!(state.snapshot.is_some());
    assert_eq!(snapshot_files(tmp.path()).len(), 1);
}

// ---------------------------------------------------------------- format v1

/// Format v1's entry, defined here from its documentation, so the test does
/// not share the code it checks.
#[derive(Clone, PartialEq, prost::Message)]
struct V1Entry {
    #[prost(uint64, tag = "1")]
    index: u64,
    #[prost(uint64, tag = "2")]
    batch: u64,
    #[prost(bool, tag = "3")]
    checkpoint: bool,
    #[prost(message, optional, tag = "4")]
    hard_state: Option<V1HardState>,
    #[prost(int64, repeated, tag = "5")]
    delete: Vec<i64>,
    #[prost(message, repeated, tag = "6")]
    put: Vec<Record>,
    #[prost(bytes = "vec", optional, tag = "7")]
    snapshot: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct V1HardState {
    #[prost(message, optional, tag = "1")]
    voted_for: Option<LeaderId>,
    #[prost(message, optional, tag = "2")]
    committer: Option<LeaderId>,
    #[prost(message, optional, tag = "3")]
    committed: Option<TailBitmap>,
    #[prost(int64, tag = "4")]
    base_len: i64,
}

/// A v1 segment's bytes for `writes`, one fsync group per write, starting
/// at write `first` (after a checkpoint of `checkpoint`, if given).
fn v1_segment(checkpoint: Option<&Model>, first: u64, writes: &[DurableWrite]) -> Vec<u8> {
    let v1_hard = |h: &HardState| V1HardState {
        voted_for: h.voted_for,
        committer: h.committer,
        committed: Some(h.committed.clone()),
        base_len: h.base_len,
    };
    let mut entries = Vec::new();
    if let Some(m) = checkpoint {
        entries.push(V1Entry {
            index: first - 1,
            batch: first - 1,
            checkpoint: true,
            hard_state: Some(v1_hard(&m.hard_state)),
            delete: vec![],
            put: m.records.values().cloned().collect(),
            snapshot: m.snapshot.as_ref().map(|s| s.encode()),
        });
    }
    for (index, w) in (first..).zip(writes) {
        entries.push(V1Entry {
            index,
            batch: index,
            checkpoint: false,
            hard_state: w.hard_state.as_ref().map(v1_hard),
            delete: w.delete.clone(),
            put: w.put.clone(),
            snapshot: w.snapshot.as_ref().map(|s| s.encode()),
        });
    }
    let mut bytes = Vec::new();
    for e in entries {
        let payload = e.encode_to_vec();
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
    }
    bytes
}

/// A v1 directory as v1 left it after a checkpoint into segment 3 and some
/// writes since, a torn write at the end; returns it and the state it holds.
fn v1_directory(dir: &Path) -> Model {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("FORMAT"), "traftctl-data v1\n").unwrap();
    fs::write(dir.join("LOCK"), "").unwrap();
    let mut at_checkpoint = Model::default();
    let early = [
        DurableWrite { hard_state: Some(hard(1, 0)), ..put(0..12) },
        DurableWrite { hard_state: Some(hard(1, 6)), ..compact(&snapshot(6, 30), 0..6) },
    ];
    at_checkpoint.apply(&early);
    let mut model = at_checkpoint.clone();
    // The checkpoint holds what v1's mirror held: every record, including
    // ones a snapshot covers (v1 kept them).
    let mut checkpoint = at_checkpoint.clone();
    checkpoint.records.insert(5, record(5, "v5"));
    let later = [
        put(12..15),
        DurableWrite { hard_state: Some(hard(2, 10)), ..compact(&snapshot(10, 30), 6..10) },
        DurableWrite { delete: vec![14], ..put([15, 16]) },
    ];
    model.apply(&later);
    let mut bytes = v1_segment(Some(&checkpoint), 3, &later);
    // A torn write: a header promising bytes that never arrived.
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
    fs::write(dir.join("wal-00000003.log"), bytes).unwrap();
    model
}

/// Copies the regular files of `from` into `to`.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Opens an upgraded (or half-upgraded) directory and checks the result.
fn check_upgraded(dir: &Path, model: &Model) {
    let (mut storage, state, _) = open(dir);
    assert_eq!(state, model.state(), "{}", dir.display());
    assert_eq!(storage.durable_writes(), 5);
    assert_eq!(fs::read_to_string(dir.join("FORMAT")).unwrap(), "traftctl-data v2\n");
    assert_eq!(snapshot_files(dir).len(), 1, "{:?}", snapshot_files(dir));
    let seg = only_segment(dir);
    assert_eq!(fs::metadata(&seg).unwrap().len(), TEST_SEGMENT, "{seg:?} is preallocated");
    storage.append(vec![put([40])]).unwrap();
    drop(storage);
    let (_, again, warnings) = open(dir);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(again.records.last().map(|r| r.seq), Some(40));
}

#[test]
fn a_v1_directory_is_upgraded_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v1");
    let model = v1_directory(&dir);
    let (storage, state, warnings) = open(&dir);
    assert_eq!(state, model.state());
    assert_eq!(state.snapshot.as_deref(), Some(&*snapshot(10, 30)));
    assert!(warnings.iter().any(|w| w.contains("upgraded")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("torn write")), "{warnings:?}");
    assert_eq!(only_segment(&dir), segment_path(&dir, 4), "a new segment after the v1 one");
    assert_eq!(snapshot_files(&dir).len(), 1, "the inline snapshot moved to a file");
    drop(storage);
    check_upgraded(&dir, &model);

    // A v1 directory that never held a write.
    let empty = tmp.path().join("v1-empty");
    fs::create_dir_all(&empty).unwrap();
    fs::write(empty.join("FORMAT"), "traftctl-data v1\n").unwrap();
    fs::write(empty.join("wal-00000001.log"), "").unwrap();
    let (storage, state, _) = open(&empty);
    assert_eq!((state, storage.durable_writes()), (DurableState::default(), 0));
}

#[test]
fn a_crash_at_any_step_of_the_upgrade_leaves_a_directory_that_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let v1 = tmp.path().join("v1");
    let model = v1_directory(&v1);
    let done = tmp.path().join("done");
    copy_dir(&v1, &done);
    drop(open(&done));
    let snap = snapshot_files(&done).pop().unwrap();
    let snap_name = snap.file_name().unwrap();
    let new_segment = segment_path(&done, 4);

    // Each step's files as a crash right after it leaves them.
    let steps: [(&str, &FileChange<'_>); 5] = [
        ("snapshot saved", &|d: &Path| {
            fs::copy(&snap, d.join(snap_name)).unwrap();
        }),
        ("new segment written, not named", &|d: &Path| {
            fs::copy(&snap, d.join(snap_name)).unwrap();
            fs::copy(&new_segment, d.join("wal-00000004.log.tmp")).unwrap();
        }),
        ("new segment named", &|d: &Path| {
            fs::copy(&snap, d.join(snap_name)).unwrap();
            fs::copy(&new_segment, d.join("wal-00000004.log")).unwrap();
        }),
        ("new marker written, not renamed", &|d: &Path| {
            fs::copy(&snap, d.join(snap_name)).unwrap();
            fs::copy(&new_segment, d.join("wal-00000004.log")).unwrap();
            fs::write(d.join("FORMAT.tmp"), "traftctl-data v2\n").unwrap();
        }),
        ("marker switched, v1 segment not removed", &|d: &Path| {
            fs::copy(&snap, d.join(snap_name)).unwrap();
            fs::copy(&new_segment, d.join("wal-00000004.log")).unwrap();
            fs::write(d.join("FORMAT"), "traftctl-data v2\n").unwrap();
        }),
    ];
    for (i, (what, crash)) in steps.iter().enumerate() {
        let dir = tmp.path().join(format!("step-{i}"));
        copy_dir(&v1, &dir);
        crash(&dir);
        let (storage, state, _) =
            Storage::open_with(&dir, options(TEST_SEGMENT)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(state, model.state(), "{what}");
        drop(storage);
        check_upgraded(&dir, &model);
    }
}
