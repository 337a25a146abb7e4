package replace

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/fleetd/fleetd/internal/health"
)

// Adaptive is an adaptive throttle (replace.throttle: {min, max,
// target_p99}): the rate starts at Min and, every RateInterval of the
// copy, rises by a tenth of Max-Min while producers are healthy, and halves
// (down to Min), with the window's concurrency, when they are not: the
// canary's produce p99 over the interval is above TargetP99, or a partition
// that is not moving is under its min.insync.replicas. Additive increase,
// multiplicative decrease, as Cruise Control's concurrency adjuster does;
// the headroom left is for live traffic, as kafka-kit's autothrottle keeps.
// A copy falling behind its partitions' writes asks for more the same way.
// Each new rate is recorded before it is set.
type Adaptive struct {
	Min       int64         `json:"min"`
	Max       int64         `json:"max"`
	TargetP99 time.Duration `json:"target_p99"`
	// Window is the window's concurrency now (0: the configured one).
	Window int `json:"window,omitempty"`
	// Changes counts the rate changes made (a record's summary).
	Changes int `json:"changes,omitempty"`
}

// Check refuses an adaptive throttle that cannot work.
func (a Adaptive) Check() error {
	switch {
	case a.Min <= 0:
		return fmt.Errorf("adaptive throttle: min %d, want a rate above 0 like 20MiB", a.Min)
	case a.Max < a.Min:
		return fmt.Errorf("adaptive throttle: max %s is below min %s", humanize.IBytes(uint64(a.Max)), humanize.IBytes(uint64(a.Min)))
	case a.TargetP99 <= 0:
		return fmt.Errorf("adaptive throttle: target_p99 %s, want the produce p99 producers can bear, like 200ms", a.TargetP99)
	}
	return nil
}

// step is the additive increase.
func (a Adaptive) step() int64 { return max((a.Max-a.Min)/10, 1) }

// startThrottle is the throttle a request starts with: its own, else the
// adaptive throttle's min, else the executor's.
func (e *Executor) startThrottle(req Request) Throttle {
	if a := e.adaptiveFor(req); a != nil {
		return Rate(a.Min)
	}
	return req.Throttle.Or(e.Opts.Throttle)
}

// adaptSignals are what one adaptation interval saw.
type adaptSignals struct {
	p99         time.Duration // the canary's, 0: no samples
	underMinISR []health.TP   // partitions not moving, under min ISR
	behind      []string      // moves falling behind their writes
}

// bad says why producers are hurting ("" when they are not).
func (s adaptSignals) bad(a *Adaptive) string {
	switch {
	case s.p99 > a.TargetP99:
		return fmt.Sprintf("canary produce p99 %s is above the target %s", s.p99.Round(time.Millisecond), a.TargetP99)
	case len(s.underMinISR) > 0:
		return fmt.Sprintf("%d partitions not moving are under min.insync.replicas (%s)", len(s.underMinISR), s.underMinISR[0])
	}
	return ""
}

// adapt runs one adaptation: it reads the signals, chooses the next rate
// and window, records them and applies the rate. moving are the partitions
// being copied (their under-min-ISR is the copy's, not a signal).
func (e *Executor) adapt(ctx context.Context, r *Record, moving []health.TP, behind []string) {
	a := r.Adaptive
	if a == nil || !throttlesActive(r) {
		return
	}
	sig := adaptSignals{behind: behind}
	if c := e.canary; c != nil {
		now := e.Opts.Now()
		sig.p99 = c.probe.Latency(0.99, now.Add(-e.Opts.RateInterval), now)
	}
	if snap, err := e.Cluster.Snapshot(ctx); err == nil {
		for _, tp := range health.UnderMinISR(snap) {
			if !slices.Contains(moving, tp) {
				sig.underMinISR = append(sig.underMinISR, tp)
			}
		}
	}
	cur, _ := e.throttleOf(r).BytesPerSec()
	conc := max(e.planOptions(r).Concurrency, 1)
	window := e.windowConc(r)
	next, nextWindow, why := cur, window, ""
	if why = sig.bad(a); why != "" {
		next, nextWindow = max(cur/2, a.Min), max(window/2, 1)
	} else {
		next, nextWindow = min(cur+a.step(), a.Max), min(window+1, conc)
		why = "producers healthy"
		if len(behind) > 0 {
			why = "the copy falls behind its partitions' writes"
		}
	}
	if next == cur && nextWindow == window {
		return
	}
	log := e.logger(r).Info().Str("why", why).Int64("from_bytes_per_sec", cur).Int64("to_bytes_per_sec", next).
		Int("window", nextWindow).Float64("canary_p99_seconds", sig.p99.Seconds())
	if next != cur {
		a.Changes++
	}
	a.Window = nextWindow
	if err := e.retarget(ctx, r, next); err != nil {
		e.logger(r).Warn().Err(err).Msg("could not apply the adapted throttle (recorded; the next interval tries again)")
		return
	}
	log.Msg("adaptive throttle")
	e.event("throttle-adapted", r)
}

