package replace

import (
	"context"
	"slices"
	"time"
)

// CanaryProbe is a canary writing sequenced records (acks=all, idempotent)
// to a topic of fleetd's own and reading them back while a workflow runs
// (internal/canary): the proof, attached to every record, that nothing
// acknowledged was lost.
type CanaryProbe interface {
	// Stop stops producing, reads everything back and counts.
	Stop(ctx context.Context) (CanaryCounts, error)
	// Latency is the q-quantile of the produce latencies of the records
	// sent in [from, to) (0: none).
	Latency(q float64, from, to time.Time) time.Duration
	// Topic is the canary's topic.
	Topic() string
}

// CanaryCounts are a canary's counts: acknowledged, read back, acknowledged
// but never read (lost), read twice (duplicated), never acknowledged.
type CanaryCounts struct {
	Acked         int64 `json:"acked"`
	Observed      int64 `json:"observed"`
	Lost          int64 `json:"lost"`
	Duplicated    int64 `json:"duplicated"`
	ProduceErrors int64 `json:"produce_errors"`
}

// LatencyWindow is the canary's produce latency over one phase.
type LatencyWindow struct {
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// CanaryVerdict is a record's proof: the counts, and produce latency before
// the workflow disturbed anything, during, and after it ended.
type CanaryVerdict struct {
	Topic string `json:"topic"`
	CanaryCounts
	Before LatencyWindow `json:"before"`
	During LatencyWindow `json:"during"`
	After  LatencyWindow `json:"after"`
	// Verified: the canary read back everything acknowledged, once.
	Verified bool `json:"verified"`
	// Partial: this fleetd picked the workflow up after a restart, and the
	// canary covers only what ran since.
	Partial bool `json:"partial,omitempty"`
	// Error says why there is no complete verdict (the canary could not
	// start or read back); it is not a loss.
	Error string `json:"error,omitempty"`
}

// disruptiveSteps begin the phase in which a workflow disturbs producers:
// "during" runs from the first of them to the workflow's end.
var disruptiveSteps = []Step{StepDemoteOld, StepMove, StepStopOld, StepAddVoter, StepCancelMoves}

// canaryRun is the probe of the workflow running now.
type canaryRun struct {
	probe   CanaryProbe
	started time.Time
	partial bool
}

// startCanary starts the canary for r, unless it is off or r is at its
// gate (a refused request disturbs nothing). A canary that cannot start is
// recorded, never fatal.
func (e *Executor) startCanary(ctx context.Context, r *Record) *canaryRun {
	if e.Opts.Canary == nil || r.Step == StepGate || r.Phase.Terminal() {
		return nil
	}
	resumed := len(r.Steps) > 1 // more than the gate ran before this fleetd
	probe, err := e.Opts.Canary(ctx, r.Plan == nil)
	if err != nil {
		e.logger(r).Warn().Err(err).Msg("the canary could not start; this replacement carries no canary verdict")
		r.Canary = &CanaryVerdict{Error: "canary did not start: " + err.Error()}
		return nil
	}
	return &canaryRun{probe: probe, started: e.Opts.Now(), partial: resumed}
}

// disturbedAt is when r's first disruptive step started under this canary
// (else end): "before" ends there, "during" begins.
func (c *canaryRun) disturbedAt(r *Record, end time.Time) time.Time {
	from := end
	for _, s := range r.Steps {
		if slices.Contains(disruptiveSteps, s.Step) && s.Started.Before(from) && !s.Started.Before(c.started) {
			from = s.Started
		}
	}
	return from
}

// calmLimit is the produce p99 the canary must be back under before the
// next group of leader elections: the adaptive throttle's target, else
// twice the canary's p99 before the workflow disturbed anything (four
// times its median so far when it has no such samples), at least 50 ms.
// 0: no canary, or no samples at all.
func (e *Executor) calmLimit(r *Record) time.Duration {
	c := e.canary
	if c == nil {
		return 0
	}
	if r.Adaptive != nil {
		return r.Adaptive.TargetP99
	}
	now := e.Opts.Now()
	base := 2 * c.probe.Latency(0.99, c.started, c.disturbedAt(r, now))
	if base <= 0 {
		base = 4 * c.probe.Latency(0.5, c.started, now)
	}
	if base <= 0 {
		return 0
	}
	return max(base, 50*time.Millisecond)
}

// calm waits, between groups of leader elections, while the canary's
// produce p99 over the last LeaderPause is above calmLimit, at most
// calmRounds pauses: a leader that has not caught up costs producers
// 3-10x p99, and elections should not pile onto a cluster still digesting
// the last group. It returns how many pauses it waited.
func (e *Executor) calm(ctx context.Context, r *Record) int {
	limit := e.calmLimit(r)
	if limit <= 0 {
		return 0
	}
	for i := range calmRounds {
		now := e.Opts.Now()
		p99 := e.canary.probe.Latency(0.99, now.Add(-e.Opts.LeaderPause), now)
		if p99 <= limit {
			return i
		}
		if i == 0 {
			e.logger(r).Info().Float64("canary_p99_seconds", p99.Seconds()).Float64("limit_seconds", limit.Seconds()).Msg("producers are slow: the next group of leader elections waits")
		}
		if !sleep(ctx, e.Opts.LeaderPause) {
			return i
		}
	}
	return calmRounds
}

// calmRounds bounds calm's wait at each group (in LeaderPauses): with at
// most maxLeaderGroups groups, a step waits at most a minute and a half.
const calmRounds = 5

// finishCanary lets the canary run CanaryTail past the workflow's end (the
// "after" phase), reads it back and records the verdict. A loss is logged
// as an error: the workflow ended, but its verification failed.
func (e *Executor) finishCanary(ctx context.Context, r *Record, c *canaryRun) {
	if c == nil {
		return
	}
	end := e.Opts.Now()
	sleep(ctx, e.Opts.CanaryTail)
	stopped := e.Opts.Now()
	counts, err := c.probe.Stop(ctx)
	v := &CanaryVerdict{Topic: c.probe.Topic(), CanaryCounts: counts, Partial: c.partial}
	from := c.disturbedAt(r, end)
	window := func(a, b time.Time) LatencyWindow {
		ms := func(q float64) float64 { return float64(c.probe.Latency(q, a, b).Microseconds()) / 1000 }
		return LatencyWindow{P50Ms: ms(0.5), P99Ms: ms(0.99)}
	}
	v.Before, v.During, v.After = window(c.started, from), window(from, end), window(end, stopped)
	v.Verified = err == nil && counts.Lost == 0 && counts.Duplicated == 0
	log := e.logger(r)
	switch {
	case err != nil:
		v.Error = "canary read-back incomplete: " + err.Error()
		log.Warn().Err(err).Msg("the canary could not read everything back; no verdict")
	case !v.Verified:
		log.Error().Int64("lost", counts.Lost).Int64("duplicated", counts.Duplicated).Int64("acked", counts.Acked).
			Msg("VERIFICATION FAILED: the canary lost or duplicated acknowledged records during this workflow")
	default:
		log.Info().Int64("acked", counts.Acked).Float64("during_p99_ms", v.During.P99Ms).Float64("before_p99_ms", v.Before.P99Ms).
			Msg("canary verified: every acknowledged record read back once")
	}
	r.Canary = v
	if err := e.save(context.WithoutCancel(ctx), r); err != nil {
		log.Warn().Err(err).Msg("could not save the canary verdict")
	}
}
