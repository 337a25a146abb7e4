// Package tracing sends one OpenTelemetry trace per replacement, with a span
// per step, to an OTLP/HTTP endpoint. It is off by default: then every call
// is a no-op and nothing leaves the process.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fleetd/fleetd/internal/replace"
)

// Tracer turns replacements into traces.
type Tracer struct {
	tracer   trace.Tracer
	shutdown func(context.Context) error
	flush    func(context.Context) error

	mu    sync.Mutex
	roots map[string]trace.Span // replacement id -> its root span
}

// Disabled returns a tracer that records nothing.
func Disabled() *Tracer {
	return &Tracer{tracer: noop.NewTracerProvider().Tracer("fleetd"), shutdown: func(context.Context) error { return nil }, flush: func(context.Context) error { return nil }, roots: map[string]trace.Span{}}
}

// New exports to endpoint, an OTLP/HTTP base URL such as
// http://otel-collector:4318 (spans are posted to /v1/traces under it).
// Export failures (a collector that is down) are logged to log as warnings;
// they never stop a replacement.
func New(endpoint, cluster, version string, log zerolog.Logger) (*Tracer, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracing.endpoint %q: want an OTLP/HTTP URL like http://otel-collector:4318", endpoint)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.JoinPath("/v1/traces").String())}
	// OpenTelemetry reports export errors to a process-wide handler whose
	// default writes plain text to stderr.
	log = log.With().Str("component", "tracing").Logger()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn().Err(err).Msg("trace export failed")
	}))
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return NewWithExporter(exp, cluster, version), nil
}

// NewWithExporter uses exp (tests pass an in-memory exporter).
func NewWithExporter(exp sdktrace.SpanExporter, cluster, version string) *Tracer {
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName("fleetd"), semconv.ServiceVersion(version), attribute.String("kafka.cluster", cluster))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracer{tracer: tp.Tracer("github.com/fleetd/fleetd"), shutdown: tp.Shutdown, flush: tp.ForceFlush, roots: map[string]trace.Span{}}
}

// Shutdown flushes spans not yet sent.
func (t *Tracer) Shutdown(ctx context.Context) error { return t.shutdown(ctx) }

// Flush sends finished spans now.
func (t *Tracer) Flush(ctx context.Context) error { return t.flush(ctx) }

// Begin opens r's trace (call it each time a process starts driving r: a
// replacement resumed by another process gets a new root in a new trace,
// with the same replacement.id attribute).
func (t *Tracer) Begin(ctx context.Context, r *replace.Record, resumed bool) context.Context {
	ctx, span := t.tracer.Start(ctx, "replace broker", trace.WithAttributes(
		attribute.String("replacement.id", r.ID),
		attribute.Int("kafka.broker.old", int(r.OldBroker)),
		attribute.String("instance.old", r.OldInstance),
		attribute.String("replacement.trigger", r.TriggerList()),
		attribute.String("replacement.strategy", string(r.Strategy)),
		attribute.Bool("replacement.resumed", resumed),
	))
	t.mu.Lock()
	t.roots[r.ID] = span
	t.mu.Unlock()
	return ctx
}

// Step records one step as a child span with its real start and end.
func (t *Tracer) Step(r *replace.Record, st replace.StepTiming, err error) {
	t.mu.Lock()
	root, ok := t.roots[r.ID]
	t.mu.Unlock()
	if !ok {
		return
	}
	ctx := trace.ContextWithSpan(context.Background(), root)
	_, span := t.tracer.Start(ctx, string(st.Step), trace.WithTimestamp(st.Started), trace.WithAttributes(
		attribute.String("replacement.id", r.ID),
		attribute.Int("kafka.broker.new", int(r.NewBroker)),
		attribute.String("instance.new", r.NewInstance),
	))
	if st.Step == replace.StepMove {
		// What the copy did: bytes, and the partition moves done of the plan's.
		span.SetAttributes(attribute.Int64("replacement.bytes_moved", r.BytesMoved), attribute.Int("replacement.moves_done", r.MovesDone))
		if r.Plan != nil {
			span.SetAttributes(attribute.Int("replacement.partitions", r.Plan.Partitions), attribute.Int64("replacement.bytes_planned", r.Plan.TotalBytes))
		}
	}
	switch {
	case errors.Is(err, replace.ErrAborted):
		// An operator's abort is a decision, not an exception.
		span.SetAttributes(attribute.String("replacement.outcome", replace.OutcomeAborted), attribute.String("replacement.abort_reason", err.Error()))
	case err != nil:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End(trace.WithTimestamp(st.Ended))
}

// End closes r's trace with its outcome.
func (t *Tracer) End(r *replace.Record) {
	t.mu.Lock()
	root, ok := t.roots[r.ID]
	delete(t.roots, r.ID)
	t.mu.Unlock()
	if !ok {
		return
	}
	root.SetAttributes(attribute.String("replacement.phase", string(r.Phase)), attribute.String("replacement.outcome", r.Outcome()),
		attribute.Int("kafka.broker.new", int(r.NewBroker)), attribute.String("instance.new", r.NewInstance), attribute.Int64("replacement.bytes_moved", r.BytesMoved))
	switch {
	case r.Outcome() == replace.OutcomeAborted:
		root.SetStatus(codes.Ok, "") // rolled back as the operator asked
	case r.Phase != replace.PhaseCompleted && r.Phase.Terminal():
		root.SetStatus(codes.Error, string(r.Phase)+": "+r.Error)
	}
	root.End()
}
