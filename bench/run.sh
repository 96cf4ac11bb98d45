#!/usr/bin/env bash
# Side-by-side throughput, CPU per request and memory: the app direct, nginx proxy_pass, the
# wxgate sidecar passing through (unbound route), verifying a credential and rejecting a forged
# one (401, the app never called), and logging in (a fresh code each time, the WeChat simulator
# answering at once), all on 127.0.0.1. The servers share CPU 1, wrk runs on CPU 0
# (taskset), interleaved repetitions.
#
#   bash bench/run.sh [seconds per run, default 5] [repetitions, default 3] [connections, default 64]
#   WXGATE_BENCH_ACCESS_LOG=true bash bench/run.sh ...   # the same with the access log on (default off, as nginx's)
#   WXGATE_BENCH_SIDECAR=/path/to/wxgate-sidecar bash bench/run.sh ...   # another build (before/after)
#
# After the closed-loop runs (wrk), an open-loop run at a fixed rate, half of nginx's median
# rate, with vegeta (built from the Go module proxy, cached under ~/.cache/wxgate-bench): the
# latency each proxy adds over the app direct, at p50 and p99. And a verify sidecar with
# --worker-threads 2 allowed both CPUs, against the one-thread sidecar (scaling).
#
# Needs wrk and nginx (installed from Debian's packages when missing) and builds release
# binaries. Prints a table of medians and the ratios BENCHMARKS.md reports.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}; REPS=${2:-3}; CONNS=${3:-64}
ACCESS_LOG=${WXGATE_BENCH_ACCESS_LOG:-false}  # true: the sidecars write their access log (to a file)

need() { command -v "$1" >/dev/null || { apt-get install -y -q "$2" >/dev/null; }; }
need wrk wrk; need nginx nginx-light
tools=${XDG_CACHE_HOME:-$HOME/.cache}/wxgate-bench/bin
vegeta_version=v12.13.0
if [ "$(cat "$tools/vegeta.version" 2>/dev/null)" != "$vegeta_version" ]; then
  command -v go >/dev/null || { echo "bench/run.sh: Go is needed to build vegeta" >&2; exit 1; }
  GOBIN=$tools go install "github.com/tsenart/vegeta/v12@$vegeta_version"
  echo "$vegeta_version" > "$tools/vegeta.version"
fi
cargo build -q --release --locked -p wxgate-sidecar -p wxgate-sim
bin=target/release
sidecar_bin=${WXGATE_BENCH_SIDECAR:-$bin/wxgate-sidecar}
work=$(mktemp -d); pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

APP=19080 NGX=19081 PASS=19082 VERIFY=19083 SIM=19084 VERIFY2=19085
cat > "$work/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $work/nginx.pid; error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$APP; keepalive 128; }
  server { listen 127.0.0.1:$APP; location / { return 200 "hello world\n"; } }
}
NGX
cat > "$work/proxy.conf" <<NGX
worker_processes 1; daemon off; pid $work/proxy.pid; error_log $work/proxy-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$APP; keepalive 128; }
  server { listen 127.0.0.1:$NGX; location / { proxy_pass http://app; proxy_http_version 1.1;
           proxy_set_header Connection ""; proxy_set_header X-WX-OPENID "oBench"; } }
}
NGX
taskset -c 1 nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
taskset -c 1 nginx -c "$work/proxy.conf" -p "$work" & pids+=($!)
"$bin/wxgate-wechat-sim" --listen "127.0.0.1:$SIM" >/dev/null & pids+=($!)

