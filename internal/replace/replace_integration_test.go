//go:build integration

package replace_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/fleetd/fleetd/internal/canary"
	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/kclient"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/testbed"
	"github.com/fleetd/fleetd/internal/workload"
)

// fastOptions poll quickly so tests on a laptop-sized cluster stay short; the
// safety logic is the same as with production defaults.
func fastOptions(t *testing.T) replace.Options {
	return replace.Options{
		Throttle:        replace.Rate(20 << 20),
		Poll:            300 * time.Millisecond,
		RegisterTimeout: 2 * time.Minute,
		StopTimeout:     time.Minute,
		LeaderTimeout:   30 * time.Second,
		LeaderSettle:    time.Second,
		LeaderPause:     200 * time.Millisecond,
		StallWarn:       10 * time.Second,
		StallAbort:      time.Minute,
		InSyncTimeout:   3 * time.Minute,
		StepRetries:     3,
		Log:             testbed.Logger(t),
	}
}

func newExecutor(t *testing.T, c *testbed.Cluster, o replace.Options) (*replace.Executor, *local.Provider, *replace.FileStore) {
	t.Helper()
	store, err := replace.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := local.NewProvider(c.Fleet)
	return replace.New(replace.KafkaCluster{Client: c.Client, Controllers: c.Controllers}, p, store, o), p, store
}

// assertReplaced checks, from the cluster's own metadata, that old is gone
// and nothing is left degraded or throttled.
func assertReplaced(t *testing.T, c *testbed.Cluster, old int32) {
	t.Helper()
	snap, err := health.Collect(testbed.Context(t), c.Client)
	if err != nil {
		t.Fatal(err)
	}
	if _, listed := snap.Broker(old); listed {
		t.Errorf("broker %d is still registered", old)
	}
	if _, exists := c.Fleet.Broker(old); exists {
		t.Errorf("broker %d's instance was not terminated", old)
	}
	for _, p := range snap.Partitions {
		if slices.Contains(p.Replicas, old) || slices.Contains(p.ISR, old) {
			t.Errorf("%s still has broker %d: replicas %v isr %v", p.TP, old, p.Replicas, p.ISR)
		}
	}
	if err := c.Settled(); err != nil {
		t.Error(err)
	}
	testbed.Eventually(t, 15*time.Second, c.NoThrottles)
}

