//go:build integration

package replace_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
			// Never left with fewer caught-up voters: a dip no longer than
			// an election (a new leader reports a follower as never caught
			// up until its first fetch) is not a voter lost.
			testbed.Eventually(t, 2*health.CaughtUpWithin, func() error {
				q, err := k.Quorum(ctx)
				if err != nil {
					return err
				}
				if up := caughtUp(q); up < minUp {
					return fmt.Errorf("at %s only %d voters caught up (%v)", ev, up, q.VoterIDs())
				}
				return nil
			})
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

// The gates refuse, with reasons that say why: a controller replacement
// while another voter is down, and a broker move while a voter change is
// half done (a voter added, none removed). Nothing is changed.
func TestGatesRefuseWhileTheQuorumIsDegraded(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, 3, testbed.WithControllers(3))
	c.CreateTopic("orders", 3, 3, 2)
	ctx := testbed.Context(t)
	k := replace.KafkaCluster{Client: c.Client}
	ex, _, _ := newExecutor(t, c, fastOptions(t))
	leader := func() int32 {
		q, err := k.Quorum(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return q.Leader
	}
	// A voter is added by hand and none removed.
	if _, err := c.Fleet.AddController(ctx, 9010, ""); err != nil {
		t.Fatal(err)
	}
	var added health.Replica
	testbed.Eventually(t, 60*time.Second, func() error {
		q, err := k.Quorum(ctx)
		if err != nil {
			return err
		}
		o, ok := q.Observer(9010)
		if !ok || !o.CaughtUp {
			return fmt.Errorf("9010 not a caught-up observer yet")
		}
		added = o
		return nil
	})
	info, _ := c.Fleet.Node(9010)
	if err := k.AddVoter(ctx, replace.Voter{ID: 9010, DirectoryID: added.DirectoryID, Endpoint: "CONTROLLER://" + info.Addr}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 60*time.Second, func() error {
		rec, err := ex.Preview(ctx, replace.Request{Broker: 2, Strategy: replace.StrategyMove})
		if err != nil {
			return err
		}
		if rec.Phase != replace.PhaseRefused || !strings.Contains(rec.Error, "voter-change-in-flight: the quorum has 4 voters") {
			return fmt.Errorf("broker move during a voter change: %s %q", rec.Phase, rec.Error)
		}
		return nil
	})
	// Undone by hand, the quorum is three again.
	if err := k.RemoveVoter(ctx, 9010, added.DirectoryID); err != nil {
		t.Fatal(err)
	}
	if err := c.Fleet.Remove(9010); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 60*time.Second, func() error {
		q, err := k.Quorum(ctx)
		if err != nil {
			return err
		}
		if v := health.QuorumHealthy(q); !v.Safe {
			return fmt.Errorf("quorum: %s", v.Summary())
		}
		return nil
	})

	// A voter that is not the leader goes down; another follower is asked
	// to be replaced.
	var followers []int32
	for _, id := range []int32{9000, 9001, 9002} {
		if id != leader() {
			followers = append(followers, id)
		}
	}
	down, other := followers[0], followers[1]
	if err := c.Fleet.KillNode(down); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 60*time.Second, func() error {
		rec, err := ex.Preview(ctx, replace.Request{Broker: other, Strategy: replace.StrategyController})
		if err != nil {
			return err
		}
		if rec.Phase != replace.PhaseRefused || !strings.Contains(rec.Error, fmt.Sprintf("voter-lagging: controller voter %d is down or not caught up", down)) {
			return fmt.Errorf("replace controller %d while %d is down: %s %q", other, down, rec.Phase, rec.Error)
		}
		return nil
	})
	if got := len(c.Fleet.Controllers()); got != 3 {
		t.Errorf("%d controllers after the refusal, want 3 (nothing launched)", got)
	}
	// Replacing the dead voter itself is the cure, and allowed.
	if rec, err := ex.Preview(ctx, replace.Request{Broker: down, Strategy: replace.StrategyController}); err != nil || rec.Phase == replace.PhaseRefused {
		t.Errorf("replace dead controller %d: %v %s %q", down, err, rec.Phase, rec.Error)
	}
}

// A static quorum (kraft.version 0) cannot change voters: the refusal names
// what is needed and the upgrade command, and nothing is changed.
func TestStaticQuorumRefusesControllerReplacement(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, 1, testbed.WithStaticQuorum())
	ctx := testbed.Context(t)
	ex, _, store := newExecutor(t, c, fastOptions(t))
	rec, err := ex.Begin(ctx, replace.Request{Broker: 9000, Strategy: replace.StrategyController})
	if err != nil {
		t.Fatal(err)
	}
	_ = ex.Run(ctx, rec)
	if rec.Phase != replace.PhaseRefused {
		t.Fatalf("static quorum: %s %q, want refused", rec.Phase, rec.Error)
	}
	for _, want := range []string{"static-quorum", "kraft.version=1", "Kafka 4.1 or later", "controller.quorum.bootstrap.servers"} {
		if !strings.Contains(rec.Error, want) {
			t.Errorf("refusal %q does not say %q", rec.Error, want)
		}
	}
	if got := len(c.Fleet.Controllers()); got != 1 || rec.NewInstance != "" {
		t.Errorf("%d controllers, new instance %q: want nothing changed", got, rec.NewInstance)
	}
	all, _ := store.List(ctx)
	if len(all) != 1 || all[0].Phase != replace.PhaseRefused {
		t.Errorf("records %v, want the one refused", all)
	}
}
