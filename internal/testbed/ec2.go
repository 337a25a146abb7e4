package testbed

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/fleetd/fleetd/internal/ec2mirror"
	"github.com/fleetd/fleetd/internal/local"
)

// MotoAWS starts moto and points the standard AWS configuration chain at it
// through the environment, as an operator would (and as child fleetd
// processes inherit). It returns a config for the test's own clients.
func MotoAWS(t *testing.T) (aws.Config, *Moto) {
	t.Helper()
	_, m, env := MotoConfig(t)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(Context(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, m
}

// MotoConfig starts moto and returns a config for the test's own clients
// and the environment (KEY=value) that points a child process's standard
// AWS chain at it, leaving this process's environment alone: a parallel
// test cannot change it.
func MotoConfig(t *testing.T) (aws.Config, *Moto, []string) {
	t.Helper()
	m := StartMoto(t)
	env := []string{"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL=" + m.Endpoint, "AWS_EC2_METADATA_DISABLED=true"}
	cfg, err := config.LoadDefaultConfig(Context(t), config.WithRegion("us-east-1"), config.WithBaseEndpoint(m.Endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, m, env
}

// ImageTags are the tags the Packer template writes on broker AMIs.
var ImageTags = ec2mirror.ImageTags

// SeedEC2 makes in moto what Packer and Terraform make (ec2mirror.SeedEC2).
func SeedEC2(t *testing.T, c *ec2.Client, cluster string, n int) ec2mirror.Seed {
	t.Helper()
	s, err := ec2mirror.SeedEC2(Context(t), c, cluster, n)
	if err != nil {
		t.Fatalf("seed moto: %v", err)
	}
	return s
}

// SeedControllers makes controller instances in moto at loopback addresses
// (ec2mirror.SeedControllers).
func SeedControllers(t *testing.T, c *ec2.Client, cluster string, s ec2mirror.Seed, n int) ec2mirror.Controllers {
	t.Helper()
	out, err := ec2mirror.SeedControllers(Context(t), c, cluster, s.Zones, s.OldImage, n)
	if err != nil {
		t.Fatalf("seed moto controllers: %v", err)
	}
	return out
}

// MirrorEC2 mirrors moto's instances of cluster into f until the test ends
// (ec2mirror.Mirror), after a first pass.
func MirrorEC2(t testing.TB, f *local.Fleet, client *ec2.Client, cluster string) *ec2mirror.Mirror {
	t.Helper()
	m := &ec2mirror.Mirror{EC2: client, Fleet: f, Cluster: cluster}
	ctx, cancel := context.WithCancel(Context(t))
	done, first := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx, first, func(err error) { t.Logf("ec2 mirror: %v", err) })
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-first
	return m
}

// EC2Instance describes instance id (any state) or fails the test.
func EC2Instance(t testing.TB, c *ec2.Client, id string) types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(Context(t), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0 {
		t.Fatalf("describe %s: %v", id, err)
	}
	return out.Reservations[0].Instances[0]
}
