//! Server-side HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! Secrets never reach this module: the store keeps `HA1 = H(username:realm:password)` per algorithm and
//! verification needs nothing else. Nonces are stateless: a timestamp, a few flag bits and a unique value,
//! authenticated with HMAC-SHA-256 under a server key and bound to the client's address, so a server can
//! check any nonce it issued without remembering it. Replay (nonce-count) tracking is the caller's job
//! because it needs state.

use crate::scan::{Cursor, is_lws, unescape};
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};
use std::borrow::Cow;
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// Digest algorithms (RFC 8760 §2). `-sess` variants are not offered: they add nothing for SIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
    Sha512_256,
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

impl Algorithm {
    pub const ALL: [Self; 3] = [Self::Md5, Self::Sha256, Self::Sha512_256];

    /// The token used in challenges and credentials.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
            Self::Sha512_256 => "SHA-512-256",
        }
    }

    /// Parses an algorithm token, case-insensitively. A missing `algorithm` parameter means MD5
    /// (RFC 7616 §3.3); that default is the caller's to apply.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(s))
    }

    /// Hex digest of the parts joined by ':'.
    pub fn hash(&self, parts: &[&[u8]]) -> String {
        self.hash_hex(parts).as_str().to_owned()
    }

    /// [`Self::hash`] on the stack: verifying a response computes two of these per request.
    fn hash_hex(&self, parts: &[&[u8]]) -> HexDigest {
        fn run<D: Digest>(parts: &[&[u8]]) -> HexDigest {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            HexDigest::of(&d.finalize())
        }
        match self {
            Self::Md5 => run::<Md5>(parts),
            Self::Sha256 => run::<Sha256>(parts),
            Self::Sha512_256 => run::<Sha512_256>(parts),
        }
    }
}

/// A digest in lower-case hex, up to 256 bits, without a heap allocation.
struct HexDigest {
    buf: [u8; 64],
    len: usize,
}

