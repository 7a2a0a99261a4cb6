//! The WAL through its public API and the files it leaves, including the
//! damage a crash or a failing disk does to them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;

use traftctl::kv::KvState;
use traftctl::pb::cmd::Value;
use traftctl::pb::{Cmd, LeaderId, Record, TailBitmap};
use traftctl::replica::{DurableState, DurableWrite, HardState, Seq};
use traftctl::snapshot::Snapshot;
use traftctl::storage::{Storage, StorageError, StorageOptions};

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
/// the storage's own.
#[derive(Default)]
struct Model {
    hard_state: HardState,
    snapshot: Option<Arc<Snapshot>>,
    records: BTreeMap<Seq, Record>,
}

impl Model {
    fn apply(&mut self, writes: &[DurableWrite]) {
        for w in writes {
            if let Some(h) = &w.hard_state {
                self.hard_state = h.clone();
            }
            if let Some(snap) = &w.snapshot {
                self.snapshot = Some(snap.clone());
            }
            for s in &w.delete {
                self.records.remove(s);
            }
            for r in &w.put {
                self.records.insert(r.seq, r.clone());
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

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("wal-") && name.ends_with(".log")
        })
        .collect();
    v.sort();
    v
}

fn only_segment(dir: &Path) -> PathBuf {
    let segs = segments(dir);
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs[0].clone()
}

/// Entry offsets in a segment, read with the documented framing
/// (u32 LE length, u32 checksum, payload).
fn entry_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut off = 0;
    while off < bytes.len() {
        offsets.push(off);
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        off += 8 + len;
    }
    assert_eq!(off, bytes.len());
    offsets
}

fn open(dir: &Path) -> (Storage, DurableState, Vec<String>) {
    Storage::open(dir).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

#[test]
fn a_new_directory_starts_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (storage, state, warnings) = open(&dir);
    assert_eq!(state, DurableState::default());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(storage.durable_writes(), 0);
    assert_eq!(storage.dir(), dir);
    assert_eq!(fs::read_to_string(dir.join("FORMAT")).unwrap(), "traftctl-data v1\n");
}

#[test]
fn a_missing_nested_data_directory_is_created_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cluster/node-1/data");
    let (mut storage, _, _) = open(&dir);
    storage.append(&[put([0])]).unwrap();
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
    let step = |storage: &mut Storage, model: &mut Model, writes: Vec<DurableWrite>| {
        storage.append(&writes).unwrap();
        model.apply(&writes);
        assert_eq!(storage.state(), &model.state());
        writes.len() as u64
    };
    let mut appended = 0;

    let (mut storage, _, _) = open(tmp.path());
    appended += step(&mut storage, &mut model, vec![put(1..=3)]);
    appended +=
        step(&mut storage, &mut model, vec![DurableWrite { hard_state: Some(hard(1, 0)), ..DurableWrite::default() }]);
    // Replacing records, deleting, and a new hard state in one write.
    appended += step(
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
        appended += step(&mut storage, &mut model, writes);
    }
    appended += step(&mut storage, &mut model, vec![]);
    drop(storage);

    let (mut storage, state, warnings) = open(tmp.path());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
    assert!(state.records.windows(2).all(|w| w[0].seq < w[1].seq), "records are sorted by seq");
    assert_eq!(storage.durable_writes(), appended);

    // Appending after a reopen continues the same log.
    appended +=
        step(&mut storage, &mut model, vec![put([1000]), DurableWrite { delete: vec![2], ..DurableWrite::default() }]);
    drop(storage);
    let (storage, state, _) = open(tmp.path());
    assert_eq!(state, model.state());
    assert_eq!(storage.durable_writes(), appended);
}

/// Three appends (three fsync groups); returns the segment, its bytes and
/// the state after the first two.
fn three_groups(dir: &Path) -> (PathBuf, Vec<u8>, DurableState) {
    let (mut storage, _, _) = open(dir);
    storage.append(&[put([1])]).unwrap();
    storage.append(&[DurableWrite { hard_state: Some(hard(1, 1)), ..put([2]) }]).unwrap();
    let after_two = storage.state().clone();
    storage.append(&[put([3, 4])]).unwrap();
    drop(storage);
    let seg = only_segment(dir);
    let bytes = fs::read(&seg).unwrap();
    (seg, bytes, after_two)
}

