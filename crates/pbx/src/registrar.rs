//! The registrar and location service (RFC 3261 §10.3). Bindings live in memory, keyed by extension;
//! every change is reported as [`Event::BindingsChanged`] so the daemon can persist it.

use crate::config::RegistrarConfig;
use crate::event::{Binding, Event};
use pbxguard_sip::{HeaderName, Message, NameAddr, Request};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The answer the registrar wants sent, before the response is built.
pub(crate) enum RegisterReply {
    Ok,
    IntervalTooBrief { min: u32 },
    Status(u16, &'static str),
}

#[derive(Default)]
pub struct Registrar {
    /// One entry per extension with bindings, so a REGISTER looks its extension up once.
    locations: HashMap<String, Location>,
    /// Scratch space for a contact's header parameters, kept to avoid an allocation per REGISTER.
    params: String,
    /// At or before the earliest expiry in either map (Unix seconds): lowered as bindings come in, made
    /// exact by each purge, so finding when the next purge is worth it costs no walk.
    next_purge: Option<u64>,
}

#[derive(Default)]
struct Location {
    live: Vec<Binding>,
    /// The bindings as last reported for persistence. A refresh that only moves the expiry is reported
    /// when the stored expiry is within half an interval of now: phones refreshing every minute would
    /// otherwise rewrite their row every minute, and a restart still finds the binding valid.
    persisted: Vec<Binding>,
}

/// Brings a purge deadline forward to `at` (a free function: `register` holds a borrow of the
/// locations while it calls it).
fn lower_to(next_purge: &mut Option<u64>, at: u64) {
    *next_purge = Some(next_purge.map_or(at, |t| t.min(at)));
}

/// Whether `next` differs from what was persisted in anything but a not-yet-urgent expiry.
fn worth_persisting(p: &[Binding], next: &[Binding], now: u64) -> bool {
    p.is_empty()
        || p.len() != next.len()
        || next.iter().any(|b| {
            p.iter().find(|o| o.uri == b.uri).is_none_or(|o| {
                o.contact != b.contact
                    || o.source != b.source
                    || o.transport != b.transport
                    || o.q != b.q
                    || o.expires_at < now + b.expires_at.saturating_sub(now) / 2
            })
        })
}

impl Registrar {
    /// Bindings of an extension still valid at `now` (right after a REGISTER, all it has).
    pub fn bindings(&self, extension: &str, now: u64) -> impl Iterator<Item = &Binding> {
        self.locations.get(extension).into_iter().flat_map(|l| &l.live).filter(move |b| b.expires_at > now)
    }

    /// Restores bindings loaded from the store at start-up.
    pub fn restore(&mut self, extension: String, bindings: Vec<Binding>) {
        if let Some(at) = bindings.iter().map(|b| b.expires_at).min() {
            lower_to(&mut self.next_purge, at);
        }
        self.locations.insert(extension, Location { persisted: bindings.clone(), live: bindings });
    }

    pub fn binding_count(&self) -> usize {
        self.locations.values().map(|l| l.live.len()).sum()
    }

    /// Drops expired bindings from memory (the store purges its own copy).
    pub fn purge(&mut self, now: u64) {
        let mut next = None;
        self.locations.retain(|_, l| {
            for v in [&mut l.live, &mut l.persisted] {
                v.retain(|b| b.expires_at > now);
                next = v.iter().map(|b| b.expires_at).chain(next).min();
            }
            // The persisted copy never outlives the live one: its expiries are the same or earlier.
            !l.live.is_empty()
        });
        self.next_purge = next;
    }

    /// When [`Self::purge`] may next drop something (Unix seconds; it may find nothing yet): `None` while
    /// there are no bindings.
    pub(crate) fn next_purge(&self) -> Option<u64> {
        self.next_purge
    }

    /// Forgets extensions that no longer exist.
    pub fn retain_extensions(&mut self, keep: impl Fn(&str) -> bool) {
        self.locations.retain(|k, _| keep(k));
    }

