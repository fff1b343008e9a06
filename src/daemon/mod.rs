//! The daemon: binds the SIP listeners, drives the sans-IO service, persists what it reports, and
//! reloads extensions and settings when another process commits to the database.

mod persist;
mod stream;
mod tls;
mod udp;

use crate::cli::RunArgs;
use crate::commands::{DEFAULT_DATA, now_secs};
use crate::config::Config;
use crate::settings::{open_store, parse_algorithms, registrar_config};
use anyhow::{Context, Result, bail};
use pbxguard_pbx::{Binding, Directory, Event, ExtensionAuth, Service};
use pbxguard_store::Store;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The service shared by every listener. The lock is held only for one `handle` call (microseconds),
/// never across an await.
pub(crate) type Shared = Arc<Mutex<Service>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Service> {
    // A panic while holding the lock is a bug, but the service state is still consistent enough to keep
    // serving: recover rather than take every listener down.
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs one message through the service and hands its events to the persister.
pub(crate) fn handle(
    shared: &Shared,
    events: &persist::Sender,
    data: &[u8],
    source: SocketAddr,
    transport: pbxguard_pbx::Transport,
) -> Option<Vec<u8>> {
    let mut batch: Vec<Event> = Vec::new();
    let reply = {
        let mut svc = lock(shared);
        let r = svc.handle(now_secs() as u64, data, source, transport);
        while let Some(e) = svc.poll_event() {
            batch.push(e);
        }
        r
    };
    for e in batch {
        events.send(e);
    }
    reply
}

fn listen_overrides(flags: &[String], from_config: &[SocketAddr], what: &str) -> Result<Vec<SocketAddr>> {
    if flags.is_empty() {
        return Ok(from_config.to_vec());
    }
    if flags.iter().any(|f| f == "off") {
        return Ok(Vec::new());
    }
    flags
        .iter()
        .map(|f| {
            f.parse().with_context(|| {
                format!("--sip-{what} {f:?}: expected IP:PORT such as 0.0.0.0:5060 or [::]:5060, or \"off\"")
            })
        })
        .collect()
}

fn directory(store: &Store) -> Result<Directory> {
    let mut m = HashMap::new();
    for e in store.extensions()? {
        let algorithms = match &e.algorithms {
            Some(a) => Some(parse_algorithms(a).map_err(|err| anyhow::anyhow!("extension {}: {err}", e.number))?),
            None => None,
        };
        let c = e.credentials;
        m.insert(e.number, ExtensionAuth { ha1: [c.ha1_md5, c.ha1_sha256, c.ha1_sha512_256], algorithms });
    }
    Ok(Directory::new(m))
}

fn restore_bindings(store: &Store, svc: &mut Service) -> Result<usize> {
    let mut by_ext: HashMap<String, Vec<Binding>> = HashMap::new();
    let rows = store.bindings(now_secs())?;
    let n = rows.len();
    for b in rows {
        let Ok(source) = b.source.parse() else {
            continue;
        };
        let transport = match b.transport.as_str() {
            "tcp" => "tcp",
            "tls" => "tls",
            _ => "udp",
        };
        by_ext.entry(b.extension).or_default().push(Binding {
            uri: b.uri,
            contact: b.contact,
            expires_at: b.expires_at as u64,
            call_id: b.call_id,
            cseq: b.cseq,
            q: b.q.map(|q| q as f32),
            source,
            transport,
            user_agent: b.user_agent,
            updated_at: b.updated_at as u64,
        });
    }
    for (ext, bindings) in by_ext {
        svc.registrar_mut().restore(ext, bindings);
    }
    Ok(n)
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    // Colour only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if cfg.log.format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

/// Written once every listener is bound, so scripts and tests know the real ports (port 0 allowed).
fn write_listen_file(data: &Path, udp: &[SocketAddr], tcp: &[SocketAddr], tls: &[SocketAddr]) -> Result<()> {
    let v = serde_json::json!({ "pid": std::process::id(), "udp": udp, "tcp": tcp, "tls": tls });
    let tmp = data.join("listen.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&v)?)?;
    std::fs::rename(&tmp, data.join("listen.json"))?;
    Ok(())
}

pub(crate) fn run(data: Option<PathBuf>, args: RunArgs) -> Result<()> {
    let cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let data = data.or_else(|| cfg.data_dir.clone()).unwrap_or_else(|| DEFAULT_DATA.into());
    let udp_addrs = listen_overrides(&args.sip_udp, &cfg.sip.udp, "udp")?;
    let tcp_addrs = listen_overrides(&args.sip_tcp, &cfg.sip.tcp, "tcp")?;
    let tls_addrs = listen_overrides(&args.sip_tls, &cfg.sip.tls, "tls")?;
    if udp_addrs.is_empty() && tcp_addrs.is_empty() && tls_addrs.is_empty() {
        bail!("every SIP listener is off: enable at least one of --sip-udp, --sip-tcp, --sip-tls");
    }
    init_logging(&cfg);
    if args.gui.is_some() {
        tracing::warn!("--gui is reserved for the admin GUI, which this release does not include; ignoring it");
    }
    let store = open_store(&data)?;
    let key = crate::secret::load_or_create_key(&data.join("nonce.key"))?;
    let seed = u64::from_le_bytes(crate::secret::random_bytes::<8>());
    let rcfg = registrar_config(&store)?;
    let dir = directory(&store)?;
    tracing::info!(realm = %rcfg.realm, extensions = dir.len(), data = %data.display(), "starting");
    let mut svc = Service::new(rcfg, Arc::new(dir), key, seed);
    let restored = restore_bindings(&store, &mut svc)?;
    tracing::info!(bindings = restored, "registrations restored");
    let shared: Shared = Arc::new(Mutex::new(svc));
    let (events, persister) = persist::start(data.join("pbxguard.db"))?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("pbxguard-io")
        .build()?;
    let udp_bound = udp::start(&udp_addrs, cfg.sip.udp_workers, &shared, &events)?;
    let tls_acceptor = if tls_addrs.is_empty() { None } else { Some(tls::acceptor(&data, &cfg.tls)?) };
    let (tcp_bound, tls_bound) =
        rt.block_on(stream::start(&tcp_addrs, &tls_addrs, tls_acceptor, &cfg.sip, &shared, &events))?;
    write_listen_file(&data, &udp_bound, &tcp_bound, &tls_bound)?;
    tracing::info!(udp = ?udp_bound, tcp = ?tcp_bound, tls = ?tls_bound, "pbxguard ready");

    let reload = {
        let shared = shared.clone();
        let path = data.join("pbxguard.db");
        std::thread::Builder::new().name("pbxguard-reload".into()).spawn(move || reload_loop(&path, &shared))?
    };
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })?;
    tracing::info!("shutting down");
    drop(reload);
    persister.flush();
    let _ = std::fs::remove_file(data.join("listen.json"));
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}

/// Applies commits made by other processes (the CLI) within a second, and does the periodic cleanup.
fn reload_loop(db: &Path, shared: &Shared) {
    let store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "reload thread cannot open the database; CLI changes need a restart");
            return;
        }
    };
    let mut version = store.data_version().unwrap_or(0);
    let mut revision = store.config_revision().unwrap_or(0);
    let mut last_purge = now_secs();
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let v = match store.data_version() {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "checking the database for changes failed");
                continue;
            }
        };
        if v == version {
            // Nothing committed by anyone else.
        } else if let Ok(r) = store.config_revision().inspect(|_| version = v)
            && r != revision
        {
            revision = r;
            match (directory(&store), registrar_config(&store)) {
                (Ok(dir), Ok(cfg)) => {
                    let n = dir.len();
                    let mut svc = lock(shared);
                    if svc.config() != &cfg {
                        tracing::info!(?cfg, "settings changed");
                        svc.set_config(cfg);
                    }
                    svc.set_directory(Arc::new(dir));
                    tracing::debug!(extensions = n, "extensions reloaded");
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(error = %e, "reloading extensions/settings failed; keeping the previous ones")
                }
            }
        }
        let now = now_secs();
        if now - last_purge >= 5 {
            last_purge = now;
            lock(shared).handle_timeout(now as u64);
            if let Err(e) = store.purge_expired_bindings(now) {
                tracing::warn!(error = %e, "purging expired registrations failed");
            }
        }
    }
}
