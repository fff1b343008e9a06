//! A real softphone (baresip) registers over UDP and over TLS, and its binding shows in `reg list`;
//! two of them call each other through pbxguard (auto-answer, hang-up) over UDP and over TLS.
//!
//! baresip 1.0.0 (libre 1.1.0, Debian 12) fails the whole registration with "Function not implemented"
//! when any challenge names an algorithm it lacks, so its extension offers MD5 only.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn config_dir(root: &std::path::Path, name: &str, account: &str, sip_port: u16) -> std::path::PathBuf {
    config_dir_on(root, name, account, "127.0.0.1", sip_port)
}

fn config_dir_on(root: &std::path::Path, name: &str, account: &str, ip: &str, sip_port: u16) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config"),
        format!(
            "poll_method epoll\nsip_listen {ip}:{sip_port}\nnet_interface {ip}\naudio_player alsa,null\n\
             audio_source ausine,440\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule_tmp uuid.so\nmodule_tmp account.so\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("accounts"), format!("{account}\n")).unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
    dir
}

fn free_port() -> u16 {
    // baresip also binds TLS on sip_listen+1, so find a port whose neighbour is free too.
    loop {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port();
        if p < 65_000
            && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
        {
            return p;
        }
    }
}

#[test]
fn baresip_registers_over_udp_and_tls() {
    require("baresip");
    let d = TempDir::new("baresip");
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", "Bare!sip9pw", "--algorithms", "MD5"]);
    let daemon = Daemon::start(&d.0);
    for (transport, target) in [("udp", daemon.udp), ("tls", daemon.tls)] {
        let account = format!("<sip:1001@{target};transport={transport}>;auth_pass=Bare!sip9pw;regint=600");
        let dir = config_dir(&d.0, transport, &account, free_port());
        let mut phone = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .args(["-t", "30"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let binding = wait_for(Duration::from_secs(15), || {
            registrations(&d.0).into_iter().find(|r| r["extension"] == "1001" && r["transport"] == transport)
        });
        let _ = phone.kill();
        let _ = phone.wait();
        let b = binding.unwrap_or_else(|| panic!("no {transport} binding for baresip; daemon log:\n{}", daemon.log()));
        assert!(b["user_agent"].as_str().unwrap().starts_with("baresip"), "{b}");
        assert!(b["contact"].as_str().unwrap().contains("@127.0.0.1:"), "{b}");
        assert!(b["source"].as_str().unwrap().starts_with("127.0.0.1:"), "{b}");
        assert!(b["expires_in"].as_i64().unwrap() > 500);
    }
}

/// baresip's ctrl_tcp module: netstring-framed JSON commands and events.
struct Ctrl {
    s: std::net::TcpStream,
    buf: Vec<u8>,
    events: Vec<serde_json::Value>,
}

impl Ctrl {
    fn connect(port: u16) -> Self {
        let s = wait_for(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).ok())
            .expect("baresip ctrl_tcp");
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Self { s, buf: Vec::new(), events: Vec::new() }
    }

    fn read(&mut self) -> Option<serde_json::Value> {
        use std::io::Read;
        loop {
            if let Some(colon) = self.buf.iter().position(|&b| b == b':') {
                let n: usize = std::str::from_utf8(&self.buf[..colon]).ok()?.parse().ok()?;
                if self.buf.len() > colon + n + 1 {
                    let msg = serde_json::from_slice(&self.buf[colon + 1..colon + 1 + n]).ok();
                    self.buf.drain(..colon + n + 2);
                    return msg;
                }
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return None,
            }
        }
    }

    fn cmd(&mut self, command: &str, params: &str) {
        use std::io::Write;
        let body = serde_json::json!({"command": command, "params": params, "token": command}).to_string();
        self.s.write_all(format!("{}:{body},", body.len()).as_bytes()).unwrap();
    }

    /// Waits for an event of this type (events read meanwhile are kept).
    fn wait_event(&mut self, kind: &str, timeout: Duration) -> Option<serde_json::Value> {
        if let Some(i) = self.events.iter().position(|e| e["type"] == kind) {
            return Some(self.events.remove(i));
        }
        let end = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < end {
            if let Some(m) = self.read()
                && m["event"] == true
            {
                if m["type"] == kind {
                    return Some(m);
                }
                self.events.push(m);
            }
        }
        None
    }
}

fn phone(root: &std::path::Path, name: &str, account: &str) -> (std::process::Child, Ctrl) {
    let (child, ctrl, _) = phone_on(root, name, account, "127.0.0.1", "");
    (child, ctrl)
}

/// A baresip listening on `ip` with `extra` configuration lines; also returns its SIP port (TLS is the
/// next one).
fn phone_on(
    root: &std::path::Path,
    name: &str,
    account: &str,
    ip: &str,
    extra: &str,
) -> (std::process::Child, Ctrl, u16) {
    let sip_port = free_port();
    // baresip binds sip_port and sip_port + 1 (TLS) only when it starts: keep the control port off both.
    let ctrl_port = std::iter::repeat_with(free_port).find(|p| *p != sip_port && *p != sip_port + 1).unwrap();
    let dir = config_dir_on(root, name, account, ip, sip_port);
    let mut cfg = std::fs::read_to_string(dir.join("config")).unwrap();
    cfg.push_str(&format!(
        "module ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\nmodule_app menu.so\nrtp_timeout 0\n{extra}"
    ));
    std::fs::write(dir.join("config"), cfg).unwrap();
    let child = Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .args(["-t", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, Ctrl::connect(ctrl_port), sip_port)
}

#[test]
fn baresip_calls_baresip_over_udp_and_tls() {
    require("baresip");
    let d = TempDir::new("baresip-call");
    for (ext, pw) in [("1001", "Bare!sip9pw"), ("1002", "Bare!sip9pw2")] {
        cli_ok(&d.0, &["ext", "add", ext, "--secret", pw, "--algorithms", "MD5"]);
    }
    let daemon = Daemon::start(&d.0);
    for (round, (transport, target)) in [("udp", daemon.udp), ("tls", daemon.tls)].into_iter().enumerate() {
        let acc = |ext: &str, pw: &str, mode: &str| {
            format!(
                "<sip:{ext}@{target};transport={transport}>;auth_pass={pw};regint=600;answermode={mode};audio_codecs=pcmu"
            )
        };
        let (mut a_proc, mut a) = phone(&d.0, &format!("a-{transport}"), &acc("1001", "Bare!sip9pw", "manual"));
        let (mut b_proc, mut b) = phone(&d.0, &format!("b-{transport}"), &acc("1002", "Bare!sip9pw2", "auto"));
        let registered = wait_for(Duration::from_secs(15), || {
            let r = registrations(&d.0);
            let has = |e: &str| r.iter().any(|x| x["extension"] == e && x["transport"] == transport);
            (has("1001") && has("1002")).then_some(())
        });
        let result = (|| -> Result<(), String> {
            registered.ok_or("phones did not register")?;
            a.cmd("dial", &format!("sip:1002@{target};transport={transport}"));
            b.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)).ok_or("B never established the call")?;
            a.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)).ok_or("A never established the call")?;
            a.cmd("hangup", "");
            b.wait_event("CALL_CLOSED", Duration::from_secs(10)).ok_or("B never saw the hang-up")?;
            Ok(())
        })();
        for p in [&mut a_proc, &mut b_proc] {
            let _ = p.kill();
            let _ = p.wait();
        }
        if let Err(e) = result {
            panic!("{transport}: {e}; daemon log:\n{}", daemon.log());
        }
        // pbxguard logged it: answered, then ended by BYE.
        let call = wait_for(Duration::from_secs(5), || {
            let v = calls(&d.0);
            let done = v.iter().filter(|c| {
                c["caller"] == "1001"
                    && c["callee"] == "1002"
                    && c["state"] == "ended"
                    && c["status"] == 200
                    && c["answered_at"].is_i64()
            });
            (done.count() == round + 1).then_some(())
        });
        assert!(
            call.is_some(),
            "{transport}: call not logged as answered and ended: {:?}\ndaemon log:\n{}",
            calls(&d.0),
            daemon.log()
        );
    }
}

