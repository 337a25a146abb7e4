package schedule

import (
	"context"
	"math/rand/v2"
	"time"
)

// Runner asks Chaos every Interval whether a disruption is due and hands
// each decided slot (fired or skipped, with its reason) to emit, once.
type Runner struct {
	Chaos          *Chaos
	Interval       time.Duration // default 1 min
	Candidates     func() []Candidate
	LastDisruption func() time.Time
	Rand           *rand.Rand
	// LastSlot is the last slot decided; restore it from durable state so a
	// restarted fleetd does not decide a slot twice.
	LastSlot time.Time
}

// Run loops until ctx ends.
func (r *Runner) Run(ctx context.Context, emit func(Decision)) {
	iv := r.Interval
	if iv <= 0 {
		iv = time.Minute
	}
	tick := time.NewTicker(iv)
	defer tick.Stop()
	for {
		d := r.Chaos.Decide(time.Now(), r.LastSlot, r.LastDisruption(), r.Candidates(), r.Rand)
		if !d.Slot.IsZero() {
			r.LastSlot = d.Slot
			emit(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
