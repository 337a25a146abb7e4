package replace

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotRunning: no replacement is running to change.
var ErrNotRunning = errors.New("no replacement is running")

// ThrottleResult says what a throttle change did.
type ThrottleResult struct {
	Replacement string   `json:"replacement"`
	Previous    Throttle `json:"previous"`
	Throttle    Throttle `json:"throttle"`
	// Applied counts the broker configs changed in Kafka now; 0 when no
	// throttle is set at the moment (Message says why).
	Applied int    `json:"applied"`
	Message string `json:"message"`
}

type throttleChange struct {
	t    Throttle
	done chan throttleOutcome
}

type throttleOutcome struct {
	res ThrottleResult
	err error
}

// SetThrottle changes the running replacement's throttle: it is recorded in
// the record first (a crash keeps it) and applied to the brokers' configs at
// once, by the goroutine running the replacement, which a waiting poll wakes
// for it. It returns once applied, or when ctx ends.
func (e *Executor) SetThrottle(ctx context.Context, t Throttle) (ThrottleResult, error) {
	if !t.IsSet() {
		return ThrottleResult{}, errors.New("throttle: give a rate like 20MiB, or none")
	}
	ch := &throttleChange{t: t, done: make(chan throttleOutcome, 1)}
	e.mu.Lock()
	if !e.running {
		e.mu.Unlock()
		return ThrottleResult{}, ErrNotRunning
	}
	if e.pending != nil {
		e.pending.done <- throttleOutcome{err: errors.New("replaced by a newer throttle change")}
	}
	e.pending = ch
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	select {
	case out := <-ch.done:
		return out.res, out.err
	case <-ctx.Done():
		return ThrottleResult{}, fmt.Errorf("throttle change not confirmed yet (it applies at the replacement's next check): %w", ctx.Err())
	}
}

// applyPending applies a throttle change waiting for the running goroutine.
func (e *Executor) applyPending(ctx context.Context, r *Record) {
	e.mu.Lock()
	ch := e.pending
	e.pending = nil
	e.mu.Unlock()
	if ch != nil {
		res, err := e.changeThrottle(ctx, r, ch.t)
		ch.done <- throttleOutcome{res, err}
	}
}

// changeThrottle records t in r, then applies it to the rate configs fleetd
// set (if they are set now). "none" removes fleetd's throttles.
func (e *Executor) changeThrottle(ctx context.Context, r *Record, t Throttle) (ThrottleResult, error) {
	res := ThrottleResult{Replacement: r.ID, Previous: e.throttleOf(r), Throttle: t}
	r.Throttle = t
	adaptive := r.Adaptive != nil
	r.Adaptive = nil // an operator's rate is kept as given
	active := len(r.Throttles) > 0 && !r.ThrottlesRemoved
	bps, isRate := t.BytesPerSec()
	log := e.logger(r).Info().Str("from", res.Previous.String()).Str("to", t.String())
	switch {
	case !active && r.ThrottlesRemoved:
		res.Message = "recorded; fleetd's throttles are already removed, so nothing in Kafka changes now"
	case !active:
		res.Message = "recorded; the throttle step sets it"
	case !isRate:
		if err := e.save(ctx, r); err != nil {
			return res, err
		}
		if err := RemoveThrottles(ctx, e.Cluster, r); err != nil {
			return res, err
		}
		res.Applied, res.Message = len(r.Throttles), "fleetd's throttles removed: replicas copy unthrottled"
	default:
		if err := e.setAppliedRate(ctx, r, bps); err != nil {
			return res, fmt.Errorf("set the new rate (recorded; the next change or the resumed step retries): %w", err)
		}
		set := rateKeys(r)
		res.Applied, res.Message = len(set), fmt.Sprintf("applied to %d broker rate configs", len(set))
	}
	if adaptive {
		res.Message += "; the adaptive throttle is off for the rest of this replacement"
	}
	if err := e.save(ctx, r); err != nil {
		return res, err
	}
	log.Int("applied", res.Applied).Msg("throttle changed: " + res.Message)
	return res, nil
}

// throttleOf is the throttle r runs with (a record written before records
// carried one runs with the executor's).
func (e *Executor) throttleOf(r *Record) Throttle { return r.Throttle.Or(e.Opts.Throttle) }

// planOptions are r's plan options, the executor's where r has none.
func (e *Executor) planOptions(r *Record) PlanOptions {
	o := e.Opts.Plan
	if r.Concurrency > 0 {
		o.Concurrency = r.Concurrency
	}
	if r.Order != "" {
		o.Order = r.Order
	}
	o.Throttle, _ = e.throttleOf(r).BytesPerSec()
	return o
}

// pollSleep waits d, or less when a throttle change is waiting; false
// means ctx ended.
func (e *Executor) pollSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-e.wake:
	}
	return true
}
