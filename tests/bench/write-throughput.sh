#!/usr/bin/env bash
# tests/bench/write-throughput.sh: the write path against a reference, in
# one run.
#
#   - langop-apiserver, default durability: CONCURRENCY concurrent creates
#     (POST of a LanguagePersona with generateName, over HTTPS/1.1, one
#     request in flight per connection);
#   - langop-apiserver --storage-fsync: the same;
#   - a local etcd (Debian's etcd-server, fsync on every commit as always):
#     puts of the same bytes through its JSON gateway (POST /v3/kv/put), at
#     the same concurrency, over plain HTTP/1.1 (etcd's fastest: the
#     reference the targets are set against) and over HTTPS/1.1 (what the
#     server pays for itself: TLS, as kube-apiserver talks to etcd).
#
# The four are measured in turn, round after round (A B C D A B C D ...),
# so a drift of the shared machine falls on all of them; it prints each
# round, the median of the rounds, and the ratios of the medians. Load is
# made by h2load (nghttp2-client), on loopback; the load generator shares
# the machine's cores with what it measures.
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
# the servers are started in command substitutions (subshells): their pids go to files
cleanup() {
  local f
  for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  sleep 0.5
  for f in "$work"/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
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
  echo $! >"$work/$name.pid"
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

# start_etcd NAME SCHEME: a local single-member etcd serving its clients over SCHEME (http or https); prints its port.
start_etcd() {
  local name=$1 scheme=$2 client peer tls=()
  client=$(free_port)
  peer=$(free_port)
  [ "$scheme" = https ] && tls=(--cert-file "$work/certs/apiserver.crt" --key-file "$work/certs/apiserver.key")
  etcd --name "$name" --data-dir "$work/$name" --listen-client-urls "$scheme://127.0.0.1:$client" \
    --advertise-client-urls "$scheme://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$name=http://127.0.0.1:$peer" "${tls[@]}" >"$work/$name.log" 2>&1 &
  echo $! >"$work/$name.pid"
  for _ in $(seq 100); do
    curl -sfk -X POST "$scheme://127.0.0.1:$client/v3/kv/range" -d '{"key":"eA=="}' >/dev/null 2>&1 && break
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
  out=$(h2load -n "$requests" -c "$concurrency" -m 1 --h1 "$@" "$url" 2>&1)
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
port_etcd=$(start_etcd etcd http)
port_etcd_tls=$(start_etcd etcd-tls https)
create_path=/apis/langop.io/v1alpha1/namespaces/bench/languagepersonas
auth=(-H "Authorization: Bearer $token" -H 'Content-Type: application/json')

declare -a r_default=() r_fsync=() r_etcd=() r_etcd_tls=()
echo "== $rounds rounds of $requests writes, $concurrency concurrent, requests per second" >&2
printf '%-6s %12s %12s %12s %12s\n' round default fsync etcd etcd-https
for round in $(seq "$rounds"); do
  a=$(rate "https://127.0.0.1:$port_default$create_path" -d "$work/create.json" "${auth[@]}")
  b=$(rate "https://127.0.0.1:$port_fsync$create_path" -d "$work/create.json" "${auth[@]}")
  c=$(rate "http://127.0.0.1:$port_etcd/v3/kv/put" -d "$work/put.json")
  d=$(rate "https://127.0.0.1:$port_etcd_tls/v3/kv/put" -d "$work/put.json")
  r_default+=("$a"); r_fsync+=("$b"); r_etcd+=("$c"); r_etcd_tls+=("$d")
  printf '%-6s %12s %12s %12s %12s\n' "$round" "$a" "$b" "$c" "$d"
done
m_default=$(median "${r_default[@]}")
m_fsync=$(median "${r_fsync[@]}")
m_etcd=$(median "${r_etcd[@]}")
m_etcd_tls=$(median "${r_etcd_tls[@]}")
printf '%-6s %12s %12s %12s %12s\n' median "$m_default" "$m_fsync" "$m_etcd" "$m_etcd_tls"
awk -v d="$m_default" -v f="$m_fsync" -v e="$m_etcd" -v t="$m_etcd_tls" 'BEGIN {
  printf "ratio default / etcd:       %.2f   (target >= 2)\n", d / e
  printf "ratio fsync / etcd:         %.2f   (target >= 1)\n", f / e
  printf "ratio default / etcd-https: %.2f   (the same transport)\n", d / t
  printf "ratio fsync / etcd-https:   %.2f\n", f / t
}'
