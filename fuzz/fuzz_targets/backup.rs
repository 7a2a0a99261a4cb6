//! Arbitrary bytes as a backup file, bare and behind a valid header.
#![no_main]

#[path = "../../tests/fuzz/targets.rs"]
mod targets;

#[global_allocator]
static ALLOCATOR: targets::Tracking = targets::Tracking;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    targets::backup_bytes(data);
    targets::backup_bytes(&targets::framed_backup(data));
});
