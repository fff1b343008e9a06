#!/usr/bin/env python3
"""Admin GUI and API under load (issue 13): with 10,000 extensions and 100,000 security events in the
store, each page or API list is hit by 50 concurrent clients (wrk, closed loop: 50 connections, each
sending its next request when the last is answered) for --dur seconds, after one second of a single
client (the dashboard's shared summary is computed at its first view); p50/p99 and requests/s. The
floor is a static file served through the same TLS stack and router (the job minus the page's work).

Then the cost to SIP: p99 of authenticated REGISTER exchanges (REGISTER -> 401 -> REGISTER+digest ->
200, own timestamps, one exchange at a time at --reg-rate/s) alone, and again while wrk loads the
extensions page (the costliest per request).

Usage: bench/gui_load.py [--dur 10] [--conns 50] [--reg-rate 200] [--work /tmp/pbxguard-guibench] [--only /]
Needs: wrk (apt), sqlite3, a release build. Reuses the 10,000 benchmark extensions of the other
benchmarks (bench/common.py) when they exist.
"""
import argparse, hashlib, json, os, re, shutil, socket, ssl, subprocess, sys, threading, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BIN, Pbxguard, free_port, users  # noqa: E402

PASSWORD = "Bench-Gui-Load-2026!"


def prepare(work):
    data = os.path.join(work, "data")
    if os.path.exists(os.path.join(data, "ready")):
        return data
    shutil.rmtree(data, ignore_errors=True)
    # The 10,000 extensions of the other benchmarks, made once (slow), copied from there.
    seed = Pbxguard("/tmp/pbxguard-bench", 10000, free_port())
    os.makedirs(data)
    subprocess.run(["sqlite3", os.path.join(seed.data, "pbxguard.db"), f".backup {data}/pbxguard.db"], check=True)
    now = int(time.time() * 1000)
    kinds = ["scanner", "auth-failed", "unknown-user", "flood", "malformed", "acl-denied"]
    sql = f"""
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
    INSERT INTO events (at_ms, kind, source, user, detail)
    SELECT {now} - (100000 - i) * 800,
           CASE i % 6 {' '.join(f"WHEN {k} THEN '{v}'" for k, v in enumerate(kinds))} END,
           '198.51.' || (i % 200) || '.' || (i % 250), printf('%d', 1000 + i % 500),
           'user-agent: friendly-scanner ' || (i % 7)
    FROM n;"""
    subprocess.run(["sqlite3", os.path.join(data, "pbxguard.db"), sql], check=True)
    env = dict(os.environ, PBXGUARD_DATA=data)
    subprocess.run([BIN, "admin", "passwd", "admin", "--password", PASSWORD], env=env, check=True, capture_output=True)
    open(os.path.join(data, "ready"), "w").close()
    return data


def start(data, sip_port):
    for f in ("listen.json",):
        try:
            os.unlink(os.path.join(data, f))
        except FileNotFoundError:
            pass
    proc = subprocess.Popen([BIN, "--data", data, "run", "--sip-udp", f"127.0.0.1:{sip_port}", "--sip-tcp", "off",
                             "--sip-tls", "off", "--gui", "127.0.0.1:0"],
                            stderr=open(os.path.join(data, "..", "daemon.log"), "a"))
    for _ in range(200):
        try:
            return proc, json.load(open(os.path.join(data, "listen.json")))["gui"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            time.sleep(0.05)
    raise SystemExit("daemon did not start")


def login(gui):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a):
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), NoRedirect)
    body = f"user=admin&password={PASSWORD}".encode()
    try:
        opener.open(f"https://{gui}/login", data=body)
    except urllib.error.HTTPError as e:  # the 303 after a good login
        return e.headers["set-cookie"].split(";")[0]
    raise SystemExit("login did not redirect")


def wrk(url, cookie, dur, conns):
    # wrk refuses fewer connections than threads (and then measures nothing, silently).
    out = subprocess.run(["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{dur}s", "--latency", "-H", f"Cookie: {cookie}", url],
                         capture_output=True, text=True).stdout
    pct = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"p50": pct.get("50"), "p99": pct.get("99"), "rps": float(rps.group(1)) if rps else 0.0,
            "non2xx": int(bad.group(1)) if bad else 0}


