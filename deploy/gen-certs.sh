#!/usr/bin/env bash
# gen-certs.sh DIR [HOST...]: a CA and a serving certificate for langop-apiserver.
#
# Creates, when absent, DIR/ca.crt + DIR/ca.key (a CA) and DIR/apiserver.crt +
# DIR/apiserver.key signed by it, all EC P-256. The serving certificate names
# localhost, 127.0.0.1, ::1, langop-apiserver.langop-system.svc and every extra
# HOST (an IP literal becomes an IP SAN, anything else a DNS SAN).
#
# Idempotent: an existing CA is always reused; an existing serving certificate
# is reused while it is signed by that CA, valid for another day and covers
# every requested name; otherwise it is reissued (with its existing key).
set -euo pipefail

usage() { echo "usage: $0 DIR [HOST...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage ;; esac
dir=$1; shift
command -v openssl >/dev/null || { echo "error: openssl CLI not found" >&2; exit 1; }

mkdir -p "$dir"
umask 077
hosts=(localhost 127.0.0.1 ::1 langop-apiserver.langop-system.svc "$@")

# SAN entries as openssl prints them ("DNS:x", "IP Address:1.2.3.4"), for the
# reuse check, and as openssl reads them ("DNS:x", "IP:x"), for issuing.
is_ip() { [[ $1 =~ ^[0-9]+(\.[0-9]+){3}$ || $1 == *:* ]]; }
san_conf=
for h in "${hosts[@]}"; do
  if is_ip "$h"; then san_conf+="${san_conf:+,}IP:$h"; else san_conf+="${san_conf:+,}DNS:$h"; fi
done

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -s "$dir/ca.crt" ] || [ ! -s "$dir/ca.key" ]; then
  new_key "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 \
    -subj "/CN=langop-apiserver-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$dir/ca.crt"
  rm -f "$dir/apiserver.crt"     # a new CA invalidates the old serving cert
  echo "gen-certs: created CA $dir/ca.crt" >&2
fi

# serving_cert_ok: true when apiserver.crt can be kept as it is.
serving_cert_ok() {
  local sans h ip
  [ -s "$dir/apiserver.crt" ] && [ -s "$dir/apiserver.key" ] || return 1
  openssl verify -CAfile "$dir/ca.crt" "$dir/apiserver.crt" >/dev/null 2>&1 || return 1
  openssl x509 -in "$dir/apiserver.crt" -noout -checkend 86400 >/dev/null || return 1
  # the certificate must belong to the key we have
  [ "$(openssl x509 -in "$dir/apiserver.crt" -noout -pubkey)" = \
    "$(openssl pkey -in "$dir/apiserver.key" -pubout)" ] || return 1
  sans=$(openssl x509 -in "$dir/apiserver.crt" -noout -ext subjectAltName 2>/dev/null |
         tail -n +2 | tr -d ' ' | tr ',' '\n')
  for h in "${hosts[@]}"; do
    if is_ip "$h"; then
      # openssl prints IPv6 SANs expanded (0:0:0:0:0:0:0:1): accept both spellings
      ip=$h; [ "$h" = ::1 ] && ip=0:0:0:0:0:0:0:1
      grep -qxF -e "IPAddress:$h" -e "IPAddress:$ip" <<<"$sans" || return 1
    else
      grep -qxF "DNS:$h" <<<"$sans" || return 1
    fi
  done
}

if serving_cert_ok; then
  echo "gen-certs: reusing $dir/apiserver.crt" >&2
  exit 0
fi

[ -s "$dir/apiserver.key" ] || new_key "$dir/apiserver.key"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/ext.cnf" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san_conf
EXT
openssl req -new -key "$dir/apiserver.key" -subj "/CN=langop-apiserver" -out "$tmp/csr"
openssl x509 -req -in "$tmp/csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
  -extfile "$tmp/ext.cnf" -out "$dir/apiserver.crt" 2>/dev/null
chmod 0644 "$dir/ca.crt" "$dir/apiserver.crt"
echo "gen-certs: issued $dir/apiserver.crt for ${hosts[*]}" >&2
