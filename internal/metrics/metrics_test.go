package metrics

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
)

func TestMetricsFollowReplacements(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	m := New("host:1", func() time.Time { return now })
	if v := m.secondsSinceChaos(); !math.IsInf(v, 1) {
		t.Fatalf("seconds since chaos before any: %v, want +Inf", v)
	}
	m.Finished(&replace.Record{Triggers: []replace.Trigger{replace.TriggerChaos}, Strategy: replace.StrategyMove, Phase: replace.PhaseCompleted, BytesMoved: 1000, Finished: now.Add(-time.Hour)})
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
	if got := m.secondsSinceChaos(); got != 3600 {
		t.Errorf("seconds since chaos %v, want 3600", got)
	}
	if got := testutil.ToFloat64(m.queueDepth); got != 3 {
		t.Errorf("queue depth %v", got)
	}
	if got := testutil.ToFloat64(m.leaseHeld.WithLabelValues("host:1")); got != 1 {
		t.Errorf("lease held %v", got)
	}
	if n := testutil.CollectAndCount(m.steps); n != 1 {
		t.Errorf("%d step series", n)
	}
	if err := testutil.CollectAndCompare(m.bytesMoved, strings.NewReader("# HELP fleetd_moved_bytes_total Bytes of partition data moved by completed replacements.\n# TYPE fleetd_moved_bytes_total counter\nfleetd_moved_bytes_total 1000\n")); err != nil {
		t.Error(err)
	}
}

// Canary verdicts are counted by outcome (every outcome's series exists
// from start-up), losses summed, and the last workflow's p99 kept by phase.
func TestCanaryVerdictsAreCounted(t *testing.T) {
	m := New("host:1", nil)
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
