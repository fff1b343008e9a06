//! The service model: what the host firewall opens, to whom, and the questions asked of it before an
//! apply (would this ruleset drop the operator's own SSH connection?). Pure values: the application
//! layer builds a [`Ruleset`] from the store and from what pbxguard and sshd actually listen on.

use std::fmt;
use std::net::IpAddr;

/// A transport protocol a service is reached over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tcp" => Some(Self::Tcp),
            "udp" => Some(Self::Udp),
            _ => None,
        }
    }
}

/// Ports `lo..=hi` (one port when equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn one(port: u16) -> Self {
        Self { lo: port, hi: port }
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }

    /// `5060` or `10000-20000`; port 0 and reversed ranges are refused.
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = || format!("{s:?} is not a port or a port range: expected 1-65535 or LO-HI such as 10000-20000");
        let (lo, hi) = s.trim().split_once('-').unwrap_or((s.trim(), s.trim()));
        let lo: u16 = lo.trim().parse().map_err(|_| err())?;
        let hi: u16 = hi.trim().parse().map_err(|_| err())?;
        if lo == 0 || hi < lo {
            return Err(err());
        }
        Ok(Self { lo, hi })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi { write!(f, "{}", self.lo) } else { write!(f, "{}-{}", self.lo, self.hi) }
    }
}

/// A network prefix with no host bits set (`192.0.2.0/24`, `2001:db8::/32`, a bare address is a host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, String> {
        let addr = canonical(addr);
        let width = width(addr);
        if len > width {
            return Err(format!("/{len} is longer than an {} address ({width} bits)", family_name(addr)));
        }
        let (v, _) = to_u128(addr);
        let host = if len == width { 0 } else { low_bits(width - len) };
        if v & host != 0 {
            let net = from_u128(v & !host, addr.is_ipv4());
            return Err(format!("{addr}/{len} has host bits set: did you mean {net}/{len}?"));
        }
        Ok(Self { addr, len })
    }

    pub fn host(addr: IpAddr) -> Self {
        let addr = canonical(addr);
        Self { addr, len: width(addr) }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let (first, last) = self.bounds();
        let (v, _) = to_u128(ip);
        (first..=last).contains(&v)
    }

    /// First and last address as integers (IPv4 in the low 32 bits).
    fn bounds(&self) -> (u128, u128) {
        let width = width(self.addr);
        let (v, _) = to_u128(self.addr);
        let host = if self.len == width { 0 } else { low_bits(width - self.len) };
        (v, v | host)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, len) = s.split_once('/').map_or((s, None), |(a, l)| (a, Some(l)));
        let addr: IpAddr =
            addr.parse().map_err(|_| format!("{s:?} is not an IP address or network such as 203.0.113.0/24"))?;
        match len {
            None => Ok(Self::host(addr)),
            Some(l) => {
                let len: u8 = l.parse().map_err(|_| format!("{s:?}: the prefix length must be a number"))?;
                Self::new(addr, len)
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == width(self.addr) { write!(f, "{}", self.addr) } else { write!(f, "{}/{}", self.addr, self.len) }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, as sshd reports clients on a dual-stack socket) are
/// IPv4 packets on the wire, so they are matched as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn family_name(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn low_bits(n: u8) -> u128 {
    if n >= 128 { u128::MAX } else { (1u128 << n) - 1 }
}

fn to_u128(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(v4) => (u32::from(v4) as u128, true),
        IpAddr::V6(v6) => (u128::from(v6), false),
    }
}

fn from_u128(v: u128, v4: bool) -> IpAddr {
    if v4 { IpAddr::V4((v as u32).into()) } else { IpAddr::V6(v.into()) }
}

/// Who may reach a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sources {
    Anyone,
    /// Only these networks (possibly none: the service is then closed to everyone but trusted networks).
    Only(Vec<Cidr>),
}

impl Sources {
    pub fn admits(&self, ip: IpAddr) -> bool {
        match self {
            Self::Anyone => true,
            Self::Only(nets) => nets.iter().any(|n| n.contains(ip)),
        }
    }
}

/// One opening in the firewall: a named service, its protocol and ports, and who may reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    name: String,
    pub proto: Proto,
    pub ports: Vec<PortRange>,
    pub sources: Sources,
}

