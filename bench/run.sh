#!/usr/bin/env bash
# Side-by-side throughput, CPU per request and memory: the app direct, nginx proxy_pass, the
# wxgate sidecar passing through (unbound route), verifying a credential and rejecting a forged
# one (401, the app never called), and logging in (a fresh code each time, the WeChat simulator
# answering at once), all on 127.0.0.1. The servers share CPU 1, wrk runs on CPU 0
# (taskset), interleaved repetitions. The app direct, nginx, pass-through and verify get the same
# request, with the credential header (as in bench/pair.sh).
#
#   bash bench/run.sh [seconds per run, default 5] [repetitions, default 3] [connections, default 64]
#   WXGATE_BENCH_ACCESS_LOG=true bash bench/run.sh ...   # the same with the access log on (default off, as nginx's)
#   WXGATE_BENCH_SIDECAR=/path/to/wxgate-sidecar bash bench/run.sh ...   # another build (before/after)
#
# Peers beside nginx: oauth2-proxy (v7.15.6, built from the Go module proxy and cached under
# ~/.cache/wxgate-bench) verifying an RS256 JWT bearer token of a local OpenID issuer
# (bench/jwt_issuer.py) and passing the user on in headers, as it ships (Go's default of 2 idle
# upstream connections; no flag changes it); and nginx with auth_request to that oauth2-proxy,
# the ingress-nginx pattern. CPU per request sums every process of a peer.
#
# After the closed-loop runs (wrk), open-loop runs at a fixed rate, half of nginx's median
# rate (the app direct, nginx and the sidecar each REPS times, interleaved; medians), with oha
# (from crates.io, cached under ~/.cache/wxgate-bench) correcting for coordinated omission: the
# latency each proxy adds over the app direct, at p50 and p99. Then a verify sidecar with
# --worker-threads 2 allowed both CPUs, against the one-thread sidecar.
# verify-open is a verify sidecar run with --credential-cache 0: every request opens its
# credential, as a credential's first request does (verify's single credential is remembered).
# Memory: the verify sidecar idle and after the 64-connection runs, and a login sidecar after
# all its logins (each with a fresh code).
#
# Needs wrk and nginx (installed from Debian's packages when missing), Go, openssl and python3,
# and builds release binaries. Prints a table of medians and the ratios BENCHMARKS.md reports.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}; REPS=${2:-3}; CONNS=${3:-64}
ACCESS_LOG=${WXGATE_BENCH_ACCESS_LOG:-false}  # true: the sidecars write their access log (to a file)

need() { command -v "$1" >/dev/null || { apt-get install -y -q "$2" >/dev/null; }; }
need wrk wrk; need nginx nginx-light
tools=${XDG_CACHE_HOME:-$HOME/.cache}/wxgate-bench
oha_version=1.16.0 o2p_version=v7.15.6
if [ "$(cat "$tools/oha.version" 2>/dev/null)" != "$oha_version" ]; then
  cargo install -q --locked oha --version "$oha_version" --root "$tools/oha"
  echo "$oha_version" > "$tools/oha.version"
fi
if [ "$(cat "$tools/oauth2-proxy.version" 2>/dev/null)" != "$o2p_version" ]; then
  command -v go >/dev/null || { echo "bench/run.sh: Go is needed to build oauth2-proxy" >&2; exit 1; }
  GOBIN=$tools/bin go install "github.com/oauth2-proxy/oauth2-proxy/v7@$o2p_version"
  echo "$o2p_version" > "$tools/oauth2-proxy.version"
fi
oha=$tools/oha/bin/oha
bin=$(bash scripts/release.sh -q -p wxgate-sidecar -p wxgate-sim)
sidecar_bin=${WXGATE_BENCH_SIDECAR:-$bin/wxgate-sidecar}
work=$(mktemp -d); pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

APP=19080 NGX=19081 PASS=19082 VERIFY=19083 SIM=19084 VERIFY2=19085 O2P=19086 ISS=19087 NGXAUTH=19088 LOGIN=19089 OPENING=19090
nginx_conf() { # $1 name, $2 servers and upstreams besides the app upstream -> $work/$1.conf
  cat > "$work/$1.conf" <<NGX
worker_processes 1; daemon off; pid $work/$1.pid; error_log $work/$1-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$APP; keepalive 128; }
$2
}
NGX
}
nginx_conf nginx "  server { listen 127.0.0.1:$APP; location / { return 200 \"hello world\\n\"; } }"
nginx_conf proxy "  server { listen 127.0.0.1:$NGX; location / { proxy_pass http://app; proxy_http_version 1.1;
           proxy_set_header Connection \"\"; proxy_set_header X-WX-OPENID \"oBench\"; } }"