/// A baresip auto-answering as a carrier on `ip`, serving TLS with a fresh self-signed certificate for
/// that address; returns its process, control, SIP port (TLS is the next one) and certificate (PEM).
fn tls_carrier(root: &std::path::Path, name: &str, ip: &str) -> (std::process::Child, Ctrl, u16, String) {
    let ck = rcgen::generate_simple_self_signed(vec![ip.to_owned()]).unwrap();
    let cert = ck.cert.pem();
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("both.pem"), format!("{cert}{}", ck.signing_key.serialize_pem())).unwrap();
    let account = format!("<sip:5551000@{ip};transport=tls>;regint=0;answermode=auto;audio_codecs=pcmu");
    let extra = format!("sip_certificate {}\n", dir.join("both.pem").display());
    let (child, ctrl, port) = phone_on(root, name, &account, ip, &extra);
    (child, ctrl, port, cert)
}

/// A carrier reached over TLS: baresip on 127.0.0.5 serves TLS with a self-signed certificate for that
/// address, given to pbxguard with `trunk add --tls-ca`. A phone on UDP dials a national number; pbxguard
/// opens the TLS connection, verifies the certificate, and the call is answered and hung up over it.
#[test]
fn calls_reach_a_trunk_over_tls_verified_against_its_ca() {
    require("baresip");
    let d = TempDir::new("baresip-tls-trunk");
    // The carrier first, so its TLS port is known when the trunk is added.
    let (mut c_proc, mut carrier, port, cert) = tls_carrier(&d.0, "carrier", "127.0.0.5");
    // An impostor on 127.0.0.6 whose certificate nobody vouches for.
    let (mut i_proc, mut impostor, i_port, _) = tls_carrier(&d.0, "impostor", "127.0.0.6");
    let carrier_dir = d.0.join("carrier");
    std::fs::write(carrier_dir.join("ca.pem"), &cert).unwrap();
    let ca = carrier_dir.join("ca.pem").display().to_string();
    let tls_port = (port + 1).to_string();
    // Operator mistakes first: each says what is wrong and adds nothing.
    let o = cli(&d.0, &["trunk", "add", "carrier", "--host", "127.0.0.5", "--port", &tls_port, "--tls-ca", &ca]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("only applies to --transport tls"), "{o:?}");
    let not_pem = carrier_dir.join("both.pem.txt");
    std::fs::write(&not_pem, "hello").unwrap();
    let o = cli(
        &d.0,
        &["trunk", "add", "carrier", "--host", "127.0.0.5", "--port", &tls_port, "--transport", "tls", "--tls-ca"],
    );
    assert!(!o.status.success());
    let o = cli(
        &d.0,
        &[
            "trunk",
            "add",
            "carrier",
            "--host",
            "127.0.0.5",
            "--port",
            &tls_port,
            "--transport",
            "tls",
            "--tls-ca",
            not_pem.to_str().unwrap(),
        ],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("no certificate in it"), "{o:?}");
    cli_ok(
        &d.0,
        &["trunk", "add", "carrier", "--host", "127.0.0.5", "--port", &tls_port, "--transport", "tls", "--tls-ca", &ca],
    );
    assert!(cli_ok(&d.0, &["trunk", "list"]).contains("tls (own CA)"));
    cli_ok(&d.0, &["route", "add", "_NXXNXXXXXX", "--trunk", "carrier", "--strip", "10", "--prepend", "5551000"]);
    // A trunk trusting only the public roots: the impostor's certificate must be refused, and the call
    // must fail at once (503), not after Timer B's 32 s.
    let i_tls = (i_port + 1).to_string();
    cli_ok(&d.0, &["trunk", "add", "unverified", "--host", "127.0.0.6", "--port", &i_tls, "--transport", "tls"]);
    cli_ok(&d.0, &["route", "add", "_1NXXNXXXXXX", "--trunk", "unverified", "--strip", "11", "--prepend", "5551000"]);
    cli_ok(&d.0, &["ext", "add", "1001", "--secret", "Bare!sip9pw", "--algorithms", "MD5"]);
    let daemon = Daemon::start(&d.0);
    let target = daemon.udp;
    let (mut a_proc, mut a) = phone(
        &d.0,
        "caller",
        &format!(
            "<sip:1001@{target};transport=udp>;auth_pass=Bare!sip9pw;regint=600;answermode=manual;audio_codecs=pcmu"
        ),
    );
    let result = (|| -> Result<(), String> {
        wait_for(Duration::from_secs(15), || {
            registrations(&d.0).iter().any(|r| r["extension"] == "1001").then_some(())
        })
        .ok_or("the caller did not register")?;
        a.cmd("dial", &format!("sip:2125551234@{target}"));
        carrier.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)).ok_or("the carrier never answered")?;
        a.wait_event("CALL_ESTABLISHED", Duration::from_secs(10)).ok_or("the caller never established the call")?;
        a.cmd("hangup", "");
        carrier.wait_event("CALL_CLOSED", Duration::from_secs(10)).ok_or("the carrier never saw the hang-up")?;
        a.wait_event("CALL_CLOSED", Duration::from_secs(10)).ok_or("the caller never closed the call")?;
        let started = std::time::Instant::now();
        a.cmd("dial", &format!("sip:12125551234@{target}"));
        let closed = a.wait_event("CALL_CLOSED", Duration::from_secs(10)).ok_or("the refused call never closed")?;
        if !closed.to_string().contains("503") || started.elapsed() > Duration::from_secs(5) {
            return Err(format!("expected a prompt 503, got {closed} after {:?}", started.elapsed()));
        }
        if impostor.wait_event("CALL_INCOMING", Duration::from_millis(500)).is_some() {
            return Err("the call reached the impostor".into());
        }
        Ok(())
    })();
    for p in [&mut a_proc, &mut c_proc, &mut i_proc] {
        let _ = p.kill();
        let _ = p.wait();
    }
    if let Err(e) = result {
        panic!("{e}; daemon log:\n{}", daemon.log());
    }
    let call = wait_for(Duration::from_secs(5), || {
        calls(&d.0).into_iter().find(|c| c["trunk"] == "carrier" && c["state"] == "ended" && c["answered_at"].is_i64())
    });
    assert!(call.is_some(), "{:?}", calls(&d.0));
    assert!(daemon.log().contains("TLS handshake with a trunk failed"), "{}", daemon.log());
    let refused = wait_for(Duration::from_secs(5), || {
        calls(&d.0).into_iter().find(|c| c["trunk"] == "unverified" && c["status"] == 503)
    });
    assert!(refused.is_some(), "{:?}", calls(&d.0));
}