#[test]
fn a_torn_tail_is_truncated_with_a_warning() {
    let probe = tempfile::tempdir().unwrap();
    let (_, bytes, _) = three_groups(probe.path());
    let last = *entry_offsets(&bytes).last().unwrap();
    let cuts = [last + 1, last + 4, last + 7, last + 8, last + 9, (last + bytes.len()) / 2, bytes.len() - 1];

    for cut in cuts {
        let tmp = tempfile::tempdir().unwrap();
        let (seg, bytes, after_two) = three_groups(tmp.path());
        fs::write(&seg, &bytes[..cut]).unwrap();

        let (mut storage, state, warnings) = open(tmp.path());
        assert_eq!(state, after_two, "cut at {cut}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains(&seg.display().to_string()), "{warnings:?}");
        assert!(warnings[0].contains(&format!("offset {last}")), "{warnings:?}");
        assert_eq!(fs::metadata(&seg).unwrap().len(), last as u64, "the torn bytes are cut off the file");

        // The log goes on from the last intact write.
        storage.append(&[put([5])]).unwrap();
        drop(storage);
        let (_, state, warnings) = open(tmp.path());
        assert!(warnings.is_empty(), "{warnings:?}");
        let seqs: Vec<Seq> = state.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 5], "cut at {cut}");
    }
}

#[test]
fn a_damaged_or_zero_filled_last_group_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let (seg, bytes, after_two) = three_groups(tmp.path());
    let last = *entry_offsets(&bytes).last().unwrap();

    // A crash after the file grew but before the data reached the disk
    // leaves zeros.
    let mut zeroed = bytes.clone();
    zeroed[last..].fill(0);
    zeroed.extend_from_slice(&[0; 100]);
    fs::write(&seg, &zeroed).unwrap();
    let (storage, state, warnings) = open(tmp.path());
    assert_eq!(state, after_two);
    assert!(warnings[0].contains(&format!("offset {last}")), "{warnings:?}");
    drop(storage);

    // The last group failing its checksum: half of its pages made it.
    let tmp = tempfile::tempdir().unwrap();
    let (seg, mut bytes, after_two) = three_groups(tmp.path());
    let n = bytes.len();
    bytes[n - 2] ^= 0x40;
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

    let err = Storage::open(tmp.path()).unwrap_err();
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
    match Storage::open(tmp.path()).unwrap_err() {
        StorageError::Corrupt { offset, .. } => assert_eq!(offset, second as u64),
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn a_directory_is_used_by_one_storage_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut first, _, _) = open(tmp.path());
    first.append(&[put([1])]).unwrap();

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
    fs::write(tmp.path().join("FORMAT"), "traftctl-data v2\n").unwrap();
    let err = Storage::open(tmp.path()).unwrap_err();
    assert!(matches!(&err, StorageError::BadFormat { found, .. } if found == "traftctl-data v2"), "{err}");
    assert!(err.to_string().contains("traftctl-data v1"), "{err}");

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
    storage.append(&[put([1])]).unwrap();
    drop(storage);
    fs::remove_file(only_segment(tmp.path())).unwrap();
    let err = Storage::open(tmp.path()).unwrap_err();
    assert!(matches!(err, StorageError::Inconsistent { .. }), "{err}");
}

fn small() -> StorageOptions {
    StorageOptions { checkpoint_bytes: 4096 }
}

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
        storage.append(&writes).unwrap();
        model.apply(&writes);
        if !each(storage, &before, &state_before) {
            break;
        }
    }
    appended
}

