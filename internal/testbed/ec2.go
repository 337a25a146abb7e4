package testbed

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/fleetd/fleetd/internal/local"
)

// MotoAWS starts moto and points the standard AWS configuration chain at it
// through the environment, as an operator would (and as child fleetd
// processes inherit). It returns a config for the test's own clients.
func MotoAWS(t *testing.T) (aws.Config, *Moto) {
	t.Helper()
	m := StartMoto(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL", m.Endpoint)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg, err := config.LoadDefaultConfig(Context(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, m
}

// EC2Seed is what SeedEC2 made in moto.
type EC2Seed struct {
	LaunchTemplate string   // name
	Subnets        []string // one per AZ, in AZ order
	Zones          []string
	OldImage       string // an older broker AMI
	Image          string // the newest broker AMI
	Instances      map[int32]string
}

// ImageTags are the tags the Packer template writes on broker AMIs, which
// the tests' AMI selector matches.
var ImageTags = map[string]string{"fleetd:role": "kafka-broker"}

// SeedEC2 makes in moto what Packer and Terraform make in an account: two
// broker AMIs (an old and a newest), a launch template, and brokers 1..n of
// cluster, one per AZ in turn, on the old AMI.
func SeedEC2(t *testing.T, c *ec2.Client, cluster string, n int) EC2Seed {
	t.Helper()
	ctx := Context(t)
	s := EC2Seed{Instances: map[int32]string{}}
	subnets, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range subnets.Subnets[:min(3, len(subnets.Subnets))] {
		s.Subnets = append(s.Subnets, aws.ToString(sn.SubnetId))
		s.Zones = append(s.Zones, aws.ToString(sn.AvailabilityZone))
	}
	base, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(base.Images) == 0 {
		t.Fatalf("moto base images: %v", err)
	}
	// Two AMIs built by "CI", from a builder instance.
	builder, err := c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: base.Images[0].ImageId, SubnetId: aws.String(s.Subnets[0])})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"kafka-broker-old", "kafka-broker-new"} {
		img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: builder.Instances[0].InstanceId, Name: aws.String(name),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: toTags(ImageTags)}}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			s.OldImage = aws.ToString(img.ImageId)
			time.Sleep(1100 * time.Millisecond) // CreationDate has second resolution
		} else {
			s.Image = aws.ToString(img.ImageId)
		}
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(builder.Instances[0].InstanceId)}}); err != nil {
		t.Fatal(err)
	}
	s.LaunchTemplate = cluster + "-broker"
	if _, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(s.LaunchTemplate),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(s.OldImage), InstanceType: types.InstanceTypeIm4gn4xlarge}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(s.OldImage),
			InstanceType: types.InstanceTypeIm4gn4xlarge, SubnetId: aws.String(s.Subnets[(i-1)%len(s.Subnets)]),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: toTags(map[string]string{
				"fleetd:cluster": cluster, "fleetd:node-id": strconv.Itoa(i)})}}})
		if err != nil {
			t.Fatal(err)
		}
		s.Instances[int32(i)] = aws.ToString(out.Instances[0].InstanceId)
	}
	return s
}

func toTags(m map[string]string) []types.Tag {
	var ts []types.Tag
	for k, v := range m {
		ts = append(ts, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return ts
}

// EC2Mirror makes moto's instances real: every running instance tagged as a
// broker of the cluster gets a local broker process with the instance's node
// id and its AZ as rack; stopping the instance stops the process (controlled
// shutdown), terminating it removes the process and its data. So the real
// daemon, the real SDK and real Kafka meet in one test.
type EC2Mirror struct {
	fleet   *local.Fleet
	ec2     *ec2.Client
	cluster string

	mu      sync.Mutex
	running map[string]int32 // instance id -> node id with a live process
	ended   map[string]bool  // instances whose process was stopped or removed
	err     error
}

// MirrorEC2 starts mirroring moto into c's fleet until the test ends, and
// waits for the first pass.
func MirrorEC2(t testing.TB, f *local.Fleet, client *ec2.Client, cluster string) *EC2Mirror {
	t.Helper()
	m := &EC2Mirror{fleet: f, ec2: client, cluster: cluster, running: map[string]int32{}, ended: map[string]bool{}}
	ctx, cancel := context.WithCancel(Context(t))
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	first := make(chan struct{})
	go func() {
		defer close(done)
		once := sync.OnceFunc(func() { close(first) })
		for {
			if err := m.reconcile(ctx); err != nil && ctx.Err() == nil {
				m.mu.Lock()
				m.err = err
				m.mu.Unlock()
				t.Logf("ec2 mirror: %v", err)
			}
			once()
			select {
			case <-ctx.Done():
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	<-first
	return m
}

func (m *EC2Mirror) reconcile(ctx context.Context) error {
	out, err := m.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:fleetd:cluster"), Values: []string{m.cluster}}}})
	if err != nil {
		return err
	}
	type inst struct {
		id, zone string
		node     int32
		state    types.InstanceStateName
	}
	var all []inst
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			node, err := strconv.ParseInt(tagsValue(i.Tags, "fleetd:node-id"), 10, 32)
			if err != nil {
				continue
			}
			all = append(all, inst{aws.ToString(i.InstanceId), aws.ToString(i.Placement.AvailabilityZone), int32(node), i.State.Name})
		}
	}
	// Ends first: an identity replacement's new instance reuses the node id.
	for _, in := range all {
		m.mu.Lock()
		node, live := m.running[in.id]
		ended := m.ended[in.id]
		m.mu.Unlock()
		switch in.state {
		case types.InstanceStateNameStopping, types.InstanceStateNameStopped:
			if live {
				if err := m.fleet.StopBroker(ctx, node); err != nil {
					return fmt.Errorf("stop broker %d of %s: %w", node, in.id, err)
				}
				m.mark(in.id, false)
			}
		case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
			if live || ended {
				if !m.nodeLiveElsewhere(in.node, in.id) {
					if err := m.fleet.Remove(in.node); err != nil {
						return err
					}
				}
				m.mu.Lock()
				delete(m.running, in.id)
				delete(m.ended, in.id)
				m.ended["gone:"+in.id] = true
				m.mu.Unlock()
			}
		}
	}
	for _, in := range all {
		m.mu.Lock()
		_, live := m.running[in.id]
		skip := live || m.ended[in.id] || m.ended["gone:"+in.id]
		m.mu.Unlock()
		if in.state != types.InstanceStateNameRunning || skip {
			continue
		}
		if _, err := m.fleet.StartBroker(ctx, in.node, in.zone); err != nil {
			return fmt.Errorf("start broker %d for %s: %w", in.node, in.id, err)
		}
		m.mu.Lock()
		m.running[in.id] = in.node
		m.mu.Unlock()
	}
	return nil
}

// nodeLiveElsewhere: another instance runs node (an identity replacement).
func (m *EC2Mirror) nodeLiveElsewhere(node int32, id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for other, n := range m.running {
		if n == node && other != id {
			return true
		}
	}
	return false
}

func (m *EC2Mirror) mark(id string, live bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !live {
		delete(m.running, id)
		m.ended[id] = true
	}
}

func tagsValue(ts []types.Tag, k string) string {
	for _, t := range ts {
		if aws.ToString(t.Key) == k {
			return aws.ToString(t.Value)
		}
	}
	return ""
}
