//go:build integration

package replace_test

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/testbed"
)

// Each of three controllers is replaced in turn while the ledger writes to
// the brokers: the first run is killed right after AddRaftVoter, the second
// right after RemoveRaftVoter, and each is resumed from its record alone.
// After each, DescribeQuorum lists exactly the intended voters, all caught
// up, and the old controller's process is gone; the ledger loses nothing.
func TestReplaceEachControllerInTurn(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, 3, testbed.WithControllers(3))
	c.CreateTopic("orders", 6, 3, 2)
	run := c.StartLedger("orders", 200)
	ctx := testbed.Context(t)
	k := replace.KafkaCluster{Client: c.Client}

	voters := []int32{9000, 9001, 9002}
	killAfter := map[int32]string{9000: "after:" + string(replace.StepAddVoter), 9001: "after:" + string(replace.StepRemoveOldVoter)}
	for _, old := range []int32{9000, 9001, 9002} {
		before, _ := c.Fleet.Node(old)
		ex, p, store := newExecutor(t, c, fastOptions(t))
		runCtx, kill := context.WithCancel(ctx)
		minUp := len(voters)
		ex.Opts.OnEvent = func(ev string, r *replace.Record) {
			if q, err := k.Quorum(ctx); err == nil {
				if up := caughtUp(q); up < minUp {
					t.Errorf("at %s only %d voters caught up (%v)", ev, up, q.VoterIDs())
				}
			}
			if ev == killAfter[old] {
				kill()
			}
		}
		rec, err := ex.Begin(runCtx, replace.Request{Broker: old, Strategy: replace.StrategyController})
		if err != nil {
			t.Fatal(err)
		}
		err = ex.Run(runCtx, rec)
		if killAfter[old] != "" {
			if rec.Phase.Terminal() {
				t.Fatalf("controller %d: the run was to be killed at %s but ended %s", old, killAfter[old], rec.Phase)
			}
			again := replace.New(replace.KafkaCluster{Client: c.Client}, p, store, fastOptions(t))
			inflight, _ := replace.InFlight(ctx, store)
			if len(inflight) != 1 {
				t.Fatalf("after the kill: %d records in flight", len(inflight))
			}
			rec = inflight[0]
			err = again.Run(ctx, rec)
		}
		if err != nil || rec.Phase != replace.PhaseCompleted {
			t.Fatalf("replace controller %d: %s %v", old, rec.Phase, err)
		}
		voters = append(slices.DeleteFunc(voters, func(id int32) bool { return id == old }), rec.NewBroker)
		slices.Sort(voters)
		testbed.Eventually(t, 30*time.Second, func() error {
			q, err := k.Quorum(ctx)
			if err != nil {
				return err
			}
			if !slices.Equal(q.VoterIDs(), voters) || caughtUp(q) != len(voters) || q.Leader < 0 {
				return fmt.Errorf("quorum voters %v (%d caught up, leader %d), want %v all caught up", q.VoterIDs(), caughtUp(q), q.Leader, voters)
			}
			return nil
		})
		if _, ok := c.Fleet.Node(old); ok {
			t.Errorf("controller %d's instance still exists", old)
		}
		if before.PID != 0 && processAlive(before.PID) {
			t.Errorf("controller %d's process %d still runs", old, before.PID)
		}
		newInfo, _ := c.Fleet.Node(rec.NewBroker)
		if newInfo.Role != "controller" || newInfo.Rack != before.Rack {
			t.Errorf("new node %d = %+v, want a controller in %s", rec.NewBroker, newInfo, before.Rack)
		}
		for _, s := range rec.Steps {
			t.Logf("controller %d -> %d: %-20s %s", old, rec.NewBroker, s.Step, s.Duration().Round(time.Millisecond))
		}
	}
	c.StopLedger(run)
	// The cluster still works on the new quorum: metadata changes commit.
	c.CreateTopic("after-all-three", 3, 3, 2)
}

// processAlive reports whether pid still runs (signal 0 probes it).
func processAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func caughtUp(q *health.Quorum) int {
	n := 0
	for _, v := range q.Voters {
		if v.CaughtUp {
			n++
		}
	}
	return n
}
