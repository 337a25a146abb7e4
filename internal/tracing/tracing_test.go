package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fleetd/fleetd/internal/replace"
)

func record() *replace.Record {
	return &replace.Record{ID: "r-1", OldBroker: 2, NewBroker: 4, Triggers: []replace.Trigger{replace.TriggerChaos}, Strategy: replace.StrategyMove, Phase: replace.PhaseCompleted}
}

func TestOneTracePerReplacementWithASpanPerStep(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := NewWithExporter(exp, "test", "dev")
	r := record()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	tr.Begin(context.Background(), r, false)
	tr.Step(r, replace.StepTiming{Step: replace.StepGate, Started: t0, Ended: t0.Add(2 * time.Second)}, nil)
	r.BytesMoved, r.MovesDone = 1000, 3
	tr.Step(r, replace.StepTiming{Step: replace.StepMove, Started: t0.Add(2 * time.Second), Ended: t0.Add(62 * time.Second)}, errors.New("stalled"))
	tr.End(r)
	tr.Step(r, replace.StepTiming{Step: replace.StepDone, Started: t0, Ended: t0}, nil) // after End: dropped
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want root + 2 steps", len(spans))
	}
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
		if s.SpanContext.TraceID() != spans[0].SpanContext.TraceID() {
			t.Fatalf("span %s in another trace", s.Name)
		}
	}
	root, move := byName["replace broker"], byName["move"]
	if move.Parent.SpanID() != root.SpanContext.SpanID() {
		t.Fatal("step span is not a child of the replacement's root span")
	}
	if !move.StartTime.Equal(t0.Add(2*time.Second)) || move.EndTime.Sub(move.StartTime) != time.Minute {
		t.Fatalf("move span %s..%s, want the step's own times", move.StartTime, move.EndTime)
	}
	attrs := map[string]int64{}
	for _, a := range move.Attributes {
		attrs[string(a.Key)] = a.Value.AsInt64()
	}
	if attrs["replacement.bytes_moved"] != 1000 || attrs["replacement.moves_done"] != 3 {
		t.Errorf("move span attributes %v, want the bytes moved and the moves done", attrs)
	}
	if move.Status.Description != "stalled" || byName["gate"].Status.Description != "" {
		t.Fatalf("statuses: move %q gate %q", move.Status.Description, byName["gate"].Status.Description)
	}
}

// exportOne sends one replacement's trace to a collector served by h and
// shuts the tracer down (which waits for the export), returning Shutdown's
// error.
func exportOne(t *testing.T, h http.HandlerFunc, log zerolog.Logger) error {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr, err := New(srv.URL, "test", "dev", log)
	if err != nil {
		t.Fatal(err)
	}
	r := record()
	tr.Begin(context.Background(), r, false)
	tr.End(r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return tr.Shutdown(ctx)
}

func TestOTLPExporterPostsToTheEndpoint(t *testing.T) {
	var posts atomic.Int32
	err := exportOne(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" && r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			if len(b) > 0 {
				posts.Add(1)
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no spans were posted to /v1/traces")
	}
}

// A collector that refuses spans costs a JSON warning, never a plain-text
// line from OpenTelemetry's default error handler.
func TestExportFailuresAreLoggedAsJSON(t *testing.T) {
	var buf bytes.Buffer // written by the exporter's goroutine, which Shutdown waits for
	_ = exportOne(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadRequest)
	}, zerolog.New(&buf))
	line, _, _ := strings.Cut(buf.String(), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("export failure not logged as JSON: %q", buf.String())
	}
	if got["level"] != "warn" || got["component"] != "tracing" || got["message"] != "trace export failed" {
		t.Fatalf("export failure logged as %v", got)
	}
}

func TestBadEndpointIsRejected(t *testing.T) {
	if _, err := New("otel-collector:4318", "c", "v", zerolog.Nop()); err == nil {
		t.Fatal("an endpoint without a scheme was accepted")
	}
}

func TestDisabledRecordsNothing(t *testing.T) {
	tr := Disabled()
	r := record()
	if ctx := tr.Begin(context.Background(), r, false); trace.SpanFromContext(ctx).IsRecording() {
		t.Fatal("a disabled tracer records spans")
	}
	tr.Step(r, replace.StepTiming{Step: replace.StepGate}, nil)
	tr.End(r)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAnAbortIsAnOutcomeNotAnError(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := NewWithExporter(exp, "test", "dev")
	r := record()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	tr.Begin(context.Background(), r, false)
	tr.Step(r, replace.StepTiming{Step: replace.StepMove, Started: t0, Ended: t0.Add(time.Minute)}, fmt.Errorf("step move: %w", replace.ErrAborted))
	r.Phase, r.AbortRequested = replace.PhaseRolledBack, "aborted by operator"
	tr.End(r)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range exp.GetSpans() {
		if s.Status.Code == codes.Error || len(s.Events) > 0 {
			t.Errorf("span %s: status %v, %d events: an abort is not an exception", s.Name, s.Status, len(s.Events))
		}
		var outcome string
		for _, a := range s.Attributes {
			if a.Key == "replacement.outcome" {
				outcome = a.Value.AsString()
			}
		}
		if outcome != replace.OutcomeAborted {
			t.Errorf("span %s: outcome %q, want %q", s.Name, outcome, replace.OutcomeAborted)
		}
	}
}
