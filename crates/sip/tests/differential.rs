//! The parser as it was before it was made cheaper (seventh session: byte searches instead of `char`
//! searches, one pass over the header section, one pass over the headers in the sanity checks) kept
//! here as an oracle: on realistic messages with random damage, the new code must give exactly the
//! same result, error for error, as the old one. Behaviour was not to change, only the cost.

use pbxguard_sip::{
    CSeq, Header, HeaderName, Limits, MAX_VIAS, Message, Method, NameAddr, ParseError, Request, SanityError, Scheme,
    StartLine, Uri, Via, check_request, split_commas, too_many_vias,
};
use proptest::prelude::*;

/// The code of HEAD before the change, trimmed to what the public API exposes.
mod oracle {
    use super::*;

    fn is_lws(b: u8) -> bool {
        matches!(b, b' ' | b'\t' | b'\r' | b'\n')
    }

    fn is_token_byte(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
    }

    pub(super) fn trim_lws(s: &str) -> &str {
        s.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8))
    }

    pub(super) fn split_commas(s: &str) -> impl Iterator<Item = &str> {
        let bytes = s.as_bytes();
        let mut pos = 0;
        let mut done = s.is_empty();
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let start = pos;
            let (mut quoted, mut angle, mut escape) = (false, false, false);
            while pos < bytes.len() {
                let b = bytes[pos];
                if escape {
                    escape = false;
                } else if quoted {
                    match b {
                        b'\\' => escape = true,
                        b'"' => quoted = false,
                        _ => {}
                    }
                } else {
                    match b {
                        b'"' => quoted = true,
                        b'<' => angle = true,
                        b'>' => angle = false,
                        b',' if !angle => break,
                        _ => {}
                    }
                }
                pos += 1;
            }
            let item = trim_lws(&s[start..pos]);
            if pos >= bytes.len() {
                done = true;
            } else {
                pos += 1;
            }
            Some(item)
        })
    }

    struct RawHeader {
        name: (usize, usize),
        value: (usize, usize),
    }

    struct Head {
        start: usize,
        start_end: usize,
        headers: Vec<RawHeader>,
        body: usize,
    }

    fn trim_cr(buf: &[u8], start: usize, end: usize) -> usize {
        if end > start && buf[end - 1] == b'\r' { end - 1 } else { end }
    }

    fn split_head(buf: &[u8], limits: &Limits) -> Result<Head, ParseError> {
        if buf.len() > limits.max_message {
            return Err(ParseError::TooLarge);
        }
        let mut pos = 0;
        while pos < buf.len() && (buf[pos] == b'\r' || buf[pos] == b'\n') {
            pos += 1;
        }
        let start = pos;
        let mut start_end = None;
        let mut headers: Vec<RawHeader> = Vec::with_capacity(16);
        loop {
            let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
                return Err(if buf.len() - pos > limits.max_line {
                    ParseError::LineTooLong
                } else {
                    ParseError::Incomplete
                });
            };
            if nl > limits.max_line {
                return Err(ParseError::LineTooLong);
            }
            let line_end = trim_cr(buf, pos, pos + nl);
            let next = pos + nl + 1;
            if start_end.is_none() {
                start_end = Some(line_end);
                pos = next;
                continue;
            }
            if line_end == pos {
                return Ok(Head { start, start_end: start_end.unwrap_or(start), headers, body: next });
            }
            let first = buf[pos];
            if first == b' ' || first == b'\t' {
                let last = headers.last_mut().ok_or(ParseError::BadHeaderLine)?;
                last.value.1 = line_end;
            } else {
                if headers.len() >= limits.max_headers {
                    return Err(ParseError::TooManyHeaders);
                }
                let colon = buf[pos..line_end].iter().position(|&b| b == b':').ok_or(ParseError::BadHeaderLine)? + pos;
                let mut name_end = colon;
                while name_end > pos && (buf[name_end - 1] == b' ' || buf[name_end - 1] == b'\t') {
                    name_end -= 1;
                }
                if name_end == pos || !buf[pos..name_end].iter().all(|&b| is_token_byte(b)) {
                    return Err(ParseError::BadHeaderLine);
                }
                headers.push(RawHeader { name: (pos, name_end), value: (colon + 1, line_end) });
            }
            pos = next;
        }
    }

    fn parse_start(line: &str) -> Result<StartLine<'_>, ParseError> {
        if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
            let code = rest.get(..3).ok_or(ParseError::BadStatusCode)?;
            if !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::BadStatusCode);
            }
            let reason = match rest.as_bytes().get(3) {
                Some(b' ') => &rest.as_bytes()[4..],
                _ => return Err(ParseError::BadStatusCode),
            };
            let code: u16 = code.parse().map_err(|_| ParseError::BadStatusCode)?;
            if code < 100 {
                return Err(ParseError::BadStatusCode);
            }
            return Ok(StartLine::Response { code, reason });
        }
        let mut parts = line.split(' ');
        let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError::BadStartLine);
        };
        if method.is_empty() || uri.is_empty() || !method.bytes().all(is_token_byte) {
            return Err(ParseError::BadStartLine);
        }
        let v = version.as_bytes();
        let ok_version = v.len() >= 7
            && v[..4].eq_ignore_ascii_case(b"SIP/")
            && version[4..].split_once('.').is_some_and(|(a, b)| {
                !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            });
        if !ok_version || uri.bytes().any(|b| b.is_ascii_control()) {
            return Err(ParseError::BadStartLine);
        }
        Ok(StartLine::Request { method: Method::from_token(method), uri, version })
    }

    fn content_length(value: &str) -> Result<usize, ParseError> {
        let v = trim_lws(value);
        if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadContentLength);
        }
        let n: u64 = v.parse().map_err(|_| ParseError::BadContentLength)?;
        usize::try_from(n).ok().filter(|&n| n <= u32::MAX as usize).ok_or(ParseError::BadContentLength)
    }

    pub(super) fn parse<'a>(buf: &'a [u8], limits: &Limits, strict: bool) -> Result<Message<'a>, ParseError> {
        let head = split_head(buf, limits)?;
        let text = std::str::from_utf8(&buf[..head.body]).map_err(|_| ParseError::NotUtf8)?;
        let line = &text[head.start..head.start_end];
        let start = match parse_start(line) {
            Ok(s) => s,
            Err(e) if strict => return Err(e),
            Err(_) => StartLine::Request { method: Method::Other(""), uri: "", version: "" },
        };
        let mut headers = Vec::with_capacity(head.headers.len());
        let mut clen = None;
        for raw in &head.headers {
            let name = HeaderName::classify(&text[raw.name.0..raw.name.1]);
            let value = trim_lws(&text[raw.value.0..raw.value.1]);
            if name == HeaderName::ContentLength && strict {
                if clen.is_some() {
                    return Err(ParseError::DuplicateContentLength);
                }
                clen = Some(content_length(value)?);
            }
            headers.push(Header { name, value });
        }
        let rest = &buf[head.body..];
        let body = match clen {
            Some(n) if n > rest.len() => return Err(ParseError::ContentLengthExceedsMessage),
            Some(n) => &rest[..n],
            None if strict => rest,
            None => &[],
        };
        Ok(Message { start, headers, body })
    }

    fn single<'a>(msg: &Message<'a>, name: HeaderName<'static>, label: &'static str) -> Result<&'a str, SanityError> {
        let mut it = msg.header_all(name);
        let v = it.next().ok_or(SanityError::MissingHeader(label))?;
        if it.next().is_some() {
            return Err(SanityError::DuplicateHeader(label));
        }
        Ok(v)
    }

    fn optional<'a>(
        msg: &Message<'a>,
        name: HeaderName<'static>,
        label: &'static str,
    ) -> Result<Option<&'a str>, SanityError> {
        match single(msg, name, label) {
            Ok(v) => Ok(Some(v)),
            Err(SanityError::MissingHeader(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn parse_number(s: &str, max: u64) -> Option<u64> {
        let v = trim_lws(s);
        if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        v.parse::<u64>().ok().filter(|&n| n <= max)
    }

    pub(super) fn check_request<'a>(msg: &Message<'a>) -> Result<Request<'a>, SanityError> {
        let StartLine::Request { method, uri, version } = msg.start else {
            return Err(SanityError::NotARequest);
        };
        if too_many_vias(msg) {
            return Err(SanityError::TooManyVias);
        }
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(SanityError::UnsupportedVersion);
        }
        let mut vias = msg.header_values(HeaderName::Via);
        let top = vias.next().ok_or(SanityError::MissingHeader("Via"))?;
        let via = Via::parse(top).ok_or(SanityError::BadHeader("Via"))?;
        if !vias.all(|v| Via::parse(v).is_some()) {
            return Err(SanityError::BadHeader("Via"));
        }
        let from = NameAddr::parse(single(msg, HeaderName::From, "From")?).ok_or(SanityError::BadHeader("From"))?;
        let to = NameAddr::parse(single(msg, HeaderName::To, "To")?).ok_or(SanityError::BadHeader("To"))?;
        let call_id = single(msg, HeaderName::CallId, "Call-ID")?;
        if call_id.is_empty() || call_id.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(SanityError::BadHeader("Call-ID"));
        }
        let cseq = CSeq::parse(single(msg, HeaderName::CSeq, "CSeq")?).ok_or(SanityError::BadHeader("CSeq"))?;
        if cseq.method != method {
            return Err(SanityError::CSeqMismatch);
        }
        let max_forwards = match optional(msg, HeaderName::MaxForwards, "Max-Forwards")? {
            Some(v) => Some(parse_number(v, 255).ok_or(SanityError::BadHeader("Max-Forwards"))? as u8),
            None => None,
        };
        let expires = match optional(msg, HeaderName::Expires, "Expires")? {
            Some(v) => {
                let t = trim_lws(v);
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SanityError::BadHeader("Expires"));
                }
                Some(t.parse::<u64>().map_or(u32::MAX, |n| n.min(u32::MAX as u64) as u32))
            }
            None => None,
        };
        optional(msg, HeaderName::ContentType, "Content-Type")?;
        if let Some(date) = optional(msg, HeaderName::Date, "Date")?
            && !trim_lws(date).ends_with(" GMT")
        {
            return Err(SanityError::BadHeader("Date"));
        }
        for c in msg.header_values(HeaderName::Contact) {
            if c != "*" && NameAddr::parse(c).is_none() {
                return Err(SanityError::BadHeader("Contact"));
            }
        }
        if uri.starts_with('<') {
            return Err(SanityError::BadRequestUri);
        }
        let uri = Uri::parse(uri).ok_or(SanityError::BadRequestUri)?;
        if uri.headers.is_some() {
            return Err(SanityError::BadRequestUri);
        }
        if !matches!(uri.scheme, Scheme::Sip | Scheme::Sips | Scheme::Tel) {
            return Err(SanityError::UnsupportedScheme);
        }
        Ok(Request { method, uri, via, from, to, call_id, cseq, max_forwards, expires })
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

    fn is_uri_byte(b: u8) -> bool {
        b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"')
    }

    pub(super) fn uri(raw: &str) -> Option<Uri<'_>> {
        if raw.is_empty() || !raw.bytes().all(is_uri_byte) {
            return None;
        }
        let (scheme, rest) = raw.split_once(':')?;
        let mut sb = scheme.bytes();
        if !sb.next()?.is_ascii_alphabetic() || !sb.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
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
            return Some(Uri { raw, scheme, user: None, host: "", port: None, params: "", headers: None });
        }
        let (user, hostpart) = match rest.split_once('@') {
            Some((u, h)) => {
                let user = u.split_once(':').map_or(u, |(user, _password)| user);
                if user.is_empty() {
                    return None;
                }
                (Some(user), h)
            }
            None => (None, rest),
        };
        let (before_headers, headers) = match hostpart.split_once('?') {
            Some((a, h)) => (a, Some(h)),
            None => (hostpart, None),
        };
        let (hostport, params) = before_headers.split_once(';').unwrap_or((before_headers, ""));
        let (host, port) = if hostport.starts_with('[') {
            let close = hostport.find(']')?;
            let (h, p) = hostport.split_at(close + 1);
            (h, if p.is_empty() { None } else { Some(p.strip_prefix(':')?) })
        } else {
            match hostport.split_once(':') {
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
        if params.split(';').any(|p| p.is_empty()) && !params.is_empty() {
            return None;
        }
        Some(Uri { raw, scheme, user, host, port, params, headers })
    }
}

