//! Request dispatch: one entry point from bytes to reply, in the order RFC 3261 §8.2 prescribes
//! (method, then header inspection), after the syntax checks that RFC 4475 exercises.

use crate::auth::{Attempt, AuthOutcome, Authenticator};
use crate::config::RegistrarConfig;
use crate::date::HttpDate;
use crate::dialplan::DialPlan;
use crate::directory::Directory;
use crate::event::Event;
use crate::proxy::{DialogEnd, Party, Proxy, outcome_events};
use crate::registrar::{RegisterReply, Registrar};
use crate::transport::{Locals, Target, Transmit, Transport};
use crate::txcache::TxCache;
use crate::uplink::Uplinks;
use pbxguard_shield::{Evidence, Fingerprints, FraudGuard, Observation, Shield, Verdict};
use pbxguard_sip::{
    Challenge, HeaderName, Limits, Message, Method, ParseError, Request, ResponseBuilder, check_request,
};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

const SIP: pbxguard_shield::Service = pbxguard_shield::Service::Sip;

/// What a message alone proves about its source: over UDP nothing (the address can be forged); over
/// an established TCP or TLS connection, that the sender receives there. Answers to our nonces are
/// verified whatever the transport (the authenticator binds each nonce to its address).
fn evidence(transport: Transport) -> Evidence {
    if transport == Transport::Udp { Evidence::Unverified } else { Evidence::Verified }
}

pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, REFER, PRACK";
/// Extensions we implement, for Require/Proxy-Require checks (RFC 3261 §8.2.2.3). `path` and `outbound`
/// are tolerated on REGISTER because phones behind edge proxies send them; none is required to work.
const SUPPORTED: &[&str] = &["path", "outbound", "gruu"];
/// Events kept for the daemon between polls; beyond this they are dropped and counted.
const MAX_EVENTS: usize = 65_536;
/// How long a suspension made here holds, ms: by then the stored flag has reached the directory, and an
/// operator's re-enable wins afterwards.
const SUSPENDED_MS: u64 = 10_000;

pub struct Service {
    pub(crate) config: RegistrarConfig,
    pub(crate) directory: Arc<Directory>,
    auth: Authenticator,
    pub(crate) registrar: Registrar,
    limits: Limits,
    txcache: TxCache,
    events: VecDeque<Event>,
    scratch: Vec<Event>,
    to_tag: String,
    /// The Date header of the current second, formatted once per second rather than per 200 OK.
    date: (u64, String),
    dropped_events: u64,
    fingerprints: Fingerprints,
    /// Extensions under a distributed attack, until when (ms).
    throttled: HashMap<String, u64>,
    pub(crate) proxy: Proxy,
    pub(crate) dialplan: Arc<DialPlan>,
    pub(crate) locals: Locals,
    /// Extensions suspended here and when (ms), until the directory shows the stored flag.
    pub(crate) suspended: HashMap<String, u64>,
    /// What each extension usually calls: a first call elsewhere is an anomaly.
    pub(crate) profiles: pbxguard_shield::anomaly::Profiles,
    pub(crate) uplinks: Uplinks,
    /// The TCP/TLS flow whose request last passed digest authentication and the ACL, until the daemon
    /// takes it: that connection stops counting as unauthenticated. One slot, not a queue: the daemon
    /// takes it after each stream message, and UDP never sets it.
    authenticated: Option<SocketAddr>,
}

/// One request being handled: what every handler needs.
#[derive(Clone, Copy)]
pub(crate) struct Incoming<'m, 'a> {
    pub(crate) msg: &'m Message<'a>,
    pub(crate) req: &'m Request<'a>,
    pub(crate) data: &'m [u8],
    pub(crate) source: SocketAddr,
    pub(crate) transport: Transport,
    pub(crate) now_ms: u64,
}

pub(crate) enum Handled {
    Reply(Vec<u8>),
    /// Cacheable final response of a non-INVITE transaction.
    Final(Vec<u8>),
    Silent,
}

