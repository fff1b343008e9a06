//! Where calls go: trunks, ordered outbound routes, inbound DIDs, the numbering plan that gives each
//! dialled number its category, the Classes of Service and the toll-fraud limits. One snapshot, swapped
//! whole when the operator changes something.

use crate::transport::Transport;
use pbxguard_shield::{CallLimits, ClassOfService, NumberingPlan, Pattern};
use pbxguard_sip::{Algorithm, Credentials, Message, Uri};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The number a request asks for: the Request-URI user, without visual separators.
pub(crate) fn dialled(uri: &Uri<'_>) -> Option<String> {
    number(uri.user?)
}

/// A dialled number without the visual separators phones and users put in it; `None` when empty.
pub(crate) fn number(user: &str) -> Option<String> {
    let n: String = user.chars().filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' ')).collect();
    (!n.is_empty()).then_some(n)
}

/// An upstream SIP gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    pub name: String,
    /// Host as configured, used in the Request-URI.
    pub host: String,
    /// The address it resolved to: where calls go, and the only way inbound calls are recognised.
    pub addr: SocketAddr,
    pub transport: Transport,
    /// Credentials pbxguard answers the trunk's challenges with (stored as HA1 for one realm).
    pub auth: Option<TrunkAuth>,
    /// Register at the trunk for this many seconds (refreshed at half-time) so it sends inbound calls.
    pub register: Option<u32>,
    /// Whether extensions may send it transfers (REFER, INVITE with Replaces): a carrier that honours
    /// them places a call billed to the PBX. Each is checked like a new call from the extension; off,
    /// they are refused.
    pub allow_refer: bool,
}

/// Digest credentials towards a trunk: the secret exists only as HA1, bound to the realm the operator
/// named, like extension secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkAuth {
    pub username: String,
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

/// How a trunk's 401/407 was answered, or why it could not be.
pub(crate) enum TrunkAnswer {
    /// (header name, header value, nonce answered).
    Answer(&'static str, String, String),
    /// The challenges name other realms than the one the credentials are bound to.
    OtherRealm(Vec<String>),
}

impl TrunkAuth {
    /// Answers the challenges of a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate) for `method`
    /// on `uri`: the first challenge for our realm with an algorithm we hold an HA1 for.
    pub(crate) fn answer(&self, msg: &Message<'_>, code: u16, method: &str, uri: &str, cnonce: &str) -> TrunkAnswer {
        let (ask, header) = if code == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let challenges: Vec<Credentials<'_>> = msg
            .headers
            .iter()
            .filter(|h| h.name.as_str().eq_ignore_ascii_case(ask))
            .filter_map(|h| Credentials::parse_challenge(h.value))
            .collect();
        let usable =
            challenges.iter().filter(|c| c.realm == self.realm.as_str()).find_map(|c| match c.algorithm()? {
                Algorithm::Md5 => Some((c, Algorithm::Md5, &self.ha1_md5)),
                Algorithm::Sha256 => Some((c, Algorithm::Sha256, &self.ha1_sha256)),
                Algorithm::Sha512_256 => None,
            });
        match usable {
            Some((c, alg, ha1)) => {
                let value = c.answer(alg, &self.username, ha1, method, uri, cnonce, 1);
                TrunkAnswer::Answer(header, value, c.nonce.to_owned())
            }
            None => TrunkAnswer::OtherRealm(challenges.iter().map(|c| c.realm.to_string()).collect()),
        }
    }
}

/// One outbound route: numbers matching `pattern` go to `trunk`, with `strip` leading digits removed
/// and `prepend` added.
#[derive(Debug, Clone)]
pub struct Route {
    pub pattern: Pattern,
    pub trunk: String,
    pub strip: usize,
    pub prepend: String,
}

#[derive(Debug, Clone)]
pub struct DialPlan {
    pub trunks: Vec<Arc<Trunk>>,
    pub routes: Vec<Route>,
    /// Inbound number → extension.
    pub dids: HashMap<String, String>,
    pub plan: NumberingPlan,
    pub cos: HashMap<String, ClassOfService>,
    pub limits: CallLimits,
    /// Longest call kept in the dialog table without any in-dialog request, ms: a party that vanished
    /// without BYE must not hold a concurrent-call slot for ever.
    pub max_call_ms: u64,
    /// Longest trunk call, ms from the answer (`calls.max_trunk_duration`): then the proxy sends BYE to
    /// both parties. 0: no limit. An extension's own value wins.
    pub max_trunk_call_ms: u64,
}

impl Default for DialPlan {
    fn default() -> Self {
        Self {
            trunks: Vec::new(),
            routes: Vec::new(),
            dids: HashMap::new(),
            plan: NumberingPlan::by_name("nanp").expect("shipped plan"),
            cos: HashMap::new(),
            limits: CallLimits::default(),
            max_call_ms: 4 * 3_600_000,
            max_trunk_call_ms: 4 * 3_600_000,
        }
    }
}

impl DialPlan {
    /// The trunk a request comes from, judged by its transport source address alone.
    pub fn trunk_from(&self, ip: IpAddr) -> Option<&Arc<Trunk>> {
        let ip = pbxguard_shield::canonical(ip);
        self.trunks.iter().find(|t| pbxguard_shield::canonical(t.addr.ip()) == ip)
    }

    /// The first route whose pattern matches, and the number as the trunk should see it.
    pub fn route(&self, number: &str) -> Option<(&Arc<Trunk>, String)> {
        let r = self.routes.iter().find(|r| r.pattern.matches(number))?;
        let trunk = self.trunks.iter().find(|t| t.name == r.trunk)?;
        let rest: String = number.chars().skip(r.strip).collect();
        Some((trunk, format!("{}{rest}", r.prepend)))
    }

    /// The Class of Service called `name`; an unknown or missing name gets the default one.
    pub fn cos(&self, name: Option<&str>) -> ClassOfService {
        // An operator-defined CoS called "default" replaces the built-in default.
        name.or(Some("default").filter(|d| self.cos.contains_key(*d)))
            .and_then(|n| self.cos.get(n))
            .cloned()
            .unwrap_or_else(|| ClassOfService {
                name: name.unwrap_or("default").to_owned(),
                allow: if name.is_some() {
                    // A CoS that vanished fails closed to internal and emergency calls only.
                    pbxguard_shield::Categories::parse("internal").expect("valid")
                } else {
                    ClassOfService::default_allow()
                },
                countries: None,
            })
    }
}
