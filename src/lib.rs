//! traft: a Raft variant with out-of-order commit and apply and generalized
//! quorums. See `docs/protocol.md` for the protocol as implemented.

/// The generated wire types. They are the protocol types: each concept's
/// module adds its methods to them rather than mirroring them.
pub mod pb {
    #![allow(clippy::all)]
    tonic::include_proto!("_");
}

pub mod bitmap;
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
pub mod types;
