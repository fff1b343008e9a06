//! Parser, typed headers, sanity checks, credentials and stream framing on arbitrary bytes: no panic,
//! and every message that parses prints to something that parses again to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxguard_sip::{CSeq, Credentials, HeaderName, Limits, Message, NameAddr, Uri, Via, check_request, stream_frame_len};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let _ = stream_frame_len(data, &limits);
    let _ = Message::parse_headers_only(data, &limits);
    let Ok(msg) = Message::parse(data, &limits) else { return };
    let _ = check_request(&msg);
    for h in &msg.headers {
        match h.name {
            HeaderName::Via => msg.header_values(HeaderName::Via).for_each(|v| drop(Via::parse(v).map(|v| (v.branch(), v.rport())))),
            HeaderName::From | HeaderName::To | HeaderName::Contact => {
                if let Some(n) = NameAddr::parse(h.value) {
                    let _ = (n.tag(), n.display_name(), n.uri.param("transport"));
                }
            }
            HeaderName::CSeq => drop(CSeq::parse(h.value)),
            HeaderName::Authorization | HeaderName::ProxyAuthorization => {
                if let Some(c) = Credentials::parse(h.value) {
                    let _ = c.algorithm().map(|a| c.verify(a, "00", "REGISTER"));
                }
            }
            _ => {}
        }
    }
    if let Some(u) = msg.request_uri() {
        let _ = Uri::parse(u);
    }
    let mut out = Vec::new();
    msg.write_to(&mut out);
    let again = Message::parse(&out, &limits).expect("printed message parses");
    assert_eq!(again.start, msg.start);
    assert_eq!(again.headers.len(), msg.headers.len());
    assert_eq!(again.body, msg.body);
});
