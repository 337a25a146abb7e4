# fleetd reads these through terraform-exec (fleetd run --terraform-dir), so
# no id is copied by hand. Names are part of fleetd's contract.

output "cluster" {
  description = "The cluster name (fleetd's cluster)."
  value       = var.cluster
}

output "launch_template_id" {
  description = "Broker launch template id (fleetd's ec2.launch_template)."
  value       = aws_launch_template.broker.id
}

output "controller_launch_template_id" {
  description = "KRaft controller launch template id (fleetd's ec2.controller_launch_template)."
  value       = aws_launch_template.controller.id
}

output "subnets_by_az" {
  description = "Broker subnet ids keyed by availability zone."
  value       = { for s in data.aws_subnet.broker : s.availability_zone => s.id }
}

output "events_queue_url" {
  description = "SQS queue EventBridge feeds (fleetd's events.queue_url)."
  value       = aws_sqs_queue.events.url
}

output "events_dlq_url" {
  description = "Dead-letter queue of malformed event messages."
  value       = aws_sqs_queue.events_dlq.url
}

output "lease_table" {
  description = "DynamoDB lease table (fleetd's lease.table)."
  value       = aws_dynamodb_table.lease.name
}

output "ami_owners" {
  description = "AMI selector owners (fleetd's ec2.ami_owners)."
  value       = var.ami_owners
}

output "ami_tags" {
  description = "AMI selector tags (fleetd's ec2.ami_tags)."
  value       = var.ami_tags
}

output "cluster_tag" {
  description = "Cluster tag key (fleetd's ec2.cluster_tag)."
  value       = var.cluster_tag
}

output "node_id_tag" {
  description = "Node id tag key (fleetd's ec2.node_id_tag)."
  value       = var.node_id_tag
}

output "fleetd_policy_arn" {
  description = "fleetd's IAM policy."
  value       = aws_iam_policy.fleetd.arn
}

output "broker_security_group_id" {
  description = "Security group of the brokers."
  value       = aws_security_group.broker.id
}
