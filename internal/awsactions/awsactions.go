// Package awsactions is the one list of AWS API actions fleetd calls. The
// IAM policy the Terraform module grants must allow each of them; a test
// keeps this list equal to the methods of the narrow client interfaces
// fleetd's code is written against, so a new call cannot slip in unlisted.
package awsactions

// Actions are IAM action names, service:Action.
var Actions = []string{
	// internal/ec2: the provider and the scheduled-event poller.
	"ec2:DescribeInstances",
	"ec2:DescribeImages",
	"ec2:RunInstances",
	"ec2:StopInstances",
	"ec2:TerminateInstances",
	"ec2:CreateTags",
	"ec2:DescribeInstanceStatus",
	// RunInstances with a launch template whose instance profile has a role.
	"iam:PassRole",
	// internal/events: the EventBridge-fed queue.
	"sqs:ReceiveMessage",
	"sqs:DeleteMessage",
	// internal/lease: the DynamoDB lease.
	"dynamodb:PutItem",
	"dynamodb:UpdateItem",
	"dynamodb:GetItem",
	"dynamodb:DeleteItem",
}
