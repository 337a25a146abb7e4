package replace

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Options tune the executor. Zero values take the defaults noted.
type Options struct {
	// Throttle is the replication throttle (default 50 MiB/s); a request may
	// carry its own.
	Throttle Throttle
	// Plan tunes batching and ordering (defaults: 5, smallest-first); a
	// request may carry its own. Its Throttle is set from the record's.
	Plan PlanOptions
	// Poll is how often a wait checks the cluster (default 10 s, as Cruise
	// Control).
	Poll time.Duration
	// MovePoll is how often the mover checks the moves in flight (default
	// 1 s): it reads only them, and a move done is a slot for the next, so
	// detection lag must not be a visible part of the copy.
	MovePoll time.Duration
	// RateInterval is how often the achieved copy rate is measured and the
	// configured rate steered towards the throttle (default 10 s); RateCap
	// bounds the configured rate, as a multiple of the throttle (default
	// 2; 1 turns steering off).
	RateInterval time.Duration
	RateCap      float64
	// DeadlinePolicy is what a move that cannot finish before its
	// request's deadline does (default raise-throttle); DeadlineMargin is
	// the time kept before the deadline for the workflow's other steps
	// (default 10 min).
	DeadlinePolicy DeadlinePolicy
	DeadlineMargin time.Duration
	// Adaptive, if set, is the throttle of replacements whose request
	// names none: it adapts within [Min, Max] to the canary's latency and
	// the health of partitions not moving (adapt.go).
	Adaptive *Adaptive
	// WindowTime: beyond Concurrency, the mover admits small moves while
	// the bytes left in flight are below this much copying at the throttle
	// (default 10 s).
	WindowTime time.Duration
	// LeaderSettle is how long new replicas are in sync before leadership
	// moves to them (default 10 s); LeaderGroup how many partitions'
	// leaders move at once (default 10; more when there would be over 20
	// groups), LeaderPause the pause between groups (default 1 s), for
	// producers to follow.
	LeaderSettle time.Duration
	LeaderGroup  int
	LeaderPause  time.Duration
	// RegisterTimeout bounds the wait for a launched broker to register (15 min).
	RegisterTimeout time.Duration
	// StallWarn: a copy below StallMinRate for this long is reported (90 s).
	StallWarn time.Duration
	// StallAbort: a copy that makes no progress for this long aborts (10 min).
	StallAbort time.Duration
	// StallMinRate in bytes/s (default 100 kB/s, Cruise Control's 0.1 MB/s).
	StallMinRate int64
	// StopTimeout bounds the old broker's controlled shutdown (5 min).
	StopTimeout time.Duration
	// InSyncTimeout bounds the identity strategy's re-replication (2 h).
	InSyncTimeout time.Duration
	// LeaderTimeout bounds waiting for preferred leaders (2 min).
	LeaderTimeout time.Duration
	// GuardWait bounds how long an act waits while the blast-radius guard
	// refuses it (default 30 min); then the workflow rolls back if it still
	// can, or fails for a person.
	GuardWait time.Duration
	// StepRetries is how often a step failing transiently is retried before
	// it counts as failed (default 8, backoff 1 s doubling to 30 s).
	StepRetries int
	// Canary, if set, starts a canary probe for each workflow that gets
	// past its gate; its verdict goes in the record. CanaryTail is how long
	// it runs past the workflow's end (default 5 s).
	// respread says whether the canary may change its topic's layout: not
	// once a plan exists, whose moves include the canary's partitions (a
	// re-spread then would fight the move).
	Canary     func(ctx context.Context, respread bool) (CanaryProbe, error)
	CanaryTail time.Duration
	// OnProgress sees live progress (CLI display).
	OnProgress func(Progress)
	// OnStep sees each step's timing when it ends; err is nil when it was
	// done, else why it failed (metrics, tracing).
	OnStep func(r *Record, t StepTiming, err error)
	// OnEvent sees each durable event ("after:<step>", "moves-submitted:<n>")
	// right after it was saved. Tests use it to kill fleetd at exact points.
	OnEvent func(event string, r *Record)
	Log     zerolog.Logger
	Now     func() time.Time
}

