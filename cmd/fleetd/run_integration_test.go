//go:build integration

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/lease"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/notify"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/testbed"
)

// These tests run `fleetd run` as real processes (this test binary re-executed
// as fleetd) against a real local Kafka fleet, and talk to them only as an
// operator would: through the HTTP API and /metrics.

const testToken = "t0ken-that-must-never-be-logged"

// syncBuffer collects a process's output for reading while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type daemonProc struct {
	cmd    *exec.Cmd
	url    string
	client *api.Client
	logs   *syncBuffer
	done   chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := local.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// writeConfig writes a fleetd config for the test cluster; extra is appended
// YAML (chaos, replace settings). An empty fleetURL means provider.kind ec2.
func writeConfig(t *testing.T, c *testbed.Cluster, fleetURL, stateDir, listen, extra string) string {
	t.Helper()
	provider := "provider:\n  kind: ec2\n"
	if fleetURL != "" {
		provider = "provider:\n  kind: local\n  local_fleet: " + fleetURL + "\n"
	}
	cfg := fmt.Sprintf(`cluster: test
state_dir: %s
kafka:
  bootstrap: [%s]
  controllers: [%s]
%sapi:
  listen: %s
%s`, stateDir, strings.Join(c.Fleet.Bootstrap(), ", "), strings.Join(c.Fleet.QuorumBootstrap(), ", "), provider, listen, extra)
	p := filepath.Join(t.TempDir(), "fleetd.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startDaemon runs `fleetd run --config cfg` listening on listen, with env
// (KEY=value, testbed.MotoConfig's say) added to this process's.
func startDaemon(t *testing.T, cfg, listen string, env ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), env...), "FLEETD_TEST_AS_FLEETD=1", "FLEETD_TEST_ARGS=run --config "+cfg,
		"FLEETD_API_TOKEN="+testToken)
	d := &daemonProc{cmd: cmd, url: "http://" + listen, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = d.logs
	cmd.Stdout = d.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- cmd.Wait() }()
	var err error
	if d.client, err = api.NewClient(d.url, testToken, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		if t.Failed() {
			f, err := os.CreateTemp("", "fleetd-"+strings.ReplaceAll(t.Name(), "/", "_")+"-*.log")
			if err == nil {
				_, _ = f.WriteString(d.logs.String())
				f.Close()
				t.Logf("fleetd %s log (%d bytes) kept in %s; its tail:\n%s", listen, len(d.logs.String()), f.Name(), tail(d.logs.String()))
			}
		}
	})
	testbed.Eventually(t, 60*time.Second, func() error {
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("fleetd exited during start-up (%v):\n%s", err, d.logs.String())
		default:
		}
		resp, err := http.Get(d.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %s", resp.Status)
		}
		return nil
	})
	return d
}

func (d *daemonProc) status(t *testing.T) api.Status {
	t.Helper()
	st, err := d.client.Status(testbed.Context(t))
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

// waitFor polls the daemon's status until cond holds.
func (d *daemonProc) waitFor(t *testing.T, what string, timeout time.Duration, cond func(api.Status) bool) api.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := d.client.Status(testbed.Context(t))
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last status %+v (err %v)", timeout, what, st.Controller, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitEnded waits (at most 4 minutes) until replacement id has ended.
func (d *daemonProc) waitEnded(t *testing.T, id string) api.HistoryEntry {
	t.Helper()
	var rec api.HistoryEntry
	testbed.Eventually(t, 4*time.Minute, func() error {
		var err error
		if rec, err = d.client.Replacement(testbed.Context(t), id); err != nil {
			return err
		}
		if !rec.Phase.Terminal() {
			return fmt.Errorf("%s at %s", rec.Phase, rec.Step)
		}
		return nil
	})
	return rec
}

func (d *daemonProc) history(t *testing.T) []api.HistoryEntry {
	t.Helper()
	h, err := d.client.History(testbed.Context(t), 50)
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	return h
}

// stop sends SIGTERM and expects a clean exit.
func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			t.Errorf("fleetd after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("fleetd did not stop within 30 s of SIGTERM")
	}
}

