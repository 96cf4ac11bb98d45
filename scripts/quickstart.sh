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
echo "Building wxgate-sidecar and the simulator (the first build takes a few minutes)..."
cargo build -q --locked -p wxgate-sidecar -p wxgate-sim
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

for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$ADMIN/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$ADMIN/ready" >/dev/null || { echo "quickstart: the sidecar did not become ready" >&2; exit 1; }

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
