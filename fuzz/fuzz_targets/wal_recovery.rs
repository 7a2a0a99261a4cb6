//! Writes through `Storage`, damages the newest segment as the input says,
//! and checks what recovery makes of it.
#![no_main]

#[path = "../../tests/fuzz/targets.rs"]
mod targets;

#[global_allocator]
static ALLOCATOR: targets::Tracking = targets::Tracking;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::wal_case(&targets::wal_case_from_bytes(data)));
