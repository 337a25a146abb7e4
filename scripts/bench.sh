#!/usr/bin/env bash
# Runs fleetd's benchmarks and writes docs/benchmarks.md. Targets live in the
# benchmarks, never in timed tests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
cd "$here/.."

out="docs/benchmarks.md"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
log "running Go benchmarks"
go test -run '^$' -bench . -benchmem -count 1 ./... | grep -E '^(Benchmark|goos|goarch|cpu|pkg)' >"$raw"
replacement="$(mktemp)"
trap 'rm -f "$raw" "$replacement"' EXIT
FLEETD_KAFKA_TOOLS="$("$here/kafka-tools.sh")"
export FLEETD_KAFKA_TOOLS
log "running the replacement benchmark on a local fleet, beside kafka-reassign-partitions and ProducerPerformance (about 15 minutes)"
go run ./cmd/fleetd-bench >"$replacement"
small="$(mktemp)"
trap 'rm -f "$raw" "$replacement" "$small"' EXIT
log "running the many-small-partitions and identity catch-up benchmarks (about 6 minutes)"
go run ./cmd/fleetd-bench -small >"$small"
controllers="$(mktemp)"
trap 'rm -f "$raw" "$replacement" "$small" "$controllers"' EXIT
log "running the controller replacement benchmark on a local fleet (about 1 minute)"
go run ./cmd/fleetd-bench -controllers >"$controllers"
awsbench="$(mktemp)"
trap 'rm -f "$raw" "$replacement" "$small" "$controllers" "$awsbench"' EXIT
log "running the AWS benchmark: fleetd run against moto (about 4 minutes)"
go run ./cmd/fleetd-bench -aws >"$awsbench"

{
  echo "# fleetd benchmarks"
  echo
  echo "Written by \`make bench\` (scripts/bench.sh); do not edit by hand."
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3-4)"
  echo "- Kafka: ${KAFKA_VERSION}"
  echo
  echo "## Targets"
  echo
  echo "| benchmark | target | what it measures |"
  echo "|---|---|---|"
  echo "| BenchmarkGates200Brokers200kPartitions | < 100 ms/op, < 200 MB (snapshot-MiB + B/op) | derived view (report) and every gate over 200 brokers, 200,000 partitions |"
  echo "| BenchmarkLedgerRecord | none; bounds the verifiable record rate | ledger bookkeeping per record |"
  echo "| replacement (fleetd-bench) | copy / ideal <= 1.10 and below kafka-reassign-partitions' in the same run; ProducerPerformance p99 during the copy no worse than the tool's; with the adaptive throttle at most 2x idle | a real 1:1 move of >= 1 GiB by Kafka's own tool, fleetd, and fleetd with the adaptive throttle at the same throttle, alternating, three rounds, with Kafka's ProducerPerformance in each copy |"
  echo "| small partitions (fleetd-bench -small) | 2,000 x 100 kB within 1.5x the copy of 200 x 1 MB, and within 2x the tool's | the same bytes as many small or few large partitions (10 topics, and one), with fleetd's peak RSS and admin requests; an identity catch-up against bytes / throttle |"
  echo "| controllers (fleetd-bench -controllers) | none yet; fleetd's total within seconds of the bare runbook | each of 3 KRaft controllers replaced in turn, per step, beside the same Kafka calls without gates |"
  echo "| AWS (fleetd-bench -aws) | event to launch < 5 s; idle < 10 AWS calls/min and < 100 MB RSS for 30 brokers | SQS event to RunInstances with real gates; idle API rate and memory of \`fleetd run\` |"
  echo
  echo "Single runs on a 2-core machine that also hosts every broker: differences of"
  echo "a few tens of percent between runs are noise, not findings."
  echo
  cat "$replacement"
  cat "$small"
  cat "$controllers"
  cat "$awsbench"
  echo "## Go micro-benchmarks"
  echo
  echo '```'
  cat "$raw"
  echo '```'
} >"$out"
log "wrote $out"
