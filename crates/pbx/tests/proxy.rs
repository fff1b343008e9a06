//! The call-routing proxy through the sans-IO service, on a virtual clock: forking, CANCEL, the UDP
//! timers, hop-by-hop ACK, in-dialog relaying restricted to the dialog's parties, trunks and DIDs,
//! trunk challenges, and the deadlines the daemon sleeps on.

mod rig;
use rig::*;

/// When the contacts' bindings expire, in ms: the one wake-up of a service with nothing else to do.
const BINDINGS_EXPIRE: u64 = (T0 / 1000 + 3600) * 1000;

#[test]
fn forks_to_every_contact_and_the_first_2xx_wins() {
    let mut r = Rig::new(&[PHONE_A, PHONE_B]);
    assert_eq!(code(&r.call("1002", "fork1")), 100);
    let out = r.out();
    assert_eq!(out.len(), 2);
    let to_a = out.iter().find(|t| t.target.addr == addr(PHONE_A)).unwrap().clone();
    let to_b = out.iter().find(|t| t.target.addr == addr(PHONE_B)).unwrap().clone();
    let a = text(&to_a);
    assert!(
        a.starts_with(&format!("INVITE sip:1002-0@{PHONE_A} SIP/2.0\r\nVia: SIP/2.0/UDP {US};branch=z9hG4bKpg")),
        "{a}"
    );
    assert!(a.contains(&format!("Record-Route: <sip:{US};lr>\r\n")), "{a}");
    assert!(a.contains("Max-Forwards: 69\r\n") && !a.contains("Proxy-Authorization"), "{a}");
    assert_ne!(top_branch(&a), top_branch(&text(&to_b)));
    // A rings: the 180 goes to the caller without our Via.
    assert_eq!(r.send(PHONE_A, &answer(&to_a, 180, "a")), None);
    let up = r.out();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].target.addr, addr(CALLER));
    assert!(first_line(&up[0]).starts_with("SIP/2.0 180"));
    assert!(!text(&up[0]).contains("z9hG4bKpg"), "{}", text(&up[0]));
    // B answers: the 200 goes up, A gets a CANCEL on its branch.
    r.send(PHONE_B, &answer(&to_b, 200, "b"));
    let out = r.out();
    let ok = out.iter().find(|t| t.target.addr == addr(CALLER)).expect("200 upstream");
    assert!(first_line(ok).starts_with("SIP/2.0 200"));
    let cancel = out.iter().find(|t| t.target.addr == addr(PHONE_A)).expect("CANCEL to A");
    assert!(first_line(cancel).starts_with("CANCEL sip:1002-0@"), "{}", text(cancel));
    assert_eq!(top_branch(&text(cancel)), top_branch(&a));
    let ev = r.events();
    assert!(
        matches!(&ev[0], Event::CallStarted { caller, callee, category: "internal", .. } if caller == "1001" && callee == "1002"),
        "{ev:?}"
    );
    assert!(matches!(&ev[1], Event::CallAnswered { call_id } if call_id == "fork1"), "{ev:?}");
    // A's 487 after the CANCEL is acknowledged hop by hop and goes no further.
    r.send(PHONE_A, &answer(&to_a, 487, "a"));
    let out = r.out();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(first_line(&out[0]).starts_with("ACK sip:1002-0@") && out[0].target.addr == addr(PHONE_A));
}

