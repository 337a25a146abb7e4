package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/fleetd/fleetd/internal/lease"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/who"
)

// fakeExec plays replacements: each broker's outcome is scripted; a run
// "takes" runFor of (virtual) time unless aborted. It records what ran.
type fakeExec struct {
	store   replace.Store
	runFor  time.Duration
	refuse  map[int32]int // refuse the first n attempts for a broker
	mu      sync.Mutex
	ran     []string // "broker:phase"
	aborted chan string
}

func (f *fakeExec) SetThrottle(context.Context, replace.Throttle) (replace.ThrottleResult, error) {
	return replace.ThrottleResult{}, replace.ErrNotRunning
}

func (f *fakeExec) Begin(ctx context.Context, req replace.Request) (*replace.Record, error) {
	r := &replace.Record{ID: fmt.Sprintf("r-%d-%d", req.Broker, time.Now().UnixNano()), OldBroker: req.Broker, Triggers: req.Triggers, Phase: replace.PhaseRunning, Step: replace.StepGate, Created: time.Now()}
	return r, f.store.Save(ctx, r)
}

func (f *fakeExec) Run(ctx context.Context, r *replace.Record) error {
	f.mu.Lock()
	refuse := f.refuse[r.OldBroker] > 0
	if refuse {
		f.refuse[r.OldBroker]--
	}
	f.mu.Unlock()
	switch {
	case refuse:
		r.Phase, r.Error = replace.PhaseRefused, "under-replicated: 1 partition"
	default:
		select {
		case <-ctx.Done():
			return ctx.Err() // interrupted: the record stays in flight
		case reason := <-f.aborted:
			r.Phase, r.Error = replace.PhaseRolledBack, reason
		case <-time.After(f.runFor):
			r.Phase = replace.PhaseCompleted
		}
	}
	r.Finished = time.Now()
	f.mu.Lock()
	f.ran = append(f.ran, fmt.Sprintf("%d:%s", r.OldBroker, r.Phase))
	f.mu.Unlock()
	return f.store.Save(context.Background(), r)
}

func (f *fakeExec) Abort(reason string) { f.aborted <- reason }

func (f *fakeExec) Reopen(ctx context.Context, r *replace.Record, req replace.Request) error {
	r.Phase, r.Step, r.Error = replace.PhaseRunning, replace.StepGate, ""
	return f.store.Save(ctx, r)
}

func (f *fakeExec) runs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ran...)
}

// freeLease is a lease nobody else wants; taken toggles holding it.
type freeLease struct {
	mu    sync.Mutex
	taken bool
	deny  bool
	ioErr error
}

func (l *freeLease) TryAcquire(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.deny {
		return fmt.Errorf("%w (holder: other:1)", lease.ErrHeld)
	}
	if l.ioErr != nil {
		return l.ioErr
	}
	l.taken = true
	return nil
}
func (l *freeLease) Held(context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.taken && !l.deny, nil
}
func (l *freeLease) Release(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.taken = false
	return nil
}

func setup(t *testing.T) (*Controller, *fakeExec, *freeLease, context.CancelFunc, chan struct{}) {
	store, err := replace.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ex := &fakeExec{store: store, runFor: 10 * time.Minute, refuse: map[int32]int{}, aborted: make(chan string, 1)}
	lease := &freeLease{}
	c := New(ex, store, lease, Options{Tick: 10 * time.Second, RetryBase: 30 * time.Second, RetryMax: 2 * time.Minute, GiveUpAfter: time.Hour, Log: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = c.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return c, ex, lease, cancel, stopped
}

// start runs c until stop is called or the test ends.
func start(t *testing.T, c *Controller) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = c.Run(ctx); close(stopped) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-stopped }) }
	t.Cleanup(stop)
	return ctx, stop
}

