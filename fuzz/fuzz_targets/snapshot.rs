//! Arbitrary bytes as an encoded snapshot (what a peer's chunks or a
//! backup hand `Snapshot::decode`).
#![no_main]

#[path = "../../tests/fuzz/targets.rs"]
mod targets;

#[global_allocator]
static ALLOCATOR: targets::Tracking = targets::Tracking;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::snapshot_bytes(data));
