#!/usr/bin/env bash
# The test command: every check CI runs, on a fresh machine too.
#   format, lints (warnings are errors), the real kube-apiserver harness, then every test of the
#   workspace (the e2e tests run against that API server).
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

step "kube-apiserver harness (a real API server built from the k8s.io/kubernetes module; cached under ~/.cache/kas-harness)"
kas_dir=$(mktemp -d)
trap 'bash tests/kube-apiserver/stop.sh "$kas_dir"' EXIT
bash tests/kube-apiserver/start.sh "$kas_dir"
export WXGATE_E2E_KUBECONFIG="$kas_dir/kubeconfig"

step "helm and kubectl (pinned, checksum-verified, cached under ~/.cache)"
helm_dir=$(bash tests/install-helm.sh)
export PATH="$PATH:$helm_dir/helm:$helm_dir/kubectl"
helm version --short

step "cargo test (unit, integration on loopback, end-to-end on the API server)"
cargo test --workspace --locked

step "all checks passed"