// durable is the set-up of the tests about what survives restarts: records,
// queue and pause switch in files under one directory, replacements that
// take a minute.
func durable(t *testing.T) (replace.Store, *fakeExec, Options) {
	dir := t.TempDir()
	store, err := replace.NewFileStore(dir + "/records")
	if err != nil {
		t.Fatal(err)
	}
	ex := &fakeExec{store: store, runFor: time.Minute, refuse: map[int32]int{}, aborted: make(chan string, 1)}
	return store, ex, Options{Tick: 10 * time.Second, Log: zerolog.Nop(), PauseFile: dir + "/paused", QueueFile: dir + "/queue.json"}
}

func operator(broker int32) Request {
	return Request{Broker: broker, Triggers: []replace.Trigger{replace.TriggerOperator}}
}

func TestRequestDuringAReplacementIsQueuedAndRunsAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ex, _, _, _ := setup(t)
		ctx := context.Background()
		c.Submit(ctx, operator(1))
		time.Sleep(2 * time.Second) // broker 1 is running now
		c.Submit(ctx, operator(2))
		c.Submit(ctx, Request{Broker: 2, Triggers: []replace.Trigger{replace.TriggerChaos}}) // merged
		st, _ := c.Status(ctx)
		if st.Running == nil || st.Running.OldBroker != 1 || len(st.Queue) != 1 || len(st.Queue[0].Triggers) != 2 {
			t.Errorf("status %+v: want 1 running, 2 queued once with both triggers", st)
		}
		time.Sleep(25 * time.Minute)
		if got := ex.runs(); fmt.Sprint(got) != "[1:completed 2:completed]" {
			t.Errorf("runs %v, want 1 then 2, one at a time", got)
		}
	})
}

func TestPauseStopsTheNextReplacementNotTheCurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ex, _, _, _ := setup(t)
		ctx := context.Background()
		c.Submit(ctx, operator(1))
		time.Sleep(2 * time.Second)
		c.SetPaused(ctx, true)
		c.Submit(ctx, operator(2))
		time.Sleep(time.Hour)
		if got := ex.runs(); fmt.Sprint(got) != "[1:completed]" {
			t.Fatalf("while paused: runs %v, want only the one already running", got)
		}
		c.SetPaused(ctx, false)
		time.Sleep(15 * time.Minute)
		if got := ex.runs(); fmt.Sprint(got) != "[1:completed 2:completed]" {
			t.Errorf("after resume: runs %v", got)
		}
	})
}

func TestAbortRollsBackTheCurrentReplacement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ex, _, _, _ := setup(t)
		ctx := context.Background()
		if running, _ := c.Abort(ctx, "nothing"); running {
			t.Error("abort with nothing running reported a replacement")
		}
		c.Submit(ctx, operator(3))
		time.Sleep(2 * time.Second)
		if running, _ := c.Abort(ctx, "operator abort"); !running {
			t.Fatal("abort found nothing running")
		}
		time.Sleep(time.Second)
		if got := ex.runs(); fmt.Sprint(got) != "[3:rolled-back]" {
			t.Errorf("runs %v, want 3 rolled back", got)
		}
	})
}

func TestRefusedRequestIsRetriedThenDroppedWithItsReason(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ex, _, _, _ := setup(t)
		ctx := context.Background()
		ex.refuse[4] = 2 // refused twice, then the cluster is healthy
		c.Submit(ctx, operator(4))
		time.Sleep(5 * time.Second)
		st, _ := c.Status(ctx)
		if len(st.Queue) != 1 || st.Queue[0].LastRefusal == "" {
			t.Fatalf("after a refusal the request must wait with its reason visible: %+v", st.Queue)
		}
		time.Sleep(20 * time.Minute)
		if got := ex.runs(); fmt.Sprint(got) != "[4:refused 4:refused 4:completed]" {
			t.Errorf("runs %v", got)
		}
		ex.refuse[5] = 1000 // never healthy: given up after GiveUpAfter (1 h)
		c.Submit(ctx, operator(5))
		time.Sleep(2 * time.Hour)
		st, _ = c.Status(ctx)
		if len(st.Queue) != 0 || len(st.Dropped) != 1 || st.Dropped[0].Broker != 5 {
			t.Errorf("status %+v: want broker 5 dropped with its reason", st)
		}
	})
}

