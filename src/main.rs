//! `traftctl`: a traft cluster member and the operator's client in one binary.

mod cli;

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    refuse_transparent_huge_pages();
    cli::main()
}

/// A fault in a transparent huge page zeroes 2 MiB at once, and the
/// allocator returning part of one splits it: with them, one-shot commands
/// took 30-100 ms now and then instead of 5 (docs/performance.md,
/// "Transparent huge pages"). Redis and MongoDB advise turning them off for
/// the same reason. Set before the runtime allocates anything much;
/// processes this one starts inherit it.
fn refuse_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag on
    // this process; it reads or writes no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
