//! The wire contract of PROTOCOL.md section 2: a client generated from the
//! reference proto must keep talking to traftctl. This fails when a message,
//! field name, number or the service path drifts.

use prost::Message;
use prost_types::field_descriptor_proto::Label;
use traftctl::pb;

/// (message, field, number, repeated) exactly as PROTOCOL.md section 2 lists them.
const REFERENCE: &[(&str, &str, i32, bool)] = &[
    ("Cmd", "Op", 10, false),
    ("Cmd", "Key", 20, false),
    ("Cmd", "VStr", 31, false),
    ("Cmd", "VI64", 32, false),
    ("Cmd", "VClusterConfig", 33, false),
    ("TailBitmap", "Offset", 1, false),
    ("TailBitmap", "Words", 2, true),
    ("TailBitmap", "Reclamed", 3, false),
    ("Record", "Author", 1, false),
    ("Record", "Seq", 10, false),
    ("Record", "Cmd", 30, false),
    ("Record", "Depends", 32, false),
    ("Record", "Overrides", 40, false),
    ("LeaderId", "Term", 1, false),
    ("LeaderId", "Id", 2, false),
    ("ReplicaInfo", "Id", 1, false),
    ("ReplicaInfo", "Addr", 2, false),
    ("ReplicaInfo", "Position", 3, false),
    ("ClusterConfig", "Members", 11, true),
    ("ClusterConfig", "Quorums", 21, true),
    ("ReplicaStatus", "VotedFor", 10, false),
    ("ReplicaStatus", "VoteExpireAt", 11, false),
    ("ReplicaStatus", "Committer", 4, false),
    ("ReplicaStatus", "Accepted", 1, false),
    ("ReplicaStatus", "Committed", 2, false),
    ("ReplicaStatus", "Applied", 3, false),
    ("LogStatus", "Committer", 4, false),
    ("LogStatus", "Accepted", 1, false),
    ("LeaderStatus", "VotedFor", 10, false),
    ("LeaderStatus", "VoteExpireAt", 11, false),
    ("Node", "Id", 3, false),
    ("Node", "Config", 1, false),
    ("Node", "LogOffset", 4, false),
    ("Node", "Logs", 2, true),
    ("Node", "Status", 6, true),
    ("VoteReq", "Candidate", 1, false),
    ("VoteReq", "Committer", 2, false),
    ("VoteReq", "Accepted", 3, false),
    ("VoteReply", "Id", 1, false),
    ("VoteReply", "VotedFor", 10, false),
    ("VoteReply", "Committer", 4, false),
    ("VoteReply", "Accepted", 21, false),
    ("VoteReply", "Committed", 22, false),
    ("VoteReply", "Logs", 30, true),
    ("LogForwardReq", "Committer", 1, false),
    ("LogForwardReq", "Logs", 2, true),
    ("LogForwardReq", "Committed", 3, false),
    ("LogForwardReply", "OK", 10, false),
    ("LogForwardReply", "VotedFor", 1, false),
    ("LogForwardReply", "Accepted", 2, false),
    ("LogForwardReply", "Committed", 3, false),
    ("ProposeReply", "OK", 2, false),
    ("ProposeReply", "Err", 3, false),
    ("ProposeReply", "OtherLeader", 1, false),
];

fn descriptors() -> prost_types::FileDescriptorSet {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    protox::compile(["traft.proto"], [dir]).expect("proto/traft.proto compiles")
}

#[test]
fn reference_fields_keep_their_names_and_numbers() {
    let fds = descriptors();
    let file = &fds.file.iter().find(|f| f.name() == "traft.proto").unwrap();
    assert!(file.package.is_none(), "the reference declares no proto package");
    for &(message, field, number, repeated) in REFERENCE {
        let msg = file
            .message_type
            .iter()
            .find(|m| m.name() == message)
            .unwrap_or_else(|| panic!("message {message} is missing"));
        let f = msg.field.iter().find(|f| f.name() == field).unwrap_or_else(|| panic!("{message}.{field} is missing"));
        assert_eq!(f.number(), number, "{message}.{field} must keep number {number}");
        assert_eq!(f.label() == Label::Repeated, repeated, "{message}.{field} repeated-ness");
    }
}

