//! Toll fraud in the proxy, on a virtual clock: transfers (REFER, INVITE with Replaces) towards trunks,
//! country allow-lists, and unusual calls.

mod rig;
use rig::*;

/// The carrier trunk of [`Rig`] with transfers allowed or not, a default Class of Service allowing
/// national and international calls to `countries` only (premium-rate not at all), and `limits`.
fn transfer_plan(allow_refer: bool, countries: &[&str], limits: CallLimits) -> Arc<DialPlan> {
    let cos = ClassOfService {
        name: "default".into(),
        allow: Categories::parse("internal,local,national,international").unwrap(),
        countries: Some(countries.iter().map(|c| CountryCode::try_from(*c).unwrap()).collect()),
    };
    Arc::new(DialPlan {
        trunks: vec![Arc::new(Trunk { allow_refer, ..carrier() })],
        routes: vec![carrier_route()],
        cos: [("default".to_owned(), cos)].into(),
        limits,
        ..DialPlan::default()
    })
}

fn refer_to(number: &str) -> String {
    format!("Refer-To: <sip:{number}@198.51.100.1>\r\n")
}

/// 1001 in an answered call to a national number through the carrier trunk.
fn trunk_call(r: &mut Rig, call_id: &str) {
    assert_eq!(code(&r.call("2125551234", call_id)), 100);
    let fwd = r.out().remove(0);
    assert_eq!(fwd.target.addr, addr(TRUNK));
    r.send(TRUNK, &answer(&fwd, 200, "t"));
    r.out();
    r.events();
}