nginx_conf auth "  upstream o2p { server 127.0.0.1:$O2P; keepalive 128; }
  server { listen 127.0.0.1:$NGXAUTH;
    location = /oauth2/auth { internal; proxy_pass http://o2p; proxy_http_version 1.1;
      proxy_set_header Connection \"\"; proxy_pass_request_body off; proxy_set_header Content-Length \"\"; }
    location / { auth_request /oauth2/auth; auth_request_set \$user \$upstream_http_x_auth_request_user;
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\";
      proxy_set_header X-WX-OPENID \$user; } }"
taskset -c 1 nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
taskset -c 1 nginx -c "$work/proxy.conf" -p "$work" & pids+=($!)
taskset -c 1 nginx -c "$work/auth.conf" -p "$work" & pids+=($!)
# The OpenID issuer prints the JWT, then serves its discovery document and keys.
python3 bench/jwt_issuer.py "$ISS" bench "$work" > "$work/jwt" & pids+=($!)
for _ in $(seq 100); do [ -s "$work/jwt" ] && curl -sf "http://127.0.0.1:$ISS/jwks.json" >/dev/null && break; sleep 0.1; done
jwt=$(head -1 "$work/jwt")
taskset -c 1 "$tools/bin/oauth2-proxy" --http-address="127.0.0.1:$O2P" --upstream="http://127.0.0.1:$APP/" \
  --provider=oidc --oidc-issuer-url="http://127.0.0.1:$ISS" --client-id=bench --client-secret=bench \
  --cookie-secret=0123456789abcdef0123456789abcdef --cookie-secure=false --email-domain='*' \
  --skip-jwt-bearer-tokens=true --bearer-token-login-fallback=false --set-xauthrequest=true \
  --request-logging=false --auth-logging=false --standard-logging=false \
  >"$work/oauth2-proxy.log" 2>&1 & pids+=($!); o2p_pid=$!
"$bin/wxgate-wechat-sim" --listen "127.0.0.1:$SIM" >/dev/null & pids+=($!)

source bench/manifests.sh
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
sidecar $LOGIN "$work/verify"; login_pid=$!
sidecar $OPENING "$work/verify" 1 --credential-cache 0; opening_pid=$!
for port in $((PASS + 100)) $((VERIFY + 100)) $((VERIFY2 + 100)) $((LOGIN + 100)) $((OPENING + 100)); do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
done
sleep 1
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
idle_rss=$(rss $verify_pid)
cred=$(credential $VERIFY bench_1)
# The request of the app direct, nginx, pass-through and verify: one credential header, which
# only verify reads (the others pass it on), so they differ only in what they do with it.
session="user_session: $cred"
# The two-thread sidecar has its own generated key: its own credential.
cred2=$(credential $VERIFY2 bench_2)
cred0=$(credential $OPENING bench_3)
worker_of() { # $1 nginx config -> the pid of its worker
  pgrep -f "nginx: worker process" | while read -r p; do { grep -q "$1" "/proc/$(ps -o ppid= -p "$p" | tr -d ' ')/cmdline" 2>/dev/null && echo "$p"; } || true; done | head -1
}
ngx_worker=$(worker_of "$work/proxy.conf") auth_worker=$(worker_of "$work/auth.conf")
for _ in $(seq 100); do curl -sf -o /dev/null -H "Authorization: Bearer $jwt" "http://127.0.0.1:$O2P/hello" && break; sleep 0.1; done
curl -sf -o /dev/null -H "Authorization: Bearer $jwt" "http://127.0.0.1:$O2P/hello" ||
  { echo "oauth2-proxy does not accept the JWT:" >&2; cat "$work/oauth2-proxy.log" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer x$jwt" "http://127.0.0.1:$O2P/hello")" = 403 ] ||
  { echo "oauth2-proxy lets a forged JWT through" >&2; exit 1; }
curl -sf -o /dev/null -H "Authorization: Bearer $jwt" "http://127.0.0.1:$NGXAUTH/hello" ||
  { echo "nginx auth_request does not pass the JWT" >&2; exit 1; }

cpu_ticks() { local t=0 p; for p in $1; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
declare -A RPS CPU
# Logins: every request a fresh code (the simulator spends each once), WeChat answering at once.
cat > "$work/login.lua" <<'LUA'
local n, run = 0, os.time()
request = function()
  n = n + 1
  return wrk.format("POST", "/login", { ["js_code"] = "bench" .. run .. "_" .. n }, "")
end
LUA
run() { # $1 name, $2 url, $3 pids (or empty), $4 extra header, $5 "reject" (every answer a 401) or "login"
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
taskset -c 0 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$VERIFY/hello" -H "$session" >/dev/null
for _ in $(seq "$REPS"); do
  run direct "http://127.0.0.1:$APP/hello" "" "$session"
  run nginx "http://127.0.0.1:$NGX/hello" "$ngx_worker" "$session"
  run passthrough "http://127.0.0.1:$PASS/hello" "$pass_pid" "$session"
  run verify "http://127.0.0.1:$VERIFY/hello" "$verify_pid" "$session"
  run verify-open "http://127.0.0.1:$OPENING/hello" "$opening_pid" "user_session: $cred0"
  run reject "http://127.0.0.1:$VERIFY/hello" "$verify_pid" "user_session: v1.forged" reject
  run login "http://127.0.0.1:$LOGIN/login" "$login_pid" "" login
  run verify2 "http://127.0.0.1:$VERIFY2/hello" "$verify2_pid" "user_session: $cred2"
  run oauth2proxy "http://127.0.0.1:$O2P/hello" "$o2p_pid" "Authorization: Bearer $jwt"
  run nginx+o2p "http://127.0.0.1:$NGXAUTH/hello" "$auth_worker $o2p_pid" "Authorization: Bearer $jwt"
done
loaded_hwm=$(hwm $verify_pid)
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '\n%-12s %12s %14s   (median of %s runs of %ss, %s connections)\n' target rps cpu-us/req "$REPS" "$SECS" "$CONNS"
for t in direct nginx passthrough verify verify-open reject login verify2 oauth2proxy nginx+o2p; do
  printf '%-12s %12s %14s\n' "$t" "$(echo "${RPS[$t]}" | median)" "$(echo "${CPU[$t]:-}" | median)"
done
m() { echo "${RPS[$1]}" | median; }
c() { echo "${CPU[$1]}" | median; }
echo
awk -v v="$(m verify)" -v n="$(m nginx)" -v d="$(m direct)" -v p="$(m passthrough)" -v r="$(m reject)" -v l="$(m login)" -v cv="$(c verify)" -v cn="$(c nginx)" -v cp="$(c passthrough)" -v vo="$(m verify-open)" -v co="$(c verify-open)" 'BEGIN {
  printf "verify / nginx rps        %.2f\n", v / n
  printf "verify / direct rps       %.2f\n", v / d
  printf "verify / passthrough rps  %.2f\n", v / p
  printf "verify / nginx cpu/req    %.2f\n", cv / cn
  printf "verify-open / nginx rps      %.2f   cpu/req %.2f\n", vo / n, co / cn
  printf "verify-open / passthrough rps  %.2f\n", vo / p
  printf "reject / passthrough rps  %.2f\n", r / p
  printf "login / verify rps        %.2f\n", l / v
}'
awk -v v="$(m verify)" -v o="$(m oauth2proxy)" -v a="$(m nginx+o2p)" -v cv="$(c verify)" -v co="$(c oauth2proxy)" -v ca="$(c nginx+o2p)" 'BEGIN {
  printf "verify / oauth2-proxy (JWT) rps        %.2f   cpu/req %.2f\n", v / o, cv / co
  printf "verify / nginx auth_request+o2p rps    %.2f   cpu/req %.2f\n", v / a, cv / ca
}'
awk -v v="$(m verify)" -v v2="$(m verify2)" 'BEGIN {
  printf "verify 2 threads (CPUs 0-1, shared with wrk) / 1 thread (CPU 1) rps  %.2f\n", v2 / v }'

# Open loop: a fixed rate, half of nginx's median, each target in turn (oha on CPU 0, latency
# corrected for coordinated omission: measured from when each request was due).
rate=$(awk -v n="$(m nginx)" 'BEGIN {printf "%d", n / 2}')
open_loop() { # $1 url, $2 extra header, $3 rate (default $rate) -> "p50_us p99_us"
  taskset -c 0 "$oha" -z "${SECS}s" -q "${3:-$rate}" -c "$CONNS" --latency-correction --no-tui \
    --output-format json ${2:+-H "$2"} "$1" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); l=r["latencyPercentiles"]
codes=r["statusCodeDistribution"]; assert list(codes)==["200"], codes
print("%.0f %.0f" % (l["p50"]*1e6, l["p99"]*1e6))'
}
# If the generator itself cannot hold the rate, the app direct shows it: halve the rate until
# the app direct answers within 5 ms at p99, and say so.
read -r d50 d99 <<<"$(open_loop "http://127.0.0.1:$APP/hello" "$session")"
while [ "$d99" -gt 5000 ] && [ "$rate" -gt 1000 ]; do
  echo "open loop: the generator cannot drive $rate req/s (direct p99 ${d99} us): halving" >&2
  rate=$((rate / 2))
  read -r d50 d99 <<<"$(open_loop "http://127.0.0.1:$APP/hello" "$session")"
