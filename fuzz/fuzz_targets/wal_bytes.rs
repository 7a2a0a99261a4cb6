//! Arbitrary bytes replayed as the newest WAL segment.
#![no_main]

#[path = "../../tests/fuzz/targets.rs"]
mod targets;

#[global_allocator]
static ALLOCATOR: targets::Tracking = targets::Tracking;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::wal_bytes(data));
