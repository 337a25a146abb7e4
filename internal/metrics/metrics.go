// Package metrics defines fleetd's Prometheus metrics on a registry of its
// own, served at /metrics. Names follow Prometheus conventions (base units,
// _total for counters); labels are small closed sets (trigger, outcome, step,
// gate reason), never ids, and every labelled series exists at 0 from
// start-up, so that alerts see a zero rather than nothing. It never talks to
// Kafka or AWS: the daemon feeds it what it saw.
package metrics

import (
	"errors"
	"net/http"
	"runtime"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fleetd/fleetd/internal/events"
	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/notify"
	"github.com/fleetd/fleetd/internal/replace"
)

// Label values every series is created with at start-up.
var (
	// Triggers a daemon's replacements carry (an AWS event's kind is one).
	Triggers = append([]string{string(replace.TriggerOperator), string(replace.TriggerChaos), string(replace.TriggerAMIDrift)}, kinds()...)
	// Strategies are the workflow kinds.
	Strategies = []string{string(replace.StrategyMove), string(replace.StrategyIdentity), string(replace.StrategyController)}
	// Outcomes are how a workflow ends (replace.Record.Outcome).
	Outcomes = []string{string(replace.PhaseCompleted), string(replace.PhaseRolledBack), replace.OutcomeAborted, string(replace.PhaseFailed), string(replace.PhaseRefused)}
	// StepOutcomes are how a step ends.
	StepOutcomes = []string{"ok", "error", replace.OutcomeAborted}
	// ChaosDecisions, EventMessageOutcomes: what the trigger package counts.
	ChaosDecisions       = []string{"fired", "leashed", "skipped"}
	EventMessageOutcomes = []string{"deleted", "not-ours", "malformed", "retry"}
	// CanaryPhases are the canary's latency windows.
	CanaryPhases = []string{"before", "during", "after"}
)

func kinds() []string {
	var out []string
	for _, k := range events.AllKinds {
		out = append(out, string(k))
	}
	return out
}

// Options build Metrics.
type Options struct {
	// Holder labels the lease metric (host:pid).
	Holder string
	// Version and Revision label fleetd_build_info.
	Version, Revision string
}

// Metrics holds fleetd's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	replacements *prometheus.CounterVec
	workflows    *prometheus.HistogramVec
	steps        *prometheus.HistogramVec
	refusals     *prometheus.CounterVec
	chaos        *prometheus.CounterVec
	chaosEnabled prometheus.Gauge
	lastSuccess  *prometheus.GaugeVec
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

	// The workflow running now (0 when none).
	throttle    prometheus.Gauge
	copied      prometheus.Gauge
	toCopy      prometheus.Gauge
	rate        prometheus.Gauge
	eta         prometheus.Gauge
	stalled     prometheus.Gauge
	throttleSet prometheus.Gauge

	// The gate as last seen.
	gateOpen     prometheus.Gauge
	gateBlockers *prometheus.GaugeVec
	partitions   *prometheus.GaugeVec

	notifications *prometheus.CounterVec

	mu sync.Mutex
	// left: records that ended with throttles not yet removed.
	left map[string]bool
	// last: each trigger's last success (Unix seconds).
	last map[replace.Trigger]float64
}

