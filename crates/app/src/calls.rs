//! Call routing configuration (trunks, routes, Classes of Service, DIDs) and the calls log.

use crate::views::Resolver;
use crate::{Result, invalid, not_found};
use pbxguard_shield::{Categories, Category, CountryCode, NumberingPlan, Pattern};
use pbxguard_store::{Backend, CallRow, CosRow, DidRow, RouteRow, TrunkRow};

use crate::validate::check_name;
pub use crate::validate::{countries_text, parse_countries, require_cos};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkTransport {
    Udp,
    Tcp,
    Tls,
}

impl TrunkTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }
}

pub struct NewTrunk {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub transport: TrunkTransport,
    pub username: Option<String>,
    pub secret: Option<String>,
    pub realm: Option<String>,
    /// Register at the carrier for this many seconds.
    pub register: Option<u32>,
    /// PEM certificates the carrier's TLS certificate must chain to (else the public roots).
    pub tls_ca: Option<String>,
    /// Extensions may send the carrier transfers (REFER, INVITE with Replaces), each checked like a new
    /// call from the extension; off, they are refused with 403.
    pub allow_refer: bool,
}

/// Adds a trunk. Its host is resolved now, so a typo is reported here and not as calls that fail later.
pub fn add_trunk(store: &dyn Backend, t: NewTrunk, resolver: &dyn Resolver) -> Result<()> {
    let NewTrunk { name, host, port, transport, username, secret, realm, register, tls_ca, allow_refer } = t;
    check_name("trunk", &name)?;
    if port == 0 {
        return Err(invalid!("--port 0 is not a port; the usual SIP port is 5060 (5061 for TLS)"));
    }
    resolver
        .resolve(&host, port)
        .map_err(|e| invalid!("trunk host {host:?} does not resolve ({e}); give an IP address or a resolvable name"))?;
    // The CLI's argument parser enforces these too; the GUI and the API rely on this check, since a
    // user name without a secret would be stored as credentials that can never answer a challenge.
    let given = [&username, &secret, &realm].iter().filter(|v| v.is_some()).count();
    if given != 0 && given != 3 {
        return Err(invalid!(
            "trunk credentials need all three: the user name, the secret and the realm (--username, --secret, --realm)"
        ));
    }
    if register.is_some() && username.is_none() {
        return Err(invalid!(
            "registering at the trunk (--register) needs its credentials: user name, secret and realm"
        ));
    }
    if tls_ca.is_some() && transport != TrunkTransport::Tls {
        return Err(invalid!("--tls-ca only applies to --transport tls (TLS trunks are verified against it)"));
    }
    if let Some(pem) = &tls_ca {
        crate::tls::ca_certificates(pem).map_err(|e| invalid!("--tls-ca: {e}"))?;
    }
    if let Some(e) = register
        && !(60..=86_400).contains(&e)
    {
        return Err(invalid!(
            "--register {e}: give the registration length in seconds, from 60 to 86400 (default 600)"
        ));
    }
    let ha1 = match (&username, &secret, &realm) {
        (Some(u), Some(s), Some(r)) => Some((
            pbxguard_sip::ha1(pbxguard_sip::Algorithm::Md5, u, r, s),
            pbxguard_sip::ha1(pbxguard_sip::Algorithm::Sha256, u, r, s),
        )),
        _ => None,
    };
    let row = TrunkRow {
        name,
        host,
        port,
        transport: transport.as_str().into(),
        username,
        realm,
        ha1,
        register_expires: register,
        tls_ca,
        allow_refer,
    };
    store.add_trunk(&row, crate::clock::now_secs())?;
    Ok(())
}

pub fn trunks(store: &dyn Backend) -> Result<Vec<TrunkRow>> {
    Ok(store.trunks()?)
}

pub fn delete_trunk(store: &dyn Backend, name: &str) -> Result<()> {
    if !store.delete_trunk(name)? {
        return Err(not_found!("trunk {name} does not exist"));
    }
    Ok(())
}

/// Adds a route; returns its id.
pub fn add_route(store: &dyn Backend, pattern: &str, trunk: &str, strip: u32, prepend: &str) -> Result<i64> {
    Pattern::parse(pattern).map_err(|e| invalid!("{e}"))?;
    if !prepend.chars().all(|c| c.is_ascii_digit() || "+*#".contains(c)) {
        return Err(invalid!("--prepend {prepend:?}: digits, + * # only"));
    }
    if !store.trunks()?.iter().any(|t| t.name == trunk) {
        return Err(not_found!(
            "trunk {trunk} does not exist; add it first with `pbxguard trunk add {trunk} --host H`"
        ));
    }
    Ok(store.add_route(pattern, trunk, strip, prepend)?)
}

pub fn routes(store: &dyn Backend) -> Result<Vec<RouteRow>> {
    Ok(store.routes()?)
}