// retarget records bps as r's throttle and scales the applied rate with it
// (keeping the steer's correction), in one save before it is set.
func (e *Executor) retarget(ctx context.Context, r *Record, bps int64) error {
	cur, _ := e.throttleOf(r).BytesPerSec()
	r.Throttle = Rate(bps)
	applied := appliedRate(r)
	if applied <= 0 || cur <= 0 {
		return e.save(ctx, r)
	}
	next := int64(float64(applied) * float64(bps) / float64(cur))
	next = min(max(next, bps), int64(float64(bps)*max(e.Opts.RateCap, 1)))
	return e.setAppliedRate(ctx, r, next)
}

// windowConc is the window's concurrency: the adaptive throttle's when it
// has cut it, else the configured one.
func (e *Executor) windowConc(r *Record) int {
	conc := max(e.planOptions(r).Concurrency, 1)
	if r.Adaptive != nil && r.Adaptive.Window > 0 {
		return min(r.Adaptive.Window, conc)
	}
	return conc
}

// convergence follows the moves in flight against their partitions'
// writes: a move whose gap to its leader grew over two intervals in a row
// copies slower than its partition is written (the throttle is below the
// write rate), and never finishes unless the rate rises.
type convergence struct {
	prev   map[health.TP]gapSample
	grew   map[health.TP]int // intervals in a row the gap grew
	at     time.Time
	warned []string
}

type gapSample struct{ leader, dest int64 }

// observe samples the leaders' sizes of the moves in flight and returns the
// moves falling behind, described with their write and copy rates.
func (c *convergence) observe(ctx context.Context, e *Executor, r *Record, w *window) []string {
	now := e.Opts.Now()
	tps := w.tps()
	if len(tps) == 0 {
		c.prev, c.grew = nil, nil
		return nil
	}
	leader, err := e.Cluster.LeaderBytes(ctx, tps)
	if err != nil {
		return nil // progress, not state: the next interval reads again
	}
	dt := now.Sub(c.at).Seconds()
	next := make(map[health.TP]gapSample, len(tps))
	grew := map[health.TP]int{}
	var behind []string
	for _, tp := range tps {
		l, ok := leader[tp]
		d, seen := w.last[tp]
		if !ok || !seen {
			continue
		}
		s := gapSample{leader: l, dest: d}
		next[tp] = s
		p, had := c.prev[tp]
		if !had || dt <= 0 || s.leader-s.dest <= 0 || s.leader-s.dest <= p.leader-p.dest {
			continue
		}
		if grew[tp] = c.grew[tp] + 1; grew[tp] >= 2 {
			write, copied := float64(s.leader-p.leader)/dt, float64(s.dest-p.dest)/dt
			behind = append(behind, fmt.Sprintf("%s written at %s/s, copied at %s/s", tp,
				humanize.IBytes(uint64(max(write, 0))), humanize.IBytes(uint64(max(copied, 0)))))
		}
	}
	c.prev, c.grew, c.at = next, grew, now
	slices.Sort(behind)
	if len(behind) > 0 && !slices.Equal(names(behind), names(c.warned)) {
		hint := "raise the throttle (fleetd throttle set RATE) or configure an adaptive throttle"
		if r.Adaptive != nil {
			hint = fmt.Sprintf("the adaptive throttle raises the rate up to its max %s/s", humanize.IBytes(uint64(r.Adaptive.Max)))
		}
		e.logger(r).Warn().Strs("partitions", behind).Str("fix", hint).
			Msg("copy falls behind: these partitions are written faster than they are copied, and their moves cannot finish at this rate")
		e.event("copy-behind", r)
	}
	c.warned = behind
	return behind
}

// names are the partition names of behind's entries.
func names(behind []string) []string {
	out := make([]string, len(behind))
	for i, b := range behind {
		out[i], _, _ = strings.Cut(b, " ")
	}
	return out
}
