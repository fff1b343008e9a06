//! Sending what the proxy forwards: over UDP from a listening socket, over TCP/TLS on the connection
//! to that address (the one a phone registered over, or one this daemon opened to a trunk). Sends never
//! block the caller: stream writes are queued per connection (bounded) and UDP sends are non-blocking.

use super::conns::Conns;
use super::state::State;
use super::tls::TlsPeer;
use pbxguard_pbx::{Transmit, Transport};
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// Per-connection send queue, in messages (about 1 MB of SIP); past it messages are dropped (UDP-like
/// loss, recovered by the transaction timeout) rather than letting one peer that does not read hold
/// memory. 256 was too small: two SIPp clients at 10,000 registrations/s each lost answers when a
/// writer was held up for a few milliseconds.
pub(crate) const QUEUE: usize = 2048;

/// Opens a connection to `addr` (TLS when `TlsPeer` says how to verify it) and sends what waits in the
/// queue: the stream module's, handed over at start so that sending never depends on it.
pub(crate) type Connect = fn(Arc<Net>, SocketAddr, Option<TlsPeer>, Outbox);

/// A connection's send queue, bounded at [`QUEUE`] messages. Unlike a channel it allocates nothing
/// while empty (a channel holds a block of slots from the start: about 1.5 KB for every idle
/// connection), and gives its room back when it drains.
struct Queued {
    messages: Mutex<VecDeque<Vec<u8>>>,
    ready: Notify,
    closed: AtomicBool,
}

/// The sending side, kept in the table of connections.
#[derive(Clone)]
pub(crate) struct Sender(Arc<Queued>);

/// The receiving side, held by the connection's writer; the queue closes when it is dropped.
pub(crate) struct Outbox(Arc<Queued>);

fn outbox() -> (Sender, Outbox) {
    let q = Arc::new(Queued {
        messages: Mutex::new(VecDeque::new()),
        ready: Notify::new(),
        closed: AtomicBool::new(false),
    });
    (Sender(q.clone()), Outbox(q))
}

impl Sender {
    fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }

    /// Queues `m`, or gives it back when the queue is full or closed.
    fn try_send(&self, m: Vec<u8>) -> Result<(), Vec<u8>> {
        if self.is_closed() {
            return Err(m);
        }
        {
            let mut q = self.0.messages.lock().unwrap_or_else(|p| p.into_inner());
            if q.len() >= QUEUE {
                return Err(m);
            }
            q.push_back(m);
        }
        // A permit is stored when the writer is not waiting yet, so no wake-up is lost.
        self.0.ready.notify_one();
        Ok(())
    }
}

impl Outbox {
    /// The next message, without waiting.
    pub(crate) fn try_recv(&mut self) -> Option<Vec<u8>> {
        let mut q = self.0.messages.lock().unwrap_or_else(|p| p.into_inner());
        let m = q.pop_front();
        if q.is_empty() && q.capacity() > 16 {
            *q = VecDeque::new();
        }
        m
    }

    /// The next message.
    pub(crate) async fn recv(&mut self) -> Vec<u8> {
        loop {
            if let Some(m) = self.try_recv() {
                return m;
            }
            self.0.ready.notified().await;
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.messages.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

pub(crate) struct Net {
    pub(crate) state: Arc<State>,
    connect: Connect,
    pub(crate) slots: Arc<Semaphore>,
    /// Connections per source, and the timeouts of those not yet authenticated.
    pub(crate) conns: Arc<Conns>,
    pub(crate) idle: Duration,
    pub(crate) rt: tokio::runtime::Handle,
    udp: Mutex<Vec<UdpSocket>>,
    streams: Mutex<HashMap<SocketAddr, Sender>>,
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
            conns: Conns::new(),
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
    pub(crate) fn register(&self, peer: SocketAddr) -> Outbox {
        let (tx, rx) = outbox();
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).insert(peer, tx);
        rx
    }

    pub(crate) fn unregister(&self, peer: SocketAddr) {
        let mut m = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        if m.get(&peer).is_some_and(|tx| tx.is_closed()) {
            m.remove(&peer);
        }
    }

    /// Runs one message from a connection through the SIP service and sends what it forwards; returns
    /// the reply to `source`, if any, and whether the message authenticated the connection.
    pub(crate) fn handle(
        self: &Arc<Self>,
        data: &[u8],
        source: SocketAddr,
        transport: Transport,
    ) -> (Option<Vec<u8>>, bool) {
        let mut tx = Vec::new();
        let now = pbxguard_app::clock::now_ms();
        let r = self.state.with_sip(&mut tx, |gate, sip| {
            let reply = sip.handle(gate, now, data, source, transport);
            (reply, sip.take_authenticated() == Some(source))
        });
        self.send_all(&mut tx);
        r
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
                                let (tx, rx) = outbox();
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