// New registers fleetd's metrics (and the Go runtime's and the process's)
// on a new registry.
func New(o Options) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), left: map[string]bool{}, last: map[replace.Trigger]float64{}}
	counter := func(name, help string, labels []string, values ...[]string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		each(values, func(lv []string) { v.WithLabelValues(lv...) })
		return v
	}
	gaugeVec := func(name, help string, labels []string, values ...[]string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		each(values, func(lv []string) { v.WithLabelValues(lv...) })
		return v
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	histogram := func(name, help string, buckets []float64, labels []string, values ...[]string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		each(values, func(lv []string) { v.WithLabelValues(lv...) })
		return v
	}
	var steps []string
	for _, w := range replace.DefaultWorkflows() {
		for _, table := range []*replace.Workflow{w, w.Rollback} {
			if table == nil {
				continue
			}
			for _, s := range table.Steps {
				if !slices.Contains(steps, string(s.Step)) {
					steps = append(steps, string(s.Step))
				}
			}
		}
	}
	slices.Sort(steps)
	codes := make([]string, len(health.Codes))
	for i, c := range health.Codes {
		codes[i] = string(c)
	}

	m.replacements = counter("fleetd_replacements_total",
		"Workflows ended, by first trigger, strategy and outcome (completed, rolled-back, aborted: rolled back as an operator asked, failed, refused).",
		[]string{"trigger", "strategy", "outcome"}, Triggers, Strategies, Outcomes)
	m.workflows = histogram("fleetd_workflow_duration_seconds",
		"Wall time of each workflow from its request to its end, by kind (strategy) and outcome.",
		[]float64{60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600},
		[]string{"kind", "outcome"}, Strategies, Outcomes)
	m.steps = histogram("fleetd_replacement_step_duration_seconds",
		"Wall time of each workflow step, by step and outcome (ok, error, aborted).",
		[]float64{0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600},
		[]string{"step", "outcome"}, steps, StepOutcomes)
	m.refusals = counter("fleetd_gate_refusals_total", "Gate refusals of a workflow, by blocker code (under-min-isr, broker-down, ...).",
		[]string{"reason"}, codes)
	m.chaos = counter("fleetd_chaos_decisions_total", "Chaos schedule slots decided: fired (a request was queued), leashed (planned only) or skipped.",
		[]string{"decision"}, ChaosDecisions)
	m.chaosEnabled = gauge("fleetd_chaos_enabled", "1 if the chaos schedule is enabled and not leashed (it replaces nodes on its own).")
	m.lastSuccess = gaugeVec("fleetd_last_success_timestamp_seconds",
		"Unix time the last workflow asked for by this trigger completed; 0 if none has (alert on time() minus it, for chaos when enabled).",
		[]string{"trigger"}, Triggers)
	m.queueDepth = gauge("fleetd_queue_depth", "Requests waiting.")
	m.inProgress = gauge("fleetd_replacement_in_progress", "1 while a workflow runs.")
	m.paused = gauge("fleetd_paused", "1 while new disruptions are paused.")
	m.leaseHeld = gaugeVec("fleetd_lease_held", "1 if this process (label holder) is the active controller.", []string{"holder"}, []string{o.Holder})
	m.bytesMoved = prometheus.NewCounter(prometheus.CounterOpts{Name: "fleetd_moved_bytes_total", Help: "Bytes of partition data moved by completed workflows."})
	m.verified = counter("fleetd_canary_verifications_total",
		"Workflows' canary verdicts by outcome: verified (every acknowledged record read back once), failed (lost or duplicated), incomplete (no verdict).",
		[]string{"outcome"}, []string{"verified", "failed", "incomplete"})
	m.canaryLost = prometheus.NewCounter(prometheus.CounterOpts{Name: "fleetd_canary_lost_records_total", Help: "Acknowledged canary records never read back, over all workflows."})
	m.canaryP99 = gaugeVec("fleetd_canary_produce_p99_seconds", "The last workflow's canary produce latency p99, by phase (before, during, after).",
		[]string{"phase"}, CanaryPhases)
	m.events = counter("fleetd_events_total", "AWS events handled (new, not duplicates), by kind.", []string{"kind"}, append(kinds(), string(events.KindUnknown)))
	m.messages = counter("fleetd_event_messages_total", "SQS event messages by outcome: deleted, not-ours, malformed (left for the dead-letter redrive) or retry.",
		[]string{"outcome"}, EventMessageOutcomes)

	m.throttle = gauge("fleetd_throttle_bytes_per_second", "The replication rate fleetd has configured in Kafka for the running workflow (steered towards the asked throttle); 0 when none.")
	m.copied = gauge("fleetd_move_copied_bytes", "Bytes the running move has copied to the new broker; 0 when none runs.")
	m.toCopy = gauge("fleetd_move_total_bytes", "Bytes the running move must copy; 0 when none runs.")
	m.rate = gauge("fleetd_move_rate_bytes_per_second", "The running move's copy rate measured on the new broker; 0 when none runs.")
	m.eta = gauge("fleetd_move_eta_seconds", "The running move's remaining copy time at the measured rate; 0 when not known.")
	m.stalled = gauge("fleetd_move_stalled", "1 while the running move makes no progress.")
	m.throttleSet = gauge("fleetd_throttles_left_records", "Ended workflows whose throttle configs are still set (the start-up sweep removes them; alert if it stays above 0).")

	m.gateOpen = gauge("fleetd_gate_open", "1 if the gate's last verdict allowed a disruption, 0 if it refused (reasons in fleetd_gate_blockers).")
	m.gateBlockers = gaugeVec("fleetd_gate_blockers", "The gate's last verdict: 1 for each blocker code it refused on.", []string{"reason"}, codes)
	m.partitions = gaugeVec("fleetd_partitions", "Partitions as fleetd last saw them, by state: under-replicated (not explained by a reassignment), under-min-isr, offline, reassigning.",
		[]string{"state"}, []string{"under-replicated", "under-min-isr", "offline", "reassigning"})

	m.notifications = counter("fleetd_notifications_total",
		"Notifications by receiver and fate: delivered, failed (every attempt failed or the receiver refused it) or dropped (its queue was full: the receiver is down or slow).",
		[]string{"receiver", "outcome"})
	build := gaugeVec("fleetd_build_info", "fleetd's build: 1, labelled by version, revision and Go version.", []string{"version", "revision", "goversion"})
	build.WithLabelValues(o.Version, o.Revision, runtime.Version()).Set(1)

	m.Registry.MustRegister(m.replacements, m.workflows, m.steps, m.refusals, m.chaos, m.chaosEnabled, m.lastSuccess, m.queueDepth, m.inProgress, m.paused,
		m.leaseHeld, m.bytesMoved, m.events, m.messages, m.verified, m.canaryLost, m.canaryP99,
		m.throttle, m.copied, m.toCopy, m.rate, m.eta, m.stalled, m.throttleSet, m.gateOpen, m.gateBlockers, m.partitions, m.notifications, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// each calls f with every combination of values, one from each list.
func each(values [][]string, f func([]string)) {
	if len(values) == 0 {
		return
	}
	var rec func(i int, acc []string)
	rec = func(i int, acc []string) {
		if i == len(values) {
			f(slices.Clone(acc))
			return
		}
		for _, v := range values[i] {
			rec(i+1, append(acc, v))
		}
	}
	rec(0, nil)
}

// Handler serves the registry.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Seed restores what the metrics say about the past from the history:
// every trigger's last success, and the records whose throttles are left.
func (m *Metrics) Seed(recs []*replace.Record) {
	for _, r := range recs {
		m.remember(r)
	}
}

// remember updates what r says about the past (last success, throttles
// left); counters are not touched.
func (m *Metrics) remember(r *replace.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Phase == replace.PhaseCompleted {
		for _, t := range r.Triggers {
			if v := float64(r.Finished.UnixMilli()) / 1000; v > m.last[t] {
				m.last[t] = v
				m.lastSuccess.WithLabelValues(string(t)).Set(v)
			}
		}
	}
	if r.Phase.Terminal() && len(r.Throttles) > 0 && !r.ThrottlesRemoved {
		m.left[r.ID] = true
	} else {
		delete(m.left, r.ID)
	}
	m.throttleSet.Set(float64(len(m.left)))
}

// ThrottlesSwept forgets every record's left throttles: the start-up sweep
// removed them (those it could not remove come back with the next Seed).
func (m *Metrics) ThrottlesSwept(recs []*replace.Record) {
	m.mu.Lock()
	clear(m.left)
	m.mu.Unlock()
	m.Seed(recs)
}

// Step observes one step's timing.
func (m *Metrics) Step(_ *replace.Record, t replace.StepTiming, err error) {
	m.steps.WithLabelValues(string(t.Step), StepOutcome(err)).Observe(t.Duration().Seconds())
	if t.Step == replace.StepGate && err == nil {
		m.Gate(health.Verdict{Safe: true})
	}
}

// StepOutcome names how a step ended: ok, error, or aborted (an operator's
// abort, not an error).
func StepOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, replace.ErrAborted):
		return replace.OutcomeAborted
	default:
		return "error"
	}
}