func TestMoveReplacesBrokerWithoutLoss(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 8, 3, 2)
	c.Fill("orders", 40)
	run := c.StartLedger("orders", 200)

	oldInfo, _ := c.Fleet.Broker(2)
	o := fastOptions(t)
	o.Throttle = replace.Rate(8 << 20) // a copy of seconds, for the watcher to see
	o.Plan.Concurrency = 2
	o.Canary = canary.ForExecutor(c.Client, true, canary.Options{Seeds: c.Fleet.Bootstrap()})
	ex, _, store := newExecutor(t, c, o)
	// demote-old leaves broker 2 leading nothing, before the copy.
	var ledAfterDemote []string
	ex.Opts.OnEvent = func(ev string, _ *replace.Record) {
		if ev != "after:"+string(replace.StepDemoteOld) {
			return
		}
		ledAfterDemote = []string{}
		for _, topic := range []string{"orders", canary.DefaultTopic} {
			for _, p := range c.Partitions(topic) {
				if p.Leader == 2 {
					ledAfterDemote = append(ledAfterDemote, fmt.Sprintf("%s-%d", topic, p.Partition))
				}
			}
		}
	}
	ctx := testbed.Context(t)
	rec, err := ex.Begin(ctx, replace.Request{Broker: 2, Strategy: replace.StrategyMove})
	if err != nil {
		t.Fatal(err)
	}
	// While broker 4 copies a partition (broker 2 is still one of its
	// replicas), broker 4 must not lead it: it copies as the last replica.
	stopWatch := make(chan struct{})
	watched := make(chan []string)
	go func() {
		var led []string
		polls := 0
		for {
			select {
			case <-stopWatch:
				watched <- append(led, fmt.Sprintf("(%d polls)", polls))
				return
			case <-time.After(100 * time.Millisecond):
			}
			m, err := c.Metadata("orders")
			if err != nil {
				continue
			}
			polls++
			for _, tp := range m.Topics {
				for _, p := range tp.Partitions {
					if p.Leader == 4 && slices.Contains(p.Replicas, 2) {
						led = append(led, fmt.Sprintf("orders-%d replicas %v isr %v", p.Partition, p.Replicas, p.ISR))
					}
				}
			}
		}
	}()
	err = ex.Run(ctx, rec)
	close(stopWatch)
	led := <-watched
	if err != nil {
		t.Fatalf("replacement failed: %v", err)
	}
	c.StopLedger(run)
	assertReplaced(t, c, 2)
	if len(led) > 1 {
		t.Errorf("broker 4 led partitions it was still copying: %v", led)
	}
	if ledAfterDemote == nil || len(ledAfterDemote) > 0 {
		t.Errorf("after demote-old broker 2 still led %v (nil: the step never ran)", ledAfterDemote)
	}
	t.Logf("leader watcher: %v", led)
	for _, p := range c.Partitions("orders") {
		if p.Leader != p.Replicas[0] {
			t.Errorf("orders-%d led by %d, want its preferred replica %d (replicas %v)", p.Partition, p.Leader, p.Replicas[0], p.Replicas)
		}
	}

	saved, err := store.Load(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The canary ran beside the ledger, on its own topic (one partition
	// per broker, moved with the rest), and its verdict is in the record.
	if v := saved.Canary; v == nil || !v.Verified || v.Acked < 50 || v.Lost != 0 || v.Duplicated != 0 || v.During.P99Ms <= 0 {
		t.Errorf("canary verdict %+v, want verified with records acked during the move", v)
	} else {
		t.Logf("canary: %+v", *v)
	}
	if saved.Phase != replace.PhaseCompleted || saved.NewBroker != 4 || saved.Plan.Partitions < 8 || saved.MovesDone != saved.Plan.Partitions {
		t.Errorf("record: phase %s new %d partitions %d done %d", saved.Phase, saved.NewBroker, saved.Plan.Partitions, saved.MovesDone)
	}
	if b, ok := c.Fleet.Broker(4); !ok || b.Rack != oldInfo.Rack {
		t.Errorf("new broker 4 = %+v, want it in broker 2's rack %s", b, oldInfo.Rack)
	}
	for _, s := range saved.Steps {
		t.Logf("step %-20s %s", s.Step, s.Duration().Round(time.Millisecond))
	}
}

func TestGateRefusesMoveWhileAnotherBrokerIsDown(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 4)
	c.CreateTopic("orders", 4, 3, 2)
	if err := c.Fleet.KillNode(3); err != nil {
		t.Fatal(err)
	}
	ex, _, _ := newExecutor(t, c, fastOptions(t))
	ctx := testbed.Context(t)
	// Right after the kill Kafka has not noticed yet (the session has not
	// expired); the gate must refuse all the same, from the instance state.
	rec, err := ex.Begin(ctx, replace.Request{Broker: 1, Strategy: replace.StrategyMove})
	if err != nil {
		t.Fatal(err)
	}
	_ = ex.Run(ctx, rec)
	if rec.Phase != replace.PhaseRefused || !strings.Contains(rec.Error, "broker-down: broker 3") {
		t.Fatalf("phase %s: %s; want a refusal naming broker 3", rec.Phase, rec.Error)
	}
	if rec.NewInstance != "" || len(c.Fleet.Brokers()) != 4 {
		t.Errorf("a refused replacement launched something: %+v", rec)
	}
	t.Logf("refusal: %s", rec.Error)
}

