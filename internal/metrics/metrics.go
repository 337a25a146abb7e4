// Package metrics defines fleetd's Prometheus metrics on a registry of its
// own, served at /metrics. Names follow Prometheus conventions (base units,
// _total for counters); labels are small closed sets (trigger, outcome, step,
// gate reason), never ids.
package metrics

import (
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fleetd/fleetd/internal/replace"
)

// Metrics holds fleetd's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	replacements *prometheus.CounterVec
	steps        *prometheus.HistogramVec
	refusals     *prometheus.CounterVec
	chaos        *prometheus.CounterVec
	queueDepth   prometheus.Gauge
	inProgress   prometheus.Gauge
	paused       prometheus.Gauge
	leaseHeld    *prometheus.GaugeVec
	bytesMoved   prometheus.Counter
	events       *prometheus.CounterVec
	messages     *prometheus.CounterVec
	verified     *prometheus.CounterVec
	canaryLost   prometheus.Counter
	canaryP99    *prometheus.GaugeVec

	mu        sync.Mutex
	lastChaos time.Time
	now       func() time.Time
}

// New registers fleetd's metrics (and the Go runtime's) on a new registry.
// holder labels the lease metric (host:pid).
func New(holder string, now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	m := &Metrics{Registry: prometheus.NewRegistry(), now: now}
	m.replacements = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fleetd_replacements_total",
		Help: "Replacements ended, by first trigger, strategy and outcome (completed, rolled-back, failed, refused).",
	}, []string{"trigger", "strategy", "outcome"})
	m.steps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fleetd_replacement_step_duration_seconds",
		Help:    "Wall time of each replacement step, by step and outcome (ok or error).",
		Buckets: []float64{0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600},
	}, []string{"step", "outcome"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fleetd_gate_refusals_total",
		Help: "Gate refusals, by blocker code (under-min-isr, broker-down, ...).",
	}, []string{"reason"})
	m.chaos = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fleetd_chaos_decisions_total",
		Help: "Chaos schedule slots decided: fired (a request was queued), leashed (planned only) or skipped.",
	}, []string{"decision"})
	m.queueDepth = prometheus.NewGauge(prometheus.GaugeOpts{Name: "fleetd_queue_depth", Help: "Replacement requests waiting."})
	m.inProgress = prometheus.NewGauge(prometheus.GaugeOpts{Name: "fleetd_replacement_in_progress", Help: "1 while a replacement runs."})
	m.paused = prometheus.NewGauge(prometheus.GaugeOpts{Name: "fleetd_paused", Help: "1 while new disruptions are paused."})
	m.leaseHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fleetd_lease_held", Help: "1 if this process (label holder) is the active controller."}, []string{"holder"})
	m.bytesMoved = prometheus.NewCounter(prometheus.CounterOpts{Name: "fleetd_moved_bytes_total", Help: "Bytes of partition data moved by completed replacements."})
	m.verified = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleetd_canary_verifications_total",
		Help: "Workflows' canary verdicts by outcome: verified (every acknowledged record read back once), failed (lost or duplicated), incomplete (no verdict)."}, []string{"outcome"})
	for _, o := range []string{"verified", "failed", "incomplete"} {
		m.verified.WithLabelValues(o) // every series exists from start-up
	}
	m.canaryLost = prometheus.NewCounter(prometheus.CounterOpts{Name: "fleetd_canary_lost_records_total", Help: "Acknowledged canary records never read back, over all workflows."})
	m.canaryP99 = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fleetd_canary_produce_p99_seconds",
		Help: "The last workflow's canary produce latency p99, by phase (before, during, after)."}, []string{"phase"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleetd_events_total", Help: "AWS events handled (new, not duplicates), by kind."}, []string{"kind"})
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fleetd_event_messages_total", Help: "SQS event messages by outcome: deleted, malformed (left for the dead-letter redrive) or retry."}, []string{"outcome"})
	sinceChaos := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fleetd_seconds_since_last_chaos_replacement",
		Help: "Seconds since the last chaos replacement completed; +Inf if none has (alert when chaos is enabled and this exceeds a week or two).",
	}, m.secondsSinceChaos)
	m.Registry.MustRegister(m.replacements, m.steps, m.refusals, m.chaos, m.queueDepth, m.inProgress, m.paused, m.leaseHeld, m.bytesMoved, m.events, m.messages, m.verified, m.canaryLost, m.canaryP99, sinceChaos,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.leaseHeld.WithLabelValues(holder).Set(0)
	return m
}

// Handler serves the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

func (m *Metrics) secondsSinceChaos() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastChaos.IsZero() {
		return math.Inf(1)
	}
	return m.now().Sub(m.lastChaos).Seconds()
}

// ChaosCompleted records when a chaos replacement last completed (also from
// history at start-up).
func (m *Metrics) ChaosCompleted(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if at.After(m.lastChaos) {
		m.lastChaos = at
	}
}

// Step observes one step's timing.
func (m *Metrics) Step(_ *replace.Record, t replace.StepTiming, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.steps.WithLabelValues(string(t.Step), outcome).Observe(t.Duration().Seconds())
}

// Finished counts a replacement that reached a terminal phase.
func (m *Metrics) Finished(r *replace.Record) {
	trigger := replace.TriggerOperator
	if len(r.Triggers) > 0 {
		trigger = r.Triggers[0] // the first asker; one label value per replacement
	}
	m.replacements.WithLabelValues(string(trigger), string(r.Strategy), string(r.Phase)).Inc()
	for _, c := range r.Refusals {
		m.refusals.WithLabelValues(string(c)).Inc()
	}
	if v := r.Canary; v != nil {
		switch {
		case v.Error != "" && v.Lost == 0:
			m.verified.WithLabelValues("incomplete").Inc()
		case v.Verified:
			m.verified.WithLabelValues("verified").Inc()
		default:
			m.verified.WithLabelValues("failed").Inc()
		}
		m.canaryLost.Add(float64(v.Lost))
		for phase, w := range map[string]replace.LatencyWindow{"before": v.Before, "during": v.During, "after": v.After} {
			m.canaryP99.WithLabelValues(phase).Set(w.P99Ms / 1000)
		}
	}
	if r.Phase == replace.PhaseCompleted {
		m.bytesMoved.Add(float64(r.BytesMoved))
		if IsChaos(r) {
			m.ChaosCompleted(r.Finished)
		}
	}
}

// IsChaos reports whether the chaos schedule asked for r.
func IsChaos(r *replace.Record) bool {
	return slices.Contains(r.Triggers, replace.TriggerChaos)
}

// Event counts a new AWS event of kind.
func (m *Metrics) Event(kind string) { m.events.WithLabelValues(kind).Inc() }

// EventMessage counts an SQS message's outcome.
func (m *Metrics) EventMessage(outcome string) { m.messages.WithLabelValues(outcome).Inc() }

// ChaosDecision counts a decided chaos slot.
func (m *Metrics) ChaosDecision(decision string) { m.chaos.WithLabelValues(decision).Inc() }

// Controller reports the controller's state.
func (m *Metrics) Controller(holder string, leaseHeld, paused, running bool, queued int) {
	m.leaseHeld.WithLabelValues(holder).Set(b2f(leaseHeld))
	m.paused.Set(b2f(paused))
	m.inProgress.Set(b2f(running))
	m.queueDepth.Set(float64(queued))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
