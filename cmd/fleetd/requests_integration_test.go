//go:build integration

package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/testbed"
)

// Issue 13: an operator's request means what it says. Through the CLI and
// FLEETD_API (no --api flag): every replace flag reaches the executor, a
// duplicate says where it went, a contradicting one and a flag the daemon
// cannot apply are errors, a queued request can be cancelled, and a running
// replacement's throttle is changed in the record and on the brokers.
func TestOperatorRequestsMeanWhatTheySay(t *testing.T) {
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 24)
	listen := freeAddr(t)
	d := startDaemon(t, writeConfig(t, c, localFleetServer(t, c), t.TempDir(), listen, "replace:\n  poll: 500ms\n"), listen)
	t.Setenv("FLEETD_API_TOKEN", testToken)
	t.Setenv("FLEETD_API", d.url)
	t.Setenv("FLEETD_LOCAL_FLEET", "")
	cli := func(args ...string) (int, string) {
		var out, errb strings.Builder
		code := run(context.Background(), args, &out, &errb)
		return code, out.String() + errb.String()
	}
	must := func(want string, wantCode int, args ...string) string {
		t.Helper()
		code, out := cli(args...)
		if code != wantCode || !strings.Contains(out, want) {
			t.Fatalf("fleetd %s: exit %d %q; want %d and %q", strings.Join(args, " "), code, out, wantCode, want)
		}
		return out
	}
	queueID := regexp.MustCompile(`q-[0-9a-f]{8}`)
	flags := []string{"--throttle", "1MiB", "--concurrency", "1", "--order", "largest-first", "--strategy", "move", "--reason", "disk warnings"}

	must("paused", exitOK, "pause")
	first := queueID.FindString(must("queued: request", exitOK, append([]string{"replace", "--broker", "2"}, flags...)...))
	q := d.status(t).Controller.Queue
	if len(q) != 1 || q[0].ID != first || q[0].Throttle != replace.Rate(1<<20) || q[0].Concurrency != 1 || q[0].Order != replace.LargestFirst ||
		q[0].Strategy != replace.StrategyMove || q[0].Reason != "disk warnings" {
		t.Fatalf("queued %+v: want every flag carried", q)
	}
	must("merged: broker 2 was already queued as "+first, exitOK, "replace", "--broker", "2")
	must("cancel it first", exitError, "replace", "--broker", "2", "--throttle", "3MiB")
	must("--poll cannot apply with --api", exitError, "replace", "--broker", "2", "--poll", "1s")
	must("cancelled: request "+first, exitOK, "cancel", first, "--reason", "wrong flags")
	st := d.status(t)
	if len(st.Controller.Queue) != 0 || len(st.Controller.Dropped) != 1 || !strings.HasPrefix(st.Controller.Dropped[0].Reason, "cancelled by "+defaultActor()+" (from 127.0.0.1:") || !strings.HasSuffix(st.Controller.Dropped[0].Reason, "): wrong flags") {
		t.Fatalf("after cancel: queue %+v dropped %+v", st.Controller.Queue, st.Controller.Dropped)
	}
	must("no replacement is running", exitNotSafe, "throttle", "30MiB")

	must("queued: request", exitOK, append([]string{"replace", "--broker", "2"}, flags...)...)
	must("resumed", exitOK, "resume")
	st = d.waitFor(t, "broker 2's copy to run", 2*time.Minute, func(st api.Status) bool {
		return st.Controller.Running != nil && st.Controller.Running.Step == replace.StepMove
	})
	id := st.Controller.Running.ID
	must("attached: broker 2 is being replaced right now by "+id, exitOK, "replace", "--broker", "2")
	if st := d.status(t); len(st.Controller.Attached) != 1 {
		t.Fatalf("attached requests %+v: want the duplicate shown beside the running replacement", st.Controller.Attached)
	}
	must("throttle 1MiB/s -> 30MiB/s: applied to", exitOK, "throttle", "30MiB")
	testbed.Eventually(t, 30*time.Second, func() error {
		for _, cfg := range c.ThrottleConfigs() {
			if strings.Contains(cfg, "leader.replication.throttled.rate=") && !strings.HasSuffix(cfg, "=31457280") {
				return fmt.Errorf("not yet the new rate: %s", cfg)
			}
		}
		return nil
	})

	done := d.waitEnded(t, id)
	if done.Phase != replace.PhaseCompleted {
		t.Fatalf("replacement %s: %s (%s)", id, done.Phase, done.Error)
	}
	if done.Throttle != replace.Rate(30<<20) || done.Concurrency != 1 || done.Order != replace.LargestFirst || done.Reason != "disk warnings" ||
		done.Plan == nil || done.Plan.Options.Concurrency != 1 || done.Plan.Options.Order != replace.LargestFirst {
		t.Fatalf("record %+v (plan options %+v): want the request's options, and the changed throttle recorded", done.Record, done.Plan)
	}
	sizes := make([]int64, len(done.Plan.Moves))
	for i, m := range done.Plan.Moves {
		sizes[i] = m.Bytes
	}
	if !slices.IsSortedFunc(sizes, func(a, b int64) int { return int(b - a) }) {
		t.Errorf("move sizes %v: want largest first", sizes)
	}
	st = d.waitFor(t, "the attached request to be done", 30*time.Second, func(st api.Status) bool { return len(st.Controller.Done) == 1 })
	if st.Controller.Done[0].ServedBy != id || len(st.Controller.Attached) != 0 {
		t.Fatalf("done %+v attached %+v", st.Controller.Done, st.Controller.Attached)
	}
	testbed.Eventually(t, 15*time.Second, c.NoThrottles)
	d.stop(t)
	checkLogs(t, d.logs.String())
}
