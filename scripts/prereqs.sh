#!/usr/bin/env bash
# Checks the tools fleetd's build, tests and demo need. On a Debian-like
# machine where we are root, installs what is missing; elsewhere says how.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

missing=()
java_ok() {
  command -v java >/dev/null 2>&1 || return 1
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
  [[ -n "$v" && "$v" -ge 17 ]]
}
java_ok || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
# promtool (Prometheus's checker) lints fleetd's metrics and unit-tests its
# alert rules in make test; Debian ships it in the prometheus package.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v go >/dev/null 2>&1 || die "Go 1.26 or newer is required: see https://go.dev/doc/install"

if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  # --no-install-recommends: promtool needs none of the server's extras. A
  # container without an init system only logs that the service was not
  # started.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  exit 0
fi
die "missing: ${missing[*]} (install them with your package manager)"
