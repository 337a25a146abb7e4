package replace

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/fleetd/fleetd/internal/health"
)

func fakeExecutor(c *fakeCluster, p *fakeProvider) *Executor {
	return New(c, p, &memStore{}, Options{Poll: time.Second, StepRetries: 2, Log: zerolog.Nop()})
}

// fakes is a three-broker fake cluster, its provider and an executor over them.
func fakes() (*fakeCluster, *fakeProvider, *Executor) {
	c := newFakeCluster(1, 2, 3)
	p := newFakeProvider(c)
	return c, p, fakeExecutor(c, p)
}

// abortAt makes ex abort with reason right after the durable event ev.
func abortAt(ex *Executor, ev, reason string) {
	ex.Opts.OnEvent = func(e string, _ *Record) {
		if e == ev {
			ex.Abort(reason)
		}
	}
}

func TestRunCompletesAndRetiresOldBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, p, ex := fakes()
		r, _ := ex.Begin(context.Background(), Request{Broker: 2})
		if err := ex.Run(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if r.Phase != PhaseCompleted || r.NewBroker != 4 {
			t.Fatalf("phase %s new %d", r.Phase, r.NewBroker)
		}
		if _, ok := p.insts["i-2"]; ok {
			t.Error("old instance not terminated")
		}
		if len(c.configs) != 0 {
			t.Errorf("throttles left: %v", c.configs)
		}
	})
}

// After the old broker began retiring there is nothing to roll back; a
// failure there must end in "failed" after bounded retries, never loop.
func TestFailureWhileRetiringEndsFailedWithoutLooping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster(1, 2, 3)
		p := newFakeProvider(c)
		p.terminateErr = errCloud
		ex := fakeExecutor(c, p)
		r, _ := ex.Begin(context.Background(), Request{Broker: 2})
		err := ex.Run(context.Background(), r)
		if err == nil || r.Phase != PhaseFailed || r.Step != StepTerminateOld {
			t.Fatalf("phase %s step %s err %v; want failed at terminate-old", r.Phase, r.Step, err)
		}
		if p.terminations != 3 {
			t.Errorf("terminate tried %d times, want 3 (StepRetries 2 + 1)", p.terminations)
		}
	})
}

func TestAbortAfterRetirementBeganIsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, ex := fakes()
		abortAt(ex, "after:stop-old", "operator changed their mind")
		r, _ := ex.Begin(context.Background(), Request{Broker: 2})
		if err := ex.Run(context.Background(), r); err != nil || r.Phase != PhaseCompleted {
			t.Fatalf("phase %s err %v; an abort after stop-old must finish the replacement", r.Phase, err)
		}
	})
}

func TestAbortDuringMoveRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, p, ex := fakes()
		abortAt(ex, "after:throttle", "")
		r, _ := ex.Begin(context.Background(), Request{Broker: 2})
		_ = ex.Run(context.Background(), r)
		if r.Phase != PhaseRolledBack || r.Error != "aborted by operator" {
			t.Fatalf("phase %s error %q, want rolled-back by the operator", r.Phase, r.Error)
		}
		if _, ok := p.insts["i-2"]; !ok {
			t.Error("the old instance must keep serving")
		}
		for _, in := range p.insts {
			if in.NodeID == r.NewBroker {
				t.Errorf("new instance %s not removed", in.ID)
			}
		}
		if len(c.configs) != 0 {
			t.Errorf("throttles left: %v", c.configs)
		}
	})
}

func TestGateRefusalChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster(1, 2, 3)
		c.snap.Partitions[0].ISR = []int32{c.snap.Partitions[0].Replicas[0]} // under min ISR
		p := newFakeProvider(c)
		ex := fakeExecutor(c, p)
		r, _ := ex.Begin(context.Background(), Request{Broker: 2})
		_ = ex.Run(context.Background(), r)
		if r.Phase != PhaseRefused || len(p.insts) != 3+len(fakeControllers) || c.reassign != 0 {
			t.Fatalf("phase %s instances %d reassignments %d; want refused with nothing changed", r.Phase, len(p.insts), c.reassign)
		}
	})
}

// Kafka notices a dead broker only when its session expires; a stopped
// instance the infrastructure reports must refuse the gate at once.
func TestGateRefusesWhenAnotherInstanceIsStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster(1, 2, 3)
		p := newFakeProvider(c)
		in := p.insts["i-3"]
		in.State = StateStopped
		p.insts["i-3"] = in // Kafka still lists broker 3 as alive
		ex := fakeExecutor(c, p)
		r, _ := ex.Begin(context.Background(), Request{Broker: 1})
		_ = ex.Run(context.Background(), r)
		if r.Phase != PhaseRefused || !strings.Contains(r.Error, "broker-down: broker 3's instance i-3 is stopped") ||
			!slices.Equal(r.Refusals, []health.Code{health.CodeBrokerDown}) {
			t.Fatalf("phase %s error %q refusals %v", r.Phase, r.Error, r.Refusals)
		}
	})
}

