#!/usr/bin/env bash
# The operator's footprint and API traffic with many bindings: S Services over 10 namespaces, K
# PluginBindings per Service (K > 1: binding j binds the API prefix /p<j>), one login plugin per
# namespace, on the real kube-apiserver harness. Reports:
#   - the time until every Service's ConfigMap exists, and the operator's RSS (VmRSS, VmHWM);
#   - the operator's API writes (the API server's own request counters: create, update, patch,
#     apply, delete, by resource; its own Lease heartbeats left out) for the cold start, and for
#     one change: the plugin of one namespace gets a new ttlMinutes, which re-renders S/10
#     Services (the patch itself is not counted in the total).
#   bash bench/operator-scale.sh [services, default 1000] [bindings per service, default 1]
# WXGATE_OPERATOR_BIN=PATH runs that operator binary instead of this tree's release build (to
# compare with another version).
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-1000}; K=${2:-1}; NS=10; PER=$((S / NS)); N=$((NS * PER))
if [ -n "${WXGATE_OPERATOR_BIN:-}" ]; then
  cargo build -q --locked -p wxgate-crds --bin crdgen; crdgen=target/debug/crdgen
else
  bin=$(bash scripts/release.sh -q -p wxgate-operator -p wxgate-crds); crdgen=$bin/crdgen
fi
operator=${WXGATE_OPERATOR_BIN:-$bin/wxgate-operator}
dir=$(mktemp -d); op=; trap 'kill ${op:-} 2>/dev/null || true; bash tests/kube-apiserver/stop.sh "$dir"; rm -rf "$dir"' EXIT
bash tests/kube-apiserver/start.sh "$dir" >/dev/null
export KUBECONFIG=$dir/kubeconfig
"$crdgen" --stdout | kubectl apply --server-side -f - >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
python3 - "$NS" "$PER" "$K" > "$dir/objects.yaml" <<'PY'
import sys
ns_count, per, k = (int(a) for a in sys.argv[1:])
for n in range(ns_count):
    ns = f"scale-{n}"
    print(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{ name: {ns} }}")
    print(f"---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: creds, namespace: {ns} }}\nstringData: {{ appsecret: x }}")
    print(f"---\napiVersion: wxgate.dev/v1alpha1\nkind: GatewayPlugin\nmetadata: {{ name: login, namespace: {ns} }}\nspec: {{ type: WeChatMpLogin, wechatMpLogin: {{ appId: wx0123456789abcdef, credentialsSecretRef: {{ name: creds }} }} }}")
    for i in range(per):
        print(f"---\napiVersion: v1\nkind: Service\nmetadata: {{ name: svc-{i}, namespace: {ns} }}\nspec: {{ clusterIP: None, selector: {{ app: a{i} }}, ports: [ {{ port: 80, targetPort: http }} ] }}")
        for j in range(k):
            apis = f", apis: [ {{ path: /p{j}, match: Prefix }} ]" if k > 1 else ""
            print(f"---\napiVersion: wxgate.dev/v1alpha1\nkind: PluginBinding\nmetadata: {{ name: b-{i}-{j}, namespace: {ns} }}\nspec: {{ pluginRef: {{ name: login }}, targetRef: {{ name: svc-{i} }}{apis} }}")
PY
kubectl apply --server-side -f "$dir/objects.yaml" >/dev/null

# Writes the API server has served so far, by resource (one line per resource, then "total N").
writes() {
  kubectl get --raw /metrics | python3 -c '
import re, sys, collections
by = collections.Counter()
for line in sys.stdin:
    if not line.startswith("apiserver_request_total{"):
        continue
    labels = dict(re.findall(r"(\w+)=\"([^\"]*)\"", line))
    # Lease heartbeats of the API server itself are not the operator writes.
    if labels.get("verb") in ("POST", "PUT", "PATCH", "APPLY", "DELETE") and labels.get("resource") != "leases":
        sub = labels.get("subresource", "")
        by[labels["resource"] + ("/" + sub if sub else "")] += int(float(line.rsplit(" ", 1)[1]))
for k, v in sorted(by.items()):
    print(k, v)
print("total", sum(by.values()))
'
}
# Waits until the write counters stay the same for 6 s, then prints them.
settled() {
  local before after
  after=$(writes)
  while :; do
    before=$after; sleep 6; after=$(writes)
    [ "$before" = "$after" ] && break
  done
  echo "$after"
}
# The difference of two `writes` outputs, by resource, minus `own` writes of the script itself.
delta() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
parse = lambda s: dict((l.rsplit(" ", 1)[0], int(l.rsplit(" ", 1)[1])) for l in s.splitlines() if l)
a, b, own = parse(sys.argv[1]), parse(sys.argv[2]), int(sys.argv[3])
d = {k: b.get(k, 0) - a.get(k, 0) for k in b if k != "total" and b.get(k, 0) != a.get(k, 0)}
print(" ".join(f"{k}={v}" for k, v in sorted(d.items())), f"(total {b['total'] - a['total'] - own})")
PY
}

base=$(settled)
start=$(date +%s.%N)
"$operator" --kubeconfig "$KUBECONFIG" --admin-listen 127.0.0.1:0 --log warn > "$dir/operator.log" 2>&1 &
op=$!
while :; do
  n=$(kubectl get configmaps -A -l app.kubernetes.io/managed-by=wxgate-operator --no-headers 2>/dev/null | wc -l)
  [ "$n" -ge "$N" ] && break
  kill -0 $op || { cat "$dir/operator.log"; exit 1; }
  sleep 1
done
end=$(date +%s.%N)
cold=$(settled)
rss=$(awk '/^VmRSS/ {print $2}' /proc/$op/status); hwm=$(awk '/^VmHWM/ {print $2}' /proc/$op/status)
printf 'services %s, bindings %s (%s per Service): all %s ConfigMaps written in %.1f s; operator RSS %s MiB (peak %s MiB)\n' \
  "$N" "$((N * K))" "$K" "$N" "$(echo "$end - $start" | bc)" "$((rss / 1024))" "$((hwm / 1024))"
echo "cold start API writes: $(delta "$base" "$cold" 0)"
kubectl -n scale-0 patch gatewayplugin login --type merge -p '{"spec":{"wechatMpLogin":{"session":{"ttlMinutes":90}}}}' >/dev/null
changed=$(settled)
echo "one plugin change ($PER Services, $((PER * K)) bindings re-rendered) API writes: $(delta "$cold" "$changed" 1); per Service: $(delta "$cold" "$changed" 1 | sed 's/.*(total \([0-9]*\))/\1/' | awk -v p="$PER" '{printf "%.1f", $1 / p}')"