#[test]
fn udp_retransmissions_then_408_then_timer_g_until_ack() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "quiet");
    let sent = r.out();
    assert_eq!(sent.len(), 1);
    // Timer A: 0.5 s, then 1 s, 2 s ... the same bytes again.
    assert!(r.tick(499).is_empty());
    let re = r.tick(1);
    assert_eq!(re.len(), 1);
    assert_eq!(re[0].data, sent[0].data);
    assert!(r.tick(999).is_empty());
    assert_eq!(r.tick(1).len(), 1);
    // Timer B: nothing at all for 32 s ends the branch; the caller gets 408.
    let mut up = Vec::new();
    for _ in 0..40 {
        up.extend(r.tick(1000).into_iter().filter(|t| t.target.addr == addr(CALLER)));
        if !up.is_empty() {
            break;
        }
    }
    assert_eq!(up.len(), 1);
    assert!(first_line(&up[0]).starts_with("SIP/2.0 408"), "{}", text(&up[0]));
    assert!(r.events().iter().any(|e| matches!(e, Event::CallEnded { status: 408, .. })));
    // Timer G: the 408 is repeated until the caller's ACK.
    let again = r.tick(500);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, up[0].data);
    let to_tag = text(&up[0]).split("tag=").nth(2).unwrap().split("\r\n").next().unwrap().to_owned();
    let ack = format!(
        "ACK sip:1002@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKb2quiet\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@{US}>;tag=caller\r\nTo: <sip:1002@{US}>;tag={to_tag}\r\nCall-ID: quiet\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(r.send(CALLER, &ack), None);
    assert!(r.tick(5000).is_empty(), "no retransmission after the ACK");
}

#[test]
fn busy_callee_is_acknowledged_and_the_caller_gets_486() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "busy");
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 486, "busy"));
    let out = r.out();
    let ack = out.iter().find(|t| t.target.addr == addr(PHONE_A)).expect("ACK");
    let ack = text(ack);
    assert!(ack.starts_with("ACK sip:1002-0@") && ack.contains(";tag=busy") && ack.contains("CSeq: 2 ACK"), "{ack}");
    assert_eq!(top_branch(&ack), top_branch(&text(&fwd)));
    let up = out.iter().find(|t| t.target.addr == addr(CALLER)).expect("486 upstream");
    assert!(first_line(up).starts_with("SIP/2.0 486"));
    // A response from anyone but the callee is ignored.
    r.send("203.0.113.9:5060", &answer(&fwd, 200, "spoof"));
    assert!(r.out().is_empty());
}

#[test]
fn cancel_from_the_caller_ends_in_487() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "cxl");
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 180, "a"));
    r.out();
    let cancel = format!(
        "CANCEL sip:1002@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKb2cxl\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@{US}>;tag=caller\r\nTo: <sip:1002@{US}>\r\nCall-ID: cxl\r\nCSeq: 2 CANCEL\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(code(&r.send(CALLER, &cancel).unwrap()), 200);
    let out = r.out();
    assert_eq!(out.len(), 1);
    assert!(first_line(&out[0]).starts_with("CANCEL sip:1002-0@"));
    r.send(PHONE_A, &answer(&fwd, 487, "a"));
    let up: Vec<_> = r.out().into_iter().filter(|t| t.target.addr == addr(CALLER)).collect();
    assert!(first_line(&up[0]).starts_with("SIP/2.0 487"));
    // A CANCEL for nothing: 481.
    let stray = cancel.replace("z9hG4bKb2cxl", "z9hG4bKnone");
    assert_eq!(code(&r.send(CALLER, &stray).unwrap()), 481);
}

