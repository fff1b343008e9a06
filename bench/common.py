"""Shared pieces of the side-by-side benchmarks: CPU accounting from /proc, and the two servers
(pbxguard, Kamailio 5.6 with -x tlsf) started fresh for each measurement."""
import argparse, csv, glob, json, os, shutil, signal, subprocess, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "pbxguard")
HZ = os.sysconf("SC_CLK_TCK")
SCANNER_UAS = ["friendly-scanner", "sipvicious", "sipcli", "sip-scan", "VaxSIPUserAgent", "pplsip", "sundayddr",
               "iWar", "SIVuS", "siparmyknife", "smap"]


def ticks_split(pids):
    """(utime, stime) of the processes (all their threads), in clock ticks."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return user, system


def ticks(pids):
    """utime + stime of the processes (all their threads), in clock ticks."""
    return sum(ticks_split(pids))


def udp_rcvbuf_errors():
    with open("/proc/net/snmp") as f:
        lines = [l.split() for l in f if l.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def kamailio_pids(main_pid):
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    s = f.read()
                if "(kamailio)" in s and (int(p) == main_pid or int(s.rsplit(")", 1)[1].split()[1]) == main_pid):
                    pids.append(int(p))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
    return pids


def pin(args, cpus):
    """The command, confined to the given CPUs (e.g. "1") when set: overload benchmarks give the server
    one core and the load generator the other, so the server's knee is reachable."""
    return ["taskset", "-c", cpus, *args] if cpus else args


def measured(srv, run):
    """Starts a fresh server, calls run(), stops it: (run's result, wall seconds, server CPU seconds,
    of which in the kernel)."""
    pids = srv.start()
    t0, (u0, s0) = time.time(), ticks_split(pids)
    result = run()
    u1, s1 = ticks_split(pids)
    wall, cpu, kernel = time.time() - t0, (u1 + s1 - u0 - s0) / HZ, (s1 - s0) / HZ
    srv.stop()
    return result, wall, cpu, kernel


