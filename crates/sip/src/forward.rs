//! Rewriting messages a proxy passes on (RFC 3261 §16.6, §16.7): a forwarded request gets a new
//! Request-URI, our Via on top, Record-Route, one hop less and our own Route entries removed; a
//! forwarded response loses our Via. Hop-by-hop requests (ACK for a non-2xx, CANCEL) are built from the
//! request they belong to (§9.1, §17.1.1.3).

use crate::headers::Via;
use crate::message::{HeaderName, Message};
use crate::response::write_via_received;
use crate::scan::{split_commas, write_unfolded};
use std::net::SocketAddr;

/// How to forward a request.
pub struct Forward<'x> {
    pub request_uri: &'x str,
    /// The value of the Via this proxy adds (`SIP/2.0/UDP host:port;branch=...`).
    pub via: &'x str,
    /// Where the request came from: recorded on the previous top Via as `received` and `rport`, so the
    /// way back does not depend on what the sender wrote.
    pub source: SocketAddr,
    /// Record-Route values to add, top first.
    pub record_route: &'x [String],
    /// How many Route entries at the top point to this proxy and are removed (loose routing).
    pub pop_routes: usize,
    /// Drop Proxy-Authorization: those credentials were for us, not for the next hop.
    pub strip_proxy_auth: bool,
    /// Added to the CSeq number: a dialog whose INVITE was re-sent with credentials runs one ahead
    /// towards that side.
    pub cseq_shift: i64,
}

/// `n METHOD` with `shift` added to n (kept as is when it does not parse).
fn shifted_cseq(value: &str, shift: i64) -> std::borrow::Cow<'_, str> {
    if shift == 0 {
        return value.into();
    }
    let mut it = value.split_whitespace();
    match (it.next().and_then(|n| n.parse::<i64>().ok()), it.next()) {
        (Some(n), Some(m)) => format!("{} {m}", (n + shift).clamp(0, i64::from(u32::MAX))).into(),
        _ => value.into(),
    }
}

fn line(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    write_unfolded(value, out);
    out.extend_from_slice(b"\r\n");
}