func TestStandbyDoesNothingAndTakesOverInFlightWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, _ := replace.NewFileStore(t.TempDir())
		// A previous holder died mid-replacement of broker 6.
		prev := &replace.Record{ID: "r-prev", OldBroker: 6, Phase: replace.PhaseRunning, Step: replace.StepMove, Created: time.Now()}
		store.Save(context.Background(), prev)
		ex := &fakeExec{store: store, runFor: time.Minute, refuse: map[int32]int{}, aborted: make(chan string, 1)}
		lease := &freeLease{deny: true}
		c := New(ex, store, lease, Options{Tick: 10 * time.Second, Log: zerolog.Nop()})
		ctx, _ := start(t, c)
		time.Sleep(time.Minute)
		var na *NotActiveError
		if _, err := c.Submit(ctx, operator(7)); !errors.As(err, &na) {
			t.Fatalf("a standby took a submission: %v", err)
		}
		time.Sleep(10 * time.Minute)
		if got := ex.runs(); len(got) != 0 {
			t.Errorf("a standby ran %v", got)
		}
		lease.mu.Lock()
		lease.deny = false
		lease.mu.Unlock()
		time.Sleep(time.Minute)
		if _, err := c.Submit(ctx, operator(7)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Minute)
		if got := ex.runs(); fmt.Sprint(got) != "[6:completed 7:completed]" {
			t.Errorf("after takeover: runs %v, want the in-flight 6 resumed first, then 7", got)
		}
	})
}

func TestPauseSurvivesARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, ex, opts := durable(t)
		first := New(ex, store, &freeLease{}, opts)
		ctx, stop := start(t, first)
		if err := first.SetPaused(who.With(ctx, "alice@bastion (from 10.0.0.9:4711)"), true); err != nil {
			t.Fatal(err)
		}
		stop()

		second := New(ex, store, &freeLease{}, opts)
		ctx, _ = start(t, second)
		second.Submit(ctx, operator(8))
		time.Sleep(10 * time.Minute)
		if st, _ := second.Status(ctx); !st.Paused || len(ex.runs()) != 0 {
			t.Fatalf("restarted controller: paused=%v runs=%v, want still paused and idle", st.Paused, ex.runs())
		} else if st.PauseReason != "by alice@bastion (from 10.0.0.9:4711)" {
			t.Errorf("restarted controller: pause reason %q, want who paused", st.PauseReason)
		}
		if err := second.SetPaused(ctx, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Minute)
		if got := ex.runs(); fmt.Sprint(got) != "[8:completed]" {
			t.Errorf("after resume: runs %v", got)
		}
	})
}

func TestQueueSurvivesARestartAndATakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, ex, opts := durable(t)
		opts.PauseFile = "" // the pause below only holds the queue until the restart
		first := New(ex, store, &freeLease{}, opts)
		ctx, stop := start(t, first)
		if err := first.SetPaused(ctx, true); err != nil {
			t.Fatal(err)
		}
		first.Submit(ctx, operator(3))
		first.Submit(ctx, Request{Broker: 4, Triggers: []replace.Trigger{replace.TriggerChaos}})
		time.Sleep(time.Minute)
		stop()

		// A standby with the same file must not overwrite it.
		standby := New(ex, store, &freeLease{deny: true}, opts)
		ctx, stop = start(t, standby)
		time.Sleep(time.Minute)
		stop()

		second := New(ex, store, &freeLease{}, opts)
		ctx, _ = start(t, second)
		time.Sleep(10 * time.Minute)
		if got := ex.runs(); fmt.Sprint(got) != "[3:completed 4:completed]" {
			t.Errorf("after restart: runs %v, want the two queued requests", got)
		}
		time.Sleep(time.Minute)
		if b, _ := os.ReadFile(opts.QueueFile); string(b) != "[]" {
			t.Errorf("queue file %q after the work was done, want []", b)
		}
	})
}

