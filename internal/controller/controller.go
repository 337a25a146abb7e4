package controller

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/fleetd/fleetd/internal/atomicfile"
	"github.com/fleetd/fleetd/internal/lease"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/who"
)

// Executor is what the controller needs from the replacement engine
// (*replace.Executor satisfies it).
type Executor interface {
	Begin(ctx context.Context, req replace.Request) (*replace.Record, error)
	// Reopen puts a refused record back at the gate for another try.
	Reopen(ctx context.Context, r *replace.Record, req replace.Request) error
	Run(ctx context.Context, r *replace.Record) error
	Abort(reason string)
	// SetThrottle changes the running replacement's throttle.
	SetThrottle(ctx context.Context, t replace.Throttle) (replace.ThrottleResult, error)
}

// Lease is the single-active-controller lease (internal/lease).
type Lease interface {
	TryAcquire(ctx context.Context) error
	Held(ctx context.Context) (bool, error)
	Release(ctx context.Context) error
}

// Options tune the controller.
type Options struct {
	// Tick is how often the controller looks at its lease and queue (5 s).
	Tick time.Duration
	// RetryBase and RetryMax bound the wait after a gate refusal (10 s, 5 min).
	RetryBase, RetryMax time.Duration
	// GiveUpAfter drops a request refused for this long, recording why (24 h).
	GiveUpAfter time.Duration
	// PauseFile makes the pause switch survive restarts: it exists while
	// paused. Empty keeps the switch in memory.
	PauseFile string
	// QueueFile keeps the queue across restarts and takeovers: the active
	// controller writes it on every change and loads it when it takes the
	// lease. Empty keeps the queue in memory.
	QueueFile string
	// OnAcquire runs on the owner goroutine each time this process takes the
	// lease, before any work starts (the start-up throttle sweep, the check
	// for replacements in flight that this process cannot see). A non-empty
	// pause pauses the controller durably with that reason. An error means
	// it is not safe to act now: the lease is given back and taking it is
	// tried again at the next turn.
	OnAcquire func(ctx context.Context) (pause string, err error)
	// OnStatus sees the controller's status after every turn of its loop
	// (metrics). It runs on the owner goroutine and must not block.
	OnStatus func(Status)
	// OnEvent is told what the controller decided (notifications). It
	// runs on the owner goroutine and must not block.
	OnEvent func(Event)
	Log     zerolog.Logger
	Now     func() time.Time
}

// Status is what the controller reports about itself.
type Status struct {
	LeaseHeld bool `json:"lease_held"`
	// Lease says who holds the lease when this process does not.
	Lease  string `json:"lease,omitempty"`
	Paused bool   `json:"paused"`
	// PauseReason says why, when fleetd paused itself.
	PauseReason string `json:"pause_reason,omitempty"`
	// Error is what keeps the controller from working: the lease or the
	// records cannot be read or written (an I/O error, not another holder).
	// Readiness fails while it is set.
	Error   string           `json:"error,omitempty"`
	Running *replace.Record  `json:"running,omitempty"`
	Queue   []Request        `json:"queue"`
	Dropped []DroppedRequest `json:"dropped,omitempty"`
	// Done lists requests that another replacement served (their broker was
	// replaced after they were made): ended without a record of their own.
	Done []DroppedRequest `json:"done,omitempty"`
	// Attached are requests made while their broker's replacement was
	// running (Request.ServedBy names it): done when it completes.
	Attached []Request `json:"attached,omitempty"`
}

// EventKind is what the controller tells OnEvent.
type EventKind string

const (
	// EventAccepted: a request was queued, merged or attached.
	EventAccepted EventKind = "accepted"
	// EventRefused: the gate refused a request, which waits and is retried
	// (Event.Waited says since when it was made).
	EventRefused EventKind = "refused"
	// EventPaused and EventResumed: the pause switch changed (Reason: why
	// fleetd paused itself; empty for an operator).
	EventPaused  EventKind = "paused"
	EventResumed EventKind = "resumed"
	// EventLeaseLost and EventLeaseAcquired: this process stopped or
	// started being the active one.
	EventLeaseLost     EventKind = "lease-lost"
	EventLeaseAcquired EventKind = "lease-acquired"
)

// Event is one decision of the controller.
type Event struct {
	Kind    EventKind
	Request *Request
	Record  *replace.Record
	Reason  string
	Waited  time.Duration
}

