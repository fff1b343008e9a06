//! Class of Service: what a dialled number is (a category, by the patterns of a numbering plan; the
//! country, for international numbers) and whether an extension may call it. Patterns are shared with
//! the dial plan.

use crate::countries::CountryCode;
use std::fmt;
use std::str::FromStr;

/// A number pattern: Asterisk style (`_NXXNXXXXXX`), an anchored regular expression (`^...`), or a
/// literal number.
#[derive(Debug, Clone)]
pub enum Pattern {
    Literal(String),
    Asterisk(Vec<Tok>),
    Regex(regex::Regex),
}

/// One position of an Asterisk pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// Any of these characters.
    Set(Vec<(char, char)>),
    /// `.`: one or more of anything.
    OneOrMore,
    /// `!`: zero or more of anything.
    ZeroOrMore,
}

fn valid_dial_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '+' | '*' | '#')
}

impl Pattern {
    /// Parses a pattern; the error says what is wrong and how it should look.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(body) = s.strip_prefix('_') {
            return parse_asterisk(body).map(Self::Asterisk);
        }
        if let Some(re) = s.strip_prefix('^') {
            let anchored = format!("^(?:{})$", re.trim_end_matches('$'));
            return regex::Regex::new(&anchored).map(Self::Regex).map_err(|e| format!("regular expression {s:?}: {e}"));
        }
        if !s.is_empty() && s.chars().all(valid_dial_char) {
            return Ok(Self::Literal(s.to_owned()));
        }
        Err(format!(
            "pattern {s:?}: expected a number (digits, + * #), an Asterisk pattern such as _NXXNXXXXXX or _011., \
             or a regular expression starting with ^"
        ))
    }

    pub fn matches(&self, number: &str) -> bool {
        match self {
            Self::Literal(l) => l == number,
            Self::Asterisk(toks) => match_toks(toks, &number.chars().collect::<Vec<_>>()),
            Self::Regex(r) => r.is_match(number),
        }
    }
}

fn parse_asterisk(body: &str) -> Result<Vec<Tok>, String> {
    let bad = |why: &str| format!("pattern _{body}: {why}");
    if body.is_empty() {
        return Err(bad("empty after _"));
    }
    let mut out = Vec::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        let t = match c.to_ascii_uppercase() {
            'X' => Tok::Set(vec![('0', '9')]),
            'Z' => Tok::Set(vec![('1', '9')]),
            'N' => Tok::Set(vec![('2', '9')]),
            '.' => Tok::OneOrMore,
            '!' => Tok::ZeroOrMore,
            '[' => {
                let inner: String = chars.by_ref().take_while(|&c| c != ']').collect();
                let v: Vec<char> = inner.chars().collect();
                let mut set = Vec::new();
                let mut i = 0;
                while i < v.len() {
                    if i + 2 < v.len() && v[i + 1] == '-' {
                        set.push((v[i], v[i + 2]));
                        i += 3;
                    } else {
                        set.push((v[i], v[i]));
                        i += 1;
                    }
                }
                if set.is_empty() || set.iter().any(|&(a, b)| !valid_dial_char(a) || !valid_dial_char(b) || a > b) {
                    return Err(bad("a [...] set must list digits or ranges such as [1-5]"));
                }
                Tok::Set(set)
            }
            c if valid_dial_char(c) => Tok::Set(vec![(c, c)]),
            _ => return Err(bad(&format!("{c:?} is not a digit, + * #, X Z N, [..], . or !"))),
        };
        out.push(t);
    }
    Ok(out)
}

/// Glob matching with one backtrack point (the last wildcard seen), O(pattern × number): wildcards
/// match any character, so retrying from the last one is enough. Trying every split at every wildcard
/// instead is exponential in their number: `_!!!!!!!!!!!!!!!!!!!!3` against a 40-digit number that ends
/// otherwise would stall a call's routing for minutes.
fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    let (mut p, mut i) = (0, 0);
    // Where to resume after the last wildcard: its next token, and the first character it has not yet
    // taken.
    let mut resume: Option<(usize, usize)> = None;
    while i < s.len() {
        match toks.get(p) {
            Some(Tok::Set(set)) if set.iter().any(|&(a, b)| (a..=b).contains(&s[i])) => {
                p += 1;
                i += 1;
                continue;
            }
            Some(Tok::ZeroOrMore) => {
                p += 1;
                resume = Some((p, i));
                continue;
            }
            Some(Tok::OneOrMore) => {
                // One character of its own, then zero or more.
                p += 1;
                i += 1;
                resume = Some((p, i));
                continue;
            }
            _ => {}
        }
        match resume {
            Some((rp, ri)) => {
                // The last wildcard takes one more character.
                p = rp;
                i = ri + 1;
                resume = Some((rp, i));
            }
            None => return false,
        }
    }
    toks[p.min(toks.len())..].iter().all(|t| matches!(t, Tok::ZeroOrMore))
}

