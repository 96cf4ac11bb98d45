#!/usr/bin/env bash
# Starts the real kube-apiserver (etcd embedded) in the background and returns once it is ready,
# then the kube-controller-manager beside it (by default its garbage-collector and namespace
# controllers, so owner references and namespace deletion behave as in a cluster).
#   tests/kube-apiserver/start.sh DIR [--node-address IP] [--controllers LIST] [-- extra kube-apiserver flags]
# --node-address: node mode (see main.go; tests/kube-node/start.sh uses it). --controllers: the
# KCM's controllers instead of the default two.
# Leaves DIR/kubeconfig (admin), DIR/pid, DIR/log, DIR/kcm.pid and DIR/kcm.log. Builds the
# harness first if needed.
#
# Egress: nothing routes the service range (10.0.0.0/24) on this machine unless a kube-proxy
# does, so the API server's own calls to a ClusterIP (an admission webhook's `service:`) would
# follow the default route out. As root, start.sh adds a filter OUTPUT rule rejecting that range
# (kube-proxy's DNAT comes first, so Services it handles still work) and stop.sh removes it.
set -euo pipefail
dir=${1:?usage: start.sh DIR [--node-address IP] [--controllers LIST] [-- extra kube-apiserver flags]}; shift
node_address=""; controllers="garbage-collector-controller,namespace-controller"
while [ $# -gt 0 ]; do
  case $1 in
    --node-address) node_address=${2:?}; shift 2 ;;
    --controllers) controllers=${2:?}; shift 2 ;;
    --) shift; break ;;
    *) echo "start.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
bin=$(bash "$here/build.sh")
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
  echo "start.sh: already running (pid $(cat "$dir/pid")), kubeconfig $dir/kubeconfig"; exit 0
fi
bash "$here/egress.sh" block "$dir"
rm -rf "$dir/etcd" "$dir/ready"
args=(--dir "$dir" --no-stdin-watch)
[ -n "$node_address" ] && args+=(--node-address "$node_address")
nohup "$bin" "${args[@]}" -- "$@" < /dev/null > "$dir/log" 2>&1 &
echo $! > "$dir/pid"
for _ in $(seq 240); do
  if [ -f "$dir/ready" ]; then
    nohup "$bin" kcm --kubeconfig="$dir/kubeconfig" --controllers="$controllers" --root-ca-file="$dir/ca.crt" \
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
