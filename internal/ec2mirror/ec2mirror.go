// Package ec2mirror makes moto's EC2 instances real for end-to-end tests and
// benchmarks: every running instance tagged as a broker of a cluster gets a
// local Kafka broker process with the instance's node id and its AZ as rack,
// and one tagged fleetd:role=controller a KRaft controller listening on the
// instance's private address (SeedControllers puts controllers in subnets of
// 127.0.0.0/16, which moto accepts and loopback serves); stopping the
// instance stops the process (controlled shutdown), terminating it removes
// the process and its data. So the real daemon, the real AWS SDK
// and real Kafka meet in one test. Seed makes in moto what Packer and
// Terraform make in an account. fleetd itself never uses this package.
package ec2mirror

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/fleetd/fleetd/internal/local"
)

// ImageTags are the tags the Packer template writes on broker AMIs (equal
// to config.DefaultAMITags; packer/packer_test.go checks).
var ImageTags = map[string]string{"fleetd:role": "kafka-broker"}

// Seed is what Seed made.
type Seed struct {
	LaunchTemplate string // name
	Subnets, Zones []string
	OldImage       string // an older broker AMI, which the brokers run
	Image          string // the newest broker AMI
	Instances      map[int32]string
}

func toTags(m map[string]string) []types.Tag {
	var ts []types.Tag
	for k, v := range m {
		ts = append(ts, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return ts
}

// SeedEC2 makes two broker AMIs (an old and a newest), a launch template
// and brokers 1..n of cluster on the old AMI, one per AZ in turn.
func SeedEC2(ctx context.Context, c *ec2.Client, cluster string, n int) (Seed, error) {
	s := Seed{Instances: map[int32]string{}}
	subnets, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		return s, err
	}
	for _, sn := range subnets.Subnets[:min(3, len(subnets.Subnets))] {
		s.Subnets = append(s.Subnets, aws.ToString(sn.SubnetId))
		s.Zones = append(s.Zones, aws.ToString(sn.AvailabilityZone))
	}
	if len(s.Subnets) == 0 {
		return s, errors.New("moto has no default subnets")
	}
	base, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(base.Images) == 0 {
		return s, fmt.Errorf("moto base images: %v", err)
	}
	builder, err := c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: base.Images[0].ImageId, SubnetId: aws.String(s.Subnets[0])})
	if err != nil {
		return s, err
	}
	for i, name := range []string{"kafka-broker-old", "kafka-broker-new"} {
		img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: builder.Instances[0].InstanceId, Name: aws.String(name),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeImage, Tags: toTags(ImageTags)}}})
		if err != nil {
			return s, err
		}
		if i == 0 {
			s.OldImage = aws.ToString(img.ImageId)
			time.Sleep(1100 * time.Millisecond) // CreationDate has second resolution
		} else {
			s.Image = aws.ToString(img.ImageId)
		}
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(builder.Instances[0].InstanceId)}}); err != nil {
		return s, err
	}
	s.LaunchTemplate = cluster + "-broker"
	if _, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(s.LaunchTemplate),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(s.OldImage), InstanceType: types.InstanceTypeIm4gn4xlarge}}); err != nil {
		return s, err
	}
	for i := 1; i <= n; i++ {
		out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(s.OldImage),
			InstanceType: types.InstanceTypeIm4gn4xlarge, SubnetId: aws.String(s.Subnets[(i-1)%len(s.Subnets)]),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: toTags(map[string]string{
				"fleetd:cluster": cluster, "fleetd:node-id": strconv.Itoa(i)})}}})
		if err != nil {
			return s, err
		}
		s.Instances[int32(i)] = aws.ToString(out.Instances[0].InstanceId)
	}
	return s, nil
}

// Controllers is what SeedControllers made: a controller launch template,
// a subnet of 127.0.0.0/16 per zone, and controller instances 9000.. with
// their private (loopback) addresses.
type Controllers struct {
	LaunchTemplate string
	Subnets        []string
	Instances      map[int32]string
	Hosts          []string // by node id order, for local.Options.ControllerHosts
}

// SeedControllers makes n controller instances (fleetd:role=controller,
// node ids 9000..) of cluster, one per zone in turn, in a VPC whose
// addresses are loopback ones, and a controller launch template.
func SeedControllers(ctx context.Context, c *ec2.Client, cluster string, zones []string, image string, n int) (Controllers, error) {
	out := Controllers{Instances: map[int32]string{}}
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("127.0.0.0/16")})
	if err != nil {
		return out, err
	}
	for i, z := range zones {
		sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, AvailabilityZone: aws.String(z), CidrBlock: aws.String(fmt.Sprintf("127.0.%d.0/24", 32+i))})
		if err != nil {
			return out, err
		}
		out.Subnets = append(out.Subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	out.LaunchTemplate = cluster + "-controller"
	if _, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(out.LaunchTemplate),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(image), InstanceType: types.InstanceTypeM7gLarge}}); err != nil {
		return out, err
	}
	for i := 0; i < n; i++ {
		node := int32(9000 + i)
		run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(image),
			InstanceType: types.InstanceTypeM7gLarge, SubnetId: aws.String(out.Subnets[i%len(out.Subnets)]),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: toTags(map[string]string{
				"fleetd:cluster": cluster, "fleetd:node-id": strconv.Itoa(int(node)), "fleetd:role": "controller"})}}})
		if err != nil {
			return out, err
		}
		out.Instances[node] = aws.ToString(run.Instances[0].InstanceId)
		out.Hosts = append(out.Hosts, aws.ToString(run.Instances[0].PrivateIpAddress))
	}
	return out, nil
}