manifests() { # $1 dir, $2 binding apis line
  mkdir -p "$1"
  cat > "$1/m.yaml" <<YAML
apiVersion: wxgate.dev/v1alpha1
kind: GatewayPlugin
metadata: { name: mp-login }
spec:
  type: WeChatMpLogin
  wechatMpLogin:
    appId: wx0123456789abcdef
    credentialsSecretRef: { name: creds }
    login: { paths: [/login] }
---
apiVersion: wxgate.dev/v1alpha1
kind: PluginBinding
metadata: { name: b }
spec:
  pluginRef: { name: mp-login }
  targetRef: { name: app }
$2
---
apiVersion: v1
kind: Secret
metadata: { name: creds }
stringData: { appsecret: bench }
YAML
}
manifests "$work/pass" "  apis: [ { path: /login, match: Exact } ]"
manifests "$work/verify" ""
sidecar() { # $1 port, $2 manifests, $3 CPUs (default 1), then more flags
  local cpus=${3:-1}
  WXGATE_ACCESS_LOG=$ACCESS_LOG WXGATE_LOG=warn taskset -c "$cpus" "$sidecar_bin" --manifests "$2" "${@:4}" \
    --listen "127.0.0.1:$1" --admin-listen "127.0.0.1:$(($1 + 100))" \
    --upstream "http://127.0.0.1:$APP" --wechat-api-base "http://127.0.0.1:$SIM" \
    >"$work/sidecar-$1.log" 2>&1 & pids+=($!)
}
sidecar $PASS "$work/pass"; pass_pid=$!
sidecar $VERIFY "$work/verify"; verify_pid=$!
sidecar $VERIFY2 "$work/verify" 0,1 --worker-threads 2; verify2_pid=$!
for port in $((PASS + 100)) $((VERIFY + 100)) $((VERIFY2 + 100)); do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
done
sleep 1
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
idle_rss=$(rss $verify_pid)
cred=$(curl -s -o /dev/null -D - -X POST -H 'js_code: bench_1' "http://127.0.0.1:$VERIFY/login" | tr -d '\r' | sed -n 's/^user_session: //p')
[ -n "$cred" ] || { echo "no credential" >&2; exit 1; }
# The two-thread sidecar has its own generated key: its own credential.
cred2=$(curl -s -o /dev/null -D - -X POST -H 'js_code: bench_2' "http://127.0.0.1:$VERIFY2/login" | tr -d '\r' | sed -n 's/^user_session: //p')
[ -n "$cred2" ] || { echo "no credential from the two-thread sidecar" >&2; exit 1; }
ngx_worker=$(pgrep -f "nginx: worker process" | while read -r p; do { grep -q "$work/proxy.conf" "/proc/$(ps -o ppid= -p "$p" | tr -d ' ')/cmdline" 2>/dev/null && echo "$p"; } || true; done | head -1)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A RPS CPU
# Logins: every request a fresh code (the simulator spends each once), WeChat answering at once.
cat > "$work/login.lua" <<'LUA'
local n, run = 0, os.time()
request = function()
  n = n + 1
  return wrk.format("POST", "/login", { ["js_code"] = "bench" .. run .. "_" .. n }, "")
end
LUA
run() { # $1 name, $2 url, $3 pid (or empty), $4 extra header, $5 "reject" (every answer a 401) or "login"
  local before after out rps script=()
  [ "${5:-}" = login ] && script=(-s "$work/login.lua")
  [ -n "$3" ] && before=$(cpu_ticks "$3")
  out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" "${script[@]}" ${4:+-H "$4"} "$2")
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  if [ "${5:-}" = reject ]; then
    local n all; n=$(echo "$out" | awk '/Non-2xx/ {print $NF}'); all=$(echo "$out" | awk '/requests in/ {print $1}')
    [ "$n" = "$all" ] || { echo "$1: expected only 401s" >&2; echo "$out" >&2; exit 1; }
  elif echo "$out" | grep -q "Non-2xx"; then echo "$1: non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
  RPS[$1]+="$rps "
  if [ -n "$3" ]; then
    after=$(cpu_ticks "$3")
    local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    CPU[$1]+="$(awk -v t=$((after - before)) -v r="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz * 1e6 / r}') "
  fi
}
taskset -c 0 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$VERIFY/hello" -H "user_session: $cred" >/dev/null
for _ in $(seq "$REPS"); do
  run direct "http://127.0.0.1:$APP/hello" ""
  run nginx "http://127.0.0.1:$NGX/hello" "$ngx_worker"
  run passthrough "http://127.0.0.1:$PASS/hello" "$pass_pid"
  run verify "http://127.0.0.1:$VERIFY/hello" "$verify_pid" "user_session: $cred"
  run reject "http://127.0.0.1:$VERIFY/hello" "$verify_pid" "user_session: v1.forged" reject
  run login "http://127.0.0.1:$VERIFY/login" "$verify_pid" "" login
  run verify2 "http://127.0.0.1:$VERIFY2/hello" "$verify2_pid" "user_session: $cred2"
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '\n%-12s %12s %14s   (median of %s runs of %ss, %s connections)\n' target rps cpu-us/req "$REPS" "$SECS" "$CONNS"
for t in direct nginx passthrough verify reject login verify2; do
  printf '%-12s %12s %14s\n' "$t" "$(echo "${RPS[$t]}" | median)" "$(echo "${CPU[$t]:-}" | median)"
