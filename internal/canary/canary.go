// Package canary keeps fleetd's canary topic and runs the canary: during
// every workflow, sequenced records written with acks=all and idempotence at
// a low rate and read back (internal/ledger does the counting), so that every
// replacement record carries proof that nothing acknowledged was lost, and
// the produce latency producers saw before, during and after it. The canary
// writes only to its own topic, never to a user's.
package canary

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/ledger"
	"github.com/fleetd/fleetd/internal/replace"
)

// DefaultTopic is the canary topic's name unless configured.
const DefaultTopic = "fleetd-canary"

// Options configure the canary.
type Options struct {
	Topic string
	// Rate is records per second over all partitions (default 20).
	Rate int
	// Seeds and ClientOpts reach the cluster (TLS, SASL).
	Seeds      []string
	ClientOpts []kgo.Opt
}

// Canary keeps the topic and starts probes.
type Canary struct {
	opts  Options
	cl    *kgo.Client
	admin *kadm.Client
}

// New returns a canary over cl (the caller's client).
func New(cl *kgo.Client, o Options) *Canary {
	if o.Topic == "" {
		o.Topic = DefaultTopic
	}
	if o.Rate <= 0 {
		o.Rate = 20
	}
	return &Canary{opts: o, cl: cl, admin: kadm.NewClient(cl)}
}

// Spread is the canary's layout over brokers (sorted): one partition per
// broker, partition i led by brokers[i] (its preferred replica), RF
// min(3, brokers).
func Spread(brokers []int32) [][]int32 {
	rf := min(3, len(brokers))
	out := make([][]int32, len(brokers))
	for i := range brokers {
		for j := range rf {
			out[i] = append(out[i], brokers[(i+j)%len(brokers)])
		}
	}
	return out
}

// Ensure creates the topic (one partition per serving broker, RF 3, min
// ISR 2, an hour's retention), or, when a serving broker is no partition's
// preferred leader, re-spreads it: missing partitions are added, existing
// ones reassigned (tiny: at most an hour of canary records) and their
// preferred leaders elected. A 1:1 move keeps the layout (the new broker
// takes the old one's place), so it rarely has anything to do. Without
// respread (a workflow whose plan already moves the canary's partitions)
// it only creates a missing topic.
func (c *Canary) Ensure(ctx context.Context, snap *health.Snapshot, respread bool) error {
	var brokers []int32
	for _, b := range snap.Brokers {
		if !b.Fenced {
			brokers = append(brokers, b.ID)
		}
	}
	// A cordoned broker (KIP-1066: a broker being replaced) takes no new
	// replica: Kafka refuses a layout naming it.
	cordoned := c.cordoned(ctx, brokers)
	brokers = slices.DeleteFunc(brokers, func(b int32) bool { return cordoned[b] })
	slices.Sort(brokers)
	if len(brokers) == 0 {
		return errors.New("canary: no serving broker")
	}
	want := Spread(brokers)
	var parts []health.Partition
	for _, p := range snap.Partitions {
		if p.Topic == c.opts.Topic {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return c.create(ctx, want)
	}
	covered := true
	for _, b := range brokers {
		covered = covered && slices.ContainsFunc(parts, func(p health.Partition) bool { return len(p.Replicas) > 0 && p.Replicas[0] == b })
	}
	if covered || !respread {
		return nil // every serving broker is some partition's preferred leader, or a plan pins the layout
	}
	if len(parts) < len(want) {
		resp, err := c.admin.CreatePartitions(ctx, len(want)-len(parts), c.opts.Topic)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return fmt.Errorf("canary: add partitions to %s: %w", c.opts.Topic, err)
		}
		return nil // the next Ensure finds them and spreads them
	}
	req := kadm.AlterPartitionAssignmentsReq{}
	var elect kadm.TopicsSet
	moves := 0
	for _, p := range parts {
		target := want[int(p.Partition)%len(want)]
		if !slices.Equal(p.Replicas, target) {
			req.Assign(p.Topic, p.Partition, target)
			moves++
		}
		if p.Leader != target[0] {
			elect.Add(p.Topic, p.Partition)
		}
	}
	if moves > 0 {
		resp, err := c.admin.AlterPartitionAssignments(ctx, req)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return fmt.Errorf("canary: spread %s over brokers %v: %w", c.opts.Topic, brokers, err)
		}
	}
	if len(elect) > 0 {
		if _, err := c.admin.ElectLeaders(ctx, kadm.ElectPreferredReplica, elect); err != nil {
			return fmt.Errorf("canary: elect leaders of %s: %w", c.opts.Topic, err)
		}
	}
	return nil
}

