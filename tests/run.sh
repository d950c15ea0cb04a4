#!/usr/bin/env bash
# tests/run.sh: install what is missing, build, run every suite.
#
# Suites: "unit" (cmocka executables through meson test), "golden" (the
# rendered LiteLLM configs read by PyYAML, tests/golden/check_litellm.py),
# "layers" (tests/tools/check_layers.py on the tree, and its own tests),
# "standin" (tests/standin/test_kube_standin.py: the kube-apiserver stand-in
# that the delegated-auth and reconcile tests talk to, checked on its own),
# "deploy" (tests/tools/check_deploy.py: deploy/ rendered by kubectl kustomize
# after deploy/install-certs.sh, the built server run with its args in a
# cluster played by the kube-apiserver stand-in, and the Dockerfile, its build
# stage built outside docker; and its own tests),
# "crd-schemas" (tests/tools/check_crd_schemas.py: openapi/*.yaml obey the
# rules kube-apiserver applies to CRDs, and its own tests),
# "integration" (tests/integration/run.py: the real binary driven by kubectl
# and python3-kubernetes), "faults" (its reconcile fault tests, run alongside
# the rest: a kube-apiserver outage, a restart half way, an idle minute), and
# "sanitize" (tests/sanitize.sh --quick: a build with AddressSanitizer,
# LeakSanitizer and UndefinedBehaviorSanitizer, the unit tests and the
# write-path, watch, HTTP, hostile-request, fuzz, reconcile, store fault and shutdown
# integration tests against that server; any sanitizer report fails it;
# tests/sanitize.sh alone runs every integration test so), and
# "fuzz" (tests/fuzz/run.sh: the libFuzzer
# targets built with clang, ASan and UBSan, every kept crasher replayed, then
# each target fuzzed a few seconds; a crash or a failed check fails it).
# Prints one result line per suite and, as its
# last line, "N passed, N failed" summed over the suites. Exits non-zero when
# anything failed, including a build.
#
# Environment: LANGOP_BUILDDIR (default build), LANGOP_SAN_BUILDDIR (default
# build-sanitize), LANGOP_IT_TIMEOUT (seconds for the integration suite,
# default 600), LANGOP_SANITIZE=0 to leave the sanitizer suite out,
# LANGOP_FUZZ=0 to leave the fuzz suite out, LANGOP_FUZZ_SECONDS (seconds
# per fuzz target, default 5; the suite builds in build-fuzz/).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# shellcheck source=deploy/lib.sh
. deploy/lib.sh
builddir=${LANGOP_BUILDDIR:-build}
it_timeout=${LANGOP_IT_TIMEOUT:-600}
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

# unit_counts DIR: "passed failed" from meson's machine-readable log of DIR (one JSON object per test).
unit_counts() {
  /usr/bin/python3 - "$1/meson-logs/testlog.json" <<'PY'
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
}

# run_integration BINARY TIMEOUT [run.py args...]: "passed failed note" of the integration runner.
run_integration() {
  local binary=$1 limit=$2 log rc last
  shift 2
  log=$(mktemp)
  timeout --kill-after=10 "$limit" /usr/bin/python3 tests/integration/run.py --binary "$binary" "$@" 2>&1 |
    tee "$log" >&2
  rc=${PIPESTATUS[0]}
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
  rm -f "$log"
  if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    local pass=${BASH_REMATCH[1]} fail=${BASH_REMATCH[2]}
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
    echo "$pass $fail $([ "$rc" -eq 124 ] && echo "timed out")"
  else
    echo "0 1 runner exited $rc without a summary"
  fi
}

echo "== unit tests"
meson test -C "$builddir" --suite unit --print-errorlogs
read -r upass ufail <<<"$(unit_counts "$builddir")"
if [ "$((upass + ufail))" -eq 0 ]; then
  record unit 0 1 "no unit test ran"
else
  record unit "$upass" "$ufail"
fi

# The sanitizer build and the fuzz targets compile while the checks below run
# (they are light, and not timed); the integration tests, which are, wait for
# them to end.
san_build_pid=
if [ "${LANGOP_SANITIZE:-1}" != 0 ]; then
  san_build_log=$(mktemp)
  (renice -n 10 "$BASHPID" >/dev/null
   lo_meson_build "${LANGOP_SAN_BUILDDIR:-build-sanitize}" -Db_sanitize=address,undefined -Db_lundef=false
   # and the fuzz targets, which tests/fuzz/run.sh then finds built
   if [ "${LANGOP_FUZZ:-1}" != 0 ] && command -v clang >/dev/null 2>&1; then
     fuzz_dir=${LANGOP_FUZZ_BUILDDIR:-build-fuzz}
     [ -f "$fuzz_dir/build.ninja" ] || CC=clang meson setup "$fuzz_dir" -Dfuzz=true \
       -Db_sanitize=address,undefined -Db_lundef=false --buildtype=debugoptimized
     ninja -C "$fuzz_dir" fuzz
   fi) >"$san_build_log" 2>&1 &
  san_build_pid=$!
fi

echo "== golden gateway configs, read by PyYAML as the LiteLLM proxy reads them"
if /usr/bin/python3 tests/golden/check_litellm.py; then
  record golden 1 0
else
  record golden 0 1
fi

