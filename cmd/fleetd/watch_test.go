package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/replace"
)

// The stream breaks mid-replacement and the end is published while no
// stream is open (or was dropped): follow opens the stream again, asks for
// the record, and ends with the outcome instead of waiting forever.
func TestFollowReconnectsAndCatchesUpOnAMissedEnd(t *testing.T) {
	var streams atomic.Int32
	ended := make(chan struct{})
	running := &replace.Record{ID: "r-1", OldBroker: 2, Phase: replace.PhaseRunning, Step: replace.StepMove}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Status{Controller: controller.Status{Running: running}})
	})
	mux.HandleFunc("GET /v1/replacements/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec := *running
		select {
		case <-ended:
			rec.Phase = replace.PhaseCompleted
		default:
		}
		_ = json.NewEncoder(w).Encode(api.HistoryEntry{Record: &rec})
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if streams.Add(1) == 1 {
			// One progress event, then the stream breaks; the replacement
			// ends while the client is away.
			fmt.Fprintf(w, ": fleetd events\n\nevent: progress\ndata: {\"id\":\"r-1\",\"step\":\"move\",\"bytes_copied\":10,\"bytes_total\":100}\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(200 * time.Millisecond)
			close(ended)
			return
		}
		fmt.Fprintf(w, ": fleetd events\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := api.NewClient(srv.URL, "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out strings.Builder
	v := newWatchView(&out, false)
	rec, err := follow(ctx, c, "", v)
	v.stop()
	if err != nil || rec == nil || rec.Phase != replace.PhaseCompleted {
		t.Fatalf("follow: %+v %v\n%s", rec, err, out.String())
	}
	if n := streams.Load(); n != 2 {
		t.Errorf("%d streams opened, want 2 (one reconnect)", n)
	}
	if !strings.Contains(out.String(), "reconnecting") {
		t.Errorf("the reconnect was not shown:\n%s", out.String())
	}
}

// An answer that will not change ends follow at once, without retries.
func TestFollowStopsOnAnUnknownReplacement(t *testing.T) {
	var streams atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/replacements/{id}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(api.Error{Msg: "no replacement"})
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		streams.Add(1)
		fmt.Fprintf(w, ": fleetd events\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, _ := api.NewClient(srv.URL, "", 5*time.Second)
	var out strings.Builder
	v := newWatchView(&out, false)
	_, err := follow(context.Background(), c, "r-nope", v)
	v.stop()
	if !api.IsStatus(err, http.StatusNotFound) || streams.Load() != 1 {
		t.Fatalf("follow of an unknown record: %v after %d streams, want 404 after 1", err, streams.Load())
	}
}

// A stream that opens and breaks at once, every time, is given up on after
// followRetries tries, not retried forever.
func TestFollowGivesUpOnAStreamThatKeepsBreaking(t *testing.T) {
	t.Parallel() // about 25 s of backoff: beside the others
	var streams atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(api.Status{})
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, _ *http.Request) {
		streams.Add(1)
		fmt.Fprintf(w, ": fleetd events\n\n")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, _ := api.NewClient(srv.URL, "", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	v := newWatchView(&out, false)
	_, err := follow(ctx, c, "", v)
	v.stop()
	if err == nil || ctx.Err() != nil || streams.Load() != followRetries {
		t.Fatalf("follow: %v after %d streams (ctx %v), want an error after %d", err, streams.Load(), ctx.Err(), followRetries)
	}
}
