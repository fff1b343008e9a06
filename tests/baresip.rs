//! A real softphone (baresip) registers over UDP and over TLS, and its binding shows in `reg list`.
//!
//! baresip 1.0.0 (libre 1.1.0, Debian 12) fails the whole registration with "Function not implemented"
//! when any challenge names an algorithm it lacks, so its extension offers MD5 only.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn config_dir(root: &std::path::Path, name: &str, account: &str, sip_port: u16) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\naudio_player alsa,null\n\
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
