#!/usr/bin/env bash
# Assembles a runnable Apache Kafka (KRaft) from Maven Central artifacts into
# $FLEETD_CACHE/kafka/<version>: libs/ holds the broker jar, its runtime
# dependencies and the logging binding that release line needs.
# Idempotent: a complete assembly (marked by .complete) is left untouched.
# Prints the distribution directory on stdout.
#
#   KAFKA_VERSION=3.9.1 scripts/kafka-dist.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

dist="$FLEETD_CACHE/kafka/$KAFKA_VERSION"
if [[ -f "$dist/.complete" ]]; then
  echo "$dist"
  exit 0
fi

need java "install a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)"
need mvn "install Apache Maven (Debian: apt-get install maven)"

# Kafka 4.x logs through SLF4J 1.7 to Log4j 2; 3.x through reload4j.
case "$KAFKA_VERSION" in
  3.*)
    logging_deps='
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>'
    ;;
  4.*)
    logging_deps='
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.2</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.25.2</version></dependency>'
    ;;
  *) die "KAFKA_VERSION=$KAFKA_VERSION: only 3.x (KRaft, 3.7 or newer) and 4.x releases are supported" ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.fleetd</groupId>
  <artifactId>kafka-dist</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>$logging_deps
  </dependencies>
</project>
POM

log "assembling Apache Kafka $KAFKA_VERSION from Maven Central into $dist"
rm -rf "$dist.partial"
mkdir -p "$dist.partial/libs"
mvn -B -q -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$dist.partial/libs" >&2 \
  || die "maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is the version on Maven Central?)"
[[ -f "$dist.partial/libs/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after assembly"
echo "$KAFKA_VERSION" >"$dist.partial/VERSION"
touch "$dist.partial/.complete"
rm -rf "$dist"
mv "$dist.partial" "$dist"
log "done: $(find "$dist/libs" -name '*.jar' | wc -l) jars"
echo "$dist"