impl Service {
    /// The name becomes the rule's comment in the kernel: short, lower-case letters, digits, `-` and `_`.
    pub fn new(name: &str, proto: Proto, ports: Vec<PortRange>, sources: Sources) -> Result<Self, String> {
        valid_name(name)?;
        if ports.is_empty() {
            return Err(format!("service {name}: no port"));
        }
        Ok(Self { name: name.to_owned(), proto, ports, sources })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn serves(&self, proto: Proto, port: u16) -> bool {
        self.proto == proto && self.ports.iter().any(|r| r.contains(port))
    }
}

/// Service names: 1-32 of `a-z 0-9 - _`, starting with a letter (they are rule comments and CLI words).
pub fn valid_name(name: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a service name: use 1-32 lower-case letters, digits, '-' or '_', starting with a letter"
        ))
    }
}

/// What the input chain does with a packet no rule accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Drop,
    Accept,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Accept => "accept",
        }
    }
}

/// The whole host firewall pbxguard renders: the input policy and the services, in rule order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub policy: Policy,
    pub services: Vec<Service>,
}

/// What the input chain would do with a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Accepted by the rule of this service.
    Service(String),
    /// No service rule matched, and the policy accepts.
    Policy,
    /// Dropped by the policy; `near` names the services on that protocol and port whose sources leave
    /// the address out (the rule that would have to change).
    Dropped { near: Vec<String> },
}

impl Ruleset {
    /// Judges a new connection from `src` to `proto`/`port` against the service rules and the policy.
    /// Trusted, banned and blacklisted sets are not consulted: they are filled at run time, and an
    /// apply must not count on an address being trusted to keep its operator in (fail-safe).
    pub fn admission(&self, src: IpAddr, proto: Proto, port: u16) -> Admission {
        if let Some(s) = self.services.iter().find(|s| s.serves(proto, port) && s.sources.admits(src)) {
            return Admission::Service(s.name.clone());
        }
        match self.policy {
            Policy::Accept => Admission::Policy,
            Policy::Drop => Admission::Dropped {
                near: self.services.iter().filter(|s| s.serves(proto, port)).map(|s| s.name.clone()).collect(),
            },
        }
    }
}

/// The networks an ACL group admits, as the fewest prefixes: the group's rules are painted over the
/// address space from the least to the most specific, so the longest matching prefix decides and, on a
/// tie, deny wins (the precedence of `pbxguard_shield::acl`); an address no rule matches is left out.
pub fn acl_networks(rules: &[(Cidr, bool)]) -> Vec<Cidr> {
    let mut out = Vec::new();
    for v4 in [true, false] {
        let mut rules: Vec<_> = rules.iter().filter(|(c, _)| c.is_ipv4() == v4).collect();
        // Allow before deny at equal length: the later paint wins, and on a tie that must be deny.
        rules.sort_by_key(|(c, allow)| (c.len, !*allow));
        let mut painted: Vec<(u128, u128, bool)> = Vec::new();
        for (cidr, allow) in rules {
            let (a, b) = cidr.bounds();
            let mut next = Vec::with_capacity(painted.len() + 2);
            for &(x, y, v) in &painted {
                if y < a || x > b {
                    next.push((x, y, v));
                    continue;
                }
                if x < a {
                    next.push((x, a - 1, v));
                }
                if y > b {
                    next.push((b + 1, y, v));
                }
            }
            next.push((a, b, *allow));
            next.sort_unstable();
            painted = next;
        }
        let mut merged: Vec<(u128, u128)> = Vec::new();
        for (x, y, _) in painted.into_iter().filter(|p| p.2) {
            match merged.last_mut() {
                Some(last) if last.1.checked_add(1) == Some(x) => last.1 = y,
                _ => merged.push((x, y)),
            }
        }
        for (x, y) in merged {
            out.extend(range_to_cidrs(x, y, v4));
        }
    }
    out
}