    /// Applies an authenticated REGISTER for `extension` (RFC 3261 §10.3 steps 6-8): every contact is
    /// checked first, so a request is applied whole or not at all; then the bindings are updated in
    /// place. A phone refreshing its one contact (nearly every REGISTER) rewrites only the changed
    /// fields of its binding and allocates nothing unless its Call-ID or User-Agent changed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register(
        &mut self,
        cfg: &RegistrarConfig,
        msg: &Message<'_>,
        req: &Request<'_>,
        extension: &str,
        source: SocketAddr,
        transport: &'static str,
        now: u64,
        events: &mut Vec<Event>,
    ) -> RegisterReply {
        let mut slot = self.locations.get_mut(extension);
        let current = slot.as_deref().map_or(&[][..], |l| &l.live[..]);
        let live = |b: &Binding| b.expires_at > now;
        let out_of_order = |b: &Binding| b.call_id == req.call_id && req.cseq.seq <= b.cseq;
        let mut wildcards = 0;
        let mut updates: Vec<(NameAddr<'_>, u32)> = Vec::new();
        for c in msg.header_values(HeaderName::Contact) {
            if c == "*" {
                wildcards += 1;
                continue;
            }
            let Some(na) = NameAddr::parse(c) else {
                return RegisterReply::Status(400, "Bad Request");
            };
            let requested = match na.params.get("expires") {
                Some(Some(v)) => v.parse::<u64>().map_or(u32::MAX, |n| n.min(u32::MAX as u64) as u32),
                Some(None) => return RegisterReply::Status(400, "Bad Request"),
                None => req.expires.unwrap_or(cfg.default_expires),
            };
            if requested != 0 && requested < cfg.min_expires {
                return RegisterReply::IntervalTooBrief { min: cfg.min_expires };
            }
            if current.iter().any(|b| live(b) && b.uri == na.uri.raw && out_of_order(b)) {
                return RegisterReply::Status(500, "Server Internal Error");
            }
            updates.push((na, requested));
        }
        let wildcard = wildcards > 0;
        if wildcard {
            // "*" only with Expires: 0 and as the sole contact (RFC 3261 §10.3 step 6).
            if wildcards > 1 || !updates.is_empty() || req.expires != Some(0) {
                return RegisterReply::Status(400, "Bad Request");
            }
            if current.iter().any(|b| live(b) && out_of_order(b)) {
                return RegisterReply::Status(500, "Server Internal Error");
            }
        }

        // Taken out of its slot, not removed: a refresh (nearly every REGISTER) then puts it back without
        // allocating the extension's key again.
        let mut next = slot.as_deref_mut().map(|l| std::mem::take(&mut l.live)).unwrap_or_default();
        let before = next.len();
        next.retain(live);
        if wildcard {
            next.clear();
        }
        let user_agent = msg.user_agent().map(|s| s.char_indices().nth(200).map_or(s, |(i, _)| &s[..i]));
        let mut params = std::mem::take(&mut self.params);
        for (na, requested) in &updates {
            let uri = na.uri.raw;
            let pos = next.iter().position(|b| b.uri == uri);
            if *requested == 0 {
                if let Some(pos) = pos {
                    next.remove(pos);
                }
                continue;
            }
            params.clear();
            for p in na.params.iter().filter(|p| !p.name.eq_ignore_ascii_case("expires")) {
                params.push(';');
                params.push_str(p.name);
                match (p.value, p.quoted) {
                    (Some(v), true) => {
                        params.push_str("=\"");
                        params.push_str(v);
                        params.push('"');
                    }
                    (Some(v), false) => {
                        params.push('=');
                        params.push_str(v);
                    }
                    (None, _) => {}
                }
            }
            let expires_at = now + u64::from((*requested).min(cfg.max_expires));
            let q = na.params.get("q").flatten().and_then(|v| v.parse::<f32>().ok());
            let b = match pos {
                Some(pos) => &mut next[pos],
                None => {
                    next.push(Binding {
                        uri: uri.to_owned(),
                        contact: String::new(),
                        expires_at,
                        call_id: String::new(),
                        cseq: 0,
                        q,
                        source,
                        transport,
                        user_agent: None,
                        updated_at: now,
                    });
                    let last = next.len() - 1;
                    &mut next[last]
                }
            };
            if !(b.contact.len() == uri.len() + 2 + params.len()
                && b.contact.get(1..1 + uri.len()) == Some(uri)
                && b.contact.ends_with(params.as_str()))
            {
                b.contact.clear();
                b.contact.push('<');
                b.contact.push_str(uri);
                b.contact.push('>');
                b.contact.push_str(&params);
            }
            if b.call_id != req.call_id {
                b.call_id.clear();
                b.call_id.push_str(req.call_id);
            }
            if b.user_agent.as_deref() != user_agent {
                b.user_agent = user_agent.map(str::to_owned);
            }
            b.expires_at = expires_at;
            b.cseq = req.cseq.seq;
            b.q = q;
            b.source = source;
            b.transport = transport;
            b.updated_at = now;
        }
        self.params = params;
        // Keep the newest bindings when over the cap: a phone that moved should win over its old address.
        if next.len() > cfg.max_contacts {
            next.sort_by_key(|b| b.updated_at);
            let drop = next.len() - cfg.max_contacts;
            next.drain(..drop);
        }
        // A contact in the request always rewrites its binding (expiry, CSeq, time); a query (no Contact)
        // changes something only when expired bindings were dropped.
        let changed = wildcard || !updates.is_empty() || next.len() != before;
        let persisted = slot.as_deref().map_or(&[][..], |l| &l.persisted[..]);
        let persist = changed && worth_persisting(persisted, &next, now);
        if persist {
            events.push(Event::BindingsChanged { extension: extension.to_owned(), bindings: next.clone() });
        }
        if let Some(at) = next.iter().map(|b| b.expires_at).min() {
            lower_to(&mut self.next_purge, at);
        }
        match slot {
            _ if next.is_empty() => {
                self.locations.remove(extension);
            }
            Some(l) => {
                if persist {
                    l.persisted.clone_from(&next);
                }
                l.live = next;
            }
            None => {
                let persisted = if persist { next.clone() } else { Vec::new() };
                self.locations.insert(extension.to_owned(), Location { live: next, persisted });
            }
        }
        RegisterReply::Ok
    }
}
