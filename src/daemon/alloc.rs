//! Allocator tuning for the long-running daemon.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_long};

/// `mi_option_purge_delay` in mimalloc v3's `mimalloc.h` (the version libmimalloc-sys builds).
const PURGE_DELAY: c_int = 15;
/// Its documented v3 default, in milliseconds.
const PURGE_DELAY_DEFAULT: c_long = 1_000;

unsafe extern "C" {
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
}

/// mimalloc gives memory unused for a second back to the OS; under steady SIP load the same memory is
/// faulted straight back in, as 2 MiB transparent huge pages that the kernel zeroes: about 9% of the
/// daemon's CPU in `clear_page_erms` at 10,000 registrations/s (perf), 1,200 page faults in 5 s. Ten
/// seconds keeps the working set resident under load (27 faults in 5 s) and still returns memory after
/// a burst. Nothing changes when the option does not hold its documented default: an operator's
/// `MIMALLOC_PURGE_DELAY`, or a mimalloc whose option numbering moved.
pub(crate) fn keep_working_set() {
    // SAFETY: plain C calls on mimalloc's option table, which is initialised before main and is
    // thread-safe; the guard makes a renumbered option a no-op rather than a change to another option.
    if unsafe { mi_option_get(PURGE_DELAY) } == PURGE_DELAY_DEFAULT {
        unsafe { mi_option_set(PURGE_DELAY, 10 * PURGE_DELAY_DEFAULT) };
    }
}

/// Turns transparent huge pages off for the daemon, as latency-sensitive servers do (Redis warns about
/// them at start): the first touch of a fresh 2 MiB page makes the kernel zero all of it while the
/// thread waits, and that thread is a packet worker holding the SIP service's lock. In this VM one such
/// fault took 10-25 ms; under 10,000 registrations/s the transaction cache filling up gave SIPp a p99
/// of 56-280 ms, and 8 ms with huge pages off (`bench/regbench.py`, `docs/benchmarks.md`). Small pages
/// spread the same zeroing over 512 faults of 4 KiB. An operator who sets `MIMALLOC_ALLOW_THP` decides.
pub(crate) fn no_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    // SAFETY: PR_SET_THP_DISABLE takes an integer flag and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not turn transparent huge pages off");
    }
}