/// What kind of destination a number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Internal,
    Emergency,
    Local,
    National,
    Mobile,
    TollFree,
    International,
    Premium,
}

impl Category {
    pub const ALL: [Self; 8] = [
        Self::Internal,
        Self::Emergency,
        Self::Local,
        Self::National,
        Self::Mobile,
        Self::TollFree,
        Self::International,
        Self::Premium,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Emergency => "emergency",
            Self::Local => "local",
            Self::National => "national",
            Self::Mobile => "mobile",
            Self::TollFree => "toll-free",
            Self::International => "international",
            Self::Premium => "premium-rate",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        let alias = match s.as_str() {
            "tollfree" | "toll_free" => "toll-free",
            "premium" | "premium_rate" | "premiumrate" => "premium-rate",
            other => other,
        };
        Self::ALL.into_iter().find(|c| c.as_str() == alias).ok_or_else(|| {
            let all: Vec<_> = Self::ALL.iter().map(Self::as_str).collect();
            format!("unknown category {s:?}: expected one of {}", all.join(", "))
        })
    }
}

/// A set of categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Categories(u8);

impl Categories {
    pub fn contains(&self, c: Category) -> bool {
        self.0 & c.bit() != 0
    }

    pub fn insert(&mut self, c: Category) {
        self.0 |= c.bit();
    }

    /// Parses `internal,local,...`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut out = Self::default();
        for item in list.split(',').filter(|s| !s.trim().is_empty()) {
            out.insert(item.parse()?);
        }
        Ok(out)
    }

    pub fn iter(&self) -> impl Iterator<Item = Category> + '_ {
        Category::ALL.into_iter().filter(|c| self.contains(*c))
    }
}

impl fmt::Display for Categories {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<_> = self.iter().map(|c| c.as_str()).collect();
        f.write_str(&v.join(","))
    }
}

/// A named Class of Service. Emergency calls are always allowed, whatever the list says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassOfService {
    pub name: String,
    pub allow: Categories,
    /// International calls only to these countries; `None`: to any (when `allow` has international).
    pub countries: Option<Vec<CountryCode>>,
}

impl ClassOfService {
    /// The CoS of an extension created without one: internal, emergency, local, national, toll-free.
    pub fn default_allow() -> Categories {
        let mut c = Categories::default();
        for x in [Category::Internal, Category::Emergency, Category::Local, Category::National, Category::TollFree] {
            c.insert(x);
        }
        c
    }

    pub fn allows(&self, c: Category) -> bool {
        c == Category::Emergency || self.allow.contains(c)
    }

    /// Whether an international call to `country` passes the country list. Fails closed: with a list,
    /// a number whose country code is not known (a spare code) is refused.
    pub fn allows_country(&self, country: Option<CountryCode>) -> bool {
        match &self.countries {
            None => true,
            Some(list) => country.is_some_and(|c| list.contains(&c)),
        }
    }
}

/// Categories by number pattern, first match wins.
#[derive(Debug, Clone)]
pub struct NumberingPlan {
    pub name: &'static str,
    rules: Vec<(Pattern, Category, &'static str)>,
    /// The prefixes that introduce an E.164 number (country code first) in this plan.
    international_prefixes: &'static [&'static str],
}

/// What comes before the country code, in both plans: users dial `00` and `+` whatever the plan, as
/// its international rules say.
const INTERNATIONAL_PREFIXES: &[&str] = &["011", "00", "+"];

/// North American Numbering Plan, as dialled from a NANP PBX. `00` and `+` are international too:
/// phones and users dial them whatever the plan says, and misclassifying them would be the costly error.
const NANP: &[(&str, Category)] = &[
    ("911", Category::Emergency),
    ("933", Category::Emergency),
    ("112", Category::Emergency),
    ("_011.", Category::International),
    ("_00.", Category::International),
    ("_+1900NXXXXXX", Category::Premium),
    ("_+18[0345678][0345678]NXXXXXX", Category::TollFree),
    ("_+1NXXNXXXXXX", Category::National),
    ("_+.", Category::International),
    ("_1900NXXXXXX", Category::Premium),
    ("_900NXXXXXX", Category::Premium),
    ("_1976NXXXXXX", Category::Premium),
    ("_976XXXX", Category::Premium),
    ("_18[0345678][0345678]NXXXXXX", Category::TollFree),
    ("_8[0345678][0345678]NXXXXXX", Category::TollFree),
    ("_1NXXNXXXXXX", Category::National),
    ("_NXXNXXXXXX", Category::National),
    ("_N11", Category::Local),
    ("_NXXXXXX", Category::Local),
];