#[test]
fn in_dialog_requests_pass_only_between_the_parties() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "dlg");
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 200, "callee"));
    r.out();
    let req = |method: &str, from: &str, from_tag: &str, to_tag: &str, branch: &str| {
        format!(
            "{method} sip:x@{from} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
             Route: <sip:{US};lr>\r\nFrom: <sip:a@x>;tag={from_tag}\r\nTo: <sip:b@x>;tag={to_tag}\r\nCall-ID: dlg\r\n\
             CSeq: 3 {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // The caller's ACK goes to the callee, without our Route entry.
    assert_eq!(r.send(CALLER, &req("ACK", CALLER, "caller", "callee", "ack1")), None);
    let out = r.out();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target.addr, addr(PHONE_A));
    assert!(!text(&out[0]).contains("Route:"), "{}", text(&out[0]));
    // Someone else with the right Call-ID and tags: refused.
    let stranger = "203.0.113.7:5060";
    assert_eq!(code(&r.send(stranger, &req("BYE", stranger, "caller", "callee", "evil")).unwrap()), 403);
    assert!(r.out().is_empty());
    // Unknown dialog: 481.
    let unknown = req("BYE", CALLER, "caller", "callee", "u").replace("Call-ID: dlg", "Call-ID: nope");
    assert_eq!(code(&r.send(CALLER, &unknown).unwrap()), 481);
    // The callee hangs up: BYE to the caller, the caller's 200 back to the callee.
    assert_eq!(r.send(PHONE_A, &req("BYE", PHONE_A, "callee", "caller", "bye1")), None);
    let bye = r.out().remove(0);
    assert_eq!(bye.target.addr, addr(CALLER));
    r.send(CALLER, &answer(&bye, 200, "x"));
    let ok = r.out();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].target.addr, addr(PHONE_A));
    assert!(first_line(&ok[0]).starts_with("SIP/2.0 200"));
    assert!(r.events().iter().any(|e| matches!(e, Event::CallEnded { status: 200, call_id } if call_id == "dlg")));
    // The dialog lingers for retransmitted BYEs, then every table is empty again.
    assert_eq!(r.svc.active_calls(), 1);
    r.tick(32_000);
    assert_eq!(r.svc.active_calls(), 0);
    r.tick(32_000);
    r.svc.handle_timeout(r.now + 64_000);
    assert_eq!(r.svc.table_sizes().0, 0, "transactions and relays are forgotten");
}

