//! The cost floor of the registration benchmark: a UDP responder that parses each REGISTER with
//! pbxguard's parser and answers it as a registrar would (401 with a fixed challenge, then 200 echoing
//! the Contact) but checks nothing, stores nothing and keeps no state. What it spends per 1,000
//! registrations is what the kernel's loopback path and the minimal parse-and-reply cost; no registrar
//! on this machine can go below it. `bench/regbench.py --servers floor` runs it beside the real servers.
//!
//! Usage: cargo run --release --example udp_floor -- 127.0.0.1:15080

use pbxguard_sip::{HeaderName, Limits, Message, ResponseBuilder};
use std::net::UdpSocket;

const CHALLENGE: &str = "Digest realm=\"bench\", nonce=\"floor0123456789abcdef\", algorithm=MD5, qop=\"auth\"";

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:15080".into());
    let sock = UdpSocket::bind(&addr)?;
    let limits = Limits::default();
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, src) = sock.recv_from(&mut buf)?;
        let Ok(msg) = Message::parse(&buf[..n], &limits) else { continue };
        let reply = if msg.header(HeaderName::Authorization).is_some() {
            let contact = msg.header(HeaderName::Contact).unwrap_or("*");
            ResponseBuilder::new(&msg, 200, "OK", src, "floor")
                .header("Contact", &format!("{contact};expires=3600"))
                .finish(None, b"")
        } else {
            ResponseBuilder::new(&msg, 401, "Unauthorized", src, "floor")
                .header("WWW-Authenticate", CHALLENGE)
                .finish(None, b"")
        };
        sock.send_to(&reply, src)?;
    }
}
