#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine: installs the real peers the end-to-end tests
# talk to (SIPp, baresip, sipvicious) and iproute2, then formatting, lints and every test. Needs root
# (apt-get; one test adds IPv6 addresses of its own to the loopback interface).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v sipp >/dev/null || need+=(sip-tester)
command -v baresip >/dev/null || need+=(baresip-core)
command -v svmap >/dev/null || need+=(sipvicious)
[ -x /bin/kill ] || need+=(procps)   # the tests stop the daemon with SIGTERM
command -v ip >/dev/null || need+=(iproute2)   # IPv6 test addresses on loopback
command -v nft >/dev/null || need+=(nftables)   # the firewall tests load rulesets in namespaces
command -v python3 >/dev/null || need+=(python3)   # listeners and probes in the firewall test namespaces
[ -x /usr/sbin/sshd ] || need+=(openssh-server)   # tests/ssh.rs runs a real sshd in a namespace
command -v sshpass >/dev/null || need+=(sshpass)   # ...and attacks it with wrong passwords
[ -x /bin/nc.openbsd ] || need+=(netcat-openbsd)   # ...and scans it (nc -z -s ADDR)
command -v curl >/dev/null || need+=(curl)   # GUI tests: logins from chosen loopback addresses (--interface)
command -v openssl >/dev/null || need+=(openssl)   # SIGHUP test: new certificates, and s_client reads their serial
command -v pebble >/dev/null || need+=(pebble)   # certificate test: a local ACME CA (with pebble-challtestsrv as DNS)
command -v sqlite3 >/dev/null || need+=(sqlite3)   # restore test: a backup with a newer schema version
command -v man >/dev/null || need+=(man-db)   # package test: man pbxguard
command -v systemd-analyze >/dev/null || need+=(systemd)   # package test: systemd-analyze verify on the unit
command -v strip >/dev/null || need+=(binutils)   # cargo-deb strips the packaged binary
command -v chromium >/dev/null || need+=(chromium)   # tests/gui_browser.rs: Playwright drives Debian's chromium
python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)   # ...from a venv with playwright
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The browser test's Playwright (pinned: it must match Debian's chromium closely); never `playwright install`.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -c 'import playwright' 2>/dev/null || .venv/bin/pip install -q playwright==1.65.2

# tests/package.rs builds the .deb with cargo-deb (about 2.5 minutes to install on 2 cores).
cargo deb --version >/dev/null 2>&1 || cargo install cargo-deb --locked

cargo fmt --all --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
