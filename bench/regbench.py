#!/usr/bin/env python3
"""Side-by-side daemon benchmark: authenticated REGISTER (REGISTER -> 401 -> REGISTER+digest -> 200)
driven by SIPp against pbxguard and against Kamailio 5.6 (-x tlsf) doing the same job, in one run, and
against the cost floor (examples/udp_floor.rs: parses and answers, checks and stores nothing).

For each server and offered rate: a fresh server, two SIPp processes (4 MB socket buffers, rate split)
for --dur seconds, server CPU time from /proc/PID/stat (all threads / all Kamailio processes; the kernel's
share from stime), success and
failure counts from SIPp's statistics, and p50/p99 of the whole two-transaction exchange from SIPp's
response-time trace (SIPp records whole milliseconds, so "0" means under 1 ms). Prints a Markdown table (paste into docs/benchmarks.md) and writes JSON lines.

Usage: bench/regbench.py [--rates 2000,5000,8000] [--dur 10] [--users 10000] [--transport u1]
       [--servers pbxguard,kamailio,floor]
Needs: sipp (sip-tester), kamailio (+ -x tlsf), a release build (cargo build --release).
"""
import os, shutil, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import arguments, free_port, ROOT, Floor, Kamailio, Pbxguard, measured, save, sipp_results, users  # noqa: E402


def write_users(work, n):
    csvp = os.path.join(work, "users.csv")
    with open(csvp, "w") as f:
        f.write("SEQUENTIAL\n")
        for u, p in users(n):
            f.write(f"{u};[authentication username={u} password={p}]\n")
    return csvp


def run_sipp(work, target, csvp, rate, dur, transport, tag, source_ip="127.0.0.1", instances=2):
    scen = os.path.join(ROOT, "tests", "sipp", "reg_auth.xml")
    procs, stats = [], []
    for i in range(instances):
        r = rate / instances
        d = os.path.join(work, f"sipp-{tag}-{i}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        statf = os.path.join(d, "stat.csv")
        # Over TCP, SIPp's "-p 0" is not a free port: two instances clash on one ("Unable to listen main
        # socket, errno = 98") and the second never starts. Give each its own.
        port = free_port(source_ip)
        cmd = ["sipp", "-sf", scen, "-inf", csvp, target, "-t", transport, "-i", source_ip, "-p", str(port),
               "-r", str(r), "-m", str(int(r * dur)), "-l", str(int(r * 3)), "-buff_size", "4194304",
               "-recv_timeout", "5000", "-default_behaviors", "none", "-nostdin", "-timeout", f"{dur + 30}s",
               "-trace_stat", "-stf", statf, "-fd", "1", "-trace_rtt", "-rtt_freq", "100", "-trace_err"]
        procs.append(subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        stats.append(d)
    for p in procs:
        try:
            p.wait(timeout=dur + 60)
        except subprocess.TimeoutExpired:
            p.kill()
    return sipp_results(stats)


def main():
    ap = arguments("2000,5000,8000,10000,12000", 10, "pbxguard,kamailio,floor", users=10000)
    ap.add_argument("--transport", default="u1")
    ap.add_argument("--edge", action="store_true",
                    help="protection on: SIPp sends from 127.0.0.2 (untrusted), pbxguard's shield tracks every "
                         "message, Kamailio runs pike (density 65535, so it never blocks) and secfilter")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    csvp = write_users(a.work, a.users)
    servers = {
        "pbxguard": lambda: Pbxguard(a.work, a.users, 15090, shield_limit="100000/1s" if a.edge else None),
        "kamailio": lambda: Kamailio(a.work, a.users, 15070, edge=a.edge, pike_density=65535),
        "floor": lambda: Floor(15080),
    }
    source_ip = "127.0.0.2" if a.edge else "127.0.0.1"
    results = []
    print("| server | transport | offered/s | ok | failed | fail % | achieved/s | server CPU % | CPU ms per 1k regs | of which kernel | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in a.servers.split(","):
        srv = servers[name]()
        for rate in [int(x) for x in a.rates.split(",")]:
            (ok, failed, p50, p99), wall, cpu, kernel = measured(srv, lambda: run_sipp(
                a.work, f"127.0.0.1:{srv.port}", csvp, rate, a.dur, a.transport, f"{name}-{rate}", source_ip))
            total = ok + failed
            r = dict(server=srv.name, transport=a.transport, rate=rate, ok=ok, failed=failed,
                     fail_pct=100.0 * failed / total if total else 100.0, achieved=ok / a.dur,
                     cpu_pct=100.0 * cpu / wall, cpu_ms_per_1k=1000.0 * cpu / ok * 1000 if ok else float("nan"),
                     kernel_ms_per_1k=1000.0 * kernel / ok * 1000 if ok else float("nan"), p50=p50, p99=p99)
            results.append(r)
            print(f"| {r['server']} | {a.transport} | {rate} | {ok} | {failed} | {r['fail_pct']:.2f} | {r['achieved']:.0f} | "
                  f"{r['cpu_pct']:.0f} | {r['cpu_ms_per_1k']:.1f} | {r['kernel_ms_per_1k']:.1f} | {p50:.2f} | {p99:.2f} |", flush=True)
    save(a.work, results)


if __name__ == "__main__":
    main()
