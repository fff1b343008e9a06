//! ACL groups (the hardening guide's "Security (ACL) Mode"): named lists of allow and deny prefixes,
//! assigned per extension.
//!
//! Precedence: the most specific matching prefix (longest) decides; on a tie between an allow and a
//! deny of the same prefix, deny wins; an address no rule matches is denied. So `allow 192.0.2.0/24` with
//! `deny 192.0.2.66` admits the office but not that one host, and `deny 10.0.0.0/8` with
//! `allow 10.1.2.0/24` admits only that subnet of 10/8.

use crate::net::Prefix;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Allow(Prefix),
    Deny(Prefix),
}

impl Rule {
    /// `192.0.2.0/24` or `allow:192.0.2.0/24` allows; `!192.0.2.66` or `deny:192.0.2.66` denies.
    pub fn parse(s: &str) -> Result<Self, crate::net::PrefixError> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix('!').or_else(|| s.strip_prefix("deny:")) {
            return Ok(Self::Deny(p.parse()?));
        }
        Ok(Self::Allow(s.strip_prefix("allow:").unwrap_or(s).parse()?))
    }

    pub fn prefix(&self) -> Prefix {
        match self {
            Self::Allow(p) | Self::Deny(p) => *p,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Allow(p) => write!(f, "{p}"),
            Self::Deny(p) => write!(f, "!{p}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclGroup {
    pub name: String,
    pub rules: Vec<Rule>,
}

impl AclGroup {
    /// Whether `ip` may use an extension in this group, and the rule that decided (None: no rule matched).
    pub fn check(&self, ip: IpAddr) -> (bool, Option<Rule>) {
        let best = self
            .rules
            .iter()
            .filter(|r| r.prefix().contains(ip))
            .max_by_key(|r| (r.prefix().prefix_len(), matches!(r, Rule::Deny(_))));
        match best {
            Some(r @ Rule::Allow(_)) => (true, Some(*r)),
            Some(r) => (false, Some(*r)),
            None => (false, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(rules: &[&str]) -> AclGroup {
        AclGroup { name: "g".into(), rules: rules.iter().map(|r| Rule::parse(r).unwrap()).collect() }
    }

    #[test]
    fn most_specific_wins() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let g = group(&["192.0.2.0/24", "!192.0.2.66"]);
        assert!(g.check(ip("192.0.2.10")).0);
        assert!(!g.check(ip("192.0.2.66")).0);
        assert!(!g.check(ip("198.51.100.1")).0);
        assert!(g.check(ip("::ffff:192.0.2.10")).0);
        let g = group(&["deny:10.0.0.0/8", "allow:10.1.2.0/24"]);
        assert!(g.check(ip("10.1.2.3")).0 && !g.check(ip("10.9.9.9")).0);
        let g = group(&["10.0.0.0/8", "!10.0.0.0/8"]);
        assert!(!g.check(ip("10.1.1.1")).0, "deny wins a tie");
        assert!(Rule::parse("!nonsense").is_err());
        assert_eq!(Rule::parse("deny:10.0.0.0/8").unwrap().to_string(), "!10.0.0.0/8");
    }
}
