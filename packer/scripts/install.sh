#!/usr/bin/env bash
# Provisions the broker AMI (run by packer as root on the build instance).
# Inputs from the template: CORRETTO_MAJOR, KAFKA_VERSION, SCALA_VERSION,
# KAFKA_SHA512, LISTENER_SECURITY (plaintext or sasl_ssl). Files from
# packer/files are in /tmp/fleetd-files.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
: "${CORRETTO_MAJOR:?}" "${KAFKA_VERSION:?}" "${SCALA_VERSION:?}" "${KAFKA_SHA512:?}"
files=/tmp/fleetd-files

[[ "$(dpkg --print-architecture)" == "arm64" ]] || { echo "install.sh: not an arm64 build instance" >&2; exit 1; }

# The boot-time renderer is built outside packer; check it first, before
# minutes of installing: present, and an ELF for aarch64 (e_machine 0xb7).
renderer="$files/bin/kafka-broker-config"
if [[ ! -f "$renderer" || "$(od -An -tx1 -j18 -N2 "$renderer" | tr -d ' ')" != "b700" ]]; then
  echo "install.sh: $renderer is missing or not a linux/arm64 binary; build it before packer build:" >&2
  echo "  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -o packer/files/bin/kafka-broker-config ./cmd/kafka-broker-config" >&2
  exit 1
fi

apt-get update -q
apt-get install -y -q ca-certificates curl gnupg mdadm xfsprogs nvme-cli

# LSE atomics. Up to Ubuntu 20.04, libc6-lse is a separate package; from
# 20.10 on, libc6 is built with outline atomics and Provides libc6-lse.
. /etc/os-release
if dpkg --compare-versions "$VERSION_ID" le 20.04; then
  apt-get install -y -q libc6-lse
  dpkg -s libc6-lse >/dev/null
  echo "LSE: libc6-lse installed ($VERSION_ID)"
else
  apt-cache show libc6 | grep -E '^Provides:.*libc6-lse' >/dev/null ||
    { echo "install.sh: libc6 on $VERSION_ID does not provide libc6-lse" >&2; exit 1; }
  echo "LSE: libc6 provides libc6-lse (outline atomics, $VERSION_ID)"
fi

# Amazon Corretto from its apt repository, signed.
install -d -m 0755 /usr/share/keyrings
curl -fsSL https://apt.corretto.aws/corretto.key | gpg --dearmor -o /usr/share/keyrings/corretto-keyring.gpg
echo "deb [signed-by=/usr/share/keyrings/corretto-keyring.gpg] https://apt.corretto.aws stable main" >/etc/apt/sources.list.d/corretto.list
apt-get update -q
apt-get install -y -q "java-${CORRETTO_MAJOR}-amazon-corretto-jdk"
java -version

# Apache Kafka, checksum verified.
tgz="kafka_${SCALA_VERSION}-${KAFKA_VERSION}.tgz"
curl -fsSL -o "/tmp/$tgz" "https://archive.apache.org/dist/kafka/${KAFKA_VERSION}/${tgz}"
# Apache publishes the digest in groups of upper-case hex; sha512sum wants it whole.
want="$(tr -d ' \n' <<<"$KAFKA_SHA512" | tr 'A-F' 'a-f')"
echo "$want  /tmp/$tgz" | sha512sum -c -
useradd --system --home-dir /opt/kafka --shell /usr/sbin/nologin kafka
install -d -o kafka -g kafka /opt/kafka /var/lib/kafka /var/log/kafka /etc/kafka
tar -xzf "/tmp/$tgz" -C /opt/kafka --strip-components=1
chown -R kafka:kafka /opt/kafka
rm -f "/tmp/$tgz"

# Kernel and limits for Kafka.
install -m 0644 "$files/sysctl-kafka.conf" /etc/sysctl.d/60-kafka.conf
install -m 0644 "$files/limits-kafka.conf" /etc/security/limits.d/60-kafka.conf

# Boot: disks, configuration, Kafka.
install -m 0755 "$files/bin/kafka-disks" /usr/local/bin/kafka-disks
install -m 0755 "$files/bin/kafka-broker-config" /usr/local/bin/kafka-broker-config
install -m 0644 "$files"/systemd/*.service /etc/systemd/system/
case "${LISTENER_SECURITY:-plaintext}" in
  plaintext | sasl_ssl) ;;
  *) echo "install.sh: LISTENER_SECURITY=$LISTENER_SECURITY: want plaintext or sasl_ssl" >&2; exit 1 ;;
esac
printf 'KAFKA_LISTENER_SECURITY=%s\n' "${LISTENER_SECURITY:-plaintext}" >/etc/default/kafka-config
install -d -m 0750 -o root -g kafka /etc/kafka/tls
systemctl daemon-reload
systemctl enable kafka-disks.service kafka-config.service kafka.service
rm -rf "$files"