def free_port(ip="127.0.0.1"):
    """A port free on `ip` for both TCP and UDP at the time of asking."""
    import socket
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((ip, 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((ip, port))
                    return port
                except OSError:
                    continue


def arguments(rates, dur, servers, users=None, work="/tmp/pbxguard-bench"):
    """The options every driver has (offered rates, seconds per step, servers, work directory, and the
    number of extensions where it registers any), with its defaults; drivers add their own."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default=rates)
    ap.add_argument("--dur", type=float, default=dur)
    if users is not None:
        ap.add_argument("--users", type=int, default=users)
    ap.add_argument("--servers", default=servers)
    ap.add_argument("--work", default=work)
    return ap


def save(work, results):
    """Appends the results as JSON lines to <work>/results.jsonl."""
    with open(os.path.join(work, "results.jsonl"), "a") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")


def sipp_results(dirs):
    """(successful, failed, p50 ms, p99 ms) over SIPp runs, each dir holding stat.csv and *_rtt.csv."""
    ok = failed = 0
    rtts = []
    for d in dirs:
        path = os.path.join(d, "stat.csv")
        rows = list(csv.DictReader(open(path), delimiter=";")) if os.path.exists(path) else []
        if rows:
            ok += int(rows[-1]["SuccessfulCall(C)"])
            failed += int(rows[-1]["FailedCall(C)"])
        for f in glob.glob(os.path.join(d, "*_rtt.csv")):
            for row in csv.reader(open(f), delimiter=";"):
                try:
                    rtts.append(float(row[1]))
                except (ValueError, IndexError):
                    pass
    rtts.sort()
    pct = lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))] if rtts else float("nan")
    return ok, failed, pct(0.50), pct(0.99)


def users(n):
    return [(f"u{i:05d}", f"pw{i:05d}x") for i in range(n)]


class Pbxguard:
    def __init__(self, work, n, port, shield_limit=None):
        """`shield_limit`: a flood limit such as "65535/2s" for load tests from an untrusted source, so the
        shield tracks every message (as pike does with a high density) without banning the generator."""
        self.name = "pbxguard" + (" (shield on)" if shield_limit else "")
        self.cpus = None
        self.shield_limit = shield_limit
        self.data = os.path.join(work, "pbxguard-data")
        self.port = port
        if not os.path.exists(os.path.join(self.data, f"ready-{n}")):
            shutil.rmtree(self.data, ignore_errors=True)
            env = dict(os.environ, PBXGUARD_DATA=self.data)
            subprocess.run([BIN, "settings", "set", "sip.realm", "bench"], env=env, check=True, capture_output=True)
            # Formulaic benchmark secrets would fail the password policy.
            subprocess.run([BIN, "settings", "set", "password_policy.enforce", "false"], env=env, check=True,
                           capture_output=True)
            procs = []
            for u, p in users(n):
                procs.append(subprocess.Popen([BIN, "ext", "add", u, "--secret", p], env=env, stdout=subprocess.DEVNULL))
                if len(procs) >= 4:
                    procs.pop(0).wait()
            for p in procs:
                p.wait()
            open(os.path.join(self.data, f"ready-{n}"), "w").close()

    def start(self):
        # A fresh start for each step: no registrations or bans left from the previous one.
        db = os.path.join(self.data, "pbxguard.db")
        env = dict(os.environ, PBXGUARD_DATA=self.data)
        subprocess.run([BIN, "settings", "set", "shield.flood", self.shield_limit or "30/2s"], env=env, check=True,
                       capture_output=True)
        subprocess.run(["sqlite3", db, "DELETE FROM bindings; DELETE FROM bans; DELETE FROM events;"], check=False)
        try:
            os.unlink(os.path.join(self.data, "listen.json"))
        except FileNotFoundError:
            pass
        extra = os.environ.get("PBXGUARD_BENCH_ARGS", "").split()
        self.proc = subprocess.Popen(pin([BIN, "--data", self.data, "run", *extra, "--sip-udp", f"127.0.0.1:{self.port}",
                                          "--sip-tcp", f"127.0.0.1:{self.port}", "--sip-tls", "off"], self.cpus),
                                     stderr=open(os.path.join(self.data, "..", "pbxguard.log"), "a"))
        for _ in range(200):
            if os.path.exists(os.path.join(self.data, "listen.json")):
                break
            time.sleep(0.05)
        return [self.proc.pid]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


class Floor:
    """The cost floor (examples/udp_floor.rs): parses and answers REGISTERs like a registrar but checks,
    stores and remembers nothing. What the kernel and a minimal parse-and-reply cost."""

    def __init__(self, port):
        self.name = "floor (no auth, no state)"
        self.cpus = None
        self.port = port
        self.bin = os.path.join(ROOT, "target", "release", "examples", "udp_floor")
        if not os.path.exists(self.bin):
            subprocess.run(["cargo", "build", "--release", "--example", "udp_floor"], cwd=ROOT, check=True)

    def start(self):
        self.proc = subprocess.Popen(pin([self.bin, f"127.0.0.1:{self.port}"], self.cpus))
        time.sleep(0.3)
        return [self.proc.pid]

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=10)


class Kamailio:
    def __init__(self, work, n, port, edge=False, pike_density=16, cfg="registrar.cfg", trunk=""):
        self.name = "kamailio -x tlsf" + (" (pike+secfilter)" if edge else "")
        self.cpus = None
        self.pike_density = pike_density
        self.dir = os.path.join(work, "kamailio")
        self.edge = edge
        db = os.path.join(self.dir, "dbtext")
        os.makedirs(db, exist_ok=True)
        os.makedirs(os.path.join(self.dir, "run"), exist_ok=True)
        with open(os.path.join(db, "version"), "w") as f:
            f.write("id(int,auto) table_name(string) table_version(int) \n1:htable:2\n2:secfilter:1\n")
        with open(os.path.join(db, "htable"), "w") as f:
            f.write("id(int,auto) key_name(string) key_type(int) value_type(int) key_value(string) expires(int) \n")
            for i, (u, p) in enumerate(users(n), 1):
                f.write(f"{i}:{u}:0:0:{p}:0\n")
        with open(os.path.join(db, "secfilter"), "w") as f:
            f.write("id(int,auto) action(int) type(int) data(string) \n")
            for i, ua in enumerate(SCANNER_UAS, 1):
                f.write(f"{i}:0:0:{ua}\n")
        text = open(os.path.join(ROOT, "bench", "kamailio", cfg)).read()
        with open(os.path.join(self.dir, "kamailio.cfg"), "w") as f:
            f.write(text.replace("@DIR@", self.dir).replace("@PORT@", str(port)).replace("@TRUNK@", trunk))
        self.port = port

    def start(self):
        args = ["kamailio", "-f", os.path.join(self.dir, "kamailio.cfg"), "-DD", "-E", "-m", "512", "-M", "16",
                "-Y", os.path.join(self.dir, "run"), "-x", "tlsf"]
        if self.edge:
            args += ["-A", "EDGE", "-A", f"PIKE_DENSITY={self.pike_density}"]
        self.proc = subprocess.Popen(pin(args, self.cpus), stderr=open(os.path.join(self.dir, "kamailio.log"), "a"))
        time.sleep(2.0)  # it forks its children after loading the htable
        if self.proc.poll() is not None:
            raise SystemExit(f"kamailio failed to start; see {self.dir}/kamailio.log")
        return kamailio_pids(self.proc.pid)

    def stop(self):
        # The children can outlive the main process (busy tearing down 10,000 registrations) and keep
        # the port, so wait for every one of them; Kamailio 5.6 also now and then hangs in its shutdown
        # after a long run. Its CPU was already measured: finish off what is left rather than lose the run.
        pids = kamailio_pids(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
            self.proc.poll()
            time.sleep(0.1)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
