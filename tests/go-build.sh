#!/usr/bin/env bash
# Builds a Go module of ours that links Kubernetes (tests/kube-apiserver, tests/kube-node/node)
# once per machine and prints the folder holding its binaries. The build is cached under
# $HOME/.cache/<name>/<hash of go.mod, go.sum and every .go file>, so only a change to those
# rebuilds it; two builds at once are serialised by a lock and never share a temporary file.
#   tests/go-build.sh MODULE_DIR NAME PACKAGE:BINARY...
set -euo pipefail
module=$(cd "${1:?usage: go-build.sh MODULE_DIR NAME PACKAGE:BINARY...}" && pwd); name=${2:?}; shift 2
command -v go >/dev/null || { echo "go-build.sh: Go is required to build $name (go not found)" >&2; exit 1; }
cd "$module"
FULL=$(sed -n 's/^[[:space:]]*k8s.io\/kubernetes \(v[0-9.]*\).*/\1/p' go.mod | head -1)
MINOR=$(echo "$FULL" | cut -d. -f2)
key=$( { cat go.mod go.sum; find . -name '*.go' | sort | xargs cat; } | sha256sum | cut -c1-16)
out="$HOME/.cache/$name/$key"
built() { for spec in "$@"; do [ -x "$out/${spec#*:}" ] || return 1; done; }
if built "$@"; then echo "$out"; exit 0; fi
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if built "$@"; then echo "$out"; exit 0; fi
free_kb=$(df -Pk "$HOME" | awk 'NR==2 {print $4}')
if [ "$free_kb" -lt 4000000 ]; then
  echo "go-build.sh: building $name needs about 4 GB free under $HOME; $((free_kb / 1024)) MB free" >&2
  exit 1
fi
for spec in "$@"; do
  pkg=${spec%%:*}; bin=${spec#*:}
  echo "go-build.sh: building $bin ($name, Kubernetes $FULL; cold: many minutes on 2 cores)..." >&2
  tmp=$(mktemp "$out/.$bin.XXXXXX")
  CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath \
    -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$FULL -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$MINOR -X k8s.io/component-base/version.gitTreeState=clean" \
    -o "$tmp" "$pkg" || { rm -f "$tmp"; exit 1; }
  mv "$tmp" "$out/$bin"
done
echo "$out"