/// Builds the forwarded copy of `req`.
pub fn forward_request(req: &Message<'_>, f: &Forward<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(req.body.len() + 1024);
    let method = req.method().map_or("", |m| m.as_str());
    out.extend_from_slice(format!("{method} {} SIP/2.0\r\n", f.request_uri).as_bytes());
    line(&mut out, "Via", f.via);
    let mut first_via = true;
    let mut routes_left = f.pop_routes;
    let mut saw_mf = false;
    for (i, h) in req.headers.iter().enumerate() {
        match h.name {
            HeaderName::Via => {
                for v in split_commas(h.value) {
                    match (first_via, Via::parse(v)) {
                        (true, Some(via)) => write_via_received(&via, f.source, true, &mut out),
                        _ => line(&mut out, "Via", v),
                    }
                    first_via = false;
                }
                // Record-Route goes right after the Vias, above any the message already has.
                if !req.headers[i + 1..].iter().any(|h| h.name == HeaderName::Via) {
                    for rr in f.record_route {
                        line(&mut out, "Record-Route", rr);
                    }
                }
            }
            HeaderName::Route => {
                for v in split_commas(h.value) {
                    if routes_left > 0 {
                        routes_left -= 1;
                    } else {
                        line(&mut out, "Route", v);
                    }
                }
            }
            HeaderName::MaxForwards => {
                saw_mf = true;
                let n = h.value.trim().parse::<u32>().unwrap_or(70).saturating_sub(1).min(70);
                line(&mut out, "Max-Forwards", &n.to_string());
            }
            HeaderName::ProxyAuthorization if f.strip_proxy_auth => {}
            HeaderName::CSeq => line(&mut out, "CSeq", &shifted_cseq(h.value, f.cseq_shift)),
            _ => line(&mut out, h.name.as_str(), h.value),
        }
    }
    if !saw_mf {
        line(&mut out, "Max-Forwards", "70");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(req.body);
    out
}

/// Copies a response without its top Via (the one this proxy added), its CSeq number shifted by
/// `cseq_shift` (see [`Forward::cseq_shift`]).
pub fn strip_top_via(resp: &Message<'_>, raw_start_line: &[u8], cseq_shift: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw_start_line.len() + resp.body.len() + 512);
    out.extend_from_slice(raw_start_line);
    out.extend_from_slice(b"\r\n");
    let mut first = true;
    for h in &resp.headers {
        if h.name == HeaderName::Via {
            for v in split_commas(h.value) {
                if !first {
                    line(&mut out, "Via", v);
                }
                first = false;
            }
        } else if h.name == HeaderName::CSeq {
            line(&mut out, "CSeq", &shifted_cseq(h.value, cseq_shift));
        } else {
            line(&mut out, h.name.as_str(), h.value);
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(resp.body);
    out
}

/// The same request sent again as a new transaction with credentials (RFC 3261 §22.2): a new top Via,
/// the next CSeq number, and `auth` (header name, value) replacing any header of that name.
pub fn reissue(sent: &Message<'_>, via: &str, auth: (&str, &str)) -> Vec<u8> {
    let mut out = Vec::with_capacity(sent.body.len() + 1024);
    let method = sent.method().map_or("", |m| m.as_str());
    out.extend_from_slice(format!("{method} {} SIP/2.0\r\n", sent.request_uri().unwrap_or("")).as_bytes());
    line(&mut out, "Via", via);
    let mut first_via = true;
    for h in &sent.headers {
        match h.name {
            HeaderName::Via => {
                for v in split_commas(h.value) {
                    if !first_via {
                        line(&mut out, "Via", v);
                    }
                    first_via = false;
                }
            }
            HeaderName::CSeq => line(&mut out, "CSeq", &shifted_cseq(h.value, 1)),
            _ if h.name.as_str().eq_ignore_ascii_case(auth.0) => {}
            _ => line(&mut out, h.name.as_str(), h.value),
        }
    }
    line(&mut out, auth.0, auth.1);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(sent.body);
    out
}

/// Builds a CANCEL, or the ACK for a non-2xx final response, for a request this proxy sent: same
/// Request-URI, top Via, From, Call-ID, CSeq number and Route set. `to` replaces To (the ACK carries
/// the response's To tag).
pub fn hop_request(sent: &Message<'_>, method: &str, to: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(format!("{method} {} SIP/2.0\r\n", sent.request_uri().unwrap_or("")).as_bytes());
    if let Some(v) = sent.header_values(HeaderName::Via).next() {
        line(&mut out, "Via", v);
    }
    for h in &sent.headers {
        match h.name {
            HeaderName::From | HeaderName::CallId | HeaderName::Route => line(&mut out, h.name.as_str(), h.value),
            HeaderName::To => line(&mut out, "To", to.unwrap_or(h.value)),
            HeaderName::CSeq => {
                let n = h.value.split_whitespace().next().unwrap_or("1");
                line(&mut out, "CSeq", &format!("{n} {method}"));
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    out
}

/// The start line of a message as received (up to the first line break).
pub fn start_line(data: &[u8]) -> &[u8] {
    let end = memchr::memchr(b'\n', data).unwrap_or(data.len());
    let l = &data[..end];
    l.strip_suffix(b"\r").unwrap_or(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Limits;

    const INVITE: &[u8] = b"INVITE sip:1002@10.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bKabc;rport\r\n\
Max-Forwards: 70\r\n\
Route: <sip:10.0.0.1;lr>, <sip:other.example;lr>\r\n\
From: <sip:1001@x>;tag=1\r\nTo: <sip:1002@x>\r\nCall-ID: c1\r\nCSeq: 2 INVITE\r\n\
Proxy-Authorization: Digest username=\"1001\"\r\nContent-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn forwarded_request() {
        let m = Message::parse(INVITE, &Limits::default()).unwrap();
        let rr = vec!["<sip:10.0.0.1:5060;lr>".to_owned()];
        let f = Forward {
            request_uri: "sip:1002@10.0.0.9:5070",
            via: "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKpg1",
            source: "10.0.0.8:6000".parse().unwrap(),
            record_route: &rr,
            pop_routes: 1,
            strip_proxy_auth: true,
            cseq_shift: 0,
        };
        let out = forward_request(&m, &f);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("INVITE sip:1002@10.0.0.9:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKpg1\r\nVia: SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bKabc;rport=6000;received=10.0.0.8\r\nRecord-Route: <sip:10.0.0.1:5060;lr>\r\n"), "{text}");
        assert!(text.contains("Max-Forwards: 69\r\n"));
        assert!(text.contains("Route: <sip:other.example;lr>\r\n") && !text.contains("10.0.0.1;lr"));
        assert!(!text.contains("Proxy-Authorization"));
        assert!(text.ends_with("\r\n\r\nv=0\n"));
        let again = Message::parse(&out, &Limits::default()).unwrap();
        assert_eq!(again.header_values(HeaderName::Via).count(), 2);
        let resp = b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKpg1, SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bKabc\r\nCall-ID: c1\r\nContent-Length: 0\r\n\r\n";
        let r = Message::parse(resp, &Limits::default()).unwrap();
        let s = String::from_utf8(strip_top_via(&r, start_line(resp), 0)).unwrap();
        assert_eq!(
            s,
            "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bKabc\r\nCall-ID: c1\r\nContent-Length: 0\r\n\r\n"
        );
        let cancel = String::from_utf8(hop_request(&again, "CANCEL", None)).unwrap();
        assert!(cancel.starts_with(
            "CANCEL sip:1002@10.0.0.9:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKpg1\r\n"
        ));
        assert!(cancel.contains("CSeq: 2 CANCEL\r\n") && cancel.contains("Route: <sip:other.example;lr>"));
        let ack = String::from_utf8(hop_request(&again, "ACK", Some("<sip:1002@x>;tag=9"))).unwrap();
        assert!(ack.contains("To: <sip:1002@x>;tag=9\r\n") && ack.contains("CSeq: 2 ACK\r\n"));
        assert!(Message::parse(ack.as_bytes(), &Limits::default()).is_ok());
        let again2 =
            reissue(&again, "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKpg2", ("Proxy-Authorization", "Digest x"));
        let t = String::from_utf8(again2).unwrap();
        assert!(t.contains("CSeq: 3 INVITE\r\n") && t.contains("Proxy-Authorization: Digest x\r\n"), "{t}");
        assert!(t.contains("branch=z9hG4bKpg2") && !t.contains("branch=z9hG4bKpg1"), "{t}");
        assert_eq!(t.matches("Via: ").count(), 2);
        // A response to a request re-sent one CSeq ahead goes back with the caller's number.
        let ahead = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKpg2, SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bKabc\r\nCSeq: 3 INVITE\r\nContent-Length: 0\r\n\r\n";
        let r2 = Message::parse(ahead, &Limits::default()).unwrap();
        let back = String::from_utf8(strip_top_via(&r2, start_line(ahead), -1)).unwrap();
        assert!(back.contains("\r\nCSeq: 2 INVITE\r\n") && !back.contains("z9hG4bKpg2"), "{back}");
        assert_eq!(shifted_cseq("7 BYE", 1), "8 BYE");
        assert_eq!(shifted_cseq("8 INVITE", -1), "7 INVITE");
    }
}
