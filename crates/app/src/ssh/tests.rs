use super::*;
use std::cell::RefCell;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("pbxguard-ssh-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sshd_config.d")).unwrap();
        Self(d)
    }

    fn paths(&self, main: &str) -> SshPaths {
        let config = self.0.join("sshd_config");
        std::fs::write(&config, main.replace("@D@", &self.0.display().to_string())).unwrap();
        SshPaths {
            sshd: "/usr/sbin/sshd".into(),
            config,
            dropin: self.0.join("sshd_config.d/pbxguard.conf"),
            pid_file: self.0.join("sshd.pid"),
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// sshd as the operation sees it: what it answers, and what was asked of it.
#[derive(Default)]
struct FakeSshd {
    refuse: Option<String>,
    busy: Vec<u16>,
    reloads: RefCell<u32>,
}

impl Sshd for FakeSshd {
    fn test(&self, _: &SshPaths) -> std::result::Result<(), String> {
        self.refuse.clone().map_or(Ok(()), Err)
    }
    fn reload(&self, _: &SshPaths) -> std::result::Result<(), String> {
        *self.reloads.borrow_mut() += 1;
        Ok(())
    }
    fn port_in_use(&self, port: u16) -> bool {
        self.busy.contains(&port)
    }
}

const DEBIAN: &str = "Include @D@/sshd_config.d/*.conf\n#Port 22\nKbdInteractiveAuthentication no\nUsePAM yes\nMatch User anoncvs\n\tPasswordAuthentication no\n";

#[test]
fn debian_defaults_read_as_sshd_would() {
    let d = Dir::new("defaults");
    let p = d.paths(DEBIAN);
    let f = effective(&p).unwrap();
    assert_eq!(f.ports, vec![22]);
    assert_eq!((f.root_login.as_str(), f.password_auth, f.allowed.as_ref()), ("prohibit-password", true, None));
    assert!(f.ports_set_elsewhere.is_empty());
}

#[test]
fn includes_first_values_and_allow_users_accumulate() {
    let d = Dir::new("include");
    std::fs::write(d.0.join("sshd_config.d/10-a.conf"), "PermitRootLogin no\nAllowUsers *@10.1.0.0/16\n").unwrap();
    std::fs::write(d.0.join("sshd_config.d/20-b.conf"), "PermitRootLogin yes\nAllowUsers ops@192.0.2.7\n").unwrap();
    std::fs::write(d.0.join("sshd_config.d/x.disabled"), "Port 1\n").unwrap();
    let p = d.paths(
        &format!("{DEBIAN}PasswordAuthentication=no\n")
            .replace("Match User anoncvs\n\tPasswordAuthentication no\n", "PasswordAuthentication no\nPort 2200\n"),
    );
    let f = effective(&p).unwrap();
    assert_eq!(f.root_login, "no", "the first value read wins");
    assert!(!f.password_auth);
    assert_eq!(f.ports, vec![2200]);
    assert_eq!(f.ports_set_elsewhere, vec![format!("{}:6", p.config.display())]);
    let allowed: Vec<String> = f.allowed.unwrap().iter().map(|p| p.to_string()).collect();
    assert_eq!(allowed, ["10.1.0.0/16", "192.0.2.7"]);
    // A user allowed from anywhere, or from a host name, opens SSH to everyone.
    std::fs::write(d.0.join("sshd_config.d/30-c.conf"), "AllowUsers backup@*.example.com\n").unwrap();
    let f = effective(&p).unwrap();
    assert_eq!((f.allowed, f.unresolved_allow), (None, vec!["*.example.com".to_owned()]));
}

#[test]
fn a_port_change_keeps_both_ports_until_confirmed() {
    let d = Dir::new("port");
    let p = d.paths(DEBIAN);
    let sshd = FakeSshd::default();
    let change = Change { port: Some(2222), allow: vec!["10.20.0.0/24".into()], ..Default::default() };
    let a = set(&p, &change, None, &sshd).unwrap();
    assert_eq!((a.before.ports.clone(), a.after.ports.clone()), (vec![22], vec![2222, 22]));
    assert_eq!(a.after.pending_old_port, Some(22));
    assert_eq!(a.after.allowed.unwrap()[0].to_string(), "10.20.0.0/24");
    let text = std::fs::read_to_string(&p.dropin).unwrap();
    assert!(text.contains("Port 2222\nPort 22\n") && text.contains("AllowUsers *@10.20.0.0/24\n"), "{text}");
    // Another port before confirming is refused; the same one again is fine.
    let e = set(&p, &Change { port: Some(2200), ..Default::default() }, None, &sshd).unwrap_err();
    assert!(e.to_string().contains("waiting for `pbxguard ssh confirm`"), "{e}");
    set(&p, &Change { password_auth: Some("no".into()), ..Default::default() }, None, &sshd).unwrap();
    let a = confirm(&p, &sshd).unwrap();
    assert_eq!((a.after.ports, a.after.pending_old_port, a.after.password_auth), (vec![2222], None, false));
    assert_eq!(*sshd.reloads.borrow(), 3);
    assert!(matches!(confirm(&p, &sshd), Err(crate::Error::NotFound(_))));
}

#[test]
fn an_invalid_change_changes_nothing_and_says_why() {
    let d = Dir::new("invalid");
    let p = d.paths(DEBIAN);
    std::fs::write(&p.dropin, "Port 2222\n").unwrap();
    let before = std::fs::read_to_string(&p.dropin).unwrap();
    let ok = FakeSshd { busy: vec![8080], ..Default::default() };
    let cases: Vec<(Change, Option<IpAddr>, &str)> = vec![
        (Change::default(), None, "nothing to change"),
        (Change { port: Some(8080), ..Default::default() }, None, "port 8080 is already in use"),
        (Change { port: Some(0), ..Default::default() }, None, "expected a port from 1 to 65535"),
        (Change { allow: vec!["10.0.0.1/8".into()], ..Default::default() }, None, "did you mean 10.0.0.0/8?"),
        (Change { allow: vec!["10.0.0.0/33".into()], ..Default::default() }, None, "too long"),
        (
            Change { allow: vec!["10.1.0.0/16".into()], ..Default::default() },
            Some("192.0.2.9".parse().unwrap()),
            "lock you out",
        ),
        (Change { root_login: Some("yes".into()), ..Default::default() }, None, "expected no or prohibit-password"),
        (Change { password_auth: Some("maybe".into()), ..Default::default() }, None, "expected yes or no"),
    ];
    for (change, admin, want) in cases {
        let e = set(&p, &change, admin, &ok).unwrap_err().to_string();
        assert!(e.contains(want), "{change:?}: {e}");
        assert_eq!(std::fs::read_to_string(&p.dropin).unwrap(), before);
    }
    let refusing = FakeSshd { refuse: Some("line 2: Bad configuration option: Foo".into()), ..Default::default() };
    let e = set(&p, &Change { password_auth: Some("no".into()), ..Default::default() }, None, &refusing).unwrap_err();
    assert!(e.to_string().contains("sshd refused the change, nothing was changed: line 2"), "{e}");
    assert_eq!(std::fs::read_to_string(&p.dropin).unwrap(), before);
    assert_eq!(*refusing.reloads.borrow(), 0);
}

#[test]
fn a_value_another_file_sets_first_is_refused() {
    let d = Dir::new("shadowed");
    let p = d.paths(&format!("PermitRootLogin yes\n{DEBIAN}"));
    let e = set(&p, &Change { root_login: Some("no".into()), ..Default::default() }, None, &FakeSshd::default())
        .unwrap_err();
    assert!(e.to_string().contains("sshd would not apply PermitRootLogin no (sshd keeps yes)"), "{e}");
    assert!(!p.dropin.exists());
}

#[test]
fn the_dropin_reads_back_as_written() {
    let d = DropIn {
        port: Some(2222),
        old_port: Some(22),
        allow: vec![Prefix::parse_strict("10.0.0.0/8").unwrap(), Prefix::parse_strict("2001:db8::/32").unwrap()],
        root_login: Some("no".into()),
        password_auth: Some(false),
    };
    assert_eq!(DropIn::parse(&d.render()), d);
    assert_eq!(DropIn::parse(&DropIn::default().render()), DropIn::default());
}

#[test]
fn log_sources() {
    assert_eq!(parse_log_sources("auto"), Ok(None));
    assert_eq!(
        parse_log_sources("/var/log/auth.log, journald"),
        Ok(Some(vec![LogSource::File("/var/log/auth.log".into()), LogSource::Journald]))
    );
    for bad in ["", "auth.log", "/a,/a", "journald,auto"] {
        assert!(parse_log_sources(bad).unwrap_err().contains("expected"), "{bad}");
    }
}

#[test]
fn listen_addresses_with_a_port_open_that_port() {
    let d = Dir::new("listen");
    std::fs::write(d.0.join("sshd_config.d/10-a.conf"), "Port 2222\n").unwrap();
    let p = d.paths(
        &format!(
            "{DEBIAN}Port 22\nListenAddress 192.0.2.1:2200\nListenAddress [2001:db8::1]:2201\nListenAddress ::1\n"
        )
        .replace("Match User anoncvs\n\tPasswordAuthentication no\n", ""),
    );
    let mut ports = effective(&p).unwrap().ports;
    ports.sort_unstable();
    assert_eq!(ports, [22, 2200, 2201, 2222]);
}