func TestIdentityReplacesDeadBrokerWithSameID(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 20)
	run := c.StartLedger("orders", 200)
	if err := c.Fleet.KillNode(3); err != nil {
		t.Fatal(err)
	}
	ex, _, _ := newExecutor(t, c, fastOptions(t))
	ctx := testbed.Context(t)
	// Wait until Kafka has noticed the loss, as a real trigger would.
	testbed.Eventually(t, 60*time.Second, func() error {
		for _, p := range c.Partitions("orders") {
			if slices.Contains(p.ISR, 3) {
				return errors.New("broker 3 still in ISR")
			}
		}
		return nil
	})
	rec, err := ex.Begin(ctx, replace.Request{Broker: 3, Triggers: []replace.Trigger{"instance-lost"}})
	if err != nil {
		t.Fatal(err)
	}
	// The catch-up is throttled: the configs exist while broker 3 is out
	// of the ISR (polled), and are gone after.
	stopPoll := make(chan struct{})
	seen := make(chan map[string]bool)
	go func() {
		names := map[string]bool{}
		for {
			select {
			case <-stopPoll:
				seen <- names
				return
			case <-time.After(200 * time.Millisecond):
			}
			cfgs, _ := c.ReadThrottleConfigs() // a broker coming back may not answer yet
			for _, cfg := range cfgs {
				name, _, _ := strings.Cut(cfg, "=")
				names[name] = true
			}
		}
	}()
	err = ex.Run(ctx, rec)
	close(stopPoll)
	names := <-seen
	if err != nil {
		t.Fatalf("identity replacement failed: %v", err)
	}
	// The senders' throttles are set before the launch, so the poller
	// sees them; broker 3's own follower rate lives only from its
	// registration to its catch-up (under a second here): the record shows it.
	for _, want := range []string{"broker 1/leader.replication.throttled.rate", "broker 2/leader.replication.throttled.rate",
		"orders/leader.replication.throttled.replicas", "orders/follower.replication.throttled.replicas"} {
		if !names[want] {
			t.Errorf("during the catch-up %s was never seen; seen %v", want, names)
		}
	}
	own := slices.ContainsFunc(rec.Throttles, func(e replace.ThrottleEntry) bool {
		return e.Key == replace.ConfigKey{Kind: replace.BrokerConfig, Resource: "3", Name: "follower.replication.throttled.rate"}
	})
	if !own || !rec.ThrottlesRemoved {
		t.Errorf("record: throttles %v removed %v, want the catch-up's, broker 3's follower rate among them, recorded and removed", rec.Throttles, rec.ThrottlesRemoved)
	}
	testbed.Eventually(t, 15*time.Second, c.NoThrottles)
	if rec.Strategy != replace.StrategyIdentity || !rec.OldDead || rec.NewBroker != 3 {
		t.Errorf("record: strategy %s dead %v new %d, want identity for dead broker 3", rec.Strategy, rec.OldDead, rec.NewBroker)
	}
	for _, p := range c.Partitions("orders") {
		if len(p.ISR) != 3 {
			t.Errorf("partition %d ISR %v, want full", p.Partition, p.ISR)
		}
	}
	if b, _ := c.Fleet.Broker(3); b.Incarnation != 2 {
		t.Errorf("broker 3 incarnation %d, want 2 (a new instance)", b.Incarnation)
	}
	c.StopLedger(run)
}