#[test]
fn trunk_calls_reach_dids_and_never_transit() {
    let mut r = Rig::new(&[PHONE_A]);
    let from_trunk = |number: &str, id: &str| {
        format!(
            "INVITE sip:{number}@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK};branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\n\
             From: <sip:2125551234@carrier>;tag=t\r\nTo: <sip:{number}@{US}>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    // No challenge for the trunk: it is recognised by its address.
    assert_eq!(code(&r.send(TRUNK, &from_trunk("5551000", "in1")).unwrap()), 100);
    let out = r.out();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target.addr, addr(PHONE_A));
    // An external number from the trunk would be toll fraud through us: 404.
    assert_eq!(code(&r.send(TRUNK, &from_trunk("01144201234567", "in2")).unwrap()), 404);
    assert!(r.out().is_empty());
    // The same request from anywhere else is challenged.
    let other = from_trunk("5551000", "in3").replace(TRUNK, "198.51.100.2:5060");
    assert_eq!(code(&r.send("198.51.100.2:5060", &other).unwrap()), 407);
}

#[test]
fn loops_and_exhausted_max_forwards_are_refused() {
    let mut r = Rig::new(&[US]);
    // A contact pointing back at us: the forwarded INVITE returns with our Via and is refused.
    r.call("1002", "loop");
    let fwd = r.out().remove(0);
    assert_eq!(fwd.target.addr, addr(US));
    let back = r.send(US, &text(&fwd)).unwrap();
    assert_eq!(code(&back), 482);
    let mf0 = invite("1002", "mf", 1, "mf", "").replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(code(&r.send(CALLER, &mf0).unwrap()), 483);
}

#[test]
fn one_extension_cannot_fill_the_tables_with_unanswered_calls() {
    let mut r = Rig::new(&[PHONE_A]);
    for i in 0..16 {
        assert_eq!(code(&r.call("1002", &format!("p{i}"))), 100);
    }
    assert_eq!(code(&r.call("1002", "p16")), 503, "the 17th pending set-up is refused");
    // One answer frees a slot.
    let fwd = r.out().into_iter().find(|t| text(t).contains("Call-ID: p0\r\n")).unwrap();
    r.send(PHONE_A, &answer(&fwd, 486, "busy"));
    assert_eq!(code(&r.call("1002", "p17")), 100);
    // An oversized INVITE is refused before it is stored.
    let mut r = Rig::new(&[PHONE_A]);
    assert_eq!(code(&r.call_with_body("1002", "big", &"a".repeat(20_000))), 413);
    assert!(r.out().is_empty());
}

#[test]
fn a_trunk_challenge_is_answered_and_the_dialog_translates_cseq() {
    let mut r = Rig::new(&[PHONE_A]);
    let auth = pbxguard_pbx::TrunkAuth {
        username: "acct".into(),
        realm: "carrier".into(),
        ha1_md5: ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"),
        ha1_sha256: ha1(Algorithm::Sha256, "acct", "carrier", "Tr!unk"),
    };
    let trunk = Trunk { auth: Some(auth), ..carrier() };
    r.svc.set_dialplan(Arc::new(DialPlan {
        trunks: vec![Arc::new(trunk)],
        routes: vec![carrier_route()],
        ..DialPlan::default()
    }));
    assert_eq!(code(&r.call("2125551234", "tr1")), 100);
    let first = r.out().remove(0);
    assert_eq!(cseq_of(&text(&first)), "2 INVITE");
    let challenge = challenged(&first, 407, "n1");
    r.send(TRUNK, &challenge);
    let out = r.out();
    assert_eq!(out.len(), 2, "ACK for the 407 and the INVITE with credentials: {out:?}");
    assert!(first_line(&out[0]).starts_with("ACK "));
    let again = text(&out[1]);
    assert_eq!(cseq_of(&again), "3 INVITE");
    assert_ne!(top_branch(&again), top_branch(&text(&first)));
    let m = Message::parse(again.as_bytes(), &Limits::default()).unwrap();
    let creds = pbxguard_sip::Credentials::parse(m.header(HeaderName::ProxyAuthorization).unwrap()).unwrap();
    assert!(creds.verify(Algorithm::Md5, &ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"), "INVITE"));
    // The caller never saw the 407, and sees the 200 with its own CSeq.
    r.send(TRUNK, &answer(&out[1], 200, "t"));
    let up = r.out();
    assert_eq!(up.len(), 1);
    assert_eq!(cseq_of(&text(&up[0])), "2 INVITE");
    // In the dialog, the caller's requests run one ahead towards the trunk, and back again.
    let req = |method: &str, n: u32, branch: &str| {
        format!(
            "{method} sip:x@{TRUNK} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
             Route: <sip:{US};lr>\r\nFrom: <sip:1001@x>;tag=caller\r\nTo: <sip:b@x>;tag=t\r\nCall-ID: tr1\r\n\
             CSeq: {n} {method}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    r.send(CALLER, &req("ACK", 2, "ack"));
    let ack = r.out().remove(0);
    assert_eq!(cseq_of(&text(&ack)), "3 ACK");
    r.send(CALLER, &req("BYE", 3, "bye"));
    let bye = r.out().remove(0);
    assert_eq!(cseq_of(&text(&bye)), "4 BYE");
    // The trunk challenges the BYE too: answered once with credentials, one CSeq further; the caller
    // sees only the final answer, with its own CSeq.
    let challenge = challenged(&bye, 401, "n2");
    r.send(TRUNK, &challenge);
    let out = r.out();
    assert_eq!(out.len(), 1, "only the BYE with credentials: {out:?}");
    let bye2 = text(&out[0]);
    assert_eq!((out[0].target.addr, cseq_of(&bye2)), (addr(TRUNK), "5 BYE".to_owned()));
    let m = Message::parse(bye2.as_bytes(), &Limits::default()).unwrap();
    let creds = pbxguard_sip::Credentials::parse(m.header(HeaderName::Authorization).unwrap()).unwrap();
    assert!(creds.verify(Algorithm::Md5, &ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"), "BYE"));
    // A second challenge is not answered again: the caller gets it.
    r.send(TRUNK, &challenge.replace(&top_branch(&text(&bye)), &top_branch(&bye2)));
    let up = r.out();
    assert_eq!((up.len(), up[0].target.addr), (1, addr(CALLER)));
    assert_eq!(code(&text(&up[0])), 401);
    r.send(TRUNK, &answer(&out[0], 200, "t"));
    let ok = r.out().remove(0);
    assert_eq!((ok.target.addr, cseq_of(&text(&ok))), (addr(CALLER), "3 BYE".to_owned()));
}

#[test]
fn an_unreachable_callee_fails_the_call_at_once_with_503() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "gone");
    let fwd = r.out().remove(0);
    // Another target's failure changes nothing.
    r.svc.unreachable(r.now, pbxguard_pbx::Target { addr: addr("192.0.2.200:5060"), transport: fwd.target.transport });
    assert!(r.out().is_empty());
    r.svc.unreachable(r.now, fwd.target);
    let up = r.out();
    assert_eq!(up.len(), 1);
    assert!(first_line(&up[0]).starts_with("SIP/2.0 503"), "{}", text(&up[0]));
    assert!(r.events().iter().any(|e| matches!(e, Event::CallEnded { status: 503, .. })));
    // The branch is over: no INVITE retransmission follows.
    assert!(r.tick(1000).iter().all(|t| t.target.addr == addr(CALLER)));
}

#[test]
fn an_idle_service_asks_for_no_wake_up_and_housekeeping_has_its_deadlines() {
    let mut r = Rig::new(&[]);
    assert_eq!(r.svc.poll_timeout(), None);
    // A cached final response (OPTIONS over UDP) is forgotten 32 s on, in whole seconds.
    let options = format!(
        "OPTIONS sip:{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKopt\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@{US}>;tag=o\r\nTo: <sip:{US}>\r\nCall-ID: opt\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(code(&r.send(CALLER, &options).unwrap()), 200);
    assert_eq!(r.svc.poll_timeout(), Some((T0 / 1000 + 32) * 1000));
    // A throttle is lifted when it ends.
    r.svc.throttle_user("1001".into(), T0 + 5_000);
    assert_eq!(r.svc.poll_timeout(), Some(T0 + 5_000));
    assert_eq!(r.wake(u64::MAX), Some(vec![]));
    assert_eq!(r.now, T0 + 5_000);
    assert_eq!(r.wake(u64::MAX), Some(vec![]));
    assert_eq!(r.now, (T0 / 1000 + 32) * 1000);
    assert_eq!(r.svc.poll_timeout(), None);
    // Registered contacts: nothing to do until the first binding expires, then nothing at all.
    let mut r = Rig::new(&[PHONE_A]);
    assert_eq!(r.svc.poll_timeout(), Some(BINDINGS_EXPIRE));
    r.wake(u64::MAX);
    assert_eq!((r.svc.registrar().binding_count(), r.svc.poll_timeout()), (0, None));
}

#[test]
fn poll_timeout_follows_an_invite_over_udp_until_the_transaction_is_gone() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "pt");
    let sent = r.out();
    assert_eq!(sent.len(), 1);
    // Timer A: the forwarded INVITE is due again T1 after it was sent.
    assert_eq!(r.svc.poll_timeout(), Some(r.now + 500));
    let re = r.wake(u64::MAX).unwrap();
    assert_eq!(re.len(), 1);
    assert_eq!(re[0].data, sent[0].data);
    assert_eq!(r.svc.poll_timeout(), Some(r.now + 1000));
    // The callee is busy: its 486 is acknowledged, goes upstream, and Timer G runs until the ACK.
    r.now += 200;
    r.send(PHONE_A, &answer(&sent[0], 486, "busy"));
    let out = r.out();
    let up = out.iter().find(|t| t.target.addr == addr(CALLER)).expect("486 upstream");
    assert!(first_line(up).starts_with("SIP/2.0 486"));
    let final_at = r.now;
    assert_eq!(r.svc.poll_timeout(), Some(final_at + 500));
    let to_tag = text(up).split("tag=").nth(2).unwrap().split("\r\n").next().unwrap().to_owned();
    let ack = format!(
        "ACK sip:1002@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKb2pt\r\nMax-Forwards: 70\r\n\
         From: <sip:1001@{US}>;tag=caller\r\nTo: <sip:1002@{US}>;tag={to_tag}\r\nCall-ID: pt\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(r.send(CALLER, &ack), None);
    // From here only forgetting is left: the server transaction lingers 32 s, the client one 32 s more
    // for late responses; nothing is sent, and then the service is idle again.
    let mut wakes = 0;
    while let Some(out) = r.wake(BINDINGS_EXPIRE) {
        assert!(out.is_empty(), "{out:?}");
        wakes += 1;
    }
    assert!(wakes <= 4, "{wakes} wake-ups");
    assert_eq!(r.now, final_at + 64_000);
    assert_eq!((r.svc.table_sizes().0, r.svc.active_calls()), (0, 0));
    assert_eq!(r.svc.poll_timeout(), Some(BINDINGS_EXPIRE));
}

#[test]
fn sleeping_until_poll_timeout_keeps_every_timer_on_time() {
    let mut r = Rig::new(&[PHONE_A]);
    r.call("1002", "asleep");
    let sent = r.out().remove(0);
    let t0 = r.now;
    let mut invites = Vec::new();
    let mut upstream = Vec::new();
    while let Some(out) = r.wake(BINDINGS_EXPIRE) {
        for t in out {
            if t.target.addr == addr(CALLER) {
                upstream.push((r.now - t0, first_line(&t)));
            } else {
                assert_eq!(t.data, sent.data);
                invites.push(r.now - t0);
            }
        }
    }
    // Timer A doubles from T1 until Timer B (64*T1) ends the branch with 408; Timer G then repeats the
    // 408 from T1, doubling up to T2, for 32 s (no ACK ever comes).
    assert_eq!(invites, [500, 1_500, 3_500, 7_500, 15_500, 31_500]);
    let at: Vec<u64> = upstream.iter().map(|(t, _)| *t).collect();
    assert_eq!(at, [32_000, 32_500, 33_500, 35_500, 39_500, 43_500, 47_500, 51_500, 55_500, 59_500, 63_500]);
    assert!(upstream.iter().all(|(_, l)| l.starts_with("SIP/2.0 408")), "{upstream:?}");
    assert_eq!(r.svc.table_sizes().0, 0);
}

#[test]
fn trunk_registration_is_a_deadline_too() {
    let mut r = Rig::new(&[PHONE_A]);
    let trunk = |transport| Trunk {
        transport,
        auth: Some(pbxguard_pbx::TrunkAuth {
            username: "acct".into(),
            realm: "carrier".into(),
            ha1_md5: ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"),
            ha1_sha256: ha1(Algorithm::Sha256, "acct", "carrier", "Tr!unk"),
        }),
        register: Some(600),
        ..carrier()
    };
    // Over TCP, on which this proxy does not listen: nothing can be sent, so nothing to wake up for.
    r.svc.set_dialplan(Arc::new(DialPlan { trunks: vec![Arc::new(trunk(Transport::Tcp))], ..DialPlan::default() }));
    assert_eq!(r.svc.poll_timeout(), Some(BINDINGS_EXPIRE));
    // Over UDP: due at once, then the retransmission 2 s on, then the refresh at half the granted time.
    r.svc.set_dialplan(Arc::new(DialPlan { trunks: vec![Arc::new(trunk(Transport::Udp))], ..DialPlan::default() }));
    assert!(r.svc.poll_timeout().is_some_and(|t| t <= r.now));
    r.svc.handle_timeout(r.now);
    let reg = r.out().remove(0);
    assert!(first_line(&reg).starts_with("REGISTER sip:198.51.100.1:5060 "), "{}", text(&reg));
    assert_eq!(r.svc.poll_timeout(), Some(r.now + 2_000));
    r.now += 100;
    r.send(TRUNK, &answer(&reg, 200, "t"));
    assert_eq!(r.svc.trunk_registrations(), [("carrier".to_owned(), true)]);
    assert_eq!(r.svc.poll_timeout(), Some(r.now + 300_000));
}