// cordoned reads which of brokers have cordoned.log.dirs set. A Kafka
// without cordoning, or a failed read, has none cordoned: Ensure then
// tries the layout and Kafka says no if it must.
func (c *Canary) cordoned(ctx context.Context, brokers []int32) map[int32]bool {
	out := map[int32]bool{}
	rcs, err := c.admin.DescribeBrokerConfigs(ctx, brokers...)
	if err != nil {
		return out
	}
	for _, rc := range rcs {
		id, err := strconv.ParseInt(rc.Name, 10, 32)
		if rc.Err != nil || err != nil {
			continue
		}
		for _, cfg := range rc.Configs {
			if cfg.Key == "cordoned.log.dirs" && cfg.Value != nil && *cfg.Value != "" {
				out[int32(id)] = true
			}
		}
	}
	return out
}

// create makes the topic with the layout want: min ISR 2 (1 on a
// two-broker cluster), an hour's retention (a probe reads from the start).
func (c *Canary) create(ctx context.Context, want [][]int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30_000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = c.opts.Topic, -1, -1
	for i, r := range want {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), r
		t.ReplicaAssignment = append(t.ReplicaAssignment, a)
	}
	for k, v := range map[string]string{
		"min.insync.replicas": strconv.Itoa(min(2, len(want[0]))),
		"retention.ms":        strconv.FormatInt(time.Hour.Milliseconds(), 10),
	} {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
		t.Configs = append(t.Configs, cfg)
	}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, c.cl)
	if err != nil {
		return fmt.Errorf("canary: create topic %s: %w", c.opts.Topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("canary: create topic %s: %w", c.opts.Topic, err)
		}
	}
	return nil
}

// Probe makes sure of the topic (Ensure, on a fresh snapshot) and starts a
// probe on it: what replace.Options.Canary calls for every workflow.
func (c *Canary) Probe(ctx context.Context, respread bool) (replace.CanaryProbe, error) {
	snap, err := health.Collect(ctx, c.cl)
	if err != nil {
		return nil, err
	}
	if err := c.Ensure(ctx, snap, respread); err != nil {
		return nil, err
	}
	// A topic just created may not be in every broker's metadata yet.
	var last error
	for range 20 {
		run, err := ledger.Start(ctx, c.opts.Seeds, ledger.Options{Topic: c.opts.Topic, Rate: c.opts.Rate, ClientOpts: c.opts.ClientOpts, DrainTimeout: time.Minute})
		if err == nil {
			return &probe{run: run, topic: c.opts.Topic}, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil, last
}

type probe struct {
	run   *ledger.Run
	topic string
}

func (p *probe) Topic() string { return p.topic }

func (p *probe) Latency(q float64, from, to time.Time) time.Duration {
	return p.run.LatencyPercentileBetween(q, from, to)
}

func (p *probe) Stop(ctx context.Context) (replace.CanaryCounts, error) {
	rep, err := p.run.Stop(ctx)
	return replace.CanaryCounts{Acked: rep.Acked, Observed: rep.Observed, Lost: rep.Lost, Duplicated: rep.Duplicated, ProduceErrors: rep.ProduceErrors}, err
}

// ForExecutor is replace.Options.Canary for a cluster reached with s's
// seeds and kgo opts (opts includes the seeds; ledger clients add their
// own), or nil when off.
func ForExecutor(cl *kgo.Client, on bool, o Options) func(context.Context, bool) (replace.CanaryProbe, error) {
	if !on {
		return nil
	}
	return New(cl, o).Probe
}