// DefaultOptions are the executor's defaults: the one place they live
// (config and flags take theirs from here).
func DefaultOptions() Options {
	var o Options
	o.defaults()
	return o
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	o.Throttle = o.Throttle.Or(Rate(50 << 20))
	o.Plan.defaults()
	def(&o.Poll, 10*time.Second)
	def(&o.MovePoll, time.Second)
	def(&o.RateInterval, 10*time.Second)
	def(&o.WindowTime, 10*time.Second)
	if o.RateCap == 0 {
		o.RateCap = 2
	}
	def(&o.LeaderSettle, 10*time.Second)
	def(&o.LeaderPause, time.Second)
	def(&o.CanaryTail, 5*time.Second)
	def(&o.DeadlineMargin, 10*time.Minute)
	if o.DeadlinePolicy == "" {
		o.DeadlinePolicy = DeadlineRaiseThrottle
	}
	if o.LeaderGroup <= 0 {
		o.LeaderGroup = 10
	}
	def(&o.RegisterTimeout, 15*time.Minute)
	def(&o.StallWarn, 90*time.Second)
	def(&o.StallAbort, 10*time.Minute)
	def(&o.StopTimeout, 5*time.Minute)
	def(&o.InSyncTimeout, 2*time.Hour)
	def(&o.LeaderTimeout, 2*time.Minute)
	def(&o.GuardWait, 30*time.Minute)
	if o.StallMinRate <= 0 {
		o.StallMinRate = 100_000
	}
	if o.StepRetries <= 0 {
		o.StepRetries = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Progress is a live view of a running replacement.
type Progress struct {
	ID string `json:"id"`
	// RequestID is the queued request the workflow serves ("" if none).
	RequestID string `json:"request_id,omitempty"`
	Phase     Phase  `json:"phase"`
	Step      Step   `json:"step"`
	// InFlight counts the partition moves in flight.
	InFlight        int   `json:"in_flight"`
	PartitionsDone  int   `json:"partitions_done"`
	Partitions      int   `json:"partitions"`
	BytesCopied     int64 `json:"bytes_copied"`
	BytesTotal      int64 `json:"bytes_total"`
	UnderReplicated int   `json:"under_replicated"`
	Stalled         bool  `json:"stalled"`
	// BytesPerSec is the copy rate measured on the destination; Throttle
	// the rate asked for, AppliedRate the rate configured in Kafka now
	// (steered towards the throttle).
	BytesPerSec int64  `json:"bytes_per_sec,omitempty"`
	Throttle    string `json:"throttle,omitempty"`
	AppliedRate int64  `json:"applied_rate,omitempty"`
	// ETASeconds is the copy left at the measured rate, or at the throttle
	// until a rate is measured (0: nothing left, or unthrottled and not
	// measured yet).
	ETASeconds int64 `json:"eta_seconds,omitempty"`
	// Behind names the moves copying slower than their partitions are
	// written, with both rates: they cannot finish at this rate.
	Behind []string `json:"behind,omitempty"`
}

// Request asks for one broker to be replaced.
type Request struct {
	Broker int32
	// Strategy "" picks: move when the broker is alive, identity when dead.
	Strategy Strategy
	// Triggers say who asked (default operator).
	Triggers []Trigger
	// Throttle, Concurrency and Order override the executor's options for
	// this replacement (zero: the executor's).
	Throttle    Throttle
	Concurrency int
	Order       Order
	// Reason is the operator's free text, kept in the record.
	Reason string
	// Deadline, if set, is when the old broker's instance goes away (an
	// AWS retirement's not-before): the gate compares the copy's ETA with
	// it and applies Options.DeadlinePolicy.
	Deadline time.Time
	// Instance, if known, is the old broker's instance (an event names it):
	// with a provider that can look it up, a broker whose instance is
	// already terminated is replaced in the same subnet and AZ.
	Instance string
	// RequestID is the queued request this serves (the daemon's q-...):
	// kept in the record, so a client following the request finds it.
	RequestID string
}

// Executor runs replacements. One Executor runs one replacement at a time.
type Executor struct {
	Cluster  Cluster
	Provider Provider
	Store    Store
	Opts     Options

	// flows are the workflow tables by strategy (DefaultWorkflows; a test
	// may declare its own).
	flows map[Strategy]*Workflow

	mu      sync.Mutex
	abort   string
	running bool
	pending *throttleChange
	wake    chan struct{} // a pending change wakes a waiting poll
	// canary is the running workflow's canary (the adaptive throttle's
	// signal); only the goroutine running the workflow uses it.
	canary *canaryRun
}

// New returns an executor with defaults applied.
func New(c Cluster, p Provider, s Store, o Options) *Executor {
	o.defaults()
	return &Executor{Cluster: c, Provider: p, Store: s, Opts: o, flows: DefaultWorkflows(), wake: make(chan struct{}, 1)}
}

// Abort asks the running replacement to roll back at its next check.
func (e *Executor) Abort(reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if reason == "" {
		reason = "aborted by operator"
	}
	e.abort = reason
}

func (e *Executor) abortReason() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.abort
}

// CheckRequest refuses options no replacement can run with; the API and the
// CLI ask it before sending, Begin and Preview before recording.
func CheckRequest(req Request) error {
	switch {
	case req.Strategy != "" && req.Strategy != StrategyMove && req.Strategy != StrategyIdentity && req.Strategy != StrategyController:
		return fmt.Errorf("strategy %q: want move, identity, controller or none (fleetd chooses)", req.Strategy)
	case req.Order != "" && !slices.Contains(Orders, req.Order):
		return fmt.Errorf("order %q: want one of %v", req.Order, Orders)
	case req.Concurrency < 0:
		return fmt.Errorf("concurrency %d: want at least 1", req.Concurrency)
	}
	return nil
}

// Begin records a new replacement (nothing is changed yet) and returns it.
func (e *Executor) Begin(ctx context.Context, req Request) (*Record, error) {
	if err := CheckRequest(req); err != nil {
		return nil, err
	}
	now := e.Opts.Now()
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	r := &Record{
		ID:          fmt.Sprintf("r-%s-%d-%s", now.UTC().Format("20060102T150405"), req.Broker, hex.EncodeToString(id)),
		Triggers:    triggersOr(req.Triggers),
		Throttle:    e.startThrottle(req),
		Adaptive:    e.adaptiveFor(req),
		Concurrency: cmp.Or(req.Concurrency, e.Opts.Plan.Concurrency),
		Order:       cmp.Or(req.Order, e.Opts.Plan.Order),
		Reason:      req.Reason,
		RequestID:   req.RequestID,
		Deadline:    req.Deadline,
		Strategy:    req.Strategy,
		OldBroker:   req.Broker,
		OldInstance: req.Instance,
		NewBroker:   -1,
		Phase:       PhaseRunning,
		Step:        StepGate,
		Created:     now,
		Updated:     now,
	}
	if err := e.Store.Save(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// adaptiveFor is the adaptive throttle a request runs with: the executor's,
// unless the request names a throttle of its own (an operator's rate is
// kept as given).
func (e *Executor) adaptiveFor(req Request) *Adaptive {
	if e.Opts.Adaptive == nil || req.Throttle.IsSet() {
		return nil
	}
	a := *e.Opts.Adaptive
	return &a
}

// Reopen puts a record the gate refused back at the gate, for another try
// of the same request: one record per request, however often it is retried.
// Only a refused record can be reopened (nothing was changed for it).
func (e *Executor) Reopen(ctx context.Context, r *Record, req Request) error {
	if r.Phase != PhaseRefused {
		return fmt.Errorf("reopen %s: it is %s, only a refused record is retried", r.ID, r.Phase)
	}
	if err := CheckRequest(req); err != nil {
		return err
	}
	triggers := r.Triggers
	if len(req.Triggers) > 0 {
		triggers = req.Triggers
	}
	*r = Record{ID: r.ID, Triggers: triggers, Strategy: req.Strategy, OldBroker: req.Broker, OldInstance: req.Instance,
		Throttle: e.startThrottle(req), Adaptive: e.adaptiveFor(req), Concurrency: cmp.Or(req.Concurrency, e.Opts.Plan.Concurrency),
		Order: cmp.Or(req.Order, e.Opts.Plan.Order), Reason: req.Reason, RequestID: cmp.Or(req.RequestID, r.RequestID), Deadline: req.Deadline,
		NewBroker: -1, Phase: PhaseRunning, Step: StepGate, Attempts: r.Attempts, Created: r.Created, Updated: e.Opts.Now()}
	return e.save(ctx, r)
}

// InFlight returns the records that are not finished, oldest first.
func InFlight(ctx context.Context, s Store) ([]*Record, error) {
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, r := range all {
		if !r.Phase.Terminal() {
			out = append(out, r)
		}
	}
	return out, nil
}

func (e *Executor) logger(r *Record) *zerolog.Logger { return Logger(e.Opts.Log, r) }

// Logger returns l with r's ids (replacement, old and new broker and
// instance): every log line about a replacement carries them.
func Logger(l zerolog.Logger, r *Record) *zerolog.Logger {
	// Only the ids known so far: an empty field is noise a reader must
	// learn to skip.
	c := l.With().Str("replacement", r.ID).Int32("broker", r.OldBroker)
	if r.OldInstance != "" {
		c = c.Str("instance", r.OldInstance)
	}
	if r.NewBroker >= 0 {
		c = c.Int32("new_broker", r.NewBroker)
	}
	if r.NewInstance != "" {
		c = c.Str("new_instance", r.NewInstance)
	}
	l = c.Logger()
	return &l
}

// Run drives r until it is completed, rolled back, refused or failed, or
// until ctx ends (then r stays resumable where it was). The returned error is
// nil for completed; otherwise it says why.
func (e *Executor) Run(ctx context.Context, r *Record) error {
	// An abort is for the replacement running now, never the next one.
	e.mu.Lock()
	e.running = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.abort, e.running = "", false
		if e.pending != nil {
			e.pending.done <- throttleOutcome{err: fmt.Errorf("replacement %s stopped (%s) before the change was applied", r.ID, r.Phase)}
			e.pending = nil
		}
		e.mu.Unlock()
	}()
	var canary *canaryRun
	defer func() {
		e.canary = nil
		if canary != nil && !r.Phase.Terminal() {
			// Killed or shutting down: the canary's records are its own,
			// and a resumed workflow starts a new one.
			stopped, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_, _ = canary.probe.Stop(stopped)
			cancel()
		}
	}()
	for !r.Phase.Terminal() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if canary == nil && r.Canary == nil {
			canary = e.startCanary(ctx, r)
			e.canary = canary
		}
		e.applyPending(ctx, r)
		if reason := e.abortReason(); reason != "" && r.Phase == PhaseRunning {
			if err := e.beginRollback(ctx, r, errors.New(reason), true); err != nil {
				return err
			}
			continue
		}
		step := r.Step
		log := e.logger(r)
		e.startTiming(r, step)
		err := e.runStep(ctx, r, step)
		if ctx.Err() != nil {
			return ctx.Err() // killed or shutting down: resumable from the record
		}
		if err != nil {
			if err := e.handleFailure(ctx, r, step, err); err != nil {
				return err
			}
			continue
		}
		e.endTiming(r, step, nil)
		w := e.workflow(r)
		if r.Step = w.After(step); r.Step == w.End {
			r.Phase, r.Finished = w.EndPhase, e.Opts.Now()
		}
		if err := e.save(ctx, r); err != nil {
			return err
		}
		log.Info().Str("step", string(step)).Str("next", string(r.Step)).Msg("step done")
		e.event("after:"+string(step), r)
	}
	if canary != nil {
		e.finishCanary(ctx, r, canary)
	}
	switch r.Phase {
	case PhaseCompleted:
		return nil
	case PhaseRolledBack:
		return fmt.Errorf("replacement %s rolled back: %s", r.ID, r.Error)
	default:
		return fmt.Errorf("replacement %s %s: %s", r.ID, r.Phase, r.Error)
	}
}

// runStep runs one step, retrying transient failures with capped backoff.
func (e *Executor) runStep(ctx context.Context, r *Record, step Step) error {
	fn := e.handler(r, step)
	backoff := time.Second
	var err error
	for attempt := 0; attempt <= e.Opts.StepRetries; attempt++ {
		if err = fn(ctx, r); err == nil || Classify(ctx, err) != Retry {
			return err
		}
		e.logger(r).Warn().Err(err).Str("step", string(step)).Int("attempt", attempt+1).Float64("retry_in_seconds", backoff.Seconds()).Msg("step failed, retrying")
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 30*time.Second)
	}
	return fatal("step %s failed %d times: %w", step, e.Opts.StepRetries+1, err)
}

