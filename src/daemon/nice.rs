//! Thread priorities: the admin GUI must never cost SIP its latency. On two cores, fifty browsers
//! rendering pages would otherwise share the CPU equally with the SIP workers; with a lower priority
//! the scheduler runs a SIP worker as soon as a packet wakes it, and the GUI takes what is left.
#![allow(unsafe_code)]

/// Lowers the calling thread's priority to nice `to` (0 = normal, 19 = lowest). Linux keeps nice
/// per thread, so `PRIO_PROCESS` with id 0 means this thread only. Best effort: if it fails, the
/// thread runs at normal priority, which is how it was before.
pub(crate) fn lower_this_thread(to: i32) {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, to) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower a thread's priority");
    }
}
