// Package controller is the one goroutine that owns fleetd's work: the queue
// of replacement requests, the lease, the pause switch and the schedules. It
// knows nothing of Kafka or EC2: it asks health and replace.
//
// This file is the queue: pure, with time as an input.
package controller

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fleetd/fleetd/internal/replace"
)

// Request asks for one broker to be replaced.
type Request struct {
	ID       string           `json:"id"`
	Broker   int32            `json:"broker"`
	Strategy replace.Strategy `json:"strategy,omitempty"`
	// Triggers lists every source that asked (operator, chaos, retirement,
	// instance-lost, ami-drift): a deduplicated request keeps them all.
	Triggers []replace.Trigger `json:"triggers"`
	Received time.Time         `json:"received"`
	// Throttle, Concurrency and Order, when set, are the replacement's own
	// (else fleetd's configured ones); Reason is the operator's free text.
	Throttle    replace.Throttle `json:"throttle,omitzero"`
	Concurrency int              `json:"concurrency,omitempty"`
	Order       replace.Order    `json:"order,omitempty"`
	Reason      string           `json:"reason,omitempty"`
	// Deadline, if set, is when the replacement must be finished (an EC2
	// event's not-before time).
	Deadline time.Time `json:"deadline,omitzero"`
	// Emergency: the broker is already lost; it goes first.
	Emergency bool `json:"emergency,omitempty"`
	// Instance is the broker's instance when the trigger named it.
	Instance string `json:"instance,omitempty"`

	Attempts    int       `json:"attempts"`
	LastRefusal string    `json:"last_refusal,omitempty"`
	NotBefore   time.Time `json:"not_before,omitzero"`
	// Record is the request's replacement record once the gate has refused
	// it: every retry reopens that one record, never writes another.
	Record string `json:"record,omitempty"`
	// ServedBy, in the answer to a submission, names the replacement that
	// already does (or did) what was asked: nothing was queued.
	ServedBy string `json:"served_by,omitempty"`
}

// Queue holds pending requests, at most one per broker. Not safe for
// concurrent use: the controller goroutine owns it.
type Queue struct {
	items []Request
}

// Add queues r, or merges it into the request already queued for the same
// broker (nothing is dropped: triggers are kept, the earlier deadline and an
// emergency win). It reports whether r was new.
func (q *Queue) Add(r Request) bool {
	for i := range q.items {
		cur := &q.items[i]
		if cur.Broker != r.Broker {
			continue
		}
		for _, t := range r.Triggers {
			if !slices.Contains(cur.Triggers, t) {
				cur.Triggers = append(cur.Triggers, t)
			}
		}
		if !r.Deadline.IsZero() && (cur.Deadline.IsZero() || r.Deadline.Before(cur.Deadline)) {
			cur.Deadline = r.Deadline
		}
		if r.Emergency {
			cur.Emergency = true
			cur.Strategy = replace.StrategyIdentity
			cur.NotBefore = time.Time{}
		}
		if cur.Strategy == "" {
			cur.Strategy = r.Strategy
		}
		if cur.Instance == "" {
			cur.Instance = r.Instance
		}
		if cur.Record == "" {
			cur.Record = r.Record
		}
		cur.Throttle = cur.Throttle.Or(r.Throttle)
		cur.Concurrency = cmp.Or(cur.Concurrency, r.Concurrency)
		cur.Order = cmp.Or(cur.Order, r.Order)
		if r.Reason != "" && !strings.Contains(cur.Reason, r.Reason) {
			cur.Reason = strings.TrimPrefix(cur.Reason+"; "+r.Reason, "; ")
		}
		return false
	}
	q.items = append(q.items, r)
	return true
}

// Queued returns the request queued for broker, if any.
func (q *Queue) Queued(broker int32) (Request, bool) {
	for _, r := range q.items {
		if r.Broker == broker {
			return r, true
		}
	}
	return Request{}, false
}

// Conflict says why r cannot be merged into cur, the request queued for the
// same broker: both set an option, to different values. nil: it merges.
func Conflict(cur, r Request) error {
	var diffs []string
	if cur.Throttle.IsSet() && r.Throttle.IsSet() && cur.Throttle != r.Throttle {
		diffs = append(diffs, fmt.Sprintf("throttle %s, not %s", cur.Throttle, r.Throttle))
	}
	if cur.Concurrency != 0 && r.Concurrency != 0 && cur.Concurrency != r.Concurrency {
		diffs = append(diffs, fmt.Sprintf("concurrency %d, not %d", cur.Concurrency, r.Concurrency))
	}
	if cur.Order != "" && r.Order != "" && cur.Order != r.Order {
		diffs = append(diffs, fmt.Sprintf("order %s, not %s", cur.Order, r.Order))
	}
	if cur.Strategy != "" && r.Strategy != "" && cur.Strategy != r.Strategy && !r.Emergency && !cur.Emergency {
		diffs = append(diffs, fmt.Sprintf("strategy %s, not %s", cur.Strategy, r.Strategy))
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("broker %d is already queued as %s with %s: cancel it first (fleetd cancel %s) or ask without those options", cur.Broker, cur.ID, strings.Join(diffs, ", "), cur.ID)
}

// Next returns the request to try at now: emergencies first, then the
// earliest deadline, then the oldest; skipping those waiting after a refusal.
func (q *Queue) Next(now time.Time) (Request, bool) {
	ready := make([]Request, 0, len(q.items))
	for _, r := range q.items {
		if !r.NotBefore.After(now) {
			ready = append(ready, r)
		}
	}
	if len(ready) == 0 {
		return Request{}, false
	}
	sort.SliceStable(ready, func(i, j int) bool {
		a, b := ready[i], ready[j]
		if a.Emergency != b.Emergency {
			return a.Emergency
		}
		if !a.Deadline.Equal(b.Deadline) {
			if a.Deadline.IsZero() || b.Deadline.IsZero() {
				return !a.Deadline.IsZero()
			}
			return a.Deadline.Before(b.Deadline)
		}
		return a.Received.Before(b.Received)
	})
	return ready[0], true
}

// Refused records that the gate refused the request for broker at now, and
// makes it wait with a backoff doubling from base up to maxWait.
func (q *Queue) Refused(broker int32, reason string, now time.Time, base, maxWait time.Duration) {
	for i := range q.items {
		if q.items[i].Broker != broker {
			continue
		}
		r := &q.items[i]
		r.Attempts++
		r.LastRefusal = reason
		wait := base
		for n := 1; n < r.Attempts && wait < maxWait; n++ {
			wait *= 2
		}
		r.NotBefore = now.Add(min(wait, maxWait))
	}
}

// Remove takes request id off the queue (started, cancelled or given up)
// and returns it.
func (q *Queue) Remove(id string) (Request, bool) {
	i := slices.IndexFunc(q.items, func(r Request) bool { return r.ID == id })
	if i < 0 {
		return Request{}, false
	}
	r := q.items[i]
	q.items = slices.Delete(q.items, i, i+1)
	return r, true
}

// List returns the queue in the order it would be served, ignoring waits.
func (q *Queue) List() []Request {
	out := slices.Clone(q.items)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Emergency && !out[j].Emergency })
	return out
}

// Len is the number of queued requests.
func (q *Queue) Len() int { return len(q.items) }

// String is a one-line summary for logs.
func (r Request) String() string {
	return "broker " + strconv.Itoa(int(r.Broker)) + " (" + replace.JoinTriggers(r.Triggers) + ")"
}
