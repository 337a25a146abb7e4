//go:build integration

package local_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/testbed"
)

// Three controllers formatted as Kafka documents for kraft.version 1: a new
// controller joins as an observer with its own directory id, becomes a voter
// with AddRaftVoter, and an old one leaves with RemoveRaftVoter; DescribeQuorum
// v2 reports every step.
func TestDynamicQuorumTakesANewControllerAndLetsAnOldOneGo(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, 1, testbed.WithControllers(3))
	ctx := testbed.Context(t)
	k := replace.KafkaCluster{Client: c.Client}
	quorum := func() *health.Quorum {
		t.Helper()
		q, err := k.Quorum(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	caughtUp := func(want ...int32) func() error {
		return func() error {
			q, err := k.Quorum(ctx)
			if err != nil {
				return err
			}
			if !slices.Equal(q.VoterIDs(), want) {
				return fmt.Errorf("voters %v, want %v", q.VoterIDs(), want)
			}
			if v := health.QuorumHealthy(q); !v.Safe && len(want)%2 == 1 {
				return fmt.Errorf("quorum not healthy: %s", v.Summary())
			}
			for _, v := range q.Voters {
				if !v.CaughtUp {
					return fmt.Errorf("voter %d not caught up (lag %d)", v.ID, v.Lag)
				}
			}
			return nil
		}
	}
	testbed.Eventually(t, 60*time.Second, caughtUp(9000, 9001, 9002))
	q := quorum()
	if q.Kind != health.QuorumDynamic || q.KRaftVersion != 1 {
		t.Fatalf("quorum kind %s, kraft.version %d: want dynamic, 1", q.Kind, q.KRaftVersion)
	}
	for _, ctl := range c.Fleet.Controllers() {
		v, _ := q.Voter(ctl.ID)
		if v.DirectoryID != ctl.DirectoryID || len(v.Endpoints) != 1 || v.Endpoints[0] != "CONTROLLER://"+ctl.Addr {
			t.Errorf("voter %d = %+v, want directory %s and endpoint CONTROLLER://%s", ctl.ID, v, ctl.DirectoryID, ctl.Addr)
		}
	}

	// The brokers find the quorum through the fleet's stable address.
	boot, err := k.QuorumBootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(boot[1], c.Fleet.QuorumBootstrap()) {
		t.Errorf("broker 1's controller.quorum.bootstrap.servers = %v, want %v", boot[1], c.Fleet.QuorumBootstrap())
	}

	added, err := c.Fleet.AddController(ctx, 9003, "")
	if err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 60*time.Second, func() error {
		o, ok := quorum().Observer(9003)
		if !ok || !o.CaughtUp || o.DirectoryID != added.DirectoryID {
			return fmt.Errorf("observer 9003 = %+v (found %v), want caught up with directory %s", o, ok, added.DirectoryID)
		}
		return nil
	})
	if err := k.AddVoter(ctx, replace.Voter{ID: 9003, DirectoryID: added.DirectoryID, Endpoint: "CONTROLLER://" + added.Addr}); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 60*time.Second, caughtUp(9000, 9001, 9002, 9003))
	if v := health.QuorumHealthy(quorum()); v.Safe || !v.Has(health.CodeVoterChange) {
		t.Errorf("four voters: %+v, want a voter-change-in-flight refusal", v)
	}
	// Repeating the act (a resumed workflow does) is not an error.
	if err := k.AddVoter(ctx, replace.Voter{ID: 9003, DirectoryID: added.DirectoryID, Endpoint: "CONTROLLER://" + added.Addr}); err != nil {
		t.Fatalf("repeated AddVoter: %v", err)
	}
	old, _ := c.Fleet.Node(9000)
	if err := k.RemoveVoter(ctx, 9000, old.DirectoryID); err != nil {
		t.Fatal(err)
	}
	// A removed controller is stopped at once, as the controller workflow
	// does: left running it tells observers that reach it through the
	// bootstrap address that the leader is unknown (see replace's
	// removeOldVoter).
	if err := c.Fleet.StopNode(ctx, 9000); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 60*time.Second, caughtUp(9001, 9002, 9003))
	// Repeating it once a leader is elected again is not an error. (Right
	// after the old leader removed itself Kafka answers NOT_LEADER, which
	// the workflow retries like any transient error.)
	if err := k.RemoveVoter(ctx, 9000, old.DirectoryID); err != nil {
		t.Fatalf("repeated RemoveVoter: %v", err)
	}
	// The cluster still takes writes with the new quorum.
	c.CreateTopic("after", 1, 1, 1)
	testbed.Eventually(t, 30*time.Second, caughtUp(9001, 9002, 9003))
}