#[test]
fn checkpoints_bound_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = Storage::open_with(tmp.path(), small()).unwrap();
    let mut model = Model::default();
    let mut max_dir_bytes = 0;
    let appended = churn(&mut storage, &mut model, 2000, |storage, _, _| {
        let bytes: u64 = fs::read_dir(storage.dir()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        max_dir_bytes = max_dir_bytes.max(bytes);
        // The documented bound: before this append (two entries) the
        // segment was below max(threshold, twice its checkpoint), or a new
        // segment would have been started.
        let seg = only_segment(storage.dir());
        let bytes = fs::read(&seg).unwrap();
        let offsets = entry_offsets(&bytes);
        let checkpoint = if seg.ends_with("wal-00000001.log") { 0 } else { offsets[1] - 8 };
        assert!(offsets.len() >= 2);
        let before_append = offsets[offsets.len() - 2];
        assert!(before_append < small().checkpoint_bytes.max(2 * checkpoint as u64) as usize, "{seg:?}");
        true
    });
    assert_eq!(storage.state(), &model.state());
    let seg = only_segment(tmp.path());
    assert!(seg.file_name().unwrap().to_str().unwrap() > "wal-00000010.log", "{seg:?}");
    assert!(appended > 1 << 20, "the test must write far more than the bound ({appended} bytes)");
    assert!(max_dir_bytes < 32 << 10, "the directory grew to {max_dir_bytes} bytes");
    drop(storage);

    let (storage, state, warnings) = Storage::open_with(tmp.path(), small()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
    assert_eq!(storage.durable_writes(), 4000);
}

/// Runs until the first checkpoint and returns the segment from before it
/// and the state from before the append that wrote it.
fn until_checkpoint(dir: &Path) -> (Model, (PathBuf, Vec<u8>), DurableState) {
    let (mut storage, _, _) = Storage::open_with(dir, small()).unwrap();
    let mut model = Model::default();
    let mut found = None;
    churn(&mut storage, &mut model, 1000, |storage, before, state_before| {
        if only_segment(storage.dir()) != before.0 {
            found = Some((before.clone(), state_before.clone()));
            return false;
        }
        true
    });
    let (before, state_before) = found.expect("a checkpoint within 1000 appends");
    (model, before, state_before)
}

#[test]
fn a_crash_before_old_segments_are_removed_recovers_from_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, (old_path, old_bytes), _) = until_checkpoint(tmp.path());
    let new_path = only_segment(tmp.path());
    fs::write(&old_path, &old_bytes).unwrap();
    assert_eq!(segments(tmp.path()).len(), 2);

    let (mut storage, state, warnings) = Storage::open_with(tmp.path(), small()).unwrap();
    assert_eq!(state, model.state());
    assert_eq!(only_segment(tmp.path()), new_path, "the older segment is removed");
    assert!(warnings.iter().any(|w| w.contains("interrupted checkpoint")), "{warnings:?}");
    storage.append(&[put([100_000])]).unwrap();
}

#[test]
fn a_crash_before_the_checkpoint_is_renamed_recovers_from_the_old_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, (old_path, old_bytes), state_before) = until_checkpoint(tmp.path());
    let new_path = only_segment(tmp.path());
    let new_bytes = fs::read(&new_path).unwrap();
    let checkpoint_len = entry_offsets(&new_bytes)[1];
    // As the crash left it: the old segment, and the checkpoint under its
    // temporary name, possibly incomplete.
    fs::write(&old_path, &old_bytes).unwrap();
    fs::write(format!("{}.tmp", new_path.display()), &new_bytes[..checkpoint_len / 2]).unwrap();
    fs::remove_file(&new_path).unwrap();

    let (mut storage, state, warnings) = Storage::open_with(tmp.path(), small()).unwrap();
    assert_eq!(state, state_before);
    assert!(warnings.iter().any(|w| w.contains(".tmp")), "{warnings:?}");
    assert_eq!(segments(tmp.path()), std::slice::from_ref(&old_path));
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 3, "FORMAT, LOCK and the segment");

    // The next append redoes the checkpoint.
    storage.append(&[put([100_000])]).unwrap();
    assert_eq!(only_segment(tmp.path()), new_path);
    drop(storage);
    let (_, state, _) = Storage::open_with(tmp.path(), small()).unwrap();
    assert!(state.records.iter().any(|r| r.seq == 100_000));
}

