#!/usr/bin/env bash
# Installs packer (MPL v1.9.4) and its amazon plugin into the cache, both
# built from their Go modules with `go build`: release sites are never
# contacted. Idempotent. Prints packer's path on stdout; the plugin lives in
# "$FLEETD_CACHE/packer-plugins", which is what PACKER_PLUGIN_PATH must name.
#
# Why the plugin is built too: packer 1.9.4 bundles the amazon plugin, but a
# template with `required_plugins` (ours, as packer recommends) ignores the
# bundled copy and wants an installed one, which `packer init` would download
# from GitHub. The version built here, v1.2.1, is the one packer 1.9.4
# bundles and the one its module already pins; it is installed the way
# `packer init` lays a plugin out (versioned name plus _SHA256SUM file).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

PACKER_VERSION="${PACKER_VERSION:-1.9.4}"
AMAZON_PLUGIN_VERSION="${AMAZON_PLUGIN_VERSION:-1.2.1}"
bin="$FLEETD_CACHE/bin/packer-$PACKER_VERSION"
plugin_dir="$FLEETD_CACHE/packer-plugins/github.com/hashicorp/amazon"
plugin="$plugin_dir/packer-plugin-amazon_v${AMAZON_PLUGIN_VERSION}_x5.0_$(go env GOOS)_$(go env GOARCH)"

# build_module MODULE VERSION OUT: go build the main package at the root of
# MODULE@VERSION, inside the module's own directory so that its own go.mod
# and go.sum choose every dependency.
build_module() {
  local dir
  dir="$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -d "$dir" ]] || die "go mod download $1@$2 gave no module directory"
  (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$3" .) >&2
}

need go "install Go 1.26 or newer"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [[ ! -x "$bin" ]]; then
  log "building packer v$PACKER_VERSION from its Go module (about 2 minutes)"
  build_module github.com/hashicorp/packer "v$PACKER_VERSION" "$tmp/packer"
  "$tmp/packer" version 2>/dev/null | grep -qx "Packer v$PACKER_VERSION" || die "the built packer is not v$PACKER_VERSION"
  mkdir -p "$FLEETD_CACHE/bin"
  mv "$tmp/packer" "$bin"
fi

if [[ ! -x "$plugin" || ! -f "${plugin}_SHA256SUM" ]]; then
  log "building packer-plugin-amazon v$AMAZON_PLUGIN_VERSION from its Go module"
  build_module github.com/hashicorp/packer-plugin-amazon "v$AMAZON_PLUGIN_VERSION" "$tmp/plugin"
  "$tmp/plugin" describe | grep -q "\"version\":\"$AMAZON_PLUGIN_VERSION\"" ||
    die "the built amazon plugin does not describe itself as $AMAZON_PLUGIN_VERSION"
  "$tmp/plugin" describe | grep -q '"api_version":"x5.0"' ||
    die "the built amazon plugin does not speak plugin API x5.0"
  mkdir -p "$plugin_dir"
  (cd "$tmp" && sha256sum plugin | cut -d' ' -f1) >"$tmp/sum"
  mv "$tmp/plugin" "$plugin"
  mv "$tmp/sum" "${plugin}_SHA256SUM"
fi
echo "$bin"
