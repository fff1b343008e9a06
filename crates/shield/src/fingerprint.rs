//! Scanner fingerprints: User-Agent substrings and From patterns of known attack tools, matched
//! case-insensitively. Only the transport source that sent them is ever banned (a header can name
//! anyone).

/// Defaults from the attack-tool survey (research/anchors.md §d), without the entries it marks as
/// risky because real softphones or libraries share them.
pub const DEFAULT_USER_AGENTS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipsak",
    "sundayddr",
    "iwar",
    "sivus",
    "siparmyknife",
    "smap",
    "vaxsipuseragent",
    "pplsip",
    "sipptk",
    "cesar",
    "nmap nse",
    "nessus",
];

/// From header patterns: sipvicious' display name and its fake host.
pub const DEFAULT_FROM_PATTERNS: &[&str] = &["\"sipvicious\"", "@1.1.1.1>"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    user_agents: Vec<String>,
    from: Vec<String>,
}

impl Default for Fingerprints {
    fn default() -> Self {
        Self::new(DEFAULT_USER_AGENTS.iter().copied(), DEFAULT_FROM_PATTERNS.iter().copied())
    }
}

fn contains_ci(hay: &str, needle_lower: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle_lower.as_bytes());
    n.len() <= h.len() && h.windows(n.len()).any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

impl Fingerprints {
    pub fn new<'a>(user_agents: impl IntoIterator<Item = &'a str>, from: impl IntoIterator<Item = &'a str>) -> Self {
        let norm = |s: &str| s.trim().to_ascii_lowercase();
        Self {
            user_agents: user_agents.into_iter().map(norm).filter(|s| !s.is_empty()).collect(),
            from: from.into_iter().map(norm).filter(|s| !s.is_empty()).collect(),
        }
    }

    /// The evidence string when a message matches.
    pub fn check(&self, user_agent: Option<&str>, from: Option<&str>) -> Option<String> {
        if let Some(ua) = user_agent
            && let Some(p) = self.user_agents.iter().find(|p| contains_ci(ua, p))
        {
            return Some(format!("User-Agent {ua:?} matches {p:?}"));
        }
        if let Some(f) = from
            && let Some(p) = self.from.iter().find(|p| contains_ci(f, p))
        {
            return Some(format!("From {f:?} matches {p:?}"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches() {
        let f = super::Fingerprints::default();
        assert!(f.check(Some("friendly-scanner"), None).is_some());
        assert!(f.check(Some("Friendly-Scanner 1.0"), None).is_some());
        assert!(f.check(None, Some("\"sipvicious\"<sip:100@1.1.1.1>;tag=1")).is_some());
        assert!(f.check(Some("baresip v1.0.0"), Some("<sip:1001@10.0.0.1>")).is_none());
        assert!(f.check(Some("Zoiper"), Some("<sip:1001@1.1.1.10>")).is_none());
    }
}
