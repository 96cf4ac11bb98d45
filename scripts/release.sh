#!/usr/bin/env bash
# The shipped binaries, built as the images carry them; prints the folder that holds them.
#   bash scripts/release.sh -p wxgate-sidecar [more cargo build arguments]
# The release profile, glibc linked in (a static PIE: no shared libraries to ship or to load,
# and the binary keeps its ASLR) and relative relocations packed (DT_RELR: the 0.5 MB table a
# PIE reads at every start becomes 6 KB), optimised with the profile of the sidecar under load
# (scripts/pgo.sh; code the profile never reached is treated as cold; WXGATE_PGO=0 builds
# without it). The sidecar's idle RSS: 9.0-9.4 MiB dynamic, 7.3 MiB static, 5.6 MiB with the
# profile, which also takes 10% off the CPU per verified request (BENCHMARKS.md). `--target` is explicit so the flags reach only the binaries:
# build scripts and proc macros are host code, and a proc macro cannot be linked statically.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
export RELEASE_FLAGS="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs"
flags=$RELEASE_FLAGS
if [ "${WXGATE_PGO:-1}" != 0 ]; then
  flags+=" -C profile-use=$(bash scripts/pgo.sh)"
fi
RUSTFLAGS="${RUSTFLAGS:-} $flags" cargo build --release --locked --target "$host" "$@" >&2
echo "$PWD/target/$host/release"
