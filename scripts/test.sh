#!/usr/bin/env bash
# The test command: every check CI runs, on a fresh machine too.
#   format, lints (warnings are errors), the workspace-hack crate (scripts/workspace-hack.sh),
#   the dependency policy (scripts/deny.sh), fuzzing
#   (scripts/fuzz.sh), the real kube-apiserver harness, then every test of the
#   workspace (the e2e tests run against that API server), the mini-program SDK's tests
#   (sdk/miniprogram/test.sh, against a real sidecar), then a real node
#   (tests/kube-node/start.sh: containerd, kubelet, kube-proxy, wxgate's images) and the tests
#   that install wxgate with Helm and serve real pods on it. The node needs root.
# It installs what it needs and caches heavy builds under $HOME/.cache.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

command -v cargo >/dev/null || { echo "test.sh: Rust is required (cargo not found)" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "one feature set per dependency for every cargo selection (scripts/workspace-hack.sh)"
bash scripts/workspace-hack.sh

step "dependency policy: licenses, bans, sources (scripts/deny.sh, deny.toml)"
bash scripts/deny.sh

step "coverage-guided fuzzing: every parser of outside input, 10^5 executions per target at least (scripts/fuzz.sh; needs cargo +nightly)"
bash scripts/fuzz.sh

step "kube-apiserver harness (a real API server built from the k8s.io/kubernetes module; cached under ~/.cache/kas-harness)"
kas_dir=$(mktemp -d)
node_dir=$(mktemp -d)
# The harness folders hold the admin token and keys: removed after a green run; after a red one
# only their logs stay (never a folder something is still mounted under).
cleanup() {
  local status=$?
  bash tests/kube-apiserver/stop.sh "$kas_dir"
  if [ -e "$node_dir/node-started" ]; then bash tests/kube-node/stop.sh "$node_dir"; fi
  for dir in "$kas_dir" "$node_dir"; do
    if awk -v d="$dir/" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
      echo "test.sh: $dir still has mounts; left in place" >&2
    elif [ "$status" = 0 ]; then
      rm -rf "$dir"
    else
      find "$dir" -mindepth 1 -not -name '*.log' -not -name log -delete 2>/dev/null || true
      [ -z "$(ls -A "$dir")" ] && rmdir "$dir" || echo "test.sh: logs kept in $dir" >&2
    fi
  done
}
trap cleanup EXIT
bash tests/kube-apiserver/start.sh "$kas_dir"
export WXGATE_E2E_KUBECONFIG="$kas_dir/kubeconfig"

step "helm and kubectl (pinned, checksum-verified, cached under ~/.cache)"
helm_dir=$(bash tests/install-helm.sh)
export PATH="$helm_dir/helm:$helm_dir/kubectl:$PATH"
helm version --short

step "cargo test (unit, integration on loopback, end-to-end on the API server)"
cargo test --workspace --locked
bash tests/kube-apiserver/stop.sh "$kas_dir"

step "the mini-program client SDK against a real sidecar (sdk/miniprogram/test.sh: node --test, tsc, npm pack)"
command -v node >/dev/null || apt-get install -y -q nodejs npm >/dev/null
bash sdk/miniprogram/test.sh

step "a real node: containerd, kubelet, kube-proxy and wxgate's images (tests/kube-node/start.sh)"
bash tests/kube-node/start.sh "$node_dir"

step "end-to-end on the node: helm install, real pods, traffic through the ClusterIP"
export WXGATE_E2E_KUBECONFIG="$node_dir/kubeconfig" WXGATE_NODE_DIR="$node_dir"
cargo test -p wxgate-e2e --locked --test node -- --ignored --nocapture
cargo test -p wxgate-e2e --locked --test node_uninstall -- --ignored --nocapture

step "all checks passed"
