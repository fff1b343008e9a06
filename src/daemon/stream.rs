//! TCP and TLS listeners (RFC 3261 §18.3): messages are framed by Content-Length, replies go back on the
//! connection the request came in on, and the proxy can send on any open connection (registered
//! phones are reached over the connection they registered on). Connections are capped globally and per
//! source (the gate's `connections` detector), closed when a message stays unfinished, when they do not
//! authenticate in time, and when idle; a framing error closes the connection, since the stream can no
//! longer be trusted to be in sync. Buffers grow with what is in flight and are released when it is gone.
//! The daemon opens connections itself to TCP and TLS trunks.

use super::conns::{Conn, Outcome};
use super::net::Net;
use super::tls::TlsPeer;
use anyhow::{Context, Result};
use pbxguard_pbx::Transport;
use pbxguard_shield::Observation;
use pbxguard_sip::{Limits, stream_frame_len};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_rustls::{TlsAcceptor, TlsConnector};

const SIP: pbxguard_shield::Service = pbxguard_shield::Service::Sip;

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let s =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into()).with_context(|| format!("binding SIP TCP/TLS {addr} (is another SIP server running?)"))?;
    s.listen(1024)?;
    Ok(TcpListener::from_std(s.into())?)
}

pub(crate) async fn start(
    tcp: &[SocketAddr],
    tls: &[SocketAddr],
    acceptor: Option<TlsAcceptor>,
    net: &Arc<Net>,
) -> Result<(Vec<SocketAddr>, Vec<SocketAddr>)> {
    let mut tcp_bound = Vec::new();
    for &a in tcp {
        let l = bind(a).await?;
        tcp_bound.push(l.local_addr()?);
        tokio::spawn(accept_loop(l, None, net.clone()));
    }
    let mut tls_bound = Vec::new();
    for &a in tls {
        let l = bind(a).await?;
        tls_bound.push(l.local_addr()?);
        tokio::spawn(accept_loop(l, acceptor.clone(), net.clone()));
    }
    Ok((tcp_bound, tls_bound))
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, net: Arc<Net>) {
    let mut warned: Option<Instant> = None;
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(account) = admit(&net, peer, &mut warned) else { continue };
        let _ = sock.set_nodelay(true);
        let net = net.clone();
        let tls = tls.clone();
        // Two tasks of their own sizes: a TCP connection's task never holds room for a TLS handshake,
        // and the handshake's state (boxed) is freed once it is done.
        match tls {
            None => {
                tokio::spawn(async move { serve_tcp(sock, peer, &net, None, account).await });
            }
            Some(acc) => {
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), Box::pin(acc.accept(sock))).await {
                        Ok(Ok(s)) => serve(s, peer, Transport::Tls, &net, None, account).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Whether an accepted connection may stay, before any TLS work: not from a banned or blacklisted
/// source, within the global cap, and within its source's limits (the gate's `connections` detector,
/// which bans past them). Returns its account and whether it must authenticate in time (trusted
/// networks need not). Every refusal is a close without a byte sent.
fn admit(net: &Arc<Net>, peer: SocketAddr, warned: &mut Option<Instant>) -> Option<Account> {
    let now = pbxguard_app::clock::now_ms();
    let ip = pbxguard_shield::canonical(peer.ip());
    if net.state.with_gate(|gate| gate.is_blocked(now, ip)) {
        net.conns.count(Outcome::RefusedSource);
        return None;
    }
    let Ok(permit) = net.slots.clone().try_acquire_owned() else {
        net.conns.count(Outcome::RefusedFull);
        // Once a minute: a flood of refusals must not become a flood of log lines.
        if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
            *warned = Some(Instant::now());
            tracing::warn!(%peer, "connection limit reached (sip.max_connections); refusing connections");
        }
        return None;
    };
    let (conn, unauthenticated) = net.conns.open(ip, SIP);
    let (refused, trusted) = net.state.with_gate(|gate| {
        let obs = Observation::ConnectionOpened { ip, unauthenticated };
        (gate.observe_on(now, SIP, obs), gate.is_trusted(ip))
    });
    if refused {
        net.conns.count(Outcome::RefusedSource);
        return None;
    }
    Some(Account { conn: Some(conn), must_authenticate: !trusted, _permit: Some(permit) })
}

/// How a connection is held to account. One accepted from outside a trusted network must authenticate
/// within `sip.tcp_auth_timeout`; one this daemon opened (to a trunk, or to a phone) need not.
struct Account {
    conn: Option<Conn>,
    must_authenticate: bool,
    /// Its place under the global cap, given back when the connection ends.
    _permit: Option<OwnedSemaphorePermit>,
}

impl Account {
    fn authenticated(&self) -> bool {
        !self.must_authenticate || self.conn.as_ref().is_some_and(Conn::is_authenticated)
    }
}

/// Opens a connection for the proxy (to a trunk, or to a phone with no open TCP connection), TLS when
/// `tls` says how to verify the peer, sends what waits in `queue` (registered for `addr` already), and
/// serves the connection like an accepted one so answers come back.
/// The [`super::net::Connect`] the sending side is given.
pub(crate) fn spawn_connect(net: Arc<Net>, addr: SocketAddr, tls: Option<TlsPeer>, queue: Queue) {
    let rt = net.rt.clone();
    rt.spawn(connect(net, addr, tls, queue));
}

async fn connect(net: Arc<Net>, addr: SocketAddr, tls: Option<TlsPeer>, queue: Queue) {
    let transport = if tls.is_some() { Transport::Tls } else { Transport::Tcp };
    let Ok(permit) = net.slots.clone().try_acquire_owned() else {
        tracing::warn!(%addr, "connection limit reached; not connecting");
        return unreachable(&net, addr, transport, queue);
    };
    let sock = match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
        Ok(Ok(sock)) => Some(sock),
        Ok(Err(e)) => {
            tracing::warn!(%addr, error = %e, transport = transport.as_str(), "connecting failed");
            None
        }
        Err(_) => {
            tracing::warn!(%addr, transport = transport.as_str(), "connecting timed out");
            None
        }
    };
    let Some(sock) = sock else { return unreachable(&net, addr, transport, queue) };
    let _ = sock.set_nodelay(true);
    tracing::info!(%addr, transport = transport.as_str(), "connection opened");
    let account = Account { conn: None, must_authenticate: false, _permit: Some(permit) };
    match tls {
        None => serve_tcp(sock, addr, &net, Some(queue), account).await,
        Some(peer) => {
            let handshake = TlsConnector::from(peer.config).connect(peer.name.clone(), sock);
            match tokio::time::timeout(Duration::from_secs(10), handshake).await {
                Ok(Ok(s)) => serve(s, addr, Transport::Tls, &net, Some(queue), account).await,
                // The operator must see why: usually a certificate that does not match the trunk's
                // host or chain to its CA (`trunk add --tls-ca`).
                Ok(Err(e)) => {
                    tracing::warn!(%addr, server = ?peer.name, error = %e, "TLS handshake with a trunk failed");
                    unreachable(&net, addr, transport, queue);
                }
                Err(_) => {
                    tracing::warn!(%addr, "TLS handshake with a trunk timed out");
                    unreachable(&net, addr, transport, queue);
                }
            }
        }
    }
}

