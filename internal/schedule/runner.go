package schedule

import (
	"context"
	"math/rand/v2"
	"time"
)

// Runner asks Chaos every Interval whether a disruption is due and hands
// each decided slot (fired or skipped, with its reason) to emit, once.
type Runner struct {
	Chaos    *Chaos
	Interval time.Duration // default 1 min
	// Candidates lists the brokers to pick from; on error the slot is
	// decided at a later tick (within Chaos.Grace), never skipped for it.
	Candidates     func() ([]Candidate, error)
	LastDisruption func() time.Time
	Rand           *rand.Rand
	// Active, if set, says whether this process may decide slots now (it
	// holds the lease); a standby decides nothing, so it does not use up a
	// slot the active process should take.
	Active func() bool
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
		if r.Active == nil || r.Active() {
			if cands, err := r.Candidates(); err == nil {
				d := r.Chaos.Decide(time.Now(), r.LastSlot, r.LastDisruption(), cands, r.Rand)
				if !d.Slot.IsZero() {
					r.LastSlot = d.Slot
					emit(d)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
