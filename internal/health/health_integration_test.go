//go:build integration

package health_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/testbed"
)

func collect(t *testing.T, c *testbed.Cluster) *health.Snapshot {
	t.Helper()
	s, err := health.Collect(testbed.Context(t), c.Client)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHealthyClusterIsSafeAndFullyDescribed(t *testing.T) {
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 4)
	s := collect(t, c)
	if v := health.CanDisrupt(s, health.Policy{}); !v.Safe {
		t.Fatalf("healthy cluster judged unsafe: %s", v.Summary())
	}
	if len(s.Brokers) != 3 || s.Controller != 9000 || s.ClusterID != c.Fleet.ClusterID() {
		t.Errorf("brokers=%d controller=%d cluster=%q, want 3, 9000, %q", len(s.Brokers), s.Controller, s.ClusterID, c.Fleet.ClusterID())
	}
	for _, b := range s.Brokers {
		if b.Rack == "" || !b.BytesKnown || b.Bytes == 0 {
			t.Errorf("broker %+v: want a rack and known, non-zero bytes", b)
		}
	}
	var orders int
	for _, p := range s.Partitions {
		if p.Topic == "orders" {
			orders++
			if p.MinISR != 2 {
				t.Errorf("%s min ISR = %d, want the topic's 2", p.TP, p.MinISR)
			}
		}
	}
	if orders != 6 {
		t.Errorf("orders partitions = %d, want 6", orders)
	}
}

// Also ELR (KIP-966), on in a new Kafka 4.4 cluster: a replica that leaves
// an ISR already at min.insync.replicas (topic ledger, min ISR = RF)
// becomes an eligible leader replica; the gate reads it through
// DescribeTopicPartitions and names it in its under-min-ISR reason.
func TestKilledBrokerIsNamedAndSecondStopWouldBreakMinISR(t *testing.T) {
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.CreateTopic("ledger", 3, 3, 3)
	if err := c.Fleet.KillNode(2); err != nil {
		t.Fatal(err)
	}
	var s *health.Snapshot
	testbed.Eventually(t, 60*time.Second, func() error {
		s = collect(t, c)
		if len(health.UnderReplicated(s)) < 9 {
			return errNotYet("ISR shrink")
		}
		for _, p := range s.Partitions {
			if p.Topic == "ledger" && !slices.Contains(p.ELR, 2) {
				return errNotYet("broker 2 in the ledger partitions' ELR")
			}
		}
		return nil
	})
	if len(s.Incomplete) > 0 {
		t.Fatalf("snapshot incomplete: %v", s.Incomplete)
	}
	under := reasonOf(t, health.CanDisrupt(s, health.Policy{}), health.CodeUnderMinISR)
	for _, want := range []string{"3 partitions are below min.insync.replicas", "3 of them keep eligible leader replicas (ELR, KIP-966) on broker 2", "not safe to disrupt further"} {
		if !strings.Contains(under.Message, want) {
			t.Errorf("under-min-ISR reason %q does not say %q", under.Message, want)
		}
	}
	for _, p := range s.Partitions {
		if bv := health.BlastRadius(s, p.ISR, []int32{2}); p.Topic == "ledger" && bv.Safe {
			t.Errorf("taking away %s's whole ISR %v was judged safe", p.TP, p.ISR)
		}
	}
	v := health.CanDisrupt(s, health.Policy{})
	if v.Safe {
		t.Fatal("a cluster with a dead broker was judged safe")
	}
	down := reasonOf(t, v, health.CodeBrokerDown)
	if !slices.Equal(down.Brokers, []int32{2}) {
		t.Errorf("broker-down names %v, want [2]", down.Brokers)
	}
	urp := reasonOf(t, v, health.CodeUnderReplicated)
	for i := int32(0); i < 6; i++ {
		if !slices.Contains(urp.Partitions, health.TP{Topic: "orders", Partition: i}) {
			t.Errorf("under-replicated reason misses orders-%d: %v", i, urp.Partitions)
		}
	}
	// With 2 down, every orders partition has ISR {1,3}: stopping 3 leaves 1 < 2.
	stop := health.SafeToStop(s, 3)
	below := reasonOf(t, stop, health.CodeWouldFallBelowMinISR)
	for i := int32(0); i < 6; i++ {
		if !slices.Contains(below.Partitions, health.TP{Topic: "orders", Partition: i}) {
			t.Errorf("SafeToStop(3) misses orders-%d: %v", i, below.Partitions)
		}
	}
	// The emergency replacement for broker 2 is allowed, and says so.
	if v := health.CanDisrupt(s, health.Policy{AllowDown: []int32{2}}); !v.Safe || !v.Has(health.CodeExcused) {
		t.Errorf("emergency for broker 2: %+v", v)
	}
}