func TestAPauseByThePreviousHolderHoldsAfterTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, ex, opts := durable(t)
		lease := &freeLease{deny: true}
		standby := New(ex, store, lease, opts) // started before the pause
		ctx, _ := start(t, standby)
		time.Sleep(time.Minute)

		active := New(ex, store, &freeLease{}, opts)
		actx, astop := start(t, active)
		if err := active.SetPaused(actx, true); err != nil {
			t.Fatal(err)
		}
		astop()

		lease.mu.Lock()
		lease.deny = false
		lease.mu.Unlock()
		standby.Submit(ctx, operator(9))
		time.Sleep(10 * time.Minute)
		if st, _ := standby.Status(ctx); !st.LeaseHeld || !st.Paused || len(ex.runs()) != 0 {
			t.Fatalf("after takeover: lease %v paused %v runs %v, want the pause kept", st.LeaseHeld, st.Paused, ex.runs())
		}
	})
}

// OnAcquire can find that acting is unsafe: a reason pauses the controller
// durably (and says why), an error gives the lease back until the check
// passes.
func TestOnAcquirePausesOrGivesTheLeaseBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, ex, opts := durable(t)
		var mu sync.Mutex
		checkErr, pause := errors.New("DescribeInstances: throttled"), ""
		opts.OnAcquire = func(context.Context) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			return pause, checkErr
		}
		lease := &freeLease{}
		c := New(ex, store, lease, opts)
		ctx, _ := start(t, c)
		time.Sleep(time.Minute)
		st, _ := c.Status(ctx)
		if st.LeaseHeld || !strings.Contains(st.Lease, "throttled") || len(ex.runs()) != 0 {
			t.Fatalf("check failing: held %v lease %q runs %v, want the lease given back, the reason shown, nothing run", st.LeaseHeld, st.Lease, ex.runs())
		}
		synctest.Wait() // the loop turns after every command: let it settle
		if held, _ := lease.Held(ctx); held {
			t.Fatal("the lease is still taken")
		}

		mu.Lock()
		checkErr, pause = nil, "replacement r-1 in flight elsewhere"
		mu.Unlock()
		time.Sleep(time.Minute)
		st, _ = c.Status(ctx)
		if !st.LeaseHeld || !st.Paused || st.PauseReason != "replacement r-1 in flight elsewhere" || len(ex.runs()) != 0 {
			t.Fatalf("check pausing: %+v runs %v, want active, paused with the reason, nothing run", st, ex.runs())
		}
		if b, _ := os.ReadFile(opts.PauseFile); !strings.Contains(string(b), "r-1 in flight elsewhere") {
			t.Fatalf("pause file %q lacks the reason", b)
		}
		if _, err := c.Submit(ctx, operator(5)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		if len(ex.runs()) != 0 {
			t.Fatalf("paused, yet ran %v", ex.runs())
		}

		mu.Lock()
		pause = ""
		mu.Unlock()
		if err := c.SetPaused(ctx, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Minute)
		if st, _ := c.Status(ctx); st.Paused || st.PauseReason != "" || fmt.Sprint(ex.runs()) != "[5:completed]" {
			t.Fatalf("after resume: %+v runs %v", st, ex.runs())
		}
	})
}

// Issue 12: a paused daemon resumed an in-flight record before it checked
// the pause. Paused means nothing starts, a resume included.
func TestPausedControllerResumesNothingUntilResumed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, ex, o := durable(t)
		rec := &replace.Record{ID: "r-inflight", OldBroker: 3, Phase: replace.PhaseRunning, Step: replace.StepStopOld, Created: time.Now()}
		if err := store.Save(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(o.PauseFile, []byte("paused by an operator\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		c := New(ex, store, &freeLease{}, o)
		start(t, c)
		time.Sleep(time.Hour)
		if got := ex.runs(); len(got) != 0 {
			t.Fatalf("paused, yet ran %v", got)
		}
		if err := c.SetPaused(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Minute)
		if got := fmt.Sprint(ex.runs()); got != "[3:completed]" {
			t.Fatalf("after resume: runs %s, want the in-flight record finished", got)
		}
	})
}

