package replace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// crashCase is one workflow run that the crash driver kills at each of its
// durable events in turn.
type crashCase struct {
	name     string
	strategy Strategy
	// abortAfter, if set, aborts the first run right after that event: the
	// run then goes through the rollback table.
	abortAfter string
	// flows replaces the executor's tables (a test-only workflow).
	flows map[Strategy]*Workflow
	// node is the node replaced (default broker 2).
	node int32
}

// request moves 2 partitions at a time at 256 KiB/s (the window's bytes
// hold less than one more 1 MiB partition), so that the window fills,
// drains and refills in a move of broker 2's 4 partitions.
func (cc crashCase) request() Request {
	return Request{Broker: cmp.Or(cc.node, 2), Strategy: cc.strategy, Concurrency: 2, Throttle: Rate(256 << 10)}
}

// quorumWatch fails t when a durable event finds fewer caught-up voters than
// the fake quorum started with: a controller replacement adds before it
// removes, so there is no instant with fewer.
func quorumWatch(t *testing.T, c *fakeCluster, ev string) {
	if n := c.caughtUpVoters(); n < len(fakeControllers) {
		t.Errorf("at %s only %d caught-up voters, started with %d", ev, n, len(fakeControllers))
	}
}

// executor's fake cluster copies over virtual time (1 MiB/s shared by
// the copies in flight), so that kills land with moves in flight.
func (cc crashCase) executor() (*fakeCluster, *fakeProvider, *Executor) {
	c, p, ex := fakes()
	c.copyRate = 1 << 20
	if cc.flows != nil {
		ex.flows = cc.flows
	}
	return c, p, ex
}

// tables are the workflows cc's uninterrupted run must pass through.
func (cc crashCase) tables(ex *Executor) []*Workflow {
	w := ex.flows[cc.strategy]
	if cc.abortAfter != "" {
		return []*Workflow{w.Rollback}
	}
	return []*Workflow{w}
}

// killPoints runs cc once without a kill and returns its durable events,
// checking that every step of its tables produced one: the kill points are
// the table's steps, whatever the table holds.
func killPoints(t *testing.T, cc crashCase) []string {
	t.Helper()
	var seen []string
	synctest.Test(t, func(t *testing.T) {
		c, _, ex := cc.executor()
		ex.Opts.OnEvent = func(ev string, _ *Record) {
			quorumWatch(t, c, ev)
			seen = append(seen, ev)
			if ev == cc.abortAfter {
				ex.Abort("crash test abort")
			}
		}
		r, _ := ex.Begin(context.Background(), cc.request())
		_ = ex.Run(context.Background(), r)
		want := PhaseCompleted
		if cc.abortAfter != "" {
			want = PhaseRolledBack
		}
		if r.Phase != want {
			t.Fatalf("an uninterrupted %s run ended %s (%s), want %s", cc.name, r.Phase, r.Error, want)
		}
		for _, w := range cc.tables(ex) {
			for _, s := range w.Steps {
				if !slices.Contains(seen, "after:"+string(s.Step)) {
					t.Errorf("%s: step %s of table %s produced no durable event: the driver cannot kill there", cc.name, s.Step, w.Name)
				}
			}
		}
	})
	return seen
}

// runCrashCases kills each case at every durable event: fleetd dies right
// after the event was saved (its context ends and the executor is dropped),
// a new executor resumes from the store alone, and the replacement must end
// completed or rolled back, with no throttle left, the old broker serving
// (rolled back, and no new instance left) or gone (completed); a record that
// was rolling back when killed ends rolled back.
func runCrashCases(t *testing.T, cases []crashCase) {
	for _, cc := range cases {
		for _, ev := range killPoints(t, cc) {
			t.Run(cc.name+"/"+ev, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					c, p, first := cc.executor()
					ctx, die := context.WithCancel(context.Background())
					first.Opts.OnEvent = func(e string, _ *Record) {
						quorumWatch(t, c, e)
						if e == cc.abortAfter {
							first.Abort("crash test abort")
						}
						if e == ev {
							die()
						}
					}
					r, _ := first.Begin(ctx, cc.request())
					_ = first.Run(ctx, r)
					if r.Phase.Terminal() {
						return // the last event: nothing left to resume
					}
					killedPhase := r.Phase
					again := New(c, p, first.Store, first.Opts)
					again.flows = first.flows
					again.Opts.OnEvent = func(e string, _ *Record) { quorumWatch(t, c, e) }
					inflight, err := InFlight(context.Background(), first.Store)
					if err != nil || len(inflight) != 1 {
						t.Fatalf("after a kill at %s: %d records in flight, err %v", ev, len(inflight), err)
					}
					rec := inflight[0]
					_ = again.Run(context.Background(), rec)
					if rec.Phase != PhaseCompleted && rec.Phase != PhaseRolledBack {
						t.Fatalf("killed at %s, resumed: %s (%s)", ev, rec.Phase, rec.Error)
					}
					if killedPhase == PhaseRollingBack && rec.Phase != PhaseRolledBack {
						t.Fatalf("killed while rolling back at %s, resumed: %s", ev, rec.Phase)
					}
					if len(c.configs) != 0 {
						t.Errorf("throttles left after resuming from %s: %v", ev, c.configs)
					}
					quorumWatch(t, c, "the end")
					_, oldListed := p.insts[fmt.Sprintf("i-%d", rec.OldBroker)]
					if rec.Phase == PhaseCompleted && cc.strategy != StrategyIdentity && oldListed {
						t.Errorf("completed, but the old instance was not terminated")
					}
					if cc.strategy == StrategyController {
						want := fakeControllers
						if rec.Phase == PhaseCompleted {
							want = intendedVoters(rec)
						}
						if q, _ := c.Quorum(context.Background()); !slices.Equal(q.VoterIDs(), want) {
							t.Errorf("%s, voters %v, want %v", rec.Phase, q.VoterIDs(), want)
						}
					}
					if rec.Phase == PhaseRolledBack {
						if !oldListed {
							t.Errorf("rolled back, but the old instance is gone")
						}
						for id, in := range p.insts {
							if rec.NewBroker != rec.OldBroker && in.NodeID == rec.NewBroker {
								t.Errorf("rolled back, but the new instance %s is still there", id)
							}
						}
					}
				})
			})
		}
	}
}

