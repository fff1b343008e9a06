#!/usr/bin/env python3
"""Side-by-side daemon benchmark: authenticated REGISTER (REGISTER -> 401 -> REGISTER+digest -> 200)
driven by SIPp against pbxguard and against Kamailio 5.6 (-x tlsf) doing the same job, in one run.

For each server and offered rate: a fresh server, two SIPp processes (4 MB socket buffers, rate split)
for --dur seconds, server CPU time from /proc/PID/stat (all threads / all Kamailio processes), success and
failure counts from SIPp's statistics, and p50/p99 of the whole two-transaction exchange from SIPp's
response-time trace (SIPp records whole milliseconds, so "0" means under 1 ms). Prints a Markdown table (paste into docs/benchmarks.md) and writes JSON lines.

Usage: bench/regbench.py [--rates 2000,5000,8000] [--dur 10] [--users 10000] [--transport u1]
Needs: sipp (sip-tester), kamailio (+ -x tlsf), a release build (cargo build --release).
"""
import argparse, csv, glob, json, os, shutil, signal, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "pbxguard")
HZ = os.sysconf("SC_CLK_TCK")


def ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime (all threads)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


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


def write_users(work, n):
    csvp = os.path.join(work, "users.csv")
    with open(csvp, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(n):
            u = f"u{i:05d}"
            f.write(f"{u};[authentication username={u} password=pw{i:05d}x]\n")
    return csvp


class Pbxguard:
    name = "pbxguard"

    def __init__(self, work, n, port):
        self.data = os.path.join(work, "pbxguard-data")
        self.port = port
        if not os.path.exists(os.path.join(self.data, "ready")):
            shutil.rmtree(self.data, ignore_errors=True)
            env = dict(os.environ, PBXGUARD_DATA=self.data)
            subprocess.run([BIN, "settings", "set", "sip.realm", "bench"], env=env, check=True, capture_output=True)
            # Two CLI processes at a time: 10,000 extensions take ~15 s.
            procs = []
            for i in range(n):
                procs.append(subprocess.Popen([BIN, "ext", "add", f"u{i:05d}", "--secret", f"pw{i:05d}x"], env=env, stdout=subprocess.DEVNULL))
                if len(procs) >= 4:
                    procs.pop(0).wait()
            for p in procs:
                p.wait()
            open(os.path.join(self.data, "ready"), "w").close()

    def start(self):
        # Fresh registrations each step: drop the previous step's bindings.
        subprocess.run(["sqlite3", os.path.join(self.data, "pbxguard.db"), "DELETE FROM bindings"], check=False)
        self.proc = subprocess.Popen([BIN, "--data", self.data, "run", "--sip-udp", f"127.0.0.1:{self.port}",
                                      "--sip-tcp", f"127.0.0.1:{self.port}", "--sip-tls", "off"],
                                     stderr=open(os.path.join(self.data, "..", "pbxguard.log"), "a"))
        for _ in range(200):
            if os.path.exists(os.path.join(self.data, "listen.json")):
                break
            time.sleep(0.05)
        return [self.proc.pid]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


class Kamailio:
    name = "kamailio (-x tlsf)"

    def __init__(self, work, n, port):
        self.dir = os.path.join(work, "kamailio")
        os.makedirs(os.path.join(self.dir, "dbtext"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "run"), exist_ok=True)
        with open(os.path.join(self.dir, "dbtext", "version"), "w") as f:
            f.write("table_name(string) table_version(int)\nhtable:2\n")
        with open(os.path.join(self.dir, "dbtext", "htable"), "w") as f:
            f.write("id(int,auto) key_name(string) key_type(int) value_type(int) key_value(string) expires(int)\n")
            for i in range(n):
                f.write(f"{i + 1}:u{i:05d}:0:0:pw{i:05d}x:0\n")
        cfg = open(os.path.join(ROOT, "bench", "kamailio", "registrar.cfg")).read()
        with open(os.path.join(self.dir, "kamailio.cfg"), "w") as f:
            f.write(cfg.replace("@DIR@", self.dir).replace("@PORT@", str(port)))
        self.port = port

    def start(self):
        self.proc = subprocess.Popen(["kamailio", "-f", os.path.join(self.dir, "kamailio.cfg"), "-DD", "-E", "-m", "512",
                                      "-M", "16", "-Y", os.path.join(self.dir, "run"), "-x", "tlsf"],
                                     stderr=open(os.path.join(self.dir, "kamailio.log"), "a"))
        time.sleep(2.0)  # kamailio forks its children after loading the htable
        return kamailio_pids(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


def run_sipp(work, target, csvp, rate, dur, transport, tag, instances=2):
    scen = os.path.join(ROOT, "tests", "sipp", "reg_auth.xml")
    procs, stats = [], []
    for i in range(instances):
        r = rate / instances
        d = os.path.join(work, f"sipp-{tag}-{i}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        statf = os.path.join(d, "stat.csv")
        cmd = ["sipp", "-sf", scen, "-inf", csvp, target, "-t", transport, "-i", "127.0.0.1", "-p", "0",
               "-r", str(r), "-m", str(int(r * dur)), "-l", str(int(r * 3)), "-buff_size", "4194304",
               "-recv_timeout", "5000", "-default_behaviors", "none", "-nostdin", "-timeout", f"{dur + 30}s",
               "-trace_stat", "-stf", statf, "-fd", "1", "-trace_rtt", "-rtt_freq", "100"]
        procs.append(subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        stats.append(d)
    for p in procs:
        try:
            p.wait(timeout=dur + 60)
        except subprocess.TimeoutExpired:
            p.kill()
    ok = failed = 0
    rtts = []
    for d in stats:
        rows = list(csv.DictReader(open(os.path.join(d, "stat.csv")), delimiter=";"))
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="2000,5000,8000,10000,12000")
    ap.add_argument("--dur", type=float, default=10)
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--transport", default="u1")
    ap.add_argument("--servers", default="pbxguard,kamailio")
    ap.add_argument("--work", default="/tmp/pbxguard-bench")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    csvp = write_users(a.work, a.users)
    servers = {"pbxguard": lambda: Pbxguard(a.work, a.users, 15090), "kamailio": lambda: Kamailio(a.work, a.users, 15070)}
    results = []
    print("| server | transport | offered/s | ok | failed | fail % | achieved/s | server CPU % | CPU ms per 1k regs | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in a.servers.split(","):
        srv = servers[name]()
        for rate in [int(x) for x in a.rates.split(",")]:
            pids = srv.start()
            t0, c0 = time.time(), ticks(pids)
            ok, failed, p50, p99 = run_sipp(a.work, f"127.0.0.1:{srv.port}", csvp, rate, a.dur, a.transport, f"{name}-{rate}")
            wall, cpu = time.time() - t0, (ticks(pids) - c0) / HZ
            srv.stop()
            total = ok + failed
            r = dict(server=srv.name, transport=a.transport, rate=rate, ok=ok, failed=failed,
                     fail_pct=100.0 * failed / total if total else 100.0, achieved=ok / a.dur,
                     cpu_pct=100.0 * cpu / wall, cpu_ms_per_1k=1000.0 * cpu / ok * 1000 if ok else float("nan"), p50=p50, p99=p99)
            results.append(r)
            print(f"| {r['server']} | {a.transport} | {rate} | {ok} | {failed} | {r['fail_pct']:.2f} | {r['achieved']:.0f} | "
                  f"{r['cpu_pct']:.0f} | {r['cpu_ms_per_1k']:.1f} | {p50:.2f} | {p99:.2f} |", flush=True)
    with open(os.path.join(a.work, "results.jsonl"), "a") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