/// Calls waiting on a connection that could not be made fail now (503), not after Timer B. The
/// connection's queue goes with what waits in it, so the next message tries again.
fn unreachable(net: &Arc<Net>, addr: SocketAddr, transport: Transport, queue: Queue) {
    drop(queue);
    net.unregister(addr);
    let mut tx = Vec::new();
    let now = pbxguard_app::clock::now_ms();
    net.state.with_sip(&mut tx, |_, sip| sip.unreachable(now, pbxguard_pbx::Target { addr, transport }));
    net.send_all(&mut tx);
}

/// Bytes gathered from a connection's queue into one write.
const WRITE_BATCH: usize = 64 * 1024;
/// Free space a read is given: a REGISTER fits in one, and an idle connection holds no more than this.
/// A busy connection's buffer grows as needed (up to the message size limit plus one read) and is
/// released whenever it empties, so memory follows what is in flight, not what once was.
const READ_MIN: usize = 2048;

/// Plaintext taken from a TLS session per read.
const TLS_PIECE: usize = 512;

/// What waits to be written on a connection.
pub(crate) type Queue = super::net::Outbox;

/// Serves a connection: `queue` is the one registered when this daemon started opening it, else the
/// connection (accepted) is registered now.
async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    s: S,
    peer: SocketAddr,
    transport: Transport,
    net: &Arc<Net>,
    queue: Option<Queue>,
    account: Account,
) {
    let (rd, wr) = tokio::io::split(s);
    serve_halves(rd, wr, peer, transport, net, queue, account).await;
}

/// Plain TCP: its own halves, so that an idle connection waits for readability with no buffer at all.
async fn serve_tcp(s: TcpStream, peer: SocketAddr, net: &Arc<Net>, queue: Option<Queue>, account: Account) {
    let (rd, wr) = s.into_split();
    serve_halves(rd, wr, peer, Transport::Tcp, net, queue, account).await;
}

