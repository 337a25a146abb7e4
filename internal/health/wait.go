package health

import (
	"context"
	"fmt"
	"time"
)

// WaitOptions bound WaitHealthy. Defaults follow Yelp's kafka-rolling-restart:
// 12 consecutive healthy checks, 10 s apart, giving up after 600 s.
type WaitOptions struct {
	Consecutive int
	Interval    time.Duration
	Limit       time.Duration
	// OnCheck, if set, sees every verdict with the current healthy streak.
	OnCheck func(v Verdict, streak int)
}

func (o *WaitOptions) defaults() {
	if o.Consecutive <= 0 {
		o.Consecutive = 12
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Limit <= 0 {
		o.Limit = 600 * time.Second
	}
}

// NotHealthyError is returned when the limit passes first; Last says why.
type NotHealthyError struct {
	Limit time.Duration
	Last  Verdict
}

func (e *NotHealthyError) Error() string {
	return fmt.Sprintf("not healthy for the required consecutive checks within %s; last check: %s", e.Limit, e.Last.Summary())
}

// WaitHealthy runs check every Interval until it is safe Consecutive times in
// a row, and returns the last verdict. Any unsafe check resets the streak. It
// returns a *NotHealthyError after Limit, or ctx's error if ctx ends first.
func WaitHealthy(ctx context.Context, o WaitOptions, check func(context.Context) Verdict) (Verdict, error) {
	o.defaults()
	limit := time.NewTimer(o.Limit)
	defer limit.Stop()
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	streak := 0
	var last Verdict
	for {
		last = check(ctx)
		if last.Safe {
			streak++
		} else {
			streak = 0
		}
		if o.OnCheck != nil {
			o.OnCheck(last, streak)
		}
		if streak >= o.Consecutive {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-limit.C:
			return last, &NotHealthyError{Limit: o.Limit, Last: last}
		case <-tick.C:
		}
	}
}