impl HexDigest {
    fn of(bytes: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for (pair, &b) in buf.chunks_exact_mut(2).zip(bytes) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 15)];
        }
        Self { buf, len: 2 * bytes.len().min(32) }
    }

    fn as_str(&self) -> &str {
        // Only hex digits were written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// `HA1 = H(username ":" realm ":" password)`, the only form in which a secret is stored.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// Digest credentials from an Authorization or Proxy-Authorization header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials<'a> {
    pub username: Cow<'a, str>,
    pub realm: Cow<'a, str>,
    pub nonce: &'a str,
    pub uri: Cow<'a, str>,
    pub response: &'a str,
    pub algorithm: Option<&'a str>,
    pub cnonce: Option<&'a str>,
    pub opaque: Option<&'a str>,
    pub qop: Option<&'a str>,
    /// nonce-count, parsed from its 8 hex digits.
    pub nc: Option<u32>,
    /// The nc text as sent; the response hash covers it verbatim.
    pub nc_raw: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    /// Parses `Digest k=v, k="v", ...`. Returns `None` for any other scheme (the caller then challenges,
    /// RFC 4475 §3.3.7) or for malformed Digest credentials.
    pub fn parse(value: &'a str) -> Option<Self> {
        let (cr, have_user, have_nonce, have_resp) = Self::fields(value)?;
        (have_user && have_nonce && have_resp).then_some(cr)
    }

    /// Parses a challenge (WWW-Authenticate or Proxy-Authenticate), for answering it as a client: realm,
    /// nonce, algorithm, qop and opaque are filled in.
    pub fn parse_challenge(value: &'a str) -> Option<Self> {
        let (cr, _, have_nonce, _) = Self::fields(value)?;
        have_nonce.then_some(cr)
    }

    fn fields(value: &'a str) -> Option<(Self, bool, bool, bool)> {
        let mut c = Cursor::new(value);
        c.skip_lws();
        let scheme = c.token()?;
        if !scheme.eq_ignore_ascii_case("Digest") || !c.skip_lws() {
            return None;
        }
        let mut cr = Credentials::default();
        let (mut have_user, mut have_nonce, mut have_resp) = (false, false, false);
        loop {
            c.skip_lws();
            let name = c.token()?;
            c.skip_lws();
            c.eat(b'=').then_some(())?;
            c.skip_lws();
            let (v, quoted) = if c.peek() == Some(b'"') {
                (c.quoted()?, true)
            } else {
                (c.take_while(|b| b != b',' && !is_lws(b))?, false)
            };
            let un = || {
                if quoted { unescape(v) } else { Cow::Borrowed(v) }
            };
            let is = |k: &str| name.eq_ignore_ascii_case(k);
            match () {
                _ if is("username") => (cr.username, have_user) = (un(), true),
                _ if is("realm") => cr.realm = un(),
                _ if is("nonce") => (cr.nonce, have_nonce) = (v, true),
                _ if is("uri") => cr.uri = un(),
                _ if is("response") => (cr.response, have_resp) = (v, true),
                _ if is("algorithm") => cr.algorithm = Some(v),
                _ if is("cnonce") => cr.cnonce = Some(v),
                _ if is("opaque") => cr.opaque = Some(v),
                _ if is("qop") => cr.qop = Some(v),
                _ if is("nc") => {
                    if v.len() != 8 {
                        return None;
                    }
                    cr.nc = Some(u32::from_str_radix(v, 16).ok()?);
                    cr.nc_raw = Some(v);
                }
                _ => {}
            }
            c.skip_lws();
            if c.at_end() {
                break;
            }
            c.eat(b',').then_some(())?;
        }
        Some((cr, have_user, have_nonce, have_resp))
    }

    /// Answers this challenge as a client that holds `ha1_hex` for its realm (RFC 7616 §3.4): the value
    /// of the Authorization or Proxy-Authorization header. qop=auth is used when offered.
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &self,
        alg: Algorithm,
        username: &str,
        ha1_hex: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> String {
        let qop_auth = self.qop.is_some_and(|q| q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")));
        let nc = format!("{nc:08x}");
        let qop = qop_auth.then_some((nc.as_str(), cnonce));
        let response = digest_response(alg, ha1_hex, self.nonce, method, uri, qop);
        let response = response.as_str();
        let mut v = format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            self.realm,
            self.nonce,
            alg.name()
        );
        if qop_auth {
            v.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(o) = self.opaque {
            v.push_str(&format!(", opaque=\"{o}\""));
        }
        v
    }

    /// The algorithm the client used; absent means MD5 (RFC 7616 §3.4). `None` if unknown.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.algorithm.map_or(Some(Algorithm::Md5), Algorithm::from_name)
    }

    /// Checks `response` against the stored HA1 (RFC 7616 §3.4.1) in constant time. With `qop=auth`,
    /// `cnonce` and `nc` are required; `auth-int` is not offered, so it never verifies.
    pub fn verify(&self, alg: Algorithm, ha1_hex: &str, method: &str) -> bool {
        let expected = match self.qop {
            None => digest_response(alg, ha1_hex, self.nonce, method, &self.uri, None),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (self.nc_raw, self.cnonce) else {
                    return false;
                };
                digest_response(alg, ha1_hex, self.nonce, method, &self.uri, Some((nc, cnonce)))
            }
            Some(_) => return false,
        };
        let expected = expected.as_str();
        // Hex digits may come in either case; the comparison stays constant-time over the length.
        let got = self.response.as_bytes();
        if got.len() != expected.len() {
            return false;
        }
        let mut diff = 0u8;
        for (a, b) in expected.bytes().zip(got) {
            diff |= a ^ b.to_ascii_lowercase();
        }
        diff == 0
    }
}

/// The digest `response` (RFC 7616 §3.4.1): with `qop` = (nc, cnonce) for qop=auth, else RFC 2069 style.
fn digest_response(
    alg: Algorithm,
    ha1_hex: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<(&str, &str)>,
) -> HexDigest {
    let ha2 = alg.hash_hex(&[method.as_bytes(), uri.as_bytes()]);
    let ha2 = ha2.as_str();
    match qop {
        Some((nc, cnonce)) => alg.hash_hex(&[
            ha1_hex.as_bytes(),
            nonce.as_bytes(),
            nc.as_bytes(),
            cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ]),
        None => alg.hash_hex(&[ha1_hex.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// A challenge to render into WWW-Authenticate / Proxy-Authenticate.
#[derive(Debug, Clone, Copy)]
pub struct Challenge<'a> {
    pub realm: &'a str,
    pub nonce: &'a str,
    pub algorithm: Algorithm,
    pub stale: bool,
}

/// The WWW-Authenticate / Proxy-Authenticate value. `qop="auth"` is always offered: some clients
/// (sipvicious among them) cannot answer without it, and it enables the nonce-count replay protection.
impl Challenge<'_> {
    /// The header value (`Digest realm="...", nonce="...", algorithm=..., qop="auth"[, stale=true]`),
    /// straight into a response.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"Digest realm=\"");
        out.extend_from_slice(self.realm.as_bytes());
        out.extend_from_slice(b"\", nonce=\"");
        out.extend_from_slice(self.nonce.as_bytes());
        out.extend_from_slice(b"\", algorithm=");
        out.extend_from_slice(self.algorithm.name().as_bytes());
        out.extend_from_slice(b", qop=\"auth\"");
        if self.stale {
            out.extend_from_slice(b", stale=true");
        }
    }
}

/// What a nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Ours, for this client, and fresh. `id` is the `unique` it was issued with: one per nonce, a key for
    /// tracking its nonce-counts without keeping the nonce's text.
    Valid { issued: u64, flags: u8, id: u64 },
    /// Ours and for this client, but older than the TTL: answer with `stale=true` (RFC 7616 §3.3).
    Stale { flags: u8 },
    /// Forged, altered, for another address, or from before a key change.
    Invalid,
}