impl Service {
    /// `key` is the persistent nonce key; `seed` makes nonces and the To tag differ between restarts.
    pub fn new(config: RegistrarConfig, directory: Arc<Directory>, key: [u8; 32], seed: u64) -> Self {
        Self {
            config,
            directory,
            auth: Authenticator::new(key, seed),
            registrar: Registrar::default(),
            limits: Limits::default(),
            txcache: TxCache::new(100_000, 32, 48 << 20),
            events: VecDeque::new(),
            scratch: Vec::new(),
            to_tag: format!("pg{seed:016x}"),
            date: (u64::MAX, String::new()),
            dropped_events: 0,
            fingerprints: Fingerprints::default(),
            throttled: HashMap::new(),
            proxy: Proxy::new(seed, FraudGuard::default()),
            dialplan: Arc::new(DialPlan::default()),
            locals: Locals::default(),
            suspended: HashMap::new(),
            profiles: Default::default(),
            uplinks: Uplinks::new(seed),
            authenticated: None,
        }
    }

    /// The addresses put in Via and Record-Route when proxying.
    pub fn set_locals(&mut self, locals: Locals) {
        self.locals = locals;
        self.proxy.locals = locals;
    }

    pub fn set_dialplan(&mut self, plan: Arc<DialPlan>) {
        self.proxy.fraud.set_limits(plan.limits);
        self.proxy.max_call_ms = plan.max_call_ms;
        self.uplinks.sync(&plan.trunks);
        self.dialplan = plan;
    }

    pub fn dialplan(&self) -> &Arc<DialPlan> {
        &self.dialplan
    }

