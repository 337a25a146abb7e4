package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// receiver is a local webhook endpoint that records what it is sent.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	calls  int
	// answer decides each call's status (nil: 200).
	answer func(call int, body []byte) int
	srv    *httptest.Server
}

func newReceiver(t *testing.T, answer func(call int, body []byte) int) *receiver {
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.calls++
		call := r.calls
		r.mu.Unlock()
		status := http.StatusOK
		if r.answer != nil {
			status = r.answer(call, body)
		}
		if status == http.StatusOK {
			r.mu.Lock()
			r.bodies = append(r.bodies, body)
			r.mu.Unlock()
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) events(t *testing.T) []Event {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, b := range r.bodies {
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("receiver got %s: %v", b, err)
		}
		out = append(out, ev)
	}
	return out
}

// counts collects Options.Outcome's calls.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) add(receiver, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[receiver+"/"+outcome]++
}

func (c *counts) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func fast(c *counts, log zerolog.Logger) Options {
	return Options{WaitMin: time.Millisecond, WaitMax: 5 * time.Millisecond, Timeout: 2 * time.Second, Outcome: c.add, Log: log}
}

// start runs n until the test ends.
func start(t *testing.T, n *Notifier) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func workflow(kinds ...Kind) []Event {
	var out []Event
	for _, k := range kinds {
		out = append(out, Event{Kind: k, Cluster: "c1", Message: string(k), Replacement: &Replacement{ID: "r-1", OldNode: 2, Phase: "running"}})
	}
	return out
}

