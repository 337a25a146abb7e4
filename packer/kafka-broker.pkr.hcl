# The Kafka broker AMI fleetd launches: Ubuntu 24.04 LTS arm64 for Graviton2
# im4gn instances, Amazon Corretto, Apache Kafka, tuned kernel and limits,
# and systemd units that prepare the NVMe instance store and render Kafka's
# configuration from the instance's tags at boot.
#
#   packer init packer/
#   packer validate -var kafka_sha512=<digest> packer/
#   packer build -var kafka_version=4.4.0 -var kafka_sha512=<digest> packer/
#
# LSE atomics: Graviton2 has ARMv8.1 LSE. Ubuntu up to 20.04 shipped a
# separate libc6-lse package; from 20.10 on, libc6 itself is built with
# outline atomics (it picks LSE at run time) and Provides libc6-lse. This
# template uses 24.04, so the stock libc6 is the LSE one; scripts/install.sh
# checks that during the build (and would install libc6-lse on focal).

packer {
  required_plugins {
    amazon = {
      # packer 1.9.4 bundles v1.2.1; fleetd's tests validate with that one
      # (scripts/packer.sh), `packer init` picks the newest 1.x.
      version = "~> 1.2"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "build_instance_type" {
  type    = string
  default = "im4gn.large"
}

variable "ubuntu_series" {
  description = "Ubuntu LTS series codename and version of the base image."
  type        = string
  default     = "noble-24.04"
}

variable "corretto_major" {
  description = "Amazon Corretto major version."
  type        = number
  default     = 21
}

variable "kafka_version" {
  description = "Apache Kafka version; the default is the one fleetd's tests run (scripts/lib.sh)."
  type        = string
  default     = "4.4.0"
  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.kafka_version))
    error_message = "The kafka_version must look like 4.4.0."
  }
}

variable "scala_version" {
  type    = string
  default = "2.13"
}

variable "kafka_sha512" {
  description = "SHA-512 of kafka_<scala>-<version>.tgz as published beside it on archive.apache.org (the .sha512 file); the build fails on a mismatch."
  type        = string
  validation {
    condition     = can(regex("^[0-9a-fA-F]{128}$", replace(var.kafka_sha512, " ", "")))
    error_message = "The kafka_sha512 must be the 128 hex digits of the archive's SHA-512 (the .sha512 file beside it on archive.apache.org)."
  }
}

variable "listener_security" {
  description = "plaintext, or sasl_ssl: clients and replication on SASL_SSL (SCRAM-SHA-512), the controller listener on SSL. sasl_ssl needs /etc/kafka/tls/{broker.pem,ca.pem,jaas.properties} in place before kafka-config runs (docs/ami.md)."
  type        = string
  default     = "plaintext"
  validation {
    condition     = contains(["plaintext", "sasl_ssl"], var.listener_security)
    error_message = "The listener_security must be plaintext or sasl_ssl."
  }
}

locals {
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
  # fleetd's default AMI selector matches these tags (config.DefaultAMITags;
  # packer_test.go keeps them equal).
  ami_tags = {
    "fleetd:role" = "kafka-broker"
  }
}

source "amazon-ebs" "broker" {
  region        = var.region
  instance_type = var.build_instance_type
  ami_name      = "kafka-broker-${var.kafka_version}-corretto${var.corretto_major}-${local.timestamp}"
  ssh_username  = "ubuntu"
  source_ami_filter {
    filters = {
      name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-${var.ubuntu_series}-arm64-server-*"
      architecture        = "arm64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["099720109477"] # Canonical
    most_recent = true
  }
  # IMDSv2 only, for the build instance here and for every broker through
  # the launch template (terraform/modules/kafka-fleet). The AMI-level
  # imds_support needs amazon plugin >= 1.2.2; the launch template is what
  # enforces it for brokers.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  tags = merge(local.ami_tags, {
    "fleetd:kafka-version"  = var.kafka_version
    "fleetd:corretto-major" = "${var.corretto_major}"
    "fleetd:base"           = "{{ .SourceAMIName }}"
  })
}

build {
  sources = ["source.amazon-ebs.broker"]

  provisioner "file" {
    source      = "${path.root}/files/"
    destination = "/tmp/fleetd-files"
  }

  provisioner "shell" {
    script          = "${path.root}/scripts/install.sh"
    execute_command = "sudo -E bash '{{ .Path }}'"
    environment_vars = [
      "CORRETTO_MAJOR=${var.corretto_major}",
      "KAFKA_VERSION=${var.kafka_version}",
      "SCALA_VERSION=${var.scala_version}",
      "KAFKA_SHA512=${var.kafka_sha512}",
      "LISTENER_SECURITY=${var.listener_security}",
    ]
  }
}