func TestNewBrokerDyingMidCopyAbortsCleanly(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 60)
	run := c.StartLedger("orders", 200)

	o := fastOptions(t)
	o.Throttle = replace.Rate(2 << 20) // slow enough to kill the destination mid-copy
	o.Plan.Concurrency = 2
	var ex *replace.Executor
	var p *local.Provider
	killed := false
	o.OnEvent = func(ev string, r *replace.Record) {
		if strings.HasPrefix(ev, "moves-done:") && !killed {
			killed = true
			go func() {
				time.Sleep(500 * time.Millisecond) // the next moves are under way
				if err := p.Kill(r.NewInstance); err != nil {
					t.Errorf("kill new broker: %v", err)
				}
			}()
		}
	}
	ex, p, _ = newExecutor(t, c, o)
	ctx := testbed.Context(t)
	before := map[int32][]int32{}
	for _, part := range c.Partitions("orders") {
		before[part.Partition] = part.Replicas
	}
	rec, err := ex.Begin(ctx, replace.Request{Broker: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = ex.Run(ctx, rec)
	if err == nil || rec.Phase != replace.PhaseRolledBack {
		t.Fatalf("want a rollback, got phase %s err %v", rec.Phase, err)
	}
	t.Logf("rolled back: %s", rec.Error)
	// Every partition has its replicas back in their order (demote-old had
	// put broker 1 last where it was the preferred leader).
	for _, part := range c.Partitions("orders") {
		if !slices.Equal(part.Replicas, before[part.Partition]) {
			t.Errorf("orders-%d replicas %v after the rollback, want %v as before", part.Partition, part.Replicas, before[part.Partition])
		}
	}
	if b, ok := c.Fleet.Broker(1); !ok || !b.Running {
		t.Fatal("the old broker must keep serving after a rollback")
	}
	if err := c.Settled(); err != nil {
		t.Errorf("after rollback: %v", err)
	}
	if _, exists := c.Fleet.Broker(rec.NewBroker); exists {
		t.Errorf("the new broker %d's instance was not removed", rec.NewBroker)
	}
	testbed.Eventually(t, 15*time.Second, c.NoThrottles)
	// The dead broker's own throttle lives on in the cluster metadata under
	// its id; a broker given that id again would inherit it. Bring the id
	// back and look.
	if _, err := c.Fleet.StartBroker(ctx, rec.NewBroker, ""); err != nil {
		t.Fatal(err)
	}
	c.WaitBrokers(1, 2, 3, rec.NewBroker)
	testbed.Eventually(t, 15*time.Second, c.NoThrottles)
	c.StopLedger(run)
}

// An operator's own throttle must survive fleetd's, and throttles of a run
// that died after failing must be swept at the next start.
func TestThrottleSweepRestoresOperatorValue(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 4, 3, 2)
	c.Fill("orders", 8)
	ctx := testbed.Context(t)
	operator := "777000"
	if _, err := c.Admin.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "leader.replication.throttled.rate", Value: &operator}}, 1); err != nil {
		t.Fatal(err)
	}
	o := fastOptions(t)
	runCtx, crash := context.WithCancel(ctx)
	o.OnEvent = func(ev string, _ *replace.Record) {
		if ev == "after:throttle" {
			crash() // fleetd dies with its throttles in place
		}
	}
	ex, _, store := newExecutor(t, c, o)
	rec, err := ex.Begin(ctx, replace.Request{Broker: 2})
	if err != nil {
		t.Fatal(err)
	}
	_ = ex.Run(runCtx, rec)
	if rec.Step != replace.StepMove || len(rec.Throttles) == 0 {
		t.Fatalf("want a crash after throttling, got step %s with %d throttles", rec.Step, len(rec.Throttles))
	}
	// Broker configs reach the broker through the metadata log: wait for it.
	testbed.Eventually(t, 10*time.Second, func() error {
		if got := c.ThrottleConfigs(); !slices.Contains(got, "broker 1/leader.replication.throttled.rate=20971520") {
			return fmt.Errorf("fleetd's throttle not in place: %v", got)
		}
		return nil
	})
	// The run later ended failed without cleaning up (as a crash in a
	// rollback would leave it); the sweep must clean up exactly its configs.
	saved, err := store.Load(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	saved.Phase = replace.PhaseFailed
	if err := store.Save(ctx, saved); err != nil {
		t.Fatal(err)
	}
	n, err := replace.SweepThrottles(ctx, replace.KafkaCluster{Client: c.Client, Controllers: c.Controllers}, store)
	if err != nil || n != 1 {
		t.Fatalf("sweep cleaned %d records, err %v; want 1", n, err)
	}
	testbed.Eventually(t, 10*time.Second, func() error {
		if got, want := c.ThrottleConfigs(), []string{"broker 1/leader.replication.throttled.rate=777000"}; !slices.Equal(got, want) {
			return fmt.Errorf("after the sweep: %v, want only the operator's own %v", got, want)
		}
		return nil
	})
	if n, _ := replace.SweepThrottles(ctx, replace.KafkaCluster{Client: c.Client, Controllers: c.Controllers}, store); n != 0 {
		t.Errorf("a second sweep found %d records; it must be idempotent", n)
	}
}

