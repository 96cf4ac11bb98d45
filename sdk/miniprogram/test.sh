#!/usr/bin/env bash
# The client SDK's checks (part of the test command): its tests under Node's own runner against a
# real wxgate sidecar, WeChat simulator and echo app (this workspace's debug binaries), the
# shipped .d.ts type-checked with tsc (npm, cached under ~/.cache/npm), and `npm pack`.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "sdk/miniprogram/test.sh: node is missing (Node.js 18 or later)" >&2; exit 1; }
cargo build -q --locked -p wxgate-sidecar -p wxgate-sim
target=$(cargo metadata -q --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export npm_config_cache=${XDG_CACHE_HOME:-$HOME/.cache}/npm
npm ci --no-audit --no-fund --prefer-offline --loglevel=error
./node_modules/.bin/tsc -p test/tsconfig.json
WXGATE_BIN_DIR="$target/debug" node --test test/client.test.js
version=$(node -p 'require("./package.json").version')
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' ../../charts/wxgate/Chart.yaml)
[ "$version" = "$app_version" ] || { echo "sdk/miniprogram/test.sh: package.json version $version differs from the chart's appVersion $app_version" >&2; exit 1; }
npm pack --dry-run --offline 2>&1 | grep -E 'name:|version:|total files:|README|lib/'
