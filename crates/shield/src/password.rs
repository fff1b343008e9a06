//! Password and PIN policy (the hardening guide's rules, and more): each failed rule is a separate
//! violation worded for the administrator, so a refusal says exactly what to change.

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

/// The 30,000 most common passwords (zxcvbn's list), lower-case.
const COMMON: &str = include_str!("../data/common-passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect())
}

/// Well-known PINs beyond the patterns checked separately (repeats, runs, the extension itself).
const COMMON_PINS: &[&str] = &[
    "1212", "1122", "1313", "2580", "0852", "1004", "2000", "6969", "7777", "1379", "4321", "1478", "1342", "5683",
    "112233", "121212", "123123", "131313", "159753", "147258", "258369", "147852", "696969", "101010", "202020",
    "112358", "147369", "789456", "456789", "159357", "753951", "951753", "123321", "321321", "000111", "111222",
    "520520", "198400", "246810", "135790", "102030", "112211", "121314", "686868", "100200", "123654", "142536",
    "11223344", "12121212", "12341234", "13579246", "24682468", "19216801",
];

/// One failed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    TooShort {
        min: usize,
        len: usize,
    },
    TooLong {
        max: usize,
    },
    NoUpper,
    NoLower,
    NoDigit,
    NoSpecial,
    /// Contains the extension number, user name or another identity it must not.
    ContainsIdentity(String),
    Common,
    /// A common password with digits or symbols appended.
    CommonBase(String),
    /// A run of `len` identical or consecutive characters.
    Run(String),
    NotPrintable,
    // PIN rules
    NotDigits,
    PinIsExtension,
    PinRepeated,
    PinSequence,
    PinCommon,
}

impl Violation {
    /// A stable identifier, for JSON and CSV output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too-short",
            Self::TooLong { .. } => "too-long",
            Self::NoUpper => "no-upper",
            Self::NoLower => "no-lower",
            Self::NoDigit => "no-digit",
            Self::NoSpecial => "no-special",
            Self::ContainsIdentity(_) => "contains-identity",
            Self::Common => "common",
            Self::CommonBase(_) => "common-base",
            Self::Run(_) => "run",
            Self::NotPrintable => "not-printable",
            Self::NotDigits => "not-digits",
            Self::PinIsExtension => "pin-is-extension",
            Self::PinRepeated => "pin-repeated",
            Self::PinSequence => "pin-sequence",
            Self::PinCommon => "pin-common",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { min, len } => write!(f, "use at least {min} characters (this one has {len})"),
            Self::TooLong { max } => write!(f, "use at most {max} characters"),
            Self::NoUpper => write!(f, "add an upper-case letter (A-Z)"),
            Self::NoLower => write!(f, "add a lower-case letter (a-z)"),
            Self::NoDigit => write!(f, "add a digit (0-9)"),
            Self::NoSpecial => write!(f, "add a special character such as ! $ % ^"),
            Self::ContainsIdentity(what) => write!(f, "must not contain {what}"),
            Self::Common => write!(f, "is one of the most common passwords: attackers try it first"),
            Self::CommonBase(base) => write!(f, "is the common password {base:?} with digits or symbols added"),
            Self::Run(run) => write!(f, "avoid runs of 4 identical or consecutive characters such as {run:?}"),
            Self::NotPrintable => write!(f, "use printable characters only (no spaces, quotes or control characters)"),
            Self::NotDigits => write!(f, "a PIN has digits only"),
            Self::PinIsExtension => write!(f, "must not be the extension number"),
            Self::PinRepeated => write!(f, "must not repeat one digit"),
            Self::PinSequence => write!(f, "must not be an ascending or descending run such as 123456"),
            Self::PinCommon => write!(f, "is one of the most common PINs"),
        }
    }
}

/// Password rules. Defaults: the guide's (8+ characters, upper and lower case, a digit, a special
/// character), plus no identity, no common password, no run of 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_len: usize,
    pub max_len: usize,
    pub require_upper: bool,
    pub require_lower: bool,
    pub require_digit: bool,
    pub require_special: bool,
    /// Longest allowed run of identical or consecutive characters.
    pub max_run: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_len: 8,
            max_len: 128,
            require_upper: true,
            require_lower: true,
            require_digit: true,
            require_special: true,
            max_run: 3,
        }
    }
}

/// The first run longer than `max` of identical, ascending or descending characters.
fn find_run(s: &str, max: usize) -> Option<String> {
    let c: Vec<char> = s.chars().collect();
    for step in [0i32, 1, -1] {
        let mut start = 0;
        for i in 1..=c.len() {
            let continues = i < c.len()
                && c[i].is_ascii_alphanumeric()
                && c[i - 1].is_ascii_alphanumeric()
                && (c[i].to_ascii_lowercase() as i32 - c[i - 1].to_ascii_lowercase() as i32) == step;
            if !continues {
                if i - start > max {
                    return Some(c[start..i].iter().collect());
                }
                start = i;
            }
        }
    }
    None
}