done
m() { echo "${RPS[$1]}" | median; }
c() { echo "${CPU[$1]}" | median; }
echo
awk -v v="$(m verify)" -v n="$(m nginx)" -v d="$(m direct)" -v p="$(m passthrough)" -v r="$(m reject)" -v l="$(m login)" -v cv="$(c verify)" -v cn="$(c nginx)" -v cp="$(c passthrough)" 'BEGIN {
  printf "verify / nginx rps        %.2f\n", v / n
  printf "verify / direct rps       %.2f\n", v / d
  printf "verify / passthrough rps  %.2f\n", v / p
  printf "verify / nginx cpu/req    %.2f\n", cv / cn
  printf "reject / passthrough rps  %.2f\n", r / p
  printf "login / verify rps        %.2f\n", l / v
}'
awk -v v="$(m verify)" -v v2="$(m verify2)" 'BEGIN {
  printf "verify 2 threads (CPUs 0-1, shared with wrk) / 1 thread (CPU 1) rps  %.2f\n", v2 / v }'

# Open loop: a fixed rate, half of nginx's median, each target in turn (vegeta on CPU 0).
rate=$(awk -v n="$(m nginx)" 'BEGIN {printf "%d", n / 2}')
open_loop() { # $1 url, $2 extra header -> "p50_us p99_us"
  echo "GET $1" | taskset -c 0 "$tools/vegeta" attack -rate="$rate/s" -duration="${SECS}s" \
    -connections="$CONNS" -max-connections="$CONNS" ${2:+-header "$2"} |
    taskset -c 0 "$tools/vegeta" report -type=json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); l=r["latencies"]
codes=r["status_codes"]; assert list(codes)==["200"], codes
print("%.0f %.0f" % (l["50th"]/1e3, l["99th"]/1e3))'
}
# vegeta on one core may not drive that rate: halve it until the app direct answers within
# 5 ms at p99 (a queue in the generator is not the proxies' latency), and say so.
read -r d50 d99 <<<"$(open_loop "http://127.0.0.1:$APP/hello")"
while [ "$d99" -gt 5000 ] && [ "$rate" -gt 1000 ]; do
  echo "open loop: the generator cannot drive $rate req/s (direct p99 ${d99} us): halving" >&2
  rate=$((rate / 2))
  read -r d50 d99 <<<"$(open_loop "http://127.0.0.1:$APP/hello")"
done
read -r n50 n99 <<<"$(open_loop "http://127.0.0.1:$NGX/hello")"
read -r v50 v99 <<<"$(open_loop "http://127.0.0.1:$VERIFY/hello" "user_session: $cred")"
echo
printf 'open loop at %s req/s (half of nginx'"'"'s rate, or less when the generator cannot drive it), %ss each, latency in us\n' "$rate" "$SECS"
printf '%-10s %8s %8s\n' target p50 p99 direct "$d50" "$d99" nginx "$n50" "$n99" verify "$v50" "$v99"
awk -v d50="$d50" -v d99="$d99" -v n50="$n50" -v n99="$n99" -v v50="$v50" -v v99="$v99" 'BEGIN {
  an50 = n50 - d50; an99 = n99 - d99; av50 = v50 - d50; av99 = v99 - d99
  printf "added over direct: nginx p50 %d p99 %d, verify p50 %d p99 %d us\n", an50, an99, av50, av99
  if (an50 > 0) printf "verify added / nginx added p50  %.2f\n", av50 / an50
  if (an99 > 0) printf "verify added / nginx added p99  %.2f\n", av99 / an99
}'
echo "sidecar (verify) RSS: idle $((idle_rss / 1024)).$((idle_rss % 1024 * 10 / 1024)) MiB, now $(( $(rss $verify_pid) / 1024 )) MiB, peak $(( $(hwm $verify_pid) / 1024 )) MiB; nginx proxy worker RSS $(( $(rss "$ngx_worker") / 1024 )) MiB"
