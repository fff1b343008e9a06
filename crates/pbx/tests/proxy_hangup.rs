//! The longest trunk call, on a virtual clock: the proxy's own BYE to each party, retransmitted and
//! absorbed, with the setting and an extension's own limit.

mod rig;
use rig::*;

/// The rig's carrier plan with the longest trunk call at `limit_ms`.
fn limited_plan(limit_ms: u64) -> Arc<DialPlan> {
    Arc::new(DialPlan { max_trunk_call_ms: limit_ms, ..carrier_plan() })
}

/// Sets 1001's own longest trunk call.
fn own_limit(r: &mut Rig, ms: Option<u64>) {
    r.svc.set_directory(Arc::new(directory(ms)));
}

/// Sleeps from wake-up to wake-up until `until`, as the daemon does; the BYEs sent on the way, with
/// when they left.
fn byes_until(r: &mut Rig, until: u64) -> Vec<(u64, Transmit)> {
    let mut byes = Vec::new();
    while let Some(out) = r.wake(until + 1) {
        byes.extend(out.into_iter().filter(|t| first_line(t).starts_with("BYE ")).map(|t| (r.now, t)));
    }
    byes
}

#[test]
fn a_trunk_call_is_cut_at_its_longest_length_with_a_bye_to_each_party() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(10_000));
    assert_eq!(code(&r.call("2125551234", "long1")), 100);
    let fwd = r.out().remove(0);
    r.tick(2_000);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    assert_eq!(r.out().len(), 1, "the 200 goes to the caller");
    let answered = r.now;
    // Both parties use the dialog: our BYEs must go past the CSeq each has used.
    r.send(CALLER, &in_dialog("ACK", CALLER, "caller", "t", "long1", 2, ""));
    r.send(CALLER, &in_dialog("INFO", CALLER, "caller", "t", "long1", 5, ""));
    r.send(TRUNK, &in_dialog("INFO", TRUNK, "t", "caller", "long1", 7, ""));
    assert_eq!(r.out().len(), 3);
    r.events();
    // The deadline is the service's next wake-up, not a tick: nothing before it.
    assert!(r.svc.poll_timeout().unwrap() <= answered + 10_000);
    let byes = byes_until(&mut r, answered + 10_000);
    assert_eq!(byes.len(), 2, "{byes:?}");
    assert!(byes.iter().all(|(at, _)| *at == answered + 10_000));
    let to_trunk = byes.iter().map(|(_, t)| t).find(|t| t.target.addr == addr(TRUNK)).unwrap();
    let to_caller = byes.iter().map(|(_, t)| t).find(|t| t.target.addr == addr(CALLER)).unwrap();
    // Towards the trunk in the caller's name: Request-URI from the 2xx's Contact, the caller's tags.
    let raw = text(to_trunk);
    assert_eq!(first_line(to_trunk), format!("BYE sip:callee@{TRUNK} SIP/2.0"));
    assert_eq!(header(&raw, HeaderName::From), format!("<sip:1001@{US}>;tag=caller"));
    assert_eq!(header(&raw, HeaderName::To), format!("<sip:2125551234@{US}>;tag=t"));
    assert_eq!((cseq_of(&raw), header(&raw, HeaderName::CallId)), ("6 BYE".to_owned(), "long1".to_owned()));
    assert!(header(&raw, HeaderName::Via).contains(US), "{raw}");
    assert_eq!(header(&raw, HeaderName::Route), "", "we are the only proxy: no Route");
    // Towards the caller in the trunk's name: its Contact from the INVITE, From and To swapped.
    let raw = text(to_caller);
    assert_eq!(first_line(to_caller), format!("BYE sip:1001@{CALLER} SIP/2.0"));
    assert_eq!(header(&raw, HeaderName::From), format!("<sip:2125551234@{US}>;tag=t"));
    assert_eq!(header(&raw, HeaderName::To), format!("<sip:1001@{US}>;tag=caller"));
    assert_eq!(cseq_of(&raw), "8 BYE");
    // One event names the extension, the number, the trunk and how long the call ran.
    let cut: Vec<_> = r.events().into_iter().filter(|e| matches!(e, Event::CallCut { .. })).collect();
    assert_eq!(
        cut,
        vec![Event::CallCut {
            call_id: "long1".into(),
            extension: "1001".into(),
            number: "2125551234".into(),
            trunk: "carrier".into(),
            duration_ms: 10_000,
            limit_ms: 10_000,
        }]
    );
    // Over UDP both BYEs are sent again after T1, until answered.
    let again = byes_until(&mut r, answered + 10_500);
    assert_eq!(again.len(), 2, "{again:?}");
    // Their answers are ours: neither party sees the other's 200 or 481.
    r.send(TRUNK, &answer(to_trunk, 200, "t"));
    r.send(CALLER, &answer(to_caller, 481, "x"));
    assert!(r.out().is_empty(), "answers to our BYEs are absorbed");
    assert!(byes_until(&mut r, answered + 60_000).is_empty(), "no BYE after the answers");
    // A request already on its way still finds the dialog, then everything is forgotten.
    r.wake(u64::MAX);
    while r.wake(u64::MAX).is_some() {}
    assert_eq!((r.svc.active_calls(), r.svc.table_sizes().0), (0, 0));
}

