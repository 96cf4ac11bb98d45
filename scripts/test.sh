#!/usr/bin/env bash
# The test command: every check CI runs, on a fresh machine too.
#   format, lints (warnings are errors), then every test of the workspace.
# It installs what it needs and caches heavy builds under $HOME/.cache.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

command -v cargo >/dev/null || { echo "test.sh: Rust is required (cargo not found)" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "all checks passed"
