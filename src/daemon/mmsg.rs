//! Batched UDP receive with recvmmsg(2): one system call returns every datagram already queued (up to
//! `BATCH`), so under load the per-packet cost is the work, not the syscall and the wake-up. This is
//! the one place that needs `unsafe`: the kernel fills buffers we lend it through raw pointers.
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

pub(crate) const BATCH: usize = 32;
const BUF: usize = 65_536;

pub(crate) struct Receiver {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Receiver {
    pub(crate) fn new() -> Self {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zeroed_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let zeroed_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        Self {
            bufs: (0..BATCH).map(|_| vec![0u8; BUF]).collect(),
            addrs: vec![zeroed_addr; BATCH],
            iovs: (0..BATCH).map(|_| libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }).collect(),
            hdrs: vec![zeroed_hdr; BATCH],
        }
    }

    /// Blocks until at least one datagram is queued, then takes up to `BATCH` without blocking again.
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iovs[i] = libc::iovec { iov_base: self.bufs[i].as_mut_ptr().cast(), iov_len: BUF };
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_name = (&raw mut self.addrs[i]).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &raw mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: every header points into buffers owned by `self` that outlive the call, with their
        // true lengths; the kernel writes at most that much.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
    }

    /// Datagram `i` of the last batch and its source; `None` if it was truncated or its address family
    /// is not IP (neither can be a SIP message we accept).
    pub(crate) fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let h = self.hdrs.get(i)?;
        if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let data = &self.bufs[i][..(h.msg_len as usize).min(BUF)];
        let storage = &self.addrs[i];
        let addr = match i32::from(storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in, and storage is large and
                // aligned enough for any socket address.
                let a = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                ))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let a = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    u32::from_be(a.sin6_flowinfo),
                    a.sin6_scope_id,
                ))
            }
            _ => return None,
        };
        Some((data, addr))
    }
}

/// Sends every reply of a batch with one sendmmsg(2). Returns how many the kernel took; the caller
/// sends the rest one by one (a partial send happens when the socket buffer is full).
pub(crate) fn send_batch(fd: RawFd, replies: &[(Vec<u8>, SocketAddr)]) -> usize {
    let n = replies.len().min(BATCH);
    if n == 0 {
        return 0;
    }
    let addrs: Vec<socket2::SockAddr> = replies[..n].iter().map(|(_, a)| socket2::SockAddr::from(*a)).collect();
    let mut iovs: Vec<libc::iovec> = replies[..n]
        .iter()
        .map(|(b, _)| libc::iovec { iov_base: b.as_ptr() as *mut libc::c_void, iov_len: b.len() })
        .collect();
    // SAFETY: all-zero is a valid mmsghdr; every pointer set below refers to `addrs`, `iovs` or the
    // reply buffers, which outlive the call, and the kernel only reads through them.
    let mut hdrs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
    for i in 0..n {
        hdrs[i].msg_hdr.msg_name = addrs[i].as_ptr() as *mut libc::c_void;
        hdrs[i].msg_hdr.msg_namelen = addrs[i].len();
        hdrs[i].msg_hdr.msg_iov = &raw mut iovs[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: see above.
    let sent = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
    if sent < 0 { 0 } else { sent as usize }
}

/// Lowers the calling thread's scheduling priority (nice 10), for background work such as writing
/// registrations to disk: on a busy machine it yields to the threads that answer packets.
pub(crate) fn lower_thread_priority() {
    // SAFETY: plain system calls on the calling thread's own id; failure only leaves the priority as is.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}
