package replace

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetd/fleetd/internal/health"
)

// adaptiveFakes is streamFakes with an adaptive throttle of [min, max],
// target p99 20 ms, and the fake canary (5 ms, or 50 ms while slow).
func adaptiveFakes(n int, size int64, lo, hi int64) (*fakeCluster, *Executor, **fakeProbe) {
	c, _, ex := streamFakes(n, 1, size)
	ex.Opts.Adaptive = &Adaptive{Min: lo, Max: hi, TargetP99: 20 * time.Millisecond}
	probe := new(*fakeProbe)
	ex.Opts.Canary = func(context.Context, bool) (CanaryProbe, error) {
		*probe = newFakeProbe()
		return *probe, nil
	}
	return c, ex, probe
}

// configuredRate is the follower rate configured on broker b (0: none).
func (c *fakeCluster) configuredRate(b int32) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.configs[ConfigKey{Kind: BrokerConfig, Resource: brokerRes(b), Name: followerRate}]
	if v == nil {
		return 0
	}
	n, _ := strconv.ParseInt(*v, 10, 64)
	return n
}

// Healthy producers: the rate starts at min and rises a tenth of the span
// each interval up to max. The canary slows past the target: the rate
// halves (not below min) and the window's concurrency with it; healthy
// again, it rises again. Every adapted rate is recorded before it is set,
// and nothing is left at the end.
func TestAdaptiveThrottleRisesWhileHealthyAndHalvesWhenProducersHurt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ex, probe := adaptiveFakes(8, 2<<30, 10<<20, 100<<20)
		store := &memStore{}
		sc := &steerCluster{fakeCluster: c, store: store, t: t}
		ex.Cluster, ex.Store = sc, store
		ex.Opts.RateCap = 1 // the adaptation alone, without steering
		var rates []int64
		var windows []int
		ex.Opts.OnEvent = func(ev string, r *Record) {
			if ev != "throttle-adapted" {
				return
			}
			bps, _ := r.Throttle.BytesPerSec()
			rates, windows = append(rates, bps), append(windows, r.Adaptive.Window)
			if got := c.configuredRate(r.NewBroker); got != bps {
				t.Errorf("recorded throttle %d, configured %d", bps, got)
			}
			// Slow producers from the fifth change to the eighth.
			(*probe).mu.Lock()
			(*probe).slow = len(rates) >= 5 && len(rates) < 8
			(*probe).mu.Unlock()
		}
		r, _ := ex.Begin(context.Background(), Request{Broker: 2, Concurrency: 4})
		if bps, _ := r.Throttle.BytesPerSec(); bps != 10<<20 || r.Adaptive == nil {
			t.Fatalf("an adaptive replacement starts at min: throttle %s adaptive %v", r.Throttle, r.Adaptive)
		}
		if err := ex.Run(context.Background(), r); err != nil || r.Phase != PhaseCompleted {
			t.Fatalf("ended %s: %v %s", r.Phase, err, r.Error)
		}
		t.Logf("rates %v windows %v", rates, windows)
		const mib = 1 << 20
		step := int64(9 * mib)
		if len(rates) < 10 {
			t.Fatalf("only %d adaptations", len(rates))
		}
		for i := 1; i < 4; i++ {
			if rates[i] != rates[i-1]+step {
				t.Errorf("change %d: %d after %d, want +%d while healthy", i, rates[i], rates[i-1], step)
			}
		}
		// The probe turned slow after change 5: the next changes halve.
		if rates[5] != rates[4]/2 || rates[6] != max(rates[5]/2, 10*mib) {
			t.Errorf("slow producers: %d, %d after %d, want halved", rates[5], rates[6], rates[4])
		}
		if windows[5] >= windows[4] || windows[6] != max(windows[5]/2, 1) {
			t.Errorf("slow producers: window %d, %d after %d, want halved", windows[5], windows[6], windows[4])
		}
		last := rates[len(rates)-1]
		if last <= rates[7] || last > 100*mib {
			t.Errorf("healthy again: the rate went to %d from %d, want rising, at most max", last, rates[7])
		}
		if len(c.configs) != 0 || !r.ThrottlesRemoved {
			t.Errorf("configs left: %v", c.configs)
		}
		if r.Adaptive.Changes != len(rates) {
			t.Errorf("record counts %d changes, saw %d", r.Adaptive.Changes, len(rates))
		}
	})
}

