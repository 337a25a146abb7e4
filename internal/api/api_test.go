package api

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/who"
)

// fakeBackend records what the API asked of it.
type fakeBackend struct {
	mu       sync.Mutex
	requests []ReplaceRequest
	paused   bool
	running  bool
	aborted  string
	notReady error
	pausedBy string
}

func (f *fakeBackend) Status(context.Context) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Status{Cluster: "test", Active: true, Controller: controller.Status{Paused: f.paused, LeaseHeld: true}}, nil
}

func (f *fakeBackend) History(_ context.Context, limit int) ([]*replace.Record, error) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	r := &replace.Record{ID: "r-1", Triggers: []replace.Trigger{replace.TriggerChaos}, Phase: replace.PhaseCompleted, Steps: []replace.StepTiming{
		{Step: replace.StepGate, Started: t0, Ended: t0.Add(1500 * time.Millisecond)},
		{Step: replace.StepMove, Started: t0.Add(2 * time.Second), Ended: t0.Add(62 * time.Second)},
	}}
	return []*replace.Record{r}[:min(limit, 1)], nil
}

func (f *fakeBackend) Replacement(_ context.Context, id string) (*replace.Record, error) {
	if id != "r-1" {
		return nil, Errorf(http.StatusNotFound, "no replacement "+id)
	}
	return &replace.Record{ID: id}, nil
}

func (f *fakeBackend) Request(_ context.Context, req ReplaceRequest) (ReplaceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if req.DryRun {
		return ReplaceResponse{Preview: &replace.Record{OldBroker: *req.Broker, Phase: replace.PhaseRunning}}, nil
	}
	return ReplaceResponse{Queued: &controller.Request{ID: "q-1", Broker: *req.Broker, Triggers: []replace.Trigger{replace.TriggerOperator}}}, nil
}

func (f *fakeBackend) Abort(_ context.Context, reason string) (AbortResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running {
		return AbortResponse{}, nil
	}
	f.aborted = reason
	return AbortResponse{Aborted: true, Replacement: "r-2"}, nil
}

func (f *fakeBackend) SetPaused(ctx context.Context, p bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused, f.pausedBy = p, who.From(ctx)
	return nil
}

func (f *fakeBackend) Ready(context.Context) error { return f.notReady }

func (f *fakeBackend) Cancel(_ context.Context, id, reason string) (controller.Request, error) {
	if id != "q-1" {
		return controller.Request{}, Errorf(http.StatusNotFound, "no queued request "+id)
	}
	return controller.Request{ID: id, Reason: reason}, nil
}

func (f *fakeBackend) SetThrottle(_ context.Context, t replace.Throttle) (replace.ThrottleResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.running {
		return replace.ThrottleResult{}, Errorf(http.StatusConflict, "no replacement is running")
	}
	return replace.ThrottleResult{Replacement: "r-2", Throttle: t, Applied: 2}, nil
}

func serve(t *testing.T, token string) (*fakeBackend, *httptest.Server) {
	t.Helper()
	b := &fakeBackend{}
	srv := httptest.NewServer((&Server{Backend: b, Token: token, Log: zerolog.Nop(), Metrics: http.NotFoundHandler()}).Handler())
	t.Cleanup(srv.Close)
	return b, srv
}

