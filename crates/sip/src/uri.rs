//! SIP and other URIs (RFC 3261 §19.1, §25.1). A SIP URI is split into its parts; any other scheme is
//! kept opaque, which is all a registrar needs (RFC 4475 §3.3.4).

use crate::scan::{find_byte, split_once_byte};

/// URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme<'a> {
    Sip,
    Sips,
    Tel,
    Other(&'a str),
}

/// A URI borrowing from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    pub raw: &'a str,
    pub scheme: Scheme<'a>,
    /// User part, still %-escaped (SIP/SIPS only).
    pub user: Option<&'a str>,
    /// Host (SIP/SIPS); for IPv6 the brackets are kept. Empty for other schemes.
    pub host: &'a str,
    pub port: Option<u16>,
    /// URI parameters after the first `;` of the hostport, without the leading `;`.
    pub params: &'a str,
    /// Headers after `?`, still escaped.
    pub headers: Option<&'a str>,
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'
}

fn valid_host(h: &str) -> bool {
    if let Some(v6) = h.strip_prefix('[') {
        return v6.strip_suffix(']').is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    }
    !h.is_empty() && h.bytes().all(is_host_byte)
}

/// Bytes allowed anywhere in a URI as we accept it: visible ASCII except the delimiters that would make
/// the URI ambiguous inside a header.
fn is_uri_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"')
}

fn is_scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// `;`-separated parameters with an empty one (`;;`, or `;` first or last).
fn has_empty_param(params: &str) -> bool {
    let b = params.as_bytes();
    b.first() == Some(&b';') || b.last() == Some(&b';') || b.windows(2).any(|w| w == b";;")
}

impl<'a> Uri<'a> {
    /// Parses an absolute URI. `None` means malformed.
    ///
    /// Every byte is checked to be visible ASCII first, so every split below is by byte: each delimiter
    /// is searched once, left to right, and no UTF-8 decoding is needed.
    pub fn parse(raw: &'a str) -> Option<Self> {
        if raw.is_empty() || !raw.bytes().all(is_uri_byte) {
            return None;
        }
        let (scheme, rest) = split_once_byte(raw, b':')?;
        let sb = scheme.as_bytes();
        if !sb.first()?.is_ascii_alphabetic() || !sb[1..].iter().all(|&b| is_scheme_byte(b)) {
            return None;
        }
        let scheme = if scheme.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other(scheme)
        };
        if !matches!(scheme, Scheme::Sip | Scheme::Sips) {
            if rest.is_empty() {
                return None;
            }
            return Some(Self { raw, scheme, user: None, host: "", port: None, params: "", headers: None });
        }
        // Only userinfo may contain '@' unescaped, so the first '@' ends it (RFC 3261 §25.1).
        let (user, hostpart) = match split_once_byte(rest, b'@') {
            Some((u, h)) => {
                let user = find_byte(u, b':').map_or(u, |i| &u[..i]);
                if user.is_empty() {
                    return None;
                }
                (Some(user), h)
            }
            None => (None, rest),
        };
        let (before_headers, headers) = match split_once_byte(hostpart, b'?') {
            Some((a, h)) => (a, Some(h)),
            None => (hostpart, None),
        };
        let (hostport, params) = split_once_byte(before_headers, b';').unwrap_or((before_headers, ""));
        let (host, port) = if hostport.starts_with('[') {
            let close = find_byte(hostport, b']')?;
            let (h, p) = hostport.split_at(close + 1);
            (h, if p.is_empty() { None } else { Some(p.strip_prefix(':')?) })
        } else {
            match split_once_byte(hostport, b':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if !valid_host(host) {
            return None;
        }
        let port = match port {
            Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<u16>().ok()?)
            }
            Some(_) => return None,
            None => None,
        };
        if has_empty_param(params) {
            return None;
        }
        Some(Self { raw, scheme, user, host, port, params, headers })
    }

    /// Value of a URI parameter (`transport`, `lr`, ...); `Some("")` for a flag parameter.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        if self.params.is_empty() {
            return None;
        }
        self.params.split(';').find_map(|p| {
            let (n, v) = split_once_byte(p, b'=').unwrap_or((p, ""));
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let u = Uri::parse("sip:1001@10.0.0.1:5062;transport=tcp;lr").unwrap();
        assert_eq!((u.user, u.host, u.port), (Some("1001"), "10.0.0.1", Some(5062)));
        assert_eq!(u.param("transport"), Some("tcp"));
        assert_eq!(u.param("lr"), Some(""));
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        let u = Uri::parse("sips:[2001:db8::1]:5061").unwrap();
        assert_eq!((u.host, u.port), ("[2001:db8::1]", Some(5061)));
        let u = Uri::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").unwrap();
        assert_eq!(u.headers, Some("Route=%3Csip:sip.example.com%3E"));
        assert!(matches!(Uri::parse("isbn:2983792873").unwrap().scheme, Scheme::Other("isbn")));
        for bad in [
            "",
            "sip:",
            "sip:a b@c",
            "sip:@host",
            "sip:host:99999",
            "sip:host:",
            "<sip:a@b>",
            "sip:h;;x",
            "1sip:x",
            "sip:h;x;",
            ":x",
            "s!p:x",
            "sip:[::1",
            "sip:[::1]5060",
            "sip:é@h",
        ] {
            assert!(Uri::parse(bad).is_none(), "{bad}");
        }
        // A lone ';' after the host leaves no parameter at all, and has always been accepted.
        assert_eq!(Uri::parse("sip:h;").unwrap().params, "");
    }
}
