//! The admin GUI and the REST API over HTTPS (port 5555 by default): axum on rustls, with the
//! daemon's certificate. Every page and API call goes through `pbxguard_app`, as the CLI does; this
//! module only speaks HTTP. Sessions, CSRF and login throttling are in `auth`, database access off the
//! async threads in `db`, the page frame in `layout`.
//!
//! The listener is a front door like SIP's: a banned source is dropped at accept, before TLS, and
//! failed logins are shield observations of service `gui`.

mod access;
mod api;
mod auth;
mod certs;
mod db;
mod layout;
mod pages;
mod sessions;
mod shared;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use pbxguard_app::clock::now_ms;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub(crate) use db::Db;
pub(crate) use sessions::Sessions;
pub(crate) use shared::{Gui, Shared};

/// Everything the GUI and the API answer, with the headers every answer carries.
pub(crate) fn router(gui: Shared) -> Router {
    Router::new()
        .merge(auth::routes())
        .merge(pages::routes())
        .merge(api::routes())
        .merge(certs::routes())
        .route("/static/{file}", axum::routing::get(layout::asset))
        .layer(middleware::from_fn_with_state(gui.clone(), access::csrf))
        .layer(middleware::from_fn(security_headers))
        .with_state(gui)
}

/// A strict policy: scripts and styles only from this server (no inline code), no framing, nothing
/// cached except the static files, HTTPS remembered for a year.
async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
    );
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Not no-referrer: with it Chromium sends `Origin: null` on form posts, which the CSRF check refuses.
    set(h, header::REFERRER_POLICY, "same-origin");
    if is_static {
        set(h, header::CACHE_CONTROL, "public, max-age=3600");
    } else {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    res
}

/// The listen address from `--gui` (first) or the configuration file; `None`: the GUI is off.
pub(crate) fn listen_addr(flag: Option<&str>, cfg: &crate::config::GuiConfig) -> Result<Option<SocketAddr>> {
    match flag {
        Some(f) => crate::config::gui_listen(f, "--gui"),
        None => crate::config::gui_listen(&cfg.listen, "gui.listen"),
    }
    .map_err(anyhow::Error::msg)
}

/// Nice value of the GUI's threads (its async workers and its blocking pool: rendering, TLS,
/// database reads, password hashing): below SIP's, so a busy GUI does not delay SIP.
const NICE: i32 = 10;

/// Binds the listener now (so a taken port is an error at start, naming it) and serves on a runtime
/// of its own, whose threads run at a lower priority than SIP's. Returns the runtime: dropping it
/// stops the GUI.
pub(crate) fn start(
    addr: SocketAddr,
    max_connections: usize,
    gui: Shared,
) -> Result<(SocketAddr, tokio::runtime::Runtime)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .thread_name("pbxguard-gui")
        .on_thread_start(|| crate::daemon::nice::lower_this_thread(NICE))
        .build()?;
    let listener = rt.block_on(async {
        let sock = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        sock.set_reuseaddr(true)?;
        sock.bind(addr)?;
        // A login burst must not overflow the backlog: each dropped SYN costs the client a second.
        sock.listen(1024)
    });
    let listener = listener.with_context(|| {
        format!("cannot listen for the admin GUI on {addr} (pass --gui ADDR for another address, or --gui off)")
    })?;
    let bound = listener.local_addr()?;
    let acceptor = super::tls::acceptor(gui.cert.clone())?;
    let app = router(gui.clone());
    rt.spawn(serve(listener, acceptor, app, gui, max_connections));
    Ok((bound, rt))
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router, gui: Shared, max: usize) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max));
    loop {
        // At the cap, stop accepting: the kernel queues the rest instead of us holding them half-open.
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "GUI accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ip = peer.ip().to_canonical();
        if gui.state.with_gate(|g| g.is_blocked(now_ms(), ip)) {
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            // A client that never finishes its handshake holds a slot for ten seconds at most.
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                _ => return,
            };
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(shared::Peer(ip));
                tower::ServiceExt::oneshot(app.clone(), req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(64 * 1024)
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
            // Server-sent events keep a connection open as long as the page is; idle keep-alive
            // connections are closed by the header read timeout.
            let _ = conn.await;
        });
    }
}
