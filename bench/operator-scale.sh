#!/usr/bin/env bash
# The operator's footprint with many bindings: N PluginBindings (each with its own Service) over
# 10 namespaces on the real kube-apiserver harness; reports the time until every Service's
# ConfigMap exists and the operator's RSS (VmRSS, VmHWM).
#   bash bench/operator-scale.sh [bindings, default 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}; NS=10; PER=$((N / NS))
cargo build -q --release --locked -p wxgate-operator -p wxgate-crds
dir=$(mktemp -d); op=; trap 'kill ${op:-} 2>/dev/null || true; bash tests/kube-apiserver/stop.sh "$dir"; rm -rf "$dir"' EXIT
bash tests/kube-apiserver/start.sh "$dir" >/dev/null
export KUBECONFIG=$dir/kubeconfig
target/release/crdgen --stdout | kubectl apply --server-side -f - >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
python3 - "$NS" "$PER" > "$dir/objects.yaml" <<'PY'
import sys
ns_count, per = int(sys.argv[1]), int(sys.argv[2])
for n in range(ns_count):
    ns = f"scale-{n}"
    print(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{ name: {ns} }}")
    print(f"---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: creds, namespace: {ns} }}\nstringData: {{ appsecret: x }}")
    print(f"---\napiVersion: wxgate.dev/v1alpha1\nkind: GatewayPlugin\nmetadata: {{ name: login, namespace: {ns} }}\nspec: {{ type: WeChatMpLogin, wechatMpLogin: {{ appId: wx0123456789abcdef, credentialsSecretRef: {{ name: creds }} }} }}")
    for i in range(per):
        print(f"---\napiVersion: v1\nkind: Service\nmetadata: {{ name: svc-{i}, namespace: {ns} }}\nspec: {{ clusterIP: None, selector: {{ app: a{i} }}, ports: [ {{ port: 80, targetPort: http }} ] }}")
        print(f"---\napiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: {{ name: b-{i}, namespace: {ns} }}\nspec: {{ pluginRef: {{ name: login }}, targetRef: {{ name: svc-{i} }} }}")
PY
kubectl apply --server-side -f "$dir/objects.yaml" >/dev/null
start=$(date +%s.%N)
target/release/wxgate-operator --kubeconfig "$KUBECONFIG" --admin-listen 127.0.0.1:0 --log warn > "$dir/operator.log" 2>&1 &
op=$!
while :; do
  n=$(kubectl get configmaps -A -l app.kubernetes.io/managed-by=wxgate-operator --no-headers 2>/dev/null | wc -l)
  [ "$n" -ge "$N" ] && break
  kill -0 $op || { cat "$dir/operator.log"; exit 1; }
  sleep 1
done
end=$(date +%s.%N)
sleep 5
rss=$(awk '/^VmRSS/ {print $2}' /proc/$op/status); hwm=$(awk '/^VmHWM/ {print $2}' /proc/$op/status)
printf 'bindings %s: all %s ConfigMaps written in %.1f s; operator RSS %s MiB (peak %s MiB)\n' "$N" "$N" "$(echo "$end - $start" | bc)" "$((rss / 1024))" "$((hwm / 1024))"
