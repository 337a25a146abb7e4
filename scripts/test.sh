#!/usr/bin/env bash
# Runs every test, unit and integration, with the race detector, then makes
# sure no Kafka or moto process outlived the run. Extra arguments go to
# `go test` (e.g. -run TestName). Every child of this run inherits
# FLEETD_TEST_RUN, which is how stragglers are found.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
cd "$here/.."

FLEETD_TEST_RUN="$$-$(date +%s)"
export FLEETD_TEST_RUN

# Processes whose environment carries this run's marker. Call it only after
# `export -n`, so that the scan's own processes do not carry the marker.
stragglers() {
  local env pid
  for env in /proc/[0-9]*/environ; do
    pid="${env#/proc/}"; pid="${pid%/environ}"
    if { tr '\0' '\n' <"$env"; } 2>/dev/null | grep -qx "FLEETD_TEST_RUN=$FLEETD_TEST_RUN"; then
      echo "$pid"
    fi
  done
}

check_leaks() {
  local pids=() pid
  mapfile -t pids < <(stragglers)
  ((${#pids[@]} == 0)) && return 0
  log "LEAK: processes left running by the tests:"
  for pid in "${pids[@]}"; do
    ps -o pid=,args= -p "$pid" >&2 || true
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
  return 1
}

status=0
# The bound per package: cmd/fleetd's tests take about 9 minutes beside the
# other packages on 2 cores; CI allows 90. -vet=off: make test vets first
# (make lint, both tags), and on 2 cores every CPU second counts.
go test -race -count=1 -vet=off -tags integration -timeout 40m "$@" ./... || status=$?
export -n FLEETD_TEST_RUN
sleep 1 # let parent-death signals land
check_leaks || status=1
exit "$status"
