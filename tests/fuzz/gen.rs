//! Generators of hostile values for the fuzz targets: everything a peer or
//! client could put on the wire, weighted towards the edges (negative,
//! huge, `i64::MAX`) and towards values close enough to a real cluster's
//! state to get past the first checks.

#![allow(dead_code)] // tests/fuzz.rs and the cargo-fuzz crate use different parts

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use traftctl::pb::cmd::Value;
use traftctl::pb::{
    BaseRun, ClusterConfig, Cmd, LeaderId, LogForwardReply, LogForwardReq, Record, ReplicaInfo, SnapshotChunk,
    SnapshotReq, TailBitmap, VoteReply, VoteReq,
};
use traftctl::replica::Message;

/// A seq or length: mostly small (near a test cluster's log), sometimes an
/// edge of the type or absurdly large.
pub fn seq() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0..80i64,
        1 => -3..0i64,
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        1 => (20u32..62).prop_map(|b| 1i64 << b),
        1 => any::<i64>(),
    ]
}

/// A member id or term: mostly those of a three-member test cluster.
pub fn small_or_edge() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 1..5i64,
        1 => Just(0i64),
        1 => -2..0i64,
        1 => Just(i64::MAX),
        1 => any::<i64>(),
    ]
}

pub fn ballot() -> impl Strategy<Value = LeaderId> {
    (small_or_edge(), small_or_edge()).prop_map(|(term, id)| LeaderId { term, id })
}

pub fn opt_ballot() -> impl Strategy<Value = Option<LeaderId>> {
    option::weighted(0.9, ballot())
}

pub fn bitmap() -> impl Strategy<Value = TailBitmap> {
    (seq(), vec(any::<u64>(), 0..4), any::<i64>()).prop_map(|(offset, words, reclamed)| TailBitmap {
        offset,
        words,
        reclamed,
    })
}

pub fn opt_bitmap() -> impl Strategy<Value = Option<TailBitmap>> {
    option::weighted(0.9, bitmap())
}

pub fn config() -> impl Strategy<Value = ClusterConfig> {
    let info = || (small_or_edge(), "[a-z0-9.:]{0,12}", -2..66i64);
    let members = btree_map(small_or_edge(), info(), 0..4);
    let learners = btree_map(small_or_edge(), info(), 0..2);
    (members, vec(any::<u64>(), 0..3), learners).prop_map(|(members, quorums, learners)| {
        let infos = |m: std::collections::BTreeMap<i64, (i64, String, i64)>| {
            m.into_iter().map(|(k, (id, addr, position))| (k, ReplicaInfo { id, addr, position })).collect()
        };
        ClusterConfig { members: infos(members), quorums, learners: infos(learners), next: None }
    })
}

pub fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Vi64),
        "[ -~]{0,8}".prop_map(Value::VStr),
        config().prop_map(Value::VClusterConfig),
    ]
}

pub fn cmd() -> impl Strategy<Value = Cmd> {
    let op = prop_oneof![
        Just("set".to_string()),
        Just("del".to_string()),
        Just("incr".to_string()),
        Just("config".to_string()),
        Just("noop".to_string()),
        "[ -~]{0,6}",
    ];
    (op, prop_oneof![Just("k".to_string()), "[a-c]{0,2}"], option::of(value())).prop_map(|(op, key, value)| Cmd {
        op,
        key,
        value,
    })
}

pub fn record() -> impl Strategy<Value = Record> {
    (opt_ballot(), seq(), option::weighted(0.9, cmd()), opt_bitmap(), opt_bitmap())
        .prop_map(|(author, seq, cmd, depends, overrides)| Record { author, seq, cmd, depends, overrides })
}

pub fn records() -> impl Strategy<Value = Vec<Record>> {
    vec(record(), 0..4)
}

pub fn vote_req() -> impl Strategy<Value = VoteReq> {
    (opt_ballot(), opt_ballot(), opt_bitmap(), opt_ballot()).prop_map(
        |(candidate, committer, accepted, transfer_from)| VoteReq { candidate, committer, accepted, transfer_from },
    )
}