echo "== layers: no upward include, no include cycle (the checker, then its own tests with planted faults)"
lpass=0 lfail=0
if /usr/bin/python3 tests/tools/check_layers.py; then lpass=$((lpass + 1)); else lfail=$((lfail + 1)); fi
if /usr/bin/python3 tests/tools/test_check_layers.py; then lpass=$((lpass + 1)); else lfail=$((lfail + 1)); fi
record layers "$lpass" "$lfail"

echo "== standin: the kube-apiserver stand-in serves what the real API serves (its own tests, kubectl included)"
# counts from unittest's "Ran N tests" and "FAILED (failures=F, errors=E)"; a crash without them is one failure
slog=$(mktemp)
timeout --kill-after=10 120 /usr/bin/python3 tests/standin/test_kube_standin.py 2>&1 | tee "$slog"
src=${PIPESTATUS[0]}
sran=$(sed -n 's/^Ran \([0-9][0-9]*\) tests\{0,1\} in .*/\1/p' "$slog" | tail -n 1)
sbad=0
for n in $(grep -E '^FAILED \(' "$slog" | tail -n 1 | grep -oE '(failures|errors)=[0-9]+' | cut -d= -f2); do
  sbad=$((sbad + n))
done
rm -f "$slog"
if [ -z "$sran" ]; then
  record standin 0 1 "no unittest summary (exit $src)"
elif [ "$src" -ne 0 ] && [ "$sbad" -eq 0 ]; then
  record standin "$sran" 1 "exit $src"
else
  record standin "$((sran - sbad))" "$sbad"
fi

echo "== deploy: deploy/ renders with kubectl kustomize into what a cluster needs (the checker, then its own tests with planted faults)"
dpass=0 dfail=0
if command -v kubectl >/dev/null 2>&1; then
  export LANGOP_BINARY=$builddir/langop-apiserver
  if /usr/bin/python3 tests/tools/check_deploy.py --build; then dpass=$((dpass + 1)); else dfail=$((dfail + 1)); fi
  if /usr/bin/python3 tests/tools/test_check_deploy.py; then dpass=$((dpass + 1)); else dfail=$((dfail + 1)); fi
  unset LANGOP_BINARY
  record deploy "$dpass" "$dfail"
else
  record deploy 0 1 "kubectl not installed"
fi

echo "== crd-schemas: openapi/*.yaml install as CRDs (the checker, then its own tests with planted faults)"
cpass=0 cfail=0
if /usr/bin/python3 tests/tools/check_crd_schemas.py; then cpass=$((cpass + 1)); else cfail=$((cfail + 1)); fi
if /usr/bin/python3 tests/tools/test_check_crd_schemas.py; then cpass=$((cpass + 1)); else cfail=$((cfail + 1)); fi
record crd-schemas "$cpass" "$cfail"

if [ -n "$san_build_pid" ]; then
  echo "== waiting for the sanitizer build"
  wait "$san_build_pid" || cat "$san_build_log" # tests/sanitize.sh tries again and reports a failure
  rm -f "$san_build_log"
fi

echo "== integration tests (the reconcile fault tests alongside: they mostly wait, through an outage and an idle minute)"
faults_log=$(mktemp)
faults_result=$(mktemp)
run_integration "$builddir/langop-apiserver" "$it_timeout" -k reconcile_faults >"$faults_result" 2>"$faults_log" &
faults_pid=$!
read -r ipass ifail inote <<<"$(run_integration "$builddir/langop-apiserver" "$it_timeout" --exclude reconcile_faults)"
record integration "$ipass" "$ifail" "$inote"
wait "$faults_pid"
echo "== reconcile fault tests (run alongside)"
cat "$faults_log"
read -r fpass ffail fnote <"$faults_result"
record faults "${fpass:-0}" "${ffail:-1}" "$fnote"
rm -f "$faults_log" "$faults_result"

sanitize() {
  local log last
  echo "== sanitizers: ASan, LSan and UBSan build, the unit tests and a quick integration run (tests/sanitize.sh --quick)"
  log=$(mktemp)
  bash tests/sanitize.sh --quick 2>&1 | tee "$log"
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
  if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    record sanitize "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "$(grep -E '^sanitize: ' "$log" | tail -n 1 | sed 's/^sanitize: //')"
  else
    record sanitize 0 1 "tests/sanitize.sh ended without a summary"
  fi
  rm -f "$log"
}
[ "${LANGOP_SANITIZE:-1}" = 0 ] || sanitize

# The fuzz suite: one pass per target without a crash, one failure per target with one.
fuzz_suite() {
  local log summary
  echo "== fuzz: libFuzzer targets (clang, ASan, UBSan), kept crashers replayed, ${LANGOP_FUZZ_SECONDS:-5} s each"
  log=$(mktemp)
  LANGOP_FUZZ_JOBS=2 tests/fuzz/run.sh "${LANGOP_FUZZ_SECONDS:-5}" 2>&1 | tee "$log"
  summary=$(grep -E '^fuzz: [0-9]+ targets, [0-9]+ with crashes' "$log" | tail -n 1)
  rm -f "$log"
  if [[ $summary =~ ^fuzz:\ ([0-9]+)\ targets,\ ([0-9]+)\ with\ crashes ]]; then
    record fuzz "$((BASH_REMATCH[1] - BASH_REMATCH[2]))" "${BASH_REMATCH[2]}"
  else
    record fuzz 0 1 "build failed or no summary"
  fi
}
[ "${LANGOP_FUZZ:-1}" = 0 ] || fuzz_suite

finish