/// The HMAC key behind stateless nonces. Keep it across restarts so outstanding nonces stay valid.
#[derive(Clone)]
pub struct NonceKey {
    /// HMAC-SHA-256 with the key already absorbed: each nonce then costs the message blocks only.
    mac: Hmac<Sha256>,
}

const NONCE_MAC_LEN: usize = 16;
const NONCE_PAYLOAD_LEN: usize = 17;
const NONCE_LEN: usize = NONCE_PAYLOAD_LEN + NONCE_MAC_LEN;

impl NonceKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self { mac: <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length") }
    }

    fn mac(&self, payload: &[u8], client: IpAddr) -> [u8; NONCE_MAC_LEN] {
        let mut m = self.mac.clone();
        m.update(payload);
        match client {
            IpAddr::V4(a) => m.update(&a.octets()),
            IpAddr::V6(a) => m.update(&a.octets()),
        }
        let full = m.finalize().into_bytes();
        let mut out = [0u8; NONCE_MAC_LEN];
        out.copy_from_slice(&full[..NONCE_MAC_LEN]);
        out
    }

    /// Issues a nonce for `client` at `now` (Unix seconds). `unique` must differ between nonces issued in
    /// the same second to the same address (a counter does), so that each challenge starts its own
    /// nonce-count sequence.
    pub fn issue(&self, now: u64, flags: u8, unique: u64, client: IpAddr) -> String {
        let mut raw = [0u8; NONCE_LEN];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        raw[8] = flags;
        raw[9..NONCE_PAYLOAD_LEN].copy_from_slice(&unique.to_be_bytes());
        let mac = self.mac(&raw[..NONCE_PAYLOAD_LEN], client);
        raw[NONCE_PAYLOAD_LEN..].copy_from_slice(&mac);
        to_hex(&raw)
    }

    /// Checks a nonce presented by `client`. Constant-time on the MAC.
    pub fn check(&self, nonce: &str, now: u64, ttl: u64, client: IpAddr) -> NonceStatus {
        let mut raw = [0u8; NONCE_LEN];
        if nonce.len() != 2 * NONCE_LEN || !decode_hex(nonce.as_bytes(), &mut raw) {
            return NonceStatus::Invalid;
        }
        let (payload, mac) = raw.split_at(NONCE_PAYLOAD_LEN);
        if !bool::from(self.mac(payload, client).ct_eq(mac)) {
            return NonceStatus::Invalid;
        }
        let word = |r: std::ops::Range<usize>| u64::from_be_bytes(payload[r].try_into().expect("8 bytes"));
        let (issued, flags, id) = (word(0..8), payload[8], word(9..17));
        // A nonce from the future means the clock went back; treat it as stale rather than valid forever.
        if issued > now || now - issued > ttl {
            NonceStatus::Stale { flags }
        } else {
            NonceStatus::Valid { issued, flags, id }
        }
    }
}

