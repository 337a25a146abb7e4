package replace

import (
	"context"
	"fmt"
	"slices"

	"github.com/fleetd/fleetd/internal/health"
)

// OnFailure says what a failure (or an operator's abort) at a step leads to.
type OnFailure int

const (
	// NothingToUndo: nothing has changed yet; the record ends rolled back.
	NothingToUndo OnFailure = iota
	// RollBack: run the workflow's rollback table, which puts back what the
	// forward steps did.
	RollBack
	// NoReturn: past the point of no return. A failure needs a person (the
	// record ends failed); an abort is declined and the workflow finishes,
	// which is the only way back to full redundancy.
	NoReturn
)

func (o OnFailure) String() string {
	return [...]string{"nothing-to-undo", "roll-back", "no-return"}[o]
}

// StepSpec declares one step of a workflow.
type StepSpec struct {
	Step Step
	// Run does the step; it is idempotent (a resumed workflow repeats the
	// step it died in).
	Run func(e *Executor, ctx context.Context, r *Record) error
	// OnFailure is what a failure at this step leads to.
	OnFailure OnFailure
	// RetiresOld marks a step that acts on the old broker's instance: it asks
	// the blast-radius guard right before the act and records OldStopped
	// first. Until OldStopped is recorded the act has not begun, and a
	// failure is BeforeAct instead of OnFailure.
	RetiresOld bool
	BeforeAct  OnFailure
	// TakesAway declares the nodes the step's act takes out of the cluster
	// (and names the act): the step asks the blast-radius guard about them
	// right before acting (guardStep). A step that takes nothing away has
	// none, and cannot ask.
	TakesAway func(r *Record) (act string, nodes []int32)
	// Voters says the act is judged by the controller quorum (it removes
	// or stops voters) instead of by the partitions' blast radius.
	Voters VoterAct
}

// takesOld and takesNew are the TakesAway declarations of the steps that
// retire the old broker and that remove a rolled-back new one.
func takesOld(verb string) func(r *Record) (string, []int32) {
	return func(r *Record) (string, []int32) {
		return fmt.Sprintf("%s broker %d (instance %s)", verb, r.OldBroker, r.OldInstance), []int32{r.OldBroker}
	}
}

func takesNew(r *Record) (string, []int32) {
	return fmt.Sprintf("terminate new broker %d (instance %s)", r.NewBroker, r.NewInstance), []int32{r.NewBroker}
}

// Workflow is one declared table of steps. The executor's sequence, step
// handlers, rollback decisions and the crash tests' kill points all come
// from it: adding a step is one entry.
type Workflow struct {
	Name  string
	Steps []StepSpec
	// End is the step a record stands at once the table is done.
	End Step
	// EndPhase is the record's phase then.
	EndPhase Phase
	// Rollback undoes the steps whose OnFailure is RollBack.
	Rollback *Workflow
}

// Index is where step stands in w (-1: not in it).
func (w *Workflow) Index(step Step) int {
	return slices.IndexFunc(w.Steps, func(s StepSpec) bool { return s.Step == step })
}

// Spec returns step's declaration.
func (w *Workflow) Spec(step Step) (StepSpec, bool) {
	if i := w.Index(step); i >= 0 {
		return w.Steps[i], true
	}
	return StepSpec{}, false
}

// After is the step that follows step (End after the last).
func (w *Workflow) After(step Step) Step {
	i := w.Index(step)
	if i < 0 || i+1 >= len(w.Steps) {
		return w.End
	}
	return w.Steps[i+1].Step
}

// NoReturnAt is the first step past the point of no return ("" if none).
func (w *Workflow) NoReturnAt() Step {
	for _, s := range w.Steps {
		if s.OnFailure == NoReturn {
			return s.Step
		}
	}
	return ""
}

// onFailure is what a failure of r at step leads to.
func (w *Workflow) onFailure(r *Record, step Step) OnFailure {
	s, ok := w.Spec(step)
	if !ok {
		return NoReturn // an unknown step: fleetd must not guess
	}
	if s.RetiresOld && !r.OldStopped {
		return s.BeforeAct
	}
	return s.OnFailure
}

