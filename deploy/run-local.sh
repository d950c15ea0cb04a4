#!/usr/bin/env bash
# run-local.sh: build langop-apiserver and run it on https://127.0.0.1:6443.
#
# Installs missing Debian packages, builds a release binary in build-release/,
# and keeps all local state under .langop/ (git-ignored):
#   ca.crt ca.key apiserver.crt apiserver.key   CA and serving certificate
#   token, tokens.csv                           bearer token of user "admin"
#   langop.db                                   the object store
#   apiserver.log, apiserver.pid                the running server
#   kubeconfig                                  for kubectl, carrying the CA
# Run again, it reuses certificates, token and database and restarts the server.
# Its only line on stdout is the `export KUBECONFIG=...` to run next, so
# `eval "$(deploy/run-local.sh)"` works too; progress goes to stderr.
#
# Environment: LANGOP_PORT (default 6443), LANGOP_VERBOSITY (default 2).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=deploy/lib.sh
. deploy/lib.sh
root=$PWD
state=$root/.langop
port=${LANGOP_PORT:-6443}
bin=$root/build-release/langop-apiserver
pidfile=$state/apiserver.pid
url=https://127.0.0.1:$port

lo_install_packages
lo_log "building release binary in build-release/"
lo_meson_build build-release --buildtype=release || lo_die "build failed"
[ -x "$bin" ] || lo_die "build produced no $bin"

mkdir -p "$state"
chmod 700 "$state"
bash deploy/gen-certs.sh "$state"

# One bearer token, made once; tokens.csv is kube's static token file format.
if [ ! -s "$state/token" ]; then
  (umask 077 && openssl rand -hex 32 >"$state/token")
  lo_log "created a bearer token in .langop/token"
fi
token=$(tr -d '\n' <"$state/token")
(umask 077 && printf '%s,admin,admin,"system:masters"\n' "$token" >"$state/tokens.csv")

# stop_running: stop the server recorded in the pid file, if it is ours and alive.
stop_running() {
  local pid exe
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && [[ $exe == */langop-apiserver* ]]; then
    lo_log "stopping the running server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      lo_log "pid $pid ignored SIGTERM for 10s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$pidfile"
}
stop_running

lo_log "starting langop-apiserver on $url (log: .langop/apiserver.log)"
# setsid: the server outlives this script and the terminal it ran in.
# --reconcile=off: a local server has no cluster to push gateways and agents into.
setsid "$bin" \
  --secure-port="$port" --bind-address=127.0.0.1 \
  --tls-cert-file="$state/apiserver.crt" --tls-private-key-file="$state/apiserver.key" \
  --storage-path="$state/langop.db" \
  --token-auth-file="$state/tokens.csv" \
  --reconcile=off \
  -v="${LANGOP_VERBOSITY:-2}" \
  </dev/null >>"$state/apiserver.log" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"

ready=
for _ in $(seq 150); do
  if ! kill -0 "$pid" 2>/dev/null; then
    lo_log "the server exited; last lines of .langop/apiserver.log:"
    tail -n 20 "$state/apiserver.log" >&2
    rm -f "$pidfile"
    exit 1
  fi
  if [ "$(curl -s --cacert "$state/ca.crt" -o /dev/null -w '%{http_code}' "$url/readyz")" = 200 ]; then
    ready=1; break
  fi
  sleep 0.2
done
[ -n "$ready" ] || lo_die "server (pid $pid) not ready after 30s; see .langop/apiserver.log"

lo_write_kubeconfig "$state/kubeconfig" "$url" "$state/ca.crt" "$token" langop-local
lo_check_kubectl || true
lo_log "langop-apiserver is ready (pid $pid). Next:"
echo "export KUBECONFIG=$state/kubeconfig"
