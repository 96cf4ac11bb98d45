#!/usr/bin/env bash
# WeChat beyond openid, measured on 127.0.0.1 against the WeChat simulator:
#  1. WeChat calls per 1000 logins that carry a phone code, each login sent once and then every
#     login sent twice (a double submit), counted by the simulator (GET /sim/calls);
#  2. the open-API port's added latency and throughput: GET /cgi-bin/getcallbackip through the
#     sidecar's open-API port vs the simulator called directly with a token, closed loop (wrk
#     --latency) at 1 and at 64 connections. The servers share CPU 1, wrk runs on CPU 0.
#
#   bash bench/open-api.sh [seconds per run, default 5] [logins, default 1000]
#
# Needs wrk and curl (installed from Debian's packages when missing); builds release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}; LOGINS=${2:-1000}
need() { command -v "$1" >/dev/null || { apt-get install -y -q "$2" >/dev/null; }; }
need wrk wrk; need curl curl
bin=$(bash scripts/release.sh -q -p wxgate-sidecar -p wxgate-sim)
work=$(mktemp -d); pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
APP=19180 SIDECAR=19181 OPEN=19182 SIM=19183 ADMIN=19184
# The AppID and APPSECRET of bench/manifests.sh.
APPID=wx0123456789abcdef SECRET=bench
source bench/manifests.sh
manifests "$work/m" "" "    phone: { onLogin: true }
    openApi: true"
taskset -c 1 "$bin/wxgate-echo-app" --listen "127.0.0.1:$APP" >/dev/null & pids+=($!)
taskset -c 1 "$bin/wxgate-wechat-sim" --listen "127.0.0.1:$SIM" --app "$APPID:$SECRET" >/dev/null & pids+=($!)
WXGATE_ACCESS_LOG=false WXGATE_LOG=warn taskset -c 1 "$bin/wxgate-sidecar" --manifests "$work/m" \
  --listen "127.0.0.1:$SIDECAR" --admin-listen "127.0.0.1:$ADMIN" --open-api-listen "127.0.0.1:$OPEN" \
  --upstream "http://127.0.0.1:$APP" --wechat-api-base "http://127.0.0.1:$SIM" \
  >"$work/sidecar.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ADMIN/ready" >/dev/null && break; sleep 0.1; done
calls() { curl -s "http://127.0.0.1:$SIM/sim/calls" | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["total"], c["phone"]["calls"], c["phone"]["paid"], c["stable_token"]["calls"])'; }

logins() { # $1 run name, $2 times each login is sent
  local before after run=$1
  before=$(calls)
  for n in $(seq "$LOGINS"); do
    for _ in $(seq "$2"); do
      curl -s -o /dev/null -w '%{http_code}\n' -X POST -H "js_code: ${run}u${n}_1" -H "phone_code: ${run}u${n}_p1" "http://127.0.0.1:$SIDECAR/login"
    done
  done | sort | uniq -c | awk -v r="$run" '{printf "  %s: %s answers %s\n", r, $1, $2}'
  after=$(calls)
  read -r t0 p0 q0 s0 <<<"$before"; read -r t1 p1 q1 s1 <<<"$after"
  printf '%-34s code2Session %5d   getuserphonenumber %5d (paid %5d)   stable_token %d\n' \
    "$LOGINS logins with phone, sent x$2" $((t1 - t0)) $((p1 - p0)) $((q1 - q0)) $((s1 - s0))
}
echo "WeChat calls"
logins once 1
logins twice 2

token=$(curl -s -X POST -d "{\"grant_type\":\"client_credential\",\"appid\":\"$APPID\",\"secret\":\"$SECRET\"}" \
  "http://127.0.0.1:$SIM/cgi-bin/stable_token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
lat() { # $1 url, $2 connections -> "rps p50 p99"
  taskset -c 0 wrk -t1 -c"$2" -d"${SECS}s" --latency "$1" | awk '
    /^Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    END {print rps, p50, p99}'
}
curl -sf "http://127.0.0.1:$OPEN/cgi-bin/getcallbackip" | grep -q ip_list
echo
printf '%-10s %-6s %12s %10s %10s\n' target conns rps p50 p99
for c in 1 64; do
  read -r r p q <<<"$(lat "http://127.0.0.1:$SIM/cgi-bin/getcallbackip?access_token=$token" "$c")"
  printf '%-10s %-6s %12s %10s %10s\n' direct "$c" "$r" "$p" "$q"
  read -r r p q <<<"$(lat "http://127.0.0.1:$OPEN/cgi-bin/getcallbackip" "$c")"
  printf '%-10s %-6s %12s %10s %10s\n' open-api "$c" "$r" "$p" "$q"
done
read -r t p q s <<<"$(calls)"
echo "stable_token calls in the whole run: $s"