/// Decodes hex digits (either case) into `out`, which must be exactly half as long.
fn decode_hex(hex: &[u8], out: &mut [u8]) -> bool {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    hex.len() == 2 * out.len()
        && hex.chunks_exact(2).zip(out.iter_mut()).all(|(pair, o)| match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => {
                *o = h << 4 | l;
                true
            }
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    fn challenge(c: &Challenge<'_>) -> String {
        let mut out = Vec::new();
        c.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_challenge_is_written_as_rfc_8760_and_7616_spell_it() {
        let c = Challenge { realm: "carrier", nonce: "abc123", algorithm: Algorithm::Sha256, stale: false };
        assert_eq!(challenge(&c), r#"Digest realm="carrier", nonce="abc123", algorithm=SHA-256, qop="auth""#);
        let c = Challenge { stale: true, algorithm: Algorithm::Md5, ..c };
        assert_eq!(challenge(&c), r#"Digest realm="carrier", nonce="abc123", algorithm=MD5, qop="auth", stale=true"#);
    }

    #[test]
    fn a_client_answer_verifies_on_the_server_side() {
        for alg in Algorithm::ALL {
            let ch = challenge(&Challenge { realm: "carrier", nonce: "abc123", algorithm: alg, stale: false });
            let parsed = Credentials::parse_challenge(&ch).unwrap();
            assert_eq!((parsed.realm.as_ref(), parsed.nonce), ("carrier", "abc123"));
            let h1 = ha1(alg, "pbx1", "carrier", "s3cret");
            let v = parsed.answer(alg, "pbx1", &h1, "REGISTER", "sip:carrier.example", "cn0", 1);
            let creds = Credentials::parse(&v).unwrap();
            assert!(creds.verify(alg, &h1, "REGISTER"), "{v}");
            assert!(!creds.verify(alg, &ha1(alg, "pbx1", "carrier", "wrong"), "REGISTER"));
        }
        // Without qop (RFC 2069 style) and with an opaque value echoed back.
        let parsed = Credentials::parse_challenge("Digest realm=\"r\", nonce=\"n\", opaque=\"op\"").unwrap();
        let h1 = ha1(Algorithm::Md5, "u", "r", "p");
        let v = parsed.answer(Algorithm::Md5, "u", &h1, "INVITE", "sip:x", "c", 1);
        assert!(v.contains("opaque=\"op\"") && !v.contains("qop"), "{v}");
        assert!(Credentials::parse(&v).unwrap().verify(Algorithm::Md5, &h1, "INVITE"));
    }

    use super::*;

    /// RFC 7616 §3.9.1 example (HTTP, but the computation is the same): Mufasa / Circle of Life.
    #[test]
    fn rfc7616_vectors() {
        let hdr = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="8ca523f5e9506fed4657c9700eebdbec", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let c = Credentials::parse(hdr).unwrap();
        let h1 = ha1(Algorithm::Md5, "Mufasa", "http-auth@example.org", "Circle of Life");
        assert!(c.verify(Algorithm::Md5, &h1, "GET"));
        assert!(!c.verify(Algorithm::Md5, &h1, "POST"));
        let hdr256 = hdr.replace("algorithm=MD5", "algorithm=SHA-256").replace(
            "8ca523f5e9506fed4657c9700eebdbec",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        );
        let c = Credentials::parse(&hdr256).unwrap();
        assert_eq!(c.algorithm(), Some(Algorithm::Sha256));
        let h1 = ha1(Algorithm::Sha256, "Mufasa", "http-auth@example.org", "Circle of Life");
        assert!(c.verify(Algorithm::Sha256, &h1, "GET"));
    }

    #[test]
    fn credentials_parsing() {
        assert!(Credentials::parse("NoOneKnowsThisScheme opaque-data=here").is_none());
        assert!(Credentials::parse(r#"Digest username="a", nonce="n""#).is_none());
        assert!(Credentials::parse(r#"Digest username="a", nonce="n", response="r", nc=1"#).is_none());
        let c = Credentials::parse(r#"Digest username="a\"b",nonce="n",response="r",nc=0000001f"#).unwrap();
        assert_eq!((c.username.as_ref(), c.nc), ("a\"b", Some(31)));
    }

    #[test]
    fn nonces() {
        let k = NonceKey::new([7; 32]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let n = k.issue(1000, 1, 42, a);
        assert_eq!(k.check(&n, 1000, 300, a), NonceStatus::Valid { issued: 1000, flags: 1, id: 42 });
        assert_eq!(k.check(&n, 1300, 300, a), NonceStatus::Valid { issued: 1000, flags: 1, id: 42 });
        assert_eq!(k.check(&n, 1301, 300, a), NonceStatus::Stale { flags: 1 });
        assert_eq!(k.check(&n, 999, 300, a), NonceStatus::Stale { flags: 1 });
        assert_eq!(k.check(&n, 1000, 300, b), NonceStatus::Invalid);
        assert_ne!(n, k.issue(1000, 1, 43, a));
        let mut forged = n.clone().into_bytes();
        forged[17] = if forged[17] == b'0' { b'1' } else { b'0' };
        assert_eq!(k.check(std::str::from_utf8(&forged).unwrap(), 1000, 300, a), NonceStatus::Invalid);
        assert_eq!(k.check(&n.to_uppercase(), 1000, 300, a), NonceStatus::Valid { issued: 1000, flags: 1, id: 42 });
        assert_eq!(k.check(&format!("+{}", &n[1..]), 1000, 300, a), NonceStatus::Invalid);
        // 66 bytes that are not 66 hex digits: multi-byte characters, signs, spaces.
        for bad in ["é".repeat(33), format!("-{}", &n[1..]), format!(" {}", &n[1..]), "g".repeat(66)] {
            assert_eq!(k.check(&bad, 1000, 300, a), NonceStatus::Invalid, "{bad:?}");
        }
        assert_eq!(NonceKey::new([8; 32]).check(&n, 1000, 300, a), NonceStatus::Invalid);
        assert_eq!(k.check("zz", 1000, 300, a), NonceStatus::Invalid);
    }
}