#[test]
fn an_unanswered_bye_is_retransmitted_up_to_t2_then_given_up_after_timer_f() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(5_000));
    r.call("2125551234", "long2");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let start = r.now;
    let byes = byes_until(&mut r, start + 120_000);
    let to_trunk: Vec<u64> =
        byes.iter().filter(|(_, t)| t.target.addr == addr(TRUNK)).map(|(at, _)| at - start).collect();
    // Timer E: 500 ms doubling up to T2 (4 s); Timer F: 32 s after the first.
    assert_eq!(to_trunk, vec![5_000, 5_500, 6_500, 8_500, 12_500, 16_500, 20_500, 24_500, 28_500, 32_500, 36_500]);
    assert_eq!(byes.len(), 2 * to_trunk.len());
    assert!(r.events().iter().any(|e| matches!(e, Event::CallCut { .. })));
}

#[test]
fn calls_between_extensions_and_emergency_calls_are_never_cut() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(5_000));
    r.call("1002", "internal");
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 200, "callee"));
    r.call("911", "emergency");
    let fwd = r.out().into_iter().find(|t| t.target.addr == addr(TRUNK)).unwrap();
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let now = r.now;
    assert!(byes_until(&mut r, now + 600_000).is_empty());
    assert_eq!(r.svc.active_calls(), 2);
    assert!(!r.events().iter().any(|e| matches!(e, Event::CallCut { .. })));
}

#[test]
fn an_extensions_own_longest_call_wins_over_the_setting() {
    // Shorter than the setting.
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(60_000));
    own_limit(&mut r, Some(3_000));
    r.call("2125551234", "own1");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let now = r.now;
    let byes = byes_until(&mut r, now + 3_000);
    assert_eq!(byes.len(), 2);
    assert_eq!(byes[0].0, now + 3_000);
    // Off for this extension: the setting's limit does not apply to it.
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(5_000));
    own_limit(&mut r, Some(0));
    r.call("2125551234", "own2");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let now = r.now;
    assert!(byes_until(&mut r, now + 600_000).is_empty());
    // The setting off: no limit for anyone without their own.
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(0));
    r.call("2125551234", "own3");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let now = r.now;
    assert!(byes_until(&mut r, now + 600_000).is_empty());
}

