//! Parse → print → parse round trip on generated messages (proptest), and a bounded mutation smoke
//! test: no input may panic the parser, and whatever parses prints to something that parses the same.

use pbxguard_sip::{Limits, Message, check_request};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,12}"
}

fn header_value() -> impl Strategy<Value = String> {
    // Printable text, sometimes folded over two lines.
    ("[ -~&&[^\r\n]]{1,40}", any::<bool>(), "[!-~]{1,10}").prop_map(|(a, fold, b)| {
        let a = a.trim().to_owned();
        let a = if a.is_empty() { "x".into() } else { a };
        if fold { format!("{a}\r\n {b}") } else { a }
    })
}

fn message() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["REGISTER", "INVITE", "OPTIONS", "BYE", "FOO"]),
        token(),
        prop::collection::vec((token(), header_value()), 0..8),
        "[ -~]{0,64}",
    )
        .prop_map(|(method, user, extra, body)| {
            let mut m = format!(
                "{method} sip:{user}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{user}\r\n\
                 From: <sip:a@example.com>;tag=1\r\nTo: <sip:{user}@example.com>\r\nCall-ID: {user}\r\nCSeq: 1 {method}\r\n"
            );
            for (name, value) in extra {
                m.push_str(&format!("X-{name}: {value}\r\n"));
            }
            m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
            m
        })
}

proptest! {
    #[test]
    fn parse_print_parse(text in message()) {
        let m = Message::parse(text.as_bytes(), &Limits::default()).expect("generated messages are valid");
        prop_assert!(check_request(&m).is_ok());
        let mut out = Vec::new();
        m.write_to(&mut out);
        let again = Message::parse(&out, &Limits::default()).expect("printed form parses");
        prop_assert_eq!(again.start, m.start);
        prop_assert_eq!(again.body, m.body);
        prop_assert_eq!(again.headers.len(), m.headers.len());
        for (a, b) in again.headers.iter().zip(&m.headers) {
            prop_assert_eq!(a.name, b.name);
            // Folds are printed as one space.
            let unfold = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
            prop_assert_eq!(unfold(a.value), unfold(b.value));
        }
    }

    #[test]
    fn mutations_never_panic(text in message(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        let mut bytes = text.into_bytes();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        for cut in [bytes.len(), bytes.len() / 2] {
            let part = &bytes[..cut];
            let _ = pbxguard_sip::stream_frame_len(part, &Limits::default());
            if let Ok(m) = Message::parse(part, &Limits::default()) {
                let _ = check_request(&m);
                let mut out = Vec::new();
                m.write_to(&mut out);
                prop_assert!(Message::parse(&out, &Limits::default()).is_ok());
            }
        }
    }
}
