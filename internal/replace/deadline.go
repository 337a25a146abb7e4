package replace

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/fleetd/fleetd/internal/health"
)

// DeadlinePolicy is what fleetd does when a move cannot finish before its
// request's deadline (an AWS retirement's not-before).
type DeadlinePolicy string

const (
	// DeadlineRaiseThrottle starts the move now with the throttle raised
	// to what the deadline needs, at most deadlineRaiseCap times the
	// throttle (an adaptive throttle's max, when it has one).
	DeadlineRaiseThrottle DeadlinePolicy = "raise-throttle"
	// DeadlineIdentity replaces the broker by identity instead (a
	// controlled stop now, the same id on an empty disk, a throttled
	// catch-up), when the request left the strategy to fleetd.
	DeadlineIdentity DeadlinePolicy = "identity"
)

// DeadlinePolicies are the policies, for flags and config.
var DeadlinePolicies = []DeadlinePolicy{DeadlineRaiseThrottle, DeadlineIdentity}

// deadlineRaiseCap bounds a raised throttle, as a multiple of the one
// asked for: a deadline does not excuse flattening producers.
const deadlineRaiseCap = 4

// meetDeadline runs at the gate of a move whose request carries a deadline:
// it estimates the copy as the plan will (bytes, throttle, what past moves
// achieved), and when the copy and DeadlineMargin do not fit before the
// deadline it applies the policy. What it decided goes in the record (and
// so in the plan and the dry-run) and the log, as a warning when the
// deadline is missed.
func (e *Executor) meetDeadline(ctx context.Context, r *Record, snap *health.Snapshot, requested Strategy) {
	if r.Deadline.IsZero() || r.Strategy != StrategyMove {
		return
	}
	var bytes int64
	for _, p := range snap.Partitions {
		if slices.Contains(p.Replicas, r.OldBroker) {
			bytes += p.Bytes
		}
	}
	bps, throttled := e.throttleOf(r).BytesPerSec()
	if !throttled || bytes == 0 {
		r.DeadlineDecision = "no estimate (unthrottled, or nothing to copy): started at once"
		return
	}
	eff := 1.0
	if past, err := e.Store.List(ctx); err == nil {
		if f, _, ok := Efficiency(past); ok {
			eff = min(f, 1)
		}
	}
	took := func(rate int64) time.Duration {
		return time.Duration(float64(bytes) / (float64(rate) * eff) * float64(time.Second)).Round(time.Second)
	}
	eta := took(bps)
	left := r.Deadline.Sub(e.Opts.Now())
	usable := left - e.Opts.DeadlineMargin
	if eta <= usable {
		r.DeadlineDecision = fmt.Sprintf("fits: copy ETA %s, deadline in %s (%s kept for the rest of the workflow)", eta, left.Round(time.Second), e.Opts.DeadlineMargin)
		return
	}
	miss := fmt.Sprintf("copy ETA %s at %s/s does not fit before the deadline in %s (%s kept for the rest of the workflow)",
		eta, humanize.IBytes(uint64(bps)), left.Round(time.Second), e.Opts.DeadlineMargin)
	log := e.logger(r).Warn().Time("deadline", r.Deadline).Float64("eta_seconds", eta.Seconds())
	switch {
	case e.Opts.DeadlinePolicy == DeadlineIdentity && requested == "":
		r.Strategy = StrategyIdentity
		r.DeadlineDecision = miss + ": policy identity: the broker is replaced by identity instead (controlled stop now, the same id on an empty disk, throttled catch-up)"
	case e.Opts.DeadlinePolicy == DeadlineIdentity:
		r.DeadlineDecision = miss + ": policy identity, but the request asked for a move: moving at the asked throttle"
	default:
		ceiling := bps * deadlineRaiseCap
		if r.Adaptive != nil {
			ceiling = r.Adaptive.Max
		}
		need := ceiling
		if usable > 0 {
			need = min(int64(float64(bytes)/eff/usable.Seconds())+1, ceiling)
		}
		need = max(need, bps)
		r.Throttle = Rate(need)
		if r.Adaptive != nil {
			r.Adaptive.Min = min(max(need, r.Adaptive.Min), r.Adaptive.Max)
		}
		r.DeadlineDecision = fmt.Sprintf("%s: policy raise-throttle: throttle raised to %s/s, copy ETA %s", miss, humanize.IBytes(uint64(need)), took(need))
		if took(need) > usable {
			r.DeadlineDecision += fmt.Sprintf("; still past the deadline even at the ceiling (%dx the throttle, or the adaptive max): the instance may be retired before the copy ends, leaving its partitions a replica short until then", deadlineRaiseCap)
		}
	}
	log.Str("decision", r.DeadlineDecision).Msg("replacement deadline: " + string(e.Opts.DeadlinePolicy))
	e.event("deadline-missed", r)
}
