#!/usr/bin/env bash
# Stops the node started by start.sh DIR and restores the machine: pods and containers, the
# processes (by PID), kube-proxy's iptables rules, the kubelet's and containerd's mounts, the
# bridge, the node address, our iptables rules, the sysctls and the CNI state. Idempotent.
#   tests/kube-node/stop.sh DIR
set -uo pipefail
dir=${1:?usage: stop.sh DIR}
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/node.env"
say() { printf 'kube-node: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { say "must run as root"; exit 1; }

stop_pid() { # name: SIGTERM, then SIGKILL after 10 s
  local f="$dir/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$f"
}

ctr=(ctr --address "$dir/containerd/containerd.sock" -n k8s.io)
stop_pid scheduler
stop_pid kubelet
# Every container and sandbox, killed at once (the kubelet is gone, so nothing restarts them).
if [ -S "$dir/containerd/containerd.sock" ] && "${ctr[@]}" version >/dev/null 2>&1; then
  for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s SIGKILL "$task" >/dev/null 2>&1; done
  sleep 1
  for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks delete -f "$task" >/dev/null 2>&1; done
  for c in $("${ctr[@]}" containers ls -q 2>/dev/null); do "${ctr[@]}" containers delete "$c" >/dev/null 2>&1; done
fi
stop_pid proxy
if [ -n "$(ls ~/.cache/kube-node/*/kube-node 2>/dev/null | head -1)" ]; then
  "$(ls -t ~/.cache/kube-node/*/kube-node | head -1)" proxy --cleanup >/dev/null 2>&1
fi
stop_pid containerd
# containerd's shims outlive it; each names our socket on its command line.
pkill -9 -f "containerd-shim.*$dir/containerd" 2>/dev/null
bash "$here/../kube-apiserver/stop.sh" "$dir"

# Mounts under DIR, deepest first (volumes, overlay snapshots, shm).
for _ in 1 2 3; do
  mounts=$(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)
  [ -z "$mounts" ] && break
  for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done
# Network namespaces the pods had, the bridge, the node address, our rules.
if [ -f "$dir/netns-before" ]; then
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-'); do
    grep -qx "$ns" "$dir/netns-before" || ip netns delete "$ns" 2>/dev/null
  done
fi
ip link delete "$BRIDGE" 2>/dev/null
ip addr delete "$NODE_IP/32" dev lo 2>/dev/null
while iptables -D INPUT -d "$NODE_IP/32" -j "$CHAIN" 2>/dev/null; do :; done
while iptables -D FORWARD "${FORWARD_RULE[@]}" 2>/dev/null; do :; done
iptables -F "$CHAIN" 2>/dev/null && iptables -X "$CHAIN" 2>/dev/null
# The kubelet's chains (kube-proxy --cleanup removed its own): jumps to them, then the chains.
for cmd in iptables ip6tables; do
  for table in filter nat mangle; do
    for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      for builtin in INPUT OUTPUT FORWARD PREROUTING POSTROUTING; do
        while "$cmd" -t "$table" -D "$builtin" -j "$chain" 2>/dev/null; do :; done
      done
      "$cmd" -t "$table" -F "$chain" 2>/dev/null && "$cmd" -t "$table" -X "$chain" 2>/dev/null
    done
  done
done
# Sysctls as they were.
if [ -f "$dir/sysctls" ]; then
  while IFS= read -r line; do sysctl -qw "$line" 2>/dev/null; done < "$dir/sysctls"
fi
# The pods' cgroups (cgroupfs driver: kubepods under each controller).
for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/unified/kubepods; do
  [ -d "$root" ] && find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
done
rm -f /var/lib/cni/results/wxgate-node-* 2>/dev/null
rm -rf "$dir/containerd" "$dir/kubelet" "$dir/cni" "$dir/proxy" "$dir/etcd" 2>/dev/null \
  || say "could not remove everything under $dir (still mounted?)"
rm -f "$dir/node-ready" "$dir/node-started" "$dir/sysctls" "$dir/netns-before"
say "stopped; the machine is restored"
