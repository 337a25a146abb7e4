// Package notify tells people what fleetd does: it posts events (a request
// accepted or refused for long, a workflow started or ended, a pause, a
// lost lease) to generic JSON webhooks and Slack-compatible incoming
// webhooks, each receiver with its own filter.
//
// Delivery never blocks or fails a workflow: Notify only queues, each
// receiver has one worker that posts its events in order, retrying with
// backoff (go-retryablehttp) within a bound, and a full queue drops the
// event (counted). A receiver's URL usually is its secret: it is never
// logged, nor put in an error; a receiver is named by its name.
package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"
)

// Kind is what happened.
type Kind string

// The events, in the order of a request's life.
const (
	Accepted      Kind = "request-accepted"
	Refused       Kind = "request-refused"
	Started       Kind = "started"
	Completed     Kind = "completed"
	RolledBack    Kind = "rolled-back"
	Aborted       Kind = "aborted"
	Failed        Kind = "failed"
	Paused        Kind = "paused"
	Resumed       Kind = "resumed"
	LeaseLost     Kind = "lease-lost"
	LeaseAcquired Kind = "lease-acquired"
)

// Kinds lists every event a receiver's filter may name.
var Kinds = []Kind{Accepted, Refused, Started, Completed, RolledBack, Aborted, Failed, Paused, Resumed, LeaseLost, LeaseAcquired}

// Event is one thing to tell.
type Event struct {
	// ID is unique per event: a receiver that sees it twice (a retry after
	// a lost answer) can tell.
	ID      string    `json:"id"`
	Kind    Kind      `json:"event"`
	At      time.Time `json:"at"`
	Cluster string    `json:"cluster"`
	// Message is one sentence for people (Slack's text).
	Message     string       `json:"message"`
	Replacement *Replacement `json:"replacement,omitempty"`
	Request     *Request     `json:"request,omitempty"`
	// WaitedSeconds: how long a refused request has waited.
	WaitedSeconds int64 `json:"waited_seconds,omitempty"`
}

// Replacement is what an event says about a workflow.
type Replacement struct {
	ID          string   `json:"id"`
	Strategy    string   `json:"strategy,omitempty"`
	Triggers    []string `json:"triggers,omitempty"`
	OldNode     int32    `json:"old_node"`
	OldInstance string   `json:"old_instance,omitempty"`
	NewNode     int32    `json:"new_node,omitempty"`
	NewInstance string   `json:"new_instance,omitempty"`
	Phase       string   `json:"phase"`
	Outcome     string   `json:"outcome,omitempty"`
	Error       string   `json:"error,omitempty"`
	BytesMoved  int64    `json:"bytes_moved,omitempty"`
	// Canary: acknowledged, lost and duplicated canary records, when one ran.
	Canary *Canary `json:"canary,omitempty"`
}

// Canary is a workflow's canary verdict in brief.
type Canary struct {
	Verified   bool  `json:"verified"`
	Acked      int64 `json:"acked"`
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
}

