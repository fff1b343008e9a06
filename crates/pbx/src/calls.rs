//! Call handling on top of the proxy core: who may call what (authentication, ACL, suspension, Class of
//! Service, toll-fraud limits), where the call goes (extension contacts, trunk, DID), and the glue
//! between requests, responses and the proxy's transactions.

use crate::dialplan::{Trunk, dialled};
use crate::event::Event;
use crate::proxy::{BuildRequest, CallInfo, MAX_INVITE, MAX_PENDING_PER_CALLER, Party, outcome_events};
use crate::service::{Handled, Incoming, Service};
use crate::transfer::{has_replaces, refused_transfer};
use crate::transport::{Locals, Target, Transport};
use pbxguard_shield::{Category, Shield};
use pbxguard_sip::{Forward, HeaderName, Message, Via, forward_request};
use std::net::SocketAddr;
use std::sync::Arc;

fn transport_of(s: &str) -> Transport {
    match s {
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        _ => Transport::Udp,
    }
}

impl Service {
    fn deny(&mut self, inc: Incoming<'_, '_>, code: u16, reason: &str) -> Handled {
        Handled::Final(self.reply(inc.msg, code, reason, inc.source).finish(None, b""))
    }

    pub(crate) fn refuse(&mut self, inc: Incoming<'_, '_>, ext: &str, number: &str, rule: String) -> Handled {
        self.push_event(Event::CallRefused {
            source: inc.source,
            extension: ext.to_owned(),
            number: number.to_owned(),
            status: 403,
            rule,
        });
        self.deny(inc, 403, "Forbidden")
    }

    /// 503 with Retry-After: a limit on what the proxy keeps, not a refusal of the caller.
    fn busy(&self, inc: Incoming<'_, '_>) -> Handled {
        let r = self.reply(inc.msg, 503, "Service Unavailable", inc.source).header("Retry-After", "5");
        Handled::Final(r.finish(None, b""))
    }

    fn is_suspended(&self, ext: &str) -> bool {
        self.suspended.contains_key(ext) || self.directory.get(ext).is_some_and(|e| e.suspended)
    }

    /// Whether `ext` may call `number`, and what the number is: an extension (internal), or a category
    /// of the numbering plan that the extension's Class of Service allows (with its country list for
    /// international numbers). `Err`: the rule that refuses it. Emergency numbers pass whatever the
    /// CoS or a suspension says. The fraud limits are [`Self::count_trunk_call`]'s.
    pub(crate) fn authorise(&self, ext: &str, number: &str) -> Result<Category, String> {
        if self.directory.contains(number) {
            if self.is_suspended(ext) {
                return Err("extension suspended".into());
            }
            return Ok(Category::Internal);
        }
        let plan = &self.dialplan;
        let Some((category, pattern)) = plan.plan.classify(number) else {
            return Err(format!("number matches no category of the {} plan", plan.plan.name));
        };
        if category == Category::Emergency {
            return Ok(category);
        }
        if self.is_suspended(ext) {
            return Err("extension suspended".into());
        }
        let cos = plan.cos(self.directory.get(ext).and_then(|e| e.cos.as_deref()));
        if !cos.allows(category) {
            return Err(format!("class of service {} does not allow {category} ({pattern})", cos.name));
        }
        if category == Category::International {
            let country = plan.plan.country(number);
            if !cos.allows_country(country) {
                let whom = match country {
                    Some(c) => format!("country {c} ({})", c.name()),
                    None => "a number with no known country code".into(),
                };
                return Err(format!("class of service {} does not allow {whom} ({pattern})", cos.name));
            }
        }
        Ok(category)
    }

    /// Counts a call leaving through a trunk against `ext`'s fraud limits; returns the extension whose
    /// counters it uses (`None` for emergency calls, which are never counted nor refused). `Err`: the
    /// limit it breaks; an hourly limit also suspends the extension when `fraud.suspend` is on.
    pub(crate) fn count_trunk_call(
        &mut self,
        ext: &str,
        number: &str,
        category: Category,
        now_ms: u64,
    ) -> Result<Option<String>, String> {
        if category == Category::Emergency {
            return Ok(None);
        }
        self.unusual_call(ext, number, category, now_ms)?;
        let own = self.directory.get(ext).map(|e| e.limits).unwrap_or_default();
        match self.proxy.fraud.try_start(ext, own, category == Category::International, now_ms) {
            Ok(()) => Ok(Some(ext.to_owned())),
            Err(refusal) => {
                let rule = refusal.rule();
                if self.dialplan.limits.suspend && refusal.suspends() {
                    self.suspended.insert(ext.to_owned(), now_ms);
                    self.push_event(Event::ExtensionSuspended { extension: ext.to_owned(), rule: rule.clone() });
                }
                Err(rule)
            }
        }
    }

