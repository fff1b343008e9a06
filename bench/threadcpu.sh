#!/usr/bin/env bash
# CPU per registration of each daemon thread (user and system µs, from /proc/PID/task/*/stat) while two
# SIPp send 10,000 authenticated registrations/s for SECONDS (default 20). CONFIG: an optional
# bootstrap configuration (e.g. one with `[sip] udp_workers = 2`). Needs a release build and the work
# directory of `bench/regbench.py` (its data directory with 10,000 users, and users.csv): run that once.
# Usage: bench/threadcpu.sh [SECONDS] [CONFIG]
set -euo pipefail
dur=${1:-20}
cfg=${2:-}
root="$(cd "$(dirname "$0")/.." && pwd)"
work=/tmp/pbxguard-bench
data=$work/pbxguard-data
sqlite3 "$data/pbxguard.db" "DELETE FROM bindings; DELETE FROM bans; DELETE FROM events;"
"$root/target/release/pbxguard" --data "$data" run ${cfg:+--config "$cfg"} --sip-udp 127.0.0.1:15090 \
  --sip-tcp off --sip-tls off 2>/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null' EXIT
until [ -f "$data/listen.json" ]; do sleep 0.1; done
snap() { for t in /proc/$pid/task/*; do echo "$(basename "$t") $(tr ' ' _ < "$t/comm") $(awk '{print $14, $15}' "$t/stat")"; done | sort; }
a=$(snap)
sipps=()
for i in 1 2; do
  dir=$(mktemp -d)
  (cd "$dir" && exec sipp -sf "$root/tests/sipp/reg_auth.xml" -inf "$work/users.csv" 127.0.0.1:15090 -i 127.0.0.1 \
    -p 0 -r 5000 -m $((5000 * dur)) -l 15000 -buff_size 4194304 -nostdin -timeout $((dur + 40))s \
    -default_behaviors none >/dev/null 2>&1) &
  sipps+=($!)
done
wait "${sipps[@]}"
b=$(snap)
join <(echo "$a") <(echo "$b") | awk -v n=$((10000 * dur)) -v hz="$(getconf CLK_TCK)" '
  { u = ($6 - $3) * 1e6 / hz / n; s = ($7 - $4) * 1e6 / hz / n
    if (u + s > 0) printf "%-18s user %5.1f  system %5.1f  µs/reg\n", $2, u, s; U += u; S += s }
  END { printf "total              user %5.1f  system %5.1f  µs/reg\n", U, S }'