fn refused(events: &[Event]) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::CallRefused { extension, number, status: 403, rule, .. } => {
                Some((extension.clone(), number.clone(), rule.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Monday 2027-01-18 00:00 UTC, plus `day` days and `hour` hours.
fn monday(day: u64, hour: u64) -> u64 {
    1_800_230_400_000 + day * 86_400_000 + hour * 3_600_000
}

#[test]
fn a_refer_towards_a_trunk_is_refused_unless_the_trunk_accepts_transfers() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(transfer_plan(false, &["44"], CallLimits::default()));
    trunk_call(&mut r, "x1");
    // Blind transfer of the carrier call to an international number: 403, nothing reaches the trunk.
    let refer = in_dialog("REFER", CALLER, "caller", "t", "x1", 3, &refer_to("011441632960000"));
    assert_eq!(code(&r.send(CALLER, &refer).unwrap()), 403);
    assert!(r.out().is_empty());
    let ev = refused(&r.events());
    assert_eq!(ev.len(), 1, "{ev:?}");
    let (ext, number, rule) = &ev[0];
    assert_eq!((ext.as_str(), number.as_str()), ("1001", "011441632960000"));
    assert!(rule.contains("trunk carrier does not accept transfers (REFER)"), "{rule}");
    // The retransmitted REFER gets the same answer, and still goes nowhere.
    assert_eq!(code(&r.send(CALLER, &refer).unwrap()), 403);
    assert!(r.out().is_empty());
    // Attended transfer (INVITE with Replaces) inside the call: refused the same way.
    let replaces = in_dialog("INVITE", CALLER, "caller", "t", "x1", 4, "Replaces: other;to-tag=a;from-tag=b\r\n");
    assert_eq!(code(&r.send(CALLER, &replaces).unwrap()), 403);
    assert!(r.out().is_empty());
    assert!(refused(&r.events())[0].2.contains("(INVITE with Replaces)"));
    // The rest of the dialog is untouched: a re-INVITE and the BYE still pass.
    r.send(CALLER, &in_dialog("INVITE", CALLER, "caller", "t", "x1", 5, ""));
    assert_eq!(r.out()[0].target.addr, addr(TRUNK));
    // The carrier may transfer the phone: its REFER reaches the extension.
    let from_trunk = in_dialog("REFER", TRUNK, "t", "caller", "x1", 9, &refer_to("011441632960000"));
    assert_eq!(r.send(TRUNK, &from_trunk), None);
    let out = r.out();
    assert_eq!((out.len(), out[0].target.addr), (1, addr(CALLER)));
    assert!(first_line(&out[0]).starts_with("REFER "));
    assert!(refused(&r.events()).is_empty());
}

#[test]
fn with_allow_refer_the_refer_target_is_checked_like_a_new_call() {
    let mut r = Rig::new(&[PHONE_A]);
    let limits = CallLimits { per_hour: 3, ..CallLimits::default() };
    r.svc.set_dialplan(transfer_plan(true, &["44"], limits));
    trunk_call(&mut r, "y1");
    // A country the Class of Service allows: the REFER goes to the trunk as it came.
    let refer = in_dialog("REFER", CALLER, "caller", "t", "y1", 3, &refer_to("011441632960000"));
    assert_eq!(r.send(CALLER, &refer), None);
    let out = r.out();
    assert_eq!((out.len(), out[0].target.addr), (1, addr(TRUNK)));
    assert!(text(&out[0]).contains("Refer-To: <sip:011441632960000@198.51.100.1>"), "{}", text(&out[0]));
    assert!(refused(&r.events()).is_empty());
    // Its answer comes back to the phone.
    r.send(TRUNK, &answer(&out[0], 202, "t"));
    let up = r.out();
    assert_eq!((up.len(), up[0].target.addr, code(&text(&up[0]))), (1, addr(CALLER), 202));
    // Another country, premium-rate, a number in no category: refused like new calls would be, naming
    // the rule; none reaches the trunk.
    let cases = [
        ("01149301234567", "class of service default does not allow country 49 (Germany) (_011.)"),
        ("19005551234", "class of service default does not allow premium-rate"),
        ("0119991234567", "a number with no known country code"),
        ("12", "number matches no category"),
    ];
    for (i, (number, why)) in cases.into_iter().enumerate() {
        let refer = in_dialog("REFER", CALLER, "caller", "t", "y1", 10 + i as u32, &refer_to(number));
        assert_eq!(code(&r.send(CALLER, &refer).unwrap()), 403, "{number}");
        assert!(r.out().is_empty(), "{number}");
        let ev = refused(&r.events());
        assert_eq!((ev[0].0.as_str(), ev[0].1.as_str()), ("1001", number));
        assert!(ev[0].2.starts_with("transfer: ") && ev[0].2.contains(why), "{number}: {}", ev[0].2);
    }
    // An INVITE with Replaces inside the call passes on a trunk that accepts transfers.
    r.send(CALLER, &in_dialog("INVITE", CALLER, "caller", "t", "y1", 20, "Replaces: z;to-tag=a;from-tag=b\r\n"));
    assert_eq!(r.out()[0].target.addr, addr(TRUNK));
    // The hourly limit counts transfers: the call and one transfer so far; a third attempt is the
    // last one allowed, the fourth is refused and suspends the extension.
    let refer = in_dialog("REFER", CALLER, "caller", "t", "y1", 30, &refer_to("2125550001"));
    assert_eq!(r.send(CALLER, &refer), None);
    assert_eq!(r.out().len(), 1);
    let refer = in_dialog("REFER", CALLER, "caller", "t", "y1", 31, &refer_to("2125550002"));
    assert_eq!(code(&r.send(CALLER, &refer).unwrap()), 403);
    let ev = r.events();
    assert!(refused(&ev)[0].2.contains("transfer: at most 3 outbound calls per hour"), "{ev:?}");
    assert!(ev.iter().any(|e| matches!(e, Event::ExtensionSuspended { extension, .. } if extension == "1001")));
    // Suspended now: even a national transfer is refused.
    let refer = in_dialog("REFER", CALLER, "caller", "t", "y1", 32, &refer_to("2125550003"));
    assert_eq!(code(&r.send(CALLER, &refer).unwrap()), 403);
    assert!(refused(&r.events())[0].2.contains("extension suspended"));
}

#[test]
fn a_refer_between_extensions_is_unchanged() {
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(transfer_plan(false, &["44"], CallLimits::default()));
    r.call("1002", "e1");
    let fwd = r.out().remove(0);
    r.send(PHONE_A, &answer(&fwd, 200, "callee"));
    r.out();
    r.events();
    // Whatever it names: the phone that gets it calls through this proxy, and is checked then.
    for (i, number) in ["01149301234567", "19005551234"].into_iter().enumerate() {
        let refer = in_dialog("REFER", CALLER, "caller", "callee", "e1", 3 + i as u32, &refer_to(number));
        assert_eq!(r.send(CALLER, &refer), None);
        let out = r.out();
        assert_eq!((out.len(), out[0].target.addr), (1, addr(PHONE_A)), "{number}");
    }
    assert!(refused(&r.events()).is_empty());
    // A REFER from a third address with the dialog's tags is the relay's to refuse, not a transfer.
    let stranger = "203.0.113.7:5060";
    let mut r = Rig::new(&[PHONE_A]);
    r.svc.set_dialplan(transfer_plan(false, &["44"], CallLimits::default()));
    trunk_call(&mut r, "e2");
    let refer = in_dialog("REFER", stranger, "caller", "t", "e2", 3, &refer_to("011441632960000"));
    assert_eq!(code(&r.send(stranger, &refer).unwrap()), 403);
    let ev = r.events();
    assert!(refused(&ev).is_empty() && ev.iter().any(|e| matches!(e, Event::Malformed { .. })), "{ev:?}");
}

#[test]
fn a_new_invite_with_replaces_to_a_trunk_needs_allow_refer() {
    for (allow, want) in [(false, 403), (true, 100)] {
        let mut r = Rig::new(&[PHONE_A]);
        r.svc.set_dialplan(transfer_plan(allow, &["44"], CallLimits::default()));
        let id = format!("nr{allow}");
        let replaces = "Replaces: other;to-tag=a;from-tag=b\r\n";
        let got = r.call_with_headers("2125551234", &id, replaces);
        assert_eq!(code(&got), want, "allow_refer {allow}: {got}");
        let to_trunk = r.out().into_iter().filter(|t| t.target.addr == addr(TRUNK)).count();
        assert_eq!(to_trunk, usize::from(allow));
        let ev = refused(&r.events());
        if !allow {
            assert!(ev[0].2.contains("(INVITE with Replaces)"), "{ev:?}");
            // Emergency calls go through whatever they carry.
            assert_eq!(code(&r.call_with_headers("911", "nr911", replaces)), 100);
        }
    }
}

#[test]
fn a_country_list_lets_only_its_countries_through() {
    let mut r = Rig::new(&[PHONE_A]);
    let roomy = CallLimits {
        max_concurrent: 100,
        per_hour: 100,
        international_per_hour: 100,
        suspend: false,
        ..CallLimits::default()
    };
    r.svc.set_dialplan(transfer_plan(false, &["44", "353"], roomy));
    for (i, (number, want)) in [
        ("01144201234567", 100),
        ("011353123456789", 100),
        ("004930123456", 403),
        ("0111212555123", 403),
        ("0119991234567", 403),
        ("2125551234", 100),
    ]
    .into_iter()
    .enumerate()
    {
        let got = r.call(number, &format!("c{i}"));
        assert_eq!(code(&got), want, "{number}");
        let to_trunk = r.out().into_iter().filter(|t| t.target.addr == addr(TRUNK)).count();
        assert_eq!(to_trunk, usize::from(want == 100), "{number}");
    }
    let rules: Vec<String> = refused(&r.events()).into_iter().map(|e| e.2).collect();
    assert_eq!(
        rules,
        [
            "class of service default does not allow country 49 (Germany) (_00.)",
            "class of service default does not allow country 1 (North American Numbering Plan) (_011.)",
            "class of service default does not allow a number with no known country code (_011.)",
        ]
    );
}

#[test]
fn unusual_calls_raise_an_event_and_with_suspend_on_anomaly_suspend_the_extension() {
    let mut r = Rig::new(&[]);
    let plan = |suspend_on_anomaly| {
        let cos = ClassOfService {
            name: "default".into(),
            allow: Categories::parse("internal,local,national,international,premium-rate").unwrap(),
            countries: None,
        };
        let limits = CallLimits {
            business_hours: pbxguard_shield::anomaly::BusinessHours::parse("mon-fri 08:00-18:00").unwrap(),
            suspend_on_anomaly,
            max_concurrent: 100,
            ..CallLimits::default()
        };
        Arc::new(DialPlan {
            cos: [("default".to_owned(), cos)].into(),
            limits,
            ..(*transfer_plan(false, &[], CallLimits::default())).clone()
        })
    };
    r.svc.set_dialplan(plan(false));
    // The calls log taught it: 1001 has called the United Kingdom before.
    r.svc.learn_call("1001", "011441632960000");
    let unusual = |ev: &[Event]| -> Vec<String> {
        ev.iter()
            .filter_map(|e| match e {
                Event::UnusualCall { extension, detail, .. } if extension == "1001" => Some(detail.clone()),
                _ => None,
            })
            .collect()
    };
    // A week of national calls in office hours: nothing unusual.
    for day in 0..5 {
        r.now = monday(day, 10);
        let reply = r.call("2125551234", &format!("n{day}"));
        assert_eq!(code(&reply), 100, "{reply} {:?}", r.events());
        assert_eq!(r.out()[0].target.addr, addr(TRUNK));
        assert_eq!(unusual(&r.events()), Vec::<String>::new(), "day {day}");
    }
    // Premium-rate at 3 a.m.: an event naming both reasons; without suspend the call goes ahead.
    r.now = monday(7, 3);
    assert_eq!(code(&r.call("19005551234", "p1")), 100);
    assert_eq!(r.out()[0].target.addr, addr(TRUNK));
    assert_eq!(unusual(&r.events()), ["first call to a premium-rate number, trunk call outside business hours"]);
    // The usual call at 10 a.m., and the country the log taught it, raise nothing.
    r.now = monday(7, 10);
    assert_eq!(code(&r.call("2125551234", "n7")), 100);
    r.now = monday(7, 11);
    assert_eq!(code(&r.call("011441632960000", "i1")), 100);
    assert_eq!(unusual(&r.events()), Vec::<String>::new());
    // With suspend on: a first call to Germany is refused, the extension suspended, nothing reaches the
    // trunk, and its national calls are refused too until an operator re-enables it.
    r.svc.set_dialplan(plan(true));
    r.out();
    r.now = monday(8, 10);
    assert_eq!(code(&r.call("01149301234567", "g1")), 403);
    assert!(r.out().is_empty());
    let ev = r.events();
    assert_eq!(unusual(&ev), ["first call to country 49 (Germany)"]);
    assert!(ev.iter().any(|e| matches!(e, Event::ExtensionSuspended { extension, rule } if extension == "1001" && rule.contains("unusual call"))), "{ev:?}");
    assert_eq!(code(&r.call("2125551234", "n8")), 403);
    assert!(refused(&r.events())[0].2.contains("extension suspended"));
}