#[test]
fn extensions_never_reuse_a_reference_number() {
    let fds = descriptors();
    let file = &fds.file.iter().find(|f| f.name() == "traft.proto").unwrap();
    for msg in &file.message_type {
        let reference: Vec<_> = REFERENCE.iter().filter(|r| r.0 == msg.name()).collect();
        for f in &msg.field {
            if let Some(r) = reference.iter().find(|r| r.2 == f.number()) {
                assert_eq!(f.name(), r.1, "{}: number {} belongs to {}", msg.name(), f.number(), r.1);
            }
        }
    }
}

#[test]
fn service_paths_match_the_reference() {
    let fds = descriptors();
    let file = &fds.file.iter().find(|f| f.name() == "traft.proto").unwrap();
    let svc = file.service.iter().find(|s| s.name() == "TRaft").expect("service TRaft");
    let methods: Vec<(&str, &str, &str)> =
        svc.method.iter().map(|m| (m.name(), m.input_type(), m.output_type())).collect();
    assert_eq!(
        methods,
        vec![
            ("Vote", ".VoteReq", ".VoteReply"),
            ("LogForward", ".LogForwardReq", ".LogForwardReply"),
            ("Propose", ".Cmd", ".ProposeReply"),
        ]
    );
}

/// The generated code, not just the .proto file, must put the bytes where a
/// reference peer expects them.
#[test]
fn generated_types_encode_known_bytes() {
    let cmd = pb::Cmd { op: "set".into(), key: "x".into(), value: Some(pb::cmd::Value::Vi64(5)) };
    // Op=10 (0x52 "set"), Key=20 (0xa2 0x01 "x"), VI64=32 (0x80 0x02 5).
    assert_eq!(cmd.encode_to_vec(), [0x52, 3, b's', b'e', b't', 0xa2, 0x01, 1, b'x', 0x80, 0x02, 5]);

    let bm = pb::TailBitmap { offset: 64, words: vec![1, 2], reclamed: 0 };
    // Offset=1 varint, Words=2 packed.
    assert_eq!(bm.encode_to_vec(), [0x08, 64, 0x12, 2, 1, 2]);

    let lid = pb::LeaderId { term: 3, id: 2 };
    assert_eq!(lid.encode_to_vec(), [0x08, 3, 0x10, 2]);

    let reply = pb::ProposeReply { ok: true, err: "e".into(), other_leader: Some(lid), ..Default::default() };
    // OtherLeader=1, OK=2, Err=3, in field order.
    assert_eq!(reply.encode_to_vec(), [0x0a, 4, 0x08, 3, 0x10, 2, 0x10, 1, 0x1a, 1, b'e']);

    let cfg = pb::ClusterConfig {
        members: [(1, pb::ReplicaInfo { id: 1, addr: "a".into(), position: 0 })].into(),
        quorums: vec![3],
        ..Default::default()
    };
    // Members=11 map entry {key=1, value={Id=1, Addr="a"}}, Quorums=21 packed.
    assert_eq!(cfg.encode_to_vec(), [0x5a, 9, 0x08, 1, 0x12, 5, 0x08, 1, 0x12, 1, b'a', 0xaa, 0x01, 1, 3]);
}

/// A peer that sends garbage gets a decode error, never a panic.
#[test]
fn garbage_is_rejected_not_fatal() {
    for bytes in [&[0xff, 0xff, 0xff][..], &[0x52, 0x10, b'a'], &[0x0a, 0x05, 0x08]] {
        assert!(pb::LogForwardReq::decode(bytes).is_err(), "{bytes:?}");
    }
}
