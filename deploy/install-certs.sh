#!/usr/bin/env bash
# install-certs.sh [HOST...]: the serving certificate for the in-cluster server.
#
# Makes, or reuses, a CA and a serving certificate for
# langop-apiserver.langop-system.svc (the name the aggregator verifies) in
# deploy/generated/ (git-ignored), with deploy/gen-certs.sh; extra HOSTs become
# extra SANs. deploy/kustomization.yaml turns the files into the Secret
# langop-apiserver-serving and copies the CA into the APIService's caBundle, so
# the next step is `kubectl apply -k deploy/`.
#
# generated/ then holds ca.key, the CA's private key: keep it, so a rerun
# reissues the serving certificate under the same CA, and keep it private.
#
# Environment: LANGOP_CERTS_DIR replaces deploy/generated/ (the kustomization
# only reads deploy/generated/: copy the files there, or symlink the folder).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case "${1:-}" in -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
dir=${LANGOP_CERTS_DIR:-$here/generated}
svc=langop-apiserver.langop-system.svc

bash "$here/gen-certs.sh" "$dir" "$@"

# What the aggregator will check: the certificate chains to the CA and names
# the Service.
openssl verify -CAfile "$dir/ca.crt" "$dir/apiserver.crt" >/dev/null ||
  { echo "install-certs: $dir/apiserver.crt does not verify against $dir/ca.crt" >&2; exit 1; }
openssl x509 -in "$dir/apiserver.crt" -noout -checkhost "$svc" | grep -q 'does match' ||
  { echo "install-certs: $dir/apiserver.crt does not name $svc" >&2; exit 1; }

echo "install-certs: $dir holds the serving certificate for $svc; next: kubectl apply -k $here" >&2