// Mirror keeps a local fleet in step with moto's instances of a cluster.
type Mirror struct {
	EC2     *ec2.Client
	Fleet   *local.Fleet
	Cluster string

	mu      sync.Mutex
	running map[string]int32 // instance id -> node id with a live process
	ended   map[string]bool  // instances whose process was stopped
	gone    map[string]bool  // instances whose process was removed
}

// Run reconciles every 300 ms until ctx ends; first is closed after the
// first pass, onErr sees failed passes.
func (m *Mirror) Run(ctx context.Context, first chan<- struct{}, onErr func(error)) {
	m.mu.Lock()
	m.running, m.ended, m.gone = map[string]int32{}, map[string]bool{}, map[string]bool{}
	m.mu.Unlock()
	once := sync.OnceFunc(func() { close(first) })
	for {
		if err := m.reconcile(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		once()
		select {
		case <-ctx.Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
}

type inst struct {
	id, zone, ip string
	node         int32
	controller   bool
	state        types.InstanceStateName
}

func (m *Mirror) reconcile(ctx context.Context) error {
	out, err := m.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag:fleetd:cluster"), Values: []string{m.Cluster}}}})
	if err != nil {
		return err
	}
	var all []inst
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			var node int64 = -1
			controller := false
			for _, t := range i.Tags {
				switch aws.ToString(t.Key) {
				case "fleetd:node-id":
					node, _ = strconv.ParseInt(aws.ToString(t.Value), 10, 32)
				case "fleetd:role":
					controller = aws.ToString(t.Value) == "controller"
				}
			}
			if node >= 0 {
				all = append(all, inst{id: aws.ToString(i.InstanceId), zone: aws.ToString(i.Placement.AvailabilityZone), ip: aws.ToString(i.PrivateIpAddress),
					node: int32(node), controller: controller, state: i.State.Name})
			}
		}
	}
	// Ends first: an identity replacement's new instance reuses the node id.
	for _, in := range all {
		if err := m.end(ctx, in); err != nil {
			return err
		}
	}
	for _, in := range all {
		m.mu.Lock()
		_, live := m.running[in.id]
		skip := live || m.ended[in.id] || m.gone[in.id]
		m.mu.Unlock()
		if in.state != types.InstanceStateNameRunning || skip {
			continue
		}
		switch n, exists := m.Fleet.Node(in.node); {
		case in.controller && exists && n.Running:
			// One of the fleet's initial controllers, seeded at its address.
		case in.controller:
			if _, err := m.Fleet.AddControllerAt(ctx, in.node, in.zone, in.ip); err != nil {
				return fmt.Errorf("start controller %d for %s at %s: %w", in.node, in.id, in.ip, err)
			}
		default:
			if _, err := m.Fleet.StartBroker(ctx, in.node, in.zone); err != nil {
				return fmt.Errorf("start broker %d for %s: %w", in.node, in.id, err)
			}
		}
		m.mu.Lock()
		m.running[in.id] = in.node
		m.mu.Unlock()
	}
	return nil
}

func (m *Mirror) end(ctx context.Context, in inst) error {
	m.mu.Lock()
	node, live := m.running[in.id]
	ended := m.ended[in.id]
	elsewhere := false
	for other, n := range m.running {
		if n == in.node && other != in.id {
			elsewhere = true
		}
	}
	m.mu.Unlock()
	switch in.state {
	case types.InstanceStateNameStopping, types.InstanceStateNameStopped:
		if live {
			if err := m.Fleet.StopNode(ctx, node); err != nil {
				return fmt.Errorf("stop broker %d of %s: %w", node, in.id, err)
			}
			m.mu.Lock()
			delete(m.running, in.id)
			m.ended[in.id] = true
			m.mu.Unlock()
		}
	case types.InstanceStateNameShuttingDown, types.InstanceStateNameTerminated:
		if (live || ended) && !elsewhere {
			if err := m.Fleet.Remove(in.node); err != nil {
				return err
			}
		}
		m.mu.Lock()
		delete(m.running, in.id)
		delete(m.ended, in.id)
		m.gone[in.id] = true
		m.mu.Unlock()
	}
	return nil
}
