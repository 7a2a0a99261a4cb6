//! Hostile input, bounded for CI: proptest-driven fuzz targets for what
//! reaches a member from the disk and from the network.
//!
//! Every target runs a few seconds under `cargo test`. Set
//! `TRAFT_FUZZ_CASES=N` to run N cases per target instead, for long local
//! runs. The coverage-guided versions of the same targets are the cargo-fuzz
//! crate in `fuzz/` (see its README).

mod story;

#[path = "fuzz/gen.rs"]
mod generate;

#[path = "fuzz/replica.rs"]
mod replica;

use replica::Delivery;

use std::sync::atomic::Ordering;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use traftctl::pb::{BaseRun, Cmd, LeaderId, LogForwardReq, Record, TailBitmap, VoteReply, VoteReq};
use traftctl::replica::{ClientReply, Message, NodeId, Options, Role, TERM_LEAP};

use story::Cluster;

/// Cases per target: `TRAFT_FUZZ_CASES` if set, else the target's default,
/// chosen to fit a few seconds.
fn cases(default: u32) -> u32 {
    std::env::var("TRAFT_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config(default_cases: u32) -> Config {
    Config { cases: cases(default_cases), failure_persistence: None, ..Config::default() }
}

// ------------------------------------------------------------------ replica

fn delivery() -> impl Strategy<Value = Delivery> {
    (1..=3i64, generate::small_or_edge(), any::<bool>(), generate::any_message())
        .prop_map(|(to, from, aim, msg)| Delivery { to, from, aim, msg })
}

#[test]
fn replica_survives_hostile_messages() {
    let mut runner = TestRunner::new(config(256));
    let result = runner.run(&proptest::collection::vec(delivery(), 1..12), |hostile| {
        replica::replica_under_hostile_input(hostile).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let [refused, admitted] = [0, 1].map(|i| replica::COUNTS[i].load(Ordering::Relaxed));
    eprintln!("hostile messages: {refused} refused at the boundary, {admitted} reached the protocol");
    // Otherwise this would only be testing the boundary.
    assert!(
        admitted > refused / 10,
        "too few hostile messages got past the boundary: {admitted} of {}",
        admitted + refused
    );
}

// ------------------------------------------- regressions for what it found

/// Delivers `msg` to `to` as if from `from`; returns whether the boundary
/// refused it.
fn deliver(c: &mut Cluster, to: NodeId, from: NodeId, msg: Message) -> bool {
    let node = c.nodes.get_mut(&to).unwrap();
    let refused = node.stats().refused_messages;
    node.step(c.now, from, msg);
    let was_refused = node.stats().refused_messages > refused;
    c.collect(to);
    was_refused
}

/// A three-member cluster with a leader and a few committed writes.
fn settled_cluster() -> (Cluster, NodeId) {
    let mut c = Cluster::new(3);
    c.run(3000);
    let leader = c.leader().expect("a leader");
    for i in 0..5u64 {
        c.propose(i, &["set", &format!("k{i}"), "v"]);
    }
    c.run(300);
    (c, leader)
}

fn commits_again(c: &mut Cluster, request: u64) -> bool {
    for attempt in 0..20u64 {
        c.run(1000);
        if c.leader().is_none() {
            continue;
        }
        c.propose(request + attempt, &["set", "after", "1"]);
        c.run(500);
        if matches!(c.replies.get(&(request + attempt)), Some(ClientReply::Proposed { .. })) {
            return true;
        }
    }
    false
}

fn follower_of(c: &Cluster, leader: NodeId) -> NodeId {
    *c.nodes.keys().find(|&&id| id != leader).unwrap()
}

fn forward(committer: LeaderId, logs: Vec<Record>, base_len: i64, runs: Vec<BaseRun>) -> Message {
    Message::Forward(LogForwardReq {
        committer: Some(committer),
        logs,
        committed: Some(TailBitmap::from_prefix(0)),
        base_len,
        base_runs: runs,
        ..Default::default()
    })
}

/// Found by `replica_survives_hostile_messages`: a ballot with term
/// `i64::MAX` was taken as the greatest term seen, and the next campaign
/// overflowed computing `term + 1`.
#[test]
fn a_ballot_at_the_top_of_the_term_space_is_refused() {
    let (mut c, leader) = settled_cluster();
    let to = follower_of(&c, leader);
    assert!(deliver(&mut c, to, 2, forward(LeaderId::new(i64::MAX, 2), vec![], 0, vec![])));
    let vote = VoteReq { candidate: Some(LeaderId::new(i64::MAX - 1, 3)), ..Default::default() };
    assert!(deliver(&mut c, to, 3, Message::Vote(vote)));
    // Far above anything seen, though in range: refused too.
    let leap = LeaderId::new(TERM_LEAP + 100, 2);
    assert!(deliver(&mut c, to, 2, forward(leap, vec![], 0, vec![])));
    c.nodes.remove(&leader);
    assert!(commits_again(&mut c, 100), "no new leader after the old one stopped");
}

fn set_record(author: LeaderId, seq: i64, key: &str) -> Record {
    Record::new(author, seq, Cmd::set_str(key, "forged"), TailBitmap::from_prefix(0), TailBitmap::new(0, [seq]))
}

/// A record at `seq` whose floor is its own seq, so that building it costs
/// nothing however far `seq` is.
fn far_record(author: LeaderId, seq: i64) -> Record {
    let at_seq =
        |seq: i64| TailBitmap { offset: seq, words: vec![1 << (seq & 63) | ((1 << (seq & 63)) - 1)], reclamed: 0 };
    let no_floor = TailBitmap { offset: seq, words: vec![], reclamed: 0 };
    Record {
        author: Some(author),
        seq,
        cmd: Some(Cmd::set_str("far", "x")),
        depends: Some(no_floor),
        overrides: Some(at_seq(seq)),
    }
}

/// Found by `replica_survives_hostile_messages`: a record at seq 2^40 from
/// the committer, whose `Overrides` did not hold its own seq (so its floor,
/// 0, let it in), made the follower grow its `Accepted` bitmap to 2^34
/// words: the process aborted on the allocation. The same record in a
/// grant reached the candidate's log without any floor check.
#[test]
fn a_record_far_beyond_the_log_is_refused_without_allocating() {
    let (mut c, leader) = settled_cluster();
    let ballot = c.nodes[&leader].leader_ballot().unwrap();
    let to = follower_of(&c, leader);
    let log_before = c.nodes[&to].log().clone();
    let mut far = far_record(ballot, 1 << 40);
    far.overrides = Some(TailBitmap::empty());
    assert!(deliver(&mut c, to, leader, forward(ballot, vec![far], 0, vec![])));
    assert_eq!(c.nodes[&to].log(), &log_before, "a refused forward changed the log");
    // Within reach it is an ordinary record.
    let near = 10 + c.nodes[&to].accepted().len();
    assert!(!deliver(&mut c, to, leader, forward(ballot, vec![set_record(ballot, near, "near")], 0, vec![])));
    assert!(commits_again(&mut c, 100));
}

/// Like the one above, in a grant: the merge holds a voter's records
/// without a floor check, so a well-formed record far away was enough.
#[test]
fn a_grant_with_a_record_far_beyond_the_log_is_refused() {
    let (mut c, ballot) = lone_candidate();
    let grant = VoteReply {
        id: 2,
        voted_for: Some(ballot),
        logs: vec![far_record(LeaderId::new(1, 2), 1 << 40)],
        granted: true,
        ..Default::default()
    };
    assert!(deliver(&mut c, 1, 2, Message::VoteReply(grant)));
    assert_ne!(c.nodes[&1].role(), Role::Leader);
}

/// Found by `replica_survives_hostile_messages`: adopting a leader whose
/// base reached 2^60 computed the missing seqs over the whole base (2^54
/// words) before cutting them to one window.
#[test]
fn an_absurd_base_costs_an_adopting_follower_nothing() {
    let (mut c, leader) = settled_cluster();
    let to = follower_of(&c, leader);
    let ballot = c.nodes[&to].voted_for().unwrap();
    let forged = LeaderId::new(ballot.term + 1, 3);
    let base = 1 << 60;
    let runs = vec![BaseRun { start: 0, end: base, author: Some(forged) }];
    assert!(!deliver(&mut c, to, 3, forward(forged, vec![], base, runs)));
    let reply = c.queue.iter().rev().find_map(|(from, _, m)| match m {
        Message::ForwardReply(r) if *from == to => Some(r.clone()),
        _ => None,
    });
    let missing = reply.expect("a reply").missing.expect("missing seqs");
    assert!(missing.len() <= c.nodes[&to].accepted().len() + Options::new(to).window, "{missing}");
    assert!(commits_again(&mut c, 100));
}

/// Found by `replica_survives_hostile_messages`: a forged forward from a
/// higher ballot staged a record at a seq the follower holds committed; on
/// adoption it reached `accept_record` next to the held one (a debug
/// assertion; a release build kept its own silently).
#[test]
fn a_staged_record_that_contradicts_a_committed_one_is_not_taken() {
    let (mut c, leader) = settled_cluster();
    let to = follower_of(&c, leader);
    let committed_seq = c.nodes[&to].log().keys().copied().find(|s| c.nodes[&to].committed().contains(*s)).unwrap();
    let held = c.nodes[&to].log()[&committed_seq].clone();
    let ballot = c.nodes[&to].voted_for().unwrap();
    let forged = LeaderId::new(ballot.term + 1, 3);
    // Base 0: the record is of the forged reign, and adoption is immediate.
    let staged = set_record(forged, committed_seq, "forged");
    assert!(!deliver(&mut c, to, 3, forward(forged, vec![staged], 0, vec![])), "{:?}", c.nodes[&to].last_refusal());
    assert_eq!(c.nodes[&to].committer(), Some(forged));
    assert_eq!(c.nodes[&to].log()[&committed_seq], held, "a committed record was replaced");
    c.nodes.remove(&3);
    c.nodes
        .entry(3)
        .or_insert_with(|| traftctl::replica::Replica::new(Options::new(3), story::majority(&[1, 2, 3]), None, c.now));
    assert!(commits_again(&mut c, 100));
}

/// Found by `replica_survives_hostile_messages`: a forged forward in the
/// name of member 1 at a term it had not reached yet, with a base of 32
/// and no runs. When member 1 then campaigned with that very ballot and
/// won, its followers went on staging the forged base (the adoption was
/// keyed by ballot alone) and never adopted the real one: no commits until
/// the term moved on, and here it never did.
#[test]
fn a_forged_base_does_not_stand_in_for_the_real_leaders() {
    let phantom = forward(LeaderId::new(2, 1), vec![], 32, vec![]);
    let hostile = [(2, 2), (3, 0)].map(|(to, from)| Delivery { to, from, aim: false, msg: phantom.clone() });
    replica::replica_under_hostile_input(hostile.to_vec()).unwrap();
}

/// Member 1 of three, campaigning; nothing is delivered, so it sees only
/// the replies a test makes up.
fn lone_candidate() -> (Cluster, LeaderId) {
    let mut c = Cluster::new(3);
    c.filter = Box::new(|_, _, _| true);
    for _ in 0..400 {
        c.run(10);
        if let Some(b) = c.nodes[&1].voted_for().filter(|_| c.nodes[&1].role() == Role::Candidate) {
            return (c, b);
        }
    }
    panic!("member 1 did not campaign");
}

/// A candidate merges what its voters claim (rule 3). A grant whose
/// `Accepted` claims seqs its `Logs` do not back made the new leader panic
/// ("leader's log does not back seq ... of its base"): refused at the
/// boundary now, like a grant whose records contradict the candidate's log.
#[test]
fn a_grant_that_claims_records_it_does_not_send_is_refused() {
    let (mut c, ballot) = lone_candidate();
    let grant = VoteReply {
        id: 2,
        voted_for: Some(ballot),
        committer: None,
        accepted: Some(TailBitmap::from_prefix(100)),
        granted: true,
        ..Default::default()
    };
    assert!(deliver(&mut c, 1, 2, Message::VoteReply(grant)));
    assert_ne!(c.nodes[&1].role(), Role::Leader);
    let honest = VoteReply { id: 2, voted_for: Some(ballot), granted: true, ..Default::default() };
    assert!(!deliver(&mut c, 1, 2, Message::VoteReply(honest)));
    assert_eq!(c.nodes[&1].role(), Role::Leader);
}

// ---------------------------------------------------- stored bytes: WAL

#[path = "fuzz/targets.rs"]
mod targets;

#[global_allocator]
static ALLOCATOR: targets::Tracking = targets::Tracking;

use targets::{Damage, WalCase, WriteSpec};

fn write_spec() -> impl Strategy<Value = WriteSpec> {
    use proptest::collection::vec;
    (
        vec(0..40i64, 0..3),
        vec(0..40i64, 0..2),
        proptest::option::of(1..5i64),
        proptest::option::weighted(0.15, 0..40i64),
    )
        .prop_map(|(put, delete, vote_term, snapshot)| WriteSpec { put, delete, vote_term, snapshot })
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<u16>().prop_map(|at| Damage::Truncate(at.into())),
        (any::<u16>(), any::<u8>()).prop_map(|(at, bit)| Damage::Flip { at: at.into(), bit }),
        any::<u8>().prop_map(|e| Damage::Duplicate(e.into())),
        any::<u8>().prop_map(|e| Damage::Swap(e.into())),
        (0..40usize).prop_map(Damage::Zeros),
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(at, bytes)| Damage::Overwrite { at: at.into(), bytes }),
    ]
}

fn wal_case() -> impl Strategy<Value = WalCase> {
    let groups = proptest::collection::vec(proptest::collection::vec(write_spec(), 1..4), 1..6);
    (groups, prop_oneof![Just(1u64 << 20), 1..400u64], damage()).prop_map(|(groups, segment_bytes, damage)| WalCase {
        groups,
        segment_bytes,
        damage,
    })
}

#[test]
fn wal_recovery_of_damaged_segments() {
    let mut runner = TestRunner::new(config(512));
    let result = runner.run(&wal_case(), |case| {
        targets::wal_case(&case);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn wal_replay_of_arbitrary_bytes() {
    let mut runner = TestRunner::new(config(2048));
    let bytes = proptest::collection::vec(any::<u8>(), 0..512);
    if let Err(e) = runner.run(&bytes, |data| {
        targets::wal_bytes(&data);
        Ok(())
    }) {
        panic!("{e}");
    }
}

// ------------------------------------------- stored bytes: snapshot, backup

/// A `SnapshotData` of hostile values, encoded: what a peer's chunks or a
/// backup file can hand `Snapshot::decode` with a checksum that matches.
fn snapshot_data() -> impl Strategy<Value = Vec<u8>> {
    use proptest::collection::vec;
    use prost::Message as _;
    let entries = vec(generate::cmd(), 0..4);
    let near = || vec(generate::near_record(), 0..4);
    let records = prop_oneof![generate::records(), near()];
    (prop_oneof![generate::opt_bitmap(), generate::near_opt_bitmap()], entries, records, near()).prop_map(
        |(applied, entries, config_records, tail_records)| {
            traftctl::pb::SnapshotData { applied, entries, config_records, tail_records }.encode_to_vec()
        },
    )
}

/// A snapshot whose applied set has a prefix anywhere (up to 2^61) and a
/// tail of records just above it, whose `Overrides` reach below it: what
/// the tail check has to read.
fn snapshot_with_a_tail() -> impl Strategy<Value = Vec<u8>> {
    use proptest::collection::vec;
    use prost::Message as _;
    let tail = vec((0..130i64, 0..200i64, vec(any::<u64>(), 0..3), generate::cmd()), 0..4);
    (generate::seq().prop_map(|p| p.clamp(0, 1 << 61)), vec(any::<u64>(), 0..3), tail).prop_map(
        |(prefix, words, tail)| {
            let author = Some(LeaderId::new(1, 1));
            let tail_records = tail
                .into_iter()
                .map(|(above, below, words, cmd)| Record {
                    author,
                    seq: prefix + above,
                    cmd: Some(cmd),
                    depends: None,
                    overrides: Some(TailBitmap { offset: (prefix - below).max(0), words, reclamed: 0 }),
                })
                .collect();
            let applied = TailBitmap { offset: prefix, words, reclamed: 0 };
            traftctl::pb::SnapshotData { applied: Some(applied), tail_records, ..Default::default() }.encode_to_vec()
        },
    )
}

#[test]
fn snapshot_decoding_of_hostile_bytes() {
    let mut runner = TestRunner::new(config(2048));
    let bytes = proptest::collection::vec(any::<u8>(), 0..256);
    let input = prop_oneof![snapshot_data(), snapshot_with_a_tail(), bytes];
    if let Err(e) = runner.run(&input, |data| {
        targets::snapshot_bytes(&data);
        Ok(())
    }) {
        panic!("{e}");
    }
}

fn backup() -> impl Strategy<Value = traftctl::backup::Backup> {
    (0..40i64, proptest::collection::btree_map("[a-c]{1,2}", any::<i64>(), 0..4), any::<i64>()).prop_map(
        |(prefix, entries, saved_at_ms)| {
            let mut kv = traftctl::kv::KvState::default();
            for (k, v) in entries {
                kv.apply(&Cmd::set_i64(k, v));
            }
            traftctl::backup::Backup {
                snapshot: traftctl::snapshot::Snapshot {
                    applied: TailBitmap::from_prefix(prefix),
                    kv,
                    ..Default::default()
                },
                config: story::majority(&[1, 2, 3]),
                saved_at_ms,
                leader: Some(LeaderId::new(2, 1)),
                cluster_id: Some(0x7261_6674),
            }
        },
    )
}

#[test]
fn backup_decoding_of_damaged_files() {
    let mut runner = TestRunner::new(config(1024));
    let damage = proptest::collection::vec((any::<usize>(), 1..=255u8), 0..3);
    let case = (backup(), damage, proptest::option::of(any::<usize>()));
    if let Err(e) = runner.run(&case, |(b, damage, keep)| {
        targets::damaged_backup(&b, &damage, keep);
        Ok(())
    }) {
        panic!("{e}");
    }
    let mut runner = TestRunner::new(config(1024));
    if let Err(e) = runner.run(&proptest::collection::vec(any::<u8>(), 0..128), |data| {
        targets::backup_bytes(&data);
        targets::backup_bytes(&targets::framed_backup(&data));
        Ok(())
    }) {
        panic!("{e}");
    }
}

/// Found by `snapshot_decoding_of_hostile_bytes`: a valid snapshot whose
/// applied prefix is far up (2^40) with a tail record whose `Overrides`
/// reach just below the prefix made the tail check build a bitmap from
/// seq 0 to there (2^34 words): the process aborted. It decodes now, and
/// cheaply.
#[test]
fn a_snapshot_whose_tail_overrides_reach_below_a_far_prefix_decodes_cheaply() {
    use prost::Message as _;
    let prefix = 1i64 << 40;
    let author = Some(LeaderId::new(1, 1));
    // Applied: everything below the prefix, and prefix + 1. The tail
    // record at prefix + 1 overrides prefix - 64 (below the prefix, so
    // applied) and itself.
    let overrides = TailBitmap { offset: prefix - 64, words: vec![1, 0b10], reclamed: 0 };
    let seq = prefix + 1;
    let tail = Record { author, seq, cmd: Some(Cmd::set_str("k", "v")), depends: None, overrides: Some(overrides) };
    let applied = TailBitmap { offset: prefix, words: vec![0b10], reclamed: 0 };
    let data = traftctl::pb::SnapshotData { applied: Some(applied), tail_records: vec![tail], ..Default::default() };
    let bytes = data.encode_to_vec();
    let (decoded, largest) = targets::largest_allocation(|| traftctl::snapshot::Snapshot::decode(&bytes));
    let snap = decoded.expect("a valid snapshot");
    assert_eq!(snap.tail().collect::<Vec<_>>(), [seq]);
    assert!(largest < 1 << 20, "decoding allocated {largest} bytes at once");
}

/// A snapshot's applied set is bounded like every seq on the wire, so
/// installing one leaves room for the arithmetic on its prefix.
#[test]
fn a_snapshot_applied_past_the_largest_seq_is_refused() {
    let snap = traftctl::snapshot::Snapshot { applied: TailBitmap::from_prefix(i64::MAX - 5), ..Default::default() };
    let err = traftctl::snapshot::Snapshot::decode(&snap.encode()).unwrap_err();
    assert!(err.to_string().contains("past"), "{err}");
}

// ------------------------------------------- snapshot transfer, by chunk

/// What a hostile or broken network does to one snapshot chunk.
#[derive(Debug, Clone)]
enum ChunkEdit {
    Pass,
    Drop,
    FlipData { at: usize, bit: u8 },
    TruncateData(usize),
    ExtendData(Vec<u8>),
    Offset(i64),
    TotalLen(i64),
    Crc(u32),
    SnapshotId(u64),
    Prefix(i64),
}

fn chunk_edit() -> impl Strategy<Value = ChunkEdit> {
    prop_oneof![
        4 => Just(ChunkEdit::Pass),
        1 => Just(ChunkEdit::Drop),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, bit)| ChunkEdit::FlipData { at, bit }),
        1 => any::<usize>().prop_map(ChunkEdit::TruncateData),
        1 => proptest::collection::vec(any::<u8>(), 1..8).prop_map(ChunkEdit::ExtendData),
        1 => generate::seq().prop_map(ChunkEdit::Offset),
        1 => generate::seq().prop_map(ChunkEdit::TotalLen),
        1 => any::<u32>().prop_map(ChunkEdit::Crc),
        1 => prop_oneof![Just(0u64), any::<u64>()].prop_map(ChunkEdit::SnapshotId),
        1 => generate::seq().prop_map(ChunkEdit::Prefix),
    ]
}

/// Drops the message when it returns true.
fn edit_chunk(edit: &ChunkEdit, c: &mut traftctl::pb::SnapshotChunk) -> bool {
    match edit {
        ChunkEdit::Pass => {}
        ChunkEdit::Drop => return true,
        ChunkEdit::FlipData { at, bit } if !c.data.is_empty() => {
            let at = at % c.data.len();
            c.data[at] ^= 1 << (bit % 8);
        }
        ChunkEdit::FlipData { .. } => {}
        ChunkEdit::TruncateData(n) => c.data.truncate(n % (c.data.len() + 1)),
        ChunkEdit::ExtendData(bytes) => c.data.extend_from_slice(bytes),
        ChunkEdit::Offset(o) => c.offset = *o,
        ChunkEdit::TotalLen(t) => c.total_len = *t,
        ChunkEdit::Crc(crc) => c.crc = *crc,
        ChunkEdit::SnapshotId(id) => c.snapshot_id = *id,
        ChunkEdit::Prefix(p) => c.prefix = *p,
    }
    false
}

/// A follower misses enough of the log to need the leader's snapshot, which
/// reaches it in 16-byte chunks that `edits` damage, one edit per chunk.
/// It must never panic or install anything but the leader's state, and
/// once the chunks arrive intact it catches up.
fn snapshot_transfer_under_damage(edits: Vec<ChunkEdit>) -> Result<(), TestCaseError> {
    let mut c = Cluster::with(3, |o| {
        o.snapshot_every = 5;
        o.compact_retain = 0;
        o.snapshot_chunk_bytes = 16;
    });
    c.run(3000);
    let leader = c.leader().expect("a leader");
    let lagger = follower_of(&c, leader);
    c.filter = Box::new(move |from, to, _| from == lagger || to == lagger);
    for i in 0..30u64 {
        c.propose(i, &["set", &format!("k{}", i % 7), &i.to_string()]);
        c.run(20);
    }
    c.run(500);
    let edits = std::rc::Rc::new(std::cell::RefCell::new(edits.into_iter()));
    let pending = edits.clone();
    c.filter = Box::new(move |_, to, m| match m {
        Message::SnapshotChunk(chunk) if to == lagger => {
            pending.borrow_mut().next().is_some_and(|edit| edit_chunk(&edit, chunk))
        }
        _ => false,
    });
    for _ in 0..100 {
        c.run(100);
        if edits.borrow().len() == 0 {
            break;
        }
    }
    c.filter = Box::new(|_, _, _| false);
    let mut caught_up = false;
    for _ in 0..100 {
        c.run(100);
        let Some(leader) = c.leader() else { continue };
        if c.nodes[&lagger].applied() == c.nodes[&leader].applied() {
            prop_assert_eq!(c.nodes[&lagger].kv(), c.nodes[&leader].kv(), "same applied set, different state");
            caught_up = true;
            break;
        }
    }
    prop_assert!(caught_up, "the lagging member never caught up once the chunks arrived intact");
    prop_assert!(c.nodes[&lagger].stats().snapshots_installed >= 1, "it caught up without a snapshot");
    Ok(())
}

#[test]
fn snapshot_transfer_of_damaged_chunks() {
    let mut runner = TestRunner::new(config(256));
    let result = runner.run(&proptest::collection::vec(chunk_edit(), 0..40), snapshot_transfer_under_damage);
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ------------------------------------------- the wire: running members

mod wire {
    //! Hostile requests over gRPC to a running three-member cluster
    //! (in-process `node::start` on 127.0.0.1), as valid protobuf with
    //! hostile values and as raw garbage on the HTTP/2 stream and the TCP
    //! connection.

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use prost::bytes::{Buf, BufMut};
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use tonic::transport::Channel;
    use traftctl::node::{self, Listeners, NodeConfig, NodeHandle};
    use traftctl::pb::t_raft_admin_client::TRaftAdminClient;
    use traftctl::pb::t_raft_client::TRaftClient;
    use traftctl::pb::t_raft_snapshot_client::TRaftSnapshotClient;
    use traftctl::pb::{self, ClusterConfig, Cmd};
    use traftctl::replica::{Message, check_message};

    use super::generate;

    /// Sends bytes as a gRPC message as they are, and returns the reply's
    /// bytes: garbage that reaches the decoder of each method.
    #[derive(Debug, Clone, Default)]
    struct RawCodec;

    impl Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = RawCodec;
        type Decoder = RawCodec;
        fn encoder(&mut self) -> RawCodec {
            RawCodec
        }
        fn decoder(&mut self) -> RawCodec {
            RawCodec
        }
    }

    impl Encoder for RawCodec {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }

    impl Decoder for RawCodec {
        type Item = Vec<u8>;
        type Error = tonic::Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
            let n = src.remaining();
            Ok(Some(src.copy_to_bytes(n).to_vec()))
        }
    }

    const PATHS: &[&str] = &[
        "/TRaft/Vote",
        "/TRaft/LogForward",
        "/TRaft/Propose",
        "/TRaftSnapshot/Fetch",
        "/TRaftAdmin/Status",
        "/TRaftAdmin/Get",
        "/TRaftAdmin/ChangeConfig",
        "/TRaftAdmin/TransferLeadership",
        "/TRaftAdmin/HashKV",
        "/TRaftAdmin/SnapshotSave",
        "/TRaftAdmin/Log",
        "/TRaftAdmin/Watch",
        "/grpc.health.v1.Health/Check",
        "/NoSuch/Method",
    ];

    #[derive(Debug, Clone)]
    enum Request {
        Vote(pb::VoteReq),
        Forward(pb::LogForwardReq),
        Fetch(pb::SnapshotReq),
        Propose(Cmd),
        Get(pb::GetReq),
        ChangeConfig(pb::ConfigChangeReq),
        Transfer(pb::TransferLeadershipReq),
        HashKv,
        Log(pb::LogReq),
        SnapshotSave(pb::SnapshotReq),
        Status,
        Watch,
        RawMessage { path: &'static str, bytes: Vec<u8> },
        RawTcp { preface: bool, bytes: Vec<u8> },
    }

    /// Everything but peer messages a correct member could send: client and
    /// admin requests (a configuration change only as a dry run, or one the
    /// checks refuse), malformed peer messages, and garbage.
    fn harmless_request() -> impl Strategy<Value = Request> {
        let malformed = generate::message().prop_filter("refused at the boundary", |m| check_message(m).is_err());
        let peer = malformed.prop_filter_map("a request", |m| match m {
            Message::Vote(v) => Some(Request::Vote(v)),
            Message::Forward(f) => Some(Request::Forward(f)),
            Message::SnapshotReq(r) => Some(Request::Fetch(r)),
            _ => None,
        });
        let get = ("[ -~]{0,8}", -2..4i32).prop_map(|(key, consistency)| pb::GetReq { key, consistency });
        let change = (proptest::option::of(generate::config()), any::<bool>(), any::<bool>()).prop_map(
            |(target, force, dry_run)| {
                let refused = target.as_ref().is_none_or(|t| t.validate().is_err());
                pb::ConfigChangeReq { target, force, dry_run: dry_run || !refused }
            },
        );
        let transfer = generate::small_or_edge().prop_map(|to| pb::TransferLeadershipReq { to });
        let log = (generate::seq(), generate::seq()).prop_map(|(from, limit)| pb::LogReq { from, limit });
        let raw = (0..PATHS.len(), proptest::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(i, bytes)| Request::RawMessage { path: PATHS[i], bytes });
        let tcp = (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(preface, bytes)| Request::RawTcp { preface, bytes });
        prop_oneof![
            3 => peer,
            2 => generate::cmd().prop_map(Request::Propose),
            1 => get.prop_map(Request::Get),
            1 => change.prop_map(Request::ChangeConfig),
            1 => transfer.prop_map(Request::Transfer),
            1 => Just(Request::HashKv),
            1 => log.prop_map(Request::Log),
            1 => generate::snapshot_req().prop_map(Request::SnapshotSave),
            1 => Just(Request::Status),
            1 => Just(Request::Watch),
            2 => raw,
            1 => tcp,
        ]
    }

    /// Peer messages that are well formed and plausible: forged ballots,
    /// bases and commits a correct member could have sent.
    fn forged_request() -> impl Strategy<Value = Request> {
        generate::any_message().prop_filter_map("a request", |m| match m {
            Message::Vote(v) => Some(Request::Vote(v)),
            Message::Forward(f) => Some(Request::Forward(f)),
            Message::SnapshotReq(r) => Some(Request::Fetch(r)),
            _ => None,
        })
    }

    async fn channel(addr: std::net::SocketAddr) -> Option<Channel> {
        let ep = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).ok()?;
        let ep = ep.connect_timeout(Duration::from_secs(2)).timeout(Duration::from_secs(4));
        ep.connect().await.ok()
    }

    /// Sends one request and forgets the answer: only what it does to the
    /// members counts.
    async fn send(addr: std::net::SocketAddr, req: Request) {
        if let Request::RawTcp { preface, bytes } = req {
            let _ = tokio::task::spawn_blocking(move || {
                use std::io::{Read, Write};
                let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else { return };
                let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
                if preface {
                    let _ = s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
                }
                let _ = s.write_all(&bytes);
                let _ = s.read(&mut [0; 256]);
            })
            .await;
            return;
        }
        let Some(ch) = channel(addr).await else { return };
        let (mut raft, mut admin) = (TRaftClient::new(ch.clone()), TRaftAdminClient::new(ch.clone()));
        let _ = match req {
            Request::Vote(v) => raft.vote(v).await.map(drop),
            Request::Forward(f) => raft.log_forward(f).await.map(drop),
            Request::Fetch(r) => TRaftSnapshotClient::new(ch).fetch(r).await.map(drop),
            Request::Propose(c) => raft.propose(c).await.map(drop),
            Request::Get(g) => admin.get(g).await.map(drop),
            Request::ChangeConfig(c) => admin.change_config(c).await.map(drop),
            Request::Transfer(t) => admin.transfer_leadership(t).await.map(drop),
            Request::HashKv => admin.hash_kv(pb::HashKvReq {}).await.map(drop),
            Request::Log(l) => admin.log(l).await.map(drop),
            Request::SnapshotSave(r) => admin.snapshot_save(r).await.map(drop),
            Request::Status => admin.status(pb::StatusReq {}).await.map(drop),
            Request::Watch => admin.watch(pb::WatchReq {}).await.map(drop),
            Request::RawMessage { path, bytes } => {
                let mut grpc = tonic::client::Grpc::new(ch);
                if grpc.ready().await.is_err() {
                    return;
                }
                let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
                grpc.unary(tonic::Request::new(bytes), path, RawCodec).await.map(drop)
            }
            Request::RawTcp { .. } => unreachable!("handled above"),
        };
    }

    struct Members {
        handles: Vec<NodeHandle>,
        _dirs: Vec<tempfile::TempDir>,
    }

    async fn start_members() -> Members {
        let mut listeners = Vec::new();
        for _ in 0..3 {
            listeners.push(node::bind("127.0.0.1:0".parse().unwrap()).await.unwrap());
        }
        let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let config = ClusterConfig::majority((1..=3).map(|id| (id, addrs[id as usize - 1].to_string()))).unwrap();
        let mut handles = Vec::new();
        let mut dirs = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let mut cfg = NodeConfig::new(i as i64 + 1, config.clone(), dir.path().join("data"));
            // Snapshots and compaction happen during the run.
            cfg.options.snapshot_every = 40;
            cfg.options.compact_retain = 8;
            handles.push(node::start(cfg, Listeners { client: listener, peer: None }).await.unwrap());
            dirs.push(dir);
        }
        Members { handles, _dirs: dirs }
    }

    /// Every member answers `Status` over gRPC, within a bound.
    async fn all_answer(m: &Members) -> Result<(), String> {
        for h in &m.handles {
            let status = async {
                let mut admin = TRaftAdminClient::new(channel(h.addr).await?);
                admin.status(pb::StatusReq {}).await.ok()
            };
            if tokio::time::timeout(Duration::from_secs(5), status).await.ok().flatten().is_none() {
                return Err(format!("member {} stopped answering Status", h.id));
            }
            if let Some(why) = h.fatal_error() {
                return Err(format!("member {} stopped: {why}", h.id));
            }
        }
        Ok(())
    }

    async fn leader(m: &Members) -> Option<std::net::SocketAddr> {
        for h in &m.handles {
            if h.status().await.is_ok_and(|s| s.role == traftctl::replica::Role::Leader) {
                return Some(h.addr);
            }
        }
        None
    }

    /// A real write at the leader, retried for up to `bound`: true once
    /// acknowledged.
    async fn write(m: &Members, key: &str, value: i64, bound: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < bound {
            if let Some(addr) = leader(m).await
                && let Some(ch) = channel(addr).await
                && let Ok(r) = TRaftClient::new(ch).propose(Cmd::set_i64(key, value)).await
                && r.get_ref().ok
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// A linearizable read at the leader, retried for up to `bound`.
    async fn read(m: &Members, key: &str, bound: Duration) -> Option<Option<pb::cmd::Value>> {
        let start = Instant::now();
        while start.elapsed() < bound {
            if let Some(addr) = leader(m).await
                && let Some(ch) = channel(addr).await
            {
                let req = pb::GetReq { key: key.into(), consistency: pb::ReadConsistency::Linearizable as i32 };
                if let Ok(r) = TRaftAdminClient::new(ch).get(req).await
                    && r.get_ref().ok
                {
                    return Some(r.into_inner().value.and_then(|v| v.value));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Set by the panic hook when a thread of the members' runtime panics.
    static MEMBER_PANICKED: AtomicBool = AtomicBool::new(false);
    const RUNTIME_THREADS: &str = "hostile-members";

    /// The runtime the members run on; a panic on one of its threads (the
    /// driver, a handler) is noted, since tokio would otherwise swallow it.
    fn members_runtime() -> tokio::runtime::Runtime {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if std::thread::current().name().is_some_and(|n| n.starts_with(RUNTIME_THREADS)) {
                    MEMBER_PANICKED.store(true, Ordering::SeqCst);
                }
                previous(info);
            }));
        });
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(RUNTIME_THREADS)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Sends `cases` requests from `strategy` (eight at a time) to random
    /// members; every `write_every` requests, a real write. Returns the
    /// keys written and acknowledged.
    async fn barrage(
        m: &Members,
        strategy: &impl Strategy<Value = Request>,
        cases: u32,
        prefix: &str,
    ) -> Result<Vec<(String, i64)>, String> {
        let mut runner = TestRunner::new(super::config(cases));
        let mut acked = Vec::new();
        let mut in_flight = tokio::task::JoinSet::new();
        let mut recent = std::collections::VecDeque::new();
        for i in 0..cases {
            let req = strategy.new_tree(&mut runner).map_err(|e| e.to_string())?.current();
            let addr = m.handles[i as usize % 3].addr;
            recent.push_back(format!("{req:?}"));
            if recent.len() > 8 {
                recent.pop_front();
            }
            in_flight.spawn(tokio::time::timeout(Duration::from_secs(10), send(addr, req)));
            while in_flight.len() >= 8 {
                in_flight.join_next().await;
            }
            if i % 16 == 15 {
                let key = format!("{prefix}-{i}");
                if write(m, &key, i64::from(i), Duration::from_secs(3)).await {
                    acked.push((key, i64::from(i)));
                }
                if let Err(e) = all_answer(m).await {
                    return Err(format!("{e}; the last requests sent:\n{}", Vec::from(recent).join("\n")));
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
        all_answer(m).await.map_err(|e| format!("{e}; the last requests sent:\n{}", Vec::from(recent).join("\n")))?;
        Ok(acked)
    }

    /// Member 3 of the cluster, played by the test: it answers every vote,
    /// forward and snapshot fetch with hostile replies (arbitrary, or aimed
    /// at the ballot it was asked about), and forwards forged records with
    /// a high `SnapshotPrefix` so that the real members fetch its
    /// "snapshot" in hostile chunks.
    struct HostilePeer {
        runner: std::sync::Mutex<TestRunner>,
        /// Calls answered, by kind: votes, forwards, snapshot fetches.
        answered: [std::sync::atomic::AtomicU64; 3],
    }

    impl HostilePeer {
        fn draw<T: std::fmt::Debug>(&self, s: impl Strategy<Value = T>) -> T {
            let mut runner = self.runner.lock().unwrap_or_else(|e| e.into_inner());
            s.new_tree(&mut runner).expect("a value").current()
        }
    }

    #[tonic::async_trait]
    impl pb::t_raft_server::TRaft for HostilePeer {
        async fn vote(
            &self,
            req: tonic::Request<pb::VoteReq>,
        ) -> Result<tonic::Response<pb::VoteReply>, tonic::Status> {
            self.answered[0].fetch_add(1, Ordering::Relaxed);
            let mut reply = self.draw(prop_oneof![
                generate::vote_reply(),
                generate::near_message().prop_filter_map("a vote reply", |m| match m {
                    Message::VoteReply(r) => Some(r),
                    _ => None,
                })
            ]);
            if self.draw(any::<bool>()) {
                reply.voted_for = req.get_ref().candidate;
                reply.committer = req.get_ref().committer;
                reply.granted = true;
            }
            Ok(tonic::Response::new(reply))
        }

        async fn log_forward(
            &self,
            req: tonic::Request<pb::LogForwardReq>,
        ) -> Result<tonic::Response<pb::LogForwardReply>, tonic::Status> {
            self.answered[1].fetch_add(1, Ordering::Relaxed);
            let mut reply = self.draw(generate::forward_reply());
            if self.draw(any::<bool>()) {
                reply.voted_for = req.get_ref().committer;
                reply.committer = req.get_ref().committer;
                reply.forward_id = req.get_ref().forward_id;
                reply.ok = true;
            }
            Ok(tonic::Response::new(reply))
        }

        async fn propose(&self, _: tonic::Request<Cmd>) -> Result<tonic::Response<pb::ProposeReply>, tonic::Status> {
            Err(tonic::Status::unimplemented("a hostile peer"))
        }
    }

    #[tonic::async_trait]
    impl pb::t_raft_snapshot_server::TRaftSnapshot for HostilePeer {
        async fn fetch(
            &self,
            req: tonic::Request<pb::SnapshotReq>,
        ) -> Result<tonic::Response<pb::SnapshotChunk>, tonic::Status> {
            self.answered[2].fetch_add(1, Ordering::Relaxed);
            let mut chunk = self.draw(generate::snapshot_chunk());
            if self.draw(any::<bool>()) {
                // Where the fetch is: gets the chunk past the offset check.
                chunk.offset = req.get_ref().offset;
                chunk.snapshot_id = req.get_ref().snapshot_id.max(1);
            }
            Ok(tonic::Response::new(chunk))
        }
    }

    /// Members 1 and 2, real, with member 3 the hostile peer above: a
    /// quorum of real members, every reply from the third one hostile.
    #[test]
    fn running_members_survive_a_hostile_peer() {
        let rt = members_runtime();
        rt.block_on(async {
            let mut listeners = Vec::new();
            for _ in 0..3 {
                listeners.push(node::bind("127.0.0.1:0".parse().unwrap()).await.unwrap());
            }
            let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
            let config = ClusterConfig::majority((1..=3).map(|id| (id, addrs[id as usize - 1].to_string()))).unwrap();
            let runner = std::sync::Mutex::new(TestRunner::new(super::config(1)));
            let peer = std::sync::Arc::new(HostilePeer { runner, answered: Default::default() });
            let fake = listeners.pop().unwrap();
            let server = tonic::transport::Server::builder()
                .add_service(pb::t_raft_server::TRaftServer::from_arc(peer.clone()))
                .add_service(pb::t_raft_snapshot_server::TRaftSnapshotServer::from_arc(peer.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(fake));
            let server = tokio::spawn(server);
            let mut handles = Vec::new();
            let mut dirs = Vec::new();
            for (i, listener) in listeners.into_iter().enumerate() {
                let dir = tempfile::tempdir().unwrap();
                let mut cfg = NodeConfig::new(i as i64 + 1, config.clone(), dir.path().join("data"));
                cfg.options.snapshot_every = 40;
                cfg.options.compact_retain = 8;
                handles.push(node::start(cfg, Listeners { client: listener, peer: None }).await.unwrap());
                dirs.push(dir);
            }
            let m = Members { handles, _dirs: dirs };
            assert!(write(&m, "first", 1, Duration::from_secs(20)).await, "the cluster never committed a first write");

            // Forged forwards in member 3's name, pointing at a snapshot
            // only it "has".
            let cases = super::cases(120);
            let mut runner = TestRunner::new(super::config(cases));
            for i in 0..cases {
                let mut f = generate::forward().new_tree(&mut runner).unwrap().current();
                let status = m.handles[0].status().await.unwrap();
                let term = status.status.voted_for.map_or(1, |v| v.term);
                f.committer = Some(pb::LeaderId::new(term + i64::from(i % 3 == 0), 3));
                f.snapshot_prefix = 1 << 20;
                send(m.handles[i as usize % 2].addr, Request::Forward(f)).await;
                if i % 16 == 15 {
                    all_answer(&m).await.unwrap();
                    write(&m, &format!("during-{i}"), 1, Duration::from_secs(2)).await;
                }
            }
            // The replies stay hostile; the two real members must still
            // commit and read back.
            all_answer(&m).await.unwrap();
            assert!(write(&m, "after", 7, Duration::from_secs(30)).await, "no write commits next to a hostile peer");
            let got = read(&m, "after", Duration::from_secs(20)).await;
            assert_eq!(got, Some(Some(pb::cmd::Value::Vi64(7))));
            assert!(!MEMBER_PANICKED.load(Ordering::SeqCst), "a member's thread panicked (see the output)");
            let answered = peer.answered.each_ref().map(|n| n.load(Ordering::Relaxed));
            eprintln!("the hostile peer answered {answered:?} votes, forwards and snapshot fetches");
            assert!(answered[1] > 0 && answered[2] > 0, "the hostile replies never reached a member: {answered:?}");
            for h in m.handles {
                h.begin_shutdown();
                h.shutdown().await;
            }
            server.abort();
        });
    }

    /// The members never panic or stop and keep answering `Status`; under
    /// client, admin, malformed and garbage input every acknowledged write
    /// is read back; after forged-but-well-formed peer messages too the
    /// cluster commits new writes and reads them back.
    #[test]
    fn running_members_survive_hostile_requests() {
        let rt = members_runtime();
        rt.block_on(async {
            let m = start_members().await;
            assert!(write(&m, "first", 1, Duration::from_secs(20)).await, "the cluster never committed a first write");

            let acked = barrage(&m, &harmless_request(), super::cases(160), "real").await.unwrap();
            assert!(!MEMBER_PANICKED.load(Ordering::SeqCst), "a member's thread panicked (see the output)");
            assert!(!acked.is_empty(), "no real write was acknowledged among the hostile requests");
            for (key, value) in &acked {
                let got = read(&m, key, Duration::from_secs(20)).await;
                assert_eq!(got, Some(Some(pb::cmd::Value::Vi64(*value))), "acknowledged write {key} lost");
            }

            barrage(&m, &forged_request(), super::cases(80), "forged").await.unwrap();
            assert!(!MEMBER_PANICKED.load(Ordering::SeqCst), "a member's thread panicked (see the output)");
            assert!(write(&m, "after", 7, Duration::from_secs(30)).await, "no write commits after forged messages");
            let got = read(&m, "after", Duration::from_secs(20)).await;
            assert_eq!(got, Some(Some(pb::cmd::Value::Vi64(7))));

            for h in m.handles {
                h.begin_shutdown();
                h.shutdown().await;
            }
        });
    }
}