// A lease that cannot be used (an I/O error, not another holder) is an
// error the status carries, never "standby".
func TestLeaseIOErrorIsAnErrorNotStandby(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, ex, o := durable(t)
		l := &freeLease{ioErr: errors.New("lease: open /srv/fleetd/lease: read-only file system")}
		c := New(ex, store, l, o)
		start(t, c)
		time.Sleep(time.Minute)
		st, err := c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.LeaseHeld || !strings.Contains(st.Error, "read-only file system") {
			t.Fatalf("status %+v: want an error naming the lease problem", st)
		}
		l.mu.Lock()
		l.ioErr = nil
		l.mu.Unlock()
		time.Sleep(time.Minute)
		if st, _ := c.Status(context.Background()); !st.LeaseHeld || st.Error != "" {
			t.Fatalf("after the fix: %+v", st)
		}
	})
}

// Issue 12: a refused request was retried with a new record each time (8
// records for one broker in two minutes). One request, one record.
func TestRefusedRetriesReuseTheRequestsOneRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ex, _, _, _ := setup(t)
		ex.refuse[2] = 5
		ex.runFor = time.Minute
		c.Submit(context.Background(), operator(2))
		time.Sleep(time.Hour)
		recs, err := ex.store.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].Phase != replace.PhaseCompleted {
			t.Fatalf("%d records (first %+v), want one, completed after 5 refusals", len(recs), recs[0])
		}
		if got := fmt.Sprint(ex.runs()); strings.Count(got, "2:refused") != 5 {
			t.Errorf("runs %s, want five refusals then the replacement", got)
		}
	})
}

// Issue 12: after a restart, fleetd resumed the replacement of broker 3 and
// a second "replace broker 3" was queued; once broker 3 was gone it was
// retried forever. It is served by the running replacement, and a request
// queued before a replacement of its broker finished is done by it.
func TestRequestForABrokerBeingOrAlreadyReplacedIsServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, ex, _, _, _ := setup(t)
		ctx := context.Background()
		c.Submit(ctx, operator(3))
		time.Sleep(2 * time.Second) // broker 3 is being replaced
		q, err := c.Submit(ctx, operator(3))
		if err != nil || q.Outcome != Attached || q.Into == "" || q.Request.ServedBy != q.Into {
			t.Fatalf("second request: %+v %v; want it attached to the running replacement", q, err)
		}
		if st, _ := c.Status(ctx); len(st.Attached) != 1 || st.Attached[0].ID != q.Request.ID || st.Running == nil || st.Running.ID != q.Into {
			t.Fatalf("while running, status shows attached %+v (running %v); want the second request there", st.Attached, st.Running)
		}
		// A request made during the run that the queue still holds (a
		// trigger that raced the running check) is done once the run ends.
		c.do(ctx, func(s *state) {
			s.queue.Add(Request{ID: "q-late", Broker: 3, Received: time.Now(), Triggers: []replace.Trigger{"instance-retirement"}})
		})
		time.Sleep(time.Hour)
		st, _ := c.Status(ctx)
		if got := fmt.Sprint(ex.runs()); got != "[3:completed]" {
			t.Fatalf("runs %s, want one replacement of broker 3", got)
		}
		if len(st.Queue) != 0 || len(st.Done) != 2 || len(st.Attached) != 0 || st.Done[1].ServedBy == "" || !strings.Contains(st.Done[0].Reason, "done: broker 3 was replaced by") {
			t.Fatalf("status queue %+v done %+v", st.Queue, st.Done)
		}
		if recs, _ := ex.store.List(ctx); len(recs) != 1 {
			t.Errorf("%d records for broker 3, want 1", len(recs))
		}
	})
}