func (c *Controller) emit(ev Event) {
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(ev)
	}
}

// DroppedRequest is a request given up on, or served by another
// replacement (Request.ServedBy), and why.
type DroppedRequest struct {
	Request
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Controller is the one goroutine that owns the queue and runs at most one
// replacement at a time. Its methods are safe from any goroutine; they talk
// to the owner through a channel.
type Controller struct {
	exec  Executor
	store replace.Store
	lease Lease
	opts  Options

	cmds chan func(*state)
}

// state is owned by the Run goroutine alone.
type state struct {
	queue     Queue
	paused    bool
	pauseWhy  string
	leaseHeld bool
	leaseInfo string
	err       string // see Status.Error
	savedQ    string // the queue as last written to QueueFile
	running   *replace.Record
	runReq    *Request
	cancelRun context.CancelFunc
	dropped   []DroppedRequest
	done      []DroppedRequest
	attached  []Request // submitted while their broker's replacement ran
}

type result struct {
	req *Request // nil for a resumed record
	rec *replace.Record
	err error
}

// DefaultOptions are the controller's defaults: the one place they live
// (config's gate section takes its defaults from here).
func DefaultOptions() Options {
	var o Options
	o.defaults()
	return o
}

func (o *Options) defaults() {
	o.Tick = cmp.Or(o.Tick, 5*time.Second)
	o.RetryBase = cmp.Or(o.RetryBase, 10*time.Second)
	o.RetryMax = cmp.Or(o.RetryMax, 5*time.Minute)
	o.GiveUpAfter = cmp.Or(o.GiveUpAfter, 24*time.Hour)
	if o.Now == nil {
		o.Now = time.Now
	}
}

// New returns a controller. Start it with Run.
func New(exec Executor, store replace.Store, lease Lease, o Options) *Controller {
	o.defaults()
	return &Controller{exec: exec, store: store, lease: lease, opts: o, cmds: make(chan func(*state))}
}

// do runs fn on the owner goroutine, or fails when ctx ends first.
func (c *Controller) do(ctx context.Context, fn func(*state)) error {
	done := make(chan struct{})
	select {
	case c.cmds <- func(s *state) { fn(s); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Outcome is what became of a submitted request.
type Outcome string

const (
	// Queued: a new request, waiting its turn.
	Queued Outcome = "queued"
	// Merged into the request already queued for the broker (Into).
	Merged Outcome = "merged"
	// Attached to the replacement of the broker running now (Into): it is
	// shown there, and done when that replacement completes.
	Attached Outcome = "attached"
)

// Submission answers Submit: the request as it now stands, and what became
// of it.
type Submission struct {
	Request Request `json:"request"`
	Outcome Outcome `json:"outcome"`
	// Into names the queued request (q-...) or running replacement (r-...)
	// the submission joined; empty when Queued.
	Into string `json:"into,omitempty"`
}

// NotActiveError: this process does not hold the lease, so it changes
// nothing; Holder says who does, when known.
type NotActiveError struct{ Lease string }

func (e *NotActiveError) Error() string {
	who := e.Lease
	if who == "" {
		who = "the lease is not held yet"
	}
	return "standby: this fleetd changes nothing (" + who + "); the active fleetd does"
}

// ConflictError: the request cannot be merged with the one queued for its
// broker (they ask for different options).
type ConflictError struct{ Err error }

func (e *ConflictError) Error() string { return e.Err.Error() }

// active runs fn on the owner goroutine if this process holds the lease; a
// standby refuses every change (one check for every mutation).
func (c *Controller) active(ctx context.Context, fn func(*state) error) error {
	var err error
	if derr := c.do(ctx, func(s *state) {
		if !s.leaseHeld {
			err = &NotActiveError{Lease: s.leaseInfo}
			return
		}
		err = fn(s)
	}); derr != nil {
		return derr
	}
	return err
}

// Submit queues a request, merges it into the one queued for its broker, or
// attaches it to the replacement of that broker running now; the answer
// says which. A standby refuses (NotActiveError), and so does a request
// whose options contradict the queued one's (ConflictError).
func (c *Controller) Submit(ctx context.Context, r Request) (Submission, error) {
	if r.ID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		r.ID = "q-" + hex.EncodeToString(b)
	}
	if r.Received.IsZero() {
		r.Received = c.opts.Now()
	}
	var sub Submission
	err := c.active(ctx, func(s *state) error {
		log := c.opts.Log.Info().Str("request", r.ID).Int32("broker", r.Broker).Str("triggers", replace.JoinTriggers(r.Triggers))
		if s.running != nil && s.running.OldBroker == r.Broker {
			r.ServedBy = s.running.ID // that broker is being replaced right now
			s.attached = append(s.attached, r)
			sub = Submission{Request: r, Outcome: Attached, Into: s.running.ID}
			log.Str("attached_to", s.running.ID).Msg("request attached to the replacement of its broker already running")
			c.emit(Event{Kind: EventAccepted, Request: &r, Reason: "attached to " + s.running.ID})
			return nil
		}
		if cur, ok := s.queue.Queued(r.Broker); ok {
			if err := Conflict(cur, r); err != nil {
				return &ConflictError{err}
			}
			s.queue.Add(r)
			merged, _ := s.queue.Queued(r.Broker)
			sub = Submission{Request: merged, Outcome: Merged, Into: cur.ID}
			log.Str("merged_into", cur.ID).Msg("request merged into the one queued for its broker")
			c.emit(Event{Kind: EventAccepted, Request: &merged, Reason: "merged into " + cur.ID})
			return nil
		}
		s.queue.Add(r)
		sub = Submission{Request: r, Outcome: Queued}
		log.Msg("replacement requested")
		c.emit(Event{Kind: EventAccepted, Request: &r, Reason: "queued"})
		return nil
	})
	return sub, err
}

// Cancel takes a queued request off the queue; it is listed as dropped with
// the reason. A running replacement is not cancelled but aborted.
func (c *Controller) Cancel(ctx context.Context, id, reason string) (Request, error) {
	var out Request
	err := c.active(ctx, func(s *state) error {
		r, ok := s.queue.Remove(id)
		if !ok {
			if s.runReq != nil && s.runReq.ID == id {
				return fmt.Errorf("request %s is running as %s: fleetd abort rolls it back", id, s.running.ID)
			}
			return &NotQueuedError{ID: id}
		}
		out = r
		by := who.From(ctx)
		why := "cancelled by " + by
		if reason != "" {
			why += ": " + reason
		}
		s.dropped = append(s.dropped, DroppedRequest{Request: r, Reason: why, At: c.opts.Now()})
		c.opts.Log.Warn().Str("request", id).Int32("broker", r.Broker).Str("reason", reason).Str("by", by).Msg("queued request cancelled")
		return nil
	})
	return out, err
}

// NotQueuedError: no queued request has that id.
type NotQueuedError struct{ ID string }

func (e *NotQueuedError) Error() string {
	return fmt.Sprintf("no queued request %q (fleetd status lists the queue)", e.ID)
}

// SetThrottle changes the throttle of the running replacement (recorded,
// then applied to Kafka at once).
func (c *Controller) SetThrottle(ctx context.Context, t replace.Throttle) (replace.ThrottleResult, error) {
	if err := c.active(ctx, func(s *state) error {
		if s.running == nil {
			return replace.ErrNotRunning
		}
		return nil
	}); err != nil {
		return replace.ThrottleResult{}, err
	}
	c.opts.Log.Info().Str("throttle", t.String()).Str("by", who.From(ctx)).Msg("throttle change requested")
	return c.exec.SetThrottle(ctx, t)
}

// SetPaused stops (or allows again) new disruptions, durably when a
// PauseFile is configured. A running replacement is not affected: abort it.
func (c *Controller) SetPaused(ctx context.Context, paused bool) error {
	by := "by " + who.From(ctx)
	return c.active(ctx, func(s *state) error {
		err := c.persistPause(paused, by)
		if err == nil {
			switch {
			case paused && !s.paused:
				c.emit(Event{Kind: EventPaused, Reason: by})
			case !paused && s.paused:
				c.emit(Event{Kind: EventResumed, Reason: by})
			}
			s.paused, s.pauseWhy = paused, ""
			if paused {
				s.pauseWhy = by
			}
		}
		return err
	})
}

func (c *Controller) persistPause(paused bool, reason string) error {
	if c.opts.PauseFile == "" {
		return nil
	}
	if !paused {
		if err := os.Remove(c.opts.PauseFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("resume: %w", err)
		}
		return nil
	}
	line := "paused " + c.opts.Now().UTC().Format(time.RFC3339)
	if reason != "" {
		line += ": " + reason
	}
	if err := atomicfile.Write(c.opts.PauseFile, []byte(line+"\n"), 0o640); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	return nil
}

// Abort asks the running replacement to roll back. It reports whether one was running.
func (c *Controller) Abort(ctx context.Context, reason string) (bool, error) {
	var running bool
	err := c.active(ctx, func(s *state) error {
		if s.running != nil {
			running = true
			by := who.From(ctx)
			c.opts.Log.Warn().Str("replacement", s.running.ID).Int32("broker", s.running.OldBroker).Str("reason", reason).Str("by", by).Msg("abort requested")
			c.exec.Abort(cmp.Or(reason, "aborted") + " (by " + by + ")")
		}
		return nil
	})
	return running, err
}

// Status reports the controller's state.
func (c *Controller) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, func(s *state) {
		st = c.status(s)
	})
	return st, err
}

func (c *Controller) status(s *state) Status {
	st := Status{LeaseHeld: s.leaseHeld, Lease: s.leaseInfo, Error: s.err, Paused: s.paused, PauseReason: s.pauseWhy, Queue: s.queue.List(), Dropped: append([]DroppedRequest(nil), s.dropped...), Done: append([]DroppedRequest(nil), s.done...), Attached: slices.Clone(s.attached)}
	if s.running != nil {
		// The executor's goroutine owns the live record; read the copy it
		// last saved (its ID and old broker never change).
		r, err := c.store.Load(context.Background(), s.running.ID)
		if err != nil {
			r = &replace.Record{ID: s.running.ID, OldBroker: s.running.OldBroker}
		}
		st.Running = r
	}
	return st
}

// loadPause reads the durable pause switch.
func (c *Controller) loadPause(s *state) {
	if c.opts.PauseFile == "" {
		return
	}
	b, err := os.ReadFile(c.opts.PauseFile)
	paused := err == nil
	if paused && !s.paused {
		c.opts.Log.Warn().Str("file", c.opts.PauseFile).Msg("paused: no new disruptions until resumed")
	}
	s.paused, s.pauseWhy = paused, ""
	if _, why, ok := strings.Cut(strings.TrimSpace(string(b)), ": "); paused && ok {
		s.pauseWhy = why
	}
}

// saveQueue writes the queue when it changed and this process is active.
func (c *Controller) saveQueue(s *state) {
	if c.opts.QueueFile == "" || !s.leaseHeld {
		return
	}
	b, err := json.MarshalIndent(s.queue.List(), "", "  ")
	if err != nil || string(b) == s.savedQ {
		return
	}
	if err := atomicfile.Write(c.opts.QueueFile, b, 0o640); err != nil {
		c.opts.Log.Error().Err(err).Msg("cannot save the queue; it is kept in memory")
		return
	}
	s.savedQ = string(b)
}

// loadQueue merges the saved queue into s (on taking the lease).
func (c *Controller) loadQueue(s *state) {
	if c.opts.QueueFile == "" {
		return
	}
	b, err := os.ReadFile(c.opts.QueueFile)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var saved []Request
	if err == nil {
		err = json.Unmarshal(b, &saved)
	}
	if err != nil {
		c.opts.Log.Error().Err(err).Str("file", c.opts.QueueFile).Msg("cannot read the saved queue; starting without it (the file is left for a person)")
		return
	}
	for _, r := range saved {
		s.queue.Add(r)
	}
	s.savedQ = string(b)
	if len(saved) > 0 {
		c.opts.Log.Info().Int("requests", len(saved)).Msg("queue restored")
	}
}

// Run owns the controller's state until ctx ends. A replacement running then
// is interrupted where it stands and stays resumable from its record.
func (c *Controller) Run(ctx context.Context) error {
	s := &state{}
	c.loadPause(s)
	done := make(chan result, 1)
	tick := time.NewTicker(c.opts.Tick)
	defer tick.Stop()
	defer func() {
		if s.cancelRun != nil {
			s.cancelRun()
			<-done
		}
		_ = c.lease.Release(context.WithoutCancel(ctx))
	}()
	for {
		c.step(ctx, s, done)
		select {
		case <-ctx.Done():
			return nil
		case fn := <-c.cmds:
			fn(s)
		case res := <-done:
			c.finished(s, res)
		case <-tick.C:
		}
		c.saveQueue(s)
		if c.opts.OnStatus != nil {
			c.opts.OnStatus(c.status(s))
		}
	}
}

// step acquires or checks the lease and starts work when idle.
func (c *Controller) step(ctx context.Context, s *state, done chan result) {
	log := c.opts.Log
	if !s.leaseHeld {
		if err := c.lease.TryAcquire(ctx); err != nil {
			msg := err.Error()
			switch {
			case !errors.Is(err, lease.ErrHeld):
				// Not another holder: fleetd cannot use its lease. That is
				// an error that fails readiness, never "standby".
				if msg != s.err {
					log.Error().Err(err).Msg("cannot take the lease: not standby, broken; fix the lease and fleetd goes on")
				}
				s.err, s.leaseInfo = msg, msg
			case msg != s.leaseInfo:
				s.err, s.leaseInfo = "", msg
				log.Info().Str("lease", msg).Msg("standby: another fleetd is the active controller")
			}
			return
		}
		s.leaseHeld, s.leaseInfo, s.err = true, "", ""
		log.Info().Msg("lease acquired: this fleetd is the active controller")
		c.emit(Event{Kind: EventLeaseAcquired})
		c.loadQueue(s)
		c.loadPause(s) // the previous holder may have paused
		if c.opts.OnAcquire != nil {
			pause, err := c.opts.OnAcquire(ctx)
			if err != nil {
				_ = c.lease.Release(ctx)
				s.leaseHeld, s.leaseInfo = false, "gave the lease back: "+err.Error()
				log.Warn().Err(err).Msg("not safe to act now: gave the lease back, trying again at the next turn")
				return
			}
			if pause != "" {
				if err := c.persistPause(true, pause); err != nil {
					log.Error().Err(err).Msg("cannot write the pause file; paused in memory only")
				}
				s.paused, s.pauseWhy = true, pause
				log.Error().Str("reason", pause).Msg("paused: no new disruptions until an operator resumes")
				c.emit(Event{Kind: EventPaused, Reason: pause})
			}
		}
	} else if held, err := c.lease.Held(ctx); err != nil || !held {
		s.leaseHeld = false
		if err != nil {
			s.leaseInfo = err.Error()
		}
		log.Warn().Err(err).Msg("lease lost: stopping disruptive work at the next step boundary")
		c.emit(Event{Kind: EventLeaseLost, Reason: cmp.Or(s.leaseInfo, "another fleetd holds it")})
		if s.cancelRun != nil {
			s.cancelRun()
		}
		return
	}
	if s.running != nil {
		return
	}
	// Paused means nothing starts, not even an in-flight record resuming:
	// the operator (or fleetd itself) stopped disruptions for a reason.
	if s.paused {
		return
	}
	// An in-flight record (ours after a crash, or a previous holder's) comes
	// before anything new.
	inflight, err := replace.InFlight(ctx, c.store)
	if err != nil {
		if msg := "cannot read replacement records: " + err.Error(); msg != s.err {
			s.err = msg
			log.Error().Err(err).Msg("cannot read replacement records; starting nothing")
		}
		return
	}
	s.err = ""
	if len(inflight) > 0 {
		rec := inflight[0]
		replace.Logger(log, rec).Info().Str("step", string(rec.Step)).Msg("resuming in-flight replacement")
		c.start(ctx, s, done, nil, rec)
		return
	}
	req, ok := s.queue.Next(c.opts.Now())
	if !ok {
		return
	}
	if by, err := c.servedBy(ctx, req); err != nil {
		log.Error().Err(err).Msg("cannot read replacement records; starting nothing")
		return
	} else if by != nil {
		s.queue.Remove(req.ID)
		req.ServedBy = by.ID
		s.done = append(s.done, DroppedRequest{Request: req, At: c.opts.Now(),
			Reason: fmt.Sprintf("done: broker %d was replaced by %s (finished %s)", req.Broker, by.ID, by.Finished.UTC().Format(time.RFC3339))})
		replace.Logger(log, by).Info().Str("request", req.ID).Msg("request done by a replacement that finished after it was made; nothing more to do")
		return
	}
	c.start(ctx, s, done, &req, nil)
}

// servedBy finds a completed replacement of req's broker that finished after
// req was made (for the same instance, where req names one): that
// replacement did what req asks, and retrying req could only be refused
// ("broker is gone") again and again.
func (c *Controller) servedBy(ctx context.Context, req Request) (*replace.Record, error) {
	recs, err := c.store.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.OldBroker == req.Broker && r.Phase == replace.PhaseCompleted && r.Finished.After(req.Received) &&
			(req.Instance == "" || req.Instance == r.OldInstance) {
			return r, nil
		}
	}
	return nil, nil
}

