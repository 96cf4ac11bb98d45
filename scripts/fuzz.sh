#!/usr/bin/env bash
# Coverage-guided fuzzing (part of the test command): every target in fuzz/ runs for
# WXGATE_FUZZ_SECONDS seconds (default 20) or 100000 executions, whichever is longer, starting
# from its committed seeds (fuzz/seeds/<target>) and the corpus grown by earlier runs on this
# machine (~/.cache/wxgate-fuzz-corpus). Any crash, panic, failed assertion or input taking over
# a second fails the step, with the input that did it. Needs the nightly toolchain (`cargo +nightly`); installs
# cargo-fuzz under ~/.cache when missing.
#   bash scripts/fuzz.sh              every target
#   bash scripts/fuzz.sh framing      one target
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${WXGATE_FUZZ_SECONDS:-20}
min_runs=100000
cargo_fuzz_version=0.13.2
cache=${XDG_CACHE_HOME:-$HOME/.cache}
target_dir=$cache/wxgate-fuzz-target
corpus_root=$cache/wxgate-fuzz-corpus

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: the nightly toolchain is missing: 'cargo +nightly' does not run." >&2
  echo "fuzz.sh: install it with 'rustup toolchain install nightly' (fuzzing needs -Z flags only nightly has)." >&2
  exit 1
fi
if [ "$("$cache/cargo-fuzz/bin/cargo-fuzz" --version 2>/dev/null)" != "cargo-fuzz $cargo_fuzz_version" ]; then
  echo "fuzz.sh: installing cargo-fuzz $cargo_fuzz_version under $cache/cargo-fuzz"
  cargo +nightly install cargo-fuzz --version "$cargo_fuzz_version" --locked --root "$cache/cargo-fuzz"
fi
export PATH="$cache/cargo-fuzz/bin:$PATH"

echo "fuzz.sh: building the targets (release, AddressSanitizer; the first build takes about 12 minutes on 2 cores, later ones are incremental)"
cargo +nightly fuzz build -O --target-dir "$target_dir"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

# One libFuzzer run of a target; its output goes to $work/<target>.log.
fuzz() {
  local target=$1
  shift
  mkdir -p "$corpus_root/$target" "$work/$target"
  cargo +nightly fuzz run -O --target-dir "$target_dir" "$target" \
    "$corpus_root/$target" "seeds/$target" -- \
    -artifact_prefix="$work/$target/" -timeout=1 -max_len=8192 -print_final_stats=1 "$@" \
    >>"$work/$target.log" 2>&1
}

# The executions libFuzzer reports for every run in a log, summed.
runs_in() { { grep -o 'Done [0-9]* runs' "$1" || true; } | awk '{ n += $2 } END { print n + 0 }'; }

failed=()
for target in "${targets[@]}"; do
  log=$work/$target.log
  started=$SECONDS
  ok=1
  fuzz "$target" -max_total_time="$seconds" || ok=0
  runs=$(runs_in "$log")
  if [ $ok = 1 ] && [ "$runs" -lt $min_runs ]; then
    fuzz "$target" -runs=$((min_runs - runs)) || ok=0
    runs=$(runs_in "$log")
  fi
  if [ $ok = 0 ]; then
    failed+=("$target")
    echo "fuzz.sh: $target FAILED; libFuzzer's report (whole log: rerun with the input below):" >&2
    { grep -E -A3 'panicked at|ERROR: (libFuzzer|AddressSanitizer)|SUMMARY' "$log" || true; } | head -40 >&2
    for input in "$work/$target"/*; do
      [ -e "$input" ] || continue
      echo "fuzz.sh: the input ($(basename "$input"), base64): $(base64 -w0 "$input")" >&2
      echo "fuzz.sh: replay it with: cargo +nightly fuzz run -O --target-dir $target_dir $target <file>" >&2
    done
    continue
  fi
  # The last status line: "#N DONE cov: C ft: F corp: K/S lim: L exec/s: E rss: R".
  status=$({ grep -E '^#[0-9]+' "$log" || true; } | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$status")
  printf 'fuzz.sh: %-18s %8d executions in %4d s, coverage %5s edges, %5s features, corpus %s inputs\n' \
    "$target" "$runs" $((SECONDS - started)) "$cov" "$ft" "$corp"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: every target ran without a crash"
