package schedule

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func mustWindow(t *testing.T, days, hours, tz string) Window {
	t.Helper()
	w, err := ParseWindow(days, hours, tz)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWindowContains(t *testing.T) {
	w := mustWindow(t, "mon-fri", "09:00-15:00", "America/Los_Angeles")
	la, _ := time.LoadLocation("America/Los_Angeles")
	tests := []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 11, 24, 9, 0, 0, 0, la), true},         // Tuesday 09:00 sharp
		{time.Date(2026, 11, 24, 14, 59, 0, 0, la), true},       // last minute
		{time.Date(2026, 11, 24, 15, 0, 0, 0, la), false},       // end is exclusive
		{time.Date(2026, 11, 24, 8, 59, 0, 0, la), false},       // before
		{time.Date(2026, 11, 28, 10, 0, 0, 0, la), false},       // Saturday
		{time.Date(2026, 11, 24, 17, 30, 0, 0, time.UTC), true}, // 09:30 in LA
		{time.Date(2026, 3, 9, 9, 30, 0, 0, la), true},          // Monday after the DST change
	}
	for _, tt := range tests {
		if got := w.Contains(tt.at); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.at, got, tt.want)
		}
	}
	wrap := mustWindow(t, "fri-mon", "00:00-24:00", "UTC")
	if len(wrap.Days) != 4 || !wrap.Contains(time.Date(2026, 11, 29, 23, 59, 0, 0, time.UTC)) {
		t.Errorf("fri-mon wraps over the weekend: %v", wrap.Days)
	}
}

func TestParseWindowRejectsNonsense(t *testing.T) {
	for _, tt := range []struct{ days, hours, tz, want string }{
		{"mon-fry", "09:00-15:00", "UTC", "days"},
		{"mon", "9-15", "UTC", "hours"},
		{"mon", "15:00-09:00", "UTC", "end after"},
		{"mon", "09:00-25:00", "UTC", "HH:MM"},
		{"mon", "09:00-15:00", "Mars/Olympus", "time zone"},
	} {
		if _, err := ParseWindow(tt.days, tt.hours, tt.tz); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseWindow(%q,%q,%q) = %v, want error with %q", tt.days, tt.hours, tt.tz, err, tt.want)
		}
	}
}

// fleet is three brokers; a fired, acted decision "replaces" the broker:
// it becomes the newest and the disruption time is recorded.
type fleet struct {
	cands   []Candidate
	lastDis time.Time
	fired   []Decision
}

func newFleet() *fleet {
	base := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	return &fleet{cands: []Candidate{
		{NodeID: 1, LaunchedAt: base.Add(2 * time.Hour)},
		{NodeID: 2, LaunchedAt: base},
		{NodeID: 3, LaunchedAt: base.Add(time.Hour), Outdated: true},
	}}
}

func (f *fleet) emit(d Decision) {
	if !d.Fire {
		return
	}
	f.fired = append(f.fired, d)
	if !d.Act {
		return
	}
	f.lastDis = time.Now()
	for i := range f.cands {
		if f.cands[i].NodeID == d.Broker.NodeID {
			f.cands[i].LaunchedAt = time.Now()
		}
	}
}

// runFor drives a Runner over d of virtual time.
func runFor(t *testing.T, c *Chaos, d time.Duration) *fleet {
	t.Helper()
	if err := c.Compile(); err != nil {
		t.Fatal(err)
	}
	f := newFleet()
	r := &Runner{Chaos: c, Candidates: func() ([]Candidate, error) { return f.cands, nil }, LastDisruption: func() time.Time { return f.lastDis }, Rand: rand.New(rand.NewPCG(1, 2))}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r.Run(ctx, f.emit)
	return f
}

func TestChaosFiresTuesdaysAtTenLosAngelesOldestFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, _ := time.LoadLocation("America/Los_Angeles")
		c := &Chaos{Enabled: true, Cron: "0 10 * * TUE", Window: mustWindow(t, "mon-fri", "09:00-15:00", "America/Los_Angeles"), MinInterval: 24 * time.Hour}
		f := runFor(t, c, 21*24*time.Hour)
		if len(f.fired) != 3 {
			t.Fatalf("fired %d times in 3 weeks, want 3", len(f.fired))
		}
		for i, d := range f.fired {
			lt := d.Slot.In(la)
			if lt.Weekday() != time.Tuesday || lt.Hour() != 10 || lt.Minute() != 0 {
				t.Errorf("fire %d at %s, want Tuesday 10:00 Los Angeles", i, lt)
			}
			if !d.Act {
				t.Errorf("fire %d not acted on", i)
			}
		}
		// Oldest first: 2 (launched first), then 3, then 1; each replaced
		// broker becomes the newest.
		for i, want := range []int32{2, 3, 1} {
			if got := f.fired[i].Broker.NodeID; got != want {
				t.Errorf("fire %d picked broker %d, want %d", i, got, want)
			}
		}
	})
}

func TestChaosNeverFiresOutsideTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &Chaos{Enabled: true, Cron: "0 10 * * SAT,SUN", Window: mustWindow(t, "mon-fri", "09:00-15:00", "UTC")}
		c2 := &Chaos{Enabled: true, Cron: "0 18 * * *", Window: mustWindow(t, "mon-fri", "09:00-15:00", "UTC")}
		for _, ch := range []*Chaos{c, c2} {
			if f := runFor(t, ch, 14*24*time.Hour); len(f.fired) != 0 {
				t.Errorf("cron %q fired %d times outside mon-fri 09-15", ch.Cron, len(f.fired))
			}
		}
	})
}

func TestChaosRespectsMinimumInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &Chaos{Enabled: true, Cron: "0 10 * * *", Window: mustWindow(t, "mon-sun", "00:00-24:00", "UTC"), MinInterval: 72 * time.Hour}
		f := runFor(t, c, 14*24*time.Hour)
		if len(f.fired) < 4 {
			t.Fatalf("fired only %d times in two weeks of daily slots", len(f.fired))
		}
		for i := 1; i < len(f.fired); i++ {
			if gap := f.fired[i].Slot.Sub(f.fired[i-1].Slot); gap < 72*time.Hour {
				t.Errorf("fires %d and %d only %s apart", i-1, i, gap)
			}
		}
	})
}

func TestChaosDisabledDoesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &Chaos{Enabled: false, Cron: "* * * * *", Window: mustWindow(t, "mon-sun", "00:00-24:00", "UTC")}
		if f := runFor(t, c, 7*24*time.Hour); len(f.fired) != 0 {
			t.Errorf("disabled chaos fired %d times", len(f.fired))
		}
	})
}

func TestChaosLeashedPlansButNeverActs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &Chaos{Enabled: true, Leashed: true, Cron: "0 10 * * TUE", Window: mustWindow(t, "mon-fri", "09:00-15:00", "UTC")}
		f := runFor(t, c, 14*24*time.Hour)
		if len(f.fired) != 2 {
			t.Fatalf("leashed chaos planned %d times in 2 weeks, want 2", len(f.fired))
		}
		for _, d := range f.fired {
			if d.Act || !strings.Contains(d.Reason, "leashed") {
				t.Errorf("leashed decision %+v must plan only", d)
			}
		}
	})
}

func TestPickPolicies(t *testing.T) {
	f := newFleet()
	rnd := rand.New(rand.NewPCG(7, 7))
	if got := pick(PickOldest, f.cands, rnd).NodeID; got != 2 {
		t.Errorf("oldest picked %d, want 2", got)
	}
	if got := pick(PickOutdatedImage, f.cands, rnd).NodeID; got != 3 {
		t.Errorf("outdated-ami picked %d, want 3", got)
	}
	seen := map[int32]bool{}
	for i := 0; i < 50; i++ {
		seen[pick(PickRandom, f.cands, rnd).NodeID] = true
	}
	if len(seen) != 3 {
		t.Errorf("random picked only %v in 50 draws", seen)
	}
}

func TestCompileRejectsBadSettings(t *testing.T) {
	w, _ := ParseWindow("mon", "09:00-10:00", "UTC")
	for _, c := range []*Chaos{
		{Enabled: true, Cron: "every tuesday", Window: w},
		{Enabled: true, Cron: "0 10 * * TUE"},
		{Enabled: true, Cron: "0 10 * * TUE", Window: w, Pick: "youngest"},
	} {
		if err := c.Compile(); err == nil {
			t.Errorf("Compile(%+v) accepted", c)
		}
	}
}

// A failure to list the fleet delays the slot (within the grace), never
// skips it; a standby decides nothing and so leaves the slot to the active.
func TestRunnerRetriesTheFleetListingAndIdlesOnStandby(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// synctest starts at 2000-01-01 00:00 UTC, a Saturday.
		c := &Chaos{Enabled: true, Cron: "0 10 * * SAT", Window: mustWindow(t, "sat", "09:00-15:00", "UTC"), MinInterval: time.Hour}
		if err := c.Compile(); err != nil {
			t.Fatal(err)
		}
		f := newFleet()
		var active, failing atomic.Bool
		failing.Store(true)
		r := &Runner{Chaos: c, LastDisruption: func() time.Time { return f.lastDis }, Rand: rand.New(rand.NewPCG(1, 2)), Active: active.Load,
			Candidates: func() ([]Candidate, error) {
				if failing.Load() {
					return nil, errors.New("DescribeInstances: throttled")
				}
				return f.cands, nil
			}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Run(ctx, f.emit); close(done) }()
		time.Sleep(10*time.Hour + 10*time.Minute) // 10:10, standby
		if len(f.fired) != 0 {
			t.Fatalf("standby decided: %+v", f.fired)
		}
		active.Store(true) // took the lease; the listing still fails
		time.Sleep(20 * time.Minute)
		if len(f.fired) != 0 {
			t.Fatalf("decided without a fleet listing: %+v", f.fired)
		}
		failing.Store(false)
		time.Sleep(2 * time.Minute)
		cancel()
		<-done
		if len(f.fired) != 1 || f.fired[0].Broker.NodeID != 2 || f.fired[0].Slot.Hour() != 10 {
			t.Fatalf("fired %+v, want the 10:00 slot late, broker 2", f.fired)
		}
	})
}

