#!/usr/bin/env bash
# Shared settings for fleetd's set-up scripts. Sourced, never run.
# Everything fleetd's tests and demo need lives in one cache outside the repo.

# shellcheck disable=SC2034 # variables are used by the scripts that source this file
FLEETD_CACHE="${FLEETD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fleetd}"
# The newest Apache Kafka 4.x release on Maven Central when this was written.
FLEETD_DEFAULT_KAFKA_VERSION="4.4.0"
KAFKA_VERSION="${KAFKA_VERSION:-$FLEETD_DEFAULT_KAFKA_VERSION}"
FLEETD_VENV="$FLEETD_CACHE/venv"

log() { printf '[fleetd-setup] %s\n' "$*" >&2; }
die() { printf '[fleetd-setup] error: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is required: $2"
}