    /// Judges a trunk call against what `ext` usually calls: each anomaly is an event; with
    /// `fraud.suspend_on_anomaly` the extension is suspended and the call refused.
    fn unusual_call(&mut self, ext: &str, number: &str, category: Category, now_ms: u64) -> Result<(), String> {
        let limits = self.dialplan.limits;
        let country = (category == Category::International).then(|| self.dialplan.plan.country(number)).flatten();
        let found = self.profiles.check(ext, category, country, now_ms, limits.business_hours.as_ref());
        if found.is_empty() {
            return Ok(());
        }
        let what = found.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        self.push_event(Event::UnusualCall {
            extension: ext.to_owned(),
            number: number.to_owned(),
            detail: what.clone(),
            suspended: limits.suspend_on_anomaly,
        });
        if !limits.suspend_on_anomaly {
            return Ok(());
        }
        let rule = format!("unusual call: {what}");
        self.suspended.insert(ext.to_owned(), now_ms);
        self.push_event(Event::ExtensionSuspended { extension: ext.to_owned(), rule: rule.clone() });
        Err(rule)
    }

    /// The longest trunk call of `ext` (its own, else `calls.max_trunk_duration`), ms; `None`: no limit.
    fn trunk_call_limit(&self, ext: &str) -> Option<u64> {
        let own = self.directory.get(ext).and_then(|e| e.max_trunk_call_ms);
        Some(own.unwrap_or(self.dialplan.max_trunk_call_ms)).filter(|&ms| ms > 0)
    }

    /// Teaches the profiles a past call (the calls log at start): `caller` called `number`.
    pub fn learn_call(&mut self, caller: &str, number: &str) {
        if let Some((category, _)) = self.dialplan.plan.classify(number) {
            let country = (category == Category::International).then(|| self.dialplan.plan.country(number)).flatten();
            self.profiles.learn(caller, category, country);
        }
    }

    /// A new INVITE (no To tag).
    pub(crate) fn invite(&mut self, shield: &mut Shield, inc: Incoming<'_, '_>) -> Handled {
        let Incoming { msg, req, source, now_ms, .. } = inc;
        let branch = req.via.branch().unwrap_or("");
        if let Some(last) = self.proxy.retransmission(branch, source) {
            return last.map_or(Handled::Silent, Handled::Reply);
        }
        let looped = msg
            .header_values(HeaderName::Via)
            .filter_map(Via::parse)
            .any(|v| self.locals.is_us(v.host, v.port) && v.branch().is_some_and(|b| b.starts_with("z9hG4bKpg")));
        if looped {
            return self.deny(inc, 482, "Loop Detected");
        }
        if self.proxy.is_full() {
            return self.busy(inc);
        }
        if let Some(trunk) = self.dialplan.trunk_from(source.ip()).cloned() {
            return self.inbound(inc, &trunk.name);
        }
        let ext = match self.authenticate(shield, inc, true, req.from.uri.user) {
            Ok(u) => u,
            Err(h) => return h,
        };
        if inc.data.len() > MAX_INVITE {
            return self.deny(inc, 413, "Request Entity Too Large");
        }
        if self.proxy.pending(&ext) >= MAX_PENDING_PER_CALLER {
            return self.busy(inc);
        }
        // A phone calls as itself: the From user must be the authenticated extension (no caller-ID
        // spoofing of a colleague, and calls are charged to the right extension).
        if req.from.uri.user != Some(ext.as_str()) {
            let aor = req.from.uri.user.unwrap_or("").to_owned();
            self.push_event(Event::IdentityMismatch { source, user: ext, aor });
            return self.deny(inc, 403, "Forbidden");
        }
        if let Err(h) = self.acl_check(inc, &ext) {
            return h;
        }
        self.accepted(inc);
        let Some(number) = dialled(&req.uri) else { return self.deny(inc, 404, "Not Found") };
        let now = now_ms / 1000;
        let category = match self.authorise(&ext, &number) {
            Ok(c) => c,
            Err(rule) => return self.refuse(inc, &ext, &number, rule),
        };
        if self.directory.contains(&number) {
            return self.call_extension(inc, &number, ext.clone(), None, now);
        }
        let plan = self.dialplan.clone();
        let Some((trunk, out_number)) = plan.route(&number) else {
            return self.deny(inc, 404, "Not Found");
        };
        // An INVITE with Replaces takes over a call the carrier has (RFC 3891): a transfer, refused
        // unless the trunk accepts them. The number it calls has passed the checks above like any;
        // an emergency call goes through whatever it carries.
        if has_replaces(msg) && !trunk.allow_refer && category != Category::Emergency {
            return self.refuse(inc, &ext, &number, refused_transfer(&trunk.name, "INVITE with Replaces"));
        }
        let counted = match self.count_trunk_call(&ext, &number, category, now_ms) {
            Ok(c) => c,
            Err(rule) => return self.refuse(inc, &ext, &number, rule),
        };
        let target = Target { addr: trunk.addr, transport: trunk.transport };
        let tp = match trunk.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        let ruri = format!("sip:{out_number}@{}:{}{tp}", trunk.host, trunk.addr.port());
        let trunk_name = trunk.name.clone();
        // An emergency call is never cut.
        let max_ms = if category == Category::Emergency { None } else { self.trunk_call_limit(&ext) };
        let info = CallInfo {
            call_id: req.call_id.to_owned(),
            caller: ext,
            callee: number,
            counted,
            trunk: Some((Party::Callee, trunk_name.clone())),
            max_ms,
        };
        let auth = trunk.auth.is_some().then(|| trunk.clone());
        self.start_call(inc, info, category, Some(trunk_name), vec![(target, ruri, auth)])
    }