func metricsText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// checkLogs asserts the JSON log discipline: every line parses, every line
// about a replacement carries its replacement and broker ids and no empty
// id field (the instance once known), and the API token never appears.
func checkLogs(t *testing.T, logs string) {
	t.Helper()
	if strings.Contains(logs, testToken) {
		t.Error("the API token appears in the logs")
	}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	withIDs, withInstance := 0, 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("log line is not JSON: %q", sc.Text())
			continue
		}
		if _, ok := m["replacement"]; !ok || m["replacement"] == "preview" {
			continue
		}
		withIDs++
		if _, ok := m["broker"]; !ok {
			t.Errorf("replacement log line lacks its broker: %s", sc.Text())
		}
		for _, k := range []string{"instance", "new_instance"} {
			if v, ok := m[k]; ok && v == "" {
				t.Errorf("replacement log line has an empty %q (an id not known yet is left out): %s", k, sc.Text())
			}
		}
		if _, ok := m["instance"]; ok {
			withInstance++
		}
	}
	if withIDs == 0 || withInstance == 0 {
		t.Errorf("%d log lines carried a replacement id, %d its instance", withIDs, withInstance)
	}
}

func localFleetServer(t *testing.T, c *testbed.Cluster) string {
	srv := httptest.NewServer(local.NewHandler(local.NewProvider(c.Fleet)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRunChaosReplacesABrokerOnItsOwn: chaos set to fire every minute, with a
// minimum interval of an hour, replaces exactly one broker by itself; the
// ledger loses nothing, history shows the steps' durations and metrics count it.
func TestRunChaosReplacesABrokerOnItsOwn(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 12)
	ledgerRun := c.StartLedger("orders", 100)
	listen := freeAddr(t)
	cfg := writeConfig(t, c, localFleetServer(t, c), t.TempDir(), listen, `replace:
  throttle: 10MiB
  poll: 500ms
chaos:
  enabled: true
  cron: "* * * * *"
  days: sun-sat
  hours: "00:00-24:00"
  min_interval: 1h
  check_interval: 2s
`)
	d := startDaemon(t, cfg, listen)
	victim := oldestBroker(c)

	var done api.HistoryEntry
	testbed.Eventually(t, 4*time.Minute, func() error {
		for _, h := range d.history(t) {
			if h.Phase.Terminal() {
				done = h
				return nil
			}
		}
		return fmt.Errorf("no replacement finished yet")
	})
	if done.Phase != replace.PhaseCompleted || done.TriggerList() != "chaos" || done.Strategy != replace.StrategyMove || done.OldBroker != victim {
		t.Fatalf("replacement %s: %s, trigger %q, strategy %s, broker %d; want a completed chaos move of the oldest broker %d (%s)",
			done.ID, done.Phase, done.TriggerList(), done.Strategy, done.OldBroker, victim, done.Error)
	}
	var move float64
	for _, s := range done.Timeline {
		if s.Step == replace.StepMove {
			move = s.Seconds
		}
	}
	if len(done.Timeline) < 10 || move <= 0 || done.TotalSeconds < move {
		t.Errorf("history timeline %+v: want every step with its duration", done.Timeline)
	}
	t.Logf("chaos replacement %s: broker %d -> %d, %d steps, move %.1fs, total %.1fs", done.ID, done.OldBroker, done.NewBroker, len(done.Timeline), move, done.TotalSeconds)

	testbed.Eventually(t, 60*time.Second, c.Settled)
	testbed.Eventually(t, 15*time.Second, c.NoThrottles)
	c.StopLedger(ledgerRun)

	// The record is final before the workflow returns: the canary runs a
	// tail past the end (5 s) and reads back, and the outcome is counted
	// when it has.
	testbed.Eventually(t, 60*time.Second, func() error {
		m := metricsText(t, d.url)
		for _, want := range []string{
			`fleetd_replacements_total{outcome="completed",strategy="move",trigger="chaos"} 1`,
			`fleetd_replacement_step_duration_seconds_count{outcome="ok",step="move"} 1`,
			`fleetd_chaos_decisions_total{decision="fired"} 1`,
			`fleetd_canary_verifications_total{outcome="verified"} 1`,
			`fleetd_lease_held{holder=`,
			`fleetd_queue_depth 0`,
		} {
			if !strings.Contains(m, want) {
				return fmt.Errorf("metrics lack %s", want)
			}
		}
		if strings.Contains(m, `fleetd_last_success_timestamp_seconds{trigger="chaos"} 0`+"\n") {
			return fmt.Errorf("the last chaos success is still 0 (never)")
		}
		if !strings.Contains(m, "fleetd_chaos_enabled 1") {
			return fmt.Errorf("fleetd_chaos_enabled is not 1 with chaos enabled")
		}
		return nil
	})
	// The minimum interval holds: later slots are skipped, not fired.
	st := d.waitFor(t, "a later chaos slot to be decided", 90*time.Second, func(st api.Status) bool {
		return len(st.Chaos.Decisions) >= 2
	})
	if d := st.Chaos.Decisions[0]; d.Fire || !strings.Contains(d.Reason, "minimum interval") {
		t.Errorf("slot after the replacement: %+v, want skipped for the minimum interval", d)
	}
	if h := d.history(t); len(h) != 1 {
		t.Errorf("%d replacements, want exactly one", len(h))
	}
	d.stop(t)
	checkLogs(t, d.logs.String())
}

// TestRunStandbyTakesOverAfterSIGKILL: two daemons share the state directory
// and the file lease. Only one acts; the other refuses changes. SIGKILL the
// active one in the middle of a replacement: the standby takes the lease,
// resumes the replacement from its record and finishes it.
//
// With the file lock the kernel frees the lease at once; with the DynamoDB
// lease (on moto) the standby waits for the dead holder's lease to expire.
func TestRunStandbyTakesOverAfterSIGKILL(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	t.Run("file", func(t *testing.T) { standbyTakesOver(t, "", nil) })
	t.Run("dynamodb", func(t *testing.T) {
		cfg, _, env := testbed.MotoConfig(t)
		_, err := dynamodb.NewFromConfig(cfg).CreateTable(testbed.Context(t), &dynamodb.CreateTableInput{
			TableName:            aws.String("fleetd-leases"),
			AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String(lease.Key), AttributeType: ddbtypes.ScalarAttributeTypeS}},
			KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String(lease.Key), KeyType: ddbtypes.KeyTypeHash}},
			BillingMode:          ddbtypes.BillingModePayPerRequest,
		})
		if err != nil {
			t.Fatal(err)
		}
		standbyTakesOver(t, "lease:\n  kind: dynamodb\n  table: fleetd-leases\n  ttl: 9s\naws:\n  region: us-east-1\n", env)
	})
}