// Request is what an event says about a request.
type Request struct {
	ID       string   `json:"id"`
	Node     int32    `json:"node"`
	Triggers []string `json:"triggers,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

// Stamped is ev with an id and a time, if it had none.
func (ev Event) Stamped() Event {
	if ev.ID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		ev.ID = hex.EncodeToString(b)
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	return ev
}

// Receiver is one destination.
type Receiver struct {
	// Name names it in logs and metrics (its URL never appears there).
	Name string
	// Slack posts {"text": message}; otherwise the whole Event as JSON.
	Slack bool
	URL   string
	// Events it wants; empty: all.
	Events []Kind
	// RefusedAfter: a request-refused event is sent once per request, when
	// it has waited this long.
	RefusedAfter time.Duration
}

// Options tune delivery (tests shorten them).
type Options struct {
	// Attempts per event (default 6: one and five retries).
	Attempts int
	// WaitMin and WaitMax bound the backoff between attempts (1 s, 30 s).
	WaitMin, WaitMax time.Duration
	// Timeout bounds one attempt (10 s): a receiver that hangs costs its
	// own queue this much, never a workflow.
	Timeout time.Duration
	// Queue is each receiver's queue length (100); beyond it events are dropped.
	Queue int
	// Outcome is told each event's fate at a receiver: delivered, failed
	// (every attempt failed) or dropped (queue full, or shutting down).
	Outcome func(receiver string, outcome string)
	Log     zerolog.Logger
}

// Outcomes are the values Options.Outcome is called with.
var Outcomes = []string{"delivered", "failed", "dropped"}

// Notifier delivers events to its receivers.
type Notifier struct {
	opts    Options
	workers []*worker
}

type worker struct {
	r      Receiver
	hc     *retryablehttp.Client
	queue  chan Event
	mu     sync.Mutex
	sentOn map[string]bool // request ids already told refused
}

// New returns a notifier for rs; call Run to deliver.
func New(rs []Receiver, o Options) *Notifier {
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.WaitMin <= 0 {
		o.WaitMin = time.Second
	}
	if o.WaitMax <= 0 {
		o.WaitMax = 30 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Queue <= 0 {
		o.Queue = 100
	}
	n := &Notifier{opts: o}
	for _, r := range rs {
		hc := retryablehttp.NewClient()
		hc.RetryMax = o.Attempts - 1
		hc.RetryWaitMin, hc.RetryWaitMax = o.WaitMin, o.WaitMax
		hc.HTTPClient.Timeout = o.Timeout
		hc.Logger = nil // it would log the URL
		hc.ErrorHandler = retryablehttp.PassthroughErrorHandler
		n.workers = append(n.workers, &worker{r: r, hc: hc, queue: make(chan Event, o.Queue), sentOn: map[string]bool{}})
	}
	return n
}

// Receivers names the receivers (for metrics at start-up).
func (n *Notifier) Receivers() []string {
	var out []string
	for _, w := range n.workers {
		out = append(out, w.r.Name)
	}
	return out
}

// Notify queues ev for every receiver that wants it, and returns at once.
func (n *Notifier) Notify(ev Event) {
	if n == nil {
		return
	}
	ev = ev.Stamped()
	for _, w := range n.workers {
		if !w.wants(ev) {
			continue
		}
		select {
		case w.queue <- ev:
		default:
			n.outcome(w.r.Name, "dropped")
			n.opts.Log.Warn().Str("receiver", w.r.Name).Str("event", string(ev.Kind)).Msg("notification dropped: the receiver's queue is full (it is down or slow)")
		}
	}
}

// wants applies the receiver's filter; a refused request is told once.
func (w *worker) wants(ev Event) bool {
	if len(w.r.Events) > 0 && !slices.Contains(w.r.Events, ev.Kind) {
		return false
	}
	if ev.Kind != Refused {
		return true
	}
	if time.Duration(ev.WaitedSeconds)*time.Second < w.r.RefusedAfter || ev.Request == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sentOn[ev.Request.ID] {
		return false
	}
	if len(w.sentOn) > 1000 { // bounded: requests are few; forgetting re-sends once
		clear(w.sentOn)
	}
	w.sentOn[ev.Request.ID] = true
	return true
}

// drainFor bounds delivery of what is queued once Run's context ends.
const drainFor = 5 * time.Second

// Run delivers until ctx ends, then for at most drainFor what is queued;
// the rest is dropped (counted).
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, w := range n.workers {
		wg.Go(func() { n.work(ctx, w) })
	}
	wg.Wait()
}

func (n *Notifier) work(ctx context.Context, w *worker) {
	for {
		select {
		case ev := <-w.queue:
			n.deliver(ctx, w, ev)
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainFor)
			defer cancel()
			for {
				select {
				case ev := <-w.queue:
					if dctx.Err() != nil {
						n.outcome(w.r.Name, "dropped")
						continue
					}
					n.deliver(dctx, w, ev)
				default:
					return
				}
			}
		}
	}
}

func (n *Notifier) deliver(ctx context.Context, w *worker, ev Event) {
	log := n.opts.Log.With().Str("receiver", w.r.Name).Str("event", string(ev.Kind)).Str("event_id", ev.ID).Logger()
	body, err := payload(w.r, ev)
	if err != nil {
		n.outcome(w.r.Name, "failed")
		log.Error().Err(err).Msg("notification not sent: cannot encode it")
		return
	}
	// Every attempt's bound plus the backoff between them.
	dctx, cancel := context.WithTimeout(ctx, time.Duration(n.opts.Attempts)*(n.opts.Timeout+n.opts.WaitMax))
	defer cancel()
	req, err := retryablehttp.NewRequestWithContext(dctx, http.MethodPost, w.r.URL, body)
	if err != nil {
		n.outcome(w.r.Name, "failed")
		log.Error().Err(redact(err)).Msg("notification not sent: bad receiver URL")
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fleetd")
	resp, err := w.hc.Do(req)
	if resp != nil {
		resp.Body.Close()
	}
	switch {
	case err != nil:
		n.outcome(w.r.Name, "failed")
		log.Warn().Err(redact(err)).Msg("notification not delivered after retries")
	case resp.StatusCode >= 300:
		n.outcome(w.r.Name, "failed")
		log.Warn().Int("status", resp.StatusCode).Msg("notification refused by the receiver")
	default:
		n.outcome(w.r.Name, "delivered")
		log.Debug().Int("status", resp.StatusCode).Msg("notification delivered")
	}
}

func (n *Notifier) outcome(receiver, outcome string) {
	if n.opts.Outcome != nil {
		n.opts.Outcome(receiver, outcome)
	}
}

func payload(r Receiver, ev Event) ([]byte, error) {
	if r.Slack {
		return json.Marshal(struct {
			Text string `json:"text"`
		}{fmt.Sprintf("[fleetd %s] %s", ev.Cluster, ev.Message)})
	}
	return json.Marshal(ev)
}

// redact drops the URL from an HTTP client's error: it may hold the
// receiver's secret.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return errors.New("request failed (details withheld: they may contain the receiver's URL)")
}