// minISRProbe polls the cluster every 200 ms and remembers every partition
// it ever saw below min.insync.replicas. stop returns them.
func minISRProbe(t *testing.T, c *testbed.Cluster) (stop func() []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(testbed.Context(t))
	var seen []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if snap, err := health.Collect(ctx, c.Client); err == nil {
				for _, tp := range health.UnderMinISR(snap) {
					seen = append(seen, fmt.Sprintf("%s at %s", tp, time.Now().Format("15:04:05.000")))
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() []string { cancel(); <-done; return seen }
}

// Issue 12, seen from outside: an identity replacement of broker 2 whose
// record is at stop-old is resumed while broker 3's instance is stopped. The
// gate would refuse now; the resumed stop must ask the guard, wait, and roll
// back, with broker 2 serving and no partition below min ISR at any moment.
func TestResumedIdentityStopWaitsWhileAnotherBrokerIsStopped(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 6)
	ctx := testbed.Context(t)

	o := fastOptions(t)
	o.GuardWait = 8 * time.Second
	ex, p, store := newExecutor(t, c, o)
	rec, err := ex.Begin(ctx, replace.Request{Broker: 2, Strategy: replace.StrategyIdentity})
	if err != nil {
		t.Fatal(err)
	}
	gateCtx, die := context.WithCancel(ctx)
	ex.Opts.OnEvent = func(ev string, _ *replace.Record) {
		if ev == "after:gate" {
			die() // fleetd dies (or is paused) right after the gate
		}
	}
	_ = ex.Run(gateCtx, rec)
	ex.Opts.OnEvent = nil
	if rec.Step != replace.StepStopOld {
		t.Fatalf("set-up: record at %s, want stop-old", rec.Step)
	}

	insts, err := p.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range insts {
		if in.NodeID == 3 {
			if err := p.Stop(ctx, in.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	stopProbe := minISRProbe(t, c)
	resumed, err := store.Load(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	_ = ex.Run(ctx, resumed)
	if below := stopProbe(); len(below) > 0 {
		t.Errorf("partitions below min ISR while resuming: %v", below)
	}
	if resumed.Phase != replace.PhaseRolledBack || !strings.Contains(resumed.Error, "broker-down: node 3 is down") {
		t.Fatalf("phase %s error %q; want rolled back on broker-down", resumed.Phase, resumed.Error)
	}
	if b, ok := c.Fleet.Broker(2); !ok || !b.Running {
		t.Fatalf("broker 2 is not serving: %+v", b)
	}
	for _, part := range c.Partitions("orders") {
		if !slices.Contains(part.ISR, 2) {
			t.Errorf("partition %d ISR %v lacks broker 2", part.Partition, part.ISR)
		}
	}
	t.Logf("resumed replacement ended %s: %s", resumed.Phase, resumed.Error)
}

// Issue 12: an RF 1 topic whose only replica is on broker 3; broker 3 is
// SIGKILLed. Before Kafka has fenced it, the dry-run must name the
// partitions whose data is gone, not print a plan that seems to carry them.
func TestDryRunNamesDataLostOnADeadBroker(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("single", 3, 1, 1)
	c.CreateTopic("orders", 3, 3, 2)
	var onThree []health.TP
	for _, part := range c.Partitions("single") {
		if slices.Equal(part.Replicas, []int32{3}) {
			onThree = append(onThree, health.TP{Topic: "single", Partition: part.Partition})
		}
	}
	if len(onThree) == 0 {
		t.Fatal("set-up: no RF 1 partition on broker 3")
	}
	if err := c.Fleet.KillNode(3); err != nil {
		t.Fatal(err)
	}
	ex, _, _ := newExecutor(t, c, fastOptions(t))
	rec, err := ex.Preview(testbed.Context(t), replace.Request{Broker: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Lost, onThree) {
		t.Fatalf("lost = %v, want %v (phase %s: %s)", rec.Lost, onThree, rec.Phase, rec.Error)
	}
	if rec.Strategy != replace.StrategyIdentity || rec.Plan != nil {
		t.Errorf("strategy %s with plan %v: a dead broker's instance cannot be moved from", rec.Strategy, rec.Plan != nil)
	}
	t.Logf("preview: phase %s strategy %s lost %v", rec.Phase, rec.Strategy, rec.Lost)
}

// watchedProvider checks, at every Stop and Terminate, what the cluster's
// own metadata says right then: the instance's broker must hold no replica
// and sit in no ISR while another broker is down.
type watchedProvider struct {
	*local.Provider
	t    *testing.T
	c    *testbed.Cluster
	down func() bool // is the SIGKILLed broker down now?
	acts []string
}

func (w *watchedProvider) check(what, id string) {
	node := int32(-1)
	if insts, err := w.Provider.Instances(testbed.Context(w.t)); err == nil {
		for _, in := range insts {
			if in.ID == id {
				node = in.NodeID
			}
		}
	}
	snap, err := health.Collect(testbed.Context(w.t), w.c.Client)
	if err != nil {
		w.t.Errorf("%s %s: cannot read the cluster to check: %v", what, id, err)
		return
	}
	holds := !health.Empty(snap, node).Safe
	w.acts = append(w.acts, fmt.Sprintf("%s %s (broker %d, holds replicas %v, other broker down %v)", what, id, node, holds, w.down()))
	if holds && w.down() {
		w.t.Errorf("%s %s: broker %d holds replicas while another broker is down", what, id, node)
	}
}

func (w *watchedProvider) Stop(ctx context.Context, id string) error {
	w.check("stop", id)
	return w.Provider.Stop(ctx, id)
}

func (w *watchedProvider) Terminate(ctx context.Context, id string) error {
	w.check("terminate", id)
	return w.Provider.Terminate(ctx, id)
}

// Issue 12's acceptance: a move whose copy runs while another broker is
// SIGKILLed never stops or terminates anything that holds a replica while
// that broker is down; once it is back, the move finishes.
func TestMoveWhileAnotherBrokerIsKilledTakesNothingAway(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 16)
	run := c.StartLedger("orders", 100)

	isDown := func() bool { b, ok := c.Fleet.Broker(3); return !ok || !b.Running }
	o := fastOptions(t)
	o.Throttle = replace.Rate(2 << 20) // the copy takes long enough to kill a broker during it
	o.Plan.Concurrency = 2
	o.GuardWait = 3 * time.Minute
	o.StallAbort = 3 * time.Minute
	killed := false
	o.OnEvent = func(ev string, _ *replace.Record) {
		if !strings.HasPrefix(ev, "moves-submitted:") || killed {
			return
		}
		killed = true
		go func() {
			time.Sleep(500 * time.Millisecond)
			if err := c.Fleet.KillNode(3); err != nil {
				t.Errorf("kill broker 3: %v", err)
			}
			time.Sleep(12 * time.Second) // longer than the broker session (9 s): Kafka fences it
			if _, err := c.Fleet.StartBroker(testbed.Context(t), 3, ""); err != nil {
				t.Errorf("restart broker 3: %v", err)
			}
		}()
	}
	store, err := replace.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	wp := &watchedProvider{Provider: local.NewProvider(c.Fleet), t: t, c: c, down: isDown}
	ex := replace.New(replace.KafkaCluster{Client: c.Client, Controllers: c.Controllers}, wp, store, o)
	ctx := testbed.Context(t)
	rec, err := ex.Begin(ctx, replace.Request{Broker: 2})
	if err != nil {
		t.Fatal(err)
	}
	err = ex.Run(ctx, rec)
	for _, a := range wp.acts {
		t.Log(a)
	}
	if !killed {
		t.Fatal("broker 3 was never killed: the copy ended before the first batch")
	}
	if err != nil || rec.Phase != replace.PhaseCompleted {
		t.Fatalf("phase %s err %v; want the move to finish once broker 3 is back", rec.Phase, err)
	}
	testbed.Eventually(t, 2*time.Minute, c.Settled)
	c.StopLedger(run)
}

// Issue 12: brokers on SASL_SSL (SCRAM-SHA-512 over TLS), controllers on
// their own listener without SCRAM. fleetd connects to each with its own
// settings (kafka.controller_security) and replaces a broker end to end
// over them; a wrong password or CA is refused. With the controllers given
// the brokers' settings, the controller connection fails: one set of
// settings cannot serve both.
func TestMoveOverSASLSSLWithSeparateControllerSettings(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	opt, ca := testbed.SASLSSL(t)
	c := testbed.NewCluster(t, 3, opt)
	c.CreateTopic("orders", 4, 3, 2)
	c.Fill("orders", 8)
	ctx := testbed.Context(t)
	const password = "fleetd-test-password-0123"
	res, err := c.Admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "fleetd", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: password}})
	if err != nil || res.Error() != nil {
		t.Fatalf("create SCRAM user: %v %v", err, res.Error())
	}
	var secure []string
	for _, b := range c.Fleet.Brokers() {
		secure = append(secure, b.SecureAddr)
	}
	settings := func(pw, caFile string) kclient.Settings {
		return kclient.Settings{Bootstrap: secure, Controllers: c.Fleet.QuorumBootstrap(), DialTimeout: 3 * time.Second,
			TLS:                kclient.TLS{Enabled: true, CAFile: caFile},
			SASL:               kclient.SASL{Mechanism: "SCRAM-SHA-512", Username: "fleetd", Password: pw},
			ControllerSecurity: &kclient.Security{}}
	}
	// SCRAM credentials reach the brokers through the metadata log.
	testbed.Eventually(t, 30*time.Second, func() error {
		cl, _, err := settings(password, ca).Admin()
		if err != nil {
			return err
		}
		defer cl.Close()
		_, err = health.Collect(ctx, cl)
		return err
	})
	for name, s := range map[string]kclient.Settings{"wrong password": settings("not-it", ca), "wrong CA": settings(password, mustOtherCA(t))} {
		cl, _, err := s.Admin()
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := health.Collect(rctx, cl); err == nil {
			t.Errorf("%s: the cluster answered", name)
		}
		cancel()
		cl.Close()
	}
	shared := settings(password, ca)
	shared.ControllerSecurity = nil
	if cc, err := shared.ControllerClient(); err != nil {
		t.Fatal(err)
	} else {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := cc.Ping(rctx); err == nil {
			t.Error("the brokers' SASL_SSL settings reached the PLAINTEXT controllers: the separate settings are not needed?")
		}
		cancel()
		cc.Close()
	}

	cl, cc, closeAll, err := settings(password, ca).Clients()
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	store, err := replace.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ex := replace.New(replace.KafkaCluster{Client: cl, Controllers: cc}, local.NewProvider(c.Fleet), store, fastOptions(t))
	rec, err := ex.Begin(ctx, replace.Request{Broker: 2, Strategy: replace.StrategyMove})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Run(ctx, rec); err != nil {
		t.Fatalf("replacement over SASL_SSL: %v", err)
	}
	if len(rec.Throttles) == 0 {
		t.Error("no throttles were set: the controller connection was not exercised")
	}
	assertReplaced(t, c, 2)
}

// mustOtherCA writes a CA the brokers' certificate was not signed by.
func mustOtherCA(t *testing.T) string {
	_, other := testbed.SASLSSL(t)
	return other
}

// A move cordons the old broker first (KIP-1066): a topic created in the
// middle of the move gets no replica on it. After the move no cordon is left
// in the cluster's metadata for the retired id.
func TestMoveCordonsTheOldBroker(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 12)
	o := fastOptions(t)
	o.Throttle = replace.Rate(4 << 20)
	o.Plan.Concurrency = 2
	ex, _, _ := newExecutor(t, c, o)
	ctx := testbed.Context(t)
	created := false
	ex.Opts.OnEvent = func(ev string, r *replace.Record) {
		if !strings.HasPrefix(ev, "moves-submitted:") || created {
			return
		}
		created = true
		// Kafka 4.4 sometimes answers this CreateTopics with
		// UNKNOWN_TOPIC_OR_PARTITION while a reassignment runs, though the
		// controller created the topic; asking again settles it.
		testbed.Eventually(t, 30*time.Second, func() error {
			return workload.CreateTopic(ctx, c.Admin, workload.Topic{Name: "created-mid-move", Partitions: 12, ReplicationFactor: 2}, 20*time.Second)
		})
		for _, p := range c.Partitions("created-mid-move") {
			if slices.Contains(p.Replicas, 2) {
				t.Errorf("created-mid-move-%d placed on cordoned broker 2: replicas %v", p.Partition, p.Replicas)
			}
		}
	}
	rec, err := ex.Begin(ctx, replace.Request{Broker: 2, Strategy: replace.StrategyMove})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Run(ctx, rec); err != nil {
		t.Fatalf("replacement failed: %v", err)
	}
	if !created {
		t.Fatal("the move never submitted a batch")
	}
	if rec.Cordon == nil || !rec.CordonRemoved || rec.Cordon.Value != "*" || rec.CordonSkipped != "" {
		t.Errorf("record's cordon %+v removed %v skipped %q, want * set and removed", rec.Cordon, rec.CordonRemoved, rec.CordonSkipped)
	}
	for _, kv := range c.DynamicBrokerConfigs(2) {
		if strings.HasPrefix(kv, "cordoned.log.dirs=") {
			t.Errorf("retired broker 2 still cordoned in the metadata: %s", kv)
		}
	}
}

// A broker holding 2,000 partitions of one topic is replaced: the
// throttled-replica lists follow the window, so none outgrows Kafka's
// 32,767-byte config value (a list naming all 2,000 partitions' replicas
// is about 40 kB, and Kafka closes the connection on it).
func TestOneTopicOf2000PartitionsMoves(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("wide", 2000, 3, 2)
	c.Fill("wide", 20)
	o := fastOptions(t)
	ex, _, _ := newExecutor(t, c, o)
	ctx := testbed.Context(t)
	var longest int
	start := time.Now()
	ex.Opts.OnEvent = func(ev string, r *replace.Record) {
		for _, th := range r.Throttles {
			longest = max(longest, len(th.Value))
		}
		if strings.HasPrefix(ev, "moves-") {
			t.Logf("%6.1fs %s", time.Since(start).Seconds(), ev)
		}
	}
	rec, err := ex.Begin(ctx, replace.Request{Broker: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Run(ctx, rec); err != nil {
		t.Fatalf("replacement failed: %v", err)
	}
	if rec.Plan.Partitions != 2000 || longest > 32767 {
		t.Errorf("moved %d partitions, longest recorded config %d bytes", rec.Plan.Partitions, longest)
	}
	assertReplaced(t, c, 2)
	for _, s := range rec.Steps {
		t.Logf("step %-20s %s", s.Step, s.Duration().Round(time.Millisecond))
	}
	t.Logf("2,000 partitions replaced in %s; longest throttled-replica list %d bytes", time.Since(start).Round(time.Second), longest)
}
