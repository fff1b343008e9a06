//! Shared harness for end-to-end tests: a real `pbxguard` daemon in its own data directory on
//! loopback ports picked by the kernel, plus the CLI against the same data.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_pbxguard");

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "pbxguard-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn cli(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN).arg("--data").arg(data).args(args).env_remove("PBXGUARD_DATA").output().expect("run pbxguard")
}

/// Runs a CLI command that must succeed; returns its stdout.
pub fn cli_ok(data: &Path, args: &[&str]) -> String {
    let o = cli(data, args);
    assert!(
        o.status.success(),
        "pbxguard {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

pub fn registrations(data: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&cli_ok(data, &["reg", "list", "--json"])).unwrap()
}

pub struct Daemon {
    child: Option<Child>,
    pub data: PathBuf,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub tls: SocketAddr,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts the daemon on 127.0.0.1 with kernel-chosen ports and waits until it is listening.
    pub fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Self {
        let _ = std::fs::remove_file(data.join("listen.json"));
        let log = data.with_extension(format!(
            "log{}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .args(["run", "--sip-udp", "127.0.0.1:0", "--sip-tcp", "127.0.0.1:0", "--sip-tls", "127.0.0.1:0"])
            .args(extra)
            .env_remove("PBXGUARD_DATA")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start pbxguard");
        let pid = child.id();
        let listen = wait_for(Duration::from_secs(20), || {
            let text = std::fs::read_to_string(data.join("listen.json")).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            (v["pid"] == pid).then_some(v)
        })
        .unwrap_or_else(|| panic!("daemon did not start: {}", std::fs::read_to_string(&log).unwrap_or_default()));
        let addr = |k: &str| listen[k][0].as_str().unwrap().parse().unwrap();
        Self { child: Some(child), data: data.to_owned(), udp: addr("udp"), tcp: addr("tcp"), tls: addr("tls"), log }
    }

    /// Stops with SIGTERM (a clean shutdown that flushes pending writes) and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Fails the test with a clear message when a peer program the suite relies on is missing. The README's
/// test command installs them; a silent skip would hide a broken CI machine.
pub fn require(program: &str) {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file())).unwrap_or(false);
    assert!(found, "{program} is not installed; run the README's test command (scripts/test.sh), which installs it");
}
