#!/usr/bin/env bash
# The profile that guides scripts/release.sh's optimisation (PGO); prints its path.
#   bash scripts/pgo.sh
# Builds the sidecar instrumented (in target/pgo, with the release build's flags), runs it on
# loopback behind the echo app with the WeChat simulator, under the requests it serves most
# (verified credentials, remembered and not, passing through, forged credentials, logins, the
# access log on and off; curl, 32 connections), and merges what it counted with the
# toolchain's llvm-profdata (rustup's llvm-tools component, added when missing). The profile
# is made again only when the instrumented sidecar or this training changed, so a release build
# that is up to date stays up to date (the profile is an input of the build: a new one rebuilds).
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
command -v curl >/dev/null || apt-get install -y -q curl >/dev/null
profdata=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
if [ ! -x "$profdata" ]; then
  rustup component add llvm-tools >&2
fi
: "${RELEASE_FLAGS:?scripts/pgo.sh is run by scripts/release.sh, which sets RELEASE_FLAGS}"
dir=$PWD/target/pgo out=$PWD/target/pgo/sidecar.profdata
# One training at a time: two release builds at once would train on the same ports.
mkdir -p "$dir"
exec 9>"$dir/lock"
flock 9
RUSTFLAGS="${RUSTFLAGS:-} $RELEASE_FLAGS -C profile-generate=$dir/raw" CARGO_TARGET_DIR=$dir \
  cargo build --release --locked --target "$host" -p wxgate-sidecar -p wxgate-sim \
  --bin wxgate-sidecar --bin wxgate-wechat-sim --bin wxgate-echo-app >&2
bin=$dir/$host/release
# Up to date when made after the instrumented sidecar and after this training changed last.
fresh=true
for f in "$bin/wxgate-sidecar" scripts/pgo.sh bench/manifests.sh; do
  [ "$out" -nt "$f" ] || fresh=false
done
if $fresh; then echo "$out"; exit 0; fi

source bench/manifests.sh
work=$(mktemp -d); pids=() sidecars=()
cleanup() { kill "${pids[@]}" "${sidecars[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
rm -rf "$dir/raw"
APP=29180 SIM=29184
# The echo app and the simulator are instrumented too (one build); their counts are not kept.
LLVM_PROFILE_FILE=$work/other-%p.profraw "$bin/wxgate-echo-app" --listen "127.0.0.1:$APP" >/dev/null &
pids+=($!)
LLVM_PROFILE_FILE=$work/other-%p.profraw "$bin/wxgate-wechat-sim" --listen "127.0.0.1:$SIM" >/dev/null &
pids+=($!)
manifests "$work/m" ""
manifests "$work/pass" "  apis: [ { path: /login, match: Exact } ]"
sidecar() { # $1 port, $2 manifests, $3 credentials remembered, $4 access log
  LLVM_PROFILE_FILE=$dir/raw/sidecar-%p.profraw WXGATE_CREDENTIAL_CACHE=$3 WXGATE_ACCESS_LOG=$4 \
    WXGATE_LOG=warn "$bin/wxgate-sidecar" --manifests "$2" --listen "127.0.0.1:$1" \
    --admin-listen "127.0.0.1:$(($1 + 100))" --upstream "http://127.0.0.1:$APP" \
    --wechat-api-base "http://127.0.0.1:$SIM" >"$work/sidecar-$1.log" 2>&1 &
  sidecars+=($!)
}
sidecar 29181 "$work/m" 4096 false
sidecar 29182 "$work/m" 0 false
sidecar 29183 "$work/pass" 4096 false
sidecar 29185 "$work/m" 4096 true
for port in 29281 29282 29283 29285; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/ready" >/dev/null || { echo "pgo.sh: a sidecar did not start" >&2; cat "$work"/sidecar-*.log >&2; exit 1; }
done
load() { # $1 port, $2 requests, $3 credential: GETs on 32 kept-alive connections
  curl -s --no-progress-meter --parallel --parallel-max 32 -o "/dev/null" -H "user_session: $3" \
    "http://127.0.0.1:$1/hello/[1-$2]"
}
for port in 29181 29182 29185; do
  load $port 20000 "$(credential $port "pgo$port")"
done
load 29183 20000 "$(credential 29181 pgo-pass)"
load 29181 5000 v1.forged
# Logins, each with a fresh code.
for i in $(seq 3000); do
  [ "$i" = 1 ] || echo next
  printf 'url = "http://127.0.0.1:29181/login"\nrequest = "POST"\nheader = "js_code: pgo%s"\n' "$i"
  echo 'output = "/dev/null"'
done > "$work/logins"
curl -sSf --no-progress-meter --parallel --parallel-max 32 -K "$work/logins"
curl -sf "http://127.0.0.1:29281/metrics" >/dev/null
kill -TERM "${sidecars[@]}"
wait "${sidecars[@]}"
"$profdata" merge -o "$out" "$dir/raw"
echo "$out"
