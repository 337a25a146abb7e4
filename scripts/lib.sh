#!/usr/bin/env bash
# Shared settings for fleetd's set-up scripts. Sourced, never run.
# Everything fleetd's tests and demo need lives in one cache outside the repo.

# shellcheck disable=SC2034 # variables are used by the scripts that source this file
FLEETD_CACHE="${FLEETD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fleetd}"
# The newest Apache Kafka 4.x release on Maven Central when this was written.
FLEETD_DEFAULT_KAFKA_VERSION="4.4.0"
KAFKA_VERSION="${KAFKA_VERSION:-$FLEETD_DEFAULT_KAFKA_VERSION}"
FLEETD_VENV="$FLEETD_CACHE/venv"

# The tools these scripts build and run read settings from the caller's
# environment. A stale one (TF_CLI_CONFIG_FILE naming no file, an
# AWS_PROFILE for another account, JAVA_TOOL_OPTIONS, a PACKER_PLUGIN_PATH)
# must not change what they do, so each gets an explicit configuration here.
# How the machine reaches package registries (GOPROXY, pip.conf, Maven's
# settings.xml) is left alone: that is the machine's, not the caller's.
export TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
unset TF_LOG TF_LOG_PATH TF_DATA_DIR TF_PLUGIN_CACHE_DIR TF_WORKSPACE TF_INPUT
unset PACKER_CONFIG PACKER_CONFIG_DIR PACKER_PLUGIN_PATH PACKER_LOG PACKER_LOG_PATH PACKER_CACHE_DIR
unset JAVA_TOOL_OPTIONS _JAVA_OPTIONS JDK_JAVA_OPTIONS MAVEN_OPTS MAVEN_ARGS KAFKA_OPTS KAFKA_HEAP_OPTS
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^AWS_' || true)
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true

log() { printf '[fleetd-setup] %s\n' "$*" >&2; }
die() { printf '[fleetd-setup] error: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is required: $2"
}

# json_version BIN KEY: the version BIN reports in `BIN version -json`
# under KEY (terraform: terraform_version), never a warning line.
json_version() {
  "$1" version -json 2>/dev/null | sed -n "s/.*\"$2\": *\"\([^\"]*\)\".*/\1/p" | head -1
}
