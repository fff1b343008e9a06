//! UDP listeners: blocking reader threads, each looping recv → service → send. Several threads share a
//! socket so one slow reply never stalls the queue; the large receive buffer absorbs bursts.

use super::{Shared, handle, persist};
use anyhow::{Context, Result};
use pbxguard_pbx::Transport;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, UdpSocket};

fn bind(addr: SocketAddr) -> Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
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

pub(crate) fn start(
    addrs: &[SocketAddr],
    workers: usize,
    shared: &Shared,
    events: &persist::Sender,
) -> Result<Vec<SocketAddr>> {
    let mut bound = Vec::new();
    for &addr in addrs {
        let sock = bind(addr)?;
        bound.push(sock.local_addr()?);
        for i in 0..workers {
            let sock = sock.try_clone()?;
            let shared = shared.clone();
            let events = events.clone();
            std::thread::Builder::new().name(format!("sip-udp-{i}")).spawn(move || worker(&sock, &shared, &events))?;
        }
    }
    Ok(bound)
}

fn worker(sock: &UdpSocket, shared: &Shared, events: &persist::Sender) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, src) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            // ICMP errors surface here on some systems (ECONNREFUSED from an earlier send): keep going.
            Err(e) => {
                tracing::trace!(error = %e, "udp recv");
                continue;
            }
        };
        if let Some(reply) = handle(shared, events, &buf[..n], src, Transport::Udp)
            && let Err(e) = sock.send_to(&reply, src)
        {
            tracing::debug!(error = %e, %src, "udp send failed");
        }
    }
}
