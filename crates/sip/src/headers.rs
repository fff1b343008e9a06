//! Typed views of the headers the core needs, parsed on demand from the raw value (RFC 3261 §20, §25).
//! Each parser validates its whole input, so a value that parses here is one we can safely act on.

use crate::message::Method;
use crate::scan::{Cursor, is_lws, is_token_byte, unescape};
use crate::uri::Uri;
use std::borrow::Cow;

/// One `;name[=value]` parameter; a quoted value keeps its escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a str,
    pub value: Option<&'a str>,
    /// The value was a quoted-string (its quotes are not part of `value`).
    pub quoted: bool,
}

/// A validated run of generic parameters, kept as text and scanned on lookup (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

fn is_value_byte(b: u8) -> bool {
    is_token_byte(b) || b == b':' || b == b'[' || b == b']'
}

/// Reads one parameter at the cursor (after its `;`). Grammar: token [EQUAL (token / host / quoted)].
fn next_param<'a>(c: &mut Cursor<'a>) -> Option<Param<'a>> {
    c.skip_lws();
    let name = c.token()?;
    c.skip_lws();
    let mut quoted = false;
    let value = if c.eat(b'=') {
        c.skip_lws();
        quoted = c.peek() == Some(b'"');
        if quoted { Some(c.quoted()?) } else { Some(c.take_while(is_value_byte)?) }
    } else {
        None
    };
    c.skip_lws();
    Some(Param { name, value, quoted })
}

impl<'a> Params<'a> {
    /// Validates `;a=b;c` (the text starting at the first `;`); `None` if any parameter is malformed.
    fn parse(c: &mut Cursor<'a>) -> Option<Self> {
        let start = c.pos;
        while c.eat(b';') {
            next_param(c)?;
        }
        Some(Self { raw: &c.s[start..c.pos] })
    }

    pub fn iter(&self) -> impl Iterator<Item = Param<'a>> + 'a {
        let mut c = Cursor::new(self.raw);
        std::iter::from_fn(move || if c.eat(b';') { next_param(&mut c) } else { None })
    }

    /// `Some(None)` for a flag parameter, `Some(Some(v))` for a valued one.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter().find(|p| p.name.eq_ignore_ascii_case(name)).map(|p| p.value)
    }

    pub fn as_str(&self) -> &'a str {
        self.raw
    }
}

/// One Via element (RFC 3261 §20.42).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    pub transport: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut c = Cursor::new(s);
        c.skip_lws();
        let name = c.token()?;
        c.skip_lws();
        c.eat(b'/').then_some(())?;
        c.skip_lws();
        let version = c.token()?;
        c.skip_lws();
        c.eat(b'/').then_some(())?;
        c.skip_lws();
        let transport = c.token()?;
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return None;
        }
        c.skip_lws().then_some(())?;
        let host = if c.peek() == Some(b'[') {
            let start = c.pos;
            c.take_while(|b| b != b']')?;
            c.eat(b']').then_some(())?;
            &c.s[start..c.pos]
        } else {
            c.take_while(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')?
        };
        c.skip_lws();
        let port = if c.eat(b':') {
            c.skip_lws();
            let p = c.take_while(|b| b.is_ascii_digit())?;
            Some(p.parse::<u16>().ok()?)
        } else {
            None
        };
        c.skip_lws();
        let params = Params::parse(&mut c)?;
        c.at_end().then_some(Self { transport, host, port, params })
    }

    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").flatten()
    }

    /// `rport` present (RFC 3581 §3): `Some(None)` when empty, as a client sends it.
    pub fn rport(&self) -> Option<Option<&'a str>> {
        self.params.get("rport")
    }
}

