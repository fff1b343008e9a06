#!/bin/bash
# Is the daemon's cost per registration a matter of sharing cores with SIPp? Runs pbxguard or the floor
# at 10,000 authenticated registrations/s for 20 s (two SIPp at 5,000/s, tests/sipp/reg_auth.xml), either
# with the server on core 1 and both SIPp on core 0 ("pin") or unpinned ("nopin"), and prints the
# server's CPU ms per 1,000 registrations (all of it, and the kernel's share) from /proc/PID/stat.
# Needs the data bench/regbench.py prepares (10,000 users) and a release build with examples.
# Usage: bench/pinned.sh pbxguard|floor pin|nopin
R=$(cd "$(dirname "$0")/.." && pwd); W=${PBXGUARD_BENCH_WORK:-/tmp/pbxguard-bench}; D=$W/pbxguard-data; dur=20
if [ "$2" = pin ]; then SP="taskset -c 1"; CP="taskset -c 0"; else SP=""; CP=""; fi
pkill -f "pbxguard-data run"; pkill udp_floor; sleep 0.5
if [ "$1" = pbxguard ]; then
  sqlite3 $D/pbxguard.db "DELETE FROM bindings; DELETE FROM bans; DELETE FROM events;"
  $SP $R/target/release/pbxguard --data $D run --sip-udp 127.0.0.1:15090 --sip-tcp off --sip-tls off --gui off >/dev/null 2>&1 &
  port=15090; sleep 1.5; P=$(pgrep -f "pbxguard-data run")
else
  $SP $R/target/release/examples/udp_floor 127.0.0.1:15080 & sleep 0.3; P=$(pgrep udp_floor); port=15080
fi
a=$(awk '{print $14+$15, $15}' /proc/$P/stat)
for i in 1 2; do (rm -rf $W/pin-sp$i; mkdir -p $W/pin-sp$i && cd $W/pin-sp$i && $CP sipp -sf $R/tests/sipp/reg_auth.xml \
  -inf $W/users.csv 127.0.0.1:$port -i 127.0.0.1 -p 0 -r 5000 -m $((5000*dur)) -l 15000 \
  -buff_size 4194304 -nostdin -timeout 60s -default_behaviors none >/dev/null 2>&1 &); done
sleep 2; while pgrep -x sipp >/dev/null; do sleep 0.5; done
b=$(awk '{print $14+$15, $15}' /proc/$P/stat)
echo "$1 $2: $a -> $b" | awk '{split($0,x,": "); split(x[2],y," "); printf "%s cpu_ms_per_1k=%.1f kernel=%.1f\n", x[1], (y[4]-y[1])*10*1000/200000, (y[5]-y[2])*10*1000/200000}'
kill $P; wait 2>/dev/null
