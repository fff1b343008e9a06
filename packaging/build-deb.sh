#!/usr/bin/env bash
# Builds the Debian package (target/debian/pbxguard_VERSION-1_ARCH.deb) with cargo-deb: the binary,
# its man pages and shell completions (generated from the CLI definition by the binary itself), the
# systemd unit and the default configuration. `--no-build` packages the release binary already built.
# cargo-deb: `cargo install cargo-deb --locked` (about 2.5 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --no-build ]; then
    cargo build --release
fi
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/pbxguard"
# cargo-deb resolves asset paths from the package root; target/release/ alone is mapped to the real
# target directory, so the generated files go to a fixed place.
assets=target/assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$bin" completions bash >"$assets/completions/pbxguard"
"$bin" completions zsh >"$assets/completions/_pbxguard"
"$bin" completions fish >"$assets/completions/pbxguard.fish"
# Stripped: the packaged binary is a sixth of the size (symbols for debugging stay in the build tree).
cargo deb --no-build --strip --output target/debian/
