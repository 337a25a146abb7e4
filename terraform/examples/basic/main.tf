# A Kafka fleet's infrastructure for fleetd, in an existing VPC. After
# `terraform apply`, point fleetd at this directory:
#   fleetd run --config fleetd.yaml --terraform-dir terraform/examples/basic
# and it reads the launch template, subnets, queue, lease table and AMI
# selector from the outputs below.

terraform {
  required_version = ">= 1.5.0"
}

provider "aws" {
  region = var.region
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  description = "One private subnet per AZ."
  type        = list(string)
}

module "kafka_fleet" {
  source       = "../../modules/kafka-fleet"
  cluster      = "orders-prod"
  vpc_id       = var.vpc_id
  subnet_ids   = var.subnet_ids
  client_cidrs = ["10.0.0.0/8"]

  kafka_cluster_id  = "q1Sh-9_ISia_zwGINzRvyQ" # kafka-storage.sh random-uuid, once
  controller_quorum = "10.0.1.5:9093,10.0.2.5:9093,10.0.3.5:9093"
  tags              = { team = "streaming" }
}

output "cluster" { value = module.kafka_fleet.cluster }
output "launch_template_id" { value = module.kafka_fleet.launch_template_id }
output "controller_launch_template_id" { value = module.kafka_fleet.controller_launch_template_id }
output "subnets_by_az" { value = module.kafka_fleet.subnets_by_az }
output "events_queue_url" { value = module.kafka_fleet.events_queue_url }
output "lease_table" { value = module.kafka_fleet.lease_table }
output "ami_owners" { value = module.kafka_fleet.ami_owners }
output "ami_tags" { value = module.kafka_fleet.ami_tags }
output "cluster_tag" { value = module.kafka_fleet.cluster_tag }
output "node_id_tag" { value = module.kafka_fleet.node_id_tag }
