#!/usr/bin/env bash
# Builds wxgate's four images from the release binaries, without a container engine, into
# OUT/<name>.tar (image archives for `ctr images import`, `docker load`, `kind load
# image-archive`, `skopeo copy docker-archive:...`), and the pod sandbox image the test node
# needs. Tag: the wxgate chart's appVersion.
#   tests/kube-node/images.sh OUT [PAUSE-BINARY]
set -euo pipefail
out=${1:?usage: images.sh OUT [PAUSE-BINARY]}; pause=${2:-}
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
mkdir -p "$out"
version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$root/charts/wxgate/Chart.yaml")
[ -n "$version" ] || { echo "images.sh: no appVersion in charts/wxgate/Chart.yaml" >&2; exit 1; }
echo "images.sh: scripts/release.sh (the four binaries, static; cold: several minutes)" >&2
bin=$(bash "$root/scripts/release.sh" -p wxgate-operator -p wxgate-sidecar -p wxgate-sim \
  --bin wxgate-operator --bin wxgate-sidecar --bin wxgate-wechat-sim --bin wxgate-echo-app)
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] || { echo "images.sh: $ca is missing (Debian package ca-certificates)" >&2; exit 1; }
for name in wxgate-operator wxgate-sidecar wxgate-wechat-sim wxgate-echo-app; do
  python3 "$here/image.py" "$out/$name.tar" "wxgate/$name:$version" "$bin/$name" --ca-certs "$ca"
done
if [ -n "$pause" ]; then
  python3 "$here/image.py" "$out/pause.tar" "wxgate/pause:test" "$pause" --user 65535:65535
fi
