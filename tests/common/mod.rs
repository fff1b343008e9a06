//! Shared harness for end-to-end tests: a real `pbxguard` daemon in its own data directory on
//! loopback ports picked by the kernel, plus the CLI against the same data.
#![allow(dead_code, unreachable_pub)]

use pbxguard_sip::{Algorithm, ha1};
use std::net::{SocketAddr, UdpSocket};
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

/// The calls log (`calls list --json`), calls in progress first.
pub fn calls(data: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&cli_ok(data, &["calls", "list", "--json", "--last", "5000"])).unwrap()
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
    /// Every bound address, when extra listeners were asked for.
    pub udp_all: Vec<SocketAddr>,
    pub tcp_all: Vec<SocketAddr>,
    /// The admin GUI's HTTPS address.
    pub gui: SocketAddr,
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
            .args(["--gui", "127.0.0.1:0"])
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
        let all =
            |k: &str| listen[k].as_array().unwrap().iter().map(|a| a.as_str().unwrap().parse().unwrap()).collect();
        Self {
            child: Some(child),
            data: data.to_owned(),
            udp: addr("udp"),
            tcp: addr("tcp"),
            tls: addr("tls"),
            udp_all: all("udp"),
            tcp_all: all("tcp"),
            gui: listen["gui"].as_str().unwrap().parse().unwrap(),
            log,
        }
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

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // A failing test shows what the daemon said, and whether it had died: a flaky end-to-end
            // failure on CI is otherwise undiagnosable.
            if std::thread::panicking() {
                let status = c.try_wait().ok().flatten();
                eprintln!(
                    "--- daemon (pid {}, {}) log {}:\n{}--- end of daemon log",
                    c.id(),
                    status.map_or("still running".to_string(), |s| format!("exited: {s}")),
                    self.log.display(),
                    tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 16_000)
                );
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The last `max` bytes of `text`, from a line start.
fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let cut = text.len() - max;
    let start = text.as_bytes()[cut..].iter().position(|&b| b == b'\n').map_or(cut, |i| cut + i + 1);
    text.get(start..).unwrap_or("")
}

/// Fails the test with a clear message when a peer program the suite relies on is missing. The README's
/// test command installs them; a silent skip would hide a broken CI machine.
pub fn require(program: &str) {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file())).unwrap_or(false);
    assert!(found, "{program} is not installed; run the README's test command (scripts/test.sh), which installs it");
}

/// Status code of a response.
pub fn status(reply: &[u8]) -> u16 {
    use pbxguard_sip::{Limits, Message, StartLine};
    match Message::parse(reply, &Limits::default()).expect("reply parses").start {
        StartLine::Response { code, .. } => code,
        StartLine::Request { .. } => panic!("request instead of response"),
    }
}

/// One UDP exchange; `None` when nothing comes back within the socket's read timeout.
pub fn exchange(sock: &UdpSocket, to: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    sock.send_to(msg, to).unwrap();
    let mut buf = vec![0u8; 65_535];
    sock.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
}

pub fn register(sock: &UdpSocket, to: SocketAddr, user: &str, extra: &str) -> Vec<u8> {
    // Every transaction needs its own branch (or the server rightly answers from its transaction cache)
    // and a higher CSeq within the Call-ID (or the registrar refuses it as out of order).
    static BRANCH: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let cseq = BRANCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let local = sock.local_addr().unwrap();
    let msg = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch=z9hG4bK{user}x{cseq}\r\nMax-Forwards: 70\r\n\
         From: <sip:{user}@127.0.0.1>;tag=t{cseq}\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: reg-{user}-{}\r\nCSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@{local}>\r\nExpires: 600\r\n{extra}Content-Length: 0\r\n\r\n",
        local.port()
    );
    exchange(sock, to, msg.as_bytes()).unwrap_or_default()
}

/// Registers `user` over UDP with digest authentication (MD5); returns the final status.
pub fn digest_register(sock: &UdpSocket, to: SocketAddr, realm: &str, user: &str, pw: &str) -> u16 {
    let ch = String::from_utf8(register(sock, to, user, "")).unwrap();
    assert_eq!(status(ch.as_bytes()), 401, "{ch}");
    let nonce = ch.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap();
    let uri = "sip:127.0.0.1";
    let h1 = ha1(Algorithm::Md5, user, realm, pw);
    let ha2 = Algorithm::Md5.hash(&[b"REGISTER", uri.as_bytes()]);
    let resp = Algorithm::Md5.hash(&[h1.as_bytes(), nonce.as_bytes(), b"00000001", b"abc", b"auth", ha2.as_bytes()]);
    let auth = format!(
        "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"abc\"\r\n"
    );
    status(&register(sock, to, user, &auth))
}

