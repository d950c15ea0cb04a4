# shellcheck shell=bash
# Shared helpers for deploy/run-local.sh and tests/run.sh. Source it; it
# defines functions and the package list, and changes nothing by itself.

# Everything the build, the unit tests and the integration tests need on a
# fresh Debian 12. kubectl is not here: Debian's kubernetes-client (1.20)
# conflicts with the kubectl that is usually installed; see README.
# clang and libclang-rt-14-dev (libFuzzer and the sanitizer runtimes, only
# recommended by clang, and recommends are not installed) are for the fuzz
# targets of tests/fuzz/.
LANGOP_PACKAGES=(
  libh2o-evloop-dev libssl-dev libyaml-dev libjansson-dev libsqlite3-dev
  libcmocka-dev meson ninja-build pkg-config libcurl4-openssl-dev libjemalloc-dev
  sqlite3 curl openssl python3 python3-kubernetes python3-yaml python3-h2
  clang libclang-rt-14-dev
)

lo_log() { printf '%s\n' "$*" >&2; }
lo_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# lo_repo_root: absolute path of the checkout this file belongs to.
lo_repo_root() { (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd); }

# lo_missing_packages: print the packages of LANGOP_PACKAGES not installed.
lo_missing_packages() {
  local p st
  for p in "${LANGOP_PACKAGES[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || printf '%s\n' "$p"
  done
}

# lo_install_packages: install what is missing; apt-get update only then.
# All output goes to stderr so that callers can keep stdout for results.
lo_install_packages() {
  local missing sudo=
  command -v dpkg-query >/dev/null 2>&1 || lo_die "dpkg-query not found: this needs Debian 12"
  mapfile -t missing < <(lo_missing_packages)
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || lo_die "need root to install: ${missing[*]}"
    sudo=sudo
  fi
  lo_log "installing: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 ||
    lo_die "apt-get update failed"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}" >&2 </dev/null ||
    lo_die "apt-get install failed"
}

# lo_check_kubectl: warn (not fail) when kubectl is absent; the server does not
# need it, the integration tests and the user's next command do.
lo_check_kubectl() {
  command -v kubectl >/dev/null 2>&1 && return 0
  lo_log "warning: kubectl is not installed; install a kubectl >= 1.27 (see README)"
  return 1
}

# lo_meson_build DIR [meson setup options...]: configure DIR once, then build.
lo_meson_build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >&2 || return 1
  fi
  ninja -C "$dir" >&2
}

# lo_write_kubeconfig FILE SERVER CA_FILE TOKEN [NAME]: a kubeconfig with the
# CA embedded (so kubectl verifies the server), a bearer-token user and one
# context whose namespace is "default". Written mode 0600 (it holds a token).
lo_write_kubeconfig() {
  local file=$1 server=$2 ca=$3 token=$4 name=${5:-langop} ca_data
  ca_data=$(base64 -w0 <"$ca") || return 1
  (umask 077 && cat >"$file.tmp" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: $name
  cluster:
    server: $server
    certificate-authority-data: $ca_data
users:
- name: $name-admin
  user:
    token: $token
contexts:
- name: $name
  context:
    cluster: $name
    user: $name-admin
    namespace: default
current-context: $name
preferences: {}
KCFG
  ) && mv -f "$file.tmp" "$file"
}