func standbyTakesOver(t *testing.T, leaseConfig string, env []string) {
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 24)
	ledgerRun := c.StartLedger("orders", 100)
	fleetURL, stateDir := localFleetServer(t, c), t.TempDir()
	extra := "replace:\n  throttle: 2MiB\n  concurrency: 2\n  poll: 500ms\n" + leaseConfig
	la, lb := freeAddr(t), freeAddr(t)
	a := startDaemon(t, writeConfig(t, c, fleetURL, stateDir, la, extra), la, env...)
	a.waitFor(t, "the first daemon to take the lease", 30*time.Second, func(st api.Status) bool { return st.Active })
	b := startDaemon(t, writeConfig(t, c, fleetURL, stateDir, lb, extra), lb, env...)
	if st := b.status(t); st.Active || !strings.Contains(st.Controller.Lease, "held by another fleetd") || !strings.Contains(st.Controller.Lease, a.status(t).Holder) {
		t.Fatalf("second daemon: active %v lease %q, want standby naming the holder", st.Active, st.Controller.Lease)
	}
	broker := int32(2)
	_, err := b.client.Replace(testbed.Context(t), api.ReplaceRequest{Broker: &broker})
	if !api.IsStatus(err, http.StatusServiceUnavailable) || !strings.Contains(err.Error(), "standby") {
		t.Fatalf("request to the standby: %v, want 503 saying it is on standby", err)
	}
	if _, err := a.client.Replace(testbed.Context(t), api.ReplaceRequest{Broker: &broker}); err != nil {
		t.Fatal(err)
	}
	st := a.waitFor(t, "the replacement to be moving data", 2*time.Minute, func(st api.Status) bool {
		return st.Controller.Running != nil && st.Controller.Running.Step == replace.StepMove && st.Controller.Running.MovesDone >= 1
	})
	id := st.Controller.Running.ID
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
	a.done <- nil
	t.Logf("killed the active fleetd during %s of %s", st.Controller.Running.Step, id)

	b.waitFor(t, "the standby to take over and resume", time.Minute, func(st api.Status) bool { return st.Active && st.Controller.Running != nil })
	// Issue 12: the same broker asked for again right after the takeover is
	// served by the resumed replacement, not queued to be retried forever.
	again, err := b.client.Replace(testbed.Context(t), api.ReplaceRequest{Broker: &broker})
	if err != nil || again.Queued == nil || again.Queued.ServedBy != id {
		t.Fatalf("second request for broker %d: %+v %v; want it served by %s", broker, again.Queued, err, id)
	}
	rec := b.waitEnded(t, id)
	if rec.Phase != replace.PhaseCompleted {
		t.Fatalf("replacement %s after takeover: %s (%s)", id, rec.Phase, rec.Error)
	}
	if !strings.Contains(b.logs.String(), `"resuming in-flight replacement"`) {
		t.Error("the standby's log does not say it resumed the replacement")
	}
	time.Sleep(3 * time.Second) // a queued duplicate would have started by now
	var forBroker []string
	for _, h := range b.history(t) {
		if h.OldBroker == broker {
			forBroker = append(forBroker, h.ID+" "+string(h.Phase))
		}
	}
	if len(forBroker) != 1 {
		t.Errorf("records for broker %d: %v, want exactly one", broker, forBroker)
	}
	testbed.Eventually(t, 60*time.Second, c.Settled)
	testbed.Eventually(t, 15*time.Second, c.NoThrottles)
	c.StopLedger(ledgerRun)
	b.stop(t)
	checkLogs(t, b.logs.String())
}