func client(t *testing.T, url, token string) *Client {
	t.Helper()
	c, err := NewClient(url, token, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientRoundTrips(t *testing.T) {
	ctx := context.Background()
	b, srv := serve(t, "s3cret")
	c := client(t, srv.URL, "s3cret")

	broker := int32(2)
	resp, err := c.Replace(ctx, ReplaceRequest{Broker: &broker, Strategy: "move"})
	if err != nil || resp.Queued == nil || resp.Queued.Broker != 2 {
		t.Fatalf("replace: %+v %v", resp, err)
	}
	resp, err = c.Replace(ctx, ReplaceRequest{Broker: &broker, DryRun: true})
	if err != nil || resp.Preview == nil || resp.Queued != nil {
		t.Fatalf("dry run: %+v %v", resp, err)
	}
	if p, err := c.SetPaused(ctx, true); err != nil || !p.Paused || !b.paused {
		t.Fatalf("pause: %+v %v backend %v", p, err, b.paused)
	}
	if st, err := c.Status(ctx); err != nil || !st.Controller.Paused {
		t.Fatalf("status: %+v %v", st, err)
	}
	if p, err := c.SetPaused(ctx, false); err != nil || p.Paused || b.paused {
		t.Fatalf("resume: %+v %v", p, err)
	}
	h, err := c.History(ctx, 5)
	if err != nil || len(h) != 1 || len(h[0].Timeline) != 2 || h[0].Timeline[0].Seconds != 1.5 || h[0].Timeline[1].Seconds != 60 || h[0].TotalSeconds != 61.5 || h[0].ID != "r-1" {
		t.Fatalf("history: %+v %v", h, err)
	}
	if _, err := c.Replacement(ctx, "r-9"); !IsStatus(err, http.StatusNotFound) || !strings.Contains(err.Error(), "no replacement r-9") {
		t.Fatalf("unknown replacement: %v", err)
	}

	if _, err := c.Abort(ctx, "bad idea"); !IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "nothing to abort") {
		t.Fatalf("abort with nothing running: %v", err)
	}
	b.mu.Lock()
	b.running = true
	b.mu.Unlock()
	if a, err := c.Abort(ctx, "bad idea"); err != nil || !a.Aborted || b.aborted != "bad idea" {
		t.Fatalf("abort: %+v %v (backend saw %q)", a, err, b.aborted)
	}
}

func TestTokenIsRequiredAndChecked(t *testing.T) {
	ctx := context.Background()
	_, srv := serve(t, "s3cret")
	for _, tok := range []string{"", "wrong"} {
		_, err := client(t, srv.URL, tok).Status(ctx)
		if !IsStatus(err, http.StatusUnauthorized) || !strings.Contains(err.Error(), "bearer token") {
			t.Errorf("token %q: %v, want 401 naming the bearer token", tok, err)
		}
	}
	// Probes stay open for the supervisor and the load balancer.
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("%s without a token: %v %v", p, resp, err)
		}
		resp.Body.Close()
	}
}

func TestBadRequestsAreRefusedWithAReason(t *testing.T) {
	b, srv := serve(t, "")
	for _, tt := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/v1/replacements", `{}`, 400, `\"broker\" is required`},
		{"POST", "/v1/replacements", `{"broker": -1}`, 400, "not negative"},
		{"POST", "/v1/replacements", `{"broker": 1, "strategy": "yolo"}`, 400, `strategy \"yolo\"`},
		{"POST", "/v1/replacements", `{"broker": 1, "force": true}`, 400, `unknown field \"force\"`},
		{"POST", "/v1/replacements", `{"broker": "one"}`, 400, "bad request body"},
		{"POST", "/v1/replacements", strings.Repeat(" ", maxBody+1) + `{"broker": 1}`, 400, "too large"},
		{"POST", "/v1/replacements", `{"broker": 1} {"broker": 2}`, 400, "data after the JSON value"},
		{"POST", "/v1/replacements", `{"broker": 1}garbage`, 400, "bad request body"},
		{"GET", "/v1/replacements/..%2F..%2F..%2Foutside", ``, 400, "not a replacement id"},
		{"GET", "/v1/replacements/r-1%00x", ``, 400, "not a replacement id"},
		{"GET", "/v1/history?limit=0", ``, 400, "limit"},
		{"GET", "/v1/nope", ``, 404, "no such endpoint"},
		{"DELETE", "/v1/status", ``, 404, "no such endpoint: DELETE /v1/status"},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var buf strings.Builder
		_, _ = readBody(&buf, resp)
		if resp.StatusCode != tt.code || !strings.Contains(buf.String(), tt.want) {
			t.Errorf("%s %s %.40q: %d %s, want %d containing %q", tt.method, tt.path, tt.body, resp.StatusCode, buf.String(), tt.code, tt.want)
		}
	}
	if len(b.requests) != 0 {
		t.Errorf("bad requests reached the backend: %+v", b.requests)
	}
}

