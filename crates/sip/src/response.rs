//! Builds responses to a request (RFC 3261 §8.2.6): Via, From, To, Call-ID and CSeq are copied, the top
//! Via gets `received` and, when asked for, `rport` (RFC 3581 §4), and a To tag is added where needed.

use crate::headers::Via;
use crate::message::{HeaderName, Message};
use crate::scan::write_unfolded;
use std::io::Write;
use std::net::SocketAddr;

/// Accumulates a response in one buffer.
pub struct ResponseBuilder {
    buf: Vec<u8>,
}

/// Writes a Via with `received` set to the source address and, when the sender asked for it (or
/// `force_rport`), `rport` set to the source port (RFC 3581 §4).
pub(crate) fn write_via_received(via: &Via<'_>, source: SocketAddr, force_rport: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"Via: SIP/2.0/");
    out.extend_from_slice(via.transport.as_bytes());
    out.push(b' ');
    out.extend_from_slice(via.host.as_bytes());
    if let Some(p) = via.port {
        out.extend_from_slice(format!(":{p}").as_bytes());
    }
    let mut has_rport = false;
    for p in via.params.iter() {
        if p.name.eq_ignore_ascii_case("received") {
            continue;
        }
        out.push(b';');
        out.extend_from_slice(p.name.as_bytes());
        if p.name.eq_ignore_ascii_case("rport") {
            has_rport = true;
            out.extend_from_slice(format!("={}", source.port()).as_bytes());
            continue;
        }
        if let Some(v) = p.value {
            out.push(b'=');
            if p.quoted {
                out.push(b'"');
                out.extend_from_slice(v.as_bytes());
                out.push(b'"');
            } else {
                out.extend_from_slice(v.as_bytes());
            }
        }
    }
    if force_rport && !has_rport {
        out.extend_from_slice(format!(";rport={}", source.port()).as_bytes());
    }
    let ip = match source.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        v4 => v4.to_string(),
    };
    out.extend_from_slice(b";received=");
    out.extend_from_slice(ip.as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl ResponseBuilder {
    /// Starts a response to `req`, received from `source`. `to_tag` is added to To when it has none and
    /// the response is not 100 (RFC 3261 §8.2.6.2).
    pub fn new(req: &Message<'_>, code: u16, reason: &str, source: SocketAddr, to_tag: &str) -> Self {
        // Room for a challenge or a few contacts without growing.
        let mut buf = Vec::with_capacity(1024);
        let _ = write!(buf, "SIP/2.0 {code} {reason}\r\n");
        let mut first = true;
        for line in req.header_all(HeaderName::Via) {
            for v in crate::scan::split_commas(line) {
                match (first, Via::parse(v)) {
                    (true, Some(via)) => write_via_received(&via, source, false, &mut buf),
                    _ => {
                        buf.extend_from_slice(b"Via: ");
                        write_unfolded(v, &mut buf);
                        buf.extend_from_slice(b"\r\n");
                    }
                }
                first = false;
            }
        }
        for name in [HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq] {
            if let Some(v) = req.header(name) {
                buf.extend_from_slice(name.as_str().as_bytes());
                buf.extend_from_slice(b": ");
                write_unfolded(v, &mut buf);
                if name == HeaderName::To && code > 100 && crate::NameAddr::parse(v).is_some_and(|n| n.tag().is_none())
                {
                    buf.extend_from_slice(b";tag=");
                    buf.extend_from_slice(to_tag.as_bytes());
                }
                buf.extend_from_slice(b"\r\n");
            }
        }
        Self { buf }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// A header whose value is formatted straight into the response (no intermediate string).
    pub fn header_fmt(mut self, name: &str, value: std::fmt::Arguments<'_>) -> Self {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        let _ = self.buf.write_fmt(value);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Appends Content-Length and ends the header section; the body is appended as given.
    pub fn finish(mut self, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
        if let Some(ct) = content_type {
            self = self.header("Content-Type", ct);
        }
        let _ = write!(self.buf, "Content-Length: {}\r\n\r\n", body.len());
        self.buf.extend_from_slice(body);
        self.buf
    }
}
