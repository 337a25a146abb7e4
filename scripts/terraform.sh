#!/usr/bin/env bash
# Installs terraform (MPL v1.5.7) from its Go module into the cache with
# `go install`: release sites are never contacted. Idempotent. Prints the
# binary's path on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

TERRAFORM_VERSION="${TERRAFORM_VERSION:-1.5.7}"
bin="$FLEETD_CACHE/bin/terraform-$TERRAFORM_VERSION"
# The version comes from `terraform version -json`: the plain form prints a
# warning first when the CLI config is odd, and a warning is not a version.
if [[ -x "$bin" ]]; then
  got="$(json_version "$bin" terraform_version)"
  [[ "$got" == "$TERRAFORM_VERSION" ]] || die "$bin reports version '${got}', not $TERRAFORM_VERSION: remove it and run again"
  echo "$bin"
  exit 0
fi
need go "install Go 1.26 or newer"
log "building terraform v$TERRAFORM_VERSION from its Go module (about 2 minutes)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" GOFLAGS=-mod=mod go install "github.com/hashicorp/terraform@v$TERRAFORM_VERSION" >&2
mkdir -p "$FLEETD_CACHE/bin"
got="$(json_version "$tmp/terraform" terraform_version)"
[[ "$got" == "$TERRAFORM_VERSION" ]] || die "the built terraform reports version '${got}', not $TERRAFORM_VERSION"
mv "$tmp/terraform" "$bin"
echo "$bin"
