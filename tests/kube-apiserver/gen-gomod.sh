#!/usr/bin/env bash
# Generates go.mod for the harness from the k8s.io/kubernetes module's own go.mod: every staging
# module it requires at v0.0.0 is replaced by its published v0.MINOR.PATCH. Run once when
# changing the Kubernetes version; commit go.mod and go.sum.
#   bash tests/kube-apiserver/gen-gomod.sh [1.36.3]
set -euo pipefail
V=${1:-1.36.3}; MINOR=${V#1.}
cd "$(dirname "$0")"
rm -f go.mod go.sum
go mod init wxgate.dev/kube-apiserver-harness
go mod edit -go=1.26
GOMOD=$(cd "$(mktemp -d)" && go mod download -json "k8s.io/kubernetes@v$V" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
for m in $( { awk '$1 ~ /^k8s\.io\// && $2=="v0.0.0" {print $1}' "$GOMOD";
              sed -n 's|^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*|\1|p' "$GOMOD"; } | sort -u ); do
  go mod edit -replace="$m=$m@v0.$MINOR"
done
go mod edit -require="k8s.io/kubernetes@v$V"
go mod tidy