const REGISTER: &str = "REGISTER sip:pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5062;rport;branch=z9hG4bK-524287-1---e2a5f7d4b1b0e6c3\r\n\
Via: SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKx, SIP/2.0/UDP h;branch=z9hG4bKy\r\n\
Max-Forwards: 70\r\n\
Contact: \"A, \\\"B\\\"\" <sip:1001@192.0.2.10:5062;rinstance=6d3f;transport=UDP>;expires=60, <sip:x@[::1]>\r\n\
To: <sip:1001@pbx.example.com>\r\n\
From: Front Desk <sip:1001:pw@pbx.example.com;user=phone?X=y>;tag=8a6c2e1f\r\n\
Call-ID: ZGQ5NmE4YzQ1ZTdmNjM0ZDg2NGI1MWUxYmQwZTk3ZTI.\r\n\
CSeq: 2 REGISTER\r\n\
Expires: 3600\r\n\
Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n\
Require: path\r\n\
User-Agent: Z 5.6.1\r\n  v2.10\r\n\
Authorization: Digest username=\"1001\",realm=\"pbx\",nonce=\"00f0\",uri=\"sip:pbx\",response=\"5b8c\",nc=00000001,qop=auth\r\n\
Content-Length: 4\r\n\r\nbody";

/// Bytes that matter to the scanners: delimiters, white space, line breaks, non-ASCII and invalid UTF-8.
const ALPHABET: &[u8] = b",;:@?<>\"\\[]= \t\r\n/.x0\xc3\xa9\xff";

