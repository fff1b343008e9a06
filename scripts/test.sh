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
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release