// A second request for a queued broker says what became of it: merged
// into the queued one, or refused when it asks for different options; a
// queued request can be cancelled and is then listed as dropped.
func TestSubmitAnswersWhatHappenedAndCancelWithdraws(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _, _, _, _ := setup(t)
		ctx := context.Background()
		c.SetPaused(ctx, true) // nothing starts: the requests stay queued
		first, err := c.Submit(ctx, Request{Broker: 2, Triggers: []replace.Trigger{replace.TriggerOperator}, Throttle: replace.Rate(20 << 20)})
		if err != nil || first.Outcome != Queued {
			t.Fatalf("first: %+v %v", first, err)
		}
		merged, err := c.Submit(ctx, Request{Broker: 2, Triggers: []replace.Trigger{replace.TriggerChaos}})
		if err != nil || merged.Outcome != Merged || merged.Into != first.Request.ID || len(merged.Request.Triggers) != 2 || merged.Request.Throttle != replace.Rate(20<<20) {
			t.Fatalf("second: %+v %v; want merged into %s keeping its throttle", merged, err, first.Request.ID)
		}
		var cf *ConflictError
		if _, err := c.Submit(ctx, Request{Broker: 2, Throttle: replace.Rate(5 << 20)}); !errors.As(err, &cf) || !strings.Contains(err.Error(), "cancel it first") {
			t.Fatalf("a contradicting request: %v, want a conflict naming the fix", err)
		}
		var nq *NotQueuedError
		if _, err := c.Cancel(ctx, "q-nope", ""); !errors.As(err, &nq) {
			t.Fatalf("cancel of an unknown id: %v", err)
		}
		got, err := c.Cancel(who.With(ctx, "alice@bastion (from 10.0.0.9:4711)"), first.Request.ID, "replaced by hand")
		if err != nil || got.Broker != 2 {
			t.Fatalf("cancel: %+v %v", got, err)
		}
		st, _ := c.Status(ctx)
		if len(st.Queue) != 0 || len(st.Dropped) != 1 || st.Dropped[0].Reason != "cancelled by alice@bastion (from 10.0.0.9:4711): replaced by hand" {
			t.Fatalf("after cancel: queue %+v dropped %+v", st.Queue, st.Dropped)
		}
	})
}

// eventLog records the controller's events.
type eventLog struct {
	mu  sync.Mutex
	evs []string
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := string(ev.Kind)
	if ev.Request != nil {
		s += fmt.Sprintf(":%d", ev.Request.Broker)
	}
	if ev.Kind == EventRefused {
		s += "@" + ev.Waited.Round(time.Second).String()
	}
	l.evs = append(l.evs, s)
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.evs, " ")
}

// The controller tells what it decided, in order: the lease taken, a
// request accepted, each refusal with how long the request has waited, a
// pause and a resume by an operator, the lease lost.
func TestControllerEventsTellWhatItDecided(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, ex, o := durable(t)
		var log eventLog
		o.OnEvent, o.RetryBase, o.RetryMax = log.add, 30*time.Second, time.Minute
		ls := &freeLease{}
		c := New(ex, store, ls, o)
		start(t, c)
		ctx := context.Background()
		time.Sleep(time.Second)
		ex.refuse[4] = 2
		if _, err := c.Submit(ctx, operator(4)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Minute)
		if err := c.SetPaused(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := c.SetPaused(ctx, true); err != nil { // no change: no event
			t.Fatal(err)
		}
		if err := c.SetPaused(ctx, false); err != nil {
			t.Fatal(err)
		}
		ls.mu.Lock()
		ls.deny = true
		ls.mu.Unlock()
		time.Sleep(time.Minute)
		want := "lease-acquired accepted:4 refused:4@0s refused:4@39s paused resumed lease-lost"
		if got := log.String(); got != want {
			t.Errorf("events\n got %s\nwant %s", got, want)
		}
	})
}
