#!/usr/bin/env bash
# Stops a harness started by start.sh DIR (SIGTERM, then SIGKILL after 20 s) and removes its
# egress rule.
set -euo pipefail
dir=${1:?usage: stop.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$dir" ] && dir=$(cd "$dir" && pwd)
for f in kcm.pid pid; do
  [ -f "$dir/$f" ] || continue
  pid=$(cat "$dir/$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/$f"
done
rm -f "$dir/ready"
bash "$here/egress.sh" unblock "$dir"
