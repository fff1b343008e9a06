//! TCP and TLS listeners (RFC 3261 §18.3): messages are framed by Content-Length, replies go back on the
//! connection the request came in on, and the proxy can send on any open connection (registered
//! phones are reached over the connection they registered on). Connections are capped and closed when
//! idle; a framing error closes the connection, since the stream can no longer be trusted to be in sync.
//! The daemon opens connections itself to TCP and TLS trunks.

use super::net::Net;
use super::tls::TlsPeer;
use anyhow::{Context, Result};
use pbxguard_pbx::Transport;
use pbxguard_sip::{Limits, stream_frame_len};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

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
        // A banned or blacklisted source gets its connection closed at once, before any TLS work.
        let now = pbxguard_app::clock::now_ms();
        if net.state.with_gate(|gate| gate.is_blocked(now, peer.ip())) {
            continue;
        }
        let Ok(permit) = net.slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; refusing connection");
            continue;
        };
        let _ = sock.set_nodelay(true);
        let net = net.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve(sock, peer, Transport::Tcp, &net, None).await,
                Some(acc) => match tokio::time::timeout(Duration::from_secs(10), acc.accept(sock)).await {
                    Ok(Ok(s)) => serve(s, peer, Transport::Tls, &net, None).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
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
    match tls {
        None => serve(sock, addr, Transport::Tcp, &net, Some(queue)).await,
        Some(peer) => {
            let handshake = TlsConnector::from(peer.config).connect(peer.name.clone(), sock);
            match tokio::time::timeout(Duration::from_secs(10), handshake).await {
                Ok(Ok(s)) => serve(s, addr, Transport::Tls, &net, Some(queue)).await,
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
    drop(permit);
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

/// What waits to be written on a connection.
pub(crate) type Queue = tokio::sync::mpsc::Receiver<Vec<u8>>;

/// Serves a connection: `queue` is the one registered when this daemon started opening it, else the
/// connection (accepted) is registered now.
async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    s: S,
    peer: SocketAddr,
    transport: Transport,
    net: &Arc<Net>,
    queue: Option<Queue>,
) {
    let (mut rd, mut wr) = tokio::io::split(s);
    let mut queue = queue.unwrap_or_else(|| net.register(peer));
    let writer = tokio::spawn(async move {
        // Everything already queued goes out in one write: under load that is one system call for
        // dozens of responses, and the queue drains as fast as it fills.
        let mut out = Vec::with_capacity(WRITE_BATCH);
        while let Some(m) = queue.recv().await {
            out.clear();
            out.extend_from_slice(&m);
            while out.len() < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(m) => out.extend_from_slice(&m),
                    Err(_) => break,
                }
            }
            if wr.write_all(&out).await.is_err() {
                return;
            }
        }
    });
    read_loop(&mut rd, peer, transport, net).await;
    writer.abort();
    net.unregister(peer);
}

async fn read_loop<R: AsyncRead + Unpin>(rd: &mut R, peer: SocketAddr, transport: Transport, net: &Arc<Net>) {
    let limits = Limits::default();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
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
                    let reply = net.handle(&buf[skip..skip + len], peer, transport);
                    buf.drain(..skip + len);
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
                    return;
                }
            }
        }
        match tokio::time::timeout(net.idle, rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
