//! `traftctl`: a traft cluster member and the operator's client in one binary.

mod cli;

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    refuse_transparent_huge_pages();
    hold_freed_pages_longer();
    cli::main()
}

/// mimalloc's `mi_option_purge_delay` (the position in its option enum;
/// the crate names only some options). A test checks it against the
/// documented default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed pages stay with the process before mimalloc returns them
/// to the kernel. Its default, 1 s, is shorter than a member's cycle of
/// snapshot buffers and bursts, so it returned pages only to fault them in
/// again: 57,000-89,000 page faults per 10 s at 64 clients in a local
/// cluster's process, 3,700-13,000 with 10 s, for 10% more peak memory
/// (docs/performance.md).
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// An operator's `MIMALLOC_PURGE_DELAY` still wins.
fn hold_freed_pages_longer() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set only stores an integer in mimalloc's option
    // table, which it reads each time it schedules a purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

/// A fault in a transparent huge page zeroes 2 MiB at once, and the
/// allocator returning part of one splits it: with them, one-shot commands
/// took 30-100 ms now and then instead of 5 (docs/performance.md,
/// "Transparent huge pages and returned pages"). Redis and MongoDB advise
/// turning them off for the same reason. Set before the runtime allocates
/// anything much; processes this one starts inherit it. A kernel without
/// the setting (before 3.15) refuses it, and nothing changes.
fn refuse_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag on
    // this process; it reads or writes no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // Read before any set in this process: mimalloc 3's documented
        // default for the purge delay. Another option at that position would
        // read otherwise, and the set would tune the wrong thing.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: mi_option_get only reads mimalloc's option table.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000, "option {MI_OPTION_PURGE_DELAY} is not mimalloc's purge delay");
        hold_freed_pages_longer();
        // SAFETY: as above.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }, PURGE_DELAY_MS);
    }
}