// Finished counts a workflow that reached a terminal phase.
func (m *Metrics) Finished(r *replace.Record) {
	trigger := replace.TriggerOperator
	if len(r.Triggers) > 0 {
		trigger = r.Triggers[0] // the first asker; one label value per workflow
	}
	outcome := r.Outcome()
	m.replacements.WithLabelValues(string(trigger), string(r.Strategy), outcome).Inc()
	if r.Phase != replace.PhaseRefused && !r.Created.IsZero() && !r.Finished.IsZero() {
		m.workflows.WithLabelValues(string(r.Strategy), outcome).Observe(r.Finished.Sub(r.Created).Seconds())
	}
	if r.Phase == replace.PhaseRefused {
		v := health.Verdict{}
		for _, c := range r.Refusals {
			m.refusals.WithLabelValues(string(c)).Inc()
			v.Blockers = append(v.Blockers, health.Reason{Code: c})
		}
		m.Gate(v)
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
	}
	m.remember(r)
}

// Progress reports the running workflow's progress; nil: none runs.
func (m *Metrics) Progress(p *replace.Progress) {
	if p == nil {
		p = &replace.Progress{}
	}
	m.throttle.Set(float64(p.AppliedRate))
	m.copied.Set(float64(p.BytesCopied))
	m.toCopy.Set(float64(p.BytesTotal))
	m.rate.Set(float64(p.BytesPerSec))
	m.eta.Set(float64(p.ETASeconds))
	m.stalled.Set(b2f(p.Stalled))
}

