package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
)

func newTest() *Metrics { return New(Options{Holder: "host:1", Version: "v1.2.3", Revision: "abc"}) }

func TestMetricsFollowReplacements(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	m := newTest()
	if got := testutil.ToFloat64(m.lastSuccess.WithLabelValues("chaos")); got != 0 {
		t.Fatalf("last chaos success before any: %v, want 0 (never)", got)
	}
	m.Finished(&replace.Record{Triggers: []replace.Trigger{replace.TriggerChaos}, Strategy: replace.StrategyMove, Phase: replace.PhaseCompleted, BytesMoved: 1000,
		Created: now.Add(-90 * time.Minute), Finished: now.Add(-time.Hour)})
	m.Finished(&replace.Record{Triggers: []replace.Trigger{replace.TriggerOperator, replace.TriggerChaos}, Strategy: replace.StrategyMove, Phase: replace.PhaseRefused,
		Refusals: []health.Code{health.CodeUnderMinISR, health.CodeBrokerDown}})
	m.Finished(&replace.Record{Triggers: []replace.Trigger{replace.TriggerOperator}, Strategy: replace.StrategyMove, Phase: replace.PhaseRefused, Refusals: []health.Code{health.CodeUnderMinISR}})
	m.Step(nil, replace.StepTiming{Step: replace.StepMove, Started: now, Ended: now.Add(90 * time.Second)}, nil)
	m.Controller("host:1", true, false, true, 3)

	if got := testutil.ToFloat64(m.replacements.WithLabelValues("chaos", "move", "completed")); got != 1 {
		t.Errorf("completed chaos replacements %v", got)
	}
	if got := testutil.ToFloat64(m.replacements.WithLabelValues("operator", "move", "refused")); got != 2 {
		t.Errorf("refused operator replacements %v (the first trigger labels a merged request)", got)
	}
	if got := testutil.ToFloat64(m.refusals.WithLabelValues("under-min-isr")); got != 2 {
		t.Errorf("under-min-isr refusals %v", got)
	}
	if got, want := testutil.ToFloat64(m.lastSuccess.WithLabelValues("chaos")), float64(now.Add(-time.Hour).Unix()); got != want {
		t.Errorf("last chaos success %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(m.lastSuccess.WithLabelValues("operator")); got != 0 {
		t.Errorf("last operator success %v, want 0: refusals are not successes", got)
	}
	if got := testutil.ToFloat64(m.gateOpen); got != 0 {
		t.Errorf("gate open %v after a refusal, want 0", got)
	}
	if got := testutil.ToFloat64(m.gateBlockers.WithLabelValues("under-min-isr")); got != 1 {
		t.Errorf("under-min-isr blocker %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.gateBlockers.WithLabelValues("broker-down")); got != 0 {
		t.Errorf("broker-down blocker %v, want 0: only the last verdict's blockers are set", got)
	}
	m.Step(nil, replace.StepTiming{Step: replace.StepGate, Started: now, Ended: now}, nil)
	if got := testutil.ToFloat64(m.gateOpen); got != 1 {
		t.Errorf("gate open %v after a passed gate, want 1", got)
	}
	if got := testutil.ToFloat64(m.queueDepth); got != 3 {
		t.Errorf("queue depth %v", got)
	}
	if err := testutil.CollectAndCompare(m.bytesMoved, strings.NewReader("# HELP fleetd_moved_bytes_total Bytes of partition data moved by completed workflows.\n# TYPE fleetd_moved_bytes_total counter\nfleetd_moved_bytes_total 1000\n")); err != nil {
		t.Error(err)
	}
	if err := testutil.CollectAndCompare(m.workflows, strings.NewReader(`# HELP fleetd_workflow_duration_seconds Wall time of each workflow from its request to its end, by kind (strategy) and outcome.
# TYPE fleetd_workflow_duration_seconds histogram
`+histogram("controller", "aborted", 0)+histogram("controller", "completed", 0)+histogram("controller", "failed", 0)+histogram("controller", "refused", 0)+histogram("controller", "rolled-back", 0)+
		histogram("identity", "aborted", 0)+histogram("identity", "completed", 0)+histogram("identity", "failed", 0)+histogram("identity", "refused", 0)+histogram("identity", "rolled-back", 0)+
		histogram("move", "aborted", 0)+histogram("move", "completed", 1800)+histogram("move", "failed", 0)+histogram("move", "refused", 0)+histogram("move", "rolled-back", 0))); err != nil {
		t.Error(err)
	}
}

// histogram is the exposition of one fleetd_workflow_duration_seconds
// series holding one observation of v seconds (none when v is 0).
func histogram(kind, outcome string, v float64) string {
	var b strings.Builder
	n := 0
	if v > 0 {
		n = 1
	}
	for _, le := range []string{"60", "300", "900", "1800", "3600", "7200", "14400", "28800", "86400", "+Inf"} {
		c := 0
		var f float64
		if _, err := fmt.Sscan(le, &f); err != nil || v <= f {
			c = n
		}
		fmt.Fprintf(&b, "fleetd_workflow_duration_seconds_bucket{kind=%q,outcome=%q,le=%q} %d\n", kind, outcome, le, c)
	}
	fmt.Fprintf(&b, "fleetd_workflow_duration_seconds_sum{kind=%q,outcome=%q} %g\nfleetd_workflow_duration_seconds_count{kind=%q,outcome=%q} %d\n", kind, outcome, v, kind, outcome, n)
	return b.String()
}

// An operator's abort is an outcome of its own, in the workflow counter and
// in the step histogram, never an error.
func TestAnAbortIsNotAnError(t *testing.T) {
	m := newTest()
	now := time.Now()
	m.Step(nil, replace.StepTiming{Step: replace.StepMove, Started: now, Ended: now.Add(time.Second)}, fmt.Errorf("step move: %w", replace.ErrAborted))
	m.Finished(&replace.Record{Triggers: []replace.Trigger{replace.TriggerOperator}, Strategy: replace.StrategyMove, Phase: replace.PhaseRolledBack, AbortRequested: "aborted by operator",
		Created: now, Finished: now.Add(time.Minute)})
	for series, want := range map[string]float64{
		"aborted": 1, "rolled-back": 0, "failed": 0,
	} {
		if got := testutil.ToFloat64(m.replacements.WithLabelValues("operator", "move", series)); got != want {
			t.Errorf("operator move %s: %v, want %v", series, got, want)
		}
	}
	if got := testutil.CollectAndCount(m.steps, "fleetd_replacement_step_duration_seconds"); got == 0 {
		t.Fatal("no step series")
	}
	if !strings.Contains(exposition(t, m), `fleetd_replacement_step_duration_seconds_count{outcome="aborted",step="move"} 1`) ||
		strings.Contains(exposition(t, m), `fleetd_replacement_step_duration_seconds_count{outcome="error",step="move"} 1`) {
		t.Error("the aborted move step is not counted as aborted (or is counted as an error)")
	}
}

func exposition(t *testing.T, m *Metrics) string {
	t.Helper()
	var b strings.Builder
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			labels := ""
			for i, l := range mt.GetLabel() {
				if i > 0 {
					labels += ","
				}
				labels += fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
			}
			switch {
			case mt.GetHistogram() != nil:
				fmt.Fprintf(&b, "%s_count{%s} %d\n", mf.GetName(), labels, mt.GetHistogram().GetSampleCount())
			case mt.GetCounter() != nil:
				fmt.Fprintf(&b, "%s{%s} %g\n", mf.GetName(), labels, mt.GetCounter().GetValue())
			case mt.GetGauge() != nil:
				fmt.Fprintf(&b, "%s{%s} %g\n", mf.GetName(), labels, mt.GetGauge().GetValue())
			}
		}
	}
	return b.String()
}