/// The read side of a connection: waits for bytes and appends them to `buf`, growing it as needed.
trait ReadSide {
    async fn read_more(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize>;
}

impl ReadSide for tokio::net::tcp::OwnedReadHalf {
    async fn read_more(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        loop {
            self.readable().await?;
            reserve(buf);
            match self.try_read_buf(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }
}

impl<S: AsyncRead + Unpin> ReadSide for tokio::io::ReadHalf<S> {
    async fn read_more(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        // Decrypted bytes may already wait inside the TLS session, so the socket's readability says
        // nothing: read, into a small piece of the task itself (the session holds the record anyway),
        // so that an idle connection holds no read buffer of its own.
        let mut piece = [0u8; TLS_PIECE];
        let n = self.read(&mut piece).await?;
        buf.extend_from_slice(&piece[..n]);
        Ok(n)
    }
}

fn reserve(buf: &mut Vec<u8>) {
    if buf.capacity() - buf.len() < READ_MIN / 2 {
        buf.reserve(READ_MIN.max(buf.len()));
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_halves<R: ReadSide, W: AsyncWrite + Unpin + Send + 'static>(
    mut rd: R,
    mut wr: W,
    peer: SocketAddr,
    transport: Transport,
    net: &Arc<Net>,
    queue: Option<Queue>,
    mut account: Account,
) {
    let mut queue = queue.unwrap_or_else(|| net.register(peer));
    let writer = tokio::spawn(async move {
        // One message goes out as it is; whatever is queued behind it goes out with it in one write:
        // under load one system call for dozens of responses, and the queue drains as fast as it fills.
        // The batch buffer lives only for that write, so an idle connection holds none.
        loop {
            let m = queue.recv().await;
            let written = match queue.try_recv() {
                None => wr.write_all(&m).await,
                Some(next) => {
                    let mut out = Vec::with_capacity((m.len() + next.len()) * 4);
                    out.extend_from_slice(&m);
                    out.extend_from_slice(&next);
                    while out.len() < WRITE_BATCH {
                        match queue.try_recv() {
                            Some(m) => out.extend_from_slice(&m),
                            None => break,
                        }
                    }
                    wr.write_all(&out).await
                }
            };
            if written.is_err() {
                return;
            }
        }
    });
    if let Some(why) = read_loop(&mut rd, peer, transport, net, &mut account).await {
        net.conns.count(why);
        tracing::debug!(%peer, transport = transport.as_str(), why = why.as_str(), "connection closed");
    }
    writer.abort();
    net.unregister(peer);
}

/// Reads and handles messages until the peer closes, a framing error, or a timeout (returned).
async fn read_loop<R: ReadSide>(
    rd: &mut R,
    peer: SocketAddr,
    transport: Transport,
    net: &Arc<Net>,
    account: &mut Account,
) -> Option<Outcome> {
    let limits = Limits::default();
    let opened = Instant::now();
    let mut last_byte = opened;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        loop {
            let lead = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
            if lead >= 4 {
                // RFC 5626 §3.5.1 keep-alive: answer a CRLFCRLF ping with a CRLF pong.
                buf.drain(..lead);
                net.send(pbxguard_pbx::Transmit {
                    target: pbxguard_pbx::Target { addr: peer, transport },
                    data: b"\r\n".to_vec(),
                });
            } else if lead == buf.len() {
                break;
            }
            match stream_frame_len(&buf, &limits) {
                Ok(Some((skip, len))) => {
                    let (reply, authenticated) = net.handle(&buf[skip..skip + len], peer, transport);
                    buf.drain(..skip + len);
                    if authenticated && let Some(c) = &mut account.conn {
                        c.authenticate();
                    }
                    if let Some(r) = reply {
                        net.send(pbxguard_pbx::Transmit {
                            target: pbxguard_pbx::Target { addr: peer, transport },
                            data: r,
                        });
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(%peer, error = %e, transport = transport.as_str(), "unframeable stream; closing connection");
                    return None;
                }
            }
        }
        if buf.is_empty() {
            buf = Vec::new();
        }
        // The nearest of: silence (always), a message left unfinished, no authentication yet.
        let mut deadline = (last_byte + net.idle, Outcome::Idle);
        if buf.iter().any(|&b| b != b'\r' && b != b'\n') {
            deadline = deadline.min((last_byte + net.conns.incomplete_timeout(), Outcome::Incomplete));
        }
        if !account.authenticated() {
            deadline = deadline.min((opened + net.conns.auth_timeout(), Outcome::Unauthenticated));
        }
        match tokio::time::timeout_at(deadline.0, rd.read_more(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(_)) => last_byte = Instant::now(),
            Err(_) => return Some(deadline.1),
        }
    }
}
