use crate::error::ParseError;
use crate::message::{Header, HeaderName, Message, Method, StartLine};
use crate::scan;
use crate::scan::{find_byte, is_token_byte, split_once_byte};

/// Hard limits applied while parsing. They bound the work an attacker can cause per message; anything
/// over a limit is a typed [`ParseError`], never a truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, start line to end of body, in bytes.
    pub max_message: usize,
    /// Most header lines (folded continuations count with their header).
    pub max_headers: usize,
    /// Longest physical line, in bytes.
    pub max_line: usize,
}

impl Default for Limits {
    /// 64 KiB covers any UDP datagram; 128 headers and 8 KiB lines are far beyond real phones and keep a
    /// hostile message's cost bounded.
    fn default() -> Self {
        Self { max_message: 65_535, max_headers: 128, max_line: 8_192 }
    }
}

struct RawHeader {
    name: (usize, usize),
    value: (usize, usize),
}

/// The header section of a message, located but not yet turned into slices.
struct Head {
    /// Offset of the start line (after ignored leading CRLFs, RFC 3261 §7.5).
    start: usize,
    start_end: usize,
    headers: Vec<RawHeader>,
    /// Offset of the first body byte.
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
        let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
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
            // Folded continuation (RFC 3261 §7.3.1): the value now spans the line break.
            let last = headers.last_mut().ok_or(ParseError::BadHeaderLine)?;
            last.value.1 = line_end;
        } else {
            if headers.len() >= limits.max_headers {
                return Err(ParseError::TooManyHeaders);
            }
            let colon = memchr::memchr(b':', &buf[pos..line_end]).ok_or(ParseError::BadHeaderLine)? + pos;
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
    // Request-Line = Method SP Request-URI SP SIP-Version (RFC 3261 §25.1): exactly two single spaces.
    let (method, rest) = split_once_byte(line, b' ').ok_or(ParseError::BadStartLine)?;
    let (uri, version) = split_once_byte(rest, b' ').ok_or(ParseError::BadStartLine)?;
    if find_byte(version, b' ').is_some() {
        return Err(ParseError::BadStartLine);
    }
    if method.is_empty() || uri.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(ParseError::BadStartLine);
    }
    let v = version.as_bytes();
    let ok_version = v.len() >= 7
        && v[..4].eq_ignore_ascii_case(b"SIP/")
        && split_once_byte(&version[4..], b'.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        });
    if !ok_version || uri.bytes().any(|b| b.is_ascii_control()) {
        return Err(ParseError::BadStartLine);
    }
    Ok(StartLine::Request { method: Method::from_token(method), uri, version })
}

fn content_length(value: &str) -> Result<usize, ParseError> {
    let v = scan::trim_lws(value);
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadContentLength);
    }
    let n: u64 = v.parse().map_err(|_| ParseError::BadContentLength)?;
    usize::try_from(n).ok().filter(|&n| n <= u32::MAX as usize).ok_or(ParseError::BadContentLength)
}

impl<'a> Message<'a> {
    /// Parses one message from a datagram (RFC 3261 §18.3): a Content-Length larger than what follows is
    /// an error, a smaller one discards the trailing octets, and a missing one means "the rest".
    pub fn parse(buf: &'a [u8], limits: &Limits) -> Result<Self, ParseError> {
        Self::parse_inner(buf, limits, true)
    }

    /// Like [`Message::parse`] but tolerates a malformed start line (reported as a request with an empty
    /// method) and a bad or duplicate Content-Length (the body is then empty). Used only to salvage enough
    /// of a bad request to answer it with a 400.
    pub fn parse_headers_only(buf: &'a [u8], limits: &Limits) -> Result<Self, ParseError> {
        Self::parse_inner(buf, limits, false)
    }

    fn parse_inner(buf: &'a [u8], limits: &Limits, strict: bool) -> Result<Self, ParseError> {
        match one_pass(buf, limits, strict) {
            Some(r) => r,
            None => two_passes(buf, limits, strict),
        }
    }

    fn finish(
        buf: &'a [u8],
        start: StartLine<'a>,
        headers: Vec<Header<'a>>,
        body: usize,
        clen: Option<usize>,
        strict: bool,
    ) -> Result<Self, ParseError> {
        let rest = &buf[body..];
        let body = match clen {
            Some(n) if n > rest.len() => return Err(ParseError::ContentLengthExceedsMessage),
            Some(n) => &rest[..n],
            None if strict => rest,
            None => &[],
        };
        Ok(Self { start, headers, body })
    }
}

fn start_line(line: &str, strict: bool) -> Result<StartLine<'_>, ParseError> {
    match parse_start(line) {
        Ok(s) => Ok(s),
        Err(e) if strict => Err(e),
        Err(_) => Ok(StartLine::Request { method: Method::Other(""), uri: "", version: "" }),
    }
}

/// Content-Length as [`Message::parse`] takes it: the first error among its lines wins, as if they
/// were checked one by one in order.
#[derive(Default)]
struct ContentLength {
    value: Option<usize>,
    error: Option<ParseError>,
}

impl ContentLength {
    fn see(&mut self, value: &str) {
        if self.error.is_some() {
            return;
        }
        if self.value.is_some() {
            self.error = Some(ParseError::DuplicateContentLength);
            return;
        }
        match content_length(value) {
            Ok(n) => self.value = Some(n),
            Err(e) => self.error = Some(e),
        }
    }

    fn get(self) -> Result<Option<usize>, ParseError> {
        self.error.map_or(Ok(self.value), Err)
    }
}

