#!/usr/bin/env bash
# How often an idle daemon wakes: context switches (voluntary + involuntary) of each of its threads over
# SECONDS (default 10), from /proc/PID/task/*/status. Needs a release build (cargo build --release).
# Usage: bench/idle.sh [SECONDS]
set -euo pipefail
secs=${1:-10}
bin="$(dirname "$0")/../target/release/pbxguard"
data=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$data"' EXIT
"$bin" --data "$data" run --sip-udp 127.0.0.1:0 --sip-tcp 127.0.0.1:0 --sip-tls 127.0.0.1:0 2>/dev/null &
pid=$!
until [ -f "$data/listen.json" ]; do sleep 0.1; done
sleep 3   # start-up work done
snap() { for t in /proc/$pid/task/*; do echo "$(cat "$t/comm" | tr ' ' _) $(grep -h ctxt_switches "$t/status" | awk '{s+=$2} END {print s}')"; done; }
a=$(snap); sleep "$secs"; b=$(snap)
paste <(echo "$a") <(echo "$b") | awk -v s="$secs" '{d=$4-$2; t+=d; printf "%-18s %d\n", $1, d} END {printf "total %d in %d s (%.1f/s)\n", t, s, t/s}'
