#!/usr/bin/env bash
# Starts a real one-node Kubernetes on this machine, with nothing able to leave it:
# containerd + runc (Debian's), the kube-apiserver harness in node mode, the
# kube-controller-manager with the controllers a node needs, kube-scheduler, kubelet and
# kube-proxy (built from the harness's k8s.io/kubernetes module), and wxgate's four images
# imported. Returns once the node is Ready and leaves DIR/kubeconfig (admin).
#   tests/kube-node/start.sh DIR        (as root; stop with tests/kube-node/stop.sh DIR)
# Idempotent: a running node is left as it is; the leftovers of a crashed one are cleaned first.
#
# Addresses (they exist only inside this machine): node 10.245.0.1/32 on lo (API server,
# kubelet), pods 10.244.0.0/24 on bridge wxgate0 with no default route, services 10.0.0.0/24
# (the API server is 10.0.0.1). Pod traffic leaving the pod range is dropped; the node address
# answers only lo and, for the API server's port, the pods.
set -euo pipefail
dir=${1:?usage: start.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/node.env"
say() { printf 'kube-node: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (containerd, the kubelet and the network setup need it)"
command -v go >/dev/null || die "Go is required to build the node binaries (go not found)"
command -v python3 >/dev/null || die "python3 is required to assemble the images"
# The pinned kubectl, never whatever comes first on PATH.
helm_dir=$(bash "$here/../install-helm.sh") || die "tests/install-helm.sh could not install the pinned kubectl"
PATH="$helm_dir/kubectl:$PATH"
[ -d /sys/fs/cgroup ] || die "no /sys/fs/cgroup"
free_kb=$(df -Pk "$(dirname "$(mkdir -p "$dir" && cd "$dir" && pwd)")" | awk 'NR==2 {print $4}')
[ "$free_kb" -ge 2000000 ] || die "needs about 2 GB free for the node's state; $((free_kb / 1024)) MB free"
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)

# alive NAME: the process whose pid is in DIR/NAME.pid runs (the harness's own file is DIR/pid).
alive() { local f="$dir/$1.pid"; [ "$1" = kas ] && f="$dir/pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
if [ -f "$dir/node-ready" ] && alive containerd && alive kubelet && alive proxy && alive scheduler && alive kas; then
  say "already running: KUBECONFIG=$dir/kubeconfig"; exit 0
fi
if [ -e "$dir/node-started" ]; then
  say "cleaning up the leftovers of an earlier start"
  bash "$here/stop.sh" "$dir"
fi
touch "$dir/node-started"

missing=()
for pkg in containerd runc containernetworking-plugins iptables conntrack ca-certificates; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; } \
    || die "could not install ${missing[*]}"
fi

say "building the node binaries (cached under ~/.cache/kube-node)"
bins=$(bash "$here/build.sh")
kas_bin=$(bash "$here/../kube-apiserver/build.sh")
say "assembling the images"
bash "$here/images.sh" "$dir/images" "$bins/pause" >&2

# Machine state the node changes, restored by stop.sh.
: > "$dir/sysctls"
for key in $SYSCTLS; do
  [ -e "/proc/sys/${key//.//}" ] && echo "$key=$(sysctl -n "$key")" >> "$dir/sysctls"
done
ip netns list 2>/dev/null | awk '{print $1}' > "$dir/netns-before" || true
sysctl -qw net.ipv4.ip_forward=1
[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1

ip addr replace "$NODE_IP/32" dev lo
if ! iptables -nL "$CHAIN" >/dev/null 2>&1; then iptables -N "$CHAIN"; fi
iptables -F "$CHAIN"

say "starting the API server (node mode) and the controller manager"
bash "$here/../kube-apiserver/start.sh" "$dir" --node-address "$NODE_IP" --controllers "$CONTROLLERS" >&2
port=$(sed -n 's|.*:\([0-9]*\)$|\1|p' "$dir/ready")
iptables -A "$CHAIN" -i lo -j RETURN
iptables -A "$CHAIN" -i "$BRIDGE" -p tcp --dport "$port" -j RETURN
iptables -A "$CHAIN" -j DROP
iptables -C INPUT -d "$NODE_IP/32" -j "$CHAIN" 2>/dev/null || iptables -I INPUT -d "$NODE_IP/32" -j "$CHAIN"
iptables -C FORWARD "${FORWARD_RULE[@]}" 2>/dev/null || iptables -I FORWARD "${FORWARD_RULE[@]}"

say "starting containerd"
mkdir -p "$dir/containerd" "$dir/cni/net.d" "$dir/kubelet/root" "$dir/kubelet/pod-logs" "$dir/proxy"
cat > "$dir/cni/net.d/10-wxgate-node.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "wxgate-node", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "isDefaultGateway": false, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$dir/cni/ipam",
            "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY"}]],
            "routes": [{"dst": "$SERVICE_CIDR"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
cat > "$dir/containerd/config.toml" <<TOML
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$dir/containerd/containerd.sock"
[ttrpc]
  address = "$dir/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "wxgate/pause:test"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
TOML
nohup containerd --config "$dir/containerd/config.toml" < /dev/null > "$dir/containerd/log" 2>&1 &
echo $! > "$dir/containerd.pid"
ctr=(ctr --address "$dir/containerd/containerd.sock" -n k8s.io)
for _ in $(seq 60); do "${ctr[@]}" version >/dev/null 2>&1 && break; alive containerd || die "containerd exited: $(tail -5 "$dir/containerd/log")"; sleep 0.5; done
for image in "$dir"/images/*.tar; do
  "${ctr[@]}" images import "$image" >/dev/null || die "could not import $image"
done
say "images: $("${ctr[@]}" images ls -q | grep -v '^sha256:' | sed 's|^[^/]*/||' | tr '\n' ' ')"

say "starting the kubelet, kube-proxy and kube-scheduler"
echo "nameserver 127.0.0.1" > "$dir/kubelet/resolv.conf"
cat > "$dir/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$dir/containerd/containerd.sock
oomScoreAdj: 0
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%", "memory.available": "100Mi"}
resolvConf: $dir/kubelet/resolv.conf
podLogsDir: $dir/kubelet/pod-logs
maxPods: 40
serializeImagePulls: false
shutdownGracePeriod: 0s
YAML
nohup "$bins/kube-node" kubelet --config "$dir/kubelet/config.yaml" --kubeconfig "$dir/kubeconfig" \
  --root-dir "$dir/kubelet/root" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v=1 \
  < /dev/null > "$dir/kubelet/log" 2>&1 &
echo $! > "$dir/kubelet.pid"
cat > "$dir/proxy/config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $dir/kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
nodePortAddresses: ["$NODE_IP/32"]
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0, min: 0}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
YAML
nohup "$bins/kube-node" proxy --config "$dir/proxy/config.yaml" < /dev/null > "$dir/proxy/log" 2>&1 &
echo $! > "$dir/proxy.pid"
nohup "$bins/kube-node" scheduler --kubeconfig "$dir/kubeconfig" --leader-elect=false \
  < /dev/null > "$dir/scheduler.log" 2>&1 &
echo $! > "$dir/scheduler.pid"

export KUBECONFIG="$dir/kubeconfig"
for i in $(seq 120); do
  for p in containerd kubelet proxy scheduler kas; do
    alive "$p" || die "$p exited; see its log in $dir"
  done
  if [ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] \
     && kubectl get serviceaccount default -n default >/dev/null 2>&1 \
     && [ -z "$(kubectl get node "$NODE_NAME" -o jsonpath='{.spec.taints}' 2>/dev/null)" ]; then
    touch "$dir/node-ready"
    say "node $NODE_NAME Ready after ${i}s: KUBECONFIG=$dir/kubeconfig"
    exit 0
  fi
  sleep 1
done
die "the node was not Ready after 120 s; see $dir/kubelet/log"