/// The fewest prefixes covering exactly `first..=last`.
fn range_to_cidrs(mut first: u128, last: u128, v4: bool) -> Vec<Cidr> {
    let width: u8 = if v4 { 32 } else { 128 };
    let mut out = Vec::new();
    loop {
        // The largest block aligned at `first` that does not pass `last`.
        let mut bits = (first.trailing_zeros() as u8).min(width);
        while bits > 0 && (last - first) < low_bits(bits) {
            bits -= 1;
        }
        out.push(Cidr { addr: from_u128(first, v4), len: width - bits });
        let end = first + low_bits(bits);
        if end >= last {
            return out;
        }
        first = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_strictly_and_say_what_was_meant() {
        assert_eq!(c("192.0.2.0/24").to_string(), "192.0.2.0/24");
        assert_eq!(c("192.0.2.7").to_string(), "192.0.2.7");
        assert_eq!(c("::ffff:192.0.2.7").to_string(), "192.0.2.7");
        assert_eq!(c("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(c("0.0.0.0/0").to_string(), "0.0.0.0/0");
        let e = "192.0.2.7/24".parse::<Cidr>().unwrap_err();
        assert!(e.contains("did you mean 192.0.2.0/24"), "{e}");
        assert!("192.0.2.0/33".parse::<Cidr>().is_err());
        assert!("office".parse::<Cidr>().is_err());
        assert!(c("10.0.0.0/8").contains("10.255.0.1".parse().unwrap()));
        assert!(!c("10.0.0.0/8").contains("::1".parse().unwrap()));
        assert!(c("::/0").contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn port_ranges() {
        assert_eq!(PortRange::parse("10000-20000").unwrap(), PortRange { lo: 10000, hi: 20000 });
        assert_eq!(PortRange::parse("22").unwrap(), PortRange::one(22));
        for bad in ["0", "20-10", "x", "70000", ""] {
            assert!(PortRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn acl_groups_become_the_fewest_prefixes_with_the_shields_precedence() {
        let r = |s: &[(&str, bool)]| {
            acl_networks(&s.iter().map(|(n, a)| (c(n), *a)).collect::<Vec<_>>())
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(r(&[("192.0.2.0/24", true)]), ["192.0.2.0/24"]);
        // The office but not one host in it.
        assert_eq!(r(&[("192.0.2.0/30", true), ("192.0.2.2", false)]), ["192.0.2.0/31", "192.0.2.3"]);
        // Only one subnet of a denied /8.
        assert_eq!(r(&[("10.0.0.0/8", false), ("10.1.2.0/24", true)]), ["10.1.2.0/24"]);
        // A tie: deny wins.
        assert!(r(&[("10.0.0.0/8", true), ("10.0.0.0/8", false)]).is_empty());
        // Adjacent allows merge; both families; the whole space.
        assert_eq!(r(&[("10.0.0.0/25", true), ("10.0.0.128/25", true)]), ["10.0.0.0/24"]);
        assert_eq!(r(&[("::/0", true), ("0.0.0.0/0", true)]), ["0.0.0.0/0", "::/0"]);
        assert_eq!(r(&[("::/0", true), ("::/1", false)]), ["8000::/1"]);
    }

    #[test]
    fn admission_names_the_rule() {
        let ssh = Service::new("ssh", Proto::Tcp, vec![PortRange::one(22)], Sources::Only(vec![c("203.0.113.0/24")]))
            .unwrap();
        let sip = Service::new("sip-udp", Proto::Udp, vec![PortRange::one(5060)], Sources::Anyone).unwrap();
        let rs = Ruleset { policy: Policy::Drop, services: vec![ssh, sip] };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(rs.admission(ip("203.0.113.9"), Proto::Tcp, 22), Admission::Service("ssh".into()));
        assert_eq!(rs.admission(ip("::ffff:203.0.113.9"), Proto::Tcp, 22), Admission::Service("ssh".into()));
        assert_eq!(rs.admission(ip("198.51.100.1"), Proto::Tcp, 22), Admission::Dropped { near: vec!["ssh".into()] });
        assert_eq!(rs.admission(ip("198.51.100.1"), Proto::Tcp, 2222), Admission::Dropped { near: vec![] });
        assert_eq!(rs.admission(ip("198.51.100.1"), Proto::Udp, 5060), Admission::Service("sip-udp".into()));
        let open = Ruleset { policy: Policy::Accept, ..rs };
        assert_eq!(open.admission(ip("198.51.100.1"), Proto::Tcp, 22), Admission::Policy);
    }

    #[test]
    fn names_are_safe_in_a_rule_comment() {
        assert!(valid_name("sip-tls").is_ok());
        for bad in ["", "SSH", "a\"b", "9x", "a b", &"x".repeat(33)] {
            assert!(valid_name(bad).is_err(), "{bad}");
        }
    }
}
