#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [TARGET...]: build the libFuzzer targets of
# tests/fuzz/ (clang, ASan + UBSan, coverage on every object) in their own
# build folder, replay every kept crasher (tests/fuzz/regressions/<target>/),
# then fuzz each target for SECONDS from its seeds (tests/fuzz/corpus/<target>/)
# and what earlier runs found. Prints one line per target: seconds, runs,
# coverage (edges and features), corpus size, crashes; exits non-zero on any
# crash, sanitizer report or failed check, and on a failed build.
#
# A crash leaves its input in <builddir>/fuzz-artifacts/<target>/ and the
# log in <builddir>/fuzz-logs/<target>.log. To keep it as a regression: fix
# the bug, then copy the input to tests/fuzz/regressions/<target>/ under a
# name that says what it was. Replay one by hand:
#   build-fuzz/tests/fuzz/fuzz_<target> FILE   (fuzz_request: LANGOP_FUZZ_TRACE=1)
#
# Environment: LANGOP_FUZZ_BUILDDIR (default build-fuzz), LANGOP_FUZZ_JOBS
# (targets run at once, default 1), LANGOP_FUZZ_TIMEOUT (seconds one input
# may take before it counts as a hang, default 25).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: tests/fuzz/run.sh SECONDS [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift
all_targets=(request json yaml patch apply selector continuetoken kubeconfig render)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
dir=${LANGOP_FUZZ_BUILDDIR:-build-fuzz}
jobs=${LANGOP_FUZZ_JOBS:-1}
hang=${LANGOP_FUZZ_TIMEOUT:-25}

for t in "${targets[@]}"; do
  [ -f "tests/fuzz/fuzz_$t.c" ] || { echo "no such target: $t (tests/fuzz/fuzz_$t.c)" >&2; exit 2; }
done
command -v clang >/dev/null 2>&1 || { echo "clang is not installed (Debian: clang libclang-rt-14-dev)" >&2; exit 1; }

started=$SECONDS
echo "== building the fuzz targets in $dir/"
if [ ! -f "$dir/build.ninja" ]; then
  CC=clang meson setup "$dir" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
    --buildtype=debugoptimized >&2 || exit 1
fi
ninja -C "$dir" fuzz >&2 || exit 1
echo "   built in $((SECONDS - started)) s"

# UBSan reports are findings too: stop at the first, as ASan does.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
mkdir -p "$dir/fuzz-logs"

# run_target T: replay T's regressions, then fuzz it; writes "runs cov ft corpus crashes" to the result file.
run_target() {
  local t=$1 exe=$dir/tests/fuzz/fuzz_$t log=$dir/fuzz-logs/$t.log work=$dir/fuzz-corpus/$t
  local art=$dir/fuzz-artifacts/$t/ crashes=0 regs=() rc
  mkdir -p "$work" "$art"
  : >"$log"
  if [ -d "tests/fuzz/regressions/$t" ]; then
    mapfile -t regs < <(find "tests/fuzz/regressions/$t" -type f | sort)
  fi
  if [ ${#regs[@]} -gt 0 ]; then
    echo "== replaying ${#regs[@]} regression inputs" >>"$log"
    "$exe" -timeout="$hang" "${regs[@]}" >>"$log" 2>&1 || crashes=$((crashes + 1))
  fi
  local dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  local before
  before=$(find "$art" -type f | wc -l)
  echo "== fuzzing $seconds s" >>"$log"
  "$exe" -max_total_time="$seconds" -timeout="$hang" -rss_limit_mb=2560 -print_final_stats=1 \
    -artifact_prefix="$art" "${dict[@]}" "$work" "tests/fuzz/corpus/$t" >>"$log" 2>&1
  rc=$?
  local after
  after=$(find "$art" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    crashes=$((crashes + 1))
  fi
  if grep -qE 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|fuzz check failed' "$log"; then
    [ "$crashes" -gt 0 ] || crashes=1
  fi
  local runs cov ft corpus
  runs=$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
  corpus=$(find "$work" -type f | wc -l)
  echo "${runs:-0} ${cov:-cov: 0 ft: 0} $corpus $crashes" >"$dir/fuzz-logs/$t.result"
}

echo "== fuzzing ${#targets[@]} targets for $seconds s each ($jobs at once)"
running=0
for t in "${targets[@]}"; do
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

failed=0
printf '%-14s %8s %10s %8s %8s %7s %7s\n' target seconds runs edges features corpus crashes
for t in "${targets[@]}"; do
  read -r runs _ cov _ ft corpus crashes <"$dir/fuzz-logs/$t.result" 2>/dev/null || {
    runs=0 cov=0 ft=0 corpus=0 crashes=1
  }
  printf '%-14s %8s %10s %8s %8s %7s %7s\n' "$t" "$seconds" "$runs" "$cov" "$ft" "$corpus" "$crashes"
  if [ "$crashes" -gt 0 ]; then
    failed=$((failed + 1))
    echo "   $t: see $dir/fuzz-logs/$t.log; inputs in $dir/fuzz-artifacts/$t/" >&2
    grep -m 3 -E 'runtime error:|ERROR: |fuzz check failed|SUMMARY' "$dir/fuzz-logs/$t.log" | sed 's/^/   /' >&2
  fi
done
echo "fuzz: ${#targets[@]} targets, $failed with crashes ($((SECONDS - started)) s)"
[ "$failed" -eq 0 ]
