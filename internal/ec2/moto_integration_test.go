//go:build integration

package ec2

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/fleetd/fleetd/internal/testbed"
)

// motoConfig points the standard configuration chain at a fresh moto_server
// through the same environment variables an operator would set.
func motoConfig(t *testing.T) aws.Config {
	t.Helper()
	testbed.MotoAWS(t)
	cfg, err := LoadConfig(testbed.Context(t), ConfigOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestMotoEC2LaunchTemplateRunDescribeTerminate(t *testing.T) {
	ctx := testbed.Context(t)
	c := ec2.NewFromConfig(motoConfig(t))

	subnets, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{
		Filters: []types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(subnets.Subnets) == 0 {
		t.Fatal("moto has no default subnets")
	}
	subnet := subnets.Subnets[0]
	images, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(images.Images) == 0 {
		t.Fatal("moto has no images")
	}
	lt, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("kafka-broker"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{
			ImageId:      images.Images[0].ImageId,
			InstanceType: types.InstanceTypeIm4gn4xlarge,
			MetadataOptions: &types.LaunchTemplateInstanceMetadataOptionsRequest{
				HttpTokens: types.LaunchTemplateHttpTokensStateRequired,
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		MinCount:       aws.Int32(1),
		MaxCount:       aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId, Version: aws.String("$Latest")},
		SubnetId:       subnet.SubnetId,
		ClientToken:    aws.String("replacement-1-launch"),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeInstance,
			Tags: []types.Tag{
				{Key: aws.String("fleetd:cluster"), Value: aws.String("test")},
				{Key: aws.String("fleetd:node-id"), Value: aws.String("4")},
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(run.Instances); got != 1 {
		t.Fatalf("RunInstances started %d instances, want 1", got)
	}
	id := aws.ToString(run.Instances[0].InstanceId)

	// A decoy without the cluster tag must not match the filter.
	if _, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: images.Images[0].ImageId, SubnetId: subnet.SubnetId,
	}); err != nil {
		t.Fatal(err)
	}

	desc, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("tag:fleetd:cluster"), Values: []string{"test"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var found []types.Instance
	for _, r := range desc.Reservations {
		found = append(found, r.Instances...)
	}
	if len(found) != 1 || aws.ToString(found[0].InstanceId) != id {
		t.Fatalf("tag filter found %d instances, want exactly %s", len(found), id)
	}
	inst := found[0]
	if got, want := aws.ToString(inst.SubnetId), aws.ToString(subnet.SubnetId); got != want {
		t.Errorf("subnet = %s, want %s", got, want)
	}
	if got := inst.InstanceType; got != types.InstanceTypeIm4gn4xlarge {
		t.Errorf("instance type = %s, want im4gn.4xlarge from the launch template", got)
	}
	if got, want := aws.ToString(inst.Placement.AvailabilityZone), aws.ToString(subnet.AvailabilityZone); got != want {
		t.Errorf("AZ = %s, want %s", got, want)
	}
	if got := tagValue(inst.Tags, "fleetd:node-id"); got != "4" {
		t.Errorf("node id tag = %q, want 4", got)
	}

	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if got := term.TerminatingInstances[0].CurrentState.Name; got != types.InstanceStateNameShuttingDown && got != types.InstanceStateNameTerminated {
		t.Errorf("state after terminate = %s", got)
	}
}

func tagValue(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func TestMotoSQSSendReceiveDelete(t *testing.T) {
	ctx := testbed.Context(t)
	c := sqs.NewFromConfig(motoConfig(t))
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("fleetd-events")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(`{"id":"e-1"}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != 1 || aws.ToString(got.Messages[0].Body) != `{"id":"e-1"}` {
		t.Fatalf("received %+v, want the one message sent", got.Messages)
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: got.Messages[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	// Deleted means gone, also after the visibility timeout would have expired.
	if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: q.QueueUrl, Attributes: map[string]string{"VisibilityTimeout": "0"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	again, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Messages) != 0 {
		t.Fatalf("deleted message came back: %+v", again.Messages)
	}
}