func TestAbortDoesNotCarryOverToTheNextReplacement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, ex := fakes()
		abortAt(ex, "after:throttle", "first one only")
		first, _ := ex.Begin(context.Background(), Request{Broker: 2})
		_ = ex.Run(context.Background(), first)
		if first.Phase != PhaseRolledBack || first.AbortRequested != "first one only" {
			t.Fatalf("first: phase %s abort %q", first.Phase, first.AbortRequested)
		}
		ex.Opts.OnEvent = nil
		second, _ := ex.Begin(context.Background(), Request{Broker: 3})
		if err := ex.Run(context.Background(), second); err != nil || second.Phase != PhaseCompleted {
			t.Fatalf("second: phase %s err %v; the first abort leaked into it", second.Phase, err)
		}
	})
}

// A move cordons the old broker before anything else changes, keeps the
// cordon while the old broker lives, and removes it before its registration
// goes; on a Kafka without cordoning the move goes on and says why.
func TestMoveCordonsOldBrokerOrSaysWhyNot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, p, ex := fakes()
		var atLaunch, atStop bool
		ex.Opts.OnEvent = func(ev string, _ *Record) {
			_, cordoned := c.configs[cordonKey(2)]
			switch ev {
			case "after:" + string(StepCordon):
				atLaunch = cordoned && len(p.insts) == 3+len(fakeControllers)
			case "after:" + string(StepStopOld):
				atStop = cordoned
			}
		}
		r, _ := ex.Begin(context.Background(), Request{Broker: 2})
		if err := ex.Run(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if !atLaunch || !atStop || r.Cordon == nil || !r.CordonRemoved || len(c.configs) != 0 {
			t.Fatalf("cordoned before launch %v, still at stop %v, record %+v removed %v, left %v", atLaunch, atStop, r.Cordon, r.CordonRemoved, c.configs)
		}

		c, p, ex = fakes()
		c.noCordon = true
		r, _ = ex.Begin(context.Background(), Request{Broker: 2})
		if err := ex.Run(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if r.Cordon != nil || !strings.Contains(r.CordonSkipped, "KIP-1066, Kafka 4.3") {
			t.Fatalf("older Kafka: cordon %+v, skipped %q", r.Cordon, r.CordonSkipped)
		}
	})
}

// A controller replacement after which a broker could not find the quorum
// again (its bootstrap servers name only the leaving controller) is refused;
// a list that also names a staying controller, or a name that follows the
// controllers, is not.
func TestControllerGateRefusesToStrandBrokersBootstrap(t *testing.T) {
	for _, tc := range []struct {
		bootstrap []string
		refused   bool
	}{
		{[]string{"10.0.0.2:9093"}, true},
		{[]string{"10.0.0.2:9093", "10.0.0.3:9093"}, false},
		{[]string{"controllers.internal:9093"}, false},
	} {
		synctest.Test(t, func(t *testing.T) {
			c, p, ex := fakes()
			for i := range c.quorum.Voters {
				c.quorum.Voters[i].Endpoints = []string{fmt.Sprintf("CONTROLLER://10.0.0.%d:9093", i+1)}
			}
			c.bootstrap = tc.bootstrap
			r, _ := ex.Begin(context.Background(), Request{Broker: 9001, Strategy: StrategyController})
			_ = ex.Run(context.Background(), r)
			refused := r.Phase == PhaseRefused && strings.Contains(r.Error, "bootstrap-stranded") && strings.Contains(r.Error, "DNS name")
			if refused != tc.refused {
				t.Fatalf("bootstrap %v: %s %q, want refused %v", tc.bootstrap, r.Phase, r.Error, tc.refused)
			}
			if tc.refused && len(p.insts) != 3+len(fakeControllers) {
				t.Errorf("refused, yet %d instances", len(p.insts))
			}
		})
	}
}

// lookupProvider is a fakeProvider that also finds terminated instances,
// as the EC2 provider does.
type lookupProvider struct {
	*fakeProvider
	gone map[string]Instance
}

func (l lookupProvider) Lookup(_ context.Context, id string) (Instance, bool, error) {
	in, ok := l.gone[id]
	return in, ok, nil
}

// A lost controller (its instance terminated, its voter behind): the event
// names the instance, the gate excuses the dead voter, and the replacement
// adds a new voter in the same zone and removes the dead one.
func TestLostControllerIsReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster(1, 2, 3)
		fp := newFakeProvider(c)
		dead := fp.insts["i-9001"]
		delete(fp.insts, "i-9001")
		c.setController(9001, false)
		dead.State = StateTerminated
		p := lookupProvider{fp, map[string]Instance{"i-9001": dead}}
		ex := New(c, p, &memStore{}, Options{Poll: time.Second, StepRetries: 2, Log: zerolog.Nop()})
		r, _ := ex.Begin(context.Background(), Request{Broker: 9001, Strategy: StrategyController, Instance: "i-9001"})
		if err := ex.Run(context.Background(), r); err != nil {
			t.Fatalf("lost controller: %v (%s)", err, r.Error)
		}
		q, _ := c.Quorum(context.Background())
		if !slices.Equal(q.VoterIDs(), []int32{9000, 9002, r.NewBroker}) || !r.OldDead || r.Zone != dead.Zone {
			t.Fatalf("voters %v, old dead %v, zone %q (want %q)", q.VoterIDs(), r.OldDead, r.Zone, dead.Zone)
		}
	})
}