fn damaged() -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..3);
    prop::collection::vec(edit, 0..8).prop_map(|edits| {
        let mut b = REGISTER.as_bytes().to_vec();
        for (at, with, kind) in edits {
            let i = at.index(b.len());
            let c = ALPHABET[with.index(ALPHABET.len())];
            match kind {
                0 => b[i] = c,
                1 => b.insert(i, c),
                _ => {
                    b.remove(i);
                }
            }
        }
        b
    })
}

fn same_uri(a: Option<Uri<'_>>, b: Option<Uri<'_>>) -> bool {
    a == b
}

fn check_same(bytes: &[u8]) -> Result<(), TestCaseError> {
    let limits = Limits { max_headers: 12, max_line: 120, ..Limits::default() };
    for l in [Limits::default(), limits] {
        prop_assert_eq!(Message::parse(bytes, &l), oracle::parse(bytes, &l, true));
        prop_assert_eq!(Message::parse_headers_only(bytes, &l), oracle::parse(bytes, &l, false));
    }
    for strict in [true, false] {
        if let Ok(msg) = oracle::parse(bytes, &Limits::default(), strict) {
            let (new, old) = (check_request(&msg), oracle::check_request(&msg));
            prop_assert_eq!(format!("{new:?}"), format!("{old:?}"));
        }
    }
    if let Ok(msg) = oracle::parse(bytes, &Limits::default(), false) {
        for h in &msg.headers {
            prop_assert!(split_commas(h.value).eq(oracle::split_commas(h.value)), "{:?}", h.value);
            for item in oracle::split_commas(h.value) {
                let inner = item.find('<').and_then(|a| item[a + 1..].find('>').map(|b| &item[a + 1..a + 1 + b]));
                for u in [Some(item), inner].into_iter().flatten() {
                    prop_assert!(same_uri(Uri::parse(u), oracle::uri(u)), "{u:?}");
                }
            }
        }
        if let Some(u) = msg.request_uri() {
            prop_assert!(same_uri(Uri::parse(u), oracle::uri(u)), "{u:?}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn parser_matches_the_previous_one(bytes in damaged()) {
        check_same(&bytes)?;
    }

    #[test]
    fn uri_matches_the_previous_one(s in "[a-z:@;?=\\[\\]0-9.%+!-]{0,24}") {
        prop_assert!(same_uri(Uri::parse(&s), oracle::uri(&s)), "{s:?}");
    }

    #[test]
    fn split_commas_matches_the_previous_one(s in "[a,\"<>\\\\ \t\r\né]{0,24}") {
        prop_assert!(split_commas(&s).eq(oracle::split_commas(&s)), "{s:?}");
    }
}

#[test]
fn via_limit_and_order_of_errors() {
    let base = REGISTER.replace("SIP/2.0\r\n", "SIP/3.0\r\n");
    for vias in [MAX_VIAS - 2, MAX_VIAS - 1, MAX_VIAS, MAX_VIAS + 5] {
        for bad in ["", "Via: SIP/2.0/UDP\r\n", "Via: junk, SIP/2.0/UDP h\r\n"] {
            for text in [REGISTER.to_owned(), base.clone()] {
                let extra = "Via: SIP/2.0/UDP a;branch=z9hG4bKq\r\n".repeat(vias);
                let text = text.replacen("Max-Forwards", &format!("{bad}{extra}Max-Forwards"), 1);
                let m = Message::parse(text.as_bytes(), &Limits { max_headers: 200, ..Limits::default() }).unwrap();
                let (new, old) = (check_request(&m), oracle::check_request(&m));
                assert_eq!(format!("{new:?}"), format!("{old:?}"), "{vias} {bad:?}");
                assert_eq!(
                    too_many_vias(&m),
                    vias + 3 + usize::from(!bad.is_empty()) * (1 + usize::from(bad.contains(','))) > MAX_VIAS
                );
            }
        }
    }
}

#[test]
fn the_undamaged_message_is_valid() {
    let m = Message::parse(REGISTER.as_bytes(), &Limits::default()).unwrap();
    check_request(&m).unwrap();
    assert_eq!(m.header_values(HeaderName::Via).count(), 3);
    assert!(m.header_values(HeaderName::Via).all(|v| Via::parse(v).is_some()));
    assert!(m.header_values(HeaderName::Contact).all(|v| NameAddr::parse(v).is_some()));
    assert_eq!(CSeq::parse(m.header(HeaderName::CSeq).unwrap()).unwrap().seq, 2);
    check_same(REGISTER.as_bytes()).unwrap();
}