#[test]
fn a_damaged_checkpoint_stops_the_node() {
    let tmp = tempfile::tempdir().unwrap();
    until_checkpoint(tmp.path());
    let seg = only_segment(tmp.path());
    let mut bytes = fs::read(&seg).unwrap();
    bytes[20] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    match Storage::open_with(tmp.path(), small()).unwrap_err() {
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
    storage.append(&writes).unwrap();
    model.apply(&writes);
    assert_eq!(storage.state(), &model.state());
    assert!(Arc::ptr_eq(storage.state().snapshot.as_ref().unwrap(), &snap), "the written snapshot is kept, not copied");
    // A write without a snapshot keeps the stored one.
    let writes = vec![put([7])];
    storage.append(&writes).unwrap();
    model.apply(&writes);
    drop(storage);

    let (_, state, warnings) = open(tmp.path());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
    assert_eq!(state.snapshot.as_deref(), Some(&*snap));
    let seqs: Vec<Seq> = state.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [4, 5, 6, 7]);
}

#[test]
fn a_later_snapshot_replaces_the_earlier_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = open(tmp.path());
    storage.append(&[put(1..=9), compact(&snapshot(3, 5), 1..3)]).unwrap();
    storage.append(&[compact(&snapshot(6, 5), 3..6)]).unwrap();
    assert_eq!(storage.state().snapshot.as_deref(), Some(&*snapshot(6, 5)));
    drop(storage);
    let (mut storage, state, _) = open(tmp.path());
    assert_eq!(state.snapshot.as_deref(), Some(&*snapshot(6, 5)));

    // Within one fsync group the last snapshot wins too.
    storage.append(&[compact(&snapshot(7, 1), [6]), compact(&snapshot(8, 2), [7]), put([10])]).unwrap();
    drop(storage);
    let (_, state, _) = open(tmp.path());
    assert_eq!(state.snapshot.as_deref(), Some(&*snapshot(8, 2)));
    let seqs: Vec<Seq> = state.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [8, 9, 10]);
}

#[test]
fn a_snapshot_survives_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = Storage::open_with(tmp.path(), small()).unwrap();
    let mut model = Model::default();
    let writes = [compact(&snapshot(0, 20), [])];
    storage.append(&writes).unwrap();
    model.apply(&writes);
    // Two checkpoints: the second is written from a segment that held the
    // snapshot only in its own checkpoint.
    churn(&mut storage, &mut model, 1000, |storage, _, _| only_segment(storage.dir()) < segment_path(storage, 3));
    assert_eq!(only_segment(tmp.path()), segment_path(&storage, 3));
    assert_eq!(storage.state(), &model.state());
    drop(storage);

    let (_, state, warnings) = Storage::open_with(tmp.path(), small()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
    assert_eq!(state.snapshot.as_deref(), Some(&*snapshot(0, 20)));
}

fn segment_path(storage: &Storage, number: u64) -> PathBuf {
    storage.dir().join(format!("wal-{number:08}.log"))
}

/// Three fsync groups, the second storing a snapshot; returns the segment,
/// its bytes, and the offsets of the entries.
fn groups_with_a_snapshot(dir: &Path, snapshot_last: bool) -> (PathBuf, Vec<u8>, Vec<usize>) {
    let (mut storage, _, _) = open(dir);
    storage.append(&[put([1, 2])]).unwrap();
    if snapshot_last {
        storage.append(&[put([3])]).unwrap();
    }
    storage.append(&[compact(&snapshot(2, 10), [1])]).unwrap();
    if !snapshot_last {
        storage.append(&[put([3])]).unwrap();
    }
    drop(storage);
    let seg = only_segment(dir);
    let bytes = fs::read(&seg).unwrap();
    let offsets = entry_offsets(&bytes);
    (seg, bytes, offsets)
}

