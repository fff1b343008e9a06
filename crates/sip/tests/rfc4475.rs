//! RFC 4475 torture messages: every valid one parses and passes the sanity checks, every invalid one is
//! refused with the typed error whose status code INDEX.md expects. What the daemon answers on the wire
//! (405, 420, 483, 401...) is asserted by the daemon's own corpus test.

use pbxguard_sip::{Limits, Message, ParseError, check_request};

#[derive(Debug, PartialEq)]
enum Outcome {
    /// A request that passes sanity (services decide the rest).
    Valid,
    /// A response that parses.
    Response,
    Parse(ParseError),
    Sanity(u16),
}

fn classify(buf: &[u8]) -> Outcome {
    let msg = match Message::parse(buf, &Limits::default()) {
        Ok(m) => m,
        Err(e) => return Outcome::Parse(e),
    };
    if !msg.is_request() {
        return Outcome::Response;
    }
    match check_request(&msg) {
        Ok(_) => Outcome::Valid,
        Err(e) => Outcome::Sanity(e.status()),
    }
}

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/rfc4475");

#[test]
fn corpus_outcomes() {
    use Outcome::*;
    let table: &[(&str, Outcome)] = &[
        ("wsinv", Valid),
        ("intmeth", Valid),
        ("esc01", Valid),
        ("escnull", Valid),
        ("esc02", Valid),
        ("lwsdisp", Valid),
        ("longreq", Valid),
        ("dblreq", Valid),
        ("semiuri", Valid),
        ("transports", Valid),
        ("mpart01", Valid),
        ("unreason", Response),
        ("noreason", Response),
        ("badinv01", Sanity(400)),
        ("clerr", Parse(ParseError::ContentLengthExceedsMessage)),
        ("ncl", Parse(ParseError::BadContentLength)),
        ("scalar02", Sanity(400)),
        ("scalarlg", Response),
        ("quotbal", Sanity(400)),
        ("ltgtruri", Sanity(400)),
        ("lwsruri", Parse(ParseError::BadStartLine)),
        ("lwsstart", Parse(ParseError::BadStartLine)),
        ("trws", Parse(ParseError::BadStartLine)),
        ("escruri", Sanity(400)),
        ("baddate", Sanity(400)),
        ("regbadct", Sanity(400)),
        ("badaspec", Sanity(400)),
        ("baddn", Sanity(400)),
        ("badvers", Sanity(505)),
        ("mismatch01", Sanity(400)),
        ("mismatch02", Sanity(400)),
        ("bigcode", Parse(ParseError::BadStatusCode)),
        ("badbranch", Valid),
        ("insuf", Sanity(400)),
        ("unkscm", Sanity(416)),
        ("novelsc", Sanity(416)),
        ("unksm2", Valid),
        ("bext01", Valid),
        ("invut", Valid),
        ("regaut01", Valid),
        ("multi01", Sanity(400)),
        ("mcl01", Parse(ParseError::DuplicateContentLength)),
        ("bcast", Response),
        ("zeromf", Valid),
        ("cparam01", Valid),
        ("cparam02", Valid),
        ("regescrt", Valid),
        ("sdp01", Valid),
        ("inv2543", Valid),
    ];
    let files = std::fs::read_dir(DIR)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "dat"))
        .count();
    assert_eq!(files, table.len(), "every corpus file has an expectation");
    let mut wrong = Vec::new();
    for (name, want) in table {
        let buf = std::fs::read(format!("{DIR}/{name}.dat")).unwrap();
        let got = classify(&buf);
        if &got != want {
            wrong.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn dblreq_keeps_only_the_first_message() {
    let buf = std::fs::read(format!("{DIR}/dblreq.dat")).unwrap();
    let msg = Message::parse(&buf, &Limits::default()).unwrap();
    assert_eq!(msg.method().unwrap().as_str(), "REGISTER");
    assert!(msg.body.is_empty());
}

#[test]
fn every_message_frames_on_a_stream_or_fails_typed() {
    for e in std::fs::read_dir(DIR).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "dat") {
            let buf = std::fs::read(&p).unwrap();
            for cut in 0..buf.len() {
                let _ = pbxguard_sip::stream_frame_len(&buf[..cut], &Limits::default());
                let _ = Message::parse(&buf[..cut], &Limits::default());
            }
        }
    }
}