func TestReadyzReportsWhyNot(t *testing.T) {
	b, srv := serve(t, "")
	b.notReady = Errorf(503, "controller loop not started")
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	_, _ = readBody(&buf, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(buf.String(), "controller loop not started") {
		t.Fatalf("readyz: %d %s", resp.StatusCode, buf.String())
	}
}

func TestServeRefusesANonLoopbackListenerWithoutAToken(t *testing.T) {
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip("cannot listen on all interfaces here:", err)
	}
	defer l.Close()
	err = (&Server{Backend: &fakeBackend{}}).Serve(context.Background(), l)
	if err == nil || !strings.Contains(err.Error(), "without a token") {
		t.Fatalf("Serve on %s without a token: %v", l.Addr(), err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:7080": true, "[::1]:7080": true, "localhost:1": true, "0.0.0.0:7080": false, "10.0.0.5:7080": false, ":7080": false} {
		if Loopback(addr) != want {
			t.Errorf("Loopback(%q) = %v", addr, !want)
		}
	}
}

func TestClientRejectsABadURL(t *testing.T) {
	if _, err := NewClient("127.0.0.1:7080", "", time.Second); err == nil || !strings.Contains(err.Error(), "http://") {
		t.Fatalf("NewClient without a scheme: %v", err)
	}
}

func readBody(b *strings.Builder, resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(b, resp.Body)
}

// The request carries every option to the backend; cancel and throttle
// reach it by their routes; a bad option is a 400 naming it.
func TestRequestOptionsCancelAndThrottle(t *testing.T) {
	ctx := context.Background()
	b, srv := serve(t, "")
	c := client(t, srv.URL, "")
	broker := int32(2)
	want := ReplaceRequest{Broker: &broker, Strategy: "identity", Throttle: replace.Rate(20 << 20), Concurrency: 3, Order: replace.ByName, Reason: "disk errors"}
	if _, err := c.Replace(ctx, want); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	got := b.requests[len(b.requests)-1]
	b.mu.Unlock()
	if got.Strategy != want.Strategy || got.Throttle != want.Throttle || got.Concurrency != 3 || got.Order != replace.ByName || got.Reason != "disk errors" {
		t.Fatalf("backend got %+v, want %+v", got, want)
	}
	for _, bad := range []ReplaceRequest{{Broker: &broker, Order: "random"}, {Broker: &broker, Concurrency: -1}} {
		if _, err := c.Replace(ctx, bad); !IsStatus(err, http.StatusBadRequest) {
			t.Errorf("%+v: %v, want 400", bad, err)
		}
	}
	if r, err := c.Cancel(ctx, "q-1", "wrong broker"); err != nil || r.Cancelled.ID != "q-1" || r.Cancelled.Reason != "wrong broker" {
		t.Fatalf("cancel: %+v %v", r, err)
	}
	if _, err := c.Cancel(ctx, "q-2", ""); !IsStatus(err, http.StatusNotFound) {
		t.Fatalf("cancel of an unknown request: %v", err)
	}
	if _, err := c.SetThrottle(ctx, replace.Rate(1<<20)); !IsStatus(err, http.StatusConflict) {
		t.Fatalf("throttle with nothing running: %v", err)
	}
	b.mu.Lock()
	b.running = true
	b.mu.Unlock()
	if r, err := c.SetThrottle(ctx, replace.NoThrottle()); err != nil || !r.Throttle.IsNone() || r.Applied != 2 {
		t.Fatalf("throttle: %+v %v", r, err)
	}
	if _, err := c.SetThrottle(ctx, replace.Throttle{}); !IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("throttle without a value: %v", err)
	}
}