impl PasswordPolicy {
    /// Every rule `secret` breaks. `identities` are strings it must not contain (extension number, user
    /// name), each with how to name it to the admin, e.g. `("1001", "the extension number")`.
    pub fn check(&self, secret: &str, identities: &[(&str, &str)]) -> Vec<Violation> {
        let mut v = Vec::new();
        let len = secret.chars().count();
        if len < self.min_len {
            v.push(Violation::TooShort { min: self.min_len, len });
        }
        if len > self.max_len {
            v.push(Violation::TooLong { max: self.max_len });
        }
        if secret.chars().any(|c| c.is_control() || c == '"' || c == '\\' || c.is_whitespace()) {
            v.push(Violation::NotPrintable);
        }
        if self.require_upper && !secret.chars().any(|c| c.is_uppercase()) {
            v.push(Violation::NoUpper);
        }
        if self.require_lower && !secret.chars().any(|c| c.is_lowercase()) {
            v.push(Violation::NoLower);
        }
        if self.require_digit && !secret.chars().any(|c| c.is_ascii_digit()) {
            v.push(Violation::NoDigit);
        }
        if self.require_special && !secret.chars().any(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
            v.push(Violation::NoSpecial);
        }
        let lower = secret.to_lowercase();
        for (id, what) in identities {
            if id.len() >= 2 && lower.contains(&id.to_lowercase()) {
                v.push(Violation::ContainsIdentity(format!("{what} {id}")));
            }
        }
        if common().contains(lower.as_str()) {
            v.push(Violation::Common);
        } else {
            let base =
                lower.trim_end_matches(|c: char| !c.is_alphabetic()).trim_start_matches(|c: char| !c.is_alphabetic());
            if base.len() >= 4 && base != lower && common().contains(base) {
                v.push(Violation::CommonBase(base.to_owned()));
            }
        }
        if let Some(run) = find_run(secret, self.max_run) {
            v.push(Violation::Run(run));
        }
        v
    }
}

/// Voicemail PIN rules: digits only, at least `min_len` (never under 4), not the extension number,
/// not one repeated digit, not an ascending or descending run, not a common PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinPolicy {
    pub min_len: usize,
}

impl Default for PinPolicy {
    fn default() -> Self {
        Self { min_len: 6 }
    }
}

impl PinPolicy {
    pub fn check(&self, pin: &str, extension: &str) -> Vec<Violation> {
        let mut v = Vec::new();
        if !pin.bytes().all(|b| b.is_ascii_digit()) || pin.is_empty() {
            v.push(Violation::NotDigits);
            return v;
        }
        let min = self.min_len.max(4);
        if pin.len() < min {
            v.push(Violation::TooShort { min, len: pin.len() });
        }
        if pin == extension {
            v.push(Violation::PinIsExtension);
        }
        let b = pin.as_bytes();
        if b.iter().all(|&c| c == b[0]) {
            v.push(Violation::PinRepeated);
        } else if b.windows(2).all(|w| w[1] == w[0] + 1) || b.windows(2).all(|w| w[0] == w[1] + 1) {
            v.push(Violation::PinSequence);
        }
        if COMMON_PINS.contains(&pin) {
            v.push(Violation::PinCommon);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_password_rule_and_reason() {
        let p = PasswordPolicy::default();
        let ext = [("1001", "the extension number")];
        let table: &[(&str, &[&str])] = &[
            ("Kx9!vR2#qLm", &[]),
            ("Str0ng!Secret#2026", &[]),
            ("Sh0rt!", &["too-short"]),
            ("alllower9!x", &["no-upper"]),
            ("ALLUPPER9!X", &["no-lower"]),
            ("NoDigits!here", &["no-digit"]),
            ("NoSpecial99x", &["no-special"]),
            ("Xy!1001abz", &["contains-identity"]),
            ("password", &["no-upper", "no-digit", "no-special", "common"]),
            ("Password1!", &["common-base"]),
            ("Qx!abcd9Zt", &["run"]),
            ("Qx!7654Zt", &["run"]),
            ("Qx!aaaa9Zt", &["run"]),
            ("Qx!aaa9Ztb", &[]),
            ("Has space9!X", &["not-printable"]),
            ("", &["too-short", "no-upper", "no-lower", "no-digit", "no-special"]),
        ];
        for (secret, want) in table {
            let got: Vec<&str> = p.check(secret, &ext).iter().map(Violation::code).collect();
            assert_eq!(&got, want, "{secret}");
        }
        let v = p.check("Sh0rt!", &ext);
        assert_eq!(v[0].to_string(), "use at least 8 characters (this one has 6)");
        assert_eq!(Violation::NoSpecial.to_string(), "add a special character such as ! $ % ^");
        assert_eq!(p.check("Xy!1001abz", &ext)[0].to_string(), "must not contain the extension number 1001");
        assert!(common().len() >= 10_000);
    }

    #[test]
    fn every_pin_rule_and_reason() {
        let p = PinPolicy::default();
        let table: &[(&str, &[&str])] = &[
            ("583920", &[]),
            ("58392", &["too-short"]),
            ("12a456", &["not-digits"]),
            ("", &["not-digits"]),
            ("100100", &[]),
            ("111111", &["pin-repeated"]),
            ("123456", &["pin-sequence"]),
            ("987654", &["pin-sequence"]),
            ("112233", &["pin-common"]),
            ("1001", &["too-short", "pin-is-extension"]),
        ];
        for (pin, want) in table {
            let got: Vec<&str> = p.check(pin, "1001").iter().map(Violation::code).collect();
            assert_eq!(&got, want, "{pin}");
        }
        assert_eq!(PinPolicy { min_len: 2 }.check("583", "1")[0].code(), "too-short", "never under 4");
        assert_eq!(Violation::PinIsExtension.to_string(), "must not be the extension number");
    }
}