// Gate reports a gate verdict fleetd saw (a workflow's gate, or a probe).
func (m *Metrics) Gate(v health.Verdict) {
	m.gateOpen.Set(b2f(v.Safe || len(v.Blockers) == 0))
	m.gateBlockers.Reset()
	for _, c := range health.Codes {
		m.gateBlockers.WithLabelValues(string(c))
	}
	for _, b := range v.Blockers {
		m.gateBlockers.WithLabelValues(string(b.Code)).Set(1)
	}
}

// Cluster reports the partitions' state in a snapshot fleetd took.
func (m *Metrics) Cluster(s *health.Snapshot) {
	m.partitions.WithLabelValues("under-replicated").Set(float64(len(health.UnderReplicated(s))))
	m.partitions.WithLabelValues("under-min-isr").Set(float64(len(health.UnderMinISR(s))))
	m.partitions.WithLabelValues("offline").Set(float64(len(health.Offline(s))))
	m.partitions.WithLabelValues("reassigning").Set(float64(len(health.Reassigning(s))))
}

// Receivers creates the notification series of each receiver at 0.
func (m *Metrics) Receivers(names []string) {
	each([][]string{names, notify.Outcomes}, func(lv []string) { m.notifications.WithLabelValues(lv...) })
}

// Notification counts a notification's fate at a receiver.
func (m *Metrics) Notification(receiver, outcome string) {
	m.notifications.WithLabelValues(receiver, outcome).Inc()
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

// ChaosEnabled says whether chaos acts on its own (enabled, not leashed).
func (m *Metrics) ChaosEnabled(on bool) { m.chaosEnabled.Set(b2f(on)) }

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
