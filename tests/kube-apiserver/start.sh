#!/usr/bin/env bash
# Starts the real kube-apiserver (etcd embedded) in the background and returns once it is ready,
# then the kube-controller-manager's garbage-collector and namespace controllers beside it (so
# owner references and namespace deletion behave as in a cluster).
#   tests/kube-apiserver/start.sh DIR
# Leaves DIR/kubeconfig (admin), DIR/pid, DIR/log, DIR/kcm.pid and DIR/kcm.log. Builds the
# harness first if needed.
set -euo pipefail
dir=${1:?usage: start.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
bin=$(bash "$here/build.sh")
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
  echo "start.sh: already running (pid $(cat "$dir/pid")), kubeconfig $dir/kubeconfig"; exit 0
fi
rm -rf "$dir/etcd" "$dir/ready"
nohup "$bin" --dir "$dir" --no-stdin-watch < /dev/null > "$dir/log" 2>&1 &
echo $! > "$dir/pid"
for _ in $(seq 240); do
  if [ -f "$dir/ready" ]; then
    nohup "$bin" kcm --kubeconfig="$dir/kubeconfig" --controllers=garbage-collector-controller,namespace-controller \
      --leader-elect=false --secure-port=0 --use-service-account-credentials=false < /dev/null > "$dir/kcm.log" 2>&1 &
    echo $! > "$dir/kcm.pid"
    echo "kube-apiserver ready: KUBECONFIG=$dir/kubeconfig"
    exit 0
  fi
  kill -0 "$(cat "$dir/pid")" 2>/dev/null || { echo "start.sh: the harness exited; log:" >&2; tail -40 "$dir/log" >&2; exit 1; }
  sleep 0.5
done
echo "start.sh: not ready after 120 s; log:" >&2; tail -40 "$dir/log" >&2
exit 1
