//! UDP listeners: one socket and one thread per worker (SO_REUSEPORT), each looping batched receive →
//! service → batched send. The large receive buffers absorb bursts.

use super::mmsg::{BATCH, Receiver, send_batch};
use super::net::Net;
use anyhow::{Context, Result};
use pbxguard_pbx::Transport;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// Binds one socket; `shared`: with SO_REUSEPORT, for the workers' sockets. A probe binds without it
/// first, so an address another process already serves (with SO_REUSEPORT or not, any user) is refused
/// instead of silently shared. (Setting SO_REUSEPORT only after the first worker's bind looked simpler,
/// but that socket never joins the kernel's reuse group properly and calls went unanswered under load.)
fn bind(addr: SocketAddr, shared: bool) -> Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // One socket per worker, all on the same port: the kernel spreads sources over them by flow hash,
    // so each thread has its own queue, and a flood from one source loads one worker, not all.
    if shared {
        s.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        // Keep IPv6 sockets IPv6-only so "0.0.0.0:5060" and "[::]:5060" can both be configured.
        s.set_only_v6(true)?;
    }
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into()).with_context(|| {
        format!("binding SIP UDP {addr} (is another SIP server running, or is the port below 1024 without privileges?)")
    })?;
    Ok(s.into())
}

pub(crate) fn start(addrs: &[SocketAddr], workers: usize, net: &Arc<Net>) -> Result<Vec<SocketAddr>> {
    let mut bound = Vec::new();
    for &addr in addrs {
        // The probe holds the port (and picks it, for port 0) only until the workers' sockets take it.
        let actual = bind(addr, false)?.local_addr()?;
        bound.push(actual);
        let mut socks = Vec::new();
        for _ in 0..workers.max(1) {
            socks.push(bind(actual, true)?);
        }
        net.add_udp(socks[0].try_clone()?);
        for (i, sock) in socks.into_iter().enumerate() {
            let net = net.clone();
            std::thread::Builder::new().name(format!("sip-udp-{i}")).spawn(move || worker(&sock, &net))?;
        }
    }
    Ok(bound)
}

fn worker(sock: &UdpSocket, net: &Arc<Net>) {
    let fd = sock.as_raw_fd();
    let mut rx = Receiver::new();
    let mut replies: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(BATCH);
    let mut forwards = Vec::new();
    let v4 = sock.local_addr().is_ok_and(|a| a.is_ipv4());
    loop {
        let n = match rx.recv(fd) {
            Ok(n) => n,
            // ICMP errors surface here (ECONNREFUSED from an earlier send), and EINTR: keep going.
            Err(e) => {
                tracing::trace!(error = %e, "udp recv");
                continue;
            }
        };
        // One lock for the whole batch: under a flood that is one acquisition per 32 datagrams.
        let now = pbxguard_app::clock::now_ms();
        net.state.with_sip(&mut forwards, |gate, sip| {
            for i in 0..n {
                let Some((data, src)) = rx.get(i) else { continue };
                if let Some(r) = sip.handle(gate, now, data, src, Transport::Udp) {
                    replies.push((r, src));
                }
            }
        });
        // Forwards over UDP leave from this socket (same port) in the same sendmmsg batches as replies.
        for t in forwards.drain(..) {
            if t.target.transport == Transport::Udp && t.target.addr.is_ipv4() == v4 {
                replies.push((t.data, t.target.addr));
            } else {
                net.send(t);
            }
        }
        let mut off = 0;
        while off < replies.len() {
            match send_batch(fd, &replies[off..]) {
                0 => {
                    for (r, dst) in &replies[off..] {
                        if let Err(e) = sock.send_to(r, *dst) {
                            tracing::debug!(error = %e, %dst, "udp send failed");
                        }
                    }
                    break;
                }
                sent => off += sent,
            }
        }
        replies.clear();
    }
}