pub fn vote_reply() -> impl Strategy<Value = VoteReply> {
    (
        small_or_edge(),
        opt_ballot(),
        opt_ballot(),
        opt_bitmap(),
        opt_bitmap(),
        records(),
        any::<bool>(),
        -1..7i32,
        seq(),
        seq(),
    )
        .prop_map(
            |(
                id,
                voted_for,
                committer,
                accepted,
                committed,
                logs,
                granted,
                refusal,
                applied_prefix,
                compacted_prefix,
            )| {
                VoteReply {
                    id,
                    voted_for,
                    committer,
                    accepted,
                    committed,
                    logs,
                    granted,
                    refusal,
                    applied_prefix,
                    compacted_prefix,
                }
            },
        )
}

pub fn base_run() -> impl Strategy<Value = BaseRun> {
    (seq(), seq(), opt_ballot()).prop_map(|(start, end, author)| BaseRun { start, end, author })
}

pub fn forward() -> impl Strategy<Value = LogForwardReq> {
    (opt_ballot(), records(), opt_bitmap(), seq(), vec(base_run(), 0..3), any::<u64>(), seq(), any::<bool>()).prop_map(
        |(committer, logs, committed, base_len, base_runs, forward_id, snapshot_prefix, campaign_now)| LogForwardReq {
            committer,
            logs,
            committed,
            base_len,
            base_runs,
            forward_id,
            snapshot_prefix,
            campaign_now,
        },
    )
}

pub fn forward_reply() -> impl Strategy<Value = LogForwardReply> {
    (
        any::<bool>(),
        opt_ballot(),
        opt_bitmap(),
        opt_bitmap(),
        opt_ballot(),
        opt_bitmap(),
        seq(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(ok, voted_for, accepted, committed, committer, missing, applied_prefix, need_snapshot, forward_id)| {
                LogForwardReply {
                    ok,
                    voted_for,
                    accepted,
                    committed,
                    committer,
                    missing,
                    applied_prefix,
                    need_snapshot,
                    forward_id,
                }
            },
        )
}

pub fn snapshot_req() -> impl Strategy<Value = SnapshotReq> {
    (prop_oneof![Just(0u64), 1..4u64, any::<u64>()], seq(), seq(), small_or_edge())
        .prop_map(|(snapshot_id, offset, min_prefix, id)| SnapshotReq { snapshot_id, offset, min_prefix, id })
}

pub fn snapshot_chunk() -> impl Strategy<Value = SnapshotChunk> {
    (prop_oneof![Just(0u64), 1..4u64, any::<u64>()], seq(), vec(any::<u8>(), 0..64), seq(), seq(), any::<u32>())
        .prop_map(|(snapshot_id, offset, data, total_len, prefix, crc)| SnapshotChunk {
            snapshot_id,
            offset,
            data,
            total_len,
            prefix,
            crc,
        })
}

pub fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        vote_req().prop_map(Message::Vote),
        vote_reply().prop_map(Message::VoteReply),
        forward().prop_map(Message::Forward),
        forward_reply().prop_map(Message::ForwardReply),
        snapshot_req().prop_map(Message::SnapshotReq),
        snapshot_chunk().prop_map(Message::SnapshotChunk),
    ]
}

// ---- plausible: in range, so that most of it gets past the boundary and
// ---- reaches the protocol, where only the state decides what it means.

pub fn near_seq() -> impl Strategy<Value = i64> {
    0..72i64
}

pub fn near_ballot() -> impl Strategy<Value = LeaderId> {
    (1..6i64, 1..4i64).prop_map(|(term, id)| LeaderId { term, id })
}

pub fn near_opt_ballot() -> impl Strategy<Value = Option<LeaderId>> {
    option::weighted(0.9, near_ballot())
}

pub fn near_bitmap() -> impl Strategy<Value = TailBitmap> {
    (near_seq(), vec(any::<u64>(), 0..3)).prop_map(|(offset, words)| TailBitmap { offset, words, reclamed: 0 })
}

pub fn near_opt_bitmap() -> impl Strategy<Value = Option<TailBitmap>> {
    option::weighted(0.9, near_bitmap())
}

