//! Peer messages decoded from arbitrary bytes, delivered to the members
//! of a three-member cluster in the story harness; afterwards the cluster
//! must still commit.
#![no_main]

#[path = "../../tests/story/mod.rs"]
mod story;

#[path = "../../tests/fuzz/replica.rs"]
mod replica;

libfuzzer_sys::fuzz_target!(|data: &[u8]| replica::messages_from_bytes(data));
