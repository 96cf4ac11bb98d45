#!/usr/bin/env bash
# The quickstart: runs wxgate locally on examples/quickstart/ — the WeChat simulator, a small
# echo app and the sidecar, all on 127.0.0.1 — logs in once to show it works, and prints two
# curl lines to try. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

SIDECAR=${WXGATE_QUICKSTART_PORT:-15080}
ADMIN=${WXGATE_QUICKSTART_ADMIN_PORT:-15090}
APP=${WXGATE_QUICKSTART_APP_PORT:-18080}
SIM=${WXGATE_QUICKSTART_SIM_PORT:-18081}
APPID=wx0123456789abcdef
APPSECRET=simulator-appsecret-0123456789abcdef   # examples/quickstart/secret.yaml

command -v cargo >/dev/null || { echo "quickstart: Rust is required (cargo not found)" >&2; exit 1; }
command -v curl >/dev/null || { echo "quickstart: curl is required" >&2; exit 1; }
# Each port must be free: otherwise an earlier quickstart (or anything else) would answer our
# checks, and the error would name the wrong cause.
for pair in "WXGATE_QUICKSTART_PORT:$SIDECAR:the sidecar" "WXGATE_QUICKSTART_ADMIN_PORT:$ADMIN:the sidecar's admin port" \
  "WXGATE_QUICKSTART_APP_PORT:$APP:the echo app" "WXGATE_QUICKSTART_SIM_PORT:$SIM:the WeChat simulator"; do
  IFS=: read -r var port what <<<"$pair"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "quickstart: port $port ($what) is taken on 127.0.0.1: is another quickstart running? Stop it, or pick another port with $var=..." >&2
    exit 1
  fi
done

echo "Building wxgate-sidecar and the simulator. From a fresh clone this compiles about 400 crates:"
echo "about 5 minutes on 2 idle cores, 15 or more on a busy machine; later runs take seconds."
echo "cargo shows its progress below (and says so when it waits for another cargo's build lock)."
cargo build --locked -p wxgate-sidecar -p wxgate-sim
bin=target/debug

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; echo; echo "stopped"; }
trap cleanup EXIT
trap 'exit 0' INT TERM

"$bin/wxgate-wechat-sim" --listen "127.0.0.1:$SIM" --app "$APPID:$APPSECRET" & pids+=($!)
"$bin/wxgate-echo-app" --listen "127.0.0.1:$APP" --redact-session-key & pids+=($!)
"$bin/wxgate-sidecar" --manifests examples/quickstart --log-format text \
  --listen "127.0.0.1:$SIDECAR" --admin-listen "127.0.0.1:$ADMIN" \
  --upstream "http://127.0.0.1:$APP" --wechat-api-base "http://127.0.0.1:$SIM" & pids+=($!)

sidecar_pid=${pids[2]}
for _ in $(seq 100); do
  kill -0 "$sidecar_pid" 2>/dev/null || { echo "quickstart: the sidecar exited (its error is above)" >&2; exit 1; }
  curl -sf "http://127.0.0.1:$ADMIN/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$ADMIN/ready" >/dev/null || { echo "quickstart: the sidecar did not become ready within 10 s (its log is above)" >&2; exit 1; }

# One login to show the flow works end to end.
credential=$(curl -s -o /dev/null -D - -X POST -H 'js_code: demo_1' "http://127.0.0.1:$SIDECAR/login" \
  | tr -d '\r' | sed -n 's/^user_session: //p')
[ -n "$credential" ] || { echo "quickstart: the demo login returned no credential" >&2; exit 1; }

cat <<TXT

wxgate is running on http://127.0.0.1:$SIDECAR in front of an echo app, with the WeChat
simulator standing in for WeChat (any code of letters, digits, _ and - works; alice_1 and
alice_2 are the same user). Metrics: http://127.0.0.1:$ADMIN/metrics

1. Log in — the answer carries the credential in the user_session header:

   curl -si -X POST -H 'js_code: alice_1' http://127.0.0.1:$SIDECAR/login

2. Call a business API with it — the echo app shows the X-WX-OPENID it received:

   curl -s -H 'user_session: $credential' http://127.0.0.1:$SIDECAR/orders/7

Press Ctrl-C to stop.
TXT
wait