/// A record shaped as a leader builds one (it overrides itself, its floor
/// and dependencies lie below it), with arbitrary content.
pub fn near_record() -> impl Strategy<Value = Record> {
    (near_ballot(), near_seq(), cmd(), 0..8i64, vec(0..72i64, 0..3), vec(0..72i64, 0..3)).prop_map(
        |(author, seq, cmd, floor_back, overridden, depends)| {
            let floor = (seq - floor_back).max(0);
            let overrides = TailBitmap::new(floor, overridden.into_iter().filter(|&s| s < seq).chain([seq]));
            let depends = TailBitmap::new(floor.min(seq), depends.into_iter().filter(|&s| s < seq));
            Record { author: Some(author), seq, cmd: Some(cmd), depends: Some(depends), overrides: Some(overrides) }
        },
    )
}

pub fn near_records() -> impl Strategy<Value = Vec<Record>> {
    vec(near_record(), 0..4)
}

pub fn near_message() -> impl Strategy<Value = Message> {
    let vote = (near_ballot(), near_opt_ballot(), near_opt_bitmap()).prop_map(|(c, committer, accepted)| VoteReq {
        candidate: Some(c),
        committer,
        accepted,
        transfer_from: None,
    });
    let vote_reply = (near_opt_ballot(), near_opt_bitmap(), near_records(), any::<bool>(), near_seq(), near_seq())
        .prop_map(|(voted_for, accepted, logs, granted, applied_prefix, compacted_prefix)| VoteReply {
            id: 2,
            voted_for,
            committer: voted_for,
            accepted,
            logs,
            granted,
            applied_prefix,
            compacted_prefix,
            ..Default::default()
        });
    let runs = vec((0..72i64, 1..8i64, near_opt_ballot()), 0..3).prop_map(|runs| {
        let mut at = 0;
        runs.into_iter()
            .map(|(gap, len, author)| {
                let start = at + gap % 8;
                at = start + len;
                BaseRun { start, end: at, author }
            })
            .collect::<Vec<_>>()
    });
    let forward =
        (near_ballot(), near_records(), near_opt_bitmap(), near_seq(), runs, 0..4u64, near_seq(), any::<bool>())
            .prop_map(
                |(committer, mut logs, committed, base_len, base_runs, forward_id, snapshot_prefix, campaign_now)| {
                    logs.sort_by_key(|r| r.seq);
                    logs.dedup_by_key(|r| r.seq);
                    let base_len = base_len.max(base_runs.last().map_or(0, |r: &BaseRun| r.end));
                    LogForwardReq {
                        committer: Some(committer),
                        logs,
                        committed,
                        base_len,
                        base_runs,
                        forward_id,
                        snapshot_prefix,
                        campaign_now,
                    }
                },
            );
    let forward_reply = (any::<bool>(), near_opt_ballot(), near_opt_bitmap(), near_opt_bitmap(), near_seq(), 0..4u64)
        .prop_map(|(ok, voted_for, accepted, missing, applied_prefix, forward_id)| LogForwardReply {
            ok,
            voted_for,
            accepted,
            committed: None,
            committer: voted_for,
            missing,
            applied_prefix,
            need_snapshot: false,
            forward_id,
        });
    let snapshot_req = (0..4u64, 0..256i64, near_seq(), 0..4i64)
        .prop_map(|(snapshot_id, offset, min_prefix, id)| SnapshotReq { snapshot_id, offset, min_prefix, id });
    let chunk = (0..4u64, 0..256i64, vec(any::<u8>(), 0..64), 0..512i64, near_seq(), any::<u32>()).prop_map(
        |(snapshot_id, offset, data, total_len, prefix, crc)| SnapshotChunk {
            snapshot_id,
            offset,
            data,
            total_len,
            prefix,
            crc,
        },
    );
    prop_oneof![
        vote.prop_map(Message::Vote),
        vote_reply.prop_map(Message::VoteReply),
        forward.prop_map(Message::Forward),
        forward_reply.prop_map(Message::ForwardReply),
        snapshot_req.prop_map(Message::SnapshotReq),
        chunk.prop_map(Message::SnapshotChunk),
    ]
}

/// Either kind: mostly plausible, so the protocol code is reached.
pub fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![1 => message(), 3 => near_message()]
}
