//! The daemon: binds the SIP listeners, drives the sans-IO service, persists what it reports, and
//! reloads extensions and settings when another process commits to the database.

mod acme;
mod alloc;
mod changes;
mod conns;
mod enforce;
mod feed;
mod firewall;
mod gui;
mod lock;
mod mmsg;
mod net;
mod nft;
mod nice;
mod persist;
mod reload;
mod report;
mod rows;
mod signals;
mod sshguard;
mod state;
mod stream;
mod tls;
mod udp;
mod watch;

use crate::config::Config;
use anyhow::{Context, Result, bail};
use pbxguard_app::clock::{now_ms, now_secs};
use pbxguard_app::settings::{self, registrar_config};
use pbxguard_app::{DEFAULT_DATA, open_store, views};
use pbxguard_pbx::{Binding, Service};
use pbxguard_shield::Shield;
use pbxguard_store::prelude::*;
use pbxguard_store::{Store, Topic};
use state::State;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What `pbxguard run` was given on the command line.
pub(crate) struct Options {
    pub(crate) config: Option<PathBuf>,
    pub(crate) sip_udp: Vec<String>,
    pub(crate) sip_tcp: Vec<String>,
    pub(crate) sip_tls: Vec<String>,
    pub(crate) gui: Option<String>,
}