// Several due slots collapse into the latest: a frequent cron or a fleetd
// that was down never works through a backlog of old slots.
func TestOnlyTheLatestDueSlotCounts(t *testing.T) {
	c := &Chaos{Enabled: true, Cron: "*/10 * * * *", Window: mustWindow(t, "sun-sat", "00:00-24:00", "UTC"), MinInterval: time.Hour}
	if err := c.Compile(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 10, 34, 0, 0, time.UTC)
	cands := newFleet().cands
	for _, last := range []time.Time{{}, now.Add(-3 * time.Hour), now.Add(-25 * time.Minute)} {
		d := c.Decide(now, last, time.Time{}, cands, nil)
		if !d.Fire || !d.Slot.Equal(time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)) || !d.Next.Equal(time.Date(2026, 11, 24, 10, 40, 0, 0, time.UTC)) {
			t.Errorf("last slot %v: %+v, want the 10:30 slot fired and 10:40 next", last, d)
		}
	}
}

func TestWindowNext(t *testing.T) {
	w := mustWindow(t, "mon-fri", "09:00-15:00", "America/Los_Angeles")
	la := w.Location
	for _, tt := range []struct{ at, want time.Time }{
		{time.Date(2026, 11, 24, 10, 0, 0, 0, la), time.Date(2026, 11, 24, 10, 0, 0, 0, la)}, // Tuesday, inside
		{time.Date(2026, 11, 24, 7, 0, 0, 0, la), time.Date(2026, 11, 24, 9, 0, 0, 0, la)},   // before opening
		{time.Date(2026, 11, 24, 15, 0, 0, 0, la), time.Date(2026, 11, 25, 9, 0, 0, 0, la)},  // at closing: tomorrow
		{time.Date(2026, 11, 27, 16, 0, 0, 0, la), time.Date(2026, 11, 30, 9, 0, 0, 0, la)},  // Friday evening: Monday
	} {
		if got := w.Next(tt.at); !got.Equal(tt.want) {
			t.Errorf("Next(%s) = %s, want %s", tt.at, got, tt.want)
		}
	}
	if got := (Window{}).Next(time.Now()); !got.IsZero() {
		t.Errorf("empty window: %s", got)
	}
}

// Issue 12: "0 10 30 2 *" validated, and in fleetd run the chaos decision
// never returned (87% CPU, status timing out). Every walk over slots is
// bounded now, and such a schedule is refused before it runs.
func TestImpossibleScheduleIsRefusedAndNeverHangsADecision(t *testing.T) {
	w, err := ParseWindow("sun-sat", "00:00-24:00", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	c := &Chaos{Enabled: true, Cron: "0 10 30 2 *", Window: w}
	if err := c.Compile(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	if err := c.FiresWithin(now); err == nil || !strings.Contains(err.Error(), "never fires within 400 days") {
		t.Fatalf("FiresWithin = %v", err)
	}
	done := make(chan Decision, 1)
	go func() { done <- c.Decide(now, time.Time{}, time.Time{}, nil, nil) }()
	select {
	case d := <-done:
		if d.Fire || d.Reason != "the schedule never fires" {
			t.Fatalf("decision %+v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Decide did not return within 10 s for a schedule that never fires")
	}
	weekly := &Chaos{Enabled: true, Cron: "0 10 * * TUE", Window: w}
	if err := weekly.Compile(); err != nil {
		t.Fatal(err)
	}
	if err := weekly.FiresWithin(now); err != nil {
		t.Fatalf("a weekly schedule refused: %v", err)
	}
}

// A frequent cron after a long outage: the catch-up walk is bounded by the
// grace, and still picks the latest due slot.
func TestFrequentCronAfterAYearDownDecidesTheLatestSlot(t *testing.T) {
	w, _ := ParseWindow("sun-sat", "00:00-24:00", "UTC")
	c := &Chaos{Enabled: true, Cron: "* * * * *", Window: w}
	if err := c.Compile(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 10, 0, 30, 0, time.UTC)
	d := c.Decide(now, now.AddDate(-1, 0, 0), time.Time{}, []Candidate{{NodeID: 1}}, nil)
	if want := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC); !d.Slot.Equal(want) || !d.Fire {
		t.Fatalf("slot %s fire %v (%s), want %s", d.Slot, d.Fire, d.Reason, want)
	}
}
