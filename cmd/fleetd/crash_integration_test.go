//go:build integration

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/testbed"
)

// fleetdProc runs this test binary as fleetd with args; pauseAt, if set,
// makes it stop dead at that event.
func fleetdProc(t *testing.T, pauseAt string, args ...string) (*exec.Cmd, *bufio.Scanner, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "FLEETD_TEST_AS_FLEETD=1", "FLEETD_TEST_PAUSE_AT="+pauseAt, "FLEETD_TEST_ARGS="+strings.Join(args, " "))
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out), stderr
}

// killAt runs fleetd until it pauses at event, then SIGKILLs it. It reports
// whether the event was reached (a rollback or an early finish may skip it).
func killAt(t *testing.T, event string, args ...string) bool {
	t.Helper()
	cmd, out, stderr := fleetdProc(t, event, args...)
	paused := make(chan bool, 1)
	go func() {
		for out.Scan() {
			if strings.HasPrefix(out.Text(), "FLEETD-PAUSED ") {
				paused <- true
				return
			}
		}
		paused <- false
	}()
	select {
	case ok := <-paused:
		if ok {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
		_ = cmd.Wait()
		if !ok {
			t.Logf("fleetd ended before %s:\n%s", event, tail(stderr.String()))
		}
		return ok
	case <-time.After(4 * time.Minute):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		t.Fatalf("fleetd never reached %s:\n%s", event, tail(stderr.String()))
		return false
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

// resume runs fleetd to the end and returns its exit code.
func resume(t *testing.T, args ...string) int {
	t.Helper()
	cmd, out, stderr := fleetdProc(t, "", args...)
	// Bound the resumed run: a fleetd that never finishes must fail the test,
	// not hang it until go test's own timeout.
	hung := time.AfterFunc(5*time.Minute, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
	var lines []string
	for out.Scan() {
		lines = append(lines, out.Text())
	}
	err := cmd.Wait()
	if !hung.Stop() {
		t.Fatalf("resumed fleetd did not finish within 5 minutes:\n%s", tail(stderr.String()))
	}
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code == exitError {
		t.Errorf("resumed fleetd failed (exit 2):\n%s\n%s", strings.Join(lines, "\n"), tail(stderr.String()))
	}
	return code
}

// assertConsistent checks the invariants that must hold after every crash and
// resume: the replacement ended (completed or rolled back), every replica sits
// on a serving broker with a full ISR, and no throttle is left.
func assertConsistent(t *testing.T, c *testbed.Cluster, store *replace.FileStore) {
	t.Helper()
	ctx := testbed.Context(t)
	inflight, err := replace.InFlight(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if len(inflight) > 0 {
		t.Errorf("replacement %s still in flight at %s", inflight[0].ID, inflight[0].Step)
	}
	testbed.Eventually(t, 60*time.Second, c.Settled)
	testbed.Eventually(t, 15*time.Second, c.NoThrottles)
}

// TestCrashAtEveryStepBoundaryResumesOrRollsBack SIGKILLs a real fleetd
// process at every step boundary of a move, and once in the middle of a batch,
// then runs it again. Every run must end completed or cleanly rolled back,
// with no throttle left, no broker holding replicas terminated, and the
// ledger, running throughout, must lose nothing.
func TestCrashAtEveryStepBoundaryResumesOrRollsBack(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 12)
	run := c.StartLedger("orders", 100)
	fleetURL, stateDir, store := cliFleet(t, c)
	common := []string{"--local-fleet", fleetURL, "--state-dir", stateDir, "--throttle", "4MiB", "--concurrency", "2", "--poll", "300ms"}

	// Every durable event of every workflow table is a kill point in
	// internal/replace's TestKilledAtEveryStepEventOfEveryWorkflow (fakes,
	// virtual time). Here, with real processes and real Kafka, the three
	// points where the cluster's own state matters most: a new instance
	// launched but not registered, a batch submitted and copying, the old
	// broker stopping.
	adaptive := []string{"--throttle", "1MiB", "--throttle-max", "8MiB", "--target-p99", "5s"}
	events := []struct {
		ev    string
		extra []string
	}{
		{"after:launch", nil},
		{"moves-submitted:", nil}, // the first moves submitted, copying, fleetd dead mid-window
		// An adaptive throttle that has just raised its rate (recorded
		// and set), moves in flight.
		{"throttle-adapted", adaptive},
		{"after:stop-old", nil},
	}
	for _, e := range events {
		ev := e.ev
		t.Run(strings.ReplaceAll(ev, ":", "_"), func(t *testing.T) {
			victim := oldestBroker(c)
			args := append(append([]string{"replace", "--broker", fmt.Sprint(victim)}, common...), e.extra...)
			if !killAt(t, ev, args...) {
				t.Fatalf("fleetd did not reach %s", ev)
			}
			code := resume(t, append([]string{"replace"}, common...)...)
			recs, _ := store.List(testbed.Context(t))
			last := recs[len(recs)-1]
			t.Logf("killed at %s, resumed: exit %d, %s (%s)", ev, code, last.Phase, last.Error)
			if last.Phase != replace.PhaseCompleted && last.Phase != replace.PhaseRolledBack {
				t.Fatalf("replacement ended %s: %s", last.Phase, last.Error)
			}
			assertConsistent(t, c, store)
			// The resumed run's canary started, on a cluster whose old
			// broker was cordoned already (it spreads around it).
			if v := last.Canary; v == nil || v.Error != "" || !v.Verified {
				t.Errorf("resumed at %s: canary verdict %+v, want one, verified", ev, v)
			}
			if ev == "moves-submitted:" {
				// The move cordoned the victim first; killed mid-move and
				// resumed, nothing of it may stay in the cluster's metadata.
				for _, kv := range c.DynamicBrokerConfigs(victim) {
					if strings.HasPrefix(kv, "cordoned.log.dirs=") {
						t.Errorf("broker %d still cordoned after the replacement ended %s: %s", victim, last.Phase, kv)
					}
				}
			}
		})
		if t.Failed() {
			break
		}
	}
	c.StopLedger(run)
}

// cliFleet serves c's control API for `fleetd replace --local-fleet` and
// gives it a state directory, with the store that reads it.
func cliFleet(t *testing.T, c *testbed.Cluster) (fleetURL, stateDir string, store *replace.FileStore) {
	t.Helper()
	srv := httptest.NewServer(local.NewHandler(local.NewProvider(c.Fleet)))
	t.Cleanup(srv.Close)
	stateDir = t.TempDir()
	store, err := replace.NewFileStore(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, stateDir, store
}

func oldestBroker(c *testbed.Cluster) int32 {
	var bs []local.BrokerInfo
	for _, b := range c.Fleet.Brokers() {
		if b.Running {
			bs = append(bs, b)
		}
	}
	slices.SortFunc(bs, func(a, b local.BrokerInfo) int { return a.Started.Compare(b.Started) })
	return bs[0].ID
}

// TestControllerReplacementSurvivesSIGKILL replaces each of three
// controllers in turn with a real `fleetd replace --controller` process
// while the ledger writes to the brokers: the first run is SIGKILLed just
// after AddRaftVoter, the second just after RemoveRaftVoter, each run again
// from its record. After each: exactly the intended voters, all caught up,
// the old controller's process gone; never fewer than three caught-up voters
// for longer than an election; 0 lost. (Every step boundary is a kill point
// in internal/replace's fake-based driver.)
func TestControllerReplacementSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, 3, testbed.WithControllers(3))
	c.CreateTopic("orders", 3, 3, 2)
	run := c.StartLedger("orders", 100)
	fleetURL, stateDir, store := cliFleet(t, c)
	common := []string{"--local-fleet", fleetURL, "--state-dir", stateDir, "--poll", "300ms"}
	k := replace.KafkaCluster{Client: c.Client}
	ctx := testbed.Context(t)

	// A watcher reads the quorum all along: never fewer than 3 caught up
	// for longer than an election takes. (Right after an election the new
	// leader reports a follower as never caught up until its first fetch,
	// a few hundred milliseconds; a voter really lost stays lost.)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan time.Duration, 1)
	go func() {
		var longest time.Duration
		var since time.Time
		for watchCtx.Err() == nil {
			if q, err := k.Quorum(watchCtx); err == nil {
				up := 0
				for _, v := range q.Voters {
					if v.CaughtUp {
						up++
					}
				}
				switch {
				case up >= 3:
					since = time.Time{}
				case since.IsZero():
					since = time.Now()
				default:
					longest = max(longest, time.Since(since))
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		watched <- longest
	}()

	// Each controller in turn: the first run killed right after AddRaftVoter,
	// the second right after RemoveRaftVoter, the third not at all.
	for _, step := range []struct {
		old  int32
		kill string
	}{{9001, "after:" + string(replace.StepAddVoter)}, {9002, "after:" + string(replace.StepRemoveOldVoter)}, {9000, ""}} {
		old := step.old
		before, _ := c.Fleet.Node(old)
		args := append([]string{"replace", "--controller", fmt.Sprint(old)}, common...)
		if step.kill != "" {
			if !killAt(t, step.kill, args...) {
				t.Fatalf("fleetd did not reach %s replacing controller %d", step.kill, old)
			}
			args = append([]string{"replace"}, common...)
		}
		if code := resume(t, args...); code != exitOK {
			t.Fatalf("controller %d (killed at %q), run again: exit %d", old, step.kill, code)
		}
		recs, _ := store.List(ctx)
		var rec *replace.Record
		for _, r := range recs {
			if r.OldBroker == old {
				rec = r
			}
		}
		if rec == nil || rec.Phase != replace.PhaseCompleted {
			t.Fatalf("controller %d: record %+v", old, rec)
		}
		testbed.Eventually(t, 30*time.Second, func() error {
			q, err := k.Quorum(ctx)
			if err != nil {
				return err
			}
			if slices.Contains(q.VoterIDs(), old) || !slices.Contains(q.VoterIDs(), rec.NewBroker) || len(q.Voters) != 3 {
				return fmt.Errorf("voters %v after replacing %d by %d", q.VoterIDs(), old, rec.NewBroker)
			}
			for _, v := range q.Voters {
				if !v.CaughtUp {
					return fmt.Errorf("voter %d not caught up (lag %d)", v.ID, v.Lag)
				}
			}
			return nil
		})
		if _, ok := c.Fleet.Node(old); ok {
			t.Errorf("controller %d's instance still exists", old)
		}
		if before.PID != 0 && syscall.Kill(before.PID, 0) == nil {
			t.Errorf("controller %d's process %d still runs", old, before.PID)
		}
		for _, s := range rec.Steps {
			t.Logf("controller %d -> %d: %-18s %s", old, rec.NewBroker, s.Step, s.Duration().Round(time.Millisecond))
		}
	}
	stopWatch()
	if longest := <-watched; longest > 2*health.CaughtUpWithin {
		t.Errorf("the quorum had fewer than 3 caught-up voters for %s, started with 3", longest.Round(time.Millisecond))
	} else {
		t.Logf("longest stretch with fewer than 3 caught-up voters: %s (elections)", longest.Round(time.Millisecond))
	}
	c.StopLedger(run)
}
