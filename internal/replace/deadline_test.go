package replace

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A retirement deadline shorter than the copy's ETA: the plan says so at
// once, and the policy is applied. raise-throttle raises the throttle to
// what the deadline needs (and the copy then fits); identity replaces the
// broker by identity instead, unless the request asked for a move; a
// deadline the copy fits changes nothing.
func TestADeadlineShorterThanTheETAAppliesThePolicy(t *testing.T) {
	const gib = 1 << 30
	margin := 10 * time.Minute
	cases := []struct {
		name     string
		policy   DeadlinePolicy
		strategy Strategy
		left     time.Duration // from now to the deadline
		// want: strategy, throttle after the gate, a phrase of the decision
		wantStrategy Strategy
		wantThrottle int64
		wantSays     string
	}{
		// 2 GiB at 50 MiB/s is 41 s; 30 s usable needs 68.3 MiB/s.
		{"raise", DeadlineRaiseThrottle, "", margin + 30*time.Second, StrategyMove, 2*gib/30 + 1, "raised to 68 MiB/s"},
		// 5 s usable would need 410 MiB/s: capped at 4x.
		{"raise capped", DeadlineRaiseThrottle, "", margin + 5*time.Second, StrategyMove, 200 << 20, "still past the deadline"},
		{"identity", DeadlineIdentity, "", margin + 30*time.Second, StrategyIdentity, 50 << 20, "replaced by identity instead"},
		{"identity, move asked", DeadlineIdentity, StrategyMove, margin + 30*time.Second, StrategyMove, 50 << 20, "the request asked for a move"},
		{"fits", DeadlineRaiseThrottle, "", margin + time.Minute, StrategyMove, 50 << 20, "fits: copy ETA 41s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, _, ex := streamFakes(4, 1, gib/2)
				c.copyRate = 0 // moves complete at once: this is about the decision
				ex.Opts.DeadlinePolicy = tc.policy
				req := Request{Broker: 2, Strategy: tc.strategy, Deadline: time.Now().Add(tc.left)}
				pre, err := ex.Preview(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(pre.DeadlineDecision, tc.wantSays) {
					t.Errorf("dry-run says %q, want %q", pre.DeadlineDecision, tc.wantSays)
				}
				r, _ := ex.Begin(context.Background(), req)
				if err := ex.Run(context.Background(), r); err != nil || r.Phase != PhaseCompleted {
					t.Fatalf("ended %s: %v %s", r.Phase, err, r.Error)
				}
				bps, _ := r.Throttle.BytesPerSec()
				if r.Strategy != tc.wantStrategy || bps != tc.wantThrottle {
					t.Errorf("strategy %s throttle %d, want %s at %d", r.Strategy, bps, tc.wantStrategy, tc.wantThrottle)
				}
				t.Logf("%s: %s", r.Strategy, r.DeadlineDecision)
				if !strings.Contains(r.DeadlineDecision, tc.wantSays) {
					t.Errorf("record says %q, want %q", r.DeadlineDecision, tc.wantSays)
				}
				if r.Strategy == StrategyMove && r.Plan.Options.Throttle != bps {
					t.Errorf("the plan runs at %d, the record says %d", r.Plan.Options.Throttle, bps)
				}
			})
		})
	}
}