// handleFailure moves r on after step failed with err, as Classify and the
// workflow's table say.
func (e *Executor) handleFailure(ctx context.Context, r *Record, step Step, err error) error {
	log := e.logger(r)
	var ref *refusedError
	switch class := Classify(ctx, err); {
	case class == Refused && errors.As(err, &ref):
		r.Phase, r.Error, r.Finished = PhaseRefused, ref.v.Summary(), e.Opts.Now()
		r.Attempts++
		for _, b := range ref.v.Blockers {
			r.Refusals = append(r.Refusals, b.Code)
		}
		log.Warn().Str("reason", r.Error).Msg("gate refused; nothing was changed")
	case class == NeedsPerson:
		r.Phase, r.Error, r.Finished = PhaseFailed, err.Error(), e.Opts.Now()
		log.Error().Err(err).Str("step", string(step)).Msg("replacement stopped: needs a person")
	case r.Phase == PhaseRollingBack:
		r.Phase, r.Error, r.Finished = PhaseFailed, fmt.Sprintf("rollback step %s failed: %v (first: %s)", step, err, r.Error), e.Opts.Now()
		log.Error().Err(err).Str("step", string(step)).Msg("rollback failed: needs a person")
	default:
		aborted := class == Aborted
		if aborted {
			err = &abortedError{e.abortReason()}
		}
		e.endTiming(r, step, err)
		return e.beginRollback(ctx, r, fmt.Errorf("step %s: %w", step, err), aborted)
	}
	if r.Phase == PhaseFailed {
		// Failed still means no throttle left behind; if even that fails, the
		// start-up sweep removes them.
		if err := RemoveThrottles(ctx, e.Cluster, r); err != nil {
			log.Error().Err(err).Msg("could not remove throttles; the next start-up sweep will")
		}
		if err := RemoveCordon(ctx, e.Cluster, r); err != nil {
			log.Error().Err(err).Msg("could not remove the old broker's cordon; the next start-up sweep will")
		}
	}
	e.endTiming(r, step, err)
	return e.save(ctx, r)
}

