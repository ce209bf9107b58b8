#!/usr/bin/env bash
# Runs every test of Seam: formatting, clippy (-D warnings) and the whole workspace's tests
# (unit tests, the SDK harness tests of the example plugin, and the end-to-end tests in
# tests/tests/ against real compiled plugins and real local HTTP servers).
# Works on a fresh machine: it installs the wasm target the plugins are built for, the SMTP
# server the email tests send to, and the headless browser of the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== setup: wasm32-wasip2 target"
rustup target add wasm32-wasip2

echo "== setup: Debian packages the end-to-end tests run"
# tests/tests/smtp.rs starts tests/smtp/relay.py, a real SMTP server (python3-aiosmtpd);
# the browser tests drive headless Chromium through chromedriver.
missing=()
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || missing+=(python3-aiosmtpd)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

echo "== rustfmt"
cargo fmt --all --check

echo "== clippy"
cargo clippy --release --workspace --all-targets -- -D warnings

echo "== tests"
cargo test --release --workspace
