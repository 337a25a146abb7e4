// Package api is fleetd's HTTP API (JSON under /v1) and the client the CLI
// uses to talk to a running daemon. The server knows nothing of Kafka or EC2:
// it translates HTTP to a Backend (the daemon) and back, checks the bearer
// token, and answers bad requests with a 4xx that says what was wrong.
package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/trigger"
)

// Backend is what the API serves. Errors of type *Error choose the status
// code; any other error is a 500.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	History(ctx context.Context, limit int) ([]*replace.Record, error)
	Replacement(ctx context.Context, id string) (*replace.Record, error)
	Request(ctx context.Context, req ReplaceRequest) (ReplaceResponse, error)
	Abort(ctx context.Context, reason string) (AbortResponse, error)
	SetPaused(ctx context.Context, paused bool) error
	// Cancel takes a queued request off the queue.
	Cancel(ctx context.Context, id, reason string) (controller.Request, error)
	// SetThrottle changes the running replacement's throttle.
	SetThrottle(ctx context.Context, t replace.Throttle) (replace.ThrottleResult, error)
	// Ready says whether the daemon serves its purpose (nil: ready).
	Ready(ctx context.Context) error
}

// Error is an error with an HTTP status, for the client to see.
type Error struct {
	Status int    `json:"-"`
	Msg    string `json:"error"`
}

func (e *Error) Error() string { return e.Msg }

// Errorf builds an *Error.
func Errorf(status int, msg string) *Error { return &Error{Status: status, Msg: msg} }

// IsStatus reports whether err is an *Error with status code.
func IsStatus(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == code
}

// Status is GET /v1/status.
type Status struct {
	Cluster string `json:"cluster"`
	// Holder is this process (host:pid); Active whether it holds the lease.
	Holder     string            `json:"holder"`
	Active     bool              `json:"active"`
	Controller controller.Status `json:"controller"`
	// Health is the cluster's verdict; HealthError says why it is missing.
	Health      *health.Report     `json:"health,omitempty"`
	HealthError string             `json:"health_error,omitempty"`
	Fleet       []replace.Instance `json:"fleet"`
	FleetError  string             `json:"fleet_error,omitempty"`
	// Progress is the running replacement's latest progress.
	Progress *replace.Progress `json:"progress,omitempty"`
	Chaos    ChaosStatus       `json:"chaos"`
}

// ChaosStatus is what the chaos schedule last decided.
type ChaosStatus struct {
	Enabled bool      `json:"enabled"`
	Leashed bool      `json:"leashed"`
	Next    time.Time `json:"next,omitzero"`
	// Decisions are the latest decided slots, newest first.
	Decisions []ChaosDecision `json:"decisions"`
}

// ChaosDecision is one decided slot, with the plan a leashed schedule made.
type ChaosDecision = trigger.ChaosDecision

// ReplaceRequest is POST /v1/replacements: everything `fleetd replace` can
// say. Unset options take fleetd's configured ones.
type ReplaceRequest struct {
	Broker   *int32 `json:"broker"`
	Strategy string `json:"strategy,omitempty"`
	// Throttle is "20MiB", "none", or bytes per second.
	Throttle    replace.Throttle `json:"throttle,omitzero"`
	Concurrency int              `json:"concurrency,omitempty"`
	Order       replace.Order    `json:"order,omitempty"`
	// Reason is free text kept with the request and its record.
	Reason string `json:"reason,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// ReplaceResponse says what became of the request (queued, merged into a
// queued request, attached to the running replacement), or holds the dry
// run's plan.
type ReplaceResponse struct {
	Queued *controller.Request `json:"queued,omitempty"`
	// Outcome is queued, merged or attached; Into names the queued request
	// (q-...) or running replacement (r-...) it joined.
	Outcome controller.Outcome `json:"outcome,omitempty"`
	Into    string             `json:"into,omitempty"`
	Preview *replace.Record    `json:"preview,omitempty"`
}

// CancelRequest is POST /v1/queue/{id}/cancel.
type CancelRequest struct {
	Reason string `json:"reason"`
}

// CancelResponse is the cancelled request.
type CancelResponse struct {
	Cancelled controller.Request `json:"cancelled"`
}

// ThrottleRequest is POST /v1/throttle.
type ThrottleRequest struct {
	Throttle replace.Throttle `json:"throttle"`
}

// AbortRequest is POST /v1/abort.
type AbortRequest struct {
	Reason string `json:"reason"`
}

// AbortResponse says whether a replacement was running to abort.
type AbortResponse struct {
	Aborted     bool   `json:"aborted"`
	Replacement string `json:"replacement,omitempty"`
}

// PauseResponse is the pause switch after POST /v1/pause or /v1/resume.
type PauseResponse struct {
	Paused bool `json:"paused"`
}

// HistoryEntry is a replacement record with its steps' durations spelled
// out (GET /v1/history).
type HistoryEntry struct {
	*replace.Record
	Timeline     []StepDuration `json:"timeline"`
	TotalSeconds float64        `json:"total_seconds"`
}

// StepDuration is one step's wall time.
type StepDuration struct {
	Step    replace.Step `json:"step"`
	Seconds float64      `json:"seconds"`
	Running bool         `json:"running,omitempty"`
}

// NewHistoryEntry computes r's timeline.
func NewHistoryEntry(r *replace.Record) HistoryEntry {
	h := HistoryEntry{Record: r, Timeline: []StepDuration{}}
	for _, s := range r.Steps {
		d := StepDuration{Step: s.Step, Seconds: s.Duration().Seconds(), Running: s.Ended.IsZero()}
		h.Timeline = append(h.Timeline, d)
		h.TotalSeconds += d.Seconds
	}
	return h
}

// statusOf maps an error to an HTTP status.
func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
