#!/usr/bin/env python3
"""Kernel enforcement (nftables) benchmarks, in network namespaces this script creates and removes.

Needs root, nft, and a release build (cargo build --release). Usage:

    python3 bench/nft_bench.py [latency|storm|blacklist|flood|all]

- latency: offending packet (a scanner OPTIONS) to the first probe packet nft drops, per ban, from an
  attacker that keeps probing a plain UDP echo on another port. Side by side: what one spawned
  `nft add element` costs in the same namespace (the alternative), and the probe's round trip (floor).
- storm: 20,000 scanner packets from 20,000 spoofed sources in one second; every source must end up in
  banned4, and how long the last one took.
- blacklist: a 200,000-entry list replaced while an admin's UDP stream flows (losses counted); side by
  side: the same merged list loaded by `nft -f` (flush + add in one file).
- flood: 50,000 packets/s for 5 s from a banned source: pbxguard's CPU with the kernel dropping, then
  with the enforcer off and the set emptied (in-process drop), and idle (floor).
"""
import json, os, random, shutil, signal, socket, struct, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "pbxguard")
HZ = os.sysconf("SC_CLK_TCK")
TAG = f"nb{os.getpid() % 100000}"
SRV, ATK, ADM = TAG + "srv", TAG + "atk", TAG + "adm"

FIXTURE = """table inet pbxguard {
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
"""

ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7777))
while True:
    d, a = s.recvfrom(2048); s.sendto(d, a)
"""


def sh(*args, ns=None, check=True, **kw):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def spawn(*args, ns, **kw):
    return subprocess.Popen(["ip", "netns", "exec", ns, *args], **kw)


class Lab:
    def __init__(self):
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="pbxguard-nftbench-")
        self.data = os.path.join(self.dir, "data")
        for ns in (SRV, ATK, ADM):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", "s-a", "netns", SRV, "type", "veth", "peer", "name", "a-s", "netns", ATK)
        sh("ip", "link", "add", "s-m", "netns", SRV, "type", "veth", "peer", "name", "m-s", "netns", ADM)
        for ns, dev, addr in ((SRV, "s-a", "10.201.0.1/16"), (ATK, "a-s", "10.201.0.2/16"),
                              (SRV, "s-m", "10.202.0.1/24"), (ADM, "m-s", "10.202.0.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        # Sources for one ban each (latency), and the storm's spoofed sources reach the server.
        batch = "".join(f"addr add 10.201.1.{i}/16 dev a-s\n" for i in range(1, 255))
        subprocess.run(["ip", "-n", ATK, "-batch", "-"], input=batch, text=True, check=True)
        sh("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", ns=SRV)
        sh("sysctl", "-qw", "net.ipv4.conf.s-a.rp_filter=0", ns=SRV)
        with open(os.path.join(self.dir, "fixture.nft"), "w") as f:
            f.write(FIXTURE)
        sh("nft", "-f", os.path.join(self.dir, "fixture.nft"), ns=SRV)
        self.procs.append(spawn("python3", "-c", ECHO, ns=SRV))
        self.daemon = None

    def start(self):
        try:
            os.remove(os.path.join(self.data, "listen.json"))
        except FileNotFoundError:
            pass
        log = open(os.path.join(self.dir, "daemon.log"), "a")
        self.daemon = spawn(BIN, "--data", self.data, "run", "--sip-udp", "0.0.0.0:5060", "--sip-tcp", "off",
                            "--sip-tls", "off", ns=SRV, stdout=subprocess.DEVNULL, stderr=log,
                            env={**os.environ, "RUST_LOG": "info"})
        self.procs.append(self.daemon)
        for _ in range(200):
            try:
                with open(os.path.join(self.data, "listen.json")) as f:
                    if json.load(f)["pid"] == self.daemon.pid:
                        return
            except (FileNotFoundError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        raise SystemExit("daemon did not start")

    def cli(self, *args):
        return subprocess.run([BIN, "--data", self.data, *args], check=True, capture_output=True, text=True).stdout

    def log(self):
        with open(os.path.join(self.dir, "daemon.log")) as f:
            return f.read()

    def await_log(self, what, n=1, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if self.log().count(what) >= n:
                return
            time.sleep(0.05)
        raise SystemExit(f"daemon never said {what!r}:\n{self.log()[-3000:]}")

    def set_size(self, name):
        out = json.loads(sh("nft", "-j", "list", "set", "inet", "pbxguard", name, ns=SRV).stdout)
        for o in out["nftables"]:
            if "set" in o:
                return len(o["set"].get("elem", []))
        return 0

    def cpu(self):
        with open(f"/proc/{self.daemon.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ

    def close(self):
        for p in self.procs:
            try:
                p.kill()
                p.wait()
            except OSError:
                pass
        for ns in (SRV, ATK, ADM):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


LATENCY_CLIENT = r"""
import socket, sys, time, json
srv = sys.argv[1]; n = int(sys.argv[2])
out = []
rtts = []
for i in range(1, n + 1):
    src = "10.201.1.%d" % i
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((src, 0)); s.settimeout(0.05)
    # Floor: a few round trips before the ban.
    for _ in range(3):
        t = time.perf_counter(); s.sendto(b"x", (srv, 7777)); s.recv(64); rtts.append(time.perf_counter() - t)
    s.settimeout(0.003)
    m = ("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bKl%d\r\nFrom: <sip:a@%s>;tag=%d\r\n"
         "To: <sip:%s>\r\nCall-ID: lat%d\r\nCSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n"
         ) % (srv, src, s.getsockname()[1], i, src, i, srv, i)
    t0 = time.perf_counter()
    s.sendto(m.encode(), (srv, 5060))
    dropped = None
    while time.perf_counter() - t0 < 1.0:
        t = time.perf_counter()
        s.sendto(b"p", (srv, 7777))
        try:
            while True:
                d = s.recv(64)
                if d == b"p":
                    break
        except socket.timeout:
            dropped = t - t0
            break
    out.append(dropped)
    s.close()