#[test]
fn an_inbound_trunk_call_is_cut_too_and_a_hangup_first_leaves_nothing_to_cut() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(5_000));
    let invite = format!(
        "INVITE sip:5551000@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK};branch=z9hG4bKin1\r\nMax-Forwards: 70\r\n\
         From: <sip:2125551234@carrier>;tag=t\r\nTo: <sip:5551000@{US}>\r\nCall-ID: in1\r\nCSeq: 10 INVITE\r\n\
         Contact: <sip:2125551234@{TRUNK}>\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(code(&r.send(TRUNK, &invite).unwrap()), 100);
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 200, "phone"));
    r.out();
    let now = r.now;
    let byes = byes_until(&mut r, now + 5_000);
    let to_trunk = byes.iter().map(|(_, t)| t).find(|t| t.target.addr == addr(TRUNK)).unwrap();
    assert_eq!(first_line(to_trunk), format!("BYE sip:2125551234@{TRUNK} SIP/2.0"));
    assert_eq!(cseq_of(&text(to_trunk)), "1 BYE", "the phone never sent a request in the dialog");
    let to_phone = byes.iter().map(|(_, t)| t).find(|t| t.target.addr == addr(PHONE_A)).unwrap();
    assert_eq!(cseq_of(&text(to_phone)), "11 BYE");
    let cut = r.events().into_iter().find(|e| matches!(e, Event::CallCut { .. })).unwrap();
    assert!(
        matches!(&cut, Event::CallCut { extension, number, .. } if extension == "1002" && number == "trunk:carrier"),
        "{cut:?}"
    );
    // Without a Contact a party does not escape the limit: its BYE goes to its transport address.
    let bare = invite.replace(&format!("Contact: <sip:2125551234@{TRUNK}>\r\n"), "").replace("in1", "in2");
    assert_eq!(code(&r.send(TRUNK, &bare).unwrap()), 100);
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 200, "phone"));
    r.out();
    let now = r.now;
    // (The first call's BYEs are still being sent again meanwhile.)
    let byes: Vec<_> =
        byes_until(&mut r, now + 5_000).into_iter().filter(|(_, t)| text(t).contains("Call-ID: in2")).collect();
    assert_eq!(byes.len(), 2, "{byes:?}");
    let to_trunk = byes.iter().map(|(_, t)| t).find(|t| t.target.addr == addr(TRUNK)).unwrap();
    assert_eq!(first_line(to_trunk), format!("BYE sip:{TRUNK} SIP/2.0"));
    // A call hung up before its limit is not cut afterwards.
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(limited_plan(5_000));
    r.call("2125551234", "short");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.send(CALLER, &in_dialog("BYE", CALLER, "caller", "t", "short", 3, ""));
    r.out();
    let now = r.now;
    assert!(byes_until(&mut r, now + 600_000).is_empty());
}

#[test]
fn a_trunk_that_challenges_our_bye_gets_it_again_with_credentials() {
    let mut r = Rig::new(&[PHONE_A]);
    let auth = pbxguard_pbx::TrunkAuth {
        username: "acct".into(),
        realm: "carrier".into(),
        ha1_md5: ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"),
        ha1_sha256: ha1(Algorithm::Sha256, "acct", "carrier", "Tr!unk"),
    };
    let plan = limited_plan(5_000);
    let mut plan = (*plan).clone();
    plan.trunks = vec![Arc::new(Trunk { auth: Some(auth), ..carrier() })];
    r.svc.set_dialplan(Arc::new(plan));
    r.call("2125551234", "auth1");
    let fwd = r.out().remove(0);
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    let now = r.now;
    let bye =
        byes_until(&mut r, now + 5_000).into_iter().map(|(_, t)| t).find(|t| t.target.addr == addr(TRUNK)).unwrap();
    assert_eq!(cseq_of(&text(&bye)), "3 BYE");
    r.send(TRUNK, &challenged(&bye, 407, "n9"));
    let out = r.out();
    assert_eq!(out.len(), 1, "{out:?}");
    let again = text(&out[0]);
    assert_eq!((out[0].target.addr, cseq_of(&again)), (addr(TRUNK), "4 BYE".to_owned()));
    let m = Message::parse(again.as_bytes(), &Limits::default()).unwrap();
    let creds = pbxguard_sip::Credentials::parse(m.header(HeaderName::ProxyAuthorization).unwrap()).unwrap();
    assert!(creds.verify(Algorithm::Md5, &ha1(Algorithm::Md5, "acct", "carrier", "Tr!unk"), "BYE"));
    // Its 200 is absorbed like any answer to our BYEs.
    r.send(TRUNK, &answer(&out[0], 200, "t"));
    assert!(r.out().is_empty());
}
