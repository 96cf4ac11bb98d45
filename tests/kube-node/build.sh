#!/usr/bin/env bash
# Builds the node binaries once per machine and prints their folder (cached under
# $HOME/.cache/kube-node/, see tests/go-build.sh): kube-node (kubelet, kube-proxy and
# kube-scheduler from the harness's k8s.io/kubernetes version) and pause (the pod sandbox).
# After the harness is built this takes a few minutes (the Go build cache is shared).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../go-build.sh" "$here/node" kube-node ./pause:pause .:kube-node