done
# The p99 of one short run on a shared VM is one stall or another: the app direct, nginx and the
# sidecar each run REPS times, interleaved, and each figure is the median of its runs.
declare -A P50 P99
P50[direct]="$d50 " P99[direct]="$d99 "
for i in $(seq "$REPS"); do
  if [ "$i" -gt 1 ]; then
    read -r a b <<<"$(open_loop "http://127.0.0.1:$APP/hello" "$session")"; P50[direct]+="$a "; P99[direct]+="$b "
  fi
  read -r a b <<<"$(open_loop "http://127.0.0.1:$NGX/hello" "$session")"; P50[nginx]+="$a "; P99[nginx]+="$b "
  read -r a b <<<"$(open_loop "http://127.0.0.1:$VERIFY/hello" "$session")"; P50[verify]+="$a "; P99[verify]+="$b "
done
d50=$(echo "${P50[direct]}" | median) d99=$(echo "${P99[direct]}" | median)
n50=$(echo "${P50[nginx]}" | median) n99=$(echo "${P99[nginx]}" | median)
v50=$(echo "${P50[verify]}" | median) v99=$(echo "${P99[verify]}" | median)
# oauth2-proxy cannot take that rate at all: it runs at half of its own median rate instead.
o2p_rate=$(awk -v n="$(m oauth2proxy)" 'BEGIN {printf "%d", n / 2}')
read -r o50 o99 <<<"$(open_loop "http://127.0.0.1:$O2P/hello" "Authorization: Bearer $jwt" "$o2p_rate")"
echo
printf 'open loop at %s req/s (half of nginx'"'"'s rate, or less when the generator cannot drive it), %ss each, %s connections, median of %s interleaved runs (oauth2-proxy: one), latency in us\n' "$rate" "$SECS" "$CONNS" "$REPS"
printf '%-12s %8s %8s\n' target p50 p99 direct "$d50" "$d99" nginx "$n50" "$n99" verify "$v50" "$v99" "o2p@$o2p_rate" "$o50" "$o99"
awk -v d50="$d50" -v d99="$d99" -v n50="$n50" -v n99="$n99" -v v50="$v50" -v v99="$v99" -v o50="$o50" -v o99="$o99" 'BEGIN {
  an50 = n50 - d50; an99 = n99 - d99; av50 = v50 - d50; av99 = v99 - d99
  printf "added over direct: nginx p50 %d p99 %d, verify p50 %d p99 %d us; oauth2-proxy (at its own half rate) p50 %d p99 %d us\n", an50, an99, av50, av99, o50 - d50, o99 - d99
  if (an50 > 0) printf "verify added / nginx added p50  %.2f\n", av50 / an50
  if (an99 > 0) printf "verify added / nginx added p99  %.2f\n", av99 / an99
}'
logins=$(curl -s "http://127.0.0.1:$((LOGIN + 100))/metrics" | awk '/^wxgate_requests_total\{.*route="login"/ {n += $2} END {printf "%d", n}')
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
echo "sidecar (verify) RSS: idle $(mib "$idle_rss") MiB, peak after the ${CONNS}-connection runs $(mib "$loaded_hwm") MiB; login sidecar peak after $logins logins $(mib "$(hwm $login_pid)") MiB; nginx proxy worker RSS $(mib "$(rss "$ngx_worker")") MiB; oauth2-proxy RSS $(mib "$(rss "$o2p_pid")") MiB"
