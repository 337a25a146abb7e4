# fleetd's permissions, least privilege. internal/awsactions lists every AWS
# action fleetd calls; terraform/contract_test.go fails when this policy does
# not grant one of them, or grants TerminateInstances without the cluster tag
# condition.

data "aws_iam_policy_document" "fleetd" {
  statement {
    sid       = "Describe"
    actions   = ["ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeInstanceStatus"]
    resources = ["*"] # EC2 describe calls have no resource-level permissions
  }

  # RunInstances only from this module's launch template (Karpenter scopes it
  # the same way): no other image owner, key pair or network set-up.
  statement {
    sid     = "LaunchFromTheTemplate"
    actions = ["ec2:RunInstances"]
    resources = [
      "arn:aws:ec2:${data.aws_region.current.name}::image/*",
      "arn:aws:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:subnet/*",
      "arn:aws:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:security-group/*",
      "arn:aws:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:key-pair/*",
      aws_launch_template.broker.arn,
      aws_launch_template.controller.arn,
    ]
    condition {
      test     = "ArnEquals"
      variable = "ec2:LaunchTemplate"
      values   = [aws_launch_template.broker.arn, aws_launch_template.controller.arn]
    }
  }

  # What a launch creates (instance, its volumes and network interface) must
  # carry the cluster tag in the request, and come from the template.
  statement {
    sid     = "LaunchOnlyClusterTaggedInstances"
    actions = ["ec2:RunInstances"]
    resources = [
      "arn:aws:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:instance/*",
      "arn:aws:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:volume/*",
      "arn:aws:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:network-interface/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${var.cluster_tag}"
      values   = [var.cluster]
    }
    condition {
      test     = "ArnEquals"
      variable = "ec2:LaunchTemplate"
      values   = [aws_launch_template.broker.arn, aws_launch_template.controller.arn]
    }
  }

  # Tags at launch: only the keys fleetd writes then. The identity tags the
  # node reads at boot (node id, role, cluster id, controller quorum) can be
  # set by fleetd only here, on an instance it is creating.
  statement {
    sid     = "TagAtLaunch"
    actions = ["ec2:CreateTags"]
    resources = [
      "arn:aws:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:instance/*",
      "arn:aws:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:volume/*",
      "arn:aws:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:network-interface/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["RunInstances"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = concat([var.cluster_tag, var.node_id_tag, "fleetd:replacement", "fleetd:role", "fleetd:launch-token", "Name", "managed-by", "fleetd:cluster-id", "fleetd:controller-quorum"], keys(var.tags))
    }
  }

  statement {
    sid       = "ActOnlyOnTheClustersInstances"
    actions   = ["ec2:StopInstances", "ec2:TerminateInstances"]
    resources = ["arn:aws:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/${var.cluster_tag}"
      values   = [var.cluster]
    }
  }

  # After launch fleetd writes only its progress tags, never an identity tag.
  statement {
    sid       = "ProgressTagsOnly"
    actions   = ["ec2:CreateTags"]
    resources = ["arn:aws:ec2:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/${var.cluster_tag}"
      values   = [var.cluster]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["fleetd:replacement", "fleetd:step"]
    }
  }

  statement {
    sid       = "PassTheBrokerRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.broker.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.amazonaws.com"]
    }
  }

  statement {
    sid       = "ConsumeEvents"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage"]
    resources = [aws_sqs_queue.events.arn]
  }

  statement {
    sid       = "Lease"
    actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.lease.arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = [var.cluster]
    }
  }
}

resource "aws_iam_policy" "fleetd" {
  name_prefix = "${local.name}-"
  description = "fleetd for Kafka cluster ${var.cluster}: least privilege"
  policy      = data.aws_iam_policy_document.fleetd.json
  tags        = local.tags
}

resource "aws_iam_role_policy_attachment" "fleetd" {
  count      = var.fleetd_role_name == "" ? 0 : 1
  role       = var.fleetd_role_name
  policy_arn = aws_iam_policy.fleetd.arn
}
