package health

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

var (
	safe   = Verdict{Safe: true}
	unsafe = Verdict{Blockers: []Reason{{Code: CodeUnderReplicated, Message: "1 partition"}}}
)

// script answers the i-th check with verdicts[i], repeating the last.
func script(verdicts ...Verdict) (func(context.Context) Verdict, *int) {
	n := 0
	return func(context.Context) Verdict {
		v := verdicts[min(n, len(verdicts)-1)]
		n++
		return v
	}, &n
}

func TestWaitHealthyNeedsConsecutiveChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// healthy, unhealthy (resets), then healthy for good
		check, calls := script(safe, unsafe, safe)
		start := time.Now()
		v, err := WaitHealthy(context.Background(), WaitOptions{Consecutive: 3, Interval: 10 * time.Second, Limit: time.Hour}, check)
		if err != nil || !v.Safe {
			t.Fatalf("got %v, %v", v, err)
		}
		if *calls != 5 {
			t.Errorf("checks = %d, want 5 (1 safe, 1 unsafe resets, 3 safe)", *calls)
		}
		if got := time.Since(start); got != 40*time.Second {
			t.Errorf("took %s of virtual time, want 40s", got)
		}
	})
}

func TestWaitHealthyGivesUpWithLastReasons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		check, _ := script(unsafe)
		start := time.Now()
		_, err := WaitHealthy(context.Background(), WaitOptions{}, check)
		var nh *NotHealthyError
		if !errors.As(err, &nh) {
			t.Fatalf("got %v, want *NotHealthyError", err)
		}
		if nh.Last.Blockers[0].Code != CodeUnderReplicated {
			t.Errorf("last reasons = %+v", nh.Last)
		}
		if got := time.Since(start); got != 600*time.Second {
			t.Errorf("gave up after %s, want the default 600s", got)
		}
	})
}

func TestWaitHealthyHonoursCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		defer cancel()
		check, _ := script(unsafe)
		_, err := WaitHealthy(ctx, WaitOptions{}, check)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the context's error", err)
		}
	})
}

func TestWaitHealthyDefaultsFollowYelp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		check, calls := script(safe)
		start := time.Now()
		if _, err := WaitHealthy(context.Background(), WaitOptions{}, check); err != nil {
			t.Fatal(err)
		}
		if *calls != 12 || time.Since(start) != 110*time.Second {
			t.Errorf("calls=%d elapsed=%s, want 12 checks over 110s", *calls, time.Since(start))
		}
	})
}
