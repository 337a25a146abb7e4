// Package trigger holds the rules that turn the world into replacement
// requests: AWS events and lost instances (Events), the chaos schedule and
// its durable state (Chaos), and AMI drift (Drift). Each sits behind small
// interfaces (submit a request, list the fleet, read records), so that each
// rule is tested without AWS, Kafka or a daemon; internal/daemon only wires
// them and lists them as Sources.
package trigger

import (
	"context"
	"slices"
	"time"

	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/replace"
)

// Source is one trigger source the daemon runs; it runs until ctx ends.
type Source struct {
	Name string
	Run  func(ctx context.Context)
}

// Controller is what a trigger needs from the controller: submit a request
// (refused while this process is on standby) and read its status.
type Controller interface {
	Submit(ctx context.Context, r controller.Request) (controller.Submission, error)
	Status(ctx context.Context) (controller.Status, error)
}

// Fleet lists the cluster's instances.
type Fleet interface {
	Instances(ctx context.Context) ([]replace.Instance, error)
}

// Records reads replacement records (a replace.Store).
type Records interface {
	List(ctx context.Context) ([]*replace.Record, error)
}

// StrategyFor is the workflow a trigger asks for the node on in: the
// controller workflow for a KRaft controller's instance, else broker's
// (dflt: move for a serving broker, identity for a lost one).
func StrategyFor(in replace.Instance, dflt replace.Strategy) replace.Strategy {
	if in.IsController() {
		return replace.StrategyController
	}
	return dflt
}

// LastControllerChaos is when a chaos replacement of a controller last
// finished (zero: never; now while one runs or the records cannot be read).
func LastControllerChaos(ctx context.Context, recs Records, now time.Time) time.Time {
	all, err := recs.List(ctx)
	if err != nil {
		return now
	}
	var last time.Time
	for _, r := range all {
		if r.Strategy != replace.StrategyController || !slices.Contains(r.Triggers, replace.TriggerChaos) {
			continue
		}
		if !r.Phase.Terminal() {
			return now
		}
		if r.Phase == replace.PhaseCompleted && r.Finished.After(last) {
			last = r.Finished
		}
	}
	return last
}

// LastDisruption is when the cluster was last disrupted by a replacement
// (now while one is in flight, or when the records cannot be read: unknown
// counts as recent, which only delays a trigger).
func LastDisruption(ctx context.Context, recs Records, now time.Time) time.Time {
	all, err := recs.List(ctx)
	if err != nil {
		return now
	}
	var last time.Time
	for _, r := range all {
		switch {
		case !r.Phase.Terminal():
			return now
		case r.Phase != replace.PhaseRefused && r.Finished.After(last):
			last = r.Finished
		}
	}
	return last
}
