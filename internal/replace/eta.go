package replace

import (
	"fmt"
	"slices"
	"time"
)

// etaHistory is how many past moves the estimate learns from.
const etaHistory = 5

// Efficiency is what past moves achieved: the median, over the last
// etaHistory completed moves that ran throttled, of (bytes / copy time) /
// throttle. ok is false when there is no such move.
func Efficiency(past []*Record) (eff float64, n int, ok bool) {
	var effs []float64
	for i := len(past) - 1; i >= 0 && len(effs) < etaHistory; i-- {
		r := past[i]
		bps, throttled := r.Throttle.BytesPerSec()
		if r.Phase != PhaseCompleted || r.Strategy != StrategyMove || !throttled || r.BytesMoved <= 0 {
			continue
		}
		var copyTime time.Duration
		for _, s := range r.Steps {
			if s.Step == StepMove {
				copyTime += s.Duration()
			}
		}
		if copyTime <= 0 {
			continue
		}
		effs = append(effs, float64(r.BytesMoved)/copyTime.Seconds()/float64(bps))
	}
	if len(effs) == 0 {
		return 0, 0, false
	}
	slices.Sort(effs)
	return effs[len(effs)/2], len(effs), true
}

// estimate sets p's ETA from the bytes, the throttle and what this
// cluster's past moves achieved (past in creation order), and says on what
// it rests. An efficiency above 1 (a copy faster than its throttle) is not
// believed.
func (p *Plan) estimate(past []*Record) {
	if p.Options.Throttle <= 0 || p.TotalBytes == 0 {
		p.ETA, p.ETABasis = 0, "unthrottled: no estimate"
		return
	}
	ideal := float64(p.TotalBytes) / float64(p.Options.Throttle)
	eff, n, ok := Efficiency(past)
	if !ok {
		p.ETA = time.Duration(ideal * float64(time.Second)).Round(time.Second)
		p.ETABasis = "bytes / throttle (no past move on record)"
		return
	}
	eff = min(eff, 1)
	p.ETA = time.Duration(ideal / eff * float64(time.Second)).Round(time.Second)
	p.ETABasis = fmt.Sprintf("bytes / throttle at the %.2fx the last %d moves achieved", eff, n)
}
