#!/usr/bin/env bash
# tests/bench/write-throughput.sh: the write path against a reference, in
# one run.
#
#   - langop-apiserver, default durability: CONCURRENCY concurrent creates
#     (POST of a LanguagePersona with generateName, over HTTPS/2, one request
#     in flight per connection);
#   - langop-apiserver --storage-fsync: the same;
#   - a local etcd (Debian's etcd-server, fsync on every commit as always):
#     puts of the same bytes through its JSON gateway (POST /v3/kv/put,
#     HTTP/1.1), at the same concurrency.
#
# The three are measured in turn, round after round (A B C A B C ...), so a
# drift of the shared machine falls on all of them; it prints each round,
# the median of the rounds, and the ratios of the medians. Load is made by
# h2load (nghttp2-client), on loopback.
#
# Usage: tests/bench/write-throughput.sh
# Environment: LANGOP_BENCH_REQUESTS (per run, default 20000),
# LANGOP_BENCH_ROUNDS (default 3), LANGOP_BENCH_CONCURRENCY (default 64),
# LANGOP_BENCH_BUILDDIR (default build-release).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
# shellcheck source=deploy/lib.sh
. deploy/lib.sh
requests=${LANGOP_BENCH_REQUESTS:-20000}
rounds=${LANGOP_BENCH_ROUNDS:-3}
concurrency=${LANGOP_BENCH_CONCURRENCY:-64}
builddir=${LANGOP_BENCH_BUILDDIR:-build-release}

LANGOP_PACKAGES+=(etcd-server nghttp2-client)
lo_install_packages
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" --buildtype=release >&2 || lo_die "meson setup failed"
fi
ninja -C "$builddir" langop-apiserver >&2 || lo_die "build failed"
binary=$builddir/langop-apiserver

work=$(mktemp -d /tmp/langop-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
[ -n "${LANGOP_BENCH_KEEP:-}" ] && trap - EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bash deploy/gen-certs.sh "$work/certs" >/dev/null 2>&1 || lo_die "gen-certs failed"
token=$(head -c 18 /dev/urandom | base64 | tr -d '+/=')
echo "$token,bench,bench-uid,\"system:masters\"" >"$work/tokens.csv"

# start_server NAME [FLAGS...]: a langop-apiserver with its own database; prints its port.
start_server() {
  local name=$1 port; shift
  port=$(free_port)
  "$binary" --secure-port="$port" --bind-address=127.0.0.1 \
    --tls-cert-file="$work/certs/apiserver.crt" --tls-private-key-file="$work/certs/apiserver.key" \
    --token-auth-file="$work/tokens.csv" --storage-path="$work/$name.db" "$@" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -sfk "https://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sfk -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    "https://127.0.0.1:$port/apis/langop.io/v1alpha1/languageclusters" \
    -d '{"apiVersion":"langop.io/v1alpha1","kind":"LanguageCluster","metadata":{"name":"bench"},"spec":{}}' \
    >/dev/null || lo_die "$name did not start: $(tail -5 "$work/$name.log")"
  echo "$port"
}

start_etcd() {
  local client peer
  client=$(free_port)
  peer=$(free_port)
  etcd --name bench --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" >"$work/etcd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -sf -X POST "http://127.0.0.1:$client/v3/kv/range" -d '{"key":"eA=="}' >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "$client"
}

body='{"apiVersion":"langop.io/v1alpha1","kind":"LanguagePersona","metadata":{"generateName":"p-","namespace":"bench"},"spec":{"tone":"friendly","personality":"A helpful assistant that answers briefly.","expertise":"kubernetes and language models"}}'
printf '%s' "$body" >"$work/create.json"
printf '{"key":"%s","value":"%s"}' "$(printf '%s' /registry/langop.io/languagepersonas/bench/p | base64 -w0)" \
  "$(printf '%s' "$body" | base64 -w0)" >"$work/put.json"

# rate URL ARGS...: one h2load run; prints requests per second, fails unless every answer is 2xx.
rate() {
  local url=$1 out; shift
  out=$(h2load -n "$requests" -c "$concurrency" -m 1 "$@" "$url" 2>&1)
  if ! grep -q "status codes: $requests 2xx" <<<"$out"; then
    echo "h2load against $url did not get $requests 2xx answers:" >&2
    grep -E "status codes|requests:|errored" <<<"$out" >&2
    return 1
  fi
  sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out"
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

echo "== starting langop-apiserver (default, --storage-fsync) and etcd $(etcd --version | head -1 | awk '{print $3}')" >&2
port_default=$(start_server default)
port_fsync=$(start_server fsync --storage-fsync)
port_etcd=$(start_etcd)
create_path=/apis/langop.io/v1alpha1/namespaces/bench/languagepersonas
auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')

declare -a r_default=() r_fsync=() r_etcd=()
echo "== $rounds rounds of $requests writes, $concurrency concurrent" >&2
printf '%-6s %14s %14s %14s\n' round default fsync etcd
for round in $(seq "$rounds"); do
  a=$(rate "https://127.0.0.1:$port_default$create_path" -d "$work/create.json" "${auth[@]}")
  b=$(rate "https://127.0.0.1:$port_fsync$create_path" -d "$work/create.json" "${auth[@]}")
  c=$(rate "http://127.0.0.1:$port_etcd/v3/kv/put" --h1 -d "$work/put.json")
  r_default+=("$a"); r_fsync+=("$b"); r_etcd+=("$c")
  printf '%-6s %14s %14s %14s\n' "$round" "$a" "$b" "$c"
done
m_default=$(median "${r_default[@]}")
m_fsync=$(median "${r_fsync[@]}")
m_etcd=$(median "${r_etcd[@]}")
printf '%-6s %14s %14s %14s\n' median "$m_default" "$m_fsync" "$m_etcd"
awk -v d="$m_default" -v f="$m_fsync" -v e="$m_etcd" 'BEGIN {
  printf "ratio default / etcd: %.2f   (target >= 2)\n", d / e
  printf "ratio fsync / etcd:   %.2f   (target >= 1)\n", f / e
}'