/// The usual case in one pass over the header section: each line is split, checked as UTF-8, named and
/// trimmed as it is found, straight into the message's header list. `None` when a line is not UTF-8:
/// then [`two_passes`] decides, so that which error wins stays exactly what it always was (a framing
/// error anywhere in the header section before `NotUtf8`).
fn one_pass<'a>(buf: &'a [u8], limits: &Limits, strict: bool) -> Option<Result<Message<'a>, ParseError>> {
    if buf.len() > limits.max_message {
        return Some(Err(ParseError::TooLarge));
    }
    let text = |a: usize, b: usize| std::str::from_utf8(&buf[a..b]).ok();
    let mut pos = 0;
    while pos < buf.len() && (buf[pos] == b'\r' || buf[pos] == b'\n') {
        pos += 1;
    }
    let mut start: Option<&'a str> = None;
    let mut headers: Vec<Header<'a>> = Vec::with_capacity(16);
    // Where the value of the last header begins: a folded line extends it.
    let mut last_value = 0;
    let mut clen = ContentLength::default();
    loop {
        let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
            return Some(Err(if buf.len() - pos > limits.max_line {
                ParseError::LineTooLong
            } else {
                ParseError::Incomplete
            }));
        };
        if nl > limits.max_line {
            return Some(Err(ParseError::LineTooLong));
        }
        let line_end = trim_cr(buf, pos, pos + nl);
        let next = pos + nl + 1;
        let Some(start_text) = start else {
            start = Some(text(pos, line_end)?);
            pos = next;
            continue;
        };
        if line_end == pos {
            let start = match start_line(start_text, strict) {
                Ok(s) => s,
                Err(e) => return Some(Err(e)),
            };
            // Content-Length is read once its header is whole: a folded value counts with its folds.
            if strict {
                for h in headers.iter().filter(|h| h.name == HeaderName::ContentLength) {
                    clen.see(h.value);
                }
            }
            let clen = match clen.get() {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            return Some(Message::finish(buf, start, headers, next, clen, strict));
        }
        let first = buf[pos];
        if first == b' ' || first == b'\t' {
            // Folded continuation (RFC 3261 §7.3.1): the value now spans the line break.
            let Some(last) = headers.last_mut() else { return Some(Err(ParseError::BadHeaderLine)) };
            last.value = scan::trim_lws(text(last_value, line_end)?);
        } else {
            if headers.len() >= limits.max_headers {
                return Some(Err(ParseError::TooManyHeaders));
            }
            let Some(colon) = memchr::memchr(b':', &buf[pos..line_end]) else {
                return Some(Err(ParseError::BadHeaderLine));
            };
            let colon = colon + pos;
            let mut name_end = colon;
            while name_end > pos && (buf[name_end - 1] == b' ' || buf[name_end - 1] == b'\t') {
                name_end -= 1;
            }
            if name_end == pos || !buf[pos..name_end].iter().all(|&b| is_token_byte(b)) {
                return Some(Err(ParseError::BadHeaderLine));
            }
            let line = text(pos, line_end)?;
            // The name is token bytes (ASCII), so these offsets are character boundaries.
            let name = HeaderName::classify(&line[..name_end - pos]);
            let value = scan::trim_lws(&line[colon + 1 - pos..]);
            last_value = colon + 1;
            headers.push(Header { name, value });
        }
        pos = next;
    }
}

/// The header section split first and converted to text second, as the parser always did: the
/// reference for the order of errors on a message that is not UTF-8.
fn two_passes<'a>(buf: &'a [u8], limits: &Limits, strict: bool) -> Result<Message<'a>, ParseError> {
    let head = split_head(buf, limits)?;
    let text = std::str::from_utf8(&buf[..head.body]).map_err(|_| ParseError::NotUtf8)?;
    let start = start_line(&text[head.start..head.start_end], strict)?;
    let mut headers = Vec::with_capacity(head.headers.len());
    let mut clen = ContentLength::default();
    for raw in &head.headers {
        let name = HeaderName::classify(&text[raw.name.0..raw.name.1]);
        let value = scan::trim_lws(&text[raw.value.0..raw.value.1]);
        if name == HeaderName::ContentLength && strict {
            clen.see(value);
        }
        headers.push(Header { name, value });
    }
    Message::finish(buf, start, headers, head.body, clen.get()?, strict)
}

/// Frames the next message on a stream transport (TCP, TLS; RFC 3261 §18.3). Returns `Ok(None)` when more
/// bytes are needed, or `(skip, len)`: `skip` leading CRLF bytes to drop (RFC 3261 §7.5), then a message
/// of `len` bytes. Keep-alive pings (RFC 5626 §3.5.1) are the caller's to answer before framing.
pub fn stream_frame_len(buf: &[u8], limits: &Limits) -> Result<Option<(usize, usize)>, ParseError> {
    let capped = &buf[..buf.len().min(limits.max_message)];
    let head = match split_head(capped, limits) {
        Ok(h) => h,
        Err(ParseError::Incomplete) if buf.len() < limits.max_message => return Ok(None),
        Err(ParseError::Incomplete) => return Err(ParseError::TooLarge),
        Err(e) => return Err(e),
    };
    let mut clen = None;
    for raw in &head.headers {
        let name = std::str::from_utf8(&buf[raw.name.0..raw.name.1]).map_err(|_| ParseError::NotUtf8)?;
        if HeaderName::classify(name) == HeaderName::ContentLength {
            if clen.is_some() {
                return Err(ParseError::DuplicateContentLength);
            }
            let value = std::str::from_utf8(&buf[raw.value.0..raw.value.1]).map_err(|_| ParseError::NotUtf8)?;
            clen = Some(content_length(value)?);
        }
    }
    let clen = clen.ok_or(ParseError::MissingContentLength)?;
    let total = head.body + clen;
    if total > limits.max_message {
        return Err(ParseError::TooLarge);
    }
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((head.start, total - head.start)))
}