/// The route a dialled number takes (the first whose pattern matches, in the order the proxy tries
/// them) and the number its trunk is sent after strip and prepend; `None`: no route matches, so the
/// call is refused.
pub fn route_for(store: &dyn Backend, number: &str) -> Result<Option<(RouteRow, String)>> {
    // Bounded: an Asterisk pattern with several `.` backtracks, so a long number costs more per route.
    if number.is_empty() || number.len() > 32 || !number.chars().all(|c| c.is_ascii_digit() || "+*#".contains(c)) {
        return Err(invalid!("dialled number {number:?}: use 1-32 digits, + * or #"));
    }
    for r in store.routes()? {
        if Pattern::parse(&r.pattern).is_ok_and(|p| p.matches(number)) {
            let rest: String = number.chars().skip(r.strip as usize).collect();
            let sent = format!("{}{rest}", r.prepend);
            return Ok(Some((r, sent)));
        }
    }
    Ok(None)
}

pub fn delete_route(store: &dyn Backend, id: i64) -> Result<()> {
    if !store.delete_route(id)? {
        return Err(not_found!("route {id} does not exist (pbxguard route list)"));
    }
    Ok(())
}

/// A Class of Service as added: what it allows, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedCos {
    pub allow: Categories,
    /// International calls only to these countries, in the order given; `None`: any country.
    pub countries: Option<Vec<CountryCode>>,
}

/// Adds a Class of Service. `countries` (`44,49,33`) restricts its international calls to those E.164
/// country codes; it needs `international` in `allow`.
pub fn add_cos(store: &dyn Backend, name: &str, allow: &str, countries: Option<&str>) -> Result<AddedCos> {
    check_name("class of service", name)?;
    let cats = Categories::parse(allow).map_err(|e| invalid!("--allow: {e}"))?;
    let countries = countries.map(parse_countries).transpose()?;
    if countries.is_some() && !cats.contains(Category::International) {
        return Err(invalid!(
            "--countries restricts international calls to those countries, but --allow {cats} does not allow \
             international calls; add international to --allow"
        ));
    }
    let stored = countries.as_deref().map(countries_text);
    store.add_cos(name, &cats.to_string(), stored.as_deref(), crate::clock::now_secs())?;
    Ok(AddedCos { allow: cats, countries })
}

pub fn cos_list(store: &dyn Backend) -> Result<Vec<CosRow>> {
    Ok(store.cos_list()?)
}

/// How many extensions use each Class of Service, by name; one no extension uses is absent.
pub fn cos_usage(store: &dyn Backend) -> Result<std::collections::BTreeMap<String, u64>> {
    Ok(store.cos_usage()?.into_iter().collect())
}

pub fn delete_cos(store: &dyn Backend, name: &str) -> Result<()> {
    if !store.delete_cos(name)? {
        return Err(not_found!("class of service {name} does not exist"));
    }
    Ok(())
}

/// What a dialled number is, as Class of Service sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    Extension,
    /// Its category in the plan, the pattern that matched, and for an international number the
    /// country it calls (`None` for a spare country code).
    Category {
        category: Category,
        plan: &'static str,
        pattern: String,
        country: Option<CountryCode>,
    },
    /// No category: calls to it are refused.
    Unknown {
        plan: &'static str,
    },
}

pub fn classify(store: &dyn Backend, number: &str) -> Result<Classified> {
    // Bounded: the plan's Asterisk patterns backtrack, so a long input costs more per pattern.
    if number.len() > 64 {
        return Err(invalid!("dialled number of {} characters: a number has at most 64", number.len()));
    }
    let plan =
        NumberingPlan::by_name(&crate::settings::get(store, "calls.numbering_plan")?).map_err(|e| invalid!("{e}"))?;
    if store.extension(number)?.is_some() {
        return Ok(Classified::Extension);
    }
    Ok(match plan.classify(number) {
        Some((category, pattern)) => {
            let country = if category == Category::International { plan.country(number) } else { None };
            Classified::Category { category, plan: plan.name, pattern: pattern.to_string(), country }
        }
        None => Classified::Unknown { plan: plan.name },
    })
}

pub fn add_did(store: &dyn Backend, number: &str, extension: &str) -> Result<()> {
    crate::validate::check_number(number)?;
    if store.extension(extension)?.is_none() {
        return Err(not_found!("extension {extension} does not exist"));
    }
    store.add_did(number, extension)?;
    Ok(())
}

pub fn dids(store: &dyn Backend) -> Result<Vec<DidRow>> {
    Ok(store.dids()?)
}

pub fn delete_did(store: &dyn Backend, number: &str) -> Result<()> {
    if !store.delete_did(number)? {
        return Err(not_found!("DID {number} does not exist"));
    }
    Ok(())
}

pub fn calls(store: &dyn Backend, last: u32) -> Result<Vec<CallRow>> {
    Ok(store.calls(last)?)
}