// TestKilledAtEveryStepEventOfEveryWorkflow is the crash test over every
// durable event of the move, identity and rollback tables, in virtual time.
// The real-Kafka crash tests (cmd/fleetd) keep a few of these points.
func TestKilledAtEveryStepEventOfEveryWorkflow(t *testing.T) {
	runCrashCases(t, []crashCase{
		{name: "move", strategy: StrategyMove},
		{name: "identity", strategy: StrategyIdentity},
		{name: "rollback", strategy: StrategyMove, abortAfter: "moves-done:2"},
		{name: "controller", strategy: StrategyController, node: 9001},
		{name: "controller-rollback", strategy: StrategyController, node: 9001, abortAfter: "after:" + string(StepAwaitVoter)},
	})
}

// A step added to a workflow's table is picked up by the executor and the
// crash driver with no change anywhere else.
func TestANewStepInATestTableIsRunAndKilledAt(t *testing.T) {
	runs := 0
	extra := StepSpec{Step: "test-extra", OnFailure: RollBack, Run: func(e *Executor, ctx context.Context, r *Record) error {
		runs++
		return nil
	}}
	move := *moveFlow
	i := move.Index(StepThrottle) + 1
	move.Steps = slices.Insert(slices.Clone(move.Steps), i, extra)
	flows := map[Strategy]*Workflow{StrategyMove: &move, StrategyIdentity: identityFlow}
	cc := crashCase{name: "move-with-extra", strategy: StrategyMove, flows: flows}
	if points := killPoints(t, cc); !slices.Contains(points, "after:test-extra") {
		t.Fatalf("kill points %v lack the new step", points)
	}
	runs = 0
	runCrashCases(t, []crashCase{cc})
	if runs == 0 {
		t.Fatal("the new step never ran")
	}
}

// A step that is not in the record's table stops for a person, never guesses.
func TestAStepOutsideTheTableNeedsAPerson(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, ex := fakes()
		r, _ := ex.Begin(context.Background(), Request{Broker: 2})
		r.Step = "no-such-step"
		_ = ex.Run(context.Background(), r)
		if r.Phase != PhaseFailed || !strings.Contains(r.Error, `step "no-such-step" is not in the move workflow`) {
			t.Fatalf("phase %s error %q", r.Phase, r.Error)
		}
	})
}

// The tables' shape: the point of no return of each strategy, and that only
// the steps that act on the old instance ask the guard for it.
func TestWorkflowTables(t *testing.T) {
	if got := moveFlow.NoReturnAt(); got != StepStopOld {
		t.Errorf("move: point of no return at %s, want stop-old", got)
	}
	if got := identityFlow.NoReturnAt(); got != StepStopOld {
		t.Errorf("identity: point of no return at %s, want stop-old", got)
	}
	if got := controllerFlow.NoReturnAt(); got != StepRemoveOldVoter {
		t.Errorf("controller: point of no return at %s, want remove-old-voter", got)
	}
	for _, w := range []*Workflow{moveFlow, identityFlow, rollbackFlow, controllerFlow, controllerRollbackFlow} {
		for _, s := range w.Steps {
			if s.Run == nil {
				t.Errorf("%s/%s has no function", w.Name, s.Step)
			}
			retires := s.Step == StepStopOld || s.Step == StepTerminateOld
			if w == controllerFlow {
				// The controller is retired from the quorum first; stopping a
				// node that is no longer a voter takes nothing away.
				retires = s.Step == StepRemoveOldVoter
			}
			if s.RetiresOld != retires {
				t.Errorf("%s/%s: RetiresOld %v", w.Name, s.Step, s.RetiresOld)
			}
			if (w == controllerFlow || w == controllerRollbackFlow) && s.TakesAway != nil && s.Voters == VoterNone {
				t.Errorf("%s/%s takes a controller away but is judged by the partitions' blast radius", w.Name, s.Step)
			}
		}
	}
	r0 := &Record{}
	if got := controllerFlow.onFailure(r0, StepRemoveOldVoter); got != RollBack {
		t.Errorf("controller remove-old-voter before the removal was recorded: %s, want roll-back", got)
	}
	r := &Record{}
	if got := identityFlow.onFailure(r, StepStopOld); got != NothingToUndo {
		t.Errorf("identity stop-old before the stop was recorded: %s, want nothing-to-undo", got)
	}
	r.OldStopped = true
	if got := identityFlow.onFailure(r, StepStopOld); got != NoReturn {
		t.Errorf("identity stop-old after the stop was recorded: %s, want no-return", got)
	}
}

