#!/usr/bin/env python3
"""Overload: what a registrar answers when offered more than it can handle, side by side with Kamailio.

The server gets one core (taskset -c 1), the open-loop generator (examples/udp_blast.rs) the other.
Each step offers REGISTERs without credentials (every one a new transaction, answered with a 401) at a
fixed rate for --dur seconds, never waiting for answers. Reported: answers per second (goodput), the share
of offered messages answered, kernel receive-queue drops (/proc/net/snmp RcvbufErrors) and server CPU.
A server that degrades gracefully keeps its goodput near its capacity past the knee instead of falling.
Answers the generator's own socket dropped (counted from /proc/net/udp) are counted as answered: the
server sent them, and past about 150,000/s the one-core generator cannot read everything it receives.

Usage: bench/overload.py [--rates 20000,40000,80000,120000] [--dur 5] [--servers pbxguard,kamailio]
Needs: kamailio (+ -x tlsf), taskset (util-linux), a release build (cargo build --release --examples).
"""
import os, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import arguments, ROOT, Kamailio, Pbxguard, measured, save, udp_rcvbuf_errors  # noqa: E402

BLAST = os.path.join(ROOT, "target", "release", "examples", "udp_blast")


def blast(port, rate, dur, users):
    out = subprocess.run(["taskset", "-c", "0", BLAST, f"127.0.0.1:{port}", str(rate), str(round(dur)), str(users)],
                         capture_output=True, text=True, timeout=dur + 30, check=True).stdout
    return {k: float(v) for k, v in (kv.split("=") for kv in out.split())}


def main():
    a = arguments("20000,40000,80000,120000", 5, "pbxguard,kamailio", users=10000).parse_args()
    if not os.path.exists(BLAST):
        subprocess.run(["cargo", "build", "--release", "--example", "udp_blast"], cwd=ROOT, check=True)
    os.makedirs(a.work, exist_ok=True)
    servers = {
        "pbxguard": lambda: Pbxguard(a.work, a.users, 15090),
        "kamailio": lambda: Kamailio(a.work, a.users, 15070, pike_density=65535),
    }
    results = []
    print("| server (1 core) | offered/s | answered/s | answered % | kernel drops | server CPU % | CPU µs per answer |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in a.servers.split(","):
        srv = servers[name]()
        srv.cpus = "1"
        for rate in [int(x) for x in a.rates.split(",")]:
            drops0 = udp_rcvbuf_errors()
            r, wall, cpu, _ = measured(srv, lambda: blast(srv.port, rate, a.dur, a.users))
            drops = udp_rcvbuf_errors() - drops0
            # Answers dropped at the generator's own socket were still sent by the server.
            answered = r["answered"] + r["lost_at_generator"]
            row = dict(server=srv.name, rate=rate, sent=r["sent"], answered=answered,
                       answered_per_s=answered / r["seconds"], answered_pct=100.0 * answered / r["sent"],
                       kernel_drops=drops, cpu_pct=100.0 * cpu / wall,
                       cpu_us_per_answer=1e6 * cpu / answered if answered else float("nan"))
            results.append(row)
            print(f"| {srv.name} | {rate} | {row['answered_per_s']:.0f} | {row['answered_pct']:.1f} | {drops} | "
                  f"{row['cpu_pct']:.0f} | {row['cpu_us_per_answer']:.1f} |", flush=True)
    save(a.work, results)


if __name__ == "__main__":
    main()
