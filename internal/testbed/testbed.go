// Package testbed holds fixtures for fleetd's integration tests: a real KRaft
// cluster on loopback (internal/local), topics, data, the ledger, and a
// moto_server standing in for AWS. Every fixture registers its own teardown
// with t.Cleanup, so a failing or panicking test leaves no process behind.
//
// It is imported only from tests.
package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetd/fleetd/internal/ledger"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/workload"
)

// Cluster is a running local fleet with an admin client.
type Cluster struct {
	t     testing.TB
	Fleet *local.Fleet
	// Client and Admin talk to the cluster; they follow broker metadata, so
	// they survive brokers coming and going.
	Client *kgo.Client
	Admin  *kadm.Client
	// Controllers is a client seeded with the KRaft controllers.
	Controllers *kgo.Client
}

// Option changes the fleet's options before it starts.
type Option func(*local.Options)

// WithBrokerConfig adds server.properties entries to every broker.
func WithBrokerConfig(kv map[string]string) Option {
	return func(o *local.Options) { o.BrokerConfig = kv }
}

// WithControllers runs n controllers (a dynamic quorum unless static).
func WithControllers(n int) Option {
	return func(o *local.Options) { o.Controllers = n }
}

// WithControllerHosts runs the initial controllers on these loopback
// addresses, every controller on port (the addresses moto gave their
// instances: ec2mirror.SeedControllers).
func WithControllerHosts(hosts []string, port int) Option {
	return func(o *local.Options) { o.Controllers, o.ControllerHosts, o.ControllerPort = len(hosts), hosts, port }
}

// WithStaticQuorum formats the quorum static (kraft.version 0).
func WithStaticQuorum() Option {
	return func(o *local.Options) { o.StaticQuorum = true }
}

// Logger writes zerolog output through t.Log, so it shows only for failing
// or verbose tests.
func Logger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).With().Timestamp().Logger()
}

// Context returns a context bounded by the test's deadline (less a margin for
// cleanup) and cancelled when the test ends.
func Context(t testing.TB) context.Context {
	ctx := context.Background()
	if tt, ok := t.(*testing.T); ok {
		if dl, ok := tt.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
			t.Cleanup(cancel)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	return ctx
}

// NewCluster starts a controller and brokers with ids 1..brokers and waits
// until every broker is registered. The Kafka distribution comes from
// local.DefaultDist; a missing one fails the test with the command to run.
func NewCluster(t testing.TB, brokers int, opts ...Option) *Cluster {
	t.Helper()
	ids := make([]int32, brokers)
	for i := range ids {
		ids[i] = int32(i + 1)
	}
	return newCluster(t, func(ctx context.Context, o local.Options) (*local.Fleet, error) { return local.Up(ctx, o, brokers) }, nil, ids, opts)
}

// NewClusterFrom starts the controllers only, lets start bring up the
// brokers (MirrorEC2 does, from moto's instances), and waits for ids.
func NewClusterFrom(t testing.TB, start func(*local.Fleet), ids ...int32) *Cluster {
	t.Helper()
	return newCluster(t, local.Start, start, ids, nil)
}

// NewClusterFromWith is NewClusterFrom with options for the fleet.
func NewClusterFromWith(t testing.TB, opts []Option, start func(*local.Fleet), ids ...int32) *Cluster {
	t.Helper()
	return newCluster(t, local.Start, start, ids, opts)
}

func newCluster(t testing.TB, up func(context.Context, local.Options) (*local.Fleet, error), then func(*local.Fleet), ids []int32, opts []Option) *Cluster {
	t.Helper()
	dist, err := local.DefaultDist()
	if err != nil {
		t.Fatalf("Kafka distribution: %v", err)
	}
	o := local.Options{Dist: dist, Dir: t.TempDir(), Log: Logger(t)}
	for _, opt := range opts {
		opt(&o)
	}
	f, err := up(Context(t), o)
	if err != nil {
		dumpLogs(t, o.Dir)
		t.Fatalf("start local fleet: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, o.Dir)
		}
		f.Close()
	})
	if then != nil {
		then(f)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.Bootstrap()...))
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	t.Cleanup(cl.Close)
	cc, err := kgo.NewClient(kgo.SeedBrokers(f.QuorumBootstrap()...))
	if err != nil {
		t.Fatalf("controller client: %v", err)
	}
	t.Cleanup(cc.Close)
	c := &Cluster{t: t, Fleet: f, Client: cl, Admin: kadm.NewClient(cl), Controllers: cc}
	c.WaitBrokers(ids...)
	return c
}