// TestRunQueuePauseAndAbort: a request made while a replacement runs waits
// and runs after it; pause keeps the next one from starting; resume starts
// it; abort rolls it back.
func TestRunQueuePauseAndAbort(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 16)
	ledgerRun := c.StartLedger("orders", 100)
	listen := freeAddr(t)
	// Three receivers: one that answers, one that fails every event's first
	// attempt, one that never answers (its URL's secret comes from url_env).
	ops, flaky, hung := newHook(t, false, false), newHook(t, true, false), newHook(t, false, true)
	d := startDaemon(t, writeConfig(t, c, localFleetServer(t, c), t.TempDir(), listen, "replace:\n  throttle: 4MiB\n  concurrency: 2\n  poll: 500ms\n"+
		"notifications:\n  - {name: ops, url: \""+ops.srv.URL+"/ops\"}\n  - {name: flaky, url: \""+flaky.srv.URL+"/flaky\"}\n  - {name: hung, kind: slack, url_env: FLEETD_TEST_HUNG_URL}\n"),
		listen, "FLEETD_TEST_HUNG_URL="+hung.srv.URL+"/services/T0/B0/hung-secret")
	ctx := testbed.Context(t)
	second := int32(2)
	// The first request comes from the CLI, followed live to its end.
	follow1 := startCLI(t, "replace --broker 1 --api "+d.url+" --follow --json")
	d.waitFor(t, "broker 1's replacement to start", time.Minute, func(st api.Status) bool { return st.Controller.Running != nil })
	// The second is aborted mid-copy: at 1 MiB/s its 16 MB take 16 s, so the
	// abort cannot come after the copy however fast the machine.
	slow, err := replace.ParseThrottle("1MiB")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.client.Replace(ctx, api.ReplaceRequest{Broker: &second, Throttle: slow}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.client.Replace(ctx, api.ReplaceRequest{Broker: &second}); err != nil { // a duplicate merges
		t.Fatal(err)
	}
	st := d.status(t)
	if st.Controller.Running == nil || st.Controller.Running.OldBroker != 1 || len(st.Controller.Queue) != 1 || st.Controller.Queue[0].Broker != 2 {
		t.Fatalf("while 1 runs: running %+v queue %+v, want 1 running and 2 queued once", st.Controller.Running, st.Controller.Queue)
	}
	unknown := int32(77)
	if _, err := d.client.Replace(ctx, api.ReplaceRequest{Broker: &unknown}); !api.IsStatus(err, http.StatusNotFound) {
		t.Errorf("unknown broker: %v, want 404", err)
	}
	if _, err := d.client.SetPaused(ctx, true); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "broker 1's replacement to finish", 4*time.Minute, func(st api.Status) bool { return st.Controller.Running == nil })
	if code, out := follow1.wait(t, time.Minute); code != exitOK {
		t.Fatalf("replace --follow exited %d after a completed replacement:\n%s", code, out)
	} else {
		checkFollowed(t, out, replace.PhaseCompleted)
	}
	time.Sleep(8 * time.Second) // more than a controller tick: paused, nothing starts
	st = d.status(t)
	if st.Controller.Running != nil || len(st.Controller.Queue) != 1 || !st.Controller.Paused {
		t.Fatalf("paused: running %+v queue %+v, want nothing running and 2 still queued", st.Controller.Running, st.Controller.Queue)
	}
	if _, err := d.client.Abort(ctx, "nothing"); !api.IsStatus(err, http.StatusConflict) {
		t.Errorf("abort with nothing running: %v, want 409", err)
	}
	if _, err := d.client.SetPaused(ctx, false); err != nil {
		t.Fatal(err)
	}
	d.waitFor(t, "broker 2's replacement to copy", 2*time.Minute, func(st api.Status) bool {
		return st.Controller.Running != nil && st.Controller.Running.OldBroker == 2 && st.Controller.Running.Step == replace.StepMove
	})
	watch2 := startCLI(t, "watch --api "+d.url+" --json") // the running one
	time.Sleep(2 * time.Second)                           // its stream is open
	if resp, err := d.client.Abort(ctx, "operator changed their mind"); err != nil || !resp.Aborted {
		t.Fatalf("abort: %+v %v", resp, err)
	}
	d.waitFor(t, "the abort to finish", 3*time.Minute, func(st api.Status) bool { return st.Controller.Running == nil })
	if code, out := watch2.wait(t, time.Minute); code != exitNotSafe {
		t.Fatalf("watch exited %d after an aborted replacement, want %d:\n%s", code, exitNotSafe, out)
	} else {
		checkFollowed(t, out, replace.PhaseRolledBack)
	}

	h := d.history(t)
	got := []string{}
	for i := len(h) - 1; i >= 0; i-- {
		got = append(got, fmt.Sprintf("%d:%s", h[i].OldBroker, h[i].Phase))
	}
	if strings.Join(got, " ") != "1:completed 2:rolled-back" {
		t.Fatalf("history %v, want 1 completed then 2 rolled back", got)
	}
	if !strings.Contains(h[0].Error, "operator changed their mind") {
		t.Errorf("rolled-back record's reason %q does not carry the operator's", h[0].Error)
	}
	testbed.Eventually(t, 60*time.Second, c.Settled)
	testbed.Eventually(t, 15*time.Second, c.NoThrottles)
	c.StopLedger(ledgerRun)
	m := metricsText(t, d.url)
	for _, want := range []string{
		`fleetd_replacements_total{outcome="completed",strategy="move",trigger="operator"} 1`,
		`fleetd_replacements_total{outcome="aborted",strategy="move",trigger="operator"} 1`,
		`fleetd_replacements_total{outcome="rolled-back",strategy="move",trigger="operator"} 0`,
		`fleetd_replacement_step_duration_seconds_count{outcome="aborted",step="move"} 1`,
		`fleetd_notifications_total{outcome="delivered",receiver="hung"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	checkNotifications(t, ops, flaky, hung, h[1].ID, h[0].ID)
	d.stop(t)
	checkLogs(t, d.logs.String())
	if strings.Contains(d.logs.String(), "hung-secret") || strings.Contains(d.logs.String(), ops.srv.URL) {
		t.Error("a receiver's URL reached fleetd's log")
	}
}

// checkNotifications: the receiver that answers got the workflow's events in
// order, each with its replacement's id; the flaky one got the same events,
// each once, in the same order; the hung one held up nothing.
func checkNotifications(t *testing.T, ops, flaky, hung *hook, completed, aborted string) {
	t.Helper()
	var evs []notify.Event
	testbed.Eventually(t, 30*time.Second, func() error {
		evs = ops.got()
		if n := len(evs); n == 0 || evs[n-1].Kind != notify.Aborted {
			return fmt.Errorf("%d events, the last not yet the abort", n)
		}
		return nil
	})
	var kinds []string
	index := map[string]int{}
	for i, ev := range evs {
		key := string(ev.Kind)
		if ev.Replacement != nil {
			key += ":" + ev.Replacement.ID
		}
		if ev.Request != nil && ev.Kind == notify.Accepted {
			key += fmt.Sprintf(":node %d", ev.Request.Node)
		}
		kinds = append(kinds, key)
		if _, dup := index[key]; !dup {
			index[key] = i
		}
		if ev.Cluster != "test" || ev.Message == "" || ev.ID == "" {
			t.Errorf("event %d %+v lacks its cluster, message or id", i, ev)
		}
	}
	// What must come before what (a request's acceptance and the pause
	// race the first workflow's steps; nothing else does).
	for _, pair := range [][2]string{
		{"lease-acquired", "request-accepted:node 1"},
		{"request-accepted:node 1", "started:" + completed},
		{"started:" + completed, "completed:" + completed},
		{"completed:" + completed, "started:" + aborted},
		{"request-accepted:node 2", "started:" + aborted},
		{"paused", "resumed"},
		{"resumed", "started:" + aborted},
		{"started:" + aborted, "aborted:" + aborted},
	} {
		a, okA := index[pair[0]]
		b, okB := index[pair[1]]
		if !okA || !okB || a > b {
			t.Errorf("events %v: want %s before %s", kinds, pair[0], pair[1])
		}
	}
	testbed.Eventually(t, 30*time.Second, func() error {
		if got := flaky.got(); len(got) != len(evs) {
			return fmt.Errorf("flaky receiver has %d events, want %d", len(got), len(evs))
		}
		return nil
	})
	for i, ev := range flaky.got() {
		if ev.ID != evs[i].ID || ev.Kind != evs[i].Kind {
			t.Errorf("flaky receiver's event %d is %s %s, want %s %s (the same events, once each, in order)", i, ev.Kind, ev.ID, evs[i].Kind, evs[i].ID)
		}
	}
	if n := hung.requestCount(); n == 0 {
		t.Error("the hung receiver was never called")
	}
}

// The CLI's thin clients against a live daemon: pause, status, history.
func TestCLIAgainstTheDaemon(t *testing.T) {
	c := testbed.NewCluster(t, 3)
	listen := freeAddr(t)
	d := startDaemon(t, writeConfig(t, c, localFleetServer(t, c), t.TempDir(), listen, ""), listen)
	t.Setenv("FLEETD_API_TOKEN", testToken)
	cli := func(args ...string) (int, string) {
		var out, errb strings.Builder
		code := run(context.Background(), append(args, "--api", d.url), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := cli("pause"); code != exitOK || !strings.Contains(out, "paused") {
		t.Fatalf("pause: %d %s", code, out)
	}
	if code, out := cli("status"); code != exitOK || !strings.Contains(out, "PAUSED") || !strings.Contains(out, "safe to disrupt: yes") {
		t.Fatalf("status: %d %s", code, out)
	}
	if code, out := cli("replace", "--broker", "2", "--dry-run"); code != exitOK || !strings.Contains(out, "plan: replace broker 2") {
		t.Fatalf("replace --dry-run: %d %s", code, out)
	}
	if code, out := cli("replace", "--broker", "2"); code != exitOK || !strings.Contains(out, "queued: request") {
		t.Fatalf("replace: %d %s", code, out)
	}
	if code, out := cli("status", "--json"); code != exitOK || !strings.Contains(out, `"broker": 2`) {
		t.Fatalf("status --json: %d %s", code, out)
	}
	if code, out := cli("abort"); code != exitNotSafe || !strings.Contains(out, "nothing to abort") {
		t.Fatalf("abort: %d %s", code, out)
	}
	if code, out := cli("history"); code != exitOK || !strings.Contains(out, "no replacements yet") {
		t.Fatalf("history: %d %s", code, out)
	}
	t.Setenv("FLEETD_API_TOKEN", "wrong")
	if code, out := cli("status"); code != exitError || !strings.Contains(out, "401") {
		t.Fatalf("status with a wrong token: %d %s", code, out)
	}
	d.stop(t)
}

// Issue 12: fleetd run exits within its shutdown bound on SIGTERM in every
// state: standby, mid-move (the record stays resumable and finishes after a
// restart), paused, and with Kafka unreachable.
func TestRunExitsOnSIGTERMInEveryState(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 24)
	fleetURL, stateDir := localFleetServer(t, c), t.TempDir()
	extra := "replace:\n  throttle: 2MiB\n  concurrency: 2\n  poll: 500ms\n"
	la, lb := freeAddr(t), freeAddr(t)
	active := startDaemon(t, writeConfig(t, c, fleetURL, stateDir, la, extra), la)
	active.waitFor(t, "the lease", 30*time.Second, func(st api.Status) bool { return st.Active })
	standby := startDaemon(t, writeConfig(t, c, fleetURL, stateDir, lb, extra), lb)
	standby.stop(t) // standby

	broker := int32(2)
	if _, err := active.client.Replace(testbed.Context(t), api.ReplaceRequest{Broker: &broker}); err != nil {
		t.Fatal(err)
	}
	st := active.waitFor(t, "the move", 2*time.Minute, func(st api.Status) bool {
		return st.Controller.Running != nil && st.Controller.Running.Step == replace.StepMove
	})
	id := st.Controller.Running.ID
	active.stop(t) // mid-move

	again := startDaemon(t, writeConfig(t, c, fleetURL, stateDir, la, extra), la)
	rec := again.waitEnded(t, id)
	if rec.Phase != replace.PhaseCompleted {
		t.Fatalf("after SIGTERM mid-move and a restart: %s (%s)", rec.Phase, rec.Error)
	}
	if _, err := again.client.SetPaused(testbed.Context(t), true); err != nil {
		t.Fatal(err)
	}
	again.stop(t) // paused

	ld := freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "unreachable.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("cluster: test\nstate_dir: %s\nkafka:\n  bootstrap: [127.0.0.1:1]\nprovider:\n  kind: local\n  local_fleet: %s\napi:\n  listen: %s\n", t.TempDir(), fleetURL, ld)), 0o600); err != nil {
		t.Fatal(err)
	}
	unreachable := startDaemon(t, cfg, ld)
	time.Sleep(3 * time.Second)
	unreachable.stop(t) // Kafka unreachable
}
