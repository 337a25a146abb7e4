locals {
  name = "fleetd-${var.cluster}"
  tags = merge(var.tags, { (var.cluster_tag) = var.cluster, "managed-by" = "terraform" })
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

# ---------------------------------------------------------------- brokers --

resource "aws_security_group" "broker" {
  name_prefix = "${local.name}-broker-"
  description = "Kafka brokers of ${var.cluster}"
  vpc_id      = var.vpc_id
  tags        = local.tags
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "kafka_between_brokers" {
  security_group_id            = aws_security_group.broker.id
  referenced_security_group_id = aws_security_group.broker.id
  ip_protocol                  = "tcp"
  from_port                    = var.kafka_port
  to_port                      = var.kafka_port
  description                  = "Kafka replication between brokers"
}

resource "aws_vpc_security_group_ingress_rule" "controller_quorum" {
  security_group_id            = aws_security_group.broker.id
  referenced_security_group_id = aws_security_group.broker.id
  ip_protocol                  = "tcp"
  from_port                    = var.controller_port
  to_port                      = var.controller_port
  description                  = "KRaft controller quorum"
}

resource "aws_vpc_security_group_ingress_rule" "kafka_clients" {
  for_each          = toset(var.client_cidrs)
  security_group_id = aws_security_group.broker.id
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.kafka_port
  to_port           = var.kafka_port
  description       = "Kafka clients"
}

# Egress: replication and the quorum to each other, HTTPS to the AWS APIs
# (var.https_egress_cidrs; narrow it to VPC endpoints' prefixes where you
# have them). IMDS, the Amazon DNS resolver and the time service are not
# filtered by security groups.
resource "aws_vpc_security_group_egress_rule" "kafka_between_brokers" {
  security_group_id            = aws_security_group.broker.id
  referenced_security_group_id = aws_security_group.broker.id
  ip_protocol                  = "tcp"
  from_port                    = var.kafka_port
  to_port                      = var.kafka_port
  description                  = "Kafka replication between brokers"
}

resource "aws_vpc_security_group_egress_rule" "controller_quorum" {
  security_group_id            = aws_security_group.broker.id
  referenced_security_group_id = aws_security_group.broker.id
  ip_protocol                  = "tcp"
  from_port                    = var.controller_port
  to_port                      = var.controller_port
  description                  = "KRaft controller quorum"
}

resource "aws_vpc_security_group_egress_rule" "https" {
  for_each          = toset(var.https_egress_cidrs)
  security_group_id = aws_security_group.broker.id
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  description       = "AWS APIs over HTTPS"
}

data "aws_iam_policy_document" "broker_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "broker" {
  name_prefix        = "${local.name}-broker-"
  assume_role_policy = data.aws_iam_policy_document.broker_assume.json
  tags               = local.tags
}

resource "aws_iam_instance_profile" "broker" {
  name_prefix = "${local.name}-broker-"
  role        = aws_iam_role.broker.name
  tags        = local.tags
}

data "aws_ami" "broker" {
  most_recent = true
  owners      = var.ami_owners
  dynamic "filter" {
    for_each = var.ami_tags
    content {
      name   = "tag:${filter.key}"
      values = [filter.value]
    }
  }
}

resource "aws_launch_template" "broker" {
  name_prefix            = "${local.name}-broker-"
  description            = "Kafka brokers of ${var.cluster}; fleetd launches replacements from it with the newest AMI"
  image_id               = data.aws_ami.broker.id
  instance_type          = var.instance_type
  update_default_version = true
  vpc_security_group_ids = [aws_security_group.broker.id]
  iam_instance_profile {
    arn = aws_iam_instance_profile.broker.arn
  }
  # The root volume, encrypted (Kafka's data lives on the instance store,
  # which is encrypted by the hardware; logs and config live here).
  block_device_mappings {
    device_name = "/dev/sda1"
    ebs {
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      volume_type           = "gp3"
      volume_size           = var.root_volume_gib
      delete_on_termination = true
    }
  }
  metadata_options {
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled" # the boot units read the node id and cluster tags
  }
  tag_specifications {
    resource_type = "instance"
    # Read at boot through IMDS by kafka-broker-config (see docs/ami.md).
    tags = merge(local.tags, {
      "fleetd:role"              = "broker"
      "fleetd:cluster-id"        = var.kafka_cluster_id
      "fleetd:controller-quorum" = var.controller_quorum
    })
  }
  tag_specifications {
    resource_type = "volume"
    tags          = local.tags
  }
  tag_specifications {
    resource_type = "network-interface"
    tags          = local.tags
  }
  tags = local.tags
}

# ------------------------------------------------------------ controllers --

# KRaft controllers of a dynamic quorum (kraft.version 1) run the same AMI:
# the fleetd:role tag makes kafka-broker-config render a controller, which
# formats its disk to join the quorum as an observer; fleetd adds it as a
# voter (AddRaftVoter) and removes the one it replaces. Same security group
# (the quorum port is open between its members) and instance profile (a
# controller reads only its own tags through IMDS).
resource "aws_launch_template" "controller" {
  name_prefix            = "${local.name}-controller-"
  description            = "KRaft controllers of ${var.cluster}; fleetd launches replacements from it with the newest AMI"
  image_id               = data.aws_ami.broker.id
  instance_type          = var.controller_instance_type
  update_default_version = true
  vpc_security_group_ids = [aws_security_group.broker.id]
  iam_instance_profile {
    arn = aws_iam_instance_profile.broker.arn
  }
  block_device_mappings {
    device_name = "/dev/sda1"
    ebs {
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      volume_type           = "gp3"
      volume_size           = var.root_volume_gib
      delete_on_termination = true
    }
  }
  metadata_options {
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }
  tag_specifications {
    resource_type = "instance"
    tags = merge(local.tags, {
      "fleetd:role"              = "controller"
      "fleetd:cluster-id"        = var.kafka_cluster_id
      "fleetd:controller-quorum" = var.controller_quorum
    })
  }
  tag_specifications {
    resource_type = "volume"
    tags          = local.tags
  }
  tag_specifications {
    resource_type = "network-interface"
    tags          = local.tags
  }
  tags = local.tags
}

# ----------------------------------------------------------------- events --

resource "aws_sqs_queue" "events_dlq" {
  name                      = "${local.name}-events-dlq"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn
  tags                      = local.tags
}

# A message in the dead-letter queue is an event fleetd never handled (a
# malformed one, or one that failed max_receive_count times): a person must
# look, so its depth alarms.
resource "aws_cloudwatch_metric_alarm" "events_dlq" {
  alarm_name          = "${local.name}-events-dlq-not-empty"
  alarm_description   = "fleetd could not handle an EC2 event for ${var.cluster}: read the message in ${aws_sqs_queue.events_dlq.name} and fleetd's log"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.events_dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

resource "aws_sqs_queue" "events" {
  name                       = "${local.name}-events"
  message_retention_seconds  = var.message_retention_seconds
  visibility_timeout_seconds = 60
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = var.kms_key_arn == null ? true : null
  kms_master_key_id          = var.kms_key_arn
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.events_dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = local.tags
}

resource "aws_cloudwatch_event_rule" "health" {
  name        = "${local.name}-health"
  description = "AWS Health scheduled changes for EC2 (retirement, stop, maintenance) to fleetd"
  event_pattern = jsonencode({
    source        = ["aws.health"]
    "detail-type" = ["AWS Health Event"]
    detail = {
      service           = ["EC2"]
      eventTypeCategory = ["scheduledChange"]
    }
  })
  tags = local.tags
}

resource "aws_cloudwatch_event_rule" "state_change" {
  name        = "${local.name}-state-change"
  description = "EC2 instances stopping or terminating, to fleetd (it keeps its brokers' and ignores the rest)"
  event_pattern = jsonencode({
    source        = ["aws.ec2"]
    "detail-type" = ["EC2 Instance State-change Notification"]
    detail = {
      state = ["stopping", "stopped", "shutting-down", "terminated"]
    }
  })
  tags = local.tags
}

resource "aws_cloudwatch_event_target" "health" {
  rule = aws_cloudwatch_event_rule.health.name
  arn  = aws_sqs_queue.events.arn
}

resource "aws_cloudwatch_event_target" "state_change" {
  rule = aws_cloudwatch_event_rule.state_change.name
  arn  = aws_sqs_queue.events.arn
}

data "aws_iam_policy_document" "events_queue" {
  statement {
    sid       = "EventBridgeSends"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.health.arn, aws_cloudwatch_event_rule.state_change.arn]
    }
  }
  # Nobody else may send: an identity-based grant elsewhere in the account
  # (sqs:* for an admin role, say) must not let forged events in. fleetd
  # also refuses events not from its account, region and AWS's sources.
  statement {
    sid       = "OnlyTheRulesSend"
    effect    = "Deny"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "ArnNotEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.health.arn, aws_cloudwatch_event_rule.state_change.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy    = data.aws_iam_policy_document.events_queue.json
}

# ------------------------------------------------------------------ lease --

resource "aws_dynamodb_table" "lease" {
  name         = "${local.name}-lease"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "lease" # fleetd's lease.Key: one item per cluster
  attribute {
    name = "lease"
    type = "S"
  }
  point_in_time_recovery {
    enabled = false # a lease is not data worth restoring
  }
  server_side_encryption {
    enabled     = true # the AWS managed key, or var.kms_key_arn
    kms_key_arn = var.kms_key_arn
  }
  tags = local.tags
}

data "aws_subnet" "broker" {
  for_each = toset(var.subnet_ids)
  id       = each.value
}