// dumpLogs prints the tail of every node's server.log to help read a failure.
func dumpLogs(t testing.TB, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*", "server.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		// Skip the tab-indented config dumps Kafka prints at start-up.
		var kept []string
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "\t") {
				kept = append(kept, line)
			}
		}
		t.Logf("---- last lines of %s ----\n%s", l, strings.Join(kept[max(0, len(kept)-40):], "\n"))
	}
}

// WaitBrokers waits until exactly these broker ids are listed as alive.
func (c *Cluster) WaitBrokers(ids ...int32) {
	c.t.Helper()
	want := slices.Clone(ids)
	slices.Sort(want)
	var got []int32
	Eventually(c.t, 90*time.Second, func() error {
		m, err := c.Metadata()
		if err != nil {
			return err
		}
		got = got[:0]
		for _, b := range m.Brokers {
			got = append(got, b.NodeID)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("brokers listed %v, want %v", got, want)
		}
		return nil
	})
}

// CreateTopic creates a topic and waits until it has full ISRs.
func (c *Cluster) CreateTopic(name string, partitions int32, rf int16, minISR int) {
	c.t.Helper()
	err := workload.CreateTopic(Context(c.t), c.Admin, workload.Topic{
		Name: name, Partitions: partitions, ReplicationFactor: rf, MinInsyncReplicas: minISR,
	}, 60*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
}

// Fill loads about mb megabytes into topic.
func (c *Cluster) Fill(topic string, mb int) {
	c.t.Helper()
	if err := workload.Fill(Context(c.t), c.Fleet.Bootstrap(), topic, int64(mb)<<20, workload.FillOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// StartLedger starts a ledger run on topic. Stop it with StopLedger.
func (c *Cluster) StartLedger(topic string, rate int) *ledger.Run {
	c.t.Helper()
	r, err := ledger.Start(Context(c.t), c.Fleet.Bootstrap(), ledger.Options{Topic: topic, Rate: rate})
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// StopLedger stops a run and fails the test unless nothing was lost,
// duplicated or reordered and at least one record was acknowledged.
func (c *Cluster) StopLedger(r *ledger.Run) ledger.Report {
	c.t.Helper()
	rep, err := r.Stop(Context(c.t))
	if err != nil {
		c.t.Fatalf("ledger: %v (so far: %s)", err, rep)
	}
	if rep.Acked == 0 {
		c.t.Fatalf("ledger acknowledged nothing: the producer never worked (%s)", rep)
	}
	if !rep.OK() {
		c.t.Fatalf("ledger: %s", rep)
	}
	c.t.Logf("ledger: %s", rep)
	return rep
}

// Metadata asks a broker for the current metadata of the given topics (all
// topics when none are named). Unlike kadm's listing functions, which answer
// from kgo's metadata cache, this always goes to the cluster: a test that
// waits for Kafka to change must not read a stale answer.
func (c *Cluster) Metadata(topics ...string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	if len(topics) > 0 {
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	}
	return req.RequestWith(Context(c.t), c.Client)
}

// Partition is one partition's current state.
type Partition struct {
	Partition int32
	Leader    int32
	Replicas  []int32
	ISR       []int32
}

// Partitions describes every partition of topic, fresh from the cluster.
func (c *Cluster) Partitions(topic string) []Partition {
	c.t.Helper()
	m, err := c.Metadata(topic)
	if err != nil {
		c.t.Fatal(err)
	}
	var out []Partition
	for _, t := range m.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			c.t.Fatalf("topic %s: %v", topic, err)
		}
		for _, p := range t.Partitions {
			out = append(out, Partition{Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas, ISR: p.ISR})
		}
	}
	slices.SortFunc(out, func(a, b Partition) int { return int(a.Partition - b.Partition) })
	return out
}

// Eventually retries fn every 250 ms until it returns nil, failing the test
// with fn's last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true within %s: %v", timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Settled returns nil once every partition is fully in sync, no reassignment
// is in flight, and every replica sits on a running broker; otherwise it says
// what is not settled. Use it with Eventually.
func (c *Cluster) Settled() error {
	m, err := c.Metadata()
	if err != nil {
		return err
	}
	for _, t := range m.Topics {
		for _, p := range t.Partitions {
			tp := fmt.Sprintf("%s-%d", str(t.Topic), p.Partition)
			for _, r := range p.Replicas {
				if b, ok := c.Fleet.Broker(r); !ok || !b.Running {
					return fmt.Errorf("%s has a replica on broker %d, which is not running", tp, r)
				}
			}
			if len(p.ISR) != len(p.Replicas) {
				return fmt.Errorf("%s: replicas %v isr %v", tp, p.Replicas, p.ISR)
			}
		}
	}
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	resp, err := req.RequestWith(Context(c.t), c.Client)
	if err != nil {
		return err
	}
	if len(resp.Topics) > 0 {
		return fmt.Errorf("reassignments in flight: %d topics", len(resp.Topics))
	}
	return nil
}

// DynamicBrokerConfigs lists the dynamic configs the cluster's metadata
// holds for broker id ("name=value"). Only a broker describes its own
// configs, so a retired id is started again for the question (a new, empty
// incarnation, which loads the metadata before it serves) and removed after.
func (c *Cluster) DynamicBrokerConfigs(id int32) []string {
	c.t.Helper()
	ctx := Context(c.t)
	if b, ok := c.Fleet.Broker(id); !ok || !b.Running {
		if _, err := c.Fleet.StartBroker(ctx, id, ""); err != nil {
			c.t.Fatalf("start broker %d to read its configs: %v", id, err)
		}
		defer func() {
			if err := c.Fleet.Remove(id); err != nil {
				c.t.Errorf("remove broker %d again: %v", id, err)
			}
			// Its registration goes too, as fleetd's unregister-old did.
			Eventually(c.t, 60*time.Second, func() error {
				req := kmsg.NewPtrUnregisterBrokerRequest()
				req.BrokerID = id
				resp, err := req.RequestWith(ctx, c.Client)
				if err != nil {
					return err
				}
				if err := kerr.ErrorForCode(resp.ErrorCode); err != nil && !errors.Is(err, kerr.BrokerIDNotRegistered) {
					return err
				}
				md, err := c.Metadata()
				if err != nil {
					return err
				}
				for _, b := range md.Brokers {
					if b.NodeID == id {
						return fmt.Errorf("broker %d still listed", id)
					}
				}
				return nil
			})
		}()
		Eventually(c.t, 90*time.Second, func() error {
			m, err := c.Metadata()
			if err != nil {
				return err
			}
			for _, b := range m.Brokers {
				if b.NodeID == id {
					return nil
				}
			}
			return fmt.Errorf("broker %d not listed yet", id)
		})
	}
	rcs, err := c.Admin.DescribeBrokerConfigs(ctx, id)
	if err != nil {
		c.t.Fatalf("describe configs of broker %d: %v", id, err)
	}
	var out []string
	for _, rc := range rcs {
		for _, cfg := range rc.Configs {
			if cfg.Source == kmsg.ConfigSourceDynamicBrokerConfig {
				out = append(out, cfg.Key+"="+cfg.MaybeValue())
			}
		}
	}
	return out
}

// NoThrottles returns nil when no replication-throttle config is set on any
// running broker or topic. Broker configs propagate through the metadata log,
// so use it with Eventually.
func (c *Cluster) NoThrottles() error {
	if left := c.ThrottleConfigs(); len(left) > 0 {
		return fmt.Errorf("throttle configs left: %v", left)
	}
	return nil
}

// ThrottleConfigs lists every replication-throttle config set dynamically on
// any broker or topic, as "resource/name=value". Empty means none is left.
func (c *Cluster) ThrottleConfigs() []string {
	c.t.Helper()
	out, err := c.ReadThrottleConfigs()
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// ReadThrottleConfigs is ThrottleConfigs that returns its error instead of
// failing the test: for goroutines that poll while brokers come and go.
func (c *Cluster) ReadThrottleConfigs() ([]string, error) {
	ctx := Context(c.t)
	var out []string
	collect := func(rcs kadm.ResourceConfigs, err error) error {
		if err != nil {
			return fmt.Errorf("describe configs: %w", err)
		}
		for _, rc := range rcs {
			if rc.Err != nil {
				return fmt.Errorf("describe configs of %s: %w", rc.Name, rc.Err)
			}
			for _, cfg := range rc.Configs {
				if strings.Contains(cfg.Key, "replication.throttled") &&
					(cfg.Source == kmsg.ConfigSourceDynamicBrokerConfig || cfg.Source == kmsg.ConfigSourceDynamicTopicConfig || cfg.Source == kmsg.ConfigSourceDynamicDefaultBrokerConfig) {
					name := rc.Name
					if _, err := strconv.Atoi(name); err == nil {
						name = "broker " + name
					}
					out = append(out, fmt.Sprintf("%s/%s=%s", name, cfg.Key, cfg.MaybeValue()))
				}
			}
		}
		return nil
	}
	// A broker describes only its own configs (a controller answers for
	// itself, with an error code per resource for any other id), so ask each
	// running broker. A retired id's configs: DynamicBrokerConfigs.
	var ids []int32
	for _, b := range c.Fleet.Brokers() {
		if b.Running {
			ids = append(ids, b.ID)
		}
	}
	if err := collect(c.Admin.DescribeBrokerConfigs(ctx, ids...)); err != nil {
		return nil, err
	}
	topics, err := c.Admin.ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	if err := collect(c.Admin.DescribeTopicConfigs(ctx, topics.Names()...)); err != nil {
		return nil, err
	}
	return out, nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