/// `name-addr` or `addr-spec` with header parameters: To, From, Contact, Route (RFC 3261 §20.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name as written: quoted text (escapes kept) or the token words.
    pub display: Option<&'a str>,
    pub uri: Uri<'a>,
    /// Whether the URI was inside `<>`; a binding keeps the form it was given.
    pub bracketed: bool,
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut c = Cursor::new(s);
        c.skip_lws();
        let has_angle = {
            // A '<' outside a quoted string means name-addr form.
            let mut q = Cursor::new(s);
            let mut found = false;
            while let Some(b) = q.peek() {
                if b == b'"' {
                    q.quoted()?;
                    continue;
                }
                if b == b'<' {
                    found = true;
                    break;
                }
                q.pos += 1;
            }
            found
        };
        let (display, uri) = if has_angle {
            let display = if c.peek() == Some(b'"') {
                let d = c.quoted()?;
                c.skip_lws();
                Some(d)
            } else {
                let start = c.pos;
                while c.peek().is_some_and(|b| is_token_byte(b) || is_lws(b)) {
                    c.pos += 1;
                }
                let d = crate::scan::trim_lws(&s[start..c.pos]);
                (!d.is_empty()).then_some(d)
            };
            c.eat(b'<').then_some(())?;
            let start = c.pos;
            c.take_while(|b| b != b'>')?;
            let uri = Uri::parse(&s[start..c.pos])?;
            c.eat(b'>').then_some(())?;
            (display, uri)
        } else {
            // addr-spec form: a URI with ',', '?' or ';' inside must be bracketed (RFC 3261 §20),
            // so the URI ends at the first ';' and may not contain '?' or ','.
            let raw = c.take_while(|b| b != b';' && !is_lws(b))?;
            if raw.contains('?') || raw.contains(',') {
                return None;
            }
            (None, Uri::parse(raw)?)
        };
        c.skip_lws();
        let params = Params::parse(&mut c)?;
        c.skip_lws();
        c.at_end().then_some(Self { display, uri, bracketed: has_angle, params })
    }

    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }

    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display.map(unescape)
    }
}

/// CSeq (RFC 3261 §20.16): the number must be below 2**31.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub seq: u32,
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut c = Cursor::new(s);
        c.skip_lws();
        let digits = c.take_while(|b| b.is_ascii_digit())?;
        c.skip_lws().then_some(())?;
        let method = c.token()?;
        c.skip_lws();
        if !c.at_end() || digits.len() > 10 {
            return None;
        }
        let seq: u64 = digits.parse().ok()?;
        (seq < 1 << 31).then(|| Self { seq: seq as u32, method: Method::from_token(method) })
    }
}

/// A delta-seconds value (Expires, Max-Forwards); `None` if malformed or above `max`.
pub(crate) fn parse_number(s: &str, max: u64) -> Option<u64> {
    let v = crate::scan::trim_lws(s);
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().filter(|&n| n <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_and_params() {
        let v = Via::parse("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!((v.transport, v.host, v.port, v.branch()), ("UDP", "192.0.2.2", None, Some("390skdjuw")));
        let v = Via::parse("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bK1").unwrap();
        assert_eq!((v.port, v.rport()), (Some(5060), Some(None)));
        let v = Via::parse("SIP/2.0/TCP [2001:db8::9]:5070;branch=z9").unwrap();
        assert_eq!(v.host, "[2001:db8::9]");
        for bad in ["SIP/2.0/UDP 192.0.2.15;;", "SIP/3.0/UDP h", "SIP/2.0/UDP", "SIP/2.0/UDP h;branch=", ";"] {
            assert!(Via::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.tag(), Some("98asjd8"));
        assert_eq!(n.display_name().unwrap(), r#"J Rosenberg \""#);
        let n = NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!((n.uri.user, n.tag()), (Some("vivekg"), Some("1918181833n")));
        let n = NameAddr::parse(r#""caller"<sip:caller@example.com>;tag=323"#).unwrap();
        assert_eq!(n.display, Some("caller"));
        assert_eq!(NameAddr::parse("Joe Q  User <sip:joe@x>").unwrap().display, Some("Joe Q  User"));
        for bad in [
            r#""Mr. J. User <sip:j.user@example.com>"#,
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "\"Joe\" <sip:joe@example.org>;;;;",
            "<sip:a@b> junk",
        ] {
            assert!(NameAddr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn cseq_limits() {
        assert_eq!(CSeq::parse("0009\r\n  INVITE").unwrap().seq, 9);
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_none());
        assert!(CSeq::parse("2147483648 REGISTER").is_none());
        assert!(CSeq::parse("1REGISTER").is_none());
        assert_eq!(parse_number("0068", 255), Some(68));
        assert_eq!(parse_number("300", 255), None);
    }
}
