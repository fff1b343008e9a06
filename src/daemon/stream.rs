//! TCP and TLS listeners (RFC 3261 §18.3): messages are framed by Content-Length, replies go back on the
//! connection the request came in on. Connections are capped and closed when idle; a framing error
//! closes the connection, since the stream can no longer be trusted to be in sync.

use super::{Shared, handle, persist};
use crate::config::SipConfig;
use anyhow::{Context, Result};
use pbxguard_pbx::Transport;
use pbxguard_sip::{Limits, stream_frame_len};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

#[derive(Clone)]
struct Ctx {
    shared: Shared,
    events: persist::Sender,
    slots: Arc<Semaphore>,
    idle: Duration,
}

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
    cfg: &SipConfig,
    shared: &Shared,
    events: &persist::Sender,
) -> Result<(Vec<SocketAddr>, Vec<SocketAddr>)> {
    let ctx = Ctx {
        shared: shared.clone(),
        events: events.clone(),
        slots: Arc::new(Semaphore::new(cfg.max_connections)),
        idle: Duration::from_secs(cfg.idle_timeout),
    };
    let mut tcp_bound = Vec::new();
    for &a in tcp {
        let l = bind(a).await?;
        tcp_bound.push(l.local_addr()?);
        tokio::spawn(accept_loop(l, None, ctx.clone()));
    }
    let mut tls_bound = Vec::new();
    for &a in tls {
        let l = bind(a).await?;
        tls_bound.push(l.local_addr()?);
        tokio::spawn(accept_loop(l, acceptor.clone(), ctx.clone()));
    }
    Ok((tcp_bound, tls_bound))
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, ctx: Ctx) {
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
        if super::lock(&ctx.shared).shield.is_blocked(super::now_ms(), peer.ip()) {
            continue;
        }
        let Ok(permit) = ctx.slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; refusing connection");
            continue;
        };
        let _ = sock.set_nodelay(true);
        let ctx = ctx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve(sock, peer, Transport::Tcp, &ctx).await,
                Some(acc) => match tokio::time::timeout(Duration::from_secs(10), acc.accept(sock)).await {
                    Ok(Ok(s)) => serve(s, peer, Transport::Tls, &ctx).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, peer: SocketAddr, transport: Transport, ctx: &Ctx) {
    let limits = Limits::default();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        loop {
            let lead = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
            if lead >= 4 {
                // RFC 5626 §3.5.1 keep-alive: answer a CRLFCRLF ping with a CRLF pong.
                buf.drain(..lead);
                if s.write_all(b"\r\n").await.is_err() {
                    return;
                }
            } else if lead == buf.len() {
                break;
            }
            match stream_frame_len(&buf, &limits) {
                Ok(Some((skip, len))) => {
                    let reply = handle(&ctx.shared, &ctx.events, &buf[skip..skip + len], peer, transport);
                    buf.drain(..skip + len);
                    if let Some(r) = reply
                        && s.write_all(&r).await.is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(%peer, error = %e, transport = transport.as_str(), "unframeable stream; closing connection");
                    return;
                }
            }
        }
        match tokio::time::timeout(ctx.idle, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