// Every labelled fleetd series exists at 0 from start-up: an alert on a
// rate or an increase sees a zero, not nothing.
func TestEverySeriesExistsAtStartUp(t *testing.T) {
	m := newTest()
	text := exposition(t, m)
	for _, want := range []string{
		`fleetd_replacements_total{outcome="aborted",strategy="controller",trigger="instance-lost"} 0`,
		`fleetd_replacements_total{outcome="completed",strategy="move",trigger="chaos"} 0`,
		`fleetd_workflow_duration_seconds_count{kind="identity",outcome="failed"} 0`,
		`fleetd_replacement_step_duration_seconds_count{outcome="error",step="rollback-move-back"} 0`,
		`fleetd_replacement_step_duration_seconds_count{outcome="ok",step="add-voter"} 0`,
		`fleetd_gate_refusals_total{reason="would-lose-data"} 0`,
		`fleetd_gate_blockers{reason="quorum-majority"} 0`,
		`fleetd_chaos_decisions_total{decision="leashed"} 0`,
		`fleetd_events_total{kind="instance-retirement"} 0`,
		`fleetd_event_messages_total{outcome="malformed"} 0`,
		`fleetd_canary_verifications_total{outcome="failed"} 0`,
		`fleetd_canary_produce_p99_seconds{phase="during"} 0`,
		`fleetd_last_success_timestamp_seconds{trigger="ami-drift"} 0`,
		`fleetd_partitions{state="under-min-isr"} 0`,
		`fleetd_lease_held{holder="host:1"} 0`,
		`fleetd_throttle_bytes_per_second{} 0`,
		`fleetd_throttles_left_records{} 0`,
		`fleetd_build_info{goversion=`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("at start-up the metrics lack %s", want)
		}
	}
	if !strings.Contains(text, `revision="abc",version="v1.2.3"} 1`) {
		t.Errorf("build info: %s", text[strings.Index(text, "fleetd_build_info"):][:120])
	}
}