def register_p99(port, rate, dur):
    """p50/p99 in ms of whole authenticated REGISTER exchanges, one at a time."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    me = sock.getsockname()[1]
    rtts, us, k = [], users(10000), 0
    end = time.monotonic() + dur
    while time.monotonic() < end:
        t_next = time.monotonic() + 1 / rate
        u, p = us[k % len(us)]
        k += 1
        call = f"gl{k}-{me}"

        def req(cseq, auth=""):
            return (f"REGISTER sip:bench SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{call}{cseq};rport\r\n"
                    f"Max-Forwards: 70\r\nFrom: <sip:{u}@bench>;tag={call}\r\nTo: <sip:{u}@bench>\r\nCall-ID: {call}\r\n"
                    f"CSeq: {cseq} REGISTER\r\nContact: <sip:{u}@127.0.0.1:{me}>\r\nExpires: 300\r\n{auth}"
                    f"Content-Length: 0\r\n\r\n").encode()

        t0 = time.perf_counter()
        try:
            sock.sendto(req(1), ("127.0.0.1", port))
            r = sock.recv(4096).decode(errors="replace")
            nonce = re.search(r'WWW-Authenticate: Digest [^\r]*?nonce="([^"]+)"', r).group(1)
            ha1 = hashlib.md5(f"{u}:bench:{p}".encode()).hexdigest()
            ha2 = hashlib.md5(b"REGISTER:sip:bench").hexdigest()
            resp = hashlib.md5(f"{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}".encode()).hexdigest()
            auth = (f'Authorization: Digest username="{u}", realm="bench", nonce="{nonce}", uri="sip:bench", '
                    f'response="{resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"\r\n')
            sock.sendto(req(2, auth), ("127.0.0.1", port))
            r = sock.recv(4096).decode(errors="replace")
            if r.startswith("SIP/2.0 200"):
                rtts.append((time.perf_counter() - t0) * 1000)
        except (socket.timeout, AttributeError):
            pass
        time.sleep(max(0.0, t_next - time.monotonic()))
    rtts.sort()
    pct = lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))] if rtts else float("nan")
    return len(rtts), k, pct(0.5), pct(0.99)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dur", type=int, default=10)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--reg-rate", type=int, default=200)
    ap.add_argument("--work", default="/tmp/pbxguard-guibench")
    ap.add_argument("--only", help="one path (such as /), without the REGISTER part")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    data = prepare(a.work)
    sip_port = free_port()
    proc, gui = start(data, sip_port)
    try:
        cookie = login(gui)
        targets = [("floor: /static/app.css", "/static/app.css"), ("dashboard /", "/"), ("events page", "/events"),
                   ("extensions page", "/extensions"), ("API extensions", "/api/v1/extensions"),
                   ("API events", "/api/v1/events")]
        print(f"| target | req/s | p50 | p99 | non-2xx |  ({a.conns} connections, {a.dur} s each, load {os.getloadavg()[0]:.1f})")
        print("| --- | --- | --- | --- | --- |")
        if a.only:
            targets = [t for t in targets if t[1] == a.only] or [(a.only, a.only)]
        for name, path in targets:
            # One client for a second first: the dashboard's shared summary is computed once, at the
            # first view, and cached; the table is about the steady state.
            wrk(f"https://{gui}{path}", cookie, 1, 1)
            r = wrk(f"https://{gui}{path}", cookie, a.dur, a.conns)
            print(f"| {name} | {r['rps']:.0f} | {r['p50']} | {r['p99']} | {r['non2xx']} |", flush=True)
        if a.only:
            return
        alone = register_p99(sip_port, a.reg_rate, a.dur)
        loaded = {}
        t = threading.Thread(target=lambda: loaded.update(wrk(f"https://{gui}/extensions", cookie, a.dur + 2, a.conns)))
        t.start()
        time.sleep(1)
        busy = register_p99(sip_port, a.reg_rate, a.dur)
        t.join()
        print()
        print("| REGISTER exchanges | done/sent | p50 ms | p99 ms |")
        print("| --- | --- | --- | --- |")
        print(f"| alone | {alone[0]}/{alone[1]} | {alone[2]:.2f} | {alone[3]:.2f} |")
        print(f"| with the extensions page (the costliest) under {a.conns} clients ({loaded.get('rps', 0):.0f} req/s) | {busy[0]}/{busy[1]} "
              f"| {busy[2]:.2f} | {busy[3]:.2f} |")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
