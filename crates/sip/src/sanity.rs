//! Request sanity checks (RFC 3261 §8.2, §16.3; RFC 4475). They turn a parsed request into the
//! essentials every service needs, or into a typed reason with the status code to answer.

use crate::headers::{CSeq, NameAddr, Via, parse_number};
use crate::message::{HeaderName, Message, Method, StartLine};
use crate::scan::split_commas;
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

/// A header that may appear at most once, as found in one pass over the headers.
#[derive(Clone, Copy)]
enum Slot<'a> {
    Absent,
    One(&'a str),
    Several,
}

impl<'a> Slot<'a> {
    fn see(&mut self, value: &'a str) {
        *self = match self {
            Self::Absent => Self::One(value),
            _ => Self::Several,
        };
    }

    fn single(self, label: &'static str) -> Result<&'a str, SanityError> {
        match self {
            Self::Absent => Err(SanityError::MissingHeader(label)),
            Self::One(v) => Ok(v),
            Self::Several => Err(SanityError::DuplicateHeader(label)),
        }
    }

    fn optional(self, label: &'static str) -> Result<Option<&'a str>, SanityError> {
        match self {
            Self::Absent => Ok(None),
            other => other.single(label).map(Some),
        }
    }
}

/// What one pass over the headers finds for the checks: the single-valued headers, and the Vias
/// (counted up to one past [`MAX_VIAS`], the top one parsed, whether any other is malformed).
struct Found<'a> {
    from: Slot<'a>,
    to: Slot<'a>,
    call_id: Slot<'a>,
    cseq: Slot<'a>,
    max_forwards: Slot<'a>,
    expires: Slot<'a>,
    content_type: Slot<'a>,
    date: Slot<'a>,
    vias: usize,
    /// The top Via: `None` when there is none, `Some(None)` when it is malformed.
    top_via: Option<Option<Via<'a>>>,
    other_via_bad: bool,
}

impl<'a> Found<'a> {
    fn scan(msg: &Message<'a>) -> Self {
        let mut f = Found {
            from: Slot::Absent,
            to: Slot::Absent,
            call_id: Slot::Absent,
            cseq: Slot::Absent,
            max_forwards: Slot::Absent,
            expires: Slot::Absent,
            content_type: Slot::Absent,
            date: Slot::Absent,
            vias: 0,
            top_via: None,
            other_via_bad: false,
        };
        for h in &msg.headers {
            let slot = match h.name {
                HeaderName::Via => {
                    // Past the limit the answer is TooManyVias whatever the rest says: stop parsing.
                    if f.vias <= MAX_VIAS {
                        for v in split_commas(h.value) {
                            f.vias += 1;
                            if f.vias > MAX_VIAS {
                                break;
                            }
                            match f.top_via {
                                None => f.top_via = Some(Via::parse(v)),
                                Some(_) if !f.other_via_bad => f.other_via_bad = Via::parse(v).is_none(),
                                Some(_) => {}
                            }
                        }
                    }
                    continue;
                }
                HeaderName::From => &mut f.from,
                HeaderName::To => &mut f.to,
                HeaderName::CallId => &mut f.call_id,
                HeaderName::CSeq => &mut f.cseq,
                HeaderName::MaxForwards => &mut f.max_forwards,
                HeaderName::Expires => &mut f.expires,
                HeaderName::ContentType => &mut f.content_type,
                HeaderName::Date => &mut f.date,
                _ => continue,
            };
            slot.see(h.value);
        }
        f
    }
}

/// Validates a request. Checks run in the order that gives each RFC 4475 case its expected answer:
/// version, header syntax, Request-URI form, then scheme. The headers are read in one pass first; the
/// checks then look at what it found, in that order.
pub fn check_request<'a>(msg: &Message<'a>) -> Result<Request<'a>, SanityError> {
    let StartLine::Request { method, uri, version } = msg.start else {
        return Err(SanityError::NotARequest);
    };
    let found = Found::scan(msg);
    if found.vias > MAX_VIAS {
        return Err(SanityError::TooManyVias);
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(SanityError::UnsupportedVersion);
    }
    let via = found.top_via.ok_or(SanityError::MissingHeader("Via"))?.ok_or(SanityError::BadHeader("Via"))?;
    if found.other_via_bad {
        return Err(SanityError::BadHeader("Via"));
    }
    let from = NameAddr::parse(found.from.single("From")?).ok_or(SanityError::BadHeader("From"))?;
    let to = NameAddr::parse(found.to.single("To")?).ok_or(SanityError::BadHeader("To"))?;
    let call_id = found.call_id.single("Call-ID")?;
    if call_id.is_empty() || call_id.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(SanityError::BadHeader("Call-ID"));
    }
    let cseq = CSeq::parse(found.cseq.single("CSeq")?).ok_or(SanityError::BadHeader("CSeq"))?;
    if cseq.method != method {
        return Err(SanityError::CSeqMismatch);
    }
    let max_forwards = match found.max_forwards.optional("Max-Forwards")? {
        Some(v) => Some(parse_number(v, 255).ok_or(SanityError::BadHeader("Max-Forwards"))? as u8),
        None => None,
    };
    let expires = match found.expires.optional("Expires")? {
        Some(v) => {
            let t = crate::scan::trim_lws(v);
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SanityError::BadHeader("Expires"));
            }
            Some(t.parse::<u64>().map_or(u32::MAX, |n| n.min(u32::MAX as u64) as u32))
        }
        None => None,
    };
    found.content_type.optional("Content-Type")?;
    if let Some(date) = found.date.optional("Date")? {
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