/// A tiny HTTP/1.1 server on 127.0.0.1 for blacklist downloads and attacker reports: answers each
/// request with the next scripted (status, body) (the last one repeats) and records the requests.
pub struct HttpServer {
    pub addr: SocketAddr,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl HttpServer {
    pub fn start(script: Vec<(u16, String)>) -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for (i, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                head.push_str(&String::from_utf8_lossy(&body));
                log.lock().unwrap().push(head);
                let (status, body) = script.get(i).or(script.last()).cloned().unwrap_or((200, String::new()));
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { addr, requests }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A TCP connection to `to` from the loopback address `from` (attack tests send from their own address).
pub fn tcp_from(from: &str, to: SocketAddr) -> std::net::TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(from.parse().unwrap(), 0).into()).unwrap();
    sock.connect(&to.into()).unwrap();
    sock.into()
}

/// The kernel side of the firewall in the shape `pbxguard firewall apply` loads (sets of `inet pbxguard`;
/// banned and blacklisted sources dropped in prerouting, before conntrack), without the service rules:
/// for tests of the enforcer and the SSH guard that must not depend on the ruleset's policy.
pub const NFT_FIXTURE: &str = r#"table inet pbxguard {
	set trusted4 { type ipv4_addr; flags interval; }
	set trusted6 { type ipv6_addr; flags interval; }
	set banned4 { type ipv4_addr; flags interval, timeout; }
	set banned6 { type ipv6_addr; flags interval, timeout; }
	set blacklist4 { type ipv4_addr; flags interval; }
	set blacklist6 { type ipv6_addr; flags interval; }
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		iif "lo" accept
		ip saddr @trusted4 accept
		ip6 saddr @trusted6 accept
		ip saddr @banned4 counter drop comment "banned"
		ip6 saddr @banned6 counter drop comment "banned"
		ip saddr @blacklist4 counter drop comment "blacklisted"
		ip6 saddr @blacklist6 counter drop comment "blacklisted"
	}
}
"#;

/// An HTTPS client for the admin GUI and API: it accepts the daemon's self-signed certificate, never
/// follows redirects (tests look at them) and hands every status back as a response, not an error.
pub fn https_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(ureq::tls::TlsConfig::builder().disable_verification(true).build())
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// The admin password the GUI tests change the first-login password to.
pub const ADMIN_PASSWORD: &str = "Gui-Pages-0f-Entropy!";

/// The value of the first `name="NAME" value="..."` on a page (a form field).
pub fn field<'a>(page: &'a str, name: &str) -> &'a str {
    let marker = format!("name=\"{name}\" value=\"");
    page.split(marker.as_str())
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {page}"))
}

/// A logged-in admin session of the GUI (the forced first password change done).
pub struct Admin {
    pub base: String,
    pub agent: ureq::Agent,
    pub cookie: String,
    pub csrf: String,
}

impl Admin {
    /// Logs in as the first-run `admin`/`admin` and changes the password to `ADMIN_PASSWORD`.
    pub fn login(daemon: &Daemon) -> Self {
        let base = format!("https://{}", daemon.gui);
        let agent = https_agent();
        let r = agent.post(format!("{base}/login")).send_form([("user", "admin"), ("password", "admin")]).unwrap();
        assert_eq!(r.status(), 303);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let page = agent.get(format!("{base}/password")).header("cookie", &cookie).call().unwrap();
        let page = page.into_body().read_to_string().unwrap();
        let csrf = field(&page, "csrf").to_owned();
        let r = agent
            .post(format!("{base}/password"))
            .header("cookie", &cookie)
            .send_form([("csrf", csrf.as_str()), ("new", ADMIN_PASSWORD), ("confirm", ADMIN_PASSWORD)])
            .unwrap();
        assert_eq!(r.status(), 303, "the forced password change failed");
        Self { base, agent, cookie, csrf }
    }

    /// GETs a page with the session; returns the status and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let r = self.agent.get(format!("{}{path}", self.base)).header("cookie", &self.cookie).call().unwrap();
        (r.status().as_u16(), r.into_body().read_to_string().unwrap())
    }

    /// Posts a form with the CSRF token; returns the status, the redirect target and the body.
    pub fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(form);
        let r = self.agent.post(format!("{}{path}", self.base)).header("cookie", &self.cookie).send_form(all).unwrap();
        let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
        (r.status().as_u16(), location, r.into_body().read_to_string().unwrap())
    }
}

/// A client of the REST API (`/api/v1/...`) of a running daemon, with a Bearer token or none.
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) agent: ureq::Agent,
}

impl Api {
    pub(crate) fn new(d: &Daemon) -> Self {
        Self { base: format!("https://{}", d.gui), agent: https_agent() }
    }

    /// One request; returns the status and the body as JSON (a body that is not JSON as a string).
    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let r = match (method, body) {
            ("GET", _) => {
                let mut rq = self.agent.get(&url);
                if let Some(a) = &auth {
                    rq = rq.header("authorization", a);
                }
                rq.call()
            }
            ("DELETE", _) => {
                let mut rq = self.agent.delete(&url);
                if let Some(a) = &auth {
                    rq = rq.header("authorization", a);
                }
                rq.call()
            }
            (m, body) => {
                let mut rq = match m {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    "PATCH" => self.agent.patch(&url),
                    other => panic!("method {other}"),
                };
                if let Some(a) = &auth {
                    rq = rq.header("authorization", a);
                }
                rq.header("content-type", "application/json").send(body.unwrap_or(serde_json::json!({})).to_string())
            }
        }
        .unwrap();
        let status = r.status().as_u16();
        let text = r.into_body().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }
}

/// Makes an API token with the CLI (`token add NAME --scope SCOPE`); returns it.
pub(crate) fn token(data: &Path, name: &str, scope: &str) -> String {
    let out = cli_ok(data, &["token", "add", name, "--scope", scope]);
    let t = out.lines().last().unwrap().trim().to_owned();
    assert!(t.starts_with("pbxg_"), "{out}");
    t
}