#[test]
fn a_damaged_snapshot_entry_before_a_later_group_stops_the_node() {
    let tmp = tempfile::tempdir().unwrap();
    let (seg, mut bytes, offsets) = groups_with_a_snapshot(tmp.path(), false);
    // The snapshot is the entry's last field: this byte is inside it.
    bytes[offsets[2] - 20] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    match Storage::open(tmp.path()).unwrap_err() {
        StorageError::Corrupt { file, offset, .. } => {
            assert_eq!(file, seg);
            assert_eq!(offset, offsets[1] as u64);
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert_eq!(fs::read(&seg).unwrap(), bytes, "a failed recovery must not touch the data");

    // The same damage in the last group is a torn write: the snapshot was
    // never acknowledged, and the records it would have replaced are there.
    let tmp = tempfile::tempdir().unwrap();
    let (seg, mut bytes, offsets) = groups_with_a_snapshot(tmp.path(), true);
    let n = bytes.len();
    bytes[n - 20] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    let (_, state, warnings) = open(tmp.path());
    assert!(warnings[0].contains(&format!("offset {}", offsets[2])), "{warnings:?}");
    assert_eq!(state.snapshot, None);
    let seqs: Vec<Seq> = state.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
}

#[test]
fn snapshots_do_not_make_the_log_grow_without_bound() {
    let options = StorageOptions { checkpoint_bytes: 16 << 10 };
    let tmp = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = Storage::open_with(tmp.path(), options.clone()).unwrap();
    let mut model = Model::default();
    let value = "v".repeat(100);
    // Per-entry bytes beyond the records and the snapshot: framing, write
    // numbers, flags, hard state, and each field's key and length.
    const ENTRY_OVERHEAD: usize = 128;
    const FIELD_OVERHEAD: usize = 4;
    let (mut max_state, mut max_append, mut max_dir_bytes, mut written) = (0, 0, 0, 0);
    let mut seq = 1;
    for round in 0..3000 {
        let mut writes = vec![DurableWrite {
            hard_state: Some(hard(round, seq)),
            put: (seq..seq + 3).map(|s| record(s, &value)).collect(),
            ..DurableWrite::default()
        }];
        seq += 3;
        if round % 10 == 9 {
            let snap = snapshot(seq, 40);
            writes.push(compact(&snap, model.records.range(..seq).map(|(s, _)| *s).collect::<Vec<_>>()));
        }
        let append: usize = writes
            .iter()
            .map(|w| {
                let records: usize = w.put.iter().map(|r| r.encoded_len() + FIELD_OVERHEAD).sum();
                let snap = w.snapshot.as_ref().map_or(0, |s| s.encode().len() + FIELD_OVERHEAD);
                ENTRY_OVERHEAD + records + snap + 10 * w.delete.len()
            })
            .sum();
        // What a checkpoint taken before this append would hold.
        let live: usize = model.records.values().map(|r| r.encoded_len() + FIELD_OVERHEAD).sum();
        let snap = model.snapshot.as_ref().map_or(0, |s| s.encode().len() + FIELD_OVERHEAD);
        max_state = max_state.max(ENTRY_OVERHEAD + live + snap);
        max_append = max_append.max(append);
        written += append;

        storage.append(&writes).unwrap();
        model.apply(&writes);
        let bytes: usize =
            fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len() as usize).sum();
        max_dir_bytes = max_dir_bytes.max(bytes);
    }
    // The documented bound, plus FORMAT and LOCK.
    let bound = (options.checkpoint_bytes as usize).max(2 * max_state) + max_append + 64;
    assert!(max_dir_bytes <= bound, "the directory grew to {max_dir_bytes} bytes; the bound is {bound}");
    assert!(written > 50 * bound, "the test must write far more than the bound ({written} bytes, bound {bound})");
    assert!(only_segment(tmp.path()) > segment_path(&storage, 10), "checkpoints were taken");
    drop(storage);

    let (_, state, warnings) = Storage::open_with(tmp.path(), options).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(state, model.state());
    assert!(state.snapshot.is_some());
}
