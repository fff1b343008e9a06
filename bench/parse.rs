//! Parser and digest benchmarks (criterion): messages/s on a REGISTER with Authorization and an INVITE
//! with SDP, as framed + lazily parsed and as the fields the registrar reads. Results: docs/benchmarks.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pbxguard_sip::{Algorithm, Credentials, HeaderName, Limits, Message, NameAddr, check_request, ha1};
use std::hint::black_box;

const REGISTER: &[u8] = b"REGISTER sip:pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5062;rport;branch=z9hG4bK-524287-1---e2a5f7d4b1b0e6c3\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:1001@192.0.2.10:5062;rinstance=6d3f1a2b9c8e7f60;transport=UDP>\r\n\
To: <sip:1001@pbx.example.com>\r\n\
From: <sip:1001@pbx.example.com>;tag=8a6c2e1f\r\n\
Call-ID: ZGQ5NmE4YzQ1ZTdmNjM0ZDg2NGI1MWUxYmQwZTk3ZTI.\r\n\
CSeq: 2 REGISTER\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Supported: replaces, norefersub, extended-refer, timer, outbound, path, X-cisco-serviceuri\r\n\
User-Agent: Z 5.6.1 v2.10.19.9\r\n\
Authorization: Digest username=\"1001\",realm=\"pbx.example.com\",nonce=\"0000000069a1c2d300f0410f0ddd4c336fdebf13ddf02d3722e4ae505b906b63e1\",uri=\"sip:pbx.example.com\",response=\"5b8c3d1b0f6a2e9d4c7b1a0e3f2d5c6b\",cnonce=\"2a7d9e1f\",nc=00000001,qop=auth,algorithm=MD5\r\n\
Allow-Events: presence, kpml, talk\r\n\
Content-Length: 0\r\n\r\n";

const INVITE: &[u8] = b"INVITE sip:+14155550123@pbx.example.com;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5062;rport;branch=z9hG4bK-524287-1---77f1c0a2d3b4e5f6\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:1001@192.0.2.10:5062;transport=UDP>\r\n\
To: <sip:+14155550123@pbx.example.com;user=phone>\r\n\
From: \"Front Desk\" <sip:1001@pbx.example.com>;tag=5f3e9a1c\r\n\
Call-ID: NjA5ZjE3YzE4YjQ1NGE0NmE0ZjU2YjM2M2M1ZGY0YzA.\r\n\
CSeq: 2 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Content-Type: application/sdp\r\n\
Supported: replaces, norefersub, extended-refer, timer, outbound, path\r\n\
User-Agent: Z 5.6.1 v2.10.19.9\r\n\
Proxy-Authorization: Digest username=\"1001\",realm=\"pbx.example.com\",nonce=\"0000000069a1c2d300f0410f0ddd4c336fdebf13ddf02d3722e4ae505b906b63e1\",uri=\"sip:+14155550123@pbx.example.com;user=phone\",response=\"0d3f1c2b4a5968778695a4b3c2d1e0f00d3f1c2b4a5968778695a4b3c2d1e0f0\",cnonce=\"91ab2c3d\",nc=00000001,qop=auth,algorithm=SHA-256\r\n\
Allow-Events: presence, kpml, talk\r\n\
Content-Length: 335\r\n\r\n\
v=0\r\n\
o=Z 1700000000000 1 IN IP4 192.0.2.10\r\n\
s=Z\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 8000 RTP/AVP 106 9 98 101 0 8 3\r\n\
a=rtpmap:106 opus/48000/2\r\n\
a=fmtp:106 sprop-maxcapturerate=16000; minptime=20; useinbandfec=1\r\n\
a=rtpmap:98 telephone-event/48000\r\n\
a=fmtp:98 0-16\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=ptime:20\r\n";

/// What the registrar reads from every request: method, Call-ID, From user, User-Agent, and the
/// credentials' username and response.
fn extract(buf: &[u8], auth: HeaderName<'static>) -> usize {
    let m = Message::parse(buf, &Limits::default()).unwrap();
    let from = NameAddr::parse(m.header(HeaderName::From).unwrap()).unwrap();
    let c = Credentials::parse(m.header(auth).unwrap()).unwrap();
    m.method().unwrap().as_str().len()
        + m.call_id().unwrap().len()
        + from.uri.user.unwrap().len()
        + m.user_agent().unwrap().len()
        + c.username.len()
        + c.response.len()
}

fn parsing(c: &mut Criterion) {
    assert_eq!(Message::parse(INVITE, &Limits::default()).unwrap().body.len(), 335);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("register_frame", |b| {
        b.iter(|| Message::parse(black_box(REGISTER), &Limits::default()).unwrap().headers.len())
    });
    g.bench_function("register_extract", |b| b.iter(|| extract(black_box(REGISTER), HeaderName::Authorization)));
    g.bench_function("register_sanity", |b| {
        b.iter(|| check_request(&Message::parse(black_box(REGISTER), &Limits::default()).unwrap()).unwrap().cseq.seq)
    });
    g.bench_function("invite_sdp_frame", |b| {
        b.iter(|| Message::parse(black_box(INVITE), &Limits::default()).unwrap().headers.len())
    });
    g.bench_function("invite_sdp_extract", |b| b.iter(|| extract(black_box(INVITE), HeaderName::ProxyAuthorization)));
    g.bench_function("invite_sdp_sanity", |b| {
        b.iter(|| check_request(&Message::parse(black_box(INVITE), &Limits::default()).unwrap()).unwrap().cseq.seq)
    });
    g.finish();
    let m = Message::parse(REGISTER, &Limits::default()).unwrap();
    let cr = Credentials::parse(m.header(HeaderName::Authorization).unwrap()).unwrap();
    let h = ha1(Algorithm::Md5, "1001", "pbx.example.com", "secret");
    let h256 = ha1(Algorithm::Sha256, "1001", "pbx.example.com", "secret");
    c.bench_function("digest_verify_md5", |b| b.iter(|| cr.verify(Algorithm::Md5, black_box(&h), "REGISTER")));
    c.bench_function("digest_verify_sha256", |b| b.iter(|| cr.verify(Algorithm::Sha256, black_box(&h256), "REGISTER")));
}

criterion_group!(benches, parsing);
criterion_main!(benches);