func (c *Controller) start(ctx context.Context, s *state, done chan result, req *Request, rec *replace.Record) {
	rctx, cancel := context.WithCancel(ctx)
	s.cancelRun, s.runReq = cancel, req
	if req != nil {
		s.queue.Remove(req.ID) // running, not queued; a refusal puts it back
	}
	if rec == nil {
		rr := replace.Request{Broker: req.Broker, Strategy: req.Strategy, Triggers: req.Triggers, Instance: req.Instance,
			Throttle: req.Throttle, Concurrency: req.Concurrency, Order: req.Order, Reason: req.Reason, Deadline: req.Deadline, RequestID: req.ID}
		var err error
		if req.Record != "" {
			// A retry after a refusal reopens the request's one record.
			if rec, err = c.store.Load(rctx, req.Record); err == nil {
				err = c.exec.Reopen(rctx, rec, rr)
			}
		} else {
			rec, err = c.exec.Begin(rctx, rr)
		}
		if err != nil {
			cancel()
			s.cancelRun, s.runReq = nil, nil
			s.queue.Add(*req)
			s.queue.Refused(req.Broker, "cannot record the replacement: "+err.Error(), c.opts.Now(), c.opts.RetryBase, c.opts.RetryMax)
			c.opts.Log.Error().Err(err).Msg("cannot record a new replacement")
			return
		}
	}
	s.running = rec
	go func() {
		err := c.exec.Run(rctx, rec)
		done <- result{req: req, rec: rec, err: err}
	}()
}

