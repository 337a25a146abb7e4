//go:build integration

package replace_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/testbed"
)

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
	q, err := replace.KafkaCluster{Client: c.Client}.Quorum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if q.Kind != health.QuorumStatic || q.KRaftVersion > 0 {
		t.Errorf("quorum %s, kraft.version %d: want static, 0", q.Kind, q.KRaftVersion)
	}
	if _, err := c.Fleet.AddController(ctx, 9001, ""); err == nil {
		t.Error("a static fleet added a controller")
	}
	all, _ := store.List(ctx)
	if len(all) != 1 || all[0].Phase != replace.PhaseRefused {
		t.Errorf("records %v, want the one refused", all)
	}
}