// The running move's progress is exported and reset when it ends.
func TestProgressIsExportedAndReset(t *testing.T) {
	m := newTest()
	m.Progress(&replace.Progress{BytesCopied: 10, BytesTotal: 100, BytesPerSec: 5, ETASeconds: 18, Stalled: true, AppliedRate: 50})
	for g, want := range map[string]float64{"copied": 10, "total": 100, "rate": 5, "eta": 18, "stalled": 1, "throttle": 50} {
		got := map[string]float64{"copied": testutil.ToFloat64(m.copied), "total": testutil.ToFloat64(m.toCopy), "rate": testutil.ToFloat64(m.rate),
			"eta": testutil.ToFloat64(m.eta), "stalled": testutil.ToFloat64(m.stalled), "throttle": testutil.ToFloat64(m.throttle)}[g]
		if got != want {
			t.Errorf("%s %v, want %v", g, got, want)
		}
	}
	m.Progress(nil)
	if testutil.ToFloat64(m.throttle) != 0 || testutil.ToFloat64(m.stalled) != 0 || testutil.ToFloat64(m.copied) != 0 {
		t.Error("progress gauges not reset when the workflow ended")
	}
}

// A record that ended with its throttles still set is counted until a
// record says they were removed or the sweep ran.
func TestThrottlesLeftFollowTheRecords(t *testing.T) {
	m := newTest()
	left := &replace.Record{ID: "a", Phase: replace.PhaseFailed, Throttles: []replace.ThrottleEntry{{Value: "x"}}}
	m.Seed([]*replace.Record{left, {ID: "b", Phase: replace.PhaseCompleted, Throttles: []replace.ThrottleEntry{{Value: "x"}}, ThrottlesRemoved: true}})
	if got := testutil.ToFloat64(m.throttleSet); got != 1 {
		t.Fatalf("throttles left %v, want 1", got)
	}
	removed := *left
	removed.ThrottlesRemoved = true
	m.ThrottlesSwept([]*replace.Record{&removed})
	if got := testutil.ToFloat64(m.throttleSet); got != 0 {
		t.Fatalf("throttles left after the sweep %v, want 0", got)
	}
}

// Canary verdicts are counted by outcome (every outcome's series exists
// from start-up), losses summed, and the last workflow's p99 kept by phase.
func TestCanaryVerdictsAreCounted(t *testing.T) {
	m := newTest()
	if n := testutil.CollectAndCount(m.verified); n != 3 {
		t.Fatalf("%d verification series at start-up, want 3 at 0", n)
	}
	m.Finished(&replace.Record{Phase: replace.PhaseCompleted, Canary: &replace.CanaryVerdict{Verified: true, During: replace.LatencyWindow{P99Ms: 250}}})
	m.Finished(&replace.Record{Phase: replace.PhaseCompleted, Canary: &replace.CanaryVerdict{CanaryCounts: replace.CanaryCounts{Lost: 4}}})
	m.Finished(&replace.Record{Phase: replace.PhaseCompleted, Canary: &replace.CanaryVerdict{Error: "canary did not start"}})
	for outcome, want := range map[string]float64{"verified": 1, "failed": 1, "incomplete": 1} {
		if got := testutil.ToFloat64(m.verified.WithLabelValues(outcome)); got != want {
			t.Errorf("%s verifications %v, want %v", outcome, got, want)
		}
	}
	if got := testutil.ToFloat64(m.canaryLost); got != 4 {
		t.Errorf("lost records %v, want 4", got)
	}
	m.Finished(&replace.Record{Phase: replace.PhaseCompleted, Canary: &replace.CanaryVerdict{Verified: true, During: replace.LatencyWindow{P99Ms: 250}}})
	if got := testutil.ToFloat64(m.canaryP99.WithLabelValues("during")); got != 0.25 {
		t.Errorf("during p99 %v s, want 0.25", got)
	}
}