// finished takes a replacement's outcome back into the queue.
func (c *Controller) finished(s *state, res result) {
	s.cancelRun()
	s.running, s.runReq, s.cancelRun = nil, nil, nil
	log := replace.Logger(c.opts.Log, res.rec)
	if res.rec.Phase.Terminal() {
		c.settleAttached(s, res.rec)
	}
	if res.req == nil {
		log.Info().Str("phase", string(res.rec.Phase)).Msg("resumed replacement ended")
		return
	}
	now := c.opts.Now()
	switch {
	case res.rec.Phase == replace.PhaseRefused:
		if now.Sub(res.req.Received) >= c.opts.GiveUpAfter {
			s.dropped = append(s.dropped, DroppedRequest{Request: *res.req, Reason: "refused for " + now.Sub(res.req.Received).String() + ": " + res.rec.Error, At: now})
			log.Error().Str("reason", res.rec.Error).Msg("giving up on a request the gate kept refusing")
			return
		}
		res.req.Record = res.rec.ID
		s.queue.Add(*res.req) // merges with any request for the broker that came meanwhile
		s.queue.Refused(res.req.Broker, res.rec.Error, now, c.opts.RetryBase, c.opts.RetryMax)
		log.Warn().Str("reason", res.rec.Error).Msg("gate refused; the request waits and is retried")
		c.emit(Event{Kind: EventRefused, Request: res.req, Record: res.rec, Reason: res.rec.Error, Waited: now.Sub(res.req.Received)})
	case !res.rec.Phase.Terminal():
		// Interrupted (lease lost or shutting down): the record resumes later.
	default:
		log.Info().Str("phase", string(res.rec.Phase)).Msg("replacement ended")
	}
}

// settleAttached ends the requests attached to rec, which has ended: done
// when it completed, else dropped with its outcome (the broker was not
// replaced; asking again is the operator's call).
func (c *Controller) settleAttached(s *state, rec *replace.Record) {
	now := c.opts.Now()
	for _, r := range s.attached {
		if rec.Phase == replace.PhaseCompleted {
			s.done = append(s.done, DroppedRequest{Request: r, At: now, Reason: fmt.Sprintf("done: broker %d was replaced by %s, which was running when it was asked", r.Broker, rec.ID)})
			continue
		}
		s.dropped = append(s.dropped, DroppedRequest{Request: r, At: now, Reason: fmt.Sprintf("attached to %s, which ended %s: %s; ask again if the broker must still be replaced", rec.ID, rec.Phase, rec.Error)})
	}
	s.attached = nil
}