// TestClassify is the one table of what each error kind means.
func TestClassify(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want Class
	}{
		{"transient", live, errors.New("connection refused"), Retry},
		{"context deadline of one call", live, context.DeadlineExceeded, Retry},
		{"fatal", live, fatal("destination down"), Fatal},
		{"wrapped fatal", live, errors.Join(errors.New("x"), fatal("y")), Fatal},
		{"timeout", live, &timeoutError{what: "batch 1", bound: 1}, Fatal},
		{"guard", live, &guardError{act: "stop"}, Fatal},
		{"person", live, &personError{errors.New("not empty")}, NeedsPerson},
		{"person wrapping a timeout", live, &personError{&timeoutError{what: "in sync"}}, NeedsPerson},
		{"refused", live, &refusedError{}, Refused},
		{"aborted", live, ErrAborted, Aborted},
		{"interrupted", done, errors.New("anything"), Interrupted},
		{"interrupted wins over fatal", done, fatal("x"), Interrupted},
	}
	for _, c := range cases {
		if got := Classify(c.ctx, c.err); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// Every step whose table entry declares that it takes nodes away asks the
// blast-radius guard right before its act: positioned at each such step (a
// kill right after the step before it) while the fleet cannot be listed (so
// the guard cannot evaluate, and fails closed), the act never happens. The
// steps come from the tables. (Taking an empty broker away hurts nothing,
// so "another broker is down" would rightly not stop a move's stop-old.)
func TestEveryStepThatTakesNodesAwayAsksTheGuard(t *testing.T) {
	cases := []struct {
		cc crashCase
		w  *Workflow
	}{
		{crashCase{name: "move", strategy: StrategyMove}, moveFlow},
		{crashCase{name: "identity", strategy: StrategyIdentity}, identityFlow},
		{crashCase{name: "rollback", strategy: StrategyMove, abortAfter: "moves-done:2"}, rollbackFlow},
		{crashCase{name: "controller", strategy: StrategyController, node: 9001}, controllerFlow},
		{crashCase{name: "controller-rollback", strategy: StrategyController, node: 9001, abortAfter: "after:" + string(StepAwaitVoter)}, controllerRollbackFlow},
	}
	guarded := 0
	for _, c := range cases {
		for i, s := range c.w.Steps {
			if s.TakesAway == nil {
				continue
			}
			guarded++
			before := "rollback-begun"
			if i > 0 {
				before = "after:" + string(c.w.Steps[i-1].Step)
			}
			t.Run(c.cc.name+"/"+string(s.Step), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					fc, p, ex := c.cc.executor()
					ex.Opts.GuardWait = 5 * time.Minute
					ctx, die := context.WithCancel(context.Background())
					ex.Opts.OnEvent = func(e string, _ *Record) {
						if e == c.cc.abortAfter {
							ex.Abort("guard test abort")
						}
						if e == before {
							die()
						}
					}
					r, _ := ex.Begin(ctx, c.cc.request())
					_ = ex.Run(ctx, r)
					if r.Step != s.Step {
						t.Fatalf("set-up: record at %s, want %s", r.Step, s.Step)
					}
					stops, terms, changes := p.stops, p.terminations, fc.voterChanges
					p.mu.Lock()
					p.instancesErr = errCloud
					p.mu.Unlock()
					fc.mu.Lock()
					fc.quorumErr = errCloud
					fc.mu.Unlock()
					ex.Opts.OnEvent = nil
					_ = ex.Run(context.Background(), r)
					if p.stops != stops || p.terminations != terms || fc.voterChanges != changes {
						t.Fatalf("%s acted while the guard could not evaluate: stops %d->%d terminations %d->%d voter changes %d->%d", s.Step, stops, p.stops, terms, p.terminations, changes, fc.voterChanges)
					}
					if !strings.Contains(r.Error, "blast-radius guard") {
						t.Fatalf("%s ended %s (%s), want the guard's refusal", s.Step, r.Phase, r.Error)
					}
				})
			})
		}
	}
	if guarded != 10 {
		t.Fatalf("%d steps declare what they take away, want 10 (stop-old and terminate-old of move and of identity, rollback-remove-new; the controller's remove-old-voter, stop-old, terminate-old and both rollback steps)", guarded)
	}
}
