#!/usr/bin/env python3
"""Connections benchmark (issue 15), two parts, each run side by side in one invocation.

1. Idle memory: N TLS connections from N addresses (127.3/16), each registered with digest (so
   authenticated, like TLS keep-alive phones), then left idle; the daemon's RSS per connection from
   /proc/PID/status (VmRSS after minus before, divided by N), after a settle of 12 s (the allocator gives
   memory back after 10 s). Side by side: this build; the same with plain TCP connections (the floor: no
   TLS state); and, with --before BIN, another build (the code before this change) doing the TLS run.
2. Attack connections: --rate connections per second opened and closed from 2,000 addresses (127.4/16,
   25 per address per 10 s: under the per-source limits, so each is fully accepted), while --phones
   registered TCP phones (127.5/16) refresh every 5 s over their own connections. The daemon's CPU
   (utime+stime of all its threads) with the phones alone and with the attack added; refresh failures.

Usage: bench/conns.py [--idle 10000] [--rate 5000] [--dur 10] [--phones 1000] [--before BIN]
Needs a release build (cargo build --release); run as root or with a high enough `ulimit -n` hard limit.
"""
import argparse, asyncio, hashlib, json, multiprocessing, os, resource, shutil, signal, socket, ssl, subprocess
import sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BIN, HZ, ticks  # noqa: E402

USER, SECRET, REALM = "1001", "Bench!conn9x", "bench"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def source(rng, i):
    return f"127.{rng}.{i // 250}.{i % 250 + 1}"


class Daemon:
    n = 0

    def __init__(self, binary, work):
        Daemon.n += 1
        self.bin, self.data = binary, os.path.join(work, f"data{Daemon.n}")
        env = dict(os.environ, PBXGUARD_DATA=self.data)
        env.pop("RUST_LOG", None)
        run = lambda *a: subprocess.run([binary, "--data", self.data, *a], env=env, check=True, capture_output=True)
        os.makedirs(self.data)
        run("settings", "set", "sip.realm", REALM)
        run("ext", "add", USER, "--secret", SECRET, "--algorithms", "MD5")
        self.proc = subprocess.Popen([binary, "--data", self.data, "run", "--sip-udp", "off", "--sip-tcp",
                                      "127.0.0.1:0", "--sip-tls", "127.0.0.1:0"], env=env,
                                     stderr=open(self.data + ".log", "w"))
        path = os.path.join(self.data, "listen.json")
        for _ in range(400):
            if os.path.exists(path):
                break
            time.sleep(0.05)
        listen = json.load(open(path))
        self.tcp, self.tls = tuple(listen["tcp"][0].rsplit(":", 1)), tuple(listen["tls"][0].rsplit(":", 1))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def register(src, port, cseq, call_id, transport, auth=""):
    return (f"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {src}:{port};branch=z9hG4bK{call_id}{cseq}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{USER}@127.0.0.1>;tag={call_id}\r\nTo: <sip:{USER}@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{USER}@{src}:{port};transport={transport.lower()}>\r\n"
            f"Expires: 3600\r\n{auth}Content-Length: 0\r\n\r\n").encode()


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


async def response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    return head.decode(errors="replace")


async def digest_register(reader, writer, src, port, cseq, call_id, transport):
    """REGISTER, 401, REGISTER with the answer; returns (final status, next CSeq)."""
    writer.write(register(src, port, cseq, call_id, transport))
    ch = await response(reader)
    if " 401 " not in ch.split("\r\n", 1)[0]:
        return int(ch.split()[1]), cseq + 1
    nonce = ch.split('nonce="', 1)[1].split('"', 1)[0]
    uri, cnonce = "sip:127.0.0.1", "c" + call_id
    resp = md5(f"{md5(f'{USER}:{REALM}:{SECRET}')}:{nonce}:00000001:{cnonce}:auth:{md5('REGISTER:' + uri)}")
    auth = (f'Authorization: Digest username="{USER}", realm="{REALM}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="{cnonce}"\r\n')
    writer.write(register(src, port, cseq + 1, call_id, transport, auth))
    return int((await response(reader)).split()[1]), cseq + 2


async def open_many(addr, n, rng, tls, authenticate):
    ctx = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    gate, conns, failed = asyncio.Semaphore(200), [], 0

    async def one(i):
        nonlocal failed
        src = source(rng, i)
        async with gate:
            try:
                r, w = await asyncio.open_connection(addr[0], int(addr[1]), ssl=ctx, local_addr=(src, 0))
                if authenticate:
                    port = w.get_extra_info("sockname")[1]
                    code, _ = await digest_register(r, w, src, port, 1, f"idle{rng}x{i}", "TLS" if tls else "TCP")
                    if code != 200:
                        failed += 1
                conns.append(w)
            except (OSError, asyncio.IncompleteReadError):
                failed += 1

    await asyncio.gather(*(one(i) for i in range(n)))
    return conns, failed


