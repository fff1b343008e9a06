//! The daemon: binds the SIP listeners, drives the sans-IO service, persists what it reports, and
//! reloads extensions and settings when another process commits to the database.

mod alloc;
mod mmsg;
mod net;
mod persist;
mod reload;
mod report;
mod rows;
mod stream;
mod tls;
mod udp;

pub(crate) use tls::ca_certificates as tls_ca_certificates;

use crate::cli::RunArgs;
use crate::commands::{DEFAULT_DATA, now_secs};
use crate::config::Config;
use crate::settings::{self, open_store, parse_algorithms, registrar_config};
use anyhow::{Context, Result, bail};
use pbxguard_pbx::{Binding, DialPlan, Directory, ExtensionAuth, Route, Service, Transport, Trunk};
use pbxguard_shield::{AclGroup, Decision, Prefix, Rule, Shield};
use pbxguard_store::Store;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything the packet path needs: the protection engine (shared by every protocol) and the SIP
/// service. One lock, held for one `handle` call (microseconds), never across an await.
pub(crate) struct Core {
    pub(crate) shield: Shield,
    pub(crate) sip: Service,
}

pub(crate) type Shared = Arc<Mutex<Core>>;

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Core> {
    // A panic while holding the lock is a bug, but the service state is still consistent enough to keep
    // serving: recover rather than take every listener down.
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs one message through the service, sends what it forwards and hands its events to the persister.
pub(crate) fn handle(
    net: &Arc<net::Net>,
    data: &[u8],
    source: SocketAddr,
    transport: pbxguard_pbx::Transport,
) -> Option<Vec<u8>> {
    let mut tx = Vec::new();
    let reply = {
        let mut core = lock(&net.shared);
        let Core { shield, sip } = &mut *core;
        let r = sip.handle(shield, now_ms(), data, source, transport);
        drain(shield, sip, &net.events);
        take_transmits(sip, &mut tx);
        r
    };
    net.send_all(&mut tx);
    reply
}

pub(crate) fn take_transmits(sip: &mut Service, out: &mut Vec<pbxguard_pbx::Transmit>) {
    while let Some(t) = sip.poll_transmit() {
        out.push(t);
    }
}

/// The proxy's clock: retransmissions and timeouts, every 20 ms.
fn timer(net: &Arc<net::Net>) {
    let mut tx = Vec::new();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        {
            let mut core = lock(&net.shared);
            let Core { shield, sip } = &mut *core;
            sip.handle_timer(now_ms());
            drain(shield, sip, &net.events);
            take_transmits(sip, &mut tx);
        }
        net.send_all(&mut tx);
    }
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

/// Moves what the service and the shield produced into `out`, applying what must take effect at once.
/// Hands a locked section's events and decisions to the persister while the lock is still held, so the
/// persister sees them in the order they happened across every thread: an operator's ban applied by the
/// reload thread must not be overwritten by a flood ban drained just before it on a UDP worker but queued
/// after it; and a "call started" must be queued before the forwarded INVITE leaves (its answer may be
/// handled by another worker first). Queueing never blocks (a full queue is counted and dropped).
pub(crate) fn drain(shield: &mut Shield, sip: &mut Service, events: &persist::Sender) {
    while let Some(e) = sip.poll_event() {
        events.send(persist::Msg::Event(e));
    }
    while let Some(d) = shield.poll_decision() {
        if let Decision::ThrottleUser { user, until_ms } = &d {
            sip.throttle_user(user.clone(), *until_ms);
        }
        events.send(persist::Msg::Decision(d));
    }
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

pub(crate) fn acl_groups(store: &Store) -> Result<HashMap<String, Arc<AclGroup>>> {
    let mut out = HashMap::new();
    for row in store.acls()? {
        let rules = row
            .rules
            .split_whitespace()
            .map(Rule::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("ACL group {}: {e}", row.name))?;
        out.insert(row.name.clone(), Arc::new(AclGroup { name: row.name, rules }));
    }
    Ok(out)
}

pub(crate) fn directory(store: &Store) -> Result<Directory> {
    let acls = acl_groups(store)?;
    let mut m = HashMap::new();
    for e in store.extensions()? {
        let algorithms = match &e.algorithms {
            Some(a) => Some(parse_algorithms(a).map_err(|err| anyhow::anyhow!("extension {}: {err}", e.number))?),
            None => None,
        };
        // An extension whose group vanished fails closed: an empty group admits nobody.
        let acl = e
            .acl
            .as_ref()
            .map(|g| acls.get(g).cloned().unwrap_or_else(|| Arc::new(AclGroup { name: g.clone(), rules: Vec::new() })));
        let c = e.credentials;
        m.insert(
            e.number,
            ExtensionAuth {
                ha1: [c.ha1_md5, c.ha1_sha256, c.ha1_sha512_256],
                algorithms,
                acl,
                cos: e.cos,
                suspended: e.suspended.is_some(),
                limits: pbxguard_shield::ExtensionLimits { max_concurrent: e.max_calls, per_hour: e.calls_per_hour },
            },
        );
    }
    Ok(Directory::new(m))
}

/// Trunks, routes, DIDs, Classes of Service, numbering plan and fraud limits as stored. A trunk whose
/// host does not resolve is left out (and logged), not fatal: the other routes keep working.
pub(crate) fn dialplan(store: &Store) -> Result<DialPlan> {
    let mut plan = DialPlan {
        plan: pbxguard_shield::NumberingPlan::by_name(&settings::get(store, "calls.numbering_plan")?)
            .map_err(|e| anyhow::anyhow!("calls.numbering_plan: {e}"))?,
        limits: settings::call_limits(store)?,
        max_call_ms: pbxguard_shield::config::parse_duration_ms(&settings::get(store, "calls.max_duration")?)
            .unwrap_or(4 * 3_600_000),
        ..DialPlan::default()
    };
    for t in store.trunks()? {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(t.host.as_str(), t.port)).ok().and_then(|mut a| a.next());
        let Some(addr) = addr else {
            tracing::error!(trunk = t.name, host = t.host, "trunk host does not resolve; its routes are unusable");
            continue;
        };
        let transport = match t.transport.as_str() {
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            _ => Transport::Udp,
        };
        let auth = match (t.username, t.realm, t.ha1) {
            (Some(username), Some(realm), Some((ha1_md5, ha1_sha256))) => {
                Some(pbxguard_pbx::TrunkAuth { username, realm, ha1_md5, ha1_sha256 })
            }
            _ => None,
        };
        let register = t.register_expires;
        plan.trunks.push(Arc::new(Trunk { name: t.name, host: t.host, addr, transport, auth, register }));
    }
    for r in store.routes()? {
        match pbxguard_shield::Pattern::parse(&r.pattern) {
            Ok(pattern) => {
                plan.routes.push(Route { pattern, trunk: r.trunk, strip: r.strip as usize, prepend: r.prepend })
            }
            Err(e) => tracing::error!(route = r.id, error = e, "stored route pattern is invalid; skipped"),
        }
    }
    for d in store.dids()? {
        plan.dids.insert(d.number, d.extension);
    }
    for c in store.cos_list()? {
        let allow = pbxguard_shield::Categories::parse(&c.allow).map_err(|e| anyhow::anyhow!("cos {}: {e}", c.name))?;
        plan.cos.insert(c.name.clone(), pbxguard_shield::ClassOfService { name: c.name, allow });
    }
    Ok(plan)
}

pub(crate) fn restore_bindings(store: &Store, svc: &mut Service) -> Result<usize> {
    let mut by_ext: HashMap<String, Vec<Binding>> = HashMap::new();
    let rows = store.bindings(now_secs())?;
    let n = rows.len();
    for (ext, binding) in rows.into_iter().filter_map(rows::binding_from_row) {
        by_ext.entry(ext).or_default().push(binding);
    }
    for (ext, bindings) in by_ext {
        svc.registrar_mut().restore(ext, bindings);
    }
    Ok(n)
}

/// Trusted networks: the operator's list, every specific address the daemon listens on, and trunks.
pub(crate) fn trusted(store: &Store, listening: &[std::net::SocketAddr], trunks: &[Arc<Trunk>]) -> Result<Vec<Prefix>> {
    let mut out: Vec<Prefix> = Vec::new();
    for (cidr, _) in store.trusted()? {
        out.push(Prefix::parse_lenient(&cidr).map_err(|e| anyhow::anyhow!("trusted network {cidr}: {e}"))?);
    }
    out.extend(listening.iter().map(|a| a.ip()).filter(|ip| !ip.is_unspecified()).map(Prefix::host));
    // A carrier sends every inbound call and answer from its address: flood-limiting or banning it
    // would cut the PBX off. Trunks (as the dial plan resolved them) are trusted like the operator's
    // networks.
    out.extend(trunks.iter().map(|t| Prefix::host(t.addr.ip())));
    Ok(out)
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
    alloc::keep_working_set();
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
    let plan = Arc::new(dialplan(&store)?);
    let tls_trunks = tls::peers(&store.trunks()?, &plan.trunks);
    svc.set_dialplan(plan.clone());
    let stale = store.close_stale_calls(now_secs())?;
    if stale > 0 {
        tracing::info!(calls = stale, "calls in progress at the last stop marked ended");
    }
    svc.set_fingerprints(settings::fingerprints(&store)?);
    let restored = restore_bindings(&store, &mut svc)?;
    let mut shield =
        Shield::with_seed(settings::shield_config(&store)?, u64::from_le_bytes(crate::secret::random_bytes::<8>()));
    let now = now_ms();
    let rows = store.bans_for_history(now as i64 - shield.config().history_ms as i64)?;
    shield.restore(now, rows.iter().filter_map(rows::ban_from_row));
    let listening: Vec<_> = udp_addrs.iter().chain(&tcp_addrs).chain(&tls_addrs).copied().collect();
    shield.set_trusted(trusted(&store, &listening, &plan.trunks)?);
    let lists = crate::blacklist::fingerprint(&store)?;
    shield.set_blacklist(Arc::new(crate::blacklist::load(&store)?));
    tracing::info!(
        bindings = restored,
        bans = shield.ban_count(),
        blacklisted = shield.blacklist().len(),
        "registrations, bans and blacklists restored"
    );
    let shared: Shared = Arc::new(Mutex::new(Core { shield, sip: svc }));
    let reporter = report::start(&data.join("pbxguard.db"))?;
    let (events, persister) = persist::start(data.join("pbxguard.db"), reporter)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("pbxguard-io")
        .build()?;
    let net = net::Net::new(
        shared.clone(),
        events.clone(),
        cfg.sip.max_connections,
        Duration::from_secs(cfg.sip.idle_timeout),
        rt.handle().clone(),
    );
    net.set_tls_peers(tls_trunks);
    let udp_bound = udp::start(&udp_addrs, cfg.sip.udp_workers, &net)?;
    let tls_acceptor = if tls_addrs.is_empty() { None } else { Some(tls::acceptor(&data, &cfg.tls)?) };
    let (tcp_bound, tls_bound) = rt.block_on(stream::start(&tcp_addrs, &tls_addrs, tls_acceptor, &net))?;
    let locals = pbxguard_pbx::Locals {
        udp: udp_bound.first().map(|&a| advertised(a, cfg.sip.advertise)),
        tcp: tcp_bound.first().map(|&a| advertised(a, cfg.sip.advertise)),
        tls: tls_bound.first().map(|&a| advertised(a, cfg.sip.advertise)),
    };
    tracing::info!(?locals, "addresses advertised in Via and Record-Route");
    lock(&shared).sip.set_locals(locals);
    {
        let net = net.clone();
        std::thread::Builder::new().name("pbxguard-timer".into()).spawn(move || timer(&net))?;
    }
    write_listen_file(&data, &udp_bound, &tcp_bound, &tls_bound)?;
    tracing::info!(udp = ?udp_bound, tcp = ?tcp_bound, tls = ?tls_bound, "pbxguard ready");

    let reload = {
        let net = net.clone();
        let path = data.join("pbxguard.db");
        let listening: Vec<_> = udp_bound.iter().chain(&tcp_bound).chain(&tls_bound).copied().collect();
        std::thread::Builder::new()
            .name("pbxguard-reload".into())
            .spawn(move || reload::run(&path, &net, &listening, lists))?
    };
    {
        let path = data.join("pbxguard.db");
        std::thread::Builder::new().name("pbxguard-lists".into()).spawn(move || reload::refresh_blacklists(&path))?;
    }
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