// The workflows. The package comment (doc.go) states them as numbered lists.
var (
	rollbackFlow = &Workflow{Name: "rollback", End: StepRolledBack, EndPhase: PhaseRolledBack, Steps: []StepSpec{
		{Step: StepCancelMoves, Run: (*Executor).cancelMoves, OnFailure: NoReturn},
		// Kafka 4.4 refuses a reassignment onto a cordoned broker
		// (INVALID_REPLICA_ASSIGNMENT): the old broker is uncordoned before
		// anything moves back to it.
		{Step: StepUncordon, Run: (*Executor).uncordon, OnFailure: NoReturn},
		{Step: StepMoveBack, Run: (*Executor).moveBack, OnFailure: NoReturn},
		{Step: StepRollbackUnthr, Run: (*Executor).unthrottle, OnFailure: NoReturn},
		{Step: StepRemoveNew, Run: (*Executor).removeNew, OnFailure: NoReturn, TakesAway: takesNew},
	}}
	moveFlow = &Workflow{Name: "move", End: StepDone, EndPhase: PhaseCompleted, Rollback: rollbackFlow, Steps: []StepSpec{
		{Step: StepGate, Run: (*Executor).gate, OnFailure: NothingToUndo},
		{Step: StepPlan, Run: (*Executor).plan, OnFailure: NothingToUndo},
		// Before the cordon: Kafka 4.4 refuses an order-only reassignment
		// that moves a cordoned broker within a replica list
		// (INVALID_REPLICA_ASSIGNMENT, seen in this project's tests).
		{Step: StepDemoteOld, Run: (*Executor).demoteOld, OnFailure: RollBack},
		{Step: StepCordon, Run: (*Executor).cordon, OnFailure: RollBack},
		{Step: StepLaunch, Run: (*Executor).launch, OnFailure: RollBack},
		{Step: StepAwaitRegister, Run: (*Executor).awaitRegister, OnFailure: RollBack},
		{Step: StepThrottle, Run: (*Executor).throttle, OnFailure: RollBack},
		{Step: StepMove, Run: (*Executor).move, OnFailure: RollBack},
		{Step: StepReorder, Run: (*Executor).reorder, OnFailure: RollBack},
		{Step: StepElectLeaders, Run: (*Executor).electLeaders, OnFailure: RollBack},
		{Step: StepUnthrottle, Run: (*Executor).unthrottle, OnFailure: RollBack},
		{Step: StepVerifyEmpty, Run: (*Executor).verifyEmpty, OnFailure: RollBack},
		// The old broker is empty: from here finishing is the way forward.
		{Step: StepStopOld, Run: (*Executor).stopOld, OnFailure: NoReturn, RetiresOld: true, BeforeAct: NoReturn, TakesAway: takesOld("stop")},
		{Step: StepTerminateOld, Run: (*Executor).terminateOld, OnFailure: NoReturn, RetiresOld: true, BeforeAct: NoReturn, TakesAway: takesOld("terminate")},
		// Controllers change a broker's configs only while it is
		// registered: the cordon goes before the registration does.
		{Step: StepUncordonOld, Run: (*Executor).uncordonOld, OnFailure: NoReturn},
		{Step: StepUnregisterOld, Run: (*Executor).unregisterOld, OnFailure: NoReturn},
	}}
	identityFlow = &Workflow{Name: "identity", End: StepDone, EndPhase: PhaseCompleted, Steps: []StepSpec{
		{Step: StepGate, Run: (*Executor).gate, OnFailure: NothingToUndo},
		// Until the stop is recorded nothing was touched; after it the old
		// disk may be gone and only finishing restores redundancy.
		{Step: StepStopOld, Run: (*Executor).stopOld, OnFailure: NoReturn, RetiresOld: true, BeforeAct: NothingToUndo, TakesAway: takesOld("stop")},
		{Step: StepTerminateOld, Run: (*Executor).terminateOld, OnFailure: NoReturn, RetiresOld: true, BeforeAct: NoReturn, TakesAway: takesOld("terminate")},
		// The catch-up is throttled like a move: set before the broker
		// starts fetching; its own follower rate once it is registered.
		{Step: StepThrottle, Run: (*Executor).throttleCatchUp, OnFailure: NoReturn},
		{Step: StepLaunch, Run: (*Executor).launch, OnFailure: NoReturn},
		{Step: StepAwaitRegister, Run: (*Executor).awaitRegister, OnFailure: NoReturn},
		{Step: StepThrottleNew, Run: (*Executor).throttleNew, OnFailure: NoReturn},
		{Step: StepAwaitInSync, Run: (*Executor).awaitInSync, OnFailure: NoReturn},
		{Step: StepUnthrottle, Run: (*Executor).unthrottle, OnFailure: NoReturn},
		{Step: StepElectLeaders, Run: (*Executor).electLeaders, OnFailure: NoReturn},
	}}
)

// DefaultWorkflows are the forward workflows by strategy.
func DefaultWorkflows() map[Strategy]*Workflow {
	return map[Strategy]*Workflow{StrategyMove: moveFlow, StrategyIdentity: identityFlow, StrategyController: controllerFlow}
}

// workflow is the table r is moving through now: the rollback of its
// strategy's table while rolling back. A record whose strategy the gate has
// not chosen yet is at the gate, the same first step in every table.
func (e *Executor) workflow(r *Record) *Workflow {
	w := e.flows[r.Strategy]
	if w == nil {
		w = e.flows[StrategyMove]
	}
	if r.Phase == PhaseRollingBack && w.Rollback != nil {
		return w.Rollback
	}
	return w
}

// handler is the function that runs r's step, from its table.
func (e *Executor) handler(r *Record, step Step) func(context.Context, *Record) error {
	if s, ok := e.workflow(r).Spec(step); ok {
		return func(ctx context.Context, r *Record) error { return s.Run(e, ctx, r) }
	}
	return func(context.Context, *Record) error {
		return &personError{fmt.Errorf("step %q is not in the %s workflow", step, e.workflow(r).Name)}
	}
}

// guardStep asks the blast-radius guard about what r's current step
// declares it takes away, right before the act (see guard).
func (e *Executor) guardStep(ctx context.Context, r *Record) error {
	s, ok := e.workflow(r).Spec(r.Step)
	if !ok || s.TakesAway == nil {
		return &personError{fmt.Errorf("step %s acts on a node without declaring it in its table (TakesAway): refusing to act unguarded", r.Step)}
	}
	act, nodes := s.TakesAway(r)
	check := func(ctx context.Context) health.Verdict { return e.WhatIf(ctx, nodes) }
	if s.Voters != VoterNone {
		check = func(ctx context.Context) health.Verdict { return e.quorumWhatIf(ctx, nodes, s.Voters) }
	}
	return e.guard(ctx, r, act, check)
}