func TestRFEqualToMinISRWarnsButDoesNotBlock(t *testing.T) {
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("strict", 3, 2, 2)
	s := collect(t, c)
	v := health.CanDisrupt(s, health.Policy{})
	if !v.Safe {
		t.Fatalf("RF=2/min ISR=2 blocked CanDisrupt: %s", v.Summary())
	}
	w := reasonOf(t, v, health.CodeNoHeadroom)
	if len(w.Partitions) != 3 {
		t.Errorf("warning names %v, want the 3 strict partitions", w.Partitions)
	}
	// A plain stop of any broker holding them is not safe.
	p := s.Partitions[slices.IndexFunc(s.Partitions, func(p health.Partition) bool { return p.Topic == "strict" })]
	if health.SafeToStop(s, p.ISR[0]).Safe {
		t.Errorf("stopping broker %d of %s would block writes, but SafeToStop said safe", p.ISR[0], p.TP)
	}
}

func TestThrottledReassignmentIsForeignNotUnderReplicated(t *testing.T) {
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("bulk", 1, 1, 1)
	c.Fill("bulk", 30)
	s := collect(t, c)
	src := s.Partitions[slices.IndexFunc(s.Partitions, func(p health.Partition) bool { return p.Topic == "bulk" })]
	from := src.Replicas[0]
	to := int32(1 + from%3)
	ctx := testbed.Context(t)

	// 10 KiB/s: 30 MB cannot move during this test.
	rate := "10240"
	star := "*"
	for _, b := range []int32{from, to} {
		if _, err := c.Admin.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "leader.replication.throttled.rate", Value: &rate},
			{Op: kadm.SetConfig, Name: "follower.replication.throttled.rate", Value: &rate},
		}, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "leader.replication.throttled.replicas", Value: &star},
		{Op: kadm.SetConfig, Name: "follower.replication.throttled.replicas", Value: &star},
	}, "bulk"); err != nil {
		t.Fatal(err)
	}
	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign("bulk", 0, []int32{from, to})
	resp, err := c.Admin.AlterPartitionAssignments(ctx, req)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancelReassignment(c.Client) })

	testbed.Eventually(t, 30*time.Second, func() error {
		s = collect(t, c)
		if len(health.Reassigning(s)) == 0 {
			return errNotYet("reassignment listed")
		}
		return nil
	})
	bulk := health.TP{Topic: "bulk", Partition: 0}
	if got := health.Reassigning(s); !slices.Equal(got, []health.TP{bulk}) {
		t.Fatalf("reassigning = %v, want [bulk-0]", got)
	}
	if got := health.UnderReplicated(s); slices.Contains(got, bulk) {
		t.Errorf("a catching-up reassignment was reported as under-replication: %v", got)
	}
	v := health.CanDisrupt(s, health.Policy{})
	if v.Safe || !v.Has(health.CodeForeignReassignment) || v.Has(health.CodeUnderReplicated) {
		t.Errorf("want a refusal for the foreign reassignment only, got %+v", v)
	}
	if v := health.CanDisrupt(s, health.Policy{Own: map[health.TP]bool{bulk: true}}); !v.Safe {
		t.Errorf("fleetd's own reassignment blocked: %s", v.Summary())
	}
}

func cancelReassignment(cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kadm.AlterPartitionAssignmentsReq{}
	req.CancelAssign("bulk", 0)
	_, _ = kadm.NewClient(cl).AlterPartitionAssignments(ctx, req)
}

func TestUnreachableKafkaRefuses(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.DialTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, v := health.Check(ctx, cl, health.Policy{})
	if s != nil || v.Safe || !v.Has(health.CodeCannotEvaluate) {
		t.Fatalf("unreachable Kafka: snapshot=%v verdict=%+v, want a cannot-evaluate refusal", s, v)
	}
}

type errNotYet string

func (e errNotYet) Error() string { return "waiting for " + string(e) }

func reasonOf(t *testing.T, v health.Verdict, c health.Code) health.Reason {
	t.Helper()
	for _, r := range append(v.Blockers, v.Warnings...) {
		if r.Code == c {
			return r
		}
	}
	t.Fatalf("no %s reason in %+v", c, v)
	return health.Reason{}
}
