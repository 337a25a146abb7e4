//go:build integration

package metrics

import (
	"io"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
)

// promtool is Prometheus's own checker (Debian's prometheus package, which
// scripts/prereqs.sh installs).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run `make prereqs` (as root it installs Debian's prometheus package) or put promtool on PATH")
	}
	return p
}

// fleetd's exposition, after every kind of update, passes promtool's lint;
// and the lint bites (a counter without _total fails it).
func TestPromtoolCheckMetrics(t *testing.T) {
	bin := promtool(t)
	m := newTest()
	now := time.Now()
	m.Finished(&replace.Record{ID: "r", Triggers: []replace.Trigger{replace.TriggerChaos}, Strategy: replace.StrategyMove, Phase: replace.PhaseCompleted, Created: now.Add(-time.Hour), Finished: now,
		Canary: &replace.CanaryVerdict{Verified: true}})
	m.Step(nil, replace.StepTiming{Step: replace.StepMove, Started: now, Ended: now.Add(time.Second)}, nil)
	m.Progress(&replace.Progress{BytesCopied: 1, BytesTotal: 2, AppliedRate: 3})
	m.Gate(health.Verdict{Blockers: []health.Reason{{Code: health.CodeBrokerDown}}})
	m.Controller("host:1", true, false, true, 1)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	check := func(exposition string) (string, error) {
		cmd := exec.Command(bin, "check", "metrics")
		cmd.Stdin = strings.NewReader(exposition)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := check(string(body)); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	bad := "# HELP fleetd_bad_things Things.\n# TYPE fleetd_bad_things counter\nfleetd_bad_things 1\n"
	if out, err := check(bad); err == nil || !strings.Contains(out, "_total") {
		t.Fatalf("promtool passed a counter without _total (%v): %s", err, out)
	}
}

// The alert rules load, and their unit tests (deploy/prometheus/
// fleetd-rules.test.yml: each alert fires on what should page and stays
// quiet on the nearest input that should not) pass.
func TestPromtoolAlertRules(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "fleetd-rules.yml"},
		{"test", "rules", "fleetd-rules.test.yml"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = "../../deploy/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