// beginRollback ends the forward path as r's table says for the step it
// stands at: rolled back when nothing was changed, the rollback table when
// something can be undone, failed (or, for an abort, finishing) past the
// point of no return. aborted says the cause is an operator's abort rather
// than a failure.
func (e *Executor) beginRollback(ctx context.Context, r *Record, cause error, aborted bool) error {
	log := e.logger(r)
	r.Error = cause.Error()
	r.Waiting, r.WaitingSince = "", time.Time{}
	if aborted {
		r.AbortRequested = cause.Error()
	}
	w := e.workflow(r)
	switch w.onFailure(r, r.Step) {
	case NothingToUndo:
		r.Phase, r.Finished = PhaseRolledBack, e.Opts.Now()
	case RollBack:
		if w.Rollback == nil {
			r.Phase, r.Finished = PhaseFailed, e.Opts.Now()
			break
		}
		r.Phase, r.Step = PhaseRollingBack, w.Rollback.Steps[0].Step
		log.Warn().Err(cause).Msg("rolling back")
		if err := e.save(ctx, r); err != nil {
			return err
		}
		e.event("rollback-begun", r)
		return nil
	case NoReturn:
		if aborted {
			// The old broker is already going: finishing is the only safe way.
			log.Warn().Err(cause).Str("step", string(r.Step)).Msg("too late to abort: past the point of no return; finishing instead")
			e.mu.Lock()
			e.abort = ""
			e.mu.Unlock()
			r.Error = ""
			return e.save(ctx, r)
		}
		// Nothing to undo, and retrying in a loop would not help.
		r.Phase, r.Finished = PhaseFailed, e.Opts.Now()
	}
	log.Warn().Err(cause).Str("phase", string(r.Phase)).Msg("replacement aborted")
	return e.save(ctx, r)
}

