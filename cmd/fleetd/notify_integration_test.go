//go:build integration

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/fleetd/fleetd/internal/notify"
)

// hook is a local webhook receiver that keeps the events it accepted, in
// order. failFirst answers 500 to the first attempt of every event (its
// retry is then accepted); hang never answers.
type hook struct {
	mu        sync.Mutex
	events    []notify.Event
	attempts  map[string]int
	requests  int
	failFirst bool
	hang      chan struct{}
	srv       *httptest.Server
}

func newHook(t *testing.T, failFirst, hang bool) *hook {
	h := &hook{attempts: map[string]int{}, failFirst: failFirst}
	if hang {
		h.hang = make(chan struct{})
	}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.requests++
		h.mu.Unlock()
		if h.hang != nil {
			select {
			case <-h.hang:
			case <-r.Context().Done():
			}
			return
		}
		var ev notify.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.attempts[ev.ID]++
		if h.failFirst && h.attempts[ev.ID] == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		h.events = append(h.events, ev)
	}))
	t.Cleanup(func() {
		if h.hang != nil {
			close(h.hang)
		}
		h.srv.Close()
	})
	return h
}

func (h *hook) got() []notify.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notify.Event(nil), h.events...)
}

func (h *hook) requestCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests
}
