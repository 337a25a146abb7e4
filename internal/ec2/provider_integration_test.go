//go:build integration

package ec2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/fleetd/fleetd/internal/ec2mirror"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/testbed"
)

func testProvider(t *testing.T, c *ec2.Client, seed ec2mirror.Seed) *Provider {
	t.Helper()
	p, err := NewProvider(c, Options{Cluster: "test", LaunchTemplate: seed.LaunchTemplate, ImageTags: testbed.ImageTags})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProviderReplacesABrokerEndToEnd runs a move replacement with the real
// executor, the real SDK against moto, and real Kafka brokers mirroring
// moto's instances.
func TestProviderReplacesABrokerEndToEnd(t *testing.T) {
	t.Parallel() // a moto of its own, and no process environment
	cfg, _, _ := testbed.MotoConfig(t)
	c := ec2.NewFromConfig(cfg)
	seed := testbed.SeedEC2(t, c, "test", 3)
	cl := testbed.NewClusterFrom(t, func(f *local.Fleet) { testbed.MirrorEC2(t, f, c, "test") }, 1, 2, 3)
	cl.CreateTopic("orders", 6, 3, 2)
	cl.Fill("orders", 6)
	ledgerRun := cl.StartLedger("orders", 100)

	p := testProvider(t, c, seed)
	insts, err := p.Instances(testbed.Context(t))
	if err != nil || len(insts) != 3 {
		t.Fatalf("instances: %v %v", insts, err)
	}
	store, _ := replace.NewFileStore(t.TempDir())
	ex := replace.New(replace.KafkaCluster{Client: cl.Client, Controllers: cl.Controllers}, p, store, replace.Options{
		Throttle: replace.Rate(20 << 20), Poll: 300 * time.Millisecond, Log: testbed.Logger(t),
		OnEvent: func(_ string, r *replace.Record) {
			if err := p.TagProgress(context.Background(), r); err != nil {
				t.Errorf("tag progress: %v", err)
			}
		},
	})
	ctx := testbed.Context(t)
	r, err := ex.Begin(ctx, replace.Request{Broker: 2, Triggers: []replace.Trigger{"instance-retirement"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Run(ctx, r); err != nil {
		t.Fatalf("replacement: %v", err)
	}
	testbed.Eventually(t, 60*time.Second, cl.Settled)
	testbed.Eventually(t, 15*time.Second, cl.NoThrottles)
	cl.StopLedger(ledgerRun)

	old := testbed.EC2Instance(t, c, seed.Instances[2])
	if old.State.Name != types.InstanceStateNameTerminated {
		t.Errorf("old instance %s is %s, want terminated", seed.Instances[2], old.State.Name)
	}
	nw := testbed.EC2Instance(t, c, r.NewInstance)
	tags := tagsOf(nw.Tags)
	want := map[string]string{"fleetd:cluster": "test", "fleetd:node-id": "4", TagReplacement: r.ID, TagLaunchToken: r.ID + "-launch"}
	for k, v := range want {
		if tags[k] != v {
			t.Errorf("new instance tag %s=%q, want %q", k, tags[k], v)
		}
	}
	if !strings.HasPrefix(tags[TagStep], "completed/done") {
		t.Errorf("new instance's progress tag %q, want completed/done", tags[TagStep])
	}
	if aws.ToString(nw.SubnetId) != aws.ToString(old.SubnetId) || aws.ToString(nw.Placement.AvailabilityZone) != aws.ToString(old.Placement.AvailabilityZone) {
		t.Errorf("new instance in %s/%s, old in %s/%s: want the same subnet and AZ", aws.ToString(nw.SubnetId), aws.ToString(nw.Placement.AvailabilityZone), aws.ToString(old.SubnetId), aws.ToString(old.Placement.AvailabilityZone))
	}
	if aws.ToString(nw.ImageId) != seed.Image || nw.InstanceType != types.InstanceTypeIm4gn4xlarge {
		t.Errorf("new instance runs %s on %s, want the newest AMI %s on im4gn.4xlarge", aws.ToString(nw.ImageId), nw.InstanceType, seed.Image)
	}
}

// lossyTransport lets the first RunInstances reach moto and then reports a
// timeout, as a connection dropped after EC2 acted would.
type lossyTransport struct {
	next  http.RoundTripper
	drops atomic.Int32
}

func (l *lossyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body := ""
	if req.Body != nil {
		raw, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		body = string(raw)
		req.Body = io.NopCloser(strings.NewReader(body))
	}
	resp, err := l.next.RoundTrip(req)
	if err == nil && strings.Contains(body, "Action=RunInstances") && l.drops.Add(1) == 1 {
		resp.Body.Close()
		return nil, &timeoutError{}
	}
	return resp, err
}

type timeoutError struct{}

func (*timeoutError) Error() string   { return "read: i/o timeout (simulated)" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }

func TestLaunchRetriedAfterATimeoutStartsOneInstance(t *testing.T) {
	t.Parallel() // a moto of its own, and no process environment
	cfg, _, _ := testbed.MotoConfig(t)
	seed := testbed.SeedEC2(t, ec2.NewFromConfig(cfg), "test", 3)
	lossy := &lossyTransport{next: http.DefaultTransport}
	cfg.HTTPClient = &http.Client{Transport: lossy, Timeout: 30 * time.Second}
	c := ec2.NewFromConfig(cfg)
	p := testProvider(t, c, seed)
	ctx := testbed.Context(t)
	insts, err := p.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := replace.LaunchRequest{Token: "r-test-launch", Like: insts[0], NodeID: 9, ReplacementID: "r-test"}
	_, err = p.Launch(ctx, req)
	if err == nil {
		t.Fatal("the first launch's answer was dropped, yet Launch reported success")
	}
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) {
		t.Logf("first launch error (not a timeout type): %v", err)
	}
	// The executor retries the step; the retry must find the first instance.
	in, err := p.Launch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	all, err := p.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, i := range all {
		if i.NodeID == 9 {
			n++
		}
	}
	if n != 1 || lossy.drops.Load() != 1 || in.NodeID != 9 {
		t.Fatalf("%d instances for node 9 after a retried launch (RunInstances sent %d times), want exactly 1 sent once", n, lossy.drops.Load())
	}
}

// Terminate, Stop and TagProgress refuse instances that are not the cluster's.
func TestProviderRefusesForeignInstances(t *testing.T) {
	t.Parallel() // a moto of its own, and no process environment
	cfg, _, _ := testbed.MotoConfig(t)
	c := ec2.NewFromConfig(cfg)
	seed := testbed.SeedEC2(t, c, "test", 1)
	ctx := testbed.Context(t)
	foreign, err := c.RunInstances(ctx, &ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ImageId: aws.String(seed.Image),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{
			{Key: aws.String("fleetd:cluster"), Value: aws.String("someone-else")}, {Key: aws.String("fleetd:node-id"), Value: aws.String("1")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(foreign.Instances[0].InstanceId)
	p := testProvider(t, c, seed)
	for name, fn := range map[string]func() error{
		"terminate": func() error { return p.Terminate(ctx, id) },
		"stop":      func() error { return p.Stop(ctx, id) },
		"tag":       func() error { return p.TagProgress(ctx, &replace.Record{ID: "r-x", OldInstance: id}) },
	} {
		if err := fn(); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("%s on a foreign instance: %v, want a refusal", name, err)
		}
	}
	if in := testbed.EC2Instance(t, c, id); in.State.Name != types.InstanceStateNameRunning || tagsOf(in.Tags)[TagReplacement] != "" {
		t.Errorf("foreign instance touched: %s %v", in.State.Name, tagsOf(in.Tags))
	}
	if insts, _ := p.Instances(ctx); len(insts) != 1 || insts[0].ID != seed.Instances[1] {
		t.Errorf("instances %v, want only the cluster's broker", insts)
	}
}

// countingImages counts DescribeImages calls.
type countingImages struct {
	API
	calls atomic.Int32
}

func (c *countingImages) DescribeImages(ctx context.Context, in *ec2.DescribeImagesInput, opts ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	c.calls.Add(1)
	return c.API.DescribeImages(ctx, in, opts...)
}

// Every instance carries its AMI's creation time (the status page shows the
// AMI's age), asked of EC2 once per AMI, not on every listing.
func TestInstancesCarryTheirAMIsCreationTime(t *testing.T) {
	t.Parallel()
	cfg, _, _ := testbed.MotoConfig(t)
	c := ec2.NewFromConfig(cfg)
	seed := testbed.SeedEC2(t, c, "test", 3)
	api := &countingImages{API: c}
	p, err := NewProvider(api, Options{Cluster: "test", LaunchTemplate: seed.LaunchTemplate, ImageTags: testbed.ImageTags})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testbed.Context(t)
	for range 3 {
		insts, err := p.Instances(ctx)
		if err != nil || len(insts) != 3 {
			t.Fatalf("instances: %v %v", insts, err)
		}
		for _, in := range insts {
			im, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{in.Image}})
			if err != nil || len(im.Images) != 1 {
				t.Fatalf("describe %s: %v", in.Image, err)
			}
			want, _ := time.Parse(time.RFC3339, aws.ToString(im.Images[0].CreationDate))
			if want.IsZero() || !in.ImageCreated.Equal(want) {
				t.Errorf("%s (%s) image created %v, want %v", in.ID, in.Image, in.ImageCreated, want)
			}
		}
	}
	if n := api.calls.Load(); n != 1 {
		t.Errorf("%d DescribeImages calls for three listings of one AMI, want 1", n)
	}
}
