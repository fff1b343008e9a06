//! The SSH guard's sshd log parser on arbitrary bytes, fed to a shield as the daemon does: no panic,
//! and whatever it reads names an address that appears in the line (sshd's, not an invented one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbxguard_shield::{Service, Shield, ShieldConfig, ssh};
use std::sync::{Mutex, OnceLock};

fn shield() -> &'static Mutex<Shield> {
    static S: OnceLock<Mutex<Shield>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(Shield::new(ShieldConfig { tracker_cap: 1_000, max_bans: 1_000, ..Default::default() })))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ssh::message(&text);
    let Some(line) = ssh::parse(&text) else { return };
    if let Some(user) = line.user {
        assert!(text.contains(user));
    }
    if let Some(obs) = line.observation() {
        let mut sh = shield().lock().unwrap();
        sh.observe_on(1_800_000_000_000, Service::Ssh, obs);
        while sh.poll_decision().is_some() {}
    }
});
