#!/usr/bin/env bash
# Runs every test of Seam: formatting, clippy (-D warnings) and the whole workspace's tests
# (unit tests, the SDK harness tests of the example plugin, and the end-to-end tests in
# tests/tests/ against real compiled plugins and real local HTTP servers).
# Works on a fresh machine: it installs the wasm target the plugins are built for.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== setup: wasm32-wasip2 target"
rustup target add wasm32-wasip2

echo "== rustfmt"
cargo fmt --all --check

echo "== clippy"
cargo clippy --release --workspace --all-targets -- -D warnings

echo "== tests"
cargo test --release --workspace