    /// An INVITE from a trunk: only to a DID or an extension, never back out (no transit).
    fn inbound(&mut self, inc: Incoming<'_, '_>, trunk: &str) -> Handled {
        if inc.data.len() > MAX_INVITE {
            return self.deny(inc, 413, "Request Entity Too Large");
        }
        let Some(number) = dialled(&inc.req.uri) else { return self.deny(inc, 404, "Not Found") };
        let ext = self.dialplan.dids.get(&number).cloned().unwrap_or(number);
        if !self.directory.contains(&ext) {
            return self.deny(inc, 404, "Not Found");
        }
        let from = Some((Party::Caller, trunk.to_owned()));
        self.call_extension(inc, &ext, format!("trunk:{trunk}"), from, inc.now_ms / 1000)
    }

    /// Forks to every contact of `ext`; `trunk`: the call comes from that trunk.
    fn call_extension(
        &mut self,
        inc: Incoming<'_, '_>,
        ext: &str,
        caller: String,
        trunk: Option<(Party, String)>,
        now: u64,
    ) -> Handled {
        let targets: Vec<(Target, String, Option<Arc<Trunk>>)> = self
            .registrar
            .bindings(ext, now)
            .map(|b| (Target { addr: b.source, transport: transport_of(b.transport) }, b.uri.clone(), None))
            .collect();
        if targets.is_empty() {
            return self.deny(inc, 480, "Temporarily Unavailable");
        }
        // A call from a trunk is limited like one to a trunk (a toll-free number pumped for hours costs
        // as much); between extensions there is no limit.
        let max_ms = trunk.as_ref().and_then(|_| self.trunk_call_limit(ext));
        let info = CallInfo {
            call_id: inc.req.call_id.to_owned(),
            caller,
            callee: ext.to_owned(),
            counted: None,
            trunk,
            max_ms,
        };
        self.start_call(inc, info, Category::Internal, None, targets)
    }

