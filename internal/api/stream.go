package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// GET /v1/events streams what the daemon does as server-sent events
// (text/event-stream): `fleetd watch`, `--follow` and the status page read
// it. The protocol is a few lines of text, written here by hand:
//
//	event: progress
//	data: {"id":"r-…","step":"move","bytes_copied":…}
//
// Types: progress (replace.Progress, at most one a second), step (a step
// ended: StepEvent), end (a workflow ended, or was refused: its record),
// event (a notification, notify.Event). A comment line every
// streamHeartbeat keeps proxies from closing an idle stream. A stream that
// falls too far behind is closed (see Hub).

// Stream event types.
const (
	TypeProgress = "progress"
	TypeStep     = "step"
	TypeEnd      = "end"
	TypeEvent    = "event"
)

// StreamEvent is one server-sent event.
type StreamEvent struct {
	Type string
	Data json.RawMessage
}

// StepEvent says a workflow's step ended.
type StepEvent struct {
	ID        string `json:"id"`
	RequestID string `json:"request_id,omitempty"`
	Done      string `json:"done"`
	Next      string `json:"next"`
	Phase     string `json:"phase"`
}

// Hub fans events out to the streams open now. Publish never blocks. A
// subscriber whose buffer is full misses progress (the next one supersedes
// it); one that would miss anything else (a step, an end, a notification)
// is cut off instead, so that its client knows it missed something and
// reconnects and catches up from the API (fleetd watch does), rather than
// waiting for an end that was dropped.
type Hub struct {
	mu   sync.Mutex
	subs map[chan StreamEvent]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[chan StreamEvent]struct{}{}} }

// Publish sends data, as JSON, to every subscriber.
func (h *Hub) Publish(typ string, data any) {
	if h == nil {
		return
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- StreamEvent{Type: typ, Data: raw}:
		default:
			if typ != TypeProgress {
				delete(h.subs, ch)
				close(ch)
			}
		}
	}
}

// subscriberBuffer is how many events a slow stream may fall behind.
const subscriberBuffer = 64

// Subscribe returns a channel of events and the function that ends it. The
// channel is closed when the subscriber fell too far behind.
func (h *Hub) Subscribe() (<-chan StreamEvent, func()) {
	ch := make(chan StreamEvent, subscriberBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			if _, ok := h.subs[ch]; ok {
				delete(h.subs, ch)
				close(ch)
			}
			h.mu.Unlock()
		})
	}
}

// streamHeartbeat is how often an idle stream gets a comment line.
const streamHeartbeat = 15 * time.Second

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if s.Events == nil {
		writeError(w, Errorf(http.StatusNotImplemented, "this server streams no events"))
		return
	}
	ch, stop := s.Events.Subscribe()
	defer stop()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	write := func(f func() error) bool {
		// The server's write timeout bounds each write, not the stream.
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if f() != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write(func() error { _, err := io.WriteString(w, ": fleetd events\n\n"); return err }) {
		return
	}
	beat := time.NewTicker(streamHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-beat.C:
			if !write(func() error { _, err := io.WriteString(w, ": heartbeat\n\n"); return err }) {
				return
			}
		case ev, ok := <-ch:
			if !ok { // fell behind: end the stream; the client catches up
				_ = write(func() error {
					_, err := io.WriteString(w, ": fell behind, closing: reconnect and read the status\n\n")
					return err
				})
				return
			}
			if !write(func() error { _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, ev.Data); return err }) {
				return
			}
		}
	}
}

// Events opens the daemon's event stream and calls fn with each event until
// fn returns false, the stream ends, or ctx ends. opened (if set) is called
// once the stream is open, before any event is read.
func (c *Client) Events(ctx context.Context, opened func(), fn func(StreamEvent) bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/v1/events", nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "text/event-stream")
	// No client timeout: the stream lasts as long as ctx; the server's
	// heartbeats show it is alive.
	resp, err := (&http.Client{Transport: c.hc.HTTPClient.Transport}).Do(req)
	if err != nil {
		return fmt.Errorf("fleetd at %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &Error{Status: resp.StatusCode, Msg: fmt.Sprintf("fleetd at %s: %d %s: %s", c.base.Host, resp.StatusCode, http.StatusText(resp.StatusCode), strings.TrimSpace(string(b)))}
	}
	if opened != nil {
		opened()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var ev StreamEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Type != "" {
				if !fn(ev) {
					return nil
				}
			}
			ev = StreamEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.Type = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.Data = append(ev.Data, strings.TrimPrefix(line, "data: ")...)
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("fleetd at %s: event stream: %w", c.base.Host, err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("fleetd at %s: the event stream ended (the daemon stopped or handed over)", c.base.Host)
}
