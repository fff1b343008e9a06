//! Request sanity checks (RFC 3261 §8.2, §16.3; RFC 4475). They turn a parsed request into the
//! essentials every service needs, or into a typed reason with the status code to answer.

use crate::headers::{CSeq, NameAddr, Via, parse_number};
use crate::message::{HeaderName, Message, Method, StartLine};
use crate::uri::{Scheme, Uri};
use thiserror::Error;

/// Why a request is refused before any service sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SanityError {
    #[error("not a request")]
    NotARequest,
    #[error("SIP version not supported")]
    UnsupportedVersion,
    #[error("malformed Request-URI")]
    BadRequestUri,
    #[error("Request-URI scheme not supported")]
    UnsupportedScheme,
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("several {0} headers")]
    DuplicateHeader(&'static str),
    #[error("malformed {0} header")]
    BadHeader(&'static str),
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    /// More Via entries than any real path has (Max-Forwards starts at 70): not worth an answer, which
    /// would have to repeat them all.
    #[error("more than {MAX_VIAS} Via entries")]
    TooManyVias,
}

/// The most Via entries a request may carry.
pub const MAX_VIAS: usize = 70;

/// Every answer repeats the request's Vias, so a request over [`MAX_VIAS`] gets no answer at all: not
/// even a 400 or 505, which would be too long for the receiver to parse.
pub fn too_many_vias(msg: &Message<'_>) -> bool {
    msg.header_values(HeaderName::Via).nth(MAX_VIAS).is_some()
}

impl SanityError {
    /// The status code a server answers (RFC 3261 §8.2.2.1, §21.4.16, §21.5.6).
    pub fn status(&self) -> u16 {
        match self {
            Self::UnsupportedVersion => 505,
            Self::UnsupportedScheme => 416,
            _ => 400,
        }
    }
}

/// The parts of a request every service needs, validated.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: Method<'a>,
    pub uri: Uri<'a>,
    pub via: Via<'a>,
    pub from: NameAddr<'a>,
    pub to: NameAddr<'a>,
    pub call_id: &'a str,
    pub cseq: CSeq<'a>,
    pub max_forwards: Option<u8>,
    /// Expires header in seconds, saturated at 2**32-1 (RFC 3261 §20.19).
    pub expires: Option<u32>,
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

/// Validates a request. Checks run in the order that gives each RFC 4475 case its expected answer:
/// version, header syntax, Request-URI form, then scheme.
pub fn check_request<'a>(msg: &Message<'a>) -> Result<Request<'a>, SanityError> {
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
            let t = crate::scan::trim_lws(v);
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SanityError::BadHeader("Expires"));
            }
            Some(t.parse::<u64>().map_or(u32::MAX, |n| n.min(u32::MAX as u64) as u32))
        }
        None => None,
    };
    optional(msg, HeaderName::ContentType, "Content-Type")?;
    if let Some(date) = optional(msg, HeaderName::Date, "Date")? {
        // rfc1123-date is always in GMT (RFC 3261 §20.17).
        if !crate::scan::trim_lws(date).ends_with(" GMT") {
            return Err(SanityError::BadHeader("Date"));
        }
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
        // Headers are not allowed in a Request-URI (RFC 3261 §19.1.5, RFC 4475 §3.1.2.11).
        return Err(SanityError::BadRequestUri);
    }
    if !matches!(uri.scheme, Scheme::Sip | Scheme::Sips | Scheme::Tel) {
        return Err(SanityError::UnsupportedScheme);
    }
    Ok(Request { method, uri, via, from, to, call_id, cseq, max_forwards, expires })
}
