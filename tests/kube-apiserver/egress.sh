#!/usr/bin/env bash
# The service range (10.0.0.0/24) never leaves this machine: `block DIR` adds a filter OUTPUT
# rule rejecting it (tagged with DIR, so several harnesses each own theirs), `unblock DIR`
# removes it. kube-proxy's DNAT happens before the filter table, so ClusterIPs a kube-proxy
# handles keep working. Needs root; without it, a warning (tests that install webhooks by
# Service must then not run).
set -euo pipefail
action=${1:?usage: egress.sh block|unblock DIR}; dir=${2:?}
rule=(OUTPUT -d 10.0.0.0/24 -m comment --comment "wxgate-harness $dir" -j REJECT)
if [ "$(id -u)" != 0 ] || ! command -v iptables >/dev/null; then
  [ "$action" = block ] && echo "egress.sh: warning: not root or no iptables, so the service range 10.0.0.0/24 is not blocked: calls to a ClusterIP may follow the default route" >&2
  exit 0
fi
case $action in
  block) iptables -C "${rule[@]}" 2>/dev/null || iptables -A "${rule[@]}" ;;
  unblock) while iptables -D "${rule[@]}" 2>/dev/null; do :; done ;;
  *) echo "egress.sh: block or unblock" >&2; exit 64 ;;
esac
