//! Scanner fingerprints: User-Agent substrings and From patterns of known attack tools, matched
//! case-insensitively. Only the transport source that sent them is ever banned (a header can name
//! anyone).

use aho_corasick::AhoCorasick;

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

/// The patterns, and one case-insensitive automaton per header: every message's User-Agent is matched
/// against all of them in one pass (matching them one by one showed in the registrar's profile).
#[derive(Debug, Clone)]
pub struct Fingerprints {
    user_agents: Vec<String>,
    from: Vec<String>,
    ua_matcher: Option<AhoCorasick>,
    from_matcher: Option<AhoCorasick>,
}

impl PartialEq for Fingerprints {
    fn eq(&self, other: &Self) -> bool {
        (&self.user_agents, &self.from) == (&other.user_agents, &other.from)
    }
}

impl Eq for Fingerprints {}

fn matcher(patterns: &[String]) -> Option<AhoCorasick> {
    if patterns.is_empty() {
        return None;
    }
    // Built from at most a few kilobytes of operator text (the setting is capped): cannot fail.
    AhoCorasick::builder().ascii_case_insensitive(true).build(patterns).ok()
}

fn first_match<'a>(m: Option<&AhoCorasick>, patterns: &'a [String], hay: &str) -> Option<&'a str> {
    let found = m?.find(hay)?;
    patterns.get(found.pattern().as_usize()).map(String::as_str)
}

impl Default for Fingerprints {
    fn default() -> Self {
        Self::new(DEFAULT_USER_AGENTS.iter().copied(), DEFAULT_FROM_PATTERNS.iter().copied())
    }
}

impl Fingerprints {
    pub fn new<'a>(user_agents: impl IntoIterator<Item = &'a str>, from: impl IntoIterator<Item = &'a str>) -> Self {
        let norm = |s: &str| s.trim().to_ascii_lowercase();
        let user_agents: Vec<String> = user_agents.into_iter().map(norm).filter(|s| !s.is_empty()).collect();
        let from: Vec<String> = from.into_iter().map(norm).filter(|s| !s.is_empty()).collect();
        Self { ua_matcher: matcher(&user_agents), from_matcher: matcher(&from), user_agents, from }
    }

    /// The evidence string when a message matches.
    pub fn check(&self, user_agent: Option<&str>, from: Option<&str>) -> Option<String> {
        if let Some(ua) = user_agent
            && let Some(p) = first_match(self.ua_matcher.as_ref(), &self.user_agents, ua)
        {
            return Some(format!("User-Agent {ua:?} matches {p:?}"));
        }
        if let Some(f) = from
            && let Some(p) = first_match(self.from_matcher.as_ref(), &self.from, f)
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
        // Any case, anywhere in the header; the evidence names the pattern as configured.
        let e = f.check(Some("Mozilla SIPVicious/0.3"), None).unwrap();
        assert!(e.ends_with("matches \"sipvicious\""), "{e}");
        let none = super::Fingerprints::new([" ", ""], []);
        assert!(none.check(Some("friendly-scanner"), Some("x")).is_none());
        assert_eq!(super::Fingerprints::new(["A"], []), super::Fingerprints::new(["a "], []));
    }
}