def idle_run(binary, work, n, tls):
    d = Daemon(binary, work)
    pid = d.proc.pid

    async def go():
        time.sleep(1)
        before = rss_kb(pid)
        conns, failed = await open_many(d.tls if tls else d.tcp, n, 3, tls, tls)
        await asyncio.sleep(12)
        after = rss_kb(pid)
        for w in conns:
            w.transport.abort()
        return before, after, len(conns), failed

    try:
        before, after, held, failed = asyncio.run(go())
    finally:
        d.stop()
    return {"server": binary, "transport": "tls" if tls else "tcp", "connections": held, "failed": failed,
            "rss_before_kb": before, "rss_after_kb": after,
            "bytes_per_connection": round((after - before) * 1024 / max(held, 1))}


def attacker(addr, rate, dur, stop):
    """Opens and closes `rate` connections per second (RST on close, so no TIME_WAIT piles up)."""
    end, i, t0 = time.time() + dur, 0, time.time()
    linger = b"\x01\x00\x00\x00\x00\x00\x00\x00"
    while time.time() < end and not stop.is_set():
        due = int((time.time() - t0) * rate)
        while i < due:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            try:
                s.bind((source(4, i % 2000), 0))
                s.connect(addr)
            except OSError:
                pass
            s.close()
            i += 1
        time.sleep(0.001)


async def phones(addr, n, dur, counts):
    """n phones, each registered on its own TCP connection and refreshing every 5 s for dur seconds."""
    async def phone(i):
        src = source(5, i)
        try:
            r, w = await asyncio.open_connection(addr[0], int(addr[1]), local_addr=(src, 0))
            port, cseq, end = w.get_extra_info("sockname")[1], 1, time.time() + dur
            await asyncio.sleep(5 * i / n)
            while time.time() < end:
                code, cseq = await digest_register(r, w, src, port, cseq, f"ph{i}", "TCP")
                counts["ok" if code == 200 else "failed"] += 1
                await asyncio.sleep(5)
            w.transport.abort()
        except (OSError, asyncio.IncompleteReadError):
            counts["failed"] += 1

    await asyncio.gather(*(phone(i) for i in range(n)))


def attack_run(work, rate, dur, n_phones):
    d = Daemon(BIN, work)
    pid, out = d.proc.pid, {}
    try:
        for label, with_attack in (("phones alone", False), ("phones + attack", True)):
            counts = {"ok": 0, "failed": 0}
            stop = multiprocessing.Event()
            procs = []
            t0, c0 = time.time(), ticks([pid])
            if with_attack:
                # Two generators: one Python process cannot open 5,000 connections a second on its own.
                procs = [multiprocessing.Process(target=attacker, args=((d.tcp[0], int(d.tcp[1])), rate / 2, dur, stop))
                         for _ in range(2)]
                for p in procs:
                    p.start()
            asyncio.run(phones(d.tcp, n_phones, dur, counts))
            for p in procs:
                p.join()
            wall, cpu = time.time() - t0, (ticks([pid]) - c0) / HZ
            out[label] = {"cpu_percent_of_one_core": round(100 * cpu / wall, 1), "refreshes_ok": counts["ok"],
                          "refreshes_failed": counts["failed"]}
        metrics = open(os.path.join(d.data, "metrics.prom")).read()
        out["metrics"] = [l for l in metrics.splitlines() if l.startswith("pbxguard_connections")]
    finally:
        d.stop()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=5_000)
    ap.add_argument("--dur", type=float, default=10)
    ap.add_argument("--phones", type=int, default=1_000)
    ap.add_argument("--before", help="another pbxguard binary (the code before) for the idle TLS run")
    ap.add_argument("--skip", default="", help="comma-separated: idle,attack")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.idle + a.phones + 4096
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = tempfile.mkdtemp(prefix="pbxguard-conns-")
    try:
        if "idle" not in a.skip:
            runs = [(BIN, True), (BIN, False)] + ([(a.before, True), (a.before, False)] if a.before else [])
            for binary, tls in runs:
                print(json.dumps(idle_run(binary, work, a.idle, tls)), flush=True)
        if "attack" not in a.skip:
            print(json.dumps(attack_run(work, a.rate, a.dur, a.phones)), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
