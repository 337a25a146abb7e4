package replace

import (
	"context"
	"errors"
)

// Preview runs the gate and the planner for req on a record that is never
// saved, and changes nothing: what --dry-run shows. A refusal comes back as
// the record's Phase and Error, not as an error.
func (e *Executor) Preview(ctx context.Context, req Request) (*Record, error) {
	if err := CheckRequest(req); err != nil {
		return nil, err
	}
	r := &Record{ID: "preview", OldBroker: req.Broker, NewBroker: -1, Strategy: req.Strategy, Triggers: triggersOr(req.Triggers),
		Throttle: e.startThrottle(req), Adaptive: e.adaptiveFor(req), Concurrency: req.Concurrency, Order: req.Order, Reason: req.Reason, Deadline: req.Deadline,
		Phase: PhaseRunning, Step: StepGate}
	// The first step of every table is its gate (the controller workflow
	// has its own).
	if err := e.workflow(r).Steps[0].Run(e, ctx, r); err != nil {
		var ref *refusedError
		if errors.As(err, &ref) {
			r.Phase, r.Error = PhaseRefused, ref.v.Summary()
			return r, nil
		}
		return nil, err
	}
	if r.Strategy == StrategyMove {
		if err := e.plan(ctx, r); err != nil {
			return nil, err
		}
	}
	return r, nil
}
