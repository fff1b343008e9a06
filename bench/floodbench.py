#!/usr/bin/env python3
"""Side-by-side flood benchmark: one source (127.0.0.66) floods REGISTERs with an ordinary User-Agent at
a fixed rate; pbxguard (shield defaults: ban past 30 messages in 2 s) and Kamailio 5.6 -x tlsf with pike
(16 per 2 s) + ipban htable + secfilter each ban it and must then drop everything. Reported per server:
messages sent, replies the flooder got, kernel socket drops (/proc/net/snmp RcvbufErrors), messages the
server itself dropped, server CPU seconds (/proc/PID/stat), and drops per CPU-second.

Usage: bench/floodbench.py [--rates 20000,50000] [--dur 10]
"""
import os, socket, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import arguments, HZ, Kamailio, Pbxguard, ticks, udp_rcvbuf_errors  # noqa: E402


def flood(target, rate, dur):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("127.0.0.66", 0))
    replies = [0]
    stop = threading.Event()

    def reader():
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                s.recv(65535)
                replies[0] += 1
            except OSError:
                pass

    t = threading.Thread(target=reader)
    t.start()
    msgs = [(f"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.66:5060;rport;branch=z9hG4bKf{i}\r\n"
             f"Max-Forwards: 70\r\nFrom: <sip:u00001@127.0.0.1>;tag={i}\r\nTo: <sip:u00001@127.0.0.1>\r\n"
             f"Call-ID: flood{i}\r\nCSeq: 1 REGISTER\r\nUser-Agent: Yealink SIP-T46S\r\nContent-Length: 0\r\n\r\n").encode()
            for i in range(1000)]
    start = time.time()
    sent = 0
    total = int(rate * dur)
    while sent < total:
        for _ in range(100):
            s.sendto(msgs[sent % 1000], target)
            sent += 1
        ahead = sent / rate - (time.time() - start)
        if ahead > 0:
            time.sleep(ahead)
    elapsed = time.time() - start
    time.sleep(1.0)
    stop.set()
    t.join()
    return sent, elapsed, replies[0]


def main():
    a = arguments("20000,50000", 10, "pbxguard,kamailio").parse_args()
    os.makedirs(a.work, exist_ok=True)
    make = {"pbxguard": lambda: Pbxguard(a.work, 10, 15092), "kamailio": lambda: Kamailio(a.work, 10, 15072, edge=True)}
    print("| server | offered/s | sent | achieved/s | replies to flooder | kernel drops | dropped by server | server CPU s | drops per CPU-second |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in a.servers.split(","):
        srv = make[name]()
        for rate in [int(x) for x in a.rates.split(",")]:
            pids = srv.start()
            k0, c0 = udp_rcvbuf_errors(), ticks(pids)
            sent, elapsed, replies = flood(("127.0.0.1", srv.port), rate, a.dur)
            cpu = (ticks(pids) - c0) / HZ
            kdrops = udp_rcvbuf_errors() - k0
            srv.stop()
            dropped = sent - kdrops - replies
            per_cpu = dropped / cpu if cpu > 0 else float("inf")
            print(f"| {srv.name} | {rate} | {sent} | {sent / elapsed:.0f} | {replies} | {kdrops} | {dropped} | {cpu:.2f} | {per_cpu:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
