package replace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fleetd/fleetd/internal/health"
)

// Class is what an error means for the workflow. Classify is the one place
// that decides it.
type Class int

const (
	// Retry: transient (a timeout talking to Kafka, a throttled AWS call);
	// the step is tried again with backoff, StepRetries times.
	Retry Class = iota
	// Fatal: the forward path ends; the table says whether that is a
	// rollback, nothing to undo, or past the point of no return.
	Fatal
	// NeedsPerson: fleetd must not guess; the record ends failed.
	NeedsPerson
	// Refused: the gate refused before anything changed.
	Refused
	// Aborted: an operator asked the running replacement to roll back.
	Aborted
	// Interrupted: fleetd is shutting down or lost its lease; the record
	// stays resumable where it stands.
	Interrupted
)

func (c Class) String() string {
	return [...]string{"retry", "fatal", "needs-person", "refused", "aborted", "interrupted"}[c]
}

// Classify maps err, returned by a step running under ctx, to its Class.
func Classify(ctx context.Context, err error) Class {
	var (
		f   *fatalError
		p   *personError
		ref *refusedError
		g   *guardError
		to  *timeoutError
	)
	switch {
	case ctx.Err() != nil:
		return Interrupted
	case errors.As(err, &p):
		return NeedsPerson
	case errors.As(err, &ref):
		return Refused
	case errors.Is(err, ErrAborted):
		return Aborted
	case errors.As(err, &f), errors.As(err, &g), errors.As(err, &to):
		return Fatal
	default:
		return Retry
	}
}

// fatalError ends the forward path.
type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }
func (f *fatalError) Unwrap() error { return f.err }

func fatal(format string, args ...any) error { return &fatalError{fmt.Errorf(format, args...)} }

// personError stops everything: the state needs a person, and fleetd must
// not guess (for example, the old broker is not empty after the move).
type personError struct{ err error }

func (p *personError) Error() string { return p.err.Error() }
func (p *personError) Unwrap() error { return p.err }

// timeoutError: a bounded wait ran past its bound. It is fatal; the few
// waits whose end is not a failure (leadership, a slow shutdown) check for
// exactly this type, never for fatal errors in general.
type timeoutError struct {
	what  string
	bound time.Duration
	last  error // the check's last transient error, if any
}

func (t *timeoutError) Error() string {
	if t.last != nil {
		return fmt.Sprintf("%s: not done within %s (last error: %v)", t.what, t.bound, t.last)
	}
	return fmt.Sprintf("%s: not done within %s", t.what, t.bound)
}

func isTimeout(err error) bool {
	var t *timeoutError
	return errors.As(err, &t)
}

// guardError: the blast-radius guard refused an act for longer than
// GuardWait. The act did not happen.
type guardError struct {
	act  string
	v    health.Verdict
	wait time.Duration
}

func (g *guardError) Error() string {
	return fmt.Sprintf("%s refused for %s by the blast-radius guard: %s", g.act, g.wait, g.v.Summary())
}

// refusedError: the gate refused before anything changed.
type refusedError struct{ v health.Verdict }

func (r *refusedError) Error() string { return "refused: " + r.v.Summary() }

// ErrAborted is an operator's abort: errors.Is tells it from a failure
// (metrics, traces and notifications report it as an outcome of its own).
var ErrAborted = errors.New("aborted")

// abortedError carries the operator's reason and is ErrAborted.
type abortedError struct{ reason string }

func (a *abortedError) Error() string        { return a.reason }
func (a *abortedError) Is(target error) bool { return target == ErrAborted }
