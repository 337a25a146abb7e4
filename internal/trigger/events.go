package trigger

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/events"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/schedule"
)

// Lookup finds an instance of the cluster by id in any state (ok false: not
// one of the cluster's).
type Lookup interface {
	Lookup(ctx context.Context, id string) (replace.Instance, bool, error)
}

// Events is the policy for AWS events: what one means for the queue.
type Events struct {
	Ctl     Controller
	Lookup  Lookup
	Records Records
	// ReplaceOn are the kinds that queue a replacement; others are logged.
	ReplaceOn []events.Kind
	// Window and LeadTime: a scheduled event's replacement waits for the
	// maintenance window only if it opens at least LeadTime before the event.
	Window   schedule.Window
	LeadTime time.Duration
	// Counted sees each event known to be about this cluster (metrics).
	Counted func(events.Kind)
	Log     zerolog.Logger
	Now     func() time.Time
}

// Handle is an events.Dispatcher handler: nil means dealt with (the message
// may be deleted); an error, try again later.
func (h *Events) Handle(ctx context.Context, ev events.Event) error {
	log := h.Log.With().Str("event", ev.ID).Str("kind", string(ev.Kind)).Str("instance", ev.InstanceID).Str("source", ev.Source).Logger()
	if ev.Kind == events.KindUnknown {
		log.Info().Str("description", ev.Description).Msg("event of no interest to fleetd")
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	inst, ok, err := h.Lookup.Lookup(lctx, ev.InstanceID)
	if err != nil {
		return err
	}
	if !ok {
		log.Info().Msg("event for an instance that is not a node of this cluster; ignored")
		return nil
	}
	// Counted once known to be about this cluster: a flood of other
	// instances' events must not move fleetd's metrics.
	if h.Counted != nil {
		h.Counted(ev.Kind)
	}
	log = log.With().Int32("node", inst.NodeID).Str("role", string(replace.RoleOf(inst))).Logger()
	if ev.Kind == events.KindInstanceLost && !lostState(inst.State) {
		log.Warn().Str("said", ev.State).Str("state", string(inst.State)).
			Msg("an event says the instance is lost but EC2 says it is not; not believed, nothing queued")
		return nil
	}
	if !slices.Contains(h.ReplaceOn, ev.Kind) {
		log.Warn().Time("not_before", ev.NotBefore).Str("description", ev.Description).Msg("event logged only (not in events.replace_on)")
		return nil
	}
	if ev.Kind == events.KindInstanceLost {
		if own, err := ownInstance(ctx, h.Records, ev.InstanceID); err != nil {
			return err
		} else if own != "" {
			log.Info().Str("replacement", own).Msg("state change caused by fleetd's own replacement; nothing to do")
			return nil
		}
	}
	// A controller's instance goes to the controller workflow, a lost one
	// too: there the dead voter is excused by the gate and replaced by a new
	// voter; a broker's lost instance gets its identity back.
	req := controller.Request{Broker: inst.NodeID, Triggers: []replace.Trigger{replace.Trigger(ev.Kind)}, Strategy: StrategyFor(inst, "")}
	if ev.Kind == events.KindInstanceLost {
		req.Emergency, req.Strategy, req.Instance = true, StrategyFor(inst, replace.StrategyIdentity), ev.InstanceID
	} else {
		now := time.Now
		if h.Now != nil {
			now = h.Now
		}
		req.Deadline = ev.NotBefore
		req.NotBefore = StartAt(h.Window, now(), req.Deadline, h.LeadTime)
	}
	sub, err := h.Ctl.Submit(ctx, req)
	if err != nil {
		return fmt.Errorf("queue a replacement of %s %d: %w", replace.RoleOf(inst), inst.NodeID, err)
	}
	log.Warn().Str("request", sub.Request.ID).Str("outcome", string(sub.Outcome)).Str("into", sub.Into).Time("deadline", req.Deadline).
		Time("not_before", req.NotBefore).Bool("emergency", req.Emergency).Msg("replacement requested for an AWS event")
	return nil
}

// lostState: an instance in this state no longer serves.
func lostState(s replace.InstanceState) bool {
	switch s {
	case replace.StateStopping, replace.StateStopped, replace.StateShuttingDown, replace.StateTerminated:
		return true
	}
	return false
}

// StartAt is when a scheduled event's replacement may start: now inside the
// maintenance window; otherwise when the window next opens, unless that is
// less than lead before the deadline (AWS acts first), then now. A zero
// result means now.
func StartAt(w schedule.Window, now, deadline time.Time, lead time.Duration) time.Time {
	next := w.Next(now)
	if next.IsZero() || !next.After(now) {
		return time.Time{}
	}
	if !deadline.IsZero() && deadline.Sub(next) < lead {
		return time.Time{}
	}
	return next
}

// ownInstance names the replacement that stops or removes instance id
// ("" if none): fleetd's own stop-old and terminate-old steps, and a rolled
// back launch, cause state changes that are no loss.
func ownInstance(ctx context.Context, recs Records, id string) (string, error) {
	all, err := recs.List(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range all {
		if r.OldInstance == id || (r.NewInstance == id && r.Phase != replace.PhaseCompleted) {
			return r.ID, nil
		}
	}
	return "", nil
}