// A receiver gets every event in order, each with its replacement's id; a
// receiver that answers 500 to every first attempt gets each event
// delivered once (the retry), in order too.
func TestEventsArriveInOrderAndRetriesDeliverOnce(t *testing.T) {
	var c counts
	ok := newReceiver(t, nil)
	flaky := newReceiver(t, func(call int, _ []byte) int {
		if call%2 == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	n := New([]Receiver{{Name: "ok", URL: ok.srv.URL}, {Name: "flaky", URL: flaky.srv.URL}}, fast(&c, zerolog.Nop()))
	start(t, n)
	evs := workflow(Accepted, Started, Completed)
	for _, ev := range evs {
		n.Notify(ev)
	}
	waitFor(t, "both receivers to get 3 events", func() bool { return c.get("ok/delivered") == 3 && c.get("flaky/delivered") == 3 })
	for name, r := range map[string]*receiver{"ok": ok, "flaky": flaky} {
		got := r.events(t)
		if len(got) != 3 {
			t.Fatalf("%s: %d events delivered, want 3 (each once)", name, len(got))
		}
		ids := map[string]bool{}
		for i, ev := range got {
			if ev.Kind != evs[i].Kind || ev.Replacement == nil || ev.Replacement.ID != "r-1" || ev.ID == "" || ids[ev.ID] {
				t.Errorf("%s: event %d = %+v, want %s of r-1 with a fresh id", name, i, ev, evs[i].Kind)
			}
			ids[ev.ID] = true
		}
	}
	if flaky.calls != 6 {
		t.Errorf("flaky receiver called %d times, want 6 (each event: a 500, then a 200)", flaky.calls)
	}
	if c.get("flaky/failed") != 0 {
		t.Errorf("failed deliveries %d, want 0", c.get("flaky/failed"))
	}
}

// A receiver that hangs holds up only its own queue: Notify returns at once
// and another receiver gets every event while the hung one still waits.
func TestAHangingReceiverSlowsNothingElse(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	var c counts
	ok := newReceiver(t, nil)
	o := fast(&c, zerolog.Nop())
	o.Timeout = time.Hour // the hang outlasts the test
	n := New([]Receiver{{Name: "hung", URL: hung.URL}, {Name: "ok", URL: ok.srv.URL}}, o)
	start(t, n)
	for _, ev := range workflow(Started, Completed, Paused) {
		n.Notify(ev) // would block here if delivery were synchronous
	}
	waitFor(t, "the healthy receiver's 3 events", func() bool { return c.get("ok/delivered") == 3 })
	if got := c.get("hung/delivered") + c.get("hung/failed"); got != 0 {
		t.Fatalf("the hung receiver has %d outcomes, want 0 (still hanging)", got)
	}
}

// A full queue drops (and counts) rather than blocks.
func TestAFullQueueDrops(t *testing.T) {
	var c counts
	o := fast(&c, zerolog.Nop())
	o.Queue = 2
	n := New([]Receiver{{Name: "r", URL: "http://127.0.0.1:1/never-run"}}, o) // Run is never called: nothing drains
	for range 5 {
		n.Notify(Event{Kind: Started})
	}
	if got := c.get("r/dropped"); got != 3 {
		t.Fatalf("dropped %d, want 3 (queue of 2, 5 events)", got)
	}
}

// Filters: only the kinds asked for; a refused request once, and only
// after it has waited RefusedAfter.
func TestFilters(t *testing.T) {
	var c counts
	r := newReceiver(t, nil)
	n := New([]Receiver{{Name: "r", URL: r.srv.URL, Events: []Kind{Refused, Failed}, RefusedAfter: time.Hour}}, fast(&c, zerolog.Nop()))
	start(t, n)
	req := &Request{ID: "q-1", Node: 3}
	n.Notify(Event{Kind: Started})
	n.Notify(Event{Kind: Refused, Request: req, WaitedSeconds: 60})
	n.Notify(Event{Kind: Refused, Request: req, WaitedSeconds: 3600})
	n.Notify(Event{Kind: Refused, Request: req, WaitedSeconds: 7200})
	n.Notify(Event{Kind: Failed, Replacement: &Replacement{ID: "r-9"}})
	waitFor(t, "2 deliveries", func() bool { return c.get("r/delivered") == 2 })
	got := r.events(t)
	if len(got) != 2 || got[0].Kind != Refused || got[0].WaitedSeconds != 3600 || got[1].Kind != Failed {
		t.Fatalf("got %+v, want the refusal at 1 h once, then the failure", got)
	}
}

// lockedBuffer is a log sink that workers write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Slack receivers get {"text": …}; a receiver's URL (its secret) never
// reaches a log line, even when every attempt fails.
func TestSlackPayloadAndNoSecretInLogs(t *testing.T) {
	var c counts
	var logs lockedBuffer
	log := zerolog.New(&logs)
	slack := newReceiver(t, nil)
	const secret = "T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
	down := newReceiver(t, func(int, []byte) int { return http.StatusBadGateway })
	o := fast(&c, log)
	o.Attempts = 2
	n := New([]Receiver{{Name: "slack", Slack: true, URL: slack.srv.URL + "/services/" + secret}, {Name: "down", URL: down.srv.URL + "/services/" + secret}}, o)
	start(t, n)
	n.Notify(Event{Kind: Completed, Cluster: "prod", Message: "broker 2 replaced by broker 4"})
	n.Notify(Event{Kind: Completed, Cluster: "prod", Message: "again"})
	// The dead port's connection errors carry URLs in Go's own errors.
	n2 := New([]Receiver{{Name: "gone", URL: "http://127.0.0.1:1/services/" + secret}}, o)
	start(t, n2)
	n2.Notify(Event{Kind: Failed})
	waitFor(t, "every outcome", func() bool {
		return c.get("slack/delivered") == 2 && c.get("down/failed") == 2 && c.get("gone/failed") == 1
	})
	slack.mu.Lock()
	body := string(slack.bodies[0])
	slack.mu.Unlock()
	if body != `{"text":"[fleetd prod] broker 2 replaced by broker 4"}` {
		t.Errorf("slack body %s", body)
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "/services/") {
		t.Fatalf("a log line holds the receiver's URL:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"receiver":"gone"`) || !strings.Contains(logs.String(), `"status":502`) {
		t.Fatalf("the failures are not logged by receiver name and status:\n%s", logs.String())
	}
}