    /// The next message to send somewhere other than back to a request's source.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.proxy.outbox.pop_front()
    }

    /// The same as [`Self::handle_timeout`], under the name the daemon's 20 ms clock has always called.
    pub fn handle_timer(&mut self, now_ms: u64) {
        self.handle_timeout(now_ms);
    }

    /// Does whatever is due at `now_ms`: the proxy's retransmissions and timeouts, trunk registrations,
    /// and forgetting expired bindings, cached responses, throttles, suspensions and fraud counters.
    /// Call it when [`Self::poll_timeout`] says (early or repeated calls do no harm), then drain
    /// [`Self::poll_transmit`] and [`Self::poll_event`]. Milliseconds, like every other entry point;
    /// bindings and cached responses keep whole seconds.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let mut outcomes = Vec::new();
        let mut ended = Vec::new();
        self.proxy.tick(now_ms, &mut outcomes, &mut ended);
        let mut ev = Vec::new();
        self.uplinks.tick(now_ms, &self.locals, &mut self.proxy.outbox, &mut ev);
        outcome_events(&mut self.proxy, now_ms, outcomes, &mut ev);
        for end in ended {
            ev.push(match end {
                DialogEnd::Silent(info) => Event::CallEnded { call_id: info.call_id, status: 408 },
                DialogEnd::Cut { info, after_ms, limit_ms } => {
                    let (extension, number, trunk) = match info.trunk {
                        Some((Party::Caller, t)) => (info.callee, info.caller, t),
                        Some((Party::Callee, t)) => (info.caller, info.callee, t),
                        None => (info.caller, info.callee, String::new()),
                    };
                    Event::CallCut { call_id: info.call_id, extension, number, trunk, duration_ms: after_ms, limit_ms }
                }
            });
        }
        for e in ev {
            self.push_event(e);
        }
        let now = now_ms / 1000;
        // A purge walks every binding: only when one may have expired.
        if self.registrar.next_purge().is_some_and(|at| at <= now) {
            self.registrar.purge(now);
        }
        self.txcache.expire(now);
        self.throttled.retain(|_, until| *until > now_ms);
        self.suspended.retain(|_, at| *at + SUSPENDED_MS > now_ms);
        self.proxy.fraud.sweep(now_ms);
    }

    /// When [`Self::handle_timeout`] next has something to do, on the clock of `now_ms`: the earliest
    /// retransmission, transaction or dialog deadline, trunk registration, relay or cached response to
    /// forget, binding to purge, throttle or suspension to lift, or fraud counters to sweep. `None`:
    /// nothing at all. It may be early (a deadline that has since moved later) but never late, and a
    /// time already past means now. Any message handled can bring it forward, so the daemon asks again
    /// after each one; cheap enough for that.
    pub fn poll_timeout(&self) -> Option<u64> {
        let purge = self.registrar.next_purge().map(|s| s.saturating_mul(1000));
        let cached = self.txcache.next_expiry().map(|s| s.saturating_mul(1000));
        let throttle = self.throttled.values().min().copied();
        let suspension = self.suspended.values().min().map(|at| at + SUSPENDED_MS);
        let uplinks = self.uplinks.poll_timeout(&self.locals);
        [self.proxy.poll_timeout(), uplinks, purge, cached, throttle, suspension, self.proxy.fraud.next_sweep()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The daemon could not open a connection to `target`: calls waiting on it fail now with 503.
    pub fn unreachable(&mut self, now_ms: u64, target: Target) {
        let mut outcomes = Vec::new();
        self.proxy.unreachable(now_ms, target, &mut outcomes);
        let mut ev = Vec::new();
        outcome_events(&mut self.proxy, now_ms, outcomes, &mut ev);
        for e in ev {
            self.push_event(e);
        }
    }

    /// Trunks that register, and whether they are registered now.
    pub fn trunk_registrations(&self) -> Vec<(String, bool)> {
        self.uplinks.status()
    }

    /// Calls being set up or established (dialogs in the proxy's table).
    pub fn active_calls(&self) -> usize {
        self.proxy.dialogs.len()
    }

    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    pub fn set_config(&mut self, config: RegistrarConfig) {
        self.config = config;
    }

    pub fn set_directory(&mut self, directory: Arc<Directory>) {
        let d = directory.clone();
        self.registrar.retain_extensions(|e| d.contains(e));
        self.directory = directory;
    }

    pub fn set_fingerprints(&mut self, f: Fingerprints) {
        self.fingerprints = f;
    }

    /// Until `until_ms`, only addresses that authenticated as `user` before may try it.
    pub fn throttle_user(&mut self, user: String, until_ms: u64) {
        self.throttled.insert(user, until_ms);
    }

    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    pub fn registrar_mut(&mut self) -> &mut Registrar {
        &mut self.registrar
    }

    /// The source of the TCP/TLS connection a request just authenticated on (a REGISTER the registrar
    /// or an INVITE the proxy accepted the digest and the ACL of), once.
    pub fn take_authenticated(&mut self) -> Option<SocketAddr> {
        self.authenticated.take()
    }

    /// Notes that `inc` authenticated (see [`Self::take_authenticated`]).
    pub(crate) fn accepted(&mut self, inc: Incoming<'_, '_>) {
        if inc.transport != Transport::Udp {
            self.authenticated = Some(inc.source);
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Sizes of the bounded tables, for metrics and the memory-cap tests.
    pub fn table_sizes(&self) -> (usize, usize, usize) {
        (self.txcache.len() + self.proxy.table_size(), self.auth.tracked_nonces(), self.registrar.binding_count())
    }

    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    pub(crate) fn push_event(&mut self, e: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.dropped_events += 1;
        } else {
            self.events.push_back(e);
        }
    }

    /// Handles one message. Returns the bytes to send back to `source` on the same transport, if any.
    /// Handles one message. `shield` decides first whether the source is heard at all, and learns from
    /// what follows. Returns the bytes to send back to `source` on the same transport, if any.
    pub fn handle(
        &mut self,
        shield: &mut Shield,
        now_ms: u64,
        data: &[u8],
        source: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let ip = source.ip();
        if let Verdict::Drop(_) = shield.admit(now_ms, ip) {
            return None;
        }
        let now = now_ms / 1000;
        let class = evidence(transport);
        let msg = match Message::parse(data, &self.limits) {
            Ok(m) => m,
            Err(e) => {
                if shield.observe_with(now_ms, SIP, class, Observation::Malformed { ip, reason: &e.to_string() }) {
                    return None;
                }
                return self.malformed(data, e, source);
            }
        };
        let req = match check_request(&msg) {
            Ok(r) => r,
            Err(pbxguard_sip::SanityError::NotARequest) => {
                self.on_response(now_ms, &msg, data, source);
                return None;
            }
            Err(e) => {
                let banned =
                    shield.observe_with(now_ms, SIP, class, Observation::Malformed { ip, reason: &e.to_string() });
                self.push_event(Event::Malformed { source, reason: e.to_string() });
                if banned || e == pbxguard_sip::SanityError::TooManyVias {
                    return None;
                }
                let reason = match e.status() {
                    505 => "Version Not Supported",
                    416 => "Unsupported URI Scheme",
                    _ => "Bad Request",
                };
                return Some(self.reply(&msg, e.status(), reason, source).finish(None, b""));
            }
        };
        // Attack tools get silence, and their source a ban (only the transport address, never a header).
        if let Some(evidence) = self.fingerprints.check(msg.user_agent(), msg.header(HeaderName::From)) {
            shield.observe_with(now_ms, SIP, class, Observation::Scanner { ip, evidence: &evidence });
            self.push_event(Event::Scanner { source, evidence });
            return None;
        }
        // Only UDP retransmits: on TCP and TLS a server transaction ends with its final response
        // (RFC 3261 §17.2.2, Timer J = 0), so caching it there would only cost memory.
        let key = req
            .via
            .branch()
            .filter(|b| transport == Transport::Udp && b.starts_with("z9hG4bK") && req.method != Method::Ack)
            .map(|b| self.txcache.key(b, req.method, source));
        if let Some(k) = &key
            && let Some(cached) = self.txcache.get(k)
        {
            return Some(cached.to_vec());
        }
        match self.dispatch(shield, Incoming { msg: &msg, req: &req, data, source, transport, now_ms }) {
            Handled::Reply(r) => Some(r),
            Handled::Final(r) => {
                if let Some(k) = key {
                    self.txcache.insert(now, k, &r);
                }
                Some(r)
            }
            Handled::Silent => None,
        }
    }

    fn malformed(&mut self, data: &[u8], e: ParseError, source: SocketAddr) -> Option<Vec<u8>> {
        self.push_event(Event::Malformed { source, reason: e.to_string() });
        if data.starts_with(b"SIP/") || matches!(e, ParseError::TooLarge | ParseError::Incomplete | ParseError::NotUtf8)
        {
            return None;
        }
        // Answer 400 only when the request carries what a response needs (RFC 3261 §8.2.6); otherwise
        // there is nobody to answer and silence is cheaper.
        let msg = Message::parse_headers_only(data, &self.limits).ok()?;
        let has = |n| msg.count(n) == 1;
        if pbxguard_sip::too_many_vias(&msg) {
            return None;
        }
        if !(msg.header(HeaderName::Via).is_some()
            && has(HeaderName::From)
            && has(HeaderName::To)
            && has(HeaderName::CallId)
            && has(HeaderName::CSeq))
        {
            return None;
        }
        Some(self.reply(&msg, 400, "Bad Request", source).finish(None, b""))
    }

    pub(crate) fn reply(&self, msg: &Message<'_>, code: u16, reason: &str, source: SocketAddr) -> ResponseBuilder {
        ResponseBuilder::new(msg, code, reason, source, &self.to_tag)
    }

    /// [`Self::reply`] to a request that passed the sanity checks: its Via and To are not parsed again.
    pub(crate) fn reply_to(&self, inc: Incoming<'_, '_>, code: u16, reason: &str) -> ResponseBuilder {
        ResponseBuilder::for_request(inc.msg, inc.req, code, reason, inc.source, &self.to_tag)
    }

    fn dispatch(&mut self, shield: &mut Shield, inc: Incoming<'_, '_>) -> Handled {
        let Incoming { msg, req, source, .. } = inc;
        let to_self_options = req.method == Method::Options && req.uri.user.is_none();
        let in_dialog = req.to.tag().is_some();
        match req.method {
            Method::Ack => return self.ack(inc),
            _ if req.max_forwards == Some(0) && !to_self_options => {
                return Handled::Final(self.reply(msg, 483, "Too Many Hops", source).finish(None, b""));
            }
            Method::Register | Method::Options | Method::Invite if !in_dialog => {}
            Method::Cancel => return self.cancel(inc),
            _ if in_dialog => return self.in_dialog(shield, inc),
            Method::Bye => {
                return Handled::Final(
                    self.reply(msg, 481, "Call/Transaction Does Not Exist", source).finish(None, b""),
                );
            }
            Method::Other(_) => {
                return Handled::Final(
                    self.reply(msg, 501, "Not Implemented", source).header("Allow", ALLOW).finish(None, b""),
                );
            }
            _ => {
                return Handled::Final(
                    self.reply(msg, 405, "Method Not Allowed", source).header("Allow", ALLOW).finish(None, b""),
                );
            }
        }
        let unsupported: Vec<&str> = msg
            .header_values(HeaderName::Require)
            .chain(msg.header_values(HeaderName::ProxyRequire))
            .filter(|o| !o.is_empty() && !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(o)))
            .collect();
        if !unsupported.is_empty() {
            let r = self.reply(msg, 420, "Bad Extension", source).header("Unsupported", &unsupported.join(", "));
            return Handled::Final(r.finish(None, b""));
        }
        if req.method == Method::Options {
            let r = self.reply(msg, 200, "OK", source).header("Allow", ALLOW).header("Accept", "application/sdp");
            return Handled::Final(r.header("Supported", "path, outbound").finish(None, b""));
        }
        if req.method == Method::Invite {
            return self.invite(shield, inc);
        }
        self.register(shield, inc)
    }

    /// Digest authentication with the shield's bookkeeping, shared by the registrar (401) and the
    /// proxy (407). `Err` carries the answer for a request that did not authenticate.
    pub(crate) fn authenticate(
        &mut self,
        shield: &mut Shield,
        inc: Incoming<'_, '_>,
        proxy: bool,
        hint: Option<&str>,
    ) -> Result<String, Handled> {
        let Incoming { msg, source, now_ms, .. } = inc;
        let now = now_ms / 1000;
        let ip = source.ip();
        let header = if proxy { HeaderName::ProxyAuthorization } else { HeaderName::Authorization };
        let throttled = &self.throttled;
        let blocked = |user: &str| {
            throttled.get(user).is_some_and(|&until| until > now_ms) && !shield.authenticated_before(ip, user)
        };
        let attempt = Attempt { msg, header, hint, source, now, blocked: &blocked };
        let verdict = self.auth.authenticate(&self.config, &self.directory, attempt);
        if let Some((user, known, replay)) = verdict.failure {
            let obs = if known {
                Observation::AuthFailed { ip, user: &user }
            } else {
                Observation::UnknownUser { ip, user: &user }
            };
            let banned = shield.observe(now_ms, obs);
            let e = if replay {
                Event::NonceReplay { source, user }
            } else {
                Event::AuthFailed { source, user, known, method: if proxy { "INVITE" } else { "REGISTER" } }
            };
            self.push_event(e);
            if banned {
                return Err(Handled::Silent);
            }
        }
        match verdict.outcome {
            AuthOutcome::Ok(user) => {
                // Successes are not events (they would double the event traffic); the shield learns them.
                shield.observe(now_ms, Observation::AuthSucceeded { ip, user: &user });
                Ok(user)
            }
            AuthOutcome::Challenge { stale, retry, algorithms } => {
                let (code, reason, name) = if proxy {
                    (407, "Proxy Authentication Required", "Proxy-Authenticate")
                } else {
                    (401, "Unauthorized", "WWW-Authenticate")
                };
                let nonce = self.auth.nonce(now, retry, source);
                let mut r = self.reply_to(inc, code, reason);
                for &algorithm in &algorithms {
                    let c = Challenge { realm: &self.config.realm, nonce: &nonce, algorithm, stale };
                    r = r.header_with(name, |out| c.write_to(out));
                }
                // Not cached: a retransmitted request may carry the same credentials and deserve the
                // same challenge, but a fresh nonce costs as little as a lookup.
                Err(Handled::Reply(r.finish(None, b"")))
            }
            AuthOutcome::Forbidden => Err(Handled::Final(self.reply_to(inc, 403, "Forbidden").finish(None, b""))),
        }
    }

    /// The extension's ACL admits the source; otherwise an event and the 403 to send.
    pub(crate) fn acl_check(&mut self, inc: Incoming<'_, '_>, user: &str) -> Result<(), Handled> {
        let Some(acl) = self.directory.get(user).and_then(|e| e.acl.clone()) else { return Ok(()) };
        let (allowed, rule) = acl.check(inc.source.ip());
        if allowed {
            return Ok(());
        }
        let rule = rule.map(|r| r.to_string());
        self.push_event(Event::AclDenied { source: inc.source, user: user.to_owned(), group: acl.name.clone(), rule });
        Err(Handled::Final(self.reply(inc.msg, 403, "Forbidden", inc.source).finish(None, b"")))
    }

    fn register(&mut self, shield: &mut Shield, inc: Incoming<'_, '_>) -> Handled {
        let Incoming { msg, req, source, transport, now_ms, .. } = inc;
        let now = now_ms / 1000;
        let ip = source.ip();
        let aor = req.to.uri.user;
        // An unauthenticated REGISTER for a user that does not exist is how extensions are enumerated
        // (svwar). The answer stays the same as for a real one; the shield counts it.
        if let Some(a) = aor
            && msg.header(HeaderName::Authorization).is_none()
            && !self.directory.contains(a)
        {
            // No nonce of ours in it: over UDP, anyone could have sent it in this address's name.
            let banned =
                shield.observe_with(now_ms, SIP, evidence(transport), Observation::UnknownUser { ip, user: a });
            self.push_event(Event::UnknownUser { source, user: a.to_owned() });
            if banned {
                return Handled::Silent;
            }
        }
        let user = match self.authenticate(shield, inc, false, aor) {
            Ok(u) => u,
            Err(h) => return h,
        };
        // The authenticated identity must own the address-of-record (RFC 3261 §10.3 step 4).
        if aor != Some(user.as_str()) {
            self.push_event(Event::IdentityMismatch { source, user, aor: aor.unwrap_or("").to_owned() });
            return Handled::Final(self.reply(msg, 403, "Forbidden", source).finish(None, b""));
        }
        if let Err(h) = self.acl_check(inc, &user) {
            return h;
        }
        self.accepted(inc);
        self.scratch.clear();
        let mut events = std::mem::take(&mut self.scratch);
        let reply =
            self.registrar.register(&self.config, msg, req, &user, source, transport.as_str(), now, &mut events);
        for e in events.drain(..) {
            self.push_event(e);
        }
        self.scratch = events;
        let r = match reply {
            RegisterReply::Ok => {
                let mut r = self.reply_to(inc, 200, "OK");
                for b in self.registrar.bindings(&user, now) {
                    r = r.header_with("Contact", |out| {
                        out.extend_from_slice(b.contact.as_bytes());
                        out.extend_from_slice(b";expires=");
                        pbxguard_sip::push_decimal(out, b.expires_at.saturating_sub(now));
                    });
                }
                if self.date.0 != now {
                    self.date.1.clear();
                    let _ = write!(self.date.1, "{}", HttpDate(now));
                    self.date.0 = now;
                }
                r.header("Date", &self.date.1)
            }
            RegisterReply::IntervalTooBrief { min } => {
                self.reply_to(inc, 423, "Interval Too Brief").header("Min-Expires", &min.to_string())
            }
            RegisterReply::Status(code, reason) => self.reply_to(inc, code, reason),
        };
        Handled::Final(r.finish(None, b""))
    }
}
