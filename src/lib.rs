//! traft: a Raft variant with out-of-order commit and apply and generalized
//! quorums. The protocol as implemented, with its numbered safety rules, is
//! [`protocol`] (`docs/protocol.md`).
//!
//! # A tour
//!
//! The [`replica::Replica`] is a sans-IO state machine: the caller feeds it
//! time and messages and carries out the [`replica::Action`]s it asks for.
//! A one-member cluster needs no network, so driving one by hand shows the
//! whole loop:
//!
//! ```
//! use traftctl::kv::ApplyResult;
//! use traftctl::pb::cmd::Value;
//! use traftctl::pb::{ClusterConfig, Cmd};
//! use traftctl::replica::{Action, ClientReply, DurableState, Options, ReadConsistency, Replica, Role};
//!
//! /// Carries out what the replica asks for; returns the client replies.
//! fn drive(r: &mut Replica, disk: &mut DurableState, now: u64) -> Vec<(u64, ClientReply)> {
//!     let mut replies = Vec::new();
//!     loop {
//!         let mut durable = 0;
//!         for action in r.take_actions() {
//!             match action {
//!                 Action::Persist { id, write } => {
//!                     disk.apply(write); // a real node fsyncs here
//!                     durable = id;
//!                 }
//!                 Action::Send { .. } => unreachable!("a one-member cluster has no one to talk to"),
//!                 Action::Reply { request, reply, .. } => replies.push((request, reply)),
//!                 Action::SaveSnapshot { .. } => {} // no snapshots with the default options here
//!                 Action::Event(_) => {}
//!             }
//!         }
//!         if durable == 0 {
//!             return replies;
//!         }
//!         r.persisted(now, durable); // held replies may follow
//!     }
//! }
//!
//! let config = ClusterConfig::majority([(1, "127.0.0.1:7001")]).unwrap();
//! let mut r = Replica::new(Options::new(1), config, None, 0);
//! let mut disk = DurableState::default();
//! let mut now = 0; // nanoseconds on the replica's own clock
//! while r.role() != Role::Leader {
//!     now += 10_000_000;
//!     r.tick(now);
//!     drive(&mut r, &mut disk, now);
//! }
//!
//! r.propose(now, 1, Cmd::parse_words(&["set", "x", "5"]).unwrap());
//! let replies = drive(&mut r, &mut disk, now);
//! let [(1, ClientReply::Proposed { seq, result, .. })] = &replies[..] else { panic!("{replies:?}") };
//! assert_eq!(*result, ApplyResult::Done);
//! assert!(r.committed().contains(*seq) && r.applied().contains(*seq));
//! assert!(disk.records.iter().any(|rec| rec.seq == *seq), "durable before acknowledged");
//!
//! r.read(now, 2, "x", ReadConsistency::Linearizable);
//! let replies = drive(&mut r, &mut disk, now);
//! assert_eq!(replies, [(2, ClientReply::Read { value: Some(Value::Vi64(5)) })]);
//! assert_eq!(r.kv().get("x"), Some(&Value::Vi64(5)));
//! ```

/// The generated wire types. They are the protocol types: each concept's
/// module adds its methods to them rather than mirroring them.
pub mod pb {
    #![allow(clippy::all)]
    tonic::include_proto!("_");
}

pub mod backup;
pub mod bitmap;
pub mod chaos;
pub mod cmd;
pub mod config;
pub mod errors;
pub mod kv;
pub mod leader_id;
pub mod node;
pub mod record;
pub mod replica;
pub mod snapshot;
pub mod storage;
pub mod tls;
pub mod types;

/// The protocol document, `docs/protocol.md`, rendered here so that
/// `cargo doc` builds it and its rule table sits next to the code it names.
#[doc = include_str!("../docs/protocol.md")]
pub mod protocol {}
