#!/usr/bin/env bash
# tests/sanitize.sh: the unit and integration suites against a build with
# AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer. Every
# server the integration tests start stops with SIGTERM, so LeakSanitizer
# checks each one's exit after it created, watched, patched and deleted.
# Any sanitizer report fails the run (its first lines are printed).
#
#   tests/sanitize.sh           every unit test and every integration test
#                               (about 15 minutes on 2 cores)
#   tests/sanitize.sh --quick   every unit test, and the integration tests of
#                               the paths hostile input and concurrency reach:
#                               writes, watches, HTTP, hostile requests, fuzz,
#                               reconcile, shutdown, store faults (what tests/run.sh runs)
#
# Last line: "N passed, N failed" (unit and integration tests, plus one
# failure per report). Environment: LANGOP_SAN_BUILDDIR (default
# build-sanitize).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# shellcheck source=deploy/lib.sh
. deploy/lib.sh
dir=${LANGOP_SAN_BUILDDIR:-build-sanitize}
quick=0
[ "${1:-}" = --quick ] && quick=1

if ! lo_meson_build "$dir" -Db_sanitize=address,undefined -Db_lundef=false 2>&1; then
  echo "sanitizer build failed"
  echo "0 passed, 1 failed"
  exit 1
fi
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
export ASAN_OPTIONS="detect_leaks=1:log_path=$logs/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0:log_path=$logs/ubsan"

echo "== sanitizers: unit tests ($dir/)"
meson test -C "$dir" --suite unit --print-errorlogs
read -r upass ufail <<<"$(/usr/bin/python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
ok = bad = 0
try:
    with open(sys.argv[1]) as f:
        for line in f:
            if line.strip():
                r = json.loads(line).get("result")
                ok += r in ("OK", "EXPECTEDFAIL")
                bad += r not in ("OK", "EXPECTEDFAIL", "SKIP")
except OSError:
    bad = 1
print(ok, bad)
PY
)"

if [ "$quick" = 1 ]; then
  # the two stress tests of many objects (LargeReplayTest, WatchStressTest) take 100 s here: the full run has them
  select=(-k write_path -k http -k fuzz -k hostile -k test_watch -k ReconcileTest -k shutdown -k store_faults
    --exclude LargeReplayTest --exclude WatchStressTest)
  limit=600
else
  # run_local builds and starts its own binary: nothing of this build to check
  select=(--exclude run_local)
  limit=2400
fi
echo "== sanitizers: integration tests"
ilog=$(mktemp)
timeout --kill-after=10 "$limit" /usr/bin/python3 tests/integration/run.py --binary "$dir/langop-apiserver" \
  "${select[@]}" 2>&1 | tee "$ilog"
irc=${PIPESTATUS[0]}
last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$ilog" | tail -n 1)
rm -f "$ilog"
ipass=0 ifail=1
if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  ipass=${BASH_REMATCH[1]} ifail=${BASH_REMATCH[2]}
  [ "$irc" -ne 0 ] && [ "$ifail" -eq 0 ] && ifail=1
fi
unset ASAN_OPTIONS UBSAN_OPTIONS

reports=$(find "$logs" -type f | wc -l)
if [ "$reports" -gt 0 ]; then
  echo "== sanitizer reports: $reports"
  find "$logs" -type f -exec head -n 30 {} \;
fi
echo "sanitize: unit $upass passed, $ufail failed; integration $ipass passed, $ifail failed; $reports reports"
echo "$((upass + ipass)) passed, $((ufail + ifail + reports)) failed"
[ $((ufail + ifail + reports)) -eq 0 ]
