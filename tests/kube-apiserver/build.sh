#!/usr/bin/env bash
# Builds the harness (a real kube-apiserver with etcd embedded) once per machine and prints the
# binary's path, cached under $HOME/.cache/kas-harness/ (see tests/go-build.sh). A cold build
# takes many minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(bash "$here/../go-build.sh" "$here" kas-harness .:kube-apiserver-harness)
echo "$out/kube-apiserver-harness"
