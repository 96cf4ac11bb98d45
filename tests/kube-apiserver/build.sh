#!/usr/bin/env bash
# Builds the harness (a real kube-apiserver with etcd embedded) once per machine and prints the
# binary's path. The binary is cached under $HOME/.cache/kas-harness/<hash of go.mod, go.sum and
# main.go>, so only a change to those rebuilds it. A cold build takes many minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")"
command -v go >/dev/null || { echo "build.sh: Go is required to build the kube-apiserver harness (go not found)" >&2; exit 1; }
FULL=$(sed -n 's/^[[:space:]]*k8s.io\/kubernetes \(v[0-9.]*\).*/\1/p' go.mod | head -1)
MINOR=$(echo "$FULL" | cut -d. -f2)
key=$(cat go.mod go.sum main.go | sha256sum | cut -c1-16)
out="$HOME/.cache/kas-harness/$key"
if [ -x "$out/kube-apiserver-harness" ]; then echo "$out/kube-apiserver-harness"; exit 0; fi
free_kb=$(df -Pk "$HOME" | awk 'NR==2 {print $4}')
if [ "$free_kb" -lt 4000000 ]; then
  echo "build.sh: the kube-apiserver harness build needs about 4 GB free under $HOME; $((free_kb / 1024)) MB free" >&2
  exit 1
fi
mkdir -p "$out"
echo "build.sh: building kube-apiserver $FULL with embedded etcd (cold: many minutes)..." >&2
CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath \
  -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$FULL -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$MINOR -X k8s.io/component-base/version.gitTreeState=clean" \
  -o "$out/kube-apiserver-harness.tmp" .
mv "$out/kube-apiserver-harness.tmp" "$out/kube-apiserver-harness"
echo "$out/kube-apiserver-harness"
