package replace

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeProbe is a canary whose latency is 5 ms, except 50 ms for records
// sent while slow is true; lost is what Stop reports lost.
type fakeProbe struct {
	mu      sync.Mutex
	sent    []time.Time
	lat     []time.Duration
	slow    bool
	lost    int64
	slowLat time.Duration // the latency while slow (default 50 ms)
	stopped bool
	done    chan struct{}
}

func newFakeProbe() *fakeProbe {
	p := &fakeProbe{done: make(chan struct{})}
	go func() {
		for {
			select {
			case <-p.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			p.mu.Lock()
			d := 5 * time.Millisecond
			if p.slow {
				d = cmp.Or(p.slowLat, 50*time.Millisecond)
			}
			p.sent, p.lat = append(p.sent, time.Now()), append(p.lat, d)
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *fakeProbe) Topic() string { return "fleetd-canary" }

func (p *fakeProbe) Stop(context.Context) (CanaryCounts, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		close(p.done)
	}
	p.stopped = true
	n := int64(len(p.sent))
	return CanaryCounts{Acked: n, Observed: n - p.lost, Lost: p.lost}, nil
}

func (p *fakeProbe) Latency(q float64, from, to time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var in []time.Duration
	for i, at := range p.sent {
		if !at.Before(from) && at.Before(to) {
			in = append(in, p.lat[i])
		}
	}
	if len(in) == 0 {
		return 0
	}
	slices.Sort(in)
	return in[int(q*float64(len(in)-1))]
}

// The canary runs from past the gate to a tail after the end; the record
// carries its counts and latency before, during (from the move on) and
// after; a loss is a failed verification.
func TestTheRecordCarriesTheCanaryVerdict(t *testing.T) {
	for _, lost := range []int64{0, 3} {
		synctest.Test(t, func(t *testing.T) {
			c, _, ex := fakes()
			c.copyRate = 1 << 20
			var probe *fakeProbe
			ex.Opts.Canary = func(_ context.Context, respread bool) (CanaryProbe, error) {
				if !respread {
					t.Error("a fresh workflow's canary may re-spread its topic (no plan pins it yet)")
				}
				probe = newFakeProbe()
				probe.lost = lost
				return probe, nil
			}
			ex.Opts.OnEvent = func(ev string, _ *Record) {
				switch ev {
				case "after:plan": // a launch takes time
					time.Sleep(2 * time.Second)
				case "after:throttle": // the move begins: producers suffer
					probe.mu.Lock()
					probe.slow = true
					probe.mu.Unlock()
				case "after:unregister-old":
					probe.mu.Lock()
					probe.slow = false
					probe.mu.Unlock()
					time.Sleep(50 * time.Millisecond) // past a record sent at this instant

				}
			}
			r, _ := ex.Begin(context.Background(), Request{Broker: 2, Throttle: Rate(1 << 20)})
			_ = ex.Run(context.Background(), r)
			v := r.Canary
			if r.Phase != PhaseCompleted || v == nil || !probe.stopped {
				t.Fatalf("phase %s verdict %+v", r.Phase, v)
			}
			if v.Verified != (lost == 0) || v.Lost != lost || v.Acked == 0 {
				t.Errorf("lost %d: verdict %+v", lost, v)
			}
			if v.Before.P99Ms != 5 || v.During.P99Ms != 50 || v.After.P99Ms != 5 {
				t.Errorf("p99 before %v during %v after %v, want 5, 50, 5 ms", v.Before.P99Ms, v.During.P99Ms, v.After.P99Ms)
			}
		})
	}
}

// A request the gate refuses starts no canary; a canary that cannot start
// is said in the record and the replacement goes on.
func TestNoCanaryAtTheGateAndNoFailureWithoutOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, ex := fakes()
		started := 0
		ex.Opts.Canary = func(context.Context, bool) (CanaryProbe, error) {
			started++
			return nil, errCloud
		}
		r, _ := ex.Begin(context.Background(), Request{Broker: 42})
		_ = ex.Run(context.Background(), r)
		if r.Phase != PhaseRefused || started != 0 || r.Canary != nil {
			t.Fatalf("refused request: phase %s, canary started %d times, verdict %+v", r.Phase, started, r.Canary)
		}
		r, _ = ex.Begin(context.Background(), Request{Broker: 2})
		_ = ex.Run(context.Background(), r)
		if r.Phase != PhaseCompleted || started != 1 || r.Canary == nil || r.Canary.Error == "" {
			t.Fatalf("phase %s, canary started %d times, verdict %+v", r.Phase, started, r.Canary)
		}
	})
}

// Between groups of leader elections fleetd checks the canary: while its
// p99 is above twice what it was before the workflow, the next group waits
// (at most calmRounds pauses); with healthy producers it does not.
func TestLeaderElectionsWaitWhileTheCanaryIsSlow(t *testing.T) {
	elect := func(slowAfterMove bool) time.Duration {
		var took time.Duration
		synctest.Test(t, func(t *testing.T) {
			_, _, ex := streamFakes(40, 2, 1<<20)
			ex.Opts.LeaderGroup = 5
			var probe *fakeProbe
			ex.Opts.Canary = func(context.Context, bool) (CanaryProbe, error) {
				probe = newFakeProbe()
				probe.slowLat = 400 * time.Millisecond
				return probe, nil
			}
			ex.Opts.OnEvent = func(ev string, _ *Record) {
				if ev == "after:"+string(StepPlan) {
					// A real gate and plan take a second or two: the
					// canary's "before" they give.
					time.Sleep(2 * time.Second)
				}
				if ev == "after:"+string(StepMove) && slowAfterMove {
					probe.mu.Lock()
					probe.slow = true
					probe.mu.Unlock()
				}
			}
			r, _ := ex.Begin(context.Background(), Request{Broker: 2})
			if err := ex.Run(context.Background(), r); err != nil || r.Phase != PhaseCompleted {
				t.Fatalf("ended %s: %v %s", r.Phase, err, r.Error)
			}
			for _, s := range r.Steps {
				if s.Step == StepElectLeaders {
					took = s.Duration()
				}
			}
		})
		return took
	}
	calm, slow := elect(false), elect(true)
	t.Logf("elect-leaders: %s with healthy producers, %s with slow ones", calm, slow)
	// Broker 2 leads 13 of the 40 by preference: groups of 5, two waits of
	// up to calmRounds pauses (1 s) each.
	if slow < calm+2*calmRounds*time.Second {
		t.Errorf("elections with a slow canary took %s, healthy %s: want the groups held back", slow, calm)
	}
}
