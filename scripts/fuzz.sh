#!/usr/bin/env bash
# make fuzz: runs every Fuzz target in the module for FUZZTIME each (default
# 30s), one after another. make test already runs each target over its seed
# corpus (the f.Add seeds and testdata/fuzz/<Target>/); an input the fuzzer
# finds failing is written by go test into that testdata directory, so
# committing it makes it a seed that every later make test runs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
cd "$here/.."

fuzztime="${FUZZTIME:-30s}"
failed=0
while read -r pkg; do
  while read -r target; do
    [[ "$target" == Fuzz* ]] || continue
    log "fuzzing $pkg $target for $fuzztime"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
      log "FAIL: $pkg $target (the failing input is under its testdata/fuzz/$target/)"
      failed=1
    fi
  done < <(go test -list '^Fuzz' "$pkg" 2>/dev/null)
done < <(go list ./...)
exit "$failed"