/// A generic E.164 plan for countries with a `0` trunk prefix and `00` international prefix.
const E164: &[(&str, Category)] = &[
    ("112", Category::Emergency),
    ("911", Category::Emergency),
    ("999", Category::Emergency),
    ("_00.", Category::International),
    ("_+.", Category::International),
    ("_011.", Category::International),
    ("_09.", Category::Premium),
    ("_080.", Category::TollFree),
    ("_0[67].", Category::Mobile),
    ("_01[5-7].", Category::Mobile),
    ("_0Z.", Category::National),
    ("_ZXXX!", Category::Local),
];

impl NumberingPlan {
    pub const NAMES: [&'static str; 2] = ["nanp", "e164"];

    pub fn by_name(name: &str) -> Result<Self, String> {
        let (name, table) = match name.to_ascii_lowercase().as_str() {
            "nanp" => ("nanp", NANP),
            "e164" | "e.164" => ("e164", E164),
            other => return Err(format!("unknown numbering plan {other:?}: expected nanp or e164")),
        };
        let rules = table.iter().map(|&(p, c)| (Pattern::parse(p).expect("shipped patterns parse"), c, p)).collect();
        Ok(Self { name, rules, international_prefixes: INTERNATIONAL_PREFIXES })
    }

    /// The category of `number` and the pattern that decided it; `None` when no rule matches.
    pub fn classify(&self, number: &str) -> Option<(Category, &'static str)> {
        self.rules.iter().find(|(p, _, _)| p.matches(number)).map(|(_, c, s)| (*c, *s))
    }

    /// The country code of a number dialled with an international prefix (`011`, `00` or `+`): the
    /// longest assigned code among the digits after it. `None`: no such prefix, or a spare code.
    pub fn country(&self, number: &str) -> Option<CountryCode> {
        let rest = self.international_prefixes.iter().find_map(|p| number.strip_prefix(p))?;
        CountryCode::of_number(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exponential matcher this one replaced: the definition, kept as the oracle.
    fn by_definition(toks: &[Tok], s: &[char]) -> bool {
        match toks.split_first() {
            None => s.is_empty(),
            Some((Tok::Set(set), rest)) => {
                s.first().is_some_and(|c| set.iter().any(|&(a, b)| (a..=b).contains(c))) && by_definition(rest, &s[1..])
            }
            Some((Tok::OneOrMore, rest)) => (1..=s.len()).any(|i| by_definition(rest, &s[i..])),
            Some((Tok::ZeroOrMore, rest)) => (0..=s.len()).any(|i| by_definition(rest, &s[i..])),
        }
    }

    #[test]
    fn the_linear_matcher_agrees_with_the_definition_on_every_small_case() {
        let alphabet = || {
            [
                Tok::Set(vec![('1', '1')]),
                Tok::Set(vec![('2', '2')]),
                Tok::Set(vec![('1', '2')]),
                Tok::OneOrMore,
                Tok::ZeroOrMore,
            ]
        };
        let mut patterns: Vec<Vec<Tok>> = vec![vec![]];
        let mut all = patterns.clone();
        for _ in 0..4 {
            patterns = patterns
                .iter()
                .flat_map(|p| alphabet().into_iter().map(move |t| p.iter().cloned().chain([t]).collect::<Vec<_>>()))
                .collect();
            all.extend(patterns.iter().cloned());
        }
        let mut numbers: Vec<Vec<char>> = vec![vec![]];
        let mut every = numbers.clone();
        for _ in 0..5 {
            numbers = numbers.iter().flat_map(|n| ['1', '2'].map(|c| n.iter().copied().chain([c]).collect())).collect();
            every.extend(numbers.iter().cloned());
        }
        for p in &all {
            for n in &every {
                assert_eq!(match_toks(p, n), by_definition(p, n), "{p:?} against {n:?}");
            }
        }
    }

    #[test]
    fn many_wildcards_against_a_long_number_answer_at_once() {
        let p = Pattern::parse(&format!("_{}3", "!".repeat(20))).unwrap();
        assert!(!p.matches(&"1".repeat(40)));
        assert!(p.matches(&format!("{}3", "1".repeat(40))));
        let p = Pattern::parse(&format!("_{}3", ".".repeat(20))).unwrap();
        assert!(!p.matches(&"1".repeat(40)));
        assert!(!p.matches("1111113"), "twenty . need twenty digits before the 3");
    }

    #[test]
    fn asterisk_patterns() {
        let cases = [
            ("_NXXNXXXXXX", "2125551234", true),
            ("_NXXNXXXXXX", "1125551234", false),
            ("_NXXNXXXXXX", "212555123", false),
            ("_011.", "01144", true),
            ("_011.", "011", false),
            ("_9!", "9", true),
            ("_9!", "9123", true),
            ("_[1-3]0X", "205", true),
            ("_[1-3]0X", "405", false),
            ("_[136]X", "65", true),
            ("_+.", "+4420", true),
            ("1001", "1001", true),
            ("1001", "10011", false),
            ("^9(\\d+)", "9555", true),
            ("^9(\\d+)", "x9555", false),
            ("^9\\d{3}$", "95551", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(Pattern::parse(p).unwrap().matches(n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn bad_patterns_say_why() {
        for p in ["_", "_12Q", "_[]", "_[a-z]", "^(", "12a", ""] {
            assert!(Pattern::parse(p).is_err(), "{p}");
        }
        assert!(Pattern::parse("_12Q").unwrap_err().contains("'Q'"));
    }

    #[test]
    fn nanp_categories() {
        let plan = NumberingPlan::by_name("nanp").unwrap();
        let cases = [
            ("911", Category::Emergency),
            ("01144201234567", Category::International),
            ("0044201234567", Category::International),
            ("+44201234567", Category::International),
            ("+12125551234", Category::National),
            ("18005551234", Category::TollFree),
            ("8885551234", Category::TollFree),
            ("19005551234", Category::Premium),
            ("12125551234", Category::National),
            ("2125551234", Category::National),
            ("5551234", Category::Local),
            ("411", Category::Local),
        ];
        for (n, c) in cases {
            assert_eq!(plan.classify(n).map(|x| x.0), Some(c), "{n}");
        }
        assert_eq!(plan.classify("12"), None);
    }

    #[test]
    fn e164_categories() {
        let plan = NumberingPlan::by_name("e164").unwrap();
        let cases = [
            ("112", Category::Emergency),
            ("0044201234567", Category::International),
            ("01144201234567", Category::International),
            ("0900123456", Category::Premium),
            ("0800123456", Category::TollFree),
            ("07700900123", Category::Mobile),
            ("0201234567", Category::National),
            ("5551234", Category::Local),
        ];
        for (n, c) in cases {
            assert_eq!(plan.classify(n).map(|x| x.0), Some(c), "{n}");
        }
    }

    #[test]
    fn cos_allows_emergency_always() {
        let cos =
            ClassOfService { name: "lobby".into(), allow: Categories::parse("internal").unwrap(), countries: None };
        assert!(cos.allows(Category::Emergency));
        assert!(cos.allows(Category::Internal));
        assert!(!cos.allows(Category::International));
        assert_eq!(ClassOfService::default_allow().to_string(), "internal,emergency,local,national,toll-free");
        assert!(Categories::parse("internal,bogus").unwrap_err().contains("bogus"));
        assert_eq!(Categories::parse("premium,tollfree").unwrap().to_string(), "toll-free,premium-rate");
    }

    #[test]
    fn international_numbers_have_a_country() {
        for name in NumberingPlan::NAMES {
            let plan = NumberingPlan::by_name(name).unwrap();
            let cases = [
                ("01144201234567", Some(44)),
                ("004930123456", Some(49)),
                ("+33123456789", Some(33)),
                ("0111212555", Some(1)),
                ("+8821612345", Some(882)),
                ("0119991234", None),
                ("2125551234", None),
                ("0201234567", None),
            ];
            for (n, want) in cases {
                assert_eq!(plan.country(n).map(CountryCode::get), want, "{name}: {n}");
                if want.is_some() {
                    assert_eq!(plan.classify(n).map(|c| c.0), Some(Category::International), "{name}: {n}");
                }
            }
        }
    }

    #[test]
    fn a_country_list_restricts_international_calls_only_to_its_countries() {
        let code = |s: &str| CountryCode::try_from(s).unwrap();
        let mut cos = ClassOfService {
            name: "uk".into(),
            allow: Categories::parse("national,international").unwrap(),
            countries: Some(vec![code("44"), code("353")]),
        };
        assert!(cos.allows_country(Some(code("44"))));
        assert!(cos.allows_country(Some(code("353"))));
        assert!(!cos.allows_country(Some(code("49"))));
        assert!(!cos.allows_country(None), "an unknown country code fails closed");
        cos.countries = None;
        assert!(cos.allows_country(Some(code("49"))) && cos.allows_country(None));
    }
}