print(json.dumps({"lat": out, "rtt": rtts}))
"""


def latency(lab, n=200):
    r = json.loads(sh("python3", "-c", LATENCY_CLIENT, "10.201.0.1", str(n), ns=ATK).stdout)
    lat = [x * 1000 for x in r["lat"] if x is not None]
    missed = sum(1 for x in r["lat"] if x is None)
    rtt = [x * 1000 for x in r["rtt"]]
    # The alternative: one spawned nft per ban, in the same namespace (the set holds n bans by now).
    spawned = []
    for i in range(50):
        t = time.perf_counter()
        sh("nft", "add", "element", "inet", "pbxguard", "banned4", "{ 10.9.%d.%d timeout 1h }" % (i // 200, i % 200 + 1),
           ns=SRV)
        spawned.append((time.perf_counter() - t) * 1000)
    sh("nft", "flush", "set", "inet", "pbxguard", "banned4", ns=SRV)
    print(f"latency: {len(lat)} bans, {missed} never dropped within 1 s; packet -> kernel drop "
          f"p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms, max {max(lat):.2f} ms")
    print(f"  floor (probe round trip): p50 {pct(rtt, 50):.3f} ms, p99 {pct(rtt, 99):.3f} ms; "
          f"alternative (spawned `nft add element`): p50 {pct(spawned, 50):.2f} ms, p99 {pct(spawned, 99):.2f} ms")


STORM = r"""
import socket, struct, sys, time
n, rate, dst = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
d = socket.inet_aton(dst)
t0 = time.perf_counter()
for i in range(n):
    src = socket.inet_aton("10.%d.%d.%d" % (100 + i // 65536, (i // 256) % 256, i % 256))
    body = ("OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKs%d\r\nFrom: <sip:a@b>;tag=%d\r\n"
            "To: <sip:x>\r\nCall-ID: s%d\r\nCSeq: 1 OPTIONS\r\nUser-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n"
            % (i, i, i)).encode()
    udp = struct.pack("!HHHH", 5060, 5060, 8 + len(body), 0) + body
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xffff, 0, 64, 17, 0, src, d)
    s.sendto(ip + udp, (dst, 0))
    ahead = (i + 1) / rate - (time.perf_counter() - t0)
    if ahead > 0.001:
        time.sleep(ahead)
print(time.perf_counter() - t0)
"""


def storm(lab, n=20000, rate=20000):
    sh("ip", "-n", SRV, "route", "add", "10.100.0.0/14", "dev", "s-a")
    t0 = time.time()
    sent = float(sh("python3", "-c", STORM, str(n), str(rate), "10.201.0.1", ns=ATK).stdout)
    last, size, t_last = -1, 0, time.time()
    while time.time() - t0 < 60:
        size = lab.set_size("banned4")
        if size != last:
            last, t_last = size, time.time()
        elif time.time() - t_last > 3:
            break
        if size >= n:
            t_last = time.time()
            break
        time.sleep(0.2)
    lost = "came faster than the queue" in lab.log()
    print(f"storm: {n} spoofed sources sent in {sent:.2f} s ({n / sent:.0f}/s); banned4 holds {size} "
          f"({'all' if size >= n else 'MISSING %d' % (n - size)}), last one in {t_last - t0:.2f} s after the first "
          f"packet (set polled every 0.2 s){'; queue overflowed once, refilled from the gate' if lost else ''}")
    sh("ip", "-n", SRV, "route", "del", "10.100.0.0/14", "dev", "s-a")


STREAM = r"""
import socket, sys, time
dur, rate = float(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
s.connect(("10.202.0.1", 7777))
sent = got = 0; t0 = time.perf_counter()
while time.perf_counter() - t0 < dur:
    s.send(b"%d" % sent); sent += 1
    end = t0 + sent / rate
    while time.perf_counter() < end:
        try:
            s.recv(64); got += 1
        except BlockingIOError:
            time.sleep(0.0002)
time.sleep(0.2)
try:
    while True:
        s.recv(64); got += 1
except BlockingIOError:
    pass
print(sent, got)
"""


def blacklist(lab, n=200000):
    random.seed(7)

    def make(path, seed):
        rnd = random.Random(seed)
        with open(path, "w") as f:
            for _ in range(n):
                x, r = rnd.getrandbits(32), rnd.random()
                ln = 32 if r < 0.7 else rnd.randint(24, 31) if r < 0.9 else rnd.randint(16, 23)
                x &= (0xffffffff << (32 - ln)) & 0xffffffff
                # Keep the benchmark's own networks out of it.
                if x >> 24 == 10:
                    x ^= 0x01000000
                f.write("%s/%d\n" % (socket.inet_ntoa(struct.pack("!I", x)), ln))
    lists = [os.path.join(lab.dir, f"bl{i}.txt") for i in range(3)]
    for i, p in enumerate(lists):
        make(p, i)
    for i, p in enumerate(lists):
        stream = spawn("python3", "-c", STREAM, "8", "500", ns=ADM, stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        lab.cli("blacklist", "import", p, "--name", "big")
        lab.await_log("blacklists replaced in nftables", i + 1)
        sent, got = map(int, stream.communicate()[0].split())
        line = [l for l in lab.log().splitlines() if "blacklists replaced in nftables" in l][-1]
        ms = line.split("ms=")[1].split()[0]
        print(f"blacklist {'load' if i == 0 else 'replace'} #{i}: {n} entries -> {lab.set_size('blacklist4')} ranges "
              f"in {ms} ms (netlink, one transaction); admin stream {got}/{sent} answered")
    # The alternative: the same merged ranges through nft -f, flush + add in one file.
    elems = json.loads(sh("nft", "-j", "list", "set", "inet", "pbxguard", "blacklist4", ns=SRV).stdout)
    items = [o for o in elems["nftables"] if "set" in o][0]["set"]["elem"]

    def txt(e):
        if isinstance(e, str):
            return e
        if "prefix" in e:
            return "%s/%d" % (e["prefix"]["addr"], e["prefix"]["len"])
        return "%s-%s" % tuple(e["range"])
    path = os.path.join(lab.dir, "alt.nft")
    with open(path, "w") as f:
        f.write("flush set inet pbxguard blacklist4\nadd element inet pbxguard blacklist4 { %s }\n"
                % ", ".join(txt(e) for e in items))
    t = time.time()
    sh("nft", "-f", path, ns=SRV)
    print(f"  alternative: the same {len(items)} ranges replaced by `nft -f` (flush + add): {time.time() - t:.2f} s")


FLOOD = r"""
import socket, sys, time
dur, rate = float(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.201.1.254", 0))
m = b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.201.1.254;branch=z9hG4bKf\r\nContent-Length: 0\r\n\r\n"
sent = 0; t0 = time.perf_counter()
while time.perf_counter() - t0 < dur:
    for _ in range(100):
        s.sendto(m, ("10.201.0.1", 5060))
    sent += 100
    ahead = sent / rate - (time.perf_counter() - t0)
    if ahead > 0:
        time.sleep(ahead)
print(sent / (time.perf_counter() - t0))
"""


def flood(lab, dur=5, rate=50000):
    lab.cli("bans", "add", "10.201.1.254", "--reason", "flood-bench")
    time.sleep(2)
    results = []
    for mode in ("kernel", "in-process", "idle"):
        if mode == "in-process":
            lab.cli("settings", "set", "firewall.enabled", "false")
            lab.await_log("firewall.enabled changed", 2)
            sh("nft", "flush", "set", "inet", "pbxguard", "banned4", ns=SRV)
        c0, t0 = lab.cpu(), time.time()
        if mode == "idle":
            time.sleep(dur)
            pps = 0
        else:
            pps = float(sh("python3", "-c", FLOOD, str(dur), str(rate), ns=ATK).stdout)
        results.append((mode, pps, (lab.cpu() - c0) / (time.time() - t0) * 100))
    for mode, pps, cpu in results:
        print(f"flood ({mode}): {pps:.0f} packets/s from a banned source, pbxguard CPU {cpu:.1f} % of a core")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    lab = Lab()
    try:
        lab.start()
        lab.cli("settings", "set", "firewall.enabled", "true")
        lab.await_log("nftables sets filled from the gate")
        if what in ("latency", "all"):
            latency(lab)
        if what in ("storm", "all"):
            storm(lab)
        if what in ("blacklist", "all"):
            blacklist(lab)
        if what in ("flood", "all"):
            flood(lab)
    finally:
        lab.close()


if __name__ == "__main__":
    main()