// A partition written faster than the throttle lets it copy: with a fixed
// throttle the move cannot finish, and fleetd names the partition and both
// rates (it shares the 4 MiB/s with two others) and says how to fix it; with an adaptive throttle the rate rises
// (within max) until the copy catches up, and the move completes.
func TestACopyBehindItsWritesIsReportedAndTheAdaptiveThrottleCatchesUp(t *testing.T) {
	hot := health.TP{Topic: "t0", Partition: 0}
	t.Run("fixed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, _, ex := streamFakes(3, 1, 64<<20)
			c.writes = map[health.TP]int64{hot: 6 << 20}
			var behind []string
			ex.Opts.OnProgress = func(p Progress) {
				if len(p.Behind) > 0 && behind == nil {
					behind = p.Behind
					if !p.Stalled {
						t.Error("a copy behind its writes is shown as stalled")
					}
					ex.Abort("test: seen")
				}
			}
			r, _ := ex.Begin(context.Background(), Request{Broker: 2, Throttle: Rate(4 << 20)})
			_ = ex.Run(context.Background(), r)
			if len(behind) != 1 || !strings.HasPrefix(behind[0], "t0-0 written at 6.0 MiB/s, copied at 1.3 MiB/s") {
				t.Fatalf("behind: %q, want t0-0 with its write and copy rates", behind)
			}
			if r.Phase != PhaseRolledBack || len(c.configs) != 0 {
				t.Errorf("aborted: %s, configs %v", r.Phase, c.configs)
			}
		})
	})
	t.Run("adaptive", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, ex, _ := adaptiveFakes(3, 64<<20, 2<<20, 20<<20)
			c.writes = map[health.TP]int64{hot: 6 << 20}
			var sawBehind bool
			ex.Opts.OnProgress = func(p Progress) { sawBehind = sawBehind || len(p.Behind) > 0 }
			r, _ := ex.Begin(context.Background(), Request{Broker: 2})
			if err := ex.Run(context.Background(), r); err != nil || r.Phase != PhaseCompleted {
				t.Fatalf("ended %s: %v %s", r.Phase, err, r.Error)
			}
			bps, _ := r.Throttle.BytesPerSec()
			if bps <= 6<<20 || bps > 20<<20 {
				t.Errorf("ended at %d B/s: want raised above the 6 MiB/s write rate, within max", bps)
			}
			if !sawBehind {
				t.Error("the copy starting at 2 MiB/s under 6 MiB/s of writes was never reported behind")
			}
			if len(c.configs) != 0 {
				t.Errorf("configs left: %v", c.configs)
			}
		})
	})
}

// Killed right after an adaptation (the rate recorded and set, several
// moves in flight): a new executor resumes the window and completes, and
// every throttle fleetd set, at whatever rate, is gone.
func TestKilledMidAdaptationResumesAndCleansUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ex, _ := adaptiveFakes(12, 256<<20, 10<<20, 80<<20)
		store := ex.Store
		ctx, kill := context.WithCancel(context.Background())
		adaptations := 0
		ex.Opts.OnEvent = func(ev string, r *Record) {
			if ev == "throttle-adapted" {
				if adaptations++; adaptations == 3 {
					kill()
				}
			}
		}
		r, _ := ex.Begin(ctx, Request{Broker: 2, Concurrency: 3})
		_ = ex.Run(ctx, r)
		if r.Phase.Terminal() || adaptations != 3 {
			t.Fatalf("not killed mid-move: %s after %d adaptations", r.Phase, adaptations)
		}
		saved, _ := store.Load(context.Background(), r.ID)
		if c.configuredRate(saved.NewBroker) != appliedRate(saved) || appliedRate(saved) <= 10<<20 {
			t.Fatalf("at the kill: configured %d, recorded %d", c.configuredRate(saved.NewBroker), appliedRate(saved))
		}
		c.mu.Lock()
		inflight := len(c.copies)
		c.mu.Unlock()
		if inflight < 2 {
			t.Errorf("%d moves in flight at the kill, want several", inflight)
		}
		again := New(c, ex.Provider, store, ex.Opts)
		again.Opts.OnEvent = nil
		// The resumed canary must not re-spread its topic: the plan moves
		// its partitions already.
		var respreads []bool
		again.Opts.Canary = func(_ context.Context, respread bool) (CanaryProbe, error) {
			respreads = append(respreads, respread)
			return newFakeProbe(), nil
		}
		if err := again.Run(context.Background(), saved); err != nil || saved.Phase != PhaseCompleted {
			t.Fatalf("resumed: %s %v %s", saved.Phase, err, saved.Error)
		}
		if len(c.configs) != 0 {
			t.Errorf("configs left after the resumed replacement: %v", c.configs)
		}
		if len(respreads) != 1 || respreads[0] {
			t.Errorf("resumed canary started with respread %v, want once, false", respreads)
		}
	})
}

// The adaptive throttle refuses bounds that cannot work.
func TestAdaptiveCheck(t *testing.T) {
	for _, a := range []Adaptive{{Min: 0, Max: 1, TargetP99: time.Second}, {Min: 2, Max: 1, TargetP99: time.Second}, {Min: 1, Max: 2}} {
		if a.Check() == nil {
			t.Errorf("%+v accepted", a)
		}
	}
	if err := (Adaptive{Min: 1, Max: 1, TargetP99: time.Millisecond}).Check(); err != nil {
		t.Error(err)
	}
}
