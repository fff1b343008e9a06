//! Sending what the proxy forwards: over UDP from a listening socket, over TCP/TLS on the connection
//! to that address (the one a phone registered over, or one this daemon opened to a trunk). Sends never
//! block the caller: stream writes are queued per connection (bounded) and UDP sends are non-blocking.

use super::state::State;
use super::tls::TlsPeer;
use pbxguard_pbx::{Transmit, Transport};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// Per-connection send queue, in messages (about 1 MB of SIP); past it messages are dropped (UDP-like
/// loss, recovered by the transaction timeout) rather than letting one peer that does not read hold
/// memory. 256 was too small: two SIPp clients at 10,000 registrations/s each lost answers when a
/// writer was held up for a few milliseconds.
pub(crate) const QUEUE: usize = 2048;

/// Opens a connection to `addr` (TLS when `TlsPeer` says how to verify it) and sends what waits in the
/// queue: the stream module's, handed over at start so that sending never depends on it.
pub(crate) type Connect = fn(Arc<Net>, SocketAddr, Option<TlsPeer>, mpsc::Receiver<Vec<u8>>);

pub(crate) struct Net {
    pub(crate) state: Arc<State>,
    connect: Connect,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) idle: Duration,
    pub(crate) rt: tokio::runtime::Handle,
    udp: Mutex<Vec<UdpSocket>>,
    streams: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
    /// TLS trunks by address: where this daemon opens TLS connections itself.
    tls_peers: Mutex<HashMap<SocketAddr, TlsPeer>>,
}

impl Net {
    pub(crate) fn new(
        state: Arc<State>,
        connect: Connect,
        max_connections: usize,
        idle: Duration,
        rt: tokio::runtime::Handle,
    ) -> Arc<Self> {
        Arc::new(Self {
            state,
            connect,
            slots: Arc::new(Semaphore::new(max_connections)),
            idle,
            rt,
            udp: Mutex::new(Vec::new()),
            streams: Mutex::new(HashMap::new()),
            tls_peers: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn set_tls_peers(&self, peers: HashMap<SocketAddr, TlsPeer>) {
        *self.tls_peers.lock().unwrap_or_else(|p| p.into_inner()) = peers;
    }

    /// A UDP socket (bound to a listening port) to send from.
    pub(crate) fn add_udp(&self, s: UdpSocket) {
        self.udp.lock().unwrap_or_else(|p| p.into_inner()).push(s);
    }

    /// Makes an accepted connection reachable for sends to `peer`; returns its queue's receiving end.
    pub(crate) fn register(&self, peer: SocketAddr) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).insert(peer, tx);
        rx
    }

    pub(crate) fn unregister(&self, peer: SocketAddr) {
        let mut m = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if m.get(&peer).is_some_and(|tx| tx.is_closed()) {
            m.remove(&peer);
        }
    }

    /// Runs one message through the SIP service and sends what it forwards; returns the reply to
    /// `source`, if any.
    pub(crate) fn handle(self: &Arc<Self>, data: &[u8], source: SocketAddr, transport: Transport) -> Option<Vec<u8>> {
        let mut tx = Vec::new();
        let now = pbxguard_app::clock::now_ms();
        let reply = self.state.with_sip(&mut tx, |gate, sip| sip.handle(gate, now, data, source, transport));
        self.send_all(&mut tx);
        reply
    }

    pub(crate) fn send_all(self: &Arc<Self>, batch: &mut Vec<Transmit>) {
        for t in batch.drain(..) {
            self.send(t);
        }
    }

    pub(crate) fn send(self: &Arc<Self>, t: Transmit) {
        let addr = t.target.addr;
        match t.target.transport {
            Transport::Udp => {
                let socks = self.udp.lock().unwrap_or_else(|p| p.into_inner());
                let sock = socks.iter().find(|s| s.local_addr().is_ok_and(|l| l.is_ipv4() == addr.is_ipv4()));
                match sock {
                    Some(s) => {
                        if let Err(e) = s.send_to(&t.data, addr) {
                            tracing::debug!(error = %e, %addr, "udp send failed");
                        }
                    }
                    None => tracing::debug!(%addr, "no UDP socket of this address family to send from"),
                }
            }
            transport => {
                // Open (TCP, or TLS to a trunk) unless a connection exists or is being opened: messages
                // wait in its queue meanwhile, so a burst opens one connection, not one each. The TLS
                // trunks are looked at only then (lock order: streams, then tls_peers).
                let (tx, opened) = {
                    let mut m = self.streams.lock().unwrap_or_else(|p| p.into_inner());
                    match m.get(&addr).filter(|tx| !tx.is_closed()) {
                        Some(tx) => (Some(tx.clone()), None),
                        None => {
                            let tls = match transport {
                                Transport::Tls => {
                                    self.tls_peers.lock().unwrap_or_else(|p| p.into_inner()).get(&addr).cloned()
                                }
                                _ => None,
                            };
                            if transport == Transport::Tcp || tls.is_some() {
                                let (tx, rx) = mpsc::channel(QUEUE);
                                m.insert(addr, tx.clone());
                                (Some(tx), Some((rx, tls)))
                            } else {
                                (None, None)
                            }
                        }
                    }
                };
                match tx {
                    Some(tx) => {
                        if tx.try_send(t.data).is_err() {
                            tracing::debug!(%addr, "connection queue full or closed; message dropped");
                        }
                    }
                    // A phone reached over TLS is reached over its own connection; once that is gone,
                    // only a new registration brings it back.
                    None => tracing::info!(%addr, "no TLS connection to this address; message dropped"),
                }
                if let Some((queue, tls)) = opened {
                    (self.connect)(self.clone(), addr, tls, queue);
                }
            }
        }
    }
}
