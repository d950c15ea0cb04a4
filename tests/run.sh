#!/usr/bin/env bash
# tests/run.sh: install what is missing, build, run every suite.
#
# Suites: "unit" (cmocka executables through meson test), "golden" (the
# rendered LiteLLM configs read by PyYAML, tests/golden/check_litellm.py) and "integration"
# (tests/integration/run.py: the real binary driven by kubectl and
# python3-kubernetes). Prints one result line per suite and, as its last
# line, "N passed, N failed" summed over the suites. Exits non-zero when
# anything failed, including the build.
#
# Environment: LANGOP_BUILDDIR (default build), LANGOP_IT_TIMEOUT (seconds for
# the integration suite, default 420).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# shellcheck source=deploy/lib.sh
. deploy/lib.sh
builddir=${LANGOP_BUILDDIR:-build}
it_timeout=${LANGOP_IT_TIMEOUT:-420}
total_pass=0
total_fail=0
summary=()
started=$SECONDS

# record SUITE PASSED FAILED [NOTE]
record() {
  total_pass=$((total_pass + $2))
  total_fail=$((total_fail + $3))
  summary+=("$(printf '%-12s %3d passed, %3d failed%s' "$1:" "$2" "$3" "${4:+  ($4)}")")
}

finish() {
  echo
  echo "== results ($((SECONDS - started))s)"
  printf '%s\n' "${summary[@]}"
  echo "$total_pass passed, $total_fail failed"
  [ "$total_fail" -eq 0 ]
  exit $?
}

echo "== installing missing packages"
lo_install_packages 2>&1 || { record setup 0 1 "package install failed"; finish; }
lo_check_kubectl 2>&1 || true

echo "== building in $builddir/"
if ! lo_meson_build "$builddir" 2>&1; then
  record build 0 1 "build failed"
  finish
fi

echo "== unit tests"
meson test -C "$builddir" --suite unit --print-errorlogs
# Count from meson's machine-readable log: one JSON object per test.
counts=$(/usr/bin/python3 - "$builddir/meson-logs/testlog.json" <<'PY'
import json, sys
ok = bad = 0
try:
    with open(sys.argv[1]) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line).get("result")
            if r in ("OK", "EXPECTEDFAIL"):
                ok += 1
            elif r != "SKIP":
                bad += 1
except OSError:
    bad = 1
print(ok, bad)
PY
)
read -r upass ufail <<<"$counts"
if [ "$((upass + ufail))" -eq 0 ]; then
  record unit 0 1 "no unit test ran"
else
  record unit "$upass" "$ufail"
fi

echo "== golden gateway configs, read by PyYAML as the LiteLLM proxy reads them"
if /usr/bin/python3 tests/golden/check_litellm.py; then
  record golden 1 0
else
  record golden 0 1
fi

echo "== integration tests"
it_log=$(mktemp)
timeout --kill-after=10 "$it_timeout" /usr/bin/python3 tests/integration/run.py \
  --binary "$builddir/langop-apiserver" 2>&1 | tee "$it_log"
it_rc=${PIPESTATUS[0]}
last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$it_log" | tail -n 1)
rm -f "$it_log"
if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  ipass=${BASH_REMATCH[1]}; ifail=${BASH_REMATCH[2]}
  if [ "$it_rc" -ne 0 ] && [ "$ifail" -eq 0 ]; then ifail=1; fi
  record integration "$ipass" "$ifail" "$([ "$it_rc" -eq 124 ] && echo "timed out")"
else
  record integration 0 1 "runner exited $it_rc without a summary"
fi

finish
