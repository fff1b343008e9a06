//! The registrar and location service (RFC 3261 §10.3). Bindings live in memory, keyed by extension;
//! every change is reported as [`Event::BindingsChanged`] so the daemon can persist it.

use crate::config::RegistrarConfig;
use crate::event::{Binding, Event};
use pbxguard_sip::{HeaderName, Message, NameAddr, Request};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The answer the registrar wants sent, before the response is built.
pub(crate) enum RegisterReply {
    Ok { contacts: Vec<String> },
    IntervalTooBrief { min: u32 },
    Status(u16, &'static str),
}

#[derive(Default)]
pub struct Registrar {
    locations: HashMap<String, Vec<Binding>>,
    /// The bindings as last reported for persistence. A refresh that only moves the expiry is reported
    /// when the stored expiry is within half an interval of now: phones refreshing every minute would
    /// otherwise rewrite their row every minute, and a restart still finds the binding valid.
    persisted: HashMap<String, Vec<Binding>>,
}

/// Whether `next` differs from what was persisted in anything but a not-yet-urgent expiry.
fn worth_persisting(persisted: Option<&Vec<Binding>>, next: &[Binding], now: u64) -> bool {
    let Some(p) = persisted else { return true };
    p.len() != next.len()
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
    /// Bindings of an extension still valid at `now`.
    pub fn bindings(&self, extension: &str, now: u64) -> Vec<&Binding> {
        self.locations.get(extension).map(|v| v.iter().filter(|b| b.expires_at > now).collect()).unwrap_or_default()
    }

    /// Restores bindings loaded from the store at start-up.
    pub fn restore(&mut self, extension: String, bindings: Vec<Binding>) {
        self.persisted.insert(extension.clone(), bindings.clone());
        self.locations.insert(extension, bindings);
    }

    pub fn binding_count(&self) -> usize {
        self.locations.values().map(Vec::len).sum()
    }

    /// Drops expired bindings from memory (the store purges its own copy).
    pub fn purge(&mut self, now: u64) {
        for map in [&mut self.locations, &mut self.persisted] {
            map.retain(|_, v| {
                v.retain(|b| b.expires_at > now);
                !v.is_empty()
            });
        }
    }

    /// Forgets extensions that no longer exist.
    pub fn retain_extensions(&mut self, keep: impl Fn(&str) -> bool) {
        self.locations.retain(|k, _| keep(k));
        self.persisted.retain(|k, _| keep(k));
    }

    /// Applies an authenticated REGISTER for `extension` (RFC 3261 §10.3 steps 6-8).
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
        let contacts: Vec<&str> = msg.header_values(HeaderName::Contact).collect();
        let current = self.locations.get(extension);
        let before = current.map_or(0, Vec::len);
        let mut next: Vec<Binding> =
            current.map(|v| v.iter().filter(|b| b.expires_at > now).cloned().collect()).unwrap_or_default();
        let out_of_order = |b: &Binding| b.call_id == req.call_id && req.cseq.seq <= b.cseq;

        if contacts.contains(&"*") {
            // "*" only with Expires: 0 and as the sole contact (RFC 3261 §10.3 step 6).
            if contacts.len() != 1 || req.expires != Some(0) {
                return RegisterReply::Status(400, "Bad Request");
            }
            if next.iter().any(out_of_order) {
                return RegisterReply::Status(500, "Server Internal Error");
            }
            next.clear();
        } else {
            let user_agent = msg.user_agent().map(|s| s.chars().take(200).collect::<String>());
            for c in &contacts {
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
                let uri = na.uri.raw;
                if let Some(pos) = next.iter().position(|b| b.uri == uri) {
                    if out_of_order(&next[pos]) {
                        return RegisterReply::Status(500, "Server Internal Error");
                    }
                    next.remove(pos);
                }
                if requested == 0 {
                    continue;
                }
                let expires = requested.min(cfg.max_expires);
                let params: String = na
                    .params
                    .iter()
                    .filter(|p| !p.name.eq_ignore_ascii_case("expires"))
                    .map(|p| match (p.value, p.quoted) {
                        (Some(v), true) => format!(";{}=\"{v}\"", p.name),
                        (Some(v), false) => format!(";{}={v}", p.name),
                        (None, _) => format!(";{}", p.name),
                    })
                    .collect();
                let q = na.params.get("q").flatten().and_then(|v| v.parse::<f32>().ok());
                next.push(Binding {
                    uri: uri.to_owned(),
                    contact: format!("<{uri}>{params}"),
                    expires_at: now + u64::from(expires),
                    call_id: req.call_id.to_owned(),
                    cseq: req.cseq.seq,
                    q,
                    source,
                    transport,
                    user_agent: user_agent.clone(),
                    updated_at: now,
                });
            }
            // Keep the newest bindings when over the cap: a phone that moved should win over its old address.
            if next.len() > cfg.max_contacts {
                next.sort_by_key(|b| b.updated_at);
                let drop = next.len() - cfg.max_contacts;
                next.drain(..drop);
            }
        }
        // A contact in the request always rewrites its binding (expiry, CSeq, time); a query (no Contact)
        // changes something only when expired bindings were dropped.
        let changed = !contacts.is_empty() || next.len() != before;
        let contacts =
            next.iter().map(|b| format!("{};expires={}", b.contact, b.expires_at.saturating_sub(now))).collect();
        if changed {
            if worth_persisting(self.persisted.get(extension), &next, now) {
                events.push(Event::BindingsChanged { extension: extension.to_owned(), bindings: next.clone() });
                if next.is_empty() {
                    self.persisted.remove(extension);
                } else {
                    self.persisted.insert(extension.to_owned(), next.clone());
                }
            }
            if next.is_empty() {
                self.locations.remove(extension);
            } else {
                self.locations.insert(extension.to_owned(), next);
            }
        }
        RegisterReply::Ok { contacts }
    }
}