    fn start_call(
        &mut self,
        inc: Incoming<'_, '_>,
        info: CallInfo,
        category: Category,
        trunk: Option<String>,
        targets: Vec<(Target, String, Option<Arc<Trunk>>)>,
    ) -> Handled {
        let Incoming { msg, req, data, source, transport, now_ms } = inc;
        let branch = req.via.branch().unwrap_or("");
        // Transactions are matched by branch (RFC 3261 §17.2.3): an RFC 2543 client without one could
        // not be told apart from its next call. A Call-ID already in use is a fork loop or a forgery;
        // the first call keeps its dialog.
        let refusal = if !branch.starts_with("z9hG4bK") {
            Some(Handled::Final(
                self.reply(msg, 400, "Bad Request", source)
                    .header("Warning", "399 pbxguard \"RFC 3261 branch required\"")
                    .finish(None, b""),
            ))
        } else if self.proxy.dialog_info(req.call_id).is_some() {
            Some(self.deny(inc, 482, "Loop Detected"))
        } else {
            None
        };
        if let Some(h) = refusal {
            if let Some(c) = info.counted.as_deref() {
                self.proxy.fraud.end(c, now_ms);
            }
            return h;
        }
        let locals = self.locals;
        let pop = routes_to_us(msg, &locals);
        let builders = targets
            .into_iter()
            .map(|(target, ruri, auth)| {
                let rr = locals.record_route(transport, target.transport);
                let build = move |branch: &str| {
                    let via = locals.via(target.transport, branch)?;
                    let f = Forward {
                        request_uri: &ruri,
                        via: &via,
                        source,
                        record_route: &rr,
                        pop_routes: pop,
                        strip_proxy_auth: true,
                        cseq_shift: 0,
                    };
                    Some(forward_request(msg, &f))
                };
                (target, Box::new(build) as BuildRequest<'_>, auth)
            })
            .collect();
        let trying = self.reply(msg, 100, "Trying", source).finish(None, b"");
        let event = Event::CallStarted {
            call_id: info.call_id.clone(),
            source,
            caller: info.caller.clone(),
            callee: info.callee.clone(),
            category: category.as_str(),
            trunk,
        };
        let from_tag = req.from.tag().unwrap_or("");
        let branch = req.via.branch().unwrap_or("");
        let src = Target { addr: source, transport };
        let n = self.proxy.start(now_ms, data, branch, src, from_tag, info, builders, trying.clone());
        if n == 0 {
            // No branch could be sent (no listener for the contacts' transport).
            self.proxy.forget_call(now_ms, req.call_id);
            return self.deny(inc, 503, "Service Unavailable");
        }
        self.push_event(event);
        Handled::Reply(trying)
    }

    pub(crate) fn cancel(&mut self, inc: Incoming<'_, '_>) -> Handled {
        let branch = inc.req.via.branch().unwrap_or("");
        match self.proxy.cancel(inc.now_ms, branch, inc.source) {
            Some(()) => Handled::Final(self.reply(inc.msg, 200, "OK", inc.source).finish(None, b"")),
            None => self.deny(inc, 481, "Call/Transaction Does Not Exist"),
        }
    }

    pub(crate) fn ack(&mut self, inc: Incoming<'_, '_>) -> Handled {
        let branch = inc.req.via.branch().unwrap_or("");
        if self.proxy.absorb_ack(branch, inc.source) || inc.req.to.tag().is_none() {
            return Handled::Silent;
        }
        // An ACK for a 2xx belongs to the dialog and goes end to end; a stray one is dropped.
        let _ = self.relay(inc);
        Handled::Silent
    }

    pub(crate) fn in_dialog(&mut self, _shield: &mut Shield, inc: Incoming<'_, '_>) -> Handled {
        if let Err(h) = self.transfer_check(inc) {
            return h;
        }
        match self.relay(inc) {
            Ok(()) => Handled::Silent,
            Err(481) => self.deny(inc, 481, "Call/Transaction Does Not Exist"),
            Err(403) => {
                self.push_event(Event::Malformed {
                    source: inc.source,
                    reason: format!("in-dialog {} from outside the dialog", inc.req.method.as_str()),
                });
                self.deny(inc, 403, "Forbidden")
            }
            Err(_) => self.deny(inc, 503, "Service Unavailable"),
        }
    }

    fn relay(&mut self, inc: Incoming<'_, '_>) -> Result<(), u16> {
        let Incoming { msg, req, source, transport, now_ms, .. } = inc;
        let locals = self.locals;
        let pop = routes_to_us(msg, &locals);
        let build = |branch: &str, dest: Target, cseq_shift: i64| {
            let via = locals.via(dest.transport, branch)?;
            let f = Forward {
                request_uri: req.uri.raw,
                via: &via,
                source,
                record_route: &[],
                pop_routes: pop,
                strip_proxy_auth: false,
                cseq_shift,
            };
            Some(forward_request(msg, &f))
        };
        let ended = self.proxy.relay_in_dialog(now_ms, req, Target { addr: source, transport }, build)?;
        // After a BYE the dialog lingers for retransmissions, then goes (Proxy::tick).
        if let Some(info) = ended {
            self.push_event(Event::CallEnded { call_id: info.call_id, status: 200 });
        }
        Ok(())
    }

    pub(crate) fn on_response(&mut self, now_ms: u64, msg: &Message<'_>, data: &[u8], source: SocketAddr) {
        let mut ev = Vec::new();
        if self.uplinks.on_response(now_ms, msg, source, &self.locals, &mut self.proxy.outbox, &mut ev) {
            for e in ev {
                self.push_event(e);
            }
            return;
        }
        let mut outcomes = Vec::new();
        self.proxy.on_response(now_ms, msg, data, source, &mut outcomes);
        let mut ev = Vec::new();
        outcome_events(&mut self.proxy, now_ms, outcomes, &mut ev);
        for e in ev {
            self.push_event(e);
        }
    }
}

/// How many Route entries at the top of `msg` name this proxy.
fn routes_to_us(msg: &Message<'_>, locals: &Locals) -> usize {
    msg.header_values(HeaderName::Route)
        .take_while(|r| pbxguard_sip::NameAddr::parse(r).is_some_and(|n| locals.is_us(n.uri.host, n.uri.port)))
        .count()
}