func (e *Executor) save(ctx context.Context, r *Record) error {
	r.Updated = e.Opts.Now()
	// A save must not be abandoned because fleetd is shutting down: the
	// record is how the next fleetd knows what happened.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := e.Store.Save(sctx, r); err != nil {
		return fmt.Errorf("save progress of %s: %w", r.ID, err)
	}
	return nil
}

func (e *Executor) event(name string, r *Record) {
	if e.Opts.OnEvent != nil {
		e.Opts.OnEvent(name, r)
	}
}

func (e *Executor) progress(p Progress) {
	if e.Opts.OnProgress != nil {
		e.Opts.OnProgress(p)
	}
}

func (e *Executor) startTiming(r *Record, step Step) {
	if n := len(r.Steps); n > 0 && r.Steps[n-1].Step == step && r.Steps[n-1].Ended.IsZero() {
		return // resumed: the step keeps its original start
	}
	r.Steps = append(r.Steps, StepTiming{Step: step, Started: e.Opts.Now()})
}

// endTiming closes the step's timing; err is why it failed (nil: done).
func (e *Executor) endTiming(r *Record, step Step, err error) {
	if n := len(r.Steps); n > 0 && r.Steps[n-1].Step == step && r.Steps[n-1].Ended.IsZero() {
		r.Steps[n-1].Ended = e.Opts.Now()
		if e.Opts.OnStep != nil {
			e.Opts.OnStep(r, r.Steps[n-1], err)
		}
	}
}

// sleep waits d or until ctx ends; false means ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
