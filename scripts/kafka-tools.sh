#!/usr/bin/env bash
# Assembles Apache Kafka's command-line tools (org.apache.kafka:kafka-tools,
# the classes behind kafka-reassign-partitions.sh and ProducerPerformance)
# from Maven Central into $FLEETD_CACHE/kafka/<version>/tools, beside the
# broker's libs. Only the benchmarks use them: fleetd is compared with the
# tool an operator would pick instead, in the same run.
# Idempotent (marked by tools/.complete). Prints the tools directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

dist="$("$here/kafka-dist.sh")"
tools="$dist/tools"
if [[ -f "$tools/.complete" ]]; then
  echo "$tools"
  exit 0
fi
case "$KAFKA_VERSION" in
  4.*) ;;
  *) die "KAFKA_VERSION=$KAFKA_VERSION: the benchmark's Kafka tools are assembled for 4.x only" ;;
esac
need mvn "install Apache Maven (Debian: apt-get install maven)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.fleetd</groupId>
  <artifactId>kafka-tools-dist</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
  </dependencies>
</project>
POM
log "assembling Apache Kafka $KAFKA_VERSION tools from Maven Central into $tools"
rm -rf "$tools.partial"
mkdir -p "$tools.partial"
mvn -B -q -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$tools.partial" >&2 \
  || die "maven could not resolve org.apache.kafka:kafka-tools:$KAFKA_VERSION"
[[ -f "$tools.partial/kafka-tools-$KAFKA_VERSION.jar" ]] || die "kafka-tools-$KAFKA_VERSION.jar missing after assembly"
touch "$tools.partial/.complete"
rm -rf "$tools"
mv "$tools.partial" "$tools"
echo "$tools"
