#!/usr/bin/python3
"""Ban latency of the SSH guard: from the line that crosses the threshold being written to sshd's log to
the source being in the kernel's drop set (nft monitor sees the element added).

A server namespace runs `pbxguard run` with the firewall's sets loaded (tests/common/mod.rs's NFT_FIXTURE) and
firewall.enabled, and its SSH guard following a log file. Each round writes 4 "Failed password" lines for
a fresh address, waits 20 ms (the guard has read them), then timestamps and writes the 5th; `nft monitor`
in the namespace reports the element. Usage (root): bench/ssh_ban_latency.py [ROUNDS] (default 300)."""
import json, os, shutil, subprocess, sys, tempfile, threading, time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "pbxguard")
NS = "sshlat%d" % (os.getpid() % 100000)
FIXTURE = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "common", "mod.rs")).read()
FIXTURE = FIXTURE.split('pub const NFT_FIXTURE: &str = r#"', 1)[1].split('"#;', 1)[0]

def sh(*a, **k):
    return subprocess.run(list(a), check=True, capture_output=True, text=True, **k).stdout

d = tempfile.mkdtemp(prefix="pbxguard-sshlat-")
procs = []
try:
    sh("ip", "netns", "add", NS)
    sh("ip", "-n", NS, "link", "set", "lo", "up")
    open(d + "/fixture.nft", "w").write(FIXTURE)
    sh("ip", "netns", "exec", NS, "nft", "-f", d + "/fixture.nft")
    log = d + "/sshd.log"
    open(log, "w").close()
    data = d + "/data"
    env = dict(os.environ, RUST_LOG="info")
    env.pop("PBXGUARD_DATA", None)
    daemon = subprocess.Popen(["ip", "netns", "exec", NS, BIN, "--data", data, "run", "--sip-udp", "127.0.0.1:5060",
                               "--sip-tcp", "off", "--sip-tls", "off"], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(d + "/daemon.log", "w"))
    procs.append(daemon)
    for _ in range(200):
        if os.path.exists(data + "/listen.json"):
            break
        time.sleep(0.05)
    cli = lambda *a: sh("ip", "netns", "exec", NS, BIN, "--data", data, *a, env=env)
    cli("settings", "set", "ssh.guard.logs", log)
    cli("settings", "set", "firewall.enabled", "true")
    for _ in range(200):
        text = open(d + "/daemon.log").read()
        if "nftables sets filled from the gate" in text and "SSH guard following" in text and log in text:
            break
        time.sleep(0.05)
    else:
        sys.exit("daemon not ready:\n" + open(d + "/daemon.log").read())
    mon = subprocess.Popen(["ip", "netns", "exec", NS, "nft", "monitor", "elements"], stdout=subprocess.PIPE, text=True, bufsize=1)
    procs.append(mon)
    seen = {}
    def reader():
        for line in mon.stdout:
            t = time.monotonic()
            if "banned4" in line:
                for word in line.replace("{", " ").replace("}", " ").replace(",", " ").split():
                    if word.startswith("10.") and word not in seen:
                        seen[word] = t
    threading.Thread(target=reader, daemon=True).start()
    time.sleep(0.5)
    lat = []
    f = open(log, "a", buffering=1)
    for i in range(ROUNDS):
        ip = "10.%d.%d.%d" % (50 + i // 65000, (i // 250) % 250 + 1, i % 250 + 1)
        for k in range(4):
            f.write("Failed password for root from %s port %d ssh2\n" % (ip, 40000 + k))
        time.sleep(0.02)
        t0 = time.monotonic()
        f.write("Failed password for root from %s port 40004 ssh2\n" % ip)
        end = t0 + 2
        while ip not in seen and time.monotonic() < end:
            time.sleep(0.0002)
        if ip in seen:
            lat.append((seen[ip] - t0) * 1000)
        time.sleep(0.01)
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print("rounds %d, banned %d; ms from the 5th failure line written to the kernel set: "
          "p50 %.2f  p90 %.2f  p99 %.2f  max %.2f" % (ROUNDS, len(lat), q(0.5), q(0.9), q(0.99), lat[-1]))
finally:
    for p in procs:
        p.kill()
        p.wait()
    subprocess.run(["ip", "netns", "del", NS])
    shutil.rmtree(d, ignore_errors=True)