/// The address to advertise for a listener bound to `bound`: the configured one, the bound IP when it
/// is specific, else the address the host would use towards the Internet (no packet is sent).
fn advertised(bound: SocketAddr, configured: Option<std::net::IpAddr>) -> SocketAddr {
    if let Some(ip) = configured {
        return SocketAddr::new(ip, bound.port());
    }
    if !bound.ip().is_unspecified() {
        return bound;
    }
    let probe = if bound.is_ipv4() { "192.0.2.1:9" } else { "[2001:db8::1]:9" };
    let any = if bound.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let ip = std::net::UdpSocket::bind(any)
        .and_then(|s| s.connect(probe).and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(if bound.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    SocketAddr::new(ip, bound.port())
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

/// Registrations as stored, back in the registrar; a phone registered before the restart is as
/// known-good to the gate as it was.
fn restore_bindings(store: &Store, svc: &mut Service, gate: &mut Shield) -> Result<usize> {
    let mut by_ext: HashMap<String, Vec<Binding>> = HashMap::new();
    let rows = store.bindings(now_secs())?;
    let n = rows.len();
    for (ext, binding) in rows.into_iter().filter_map(rows::binding_from_row) {
        gate.mark_good(binding.updated_at * 1000, binding.source.ip());
        by_ext.entry(ext).or_default().push(binding);
    }
    for (ext, bindings) in by_ext {
        svc.registrar_mut().restore(ext, bindings);
    }
    Ok(n)
}

/// Returns the handle through which SIGHUP changes the level.
fn init_logging(cfg: &Config) -> signals::LogLevel {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| signals::filter(&cfg.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    // Colour only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let fmt = if cfg.log.format == "json" { fmt.json().boxed() } else { fmt.boxed() };
    tracing_subscriber::registry().with(filter).with(fmt).init();
    handle
}

/// The version and what this daemon runs with, once at start, so a log shows what was in force: the
/// configuration file as applied (listen addresses after the command line's overrides) and the
/// run-time settings that differ from their defaults.
fn log_effective_config(cfg: &Config, data: &Path, listen: [&[SocketAddr]; 3], store: &Store) {
    let mut eff = cfg.clone();
    eff.data_dir = Some(data.to_owned());
    (eff.sip.udp, eff.sip.tcp, eff.sip.tls) = (listen[0].to_vec(), listen[1].to_vec(), listen[2].to_vec());
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = ?eff, "pbxguard configuration");
    match pbxguard_app::configure::list(store) {
        Ok(list) => {
            let changed: Vec<String> = list
                .into_iter()
                .filter(|s| s.value != s.default && s.default != "(computed)")
                // A report URL may carry an API key in its query: say only that it is set.
                .map(|s| {
                    if s.key.ends_with(".url") { format!("{}=(set)", s.key) } else { format!("{}={}", s.key, s.value) }
                })
                .collect();
            tracing::info!(settings = changed.join(" "), "settings differing from their defaults");
        }
        Err(e) => tracing::warn!(error = %e, "reading settings"),
    }
}

/// Written once every listener is bound, so scripts and tests know the real ports (port 0 allowed).
fn write_listen_file(
    data: &Path,
    udp: &[SocketAddr],
    tcp: &[SocketAddr],
    tls: &[SocketAddr],
    gui: Option<SocketAddr>,
) -> Result<()> {
    let v = serde_json::json!({ "pid": std::process::id(), "udp": udp, "tcp": tcp, "tls": tls, "gui": gui });
    let tmp = data.join("listen.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&v)?)?;
    std::fs::rename(&tmp, data.join("listen.json"))?;
    Ok(())
}

pub(crate) fn run(data: Option<PathBuf>, args: Options) -> Result<()> {
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
    let log_level = init_logging(&cfg);
    alloc::keep_working_set();
    alloc::no_huge_pages();
    let gui_addr = gui::listen_addr(args.gui.as_deref(), &cfg.gui)?;
    let store = open_store(&data)?;
    // Held until `run` returns: a second daemon on this data directory refuses to start.
    let _lock = lock::acquire(&data)?;
    // One reader of the change feed, from now on, for every thread that applies changes.
    let hub = Arc::new(changes::Hub::default());
    let subscribed = (hub.subscribe(&[]), hub.subscribe(&[Topic::Firewall]));
    hub.start(watch::feed(&data.join(pbxguard_app::DB_FILE))?)?;
    let (reload_changes, firewall_changes) = subscribed;
    // The firewall's rollback timer: armed by applies queued in the store, re-armed after a restart.
    firewall::start(data.join(pbxguard_app::DB_FILE), firewall_changes)?;
    let key = pbxguard_app::random::load_or_create_key(&data.join("nonce.key"))?;
    let seed = u64::from_le_bytes(pbxguard_app::random::random_bytes::<8>());
    let rcfg = registrar_config(&store)?;
    let dir = views::directory(&store)?;
    tracing::info!(realm = %rcfg.realm, extensions = dir.len(), data = %data.display(), "starting");
    log_effective_config(&cfg, &data, [&udp_addrs, &tcp_addrs, &tls_addrs], &store);
    let mut svc = Service::new(rcfg, Arc::new(dir), key, seed);
    let plan = Arc::new(views::dialplan(&store, &crate::resolve::System)?);
    let tls_trunks = tls::peers(&store.trunks()?, &plan.trunks);
    svc.set_dialplan(plan.clone());
    // What each extension usually calls, from the calls log (30 days): a first call elsewhere after a
    // restart is judged as it would have been before.
    for c in pbxguard_app::calls::calls(&store, 100_000)?.iter().filter(|c| c.trunk.is_some()) {
        if !c.caller.starts_with("trunk:") {
            svc.learn_call(&c.caller, &c.callee);
        }
    }
    let stale = store.close_stale_calls(now_secs())?;
    if stale > 0 {
        tracing::info!(calls = stale, "calls in progress at the last stop marked ended");
    }
    svc.set_fingerprints(settings::fingerprints(&store)?);
    let mut shield = Shield::with_seed(
        settings::shield_config(&store)?,
        u64::from_le_bytes(pbxguard_app::random::random_bytes::<8>()),
    );
    let restored = restore_bindings(&store, &mut svc, &mut shield)?;
    let now = now_ms();
    let rows = store.bans_for_history(now as i64 - shield.config().history_ms as i64)?;
    shield.restore(now, rows.iter().filter_map(rows::ban_from_row));
    let listening: Vec<_> = udp_addrs.iter().chain(&tcp_addrs).chain(&tls_addrs).copied().collect();
    let trunks: Vec<_> = plan.trunks.iter().map(|t| t.addr).collect();
    shield.set_trusted(views::trusted(&store, &listening, &trunks)?);
    let lists = pbxguard_app::blacklist::fingerprint(&store)?;
    shield.set_blacklist(Arc::new(pbxguard_app::blacklist::load(&store)?));
    tracing::info!(
        bindings = restored,
        bans = shield.ban_count(),
        blacklisted = shield.blacklist().len(),
        "registrations, bans and blacklists restored"
    );
    let (events, persister) = persist::start(data.join("pbxguard.db"))?;
    // The one enforcement path: every decision, in order, to each of these.
    let mut enforcers = enforce::Enforcers::default();
    enforcers.push(events.clone());
    enforcers.push(report::start(&data.join("pbxguard.db"))?);
    let feed = Arc::new(feed::Feed::new());
    enforcers.push(feed.clone());
    let (nft, nft_thread) = nft::enforcer();
    enforcers.push(nft);
    let state = State::new(shield, svc, events, enforcers);
    nft_thread.spawn(state.clone(), &data.join("pbxguard.db"), &hub)?;
    sshguard::start(data.join("pbxguard.db"), state.clone(), &hub)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("pbxguard-io")
        .build()?;
    let signals = signals::Signals::catch(&rt)?;
    let net = net::Net::new(
        state.clone(),
        stream::spawn_connect,
        cfg.sip.max_connections,
        Duration::from_secs(cfg.sip.idle_timeout),
        rt.handle().clone(),
    );
    net.set_tls_peers(tls_trunks);
    net.conns.set_timeouts(settings::stream_timeouts(&store)?);
    let udp_bound = udp::start(&udp_addrs, cfg.sip.udp_workers, &net)?;
    let server_cert =
        if tls_addrs.is_empty() && gui_addr.is_none() { None } else { Some(tls::ServerCert::load(&data, &cfg.tls)?) };
    let tls_acceptor = server_cert.clone().map(tls::acceptor).transpose()?;
    let (tcp_bound, tls_bound) = rt.block_on(stream::start(&tcp_addrs, &tls_addrs, tls_acceptor, &net))?;
    let locals = pbxguard_pbx::Locals {
        udp: udp_bound.first().map(|&a| advertised(a, cfg.sip.advertise)),
        tcp: tcp_bound.first().map(|&a| advertised(a, cfg.sip.advertise)),
        tls: tls_bound.first().map(|&a| advertised(a, cfg.sip.advertise)),
    };
    tracing::info!(?locals, "addresses advertised in Via and Record-Route");
    state.sip().set_locals(locals);
    {
        let net = net.clone();
        std::thread::Builder::new()
            .name("pbxguard-timer".into())
            .spawn(move || net.state.run_timers(|tx| net.send_all(tx)))?;
    }
    let gui_bound = match (gui_addr, &server_cert) {
        (Some(addr), Some(cert)) => {
            let db = Arc::new(gui::Db::new(data.clone()));
            db.warm();
            let shared = Arc::new(gui::Gui {
                data: data.clone(),
                db,
                state: state.clone(),
                feed: feed.clone(),
                cert: cert.clone(),
                sessions: gui::Sessions::new(),
                started: std::time::Instant::now(),
            });
            Some(gui::start(addr, cfg.gui.max_connections, shared)?)
        }
        _ => None,
    };
    if let Some(cert) = &server_cert {
        acme::start(&hub, &rt, data.clone(), cert.clone())?;
    }
    // Kept until the daemon stops: dropping it stops the GUI.
    let (gui_bound, _gui_rt) = gui_bound.unzip();
    write_listen_file(&data, &udp_bound, &tcp_bound, &tls_bound, gui_bound)?;
    tracing::info!(udp = ?udp_bound, tcp = ?tcp_bound, tls = ?tls_bound, gui = ?gui_bound, "pbxguard ready");
    signals::start_watchdog(net.state.clone())?;

    let reload = {
        let net = net.clone();
        let path = data.join("pbxguard.db");
        let listening: Vec<_> = udp_bound.iter().chain(&tcp_bound).chain(&tls_bound).copied().collect();
        std::thread::Builder::new()
            .name("pbxguard-reload".into())
            .spawn(move || reload::run(&path, &net, &listening, lists, &reload_changes))?
    };
    {
        let path = data.join("pbxguard.db");
        std::thread::Builder::new().name("pbxguard-lists".into()).spawn(move || reload::refresh_blacklists(&path))?;
    }
    let reloader = signals::Reloader {
        config_path: args.config,
        data: data.clone(),
        config: cfg,
        cert: server_cert,
        log: log_level,
    };
    rt.block_on(signals::run_until_stopped(signals, reloader))?;
    tracing::info!("shutting down");
    drop(reload);
    persister.flush();
    let _ = std::fs::remove_file(data.join("listen.json"));
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}