// Reads log at debug (a page polls them), changes at info, failures at
// warn; durations carry their unit in the key.
func TestAccessLogLevels(t *testing.T) {
	var logs strings.Builder
	b := &fakeBackend{}
	srv := httptest.NewServer((&Server{Backend: b, Log: zerolog.New(&logs), Metrics: http.NotFoundHandler()}).Handler())
	defer srv.Close()
	c := client(t, srv.URL, "")
	c.Actor = "alice@bastion <!channel>"
	ctx := context.Background()
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetPaused(ctx, true); err != nil {
		t.Fatal(err)
	}
	// Who paused reaches the backend and the log: the declared name made
	// safe, and the address it came from.
	if want := "alice@bastion ?!channel? (from 127.0.0.1:"; !strings.HasPrefix(b.pausedBy, want) || !strings.Contains(logs.String(), `"by":"`+want) {
		t.Errorf("paused by %q, want it to start %q, in the log too:\n%s", b.pausedBy, want, logs.String())
	}
	if _, err := c.Replacement(ctx, "no-such"); err == nil {
		t.Fatal("want an error for an unknown replacement")
	}
	var levels []string
	for line := range strings.Lines(logs.String()) {
		var l struct {
			Level, Method, Path string
			Took                *float64 `json:"took_seconds"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if l.Took == nil {
			t.Errorf("line %s has no took_seconds", line)
		}
		levels = append(levels, l.Level+" "+l.Method)
	}
	if got := strings.Join(levels, ", "); got != "debug GET, info POST, warn GET" {
		t.Errorf("access log levels %q, want debug for a read, info for a change, warn for a failure", got)
	}
}

// The event stream delivers what is published, in order, to a client
// that opened it, through the server's write timeout and access log.
func TestEventStream(t *testing.T) {
	hub := NewHub()
	srv := httptest.NewServer((&Server{Backend: &fakeBackend{}, Token: "tok-0123456789abcdef", Log: zerolog.Nop(), Metrics: http.NotFoundHandler(), Events: hub}).Handler())
	defer srv.Close()
	c := client(t, srv.URL, "tok-0123456789abcdef")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	opened := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.Events(ctx, func() { close(opened) }, func(ev StreamEvent) bool {
			got = append(got, ev.Type+" "+string(ev.Data))
			return len(got) < 3
		})
	}()
	<-opened
	// The subscription is made before the first byte is sent.
	hub.Publish(TypeProgress, map[string]int{"bytes_copied": 1})
	hub.Publish(TypeStep, StepEvent{ID: "r-1", Done: "move", Next: "reorder", Phase: "running"})
	hub.Publish(TypeEnd, map[string]string{"id": "r-1", "phase": "completed"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{`progress {"bytes_copied":1}`, `step {"id":"r-1","done":"move","next":"reorder","phase":"running"}`, `end {"id":"r-1","phase":"completed"}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	bad := client(t, srv.URL, "wrong-token-0123456789")
	if err := bad.Events(ctx, nil, func(StreamEvent) bool { return true }); !IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("stream with a wrong token: %v, want 401", err)
	}
}

// A subscriber that falls behind loses progress (superseded by the next)
// but is cut off rather than silently lose a step, an end or a
// notification: its client learns it missed something.
func TestALaggingSubscriberIsCutOffNotSilentlyShortChanged(t *testing.T) {
	hub := NewHub()
	ch, stop := hub.Subscribe()
	defer stop()
	for i := range subscriberBuffer + 10 {
		hub.Publish(TypeProgress, i)
	}
	if len(ch) != subscriberBuffer {
		t.Fatalf("%d buffered, want %d", len(ch), subscriberBuffer)
	}
	hub.Publish(TypeEnd, "r-1") // no room: cut off
	n := 0
	for range ch {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("read %d events before the channel closed, want the %d buffered", n, subscriberBuffer)
	}
	stop() // after the hub closed it: no double close
	hub.Publish(TypeEnd, "r-2")

	// A subscriber that keeps up gets everything.
	ok, stopOK := hub.Subscribe()
	defer stopOK()
	hub.Publish(TypeStep, "s")
	hub.Publish(TypeEnd, "e")
	if a, b := <-ok, <-ok; a.Type != TypeStep || b.Type != TypeEnd {
		t.Errorf("got %s, %s", a.Type, b.Type)
	}
}
