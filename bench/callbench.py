#!/usr/bin/env python3
"""Side-by-side call benchmark: SIPp callers -> proxy -> SIPp as a trunk, against pbxguard and against
Kamailio 5.6 (-x tlsf) as a stateful record-routing authenticating proxy (bench/kamailio/proxy.cfg), in one
run. Each call: INVITE -> 407 -> ACK -> INVITE+digest -> 100/180/200 -> ACK -> 1 s -> BYE -> 200, all
through the proxy (Record-Route), to a national number routed to the trunk.

For each server and offered rate: a fresh server and trunk, one SIPp caller (4 MB socket buffers) spread
over --users accounts, server CPU time from /proc/PID/stat, calls per CPU-second, p50/p99 of the INVITE
exchange (SIPp response-time trace). Prints a Markdown table and writes JSON lines.

Usage: bench/callbench.py [--rates 100,200,400] [--dur 10] [--users 1000]
Needs: sipp (sip-tester), kamailio, a release build (cargo build --release).
"""
import os, shutil, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import arguments, BIN, ROOT, Kamailio, Pbxguard, measured, save, sipp_results, users  # noqa: E402

TRUNK_IP = "127.0.0.2"
TRUNK_PORT = 15190
NUMBER = "2125551234"


def write_callers(work, n):
    path = os.path.join(work, "callers.csv")
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for u, p in users(n):
            f.write(f"{u};[authentication username={u} password={p}];{NUMBER}\n")
    return path


def configure_pbxguard(srv):
    env = dict(os.environ, PBXGUARD_DATA=srv.data)
    run = lambda *a: subprocess.run([BIN, *a], env=env, capture_output=True)
    run("route", "del", "1")
    run("trunk", "del", "carrier")
    run("trunk", "add", "carrier", "--host", TRUNK_IP, "--port", str(TRUNK_PORT))
    run("route", "add", "_X.", "--trunk", "carrier")
    # The toll-fraud limits would (rightly) stop a load generator: raised for the benchmark.
    for k, v in [("fraud.max_concurrent", "1000"), ("fraud.calls_per_hour", "1000000")]:
        subprocess.run([BIN, "settings", "set", k, v], env=env, check=True, capture_output=True)


def run_calls(work, target, csvp, rate, dur, tag):
    d = os.path.join(work, f"calls-{tag}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    n = int(rate * dur)
    uas = subprocess.Popen(["sipp", "-sf", os.path.join(ROOT, "tests", "sipp", "uas_rr.xml"), "-i", TRUNK_IP, "-p",
                            str(TRUNK_PORT), "-m", str(n), "-buff_size", "4194304", "-nostdin",
                            "-timeout", f"{dur + 40}s"], cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    statf = os.path.join(d, "stat.csv")
    uac = subprocess.Popen(["sipp", "-sf", os.path.join(ROOT, "tests", "sipp", "uac_auth.xml"), "-inf", csvp, target,
                            "-i", "127.0.0.1", "-p", "0", "-r", str(rate), "-m", str(n), "-l", str(int(rate * 5)),
                            "-buff_size", "4194304", "-recv_timeout", "10000", "-nostdin", "-timeout", f"{dur + 40}s",
                            "-trace_stat", "-stf", statf, "-fd", "1", "-trace_rtt", "-rtt_freq", "100"],
                           cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for p in (uac, uas):
        try:
            p.wait(timeout=dur + 60)
        except subprocess.TimeoutExpired:
            p.kill()
    return sipp_results([d])


def main():
    a = arguments("100,200,400", 10, "pbxguard,kamailio", users=1000, work="/tmp/pbxguard-callbench").parse_args()
    os.makedirs(a.work, exist_ok=True)
    csvp = write_callers(a.work, a.users)
    servers = {
        "pbxguard": lambda: Pbxguard(a.work, a.users, 15180),
        "kamailio": lambda: Kamailio(a.work, a.users, 15170, cfg="proxy.cfg", trunk=f"{TRUNK_IP}:{TRUNK_PORT}"),
    }
    results = []
    print("| server | offered calls/s | ok | failed | server CPU % | CPU ms per call | calls per CPU-second | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in a.servers.split(","):
        srv = servers[name]()
        if name == "pbxguard":
            configure_pbxguard(srv)
        for rate in [int(x) for x in a.rates.split(",")]:
            (ok, failed, p50, p99), wall, cpu, _ = measured(
                srv, lambda: run_calls(a.work, f"127.0.0.1:{srv.port}", csvp, rate, a.dur, f"{name}-{rate}"))
            r = dict(server=srv.name, rate=rate, ok=ok, failed=failed, cpu_pct=100.0 * cpu / wall,
                     cpu_ms_per_call=1000.0 * cpu / ok if ok else float("nan"),
                     calls_per_cpu_s=ok / cpu if cpu else float("nan"), p50=p50, p99=p99)
            results.append(r)
            print(f"| {r['server']} | {rate} | {ok} | {failed} | {r['cpu_pct']:.0f} | {r['cpu_ms_per_call']:.3f} | "
                  f"{r['calls_per_cpu_s']:.0f} | {p50:.2f} | {p99:.2f} |", flush=True)
    save(a.work, results)


if __name__ == "__main__":
    main()
