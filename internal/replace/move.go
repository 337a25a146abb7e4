package replace

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetd/fleetd/internal/health"
)

// move streams the plan's moves to the new broker (stream.go), continuing
// from the record's cursor; the copy's end is recorded for the leaders'
// settle time.
func (e *Executor) move(ctx context.Context, r *Record) error {
	if r.Plan == nil || len(r.Plan.Moves) == 0 {
		return nil
	}
	err := e.stream(ctx, r, streamSpec{what: fmt.Sprintf("move of %d partitions to broker %d", len(r.Plan.Moves), r.Plan.New),
		moves: r.Plan.Moves, dest: r.Plan.New, durable: true, cursor: r.MoveCursor})
	if err != nil {
		return err
	}
	return e.copied(ctx, r)
}

// copied records when the new replicas were all in sync (once).
func (e *Executor) copied(ctx context.Context, r *Record) error {
	if !r.CopiedAt.IsZero() {
		return nil
	}
	r.CopiedAt = e.Opts.Now()
	return e.save(ctx, r)
}

// stallTracker follows copied bytes. Below StallMinRate for StallWarn it
// reports a stall (a throttle below the partitions' ingress looks like this);
// no progress at all for StallAbort is fatal.
type stallTracker struct {
	lastBytes    int64
	lastAdvance  time.Time
	windowStart  time.Time
	windowBytes  int64
	warned       bool
	stalledState bool
	// inflight, if set, names the moves in flight and their progress for
	// the stall's report.
	inflight func() []string
}

// observe takes the progress so far (bytes copied, plus moves done) and
// whether there is nothing to stall on (the copy is done, or what is in
// flight has no bytes left and waits on Kafka alone): then the tracker
// starts over.
func (s *stallTracker) observe(e *Executor, r *Record, progress int64, waiting bool) (bool, error) {
	now := e.Opts.Now()
	if s.lastAdvance.IsZero() || waiting {
		s.lastAdvance, s.windowStart, s.lastBytes, s.windowBytes = now, now, progress, progress
		s.stalledState = false
		return false, nil
	}
	if progress > s.lastBytes {
		s.lastBytes, s.lastAdvance = progress, now
	}
	if now.Sub(s.windowStart) >= e.Opts.StallWarn {
		rate := float64(progress-s.windowBytes) / now.Sub(s.windowStart).Seconds()
		s.stalledState = rate < float64(e.Opts.StallMinRate)
		if s.stalledState && !s.warned {
			ev := e.logger(r).Warn()
			if s.inflight != nil {
				ev = ev.Strs("partitions", s.inflight())
			}
			ev.Float64("bytes_per_sec", rate).Float64("window_seconds", e.Opts.StallWarn.Seconds()).
				Msg("copy is slow: is the throttle below the partitions' write rate?")
			s.warned = true
		}
		s.windowStart, s.windowBytes = now, progress
	}
	if now.Sub(s.lastAdvance) >= e.Opts.StallAbort {
		return true, fatal("copy made no progress for %s", e.Opts.StallAbort)
	}
	return s.stalledState, nil
}

// cancelMoves (rollback) cancels this replacement's in-flight reassignments;
// a cancelled partition returns to its original replicas.
func (e *Executor) cancelMoves(ctx context.Context, r *Record) error {
	if r.Plan == nil {
		return nil
	}
	own := r.Own()
	listed := func(ctx context.Context) ([]health.TP, error) {
		snap, err := e.Cluster.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		var tps []health.TP
		for _, tp := range health.Reassigning(snap) {
			if own[tp] {
				tps = append(tps, tp)
			}
		}
		return tps, nil
	}
	tps, err := listed(ctx)
	if err != nil {
		return err
	}
	if err := e.Cluster.CancelReassign(ctx, tps); err != nil {
		return err
	}
	return e.poll(ctx, r, "cancellation of reassignments", 2*time.Minute, func(ctx context.Context) (bool, error) {
		tps, err := listed(ctx)
		return len(tps) == 0, err
	})
}

// moveBack (rollback) moves every partition that already reached the new
// broker back to the old one, and gives every partition its original order
// (its preferred leader) back, so the cluster ends as it began.
func (e *Executor) moveBack(ctx context.Context, r *Record) error {
	if r.Plan == nil {
		return nil
	}
	snap, err := e.Cluster.Snapshot(ctx)
	if err != nil {
		return err
	}
	current := map[health.TP][]int32{}
	for _, p := range snap.Partitions {
		current[p.TP] = p.Replicas
	}
	rev := r.Plan.Reverse(current)
	if rev.Partitions == 0 {
		return nil
	}
	e.logger(r).Warn().Int("partitions", rev.Partitions).Msg("moving partitions back to the old broker")
	// Not durable: a resumed rollback derives what is left from the cluster.
	return e.stream(ctx, r, streamSpec{what: fmt.Sprintf("move of %d partitions back to broker %d", rev.Partitions, r.Plan.Old),
		moves: rev.Moves, dest: r.Plan.Old})
}

// removeNew (rollback) retires the new broker if, and only if, it holds
// nothing; otherwise a person decides.
// findNewInstance makes sure r names its new instance: fleetd may have
// died inside Launch, leaving an instance whose id was never saved; it is
// found by its node id. found is false when there is none.
func (e *Executor) findNewInstance(ctx context.Context, r *Record) (found bool, err error) {
	if r.NewInstance != "" {
		return true, nil
	}
	in, found, err := e.instance(ctx, r.NewBroker)
	if err != nil || !found {
		return false, err
	}
	r.NewInstance = in.ID
	return true, nil
}

func (e *Executor) removeNew(ctx context.Context, r *Record) error {
	if r.Strategy != StrategyMove || r.NewBroker < 0 {
		return nil
	}
	if found, err := e.findNewInstance(ctx, r); !found {
		return err
	}
	if err := e.requireEmpty(ctx, r.NewBroker); err != nil {
		return err
	}
	if err := e.guardStep(ctx, r); err != nil {
		return err
	}
	if err := e.Provider.Terminate(ctx, r.NewInstance); err != nil {
		return fmt.Errorf("terminate new instance %s: %w", r.NewInstance, err)
	}
	return e.unregister(ctx, r, r.NewBroker)
}
