#!/usr/bin/env bash
# make demo: replace a broker of a local fleet while a ledger proves nothing
# is lost. Kafka is assembled and fleetd built by the Makefile first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../bin/fleetd" demo "$@"
