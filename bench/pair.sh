#!/usr/bin/env bash
# Before/after: the CPU per verified request of two sidecar builds, measured at the same time.
# Both sidecars share CPU 1 and each is loaded by its own wrk (CPU 0) at once, so whatever else
# the machine does in a run slows both alike; each run gives the ratio B/A of their CPU per
# request. The runs alternate which build's load starts first; the ratio reported is the median
# over all runs. On the 2-vCPU VMs here one build against itself gave 1.002 (median of 5 runs,
# each within 0.978-1.007), where separate runs of one build differ by up to 25%.
#
#   bash bench/pair.sh A_BIN B_BIN [seconds per run, default 4] [runs, default 8]
#   bash bench/pair.sh nginx B_BIN ...   # A is nginx proxy_pass adding one header (bench/run.sh's)
#   bash bench/pair.sh pass:A_BIN B_BIN ...   # A passes through (its route bound to no plugin)
#   WXGATE_CREDENTIAL_CACHE=0 bash bench/pair.sh ...   # sidecar flags as environment: both sidecars
#
# Prints each run and the median ratio: below 1 means B costs less CPU per request than A.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 SECS=${3:-4} RUNS=${4:-8}
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
command -v nginx >/dev/null || apt-get install -y -q nginx-light >/dev/null
sim=$(bash scripts/release.sh -q -p wxgate-sim)/wxgate-wechat-sim
source bench/manifests.sh
work=$(mktemp -d); pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
APP=19180 SIM=19184 PA=19183 PB=19193
cat > "$work/app.conf" <<NGX
worker_processes 1; daemon off; pid $work/app.pid; error_log $work/app-error.log;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$APP; location / { return 200 "hello world\n"; } } }
NGX
taskset -c 1 nginx -c "$work/app.conf" -p "$work" & pids+=($!)
"$sim" --listen "127.0.0.1:$SIM" >/dev/null & pids+=($!)
manifests "$work/m" ""
start() { # $1 binary, $2 port, $3 manifests (default: the whole app bound)
  WXGATE_ACCESS_LOG=false WXGATE_LOG=warn taskset -c 1 "$1" --manifests "${3:-$work/m}" \
    --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$(($2 + 100))" \
    --upstream "http://127.0.0.1:$APP" --wechat-api-base "http://127.0.0.1:$SIM" \
    >"$work/sidecar-$2.log" 2>&1 & pids+=($!)
}
if [ "$A" = nginx ]; then
  cat > "$work/proxy.conf" <<NGX
worker_processes 1; daemon off; pid $work/proxy.pid; error_log $work/proxy-error.log;
events { worker_connections 4096; }
http { access_log off; upstream app { server 127.0.0.1:$APP; keepalive 128; }
  server { listen 127.0.0.1:$PA; location / { proxy_pass http://app; proxy_http_version 1.1;
    proxy_set_header Connection ""; proxy_set_header X-WX-OPENID "oBench"; } } }
NGX
  taskset -c 1 nginx -c "$work/proxy.conf" -p "$work" & pids+=($!)
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PA/" && break; sleep 0.1; done
  apid=$(pgrep -P "$(cat "$work/proxy.pid")")
elif [[ $A == pass:* ]]; then
  manifests "$work/pass" "  apis: [ { path: /login, match: Exact } ]"
  start "${A#pass:}" $PA "$work/pass"; apid=$!
else
  start "$A" $PA; apid=$!
fi
start "$B" $PB; bpid=$!
for port in $((PA + 100)) $((PB + 100)); do
  [ "$A" = nginx ] && [ $port = $((PA + 100)) ] && continue
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
done
# nginx ignores the credential header; it is sent anyway, so both get requests of one size.
if [ "$A" = nginx ]; then ca=$(credential $PB pair_$PB); else ca=$(credential $PA pair_$PA); fi
cb=$(credential $PB pair_$PB)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() { # $1 port, $2 credential, $3 output
  taskset -c 0 wrk -t1 -c32 -d"${SECS}s" -H "user_session: $2" "http://127.0.0.1:$1/hello" > "$3"
}
load $PA "$ca" /dev/null; load $PB "$cb" /dev/null
ratios=""
for i in $(seq "$RUNS"); do
  a0=$(ticks $apid) b0=$(ticks $bpid)
  if [ $((i % 2)) = 1 ]; then
    load $PA "$ca" "$work/a" & la=$!; load $PB "$cb" "$work/b" & lb=$!
  else
    load $PB "$cb" "$work/b" & lb=$!; load $PA "$ca" "$work/a" & la=$!
  fi
  wait $la $lb
  a1=$(ticks $apid) b1=$(ticks $bpid)
  if grep -q Non-2xx "$work/a" "$work/b"; then echo "pair.sh: non-2xx answers" >&2; exit 1; fi
  na=$(awk '/requests in/ {print $1}' "$work/a") nb=$(awk '/requests in/ {print $1}' "$work/b")
  r=$(awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) -v na="$na" -v nb="$nb" 'BEGIN {printf "%.3f", (b / nb) / (a / na)}')
  echo "run $i: A $na requests $((a1 - a0)) ticks, B $nb requests $((b1 - b0)) ticks: CPU per request B/A $r"
  ratios+="$r "
done
median=$(echo "$ratios" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
echo "CPU per request, B / A: median $median of $RUNS runs [$ratios]"
