#!/bin/sh
# Side by side on one core, same file: pbxguard's sshd parser (criterion, bench/sshd_log.rs), its floor
# (touching every byte), and fail2ban-regex with Debian's sshd filter. The file: tests/data/sshd/auth.log
# (real OpenSSH 9.2 lines with a syslog prefix, among CRON/sudo/pam_unix lines) repeated to N lines.
# Needs: apt-get install fail2ban. Usage: bench/sshd_log.sh [N]   (default 200000)
set -eu
cd "$(dirname "$0")/.."
N=${1:-200000}
F=$(mktemp /tmp/sshd-bench.XXXXXX.log)
trap 'rm -f "$F"' EXIT
while [ "$(wc -l < "$F")" -lt "$N" ]; do cat tests/data/sshd/auth.log >> "$F"; done
head -n "$N" "$F" > "$F.tmp" && mv "$F.tmp" "$F"
echo "file: $N lines, $(wc -c < "$F") bytes"
echo "--- fail2ban-regex $(fail2ban-regex --version 2>/dev/null | head -1) (filter sshd, mode normal)"
T0=$(date +%s.%N)
taskset -c 0 fail2ban-regex "$F" /etc/fail2ban/filter.d/sshd.conf > /tmp/f2b-bench.out 2>&1
T1=$(date +%s.%N)
grep -E "^Lines:|^Failregex:" /tmp/f2b-bench.out
echo "fail2ban-regex: $(echo "$N / ($T1 - $T0)" | bc) lines/s ($(echo "$T1 - $T0" | bc) s, startup included)"
echo "--- pbxguard (criterion, one core)"
SSHD_LOG_FILE="$F" taskset -c 0 cargo bench -p pbxguard-shield --bench sshd_log -- --warm-up-time 1 --measurement-time 5 SSHD_LOG_FILE 2>&1 \
  | grep -E "^sshd_log/|thrpt"
