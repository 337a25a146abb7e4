package replace

import (
	"context"
	"strconv"
	"time"
)

// rateSteer closes the loop between the throttle (the rate the operator
// asked for) and the rate the copy achieves. Kafka's replication quota is
// open-loop and bursty: a configured T moves 0.7-0.8 T. Every RateInterval
// during which moves were in flight throughout, the steer compares the rate
// written to the destination with the target and scales the configured
// broker rates by the ratio (at most x1.5 or x0.8 a step), within
// [T, RateCap x T]. Each new rate is recorded before it is set, like every
// throttle change, so the sweep and a rollback know it.
type rateSteer struct {
	e          *Executor
	r          *Record
	start      time.Time
	startBytes int64
	measured   int64
}

func newRateSteer(e *Executor, r *Record) *rateSteer { return &rateSteer{e: e, r: r} }

// observe takes the bytes copied so far and whether moves were in flight
// since the last call; it returns the last measured rate (bytes/s).
func (s *rateSteer) observe(ctx context.Context, copied int64, busy bool) int64 {
	now := s.e.Opts.Now()
	if !busy || s.start.IsZero() {
		s.start, s.startBytes = now, copied
		if !busy {
			s.start = time.Time{}
		}
		return s.measured
	}
	dt := now.Sub(s.start)
	if dt < s.e.Opts.RateInterval {
		return s.measured
	}
	s.measured = int64(float64(copied-s.startBytes) / dt.Seconds())
	s.start, s.startBytes = now, copied
	if s.e.Opts.RateCap > 1 {
		s.steer(ctx)
	}
	return s.measured
}

func (s *rateSteer) steer(ctx context.Context) {
	target, ok := s.e.throttleOf(s.r).BytesPerSec()
	applied := appliedRate(s.r)
	if !ok || !throttlesActive(s.r) || applied <= 0 || s.measured <= 0 {
		return // unthrottled, or no progress at all (the stall tracker's case)
	}
	factor := min(max(float64(target)/float64(s.measured), 0.8), 1.5)
	next := int64(float64(applied) * factor)
	next = min(max(next, target), int64(float64(target)*s.e.Opts.RateCap))
	if d := next - applied; d == 0 || float64(max(d, -d))/float64(applied) < 0.05 {
		return
	}
	if err := s.e.setAppliedRate(ctx, s.r, next); err != nil {
		s.e.logger(s.r).Warn().Err(err).Msg("could not steer the replication rate; the next interval tries again")
		return
	}
	s.e.logger(s.r).Info().Int64("target_bytes_per_sec", target).Int64("achieved_bytes_per_sec", s.measured).
		Int64("from_bytes_per_sec", applied).Int64("to_bytes_per_sec", next).Msg("replication rate steered towards the throttle")
}

// appliedRate is the rate fleetd's rate configs hold now (0: none set).
func appliedRate(r *Record) int64 {
	if !throttlesActive(r) {
		return 0
	}
	for _, t := range r.Throttles {
		if t.Key.Name == followerRate || t.Key.Name == leaderRate {
			n, _ := strconv.ParseInt(t.Value, 10, 64)
			return n
		}
	}
	return 0
}

// setAppliedRate records bps as the value of fleetd's rate configs, then
// sets them.
func (e *Executor) setAppliedRate(ctx context.Context, r *Record, bps int64) error {
	v := strconv.FormatInt(bps, 10)
	for i := range r.Throttles {
		if n := r.Throttles[i].Key.Name; n == leaderRate || n == followerRate {
			r.Throttles[i].Value = v
		}
	}
	if err := e.save(ctx, r); err != nil { // recorded before it is set
		return err
	}
	return e.Cluster.SetConfigs(ctx, rateKeys(r))
}

// rateKeys are fleetd's rate configs with their recorded values.
func rateKeys(r *Record) map[ConfigKey]*string {
	set := map[ConfigKey]*string{}
	for i := range r.Throttles {
		if n := r.Throttles[i].Key.Name; n == leaderRate || n == followerRate {
			set[r.Throttles[i].Key] = &r.Throttles[i].Value
		}
	}
	return set
}
