package replace

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// identityAtStopOld runs the gate of an identity replacement of broker 2 and
// stops there, as a fleetd killed (or paused) right after the gate leaves it.
func identityAtStopOld(t *testing.T, ex *Executor) *Record {
	t.Helper()
	r, err := ex.Begin(context.Background(), Request{Broker: 2, Strategy: StrategyIdentity})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ex.Opts.OnEvent = func(ev string, _ *Record) {
		if ev == "after:gate" {
			cancel()
		}
	}
	_ = ex.Run(ctx, r)
	ex.Opts.OnEvent = nil
	if r.Step != StepStopOld || r.Phase != PhaseRunning {
		t.Fatalf("set-up: record at %s (%s), want stop-old", r.Step, r.Phase)
	}
	return r
}

// The gate ran once; by the time the workflow resumes, another broker's
// instance is stopped. The stop must ask the guard again, wait, and roll
// back (nothing was touched), never stop broker 2.
func TestResumedIdentityStopWaitsOnTheGuardThenRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, p, ex := fakes()
		ex.Opts.GuardWait = 10 * time.Minute
		r := identityAtStopOld(t, ex)
		p.setState("i-3", StateStopped)

		done := make(chan error, 1)
		go func() { done <- ex.Run(context.Background(), r) }()
		time.Sleep(time.Minute)
		synctest.Wait()
		saved, _ := ex.Store.Load(context.Background(), r.ID)
		if saved.Phase != PhaseRunning || !strings.Contains(saved.Waiting, "broker-down: node 3 is down") {
			t.Fatalf("after a minute: phase %s waiting %q; want running and waiting on broker-down", saved.Phase, saved.Waiting)
		}
		<-done
		if r.Phase != PhaseRolledBack || !strings.Contains(r.Error, "refused for 10m0s by the blast-radius guard") {
			t.Fatalf("phase %s error %q; want rolled back by the guard", r.Phase, r.Error)
		}
		if p.stops != 0 || p.terminations != 0 {
			t.Fatalf("stops %d terminations %d: the guard let an act through", p.stops, p.terminations)
		}
		if _, ok := c.snap.Broker(2); !ok || r.Waiting != "" {
			t.Fatalf("broker 2 listed %v, waiting %q", ok, r.Waiting)
		}
	})
}

// When the other broker returns within the bound, the workflow goes on.
func TestGuardWaitEndsWhenTheOtherBrokerReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, p, ex := fakes()
		r := identityAtStopOld(t, ex)
		p.setState("i-3", StateStopped)
		done := make(chan error, 1)
		go func() { done <- ex.Run(context.Background(), r) }()
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if p.stops != 0 {
			t.Fatal("stopped broker 2 while broker 3's instance was stopped")
		}
		p.setState("i-3", StateRunning)
		if err := <-done; err != nil || r.Phase != PhaseCompleted {
			t.Fatalf("phase %s err %v", r.Phase, err)
		}
		if p.stops != 1 || r.Waiting != "" {
			t.Fatalf("stops %d waiting %q", p.stops, r.Waiting)
		}
	})
}

// Once the stop may have been issued (recorded before acting: fleetd may
// have died right after), a refusal cannot claim a rollback: the old disk may
// be gone. It fails for a person instead.
func TestGuardRefusalAfterTheStopBeganIsFailedNotRolledBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, p, ex := fakes()
		ex.Opts.GuardWait = 2 * time.Minute
		r := identityAtStopOld(t, ex)
		r.OldStopped = true
		p.setState("i-3", StateStopping)
		_ = ex.Run(context.Background(), r)
		if r.Phase != PhaseFailed || p.stops != 0 || p.terminations != 0 {
			t.Fatalf("phase %s stops %d terminations %d", r.Phase, p.stops, p.terminations)
		}
	})
}

// A guard that cannot read the cluster refuses: fail closed.
func TestGuardFailsClosedWhenInstancesCannotBeListed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, p, _ := fakes()
		ex := New(c, failingInstances{p}, &memStore{}, Options{Poll: time.Second, GuardWait: time.Minute})
		v := ex.WhatIf(context.Background(), []int32{2})
		if v.Safe || !strings.Contains(v.Summary(), "cannot-evaluate") {
			t.Fatalf("verdict %s, want cannot-evaluate", v.Summary())
		}
	})
}

type failingInstances struct{ *fakeProvider }

func (failingInstances) Instances(context.Context) ([]Instance, error) { return nil, errCloud }

// Issue 12: GET /v1/replacements/..%2F..%2Foutside read a .json file outside
// state_dir: Load skipped the id check Save had.
func TestFileStoreLoadRefusesIdsThatLeaveTheStore(t *testing.T) {
	root := t.TempDir()
	s, err := NewFileStore(root + "/records")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root+"/outside.json", []byte(`{"id":"outside","phase":"completed"}`), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"../outside", "..", "", "a/b", "r-1\x00", "-rf"} {
		if _, err := s.Load(context.Background(), id); !errors.Is(err, ErrBadID) {
			t.Errorf("Load(%q) = %v, want ErrBadID", id, err)
		}
	}
	if _, err := s.Load(context.Background(), "r-20261203T100000-2-abcd0123"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a well-formed unknown id: %v, want ErrNotFound", err)
	}
}
