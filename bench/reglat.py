#!/usr/bin/env python3
"""Latency of authenticated registration with microsecond timestamps, side by side: pbxguard, Kamailio
5.6 (-x tlsf) doing the same job, and the cost floor (examples/udp_floor.rs). The load comes from
examples/reg_latency.rs (one thread, paced by the clock: REGISTER -> 401 -> REGISTER with an MD5 digest,
qop=auth -> 200, latency from the first send to the 200), because SIPp's trace counts whole milliseconds
and its own scheduling adds several. Server CPU from /proc/PID/stat as in regbench.py.

Usage: bench/reglat.py [--rates 5000,10000] [--dur 20] [--users 10000] [--servers pbxguard,kamailio,floor]
Needs: kamailio, a release build with examples (cargo build --release --examples).
"""
import os, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import arguments, ROOT, Floor, Kamailio, Pbxguard, measured, save  # noqa: E402

GEN = os.path.join(ROOT, "target", "release", "examples", "reg_latency")


def run_gen(port, rate, dur, users):
    out = subprocess.run([GEN, f"127.0.0.1:{port}", str(rate), str(int(dur)), str(users)], capture_output=True,
                         text=True, timeout=dur + 30, check=True).stdout
    return dict(kv.split("=", 1) for kv in out.split())


def main():
    ap = arguments("10000", 20, "pbxguard,kamailio,floor", users=10000)
    a = ap.parse_args()
    if not os.path.exists(GEN):
        subprocess.run(["cargo", "build", "--release", "--example", "reg_latency"], cwd=ROOT, check=True)
    os.makedirs(a.work, exist_ok=True)
    servers = {
        "pbxguard": lambda: Pbxguard(a.work, a.users, 15090),
        "kamailio": lambda: Kamailio(a.work, a.users, 15070, pike_density=65535),
        "floor": lambda: Floor(15080),
    }
    results = []
    print("| server | offered/s | ok | failed | CPU ms per 1k regs | of which kernel | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in a.servers.split(","):
        srv = servers[name]()
        for rate in [int(x) for x in a.rates.split(",")]:
            r, wall, cpu, kernel = measured(srv, lambda: run_gen(srv.port, rate, a.dur, a.users))
            ok, failed = int(r["ok"]), int(r["failed"])
            row = dict(server=srv.name, driver="reg_latency", rate=rate, ok=ok, failed=failed,
                       cpu_ms_per_1k=1e6 * cpu / ok if ok else float("nan"),
                       kernel_ms_per_1k=1e6 * kernel / ok if ok else float("nan"),
                       **{k: int(r[k]) for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us")})
            results.append(row)
            print(f"| {row['server']} | {rate} | {ok} | {failed} | {row['cpu_ms_per_1k']:.1f} | {row['kernel_ms_per_1k']:.1f} | "
                  f"{row['p50_us']} | {row['p90_us']} | {row['p99_us']} | {row['p999_us']} | {row['max_us']} |", flush=True)
    save(a.work, results)


if __name__ == "__main__":
    main()
