package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/notify"
	"github.com/fleetd/fleetd/internal/replace"
)

func newWatchCmd() *cobra.Command {
	var a apiFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "watch [ID]",
		Short: "Follow a replacement a running fleetd is doing, live, until it ends",
		Long: `Follow one workflow of the daemon live, from its event stream (GET
/v1/events): step, partitions and bytes copied, the measured rate, the ETA
at that rate, under-replicated partitions, a stalled copy, the throttle.
ID is a replacement (r-...) or a queued request (q-..., followed into the
replacement that serves it); without ID, the one running now, else the next
to start. A refused attempt is shown and followed on: the request waits and
is retried. On a terminal: a progress bar; otherwise (or with --json, one
JSON object per line) plain lines.

Ends with the replacement's summary, as a local fleetd replace prints it.

Exit codes: 0 completed; 1 rolled back, aborted or refused (nothing lost);
2 failed (a person should look) or the daemon could not be followed; 130
interrupted (the replacement goes on: watch it again).`,
		Example: `  fleetd watch
  fleetd watch r-20261204T100101-3-1a2b3c4d
  fleetd replace --broker 3 --api http://127.0.0.1:7080 --follow`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			return watch(cmd.Context(), c, cmd.OutOrStdout(), target, asJSON)
		},
	}
	a.registerURL(cmd.Flags(), "the daemon's URL (env FLEETD_API, default "+defaultAPI+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each event and the final record as one JSON object per line")
	return cmd
}

// watch follows target (a record id, a request id, or "" for the running
// or next workflow) until it ends, and returns the exit its outcome means.
func watch(ctx context.Context, c *api.Client, out io.Writer, target string, asJSON bool) error {
	v := newWatchView(out, asJSON)
	rec, err := follow(ctx, c, target, v)
	v.stop()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(out, "interrupted: the replacement goes on in the daemon; fleetd watch follows it again")
			return ctx.Err()
		}
		return err
	}
	if asJSON {
		line(out, rec)
	} else {
		printSummary(out, rec, false)
	}
	switch rec.Phase {
	case replace.PhaseCompleted:
		return nil
	case replace.PhaseFailed:
		return &codeError{code: exitError, err: errors.New(rec.Error)}
	default:
		return &codeError{code: exitNotSafe}
	}
}

// follow reads the daemon's event stream until target's workflow ends. A
// stream that breaks (the daemon cut off a client that fell behind, a proxy
// closed it, the daemon restarted or handed over) is opened again and the
// state asked for again, so nothing that happened meanwhile is missed; and
// while it is open the state is asked for every followRecheck, so an end
// that never arrives is found. After followRetries failures in a row it
// gives up; an answer that will not change (401, 404) ends it at once.
func follow(ctx context.Context, c *api.Client, target string, v *watchView) (*replace.Record, error) {
	w := &watched{}
	switch {
	case strings.HasPrefix(target, "q-"):
		w.request = target
	case target != "":
		w.record = target
	}
	var lastErr error
	for failures := 0; failures < followRetries; failures++ {
		if failures > 0 {
			v.note(fmt.Sprintf("event stream: %v; reconnecting", lastErr))
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(min(time.Second<<(failures-1), 10*time.Second)):
			}
		}
		rec, healthy, err := w.followStream(ctx, c, v, lastErr == nil)
		switch {
		case rec != nil:
			return rec, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case permanent(err):
			return nil, err
		case healthy:
			failures = 0 // a stream that stayed open a while is not a failure in a row
		}
		lastErr = err
	}
	return nil, fmt.Errorf("%w; fleetd watch %s follows it again", lastErr, w.name())
}

// followRetries bounds reconnects in a row; a stream open for
// followHealthy before it broke starts the count again (one that breaks at
// once, or a daemon that keeps failing to answer, does not: follow gives up
// instead of retrying forever); followRecheck is how often an open
// stream's workflow is also asked for directly.
const (
	followRetries = 6
	followHealthy = 10 * time.Second
	followRecheck = 30 * time.Second
)

// permanent: the daemon answered, and asking again will not change it.
func permanent(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests
}

// followStream opens the stream once and follows w on it until its workflow
// ends (the record), the stream breaks (healthy says it had been open for
// followHealthy) or ctx ends.
func (w *watched) followStream(ctx context.Context, c *api.Client, v *watchView, first bool) (rec *replace.Record, healthy bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan api.StreamEvent, 64)
	open := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- c.Events(ctx, func() { close(open) }, func(ev api.StreamEvent) bool {
			select {
			case events <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	select {
	case <-open:
	case err := <-errc:
		return nil, false, err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	// The stream is open: whatever happens from now on arrives on it. What
	// happened before is asked for once.
	openedAt := time.Now()
	if rec, err := w.already(ctx, c); err != nil || rec != nil {
		return rec, false, err
	}
	if first && w.record == "" && w.request == "" {
		v.note("no replacement is running; waiting for the next one to start")
	}
	recheck := time.NewTicker(followRecheck)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case err := <-errc:
			return nil, time.Since(openedAt) >= followHealthy, err
		case <-recheck.C:
			if rec, err := w.already(ctx, c); err != nil || rec != nil {
				return rec, false, err
			}
		case ev := <-events:
			if rec := w.handle(ev, v); rec != nil {
				return rec, false, nil
			}
		}
	}
}

// watched is what follow is following: a request until it is known which
// record serves it, then that record.
type watched struct {
	request, record string
}

func (w *watched) name() string { return w.record + w.request }

// already checks the state before the stream opened: a record that has
// ended, or a request already running or served.
func (w *watched) already(ctx context.Context, c *api.Client) (*replace.Record, error) {
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if w.record != "" {
		h, err := c.Replacement(actx, w.record)
		if err != nil {
			return nil, err
		}
		if h.Phase.Terminal() && h.Phase != replace.PhaseRefused {
			return h.Record, nil
		}
		return nil, nil
	}
	st, err := c.Status(actx)
	if err != nil {
		return nil, err
	}
	if r := st.Controller.Running; r != nil && (w.request == "" || r.RequestID == w.request) {
		w.record = r.ID
		return nil, nil
	}
	if w.request == "" {
		return nil, nil
	}
	hist, err := c.History(actx, 50)
	if err != nil {
		return nil, err
	}
	for _, h := range hist {
		if h.RequestID == w.request {
			w.record = h.ID
			if h.Phase.Terminal() && h.Phase != replace.PhaseRefused {
				return h.Record, nil
			}
			return nil, nil
		}
	}
	return nil, nil
}

// matches says whether an event about record id (serving request req) is
// the watched workflow's, learning the record when it was not known.
func (w *watched) matches(id, req string) bool {
	switch {
	case w.record != "":
		return id == w.record
	case w.request != "":
		if req == w.request {
			w.record = id
			return true
		}
		return false
	default: // the next workflow, whichever it is
		w.record = id
		return true
	}
}

// handle shows ev if it is about the watched workflow and returns its
// record when it ended.
func (w *watched) handle(ev api.StreamEvent, v *watchView) *replace.Record {
	switch ev.Type {
	case api.TypeProgress:
		var p replace.Progress
		if json.Unmarshal(ev.Data, &p) == nil && w.matches(p.ID, p.RequestID) {
			v.progress(p, ev)
		}
	case api.TypeStep:
		var s api.StepEvent
		if json.Unmarshal(ev.Data, &s) == nil && w.matches(s.ID, s.RequestID) {
			v.step(s, ev)
		}
	case api.TypeEvent:
		var n notify.Event
		if json.Unmarshal(ev.Data, &n) != nil {
			return nil
		}
		switch {
		case n.Kind == notify.Paused || n.Kind == notify.Resumed || n.Kind == notify.LeaseLost:
			v.message(n.Message, ev)
		case n.Replacement != nil && n.Replacement.ID == w.record, n.Request != nil && n.Request.ID == w.request && w.request != "":
			v.message(n.Message, ev)
		}
	case api.TypeEnd:
		var r replace.Record
		if json.Unmarshal(ev.Data, &r) != nil || !w.matches(r.ID, r.RequestID) {
			return nil
		}
		if r.Phase == replace.PhaseRefused {
			v.message(fmt.Sprintf("refused by the gate: %s (the request waits and is retried; still watching)", r.Error), ev)
			return nil
		}
		return &r
	}
	return nil
}

// watchView shows a followed workflow: a progress bar on a terminal, plain
// lines otherwise, JSON lines with --json.
type watchView struct {
	mu     sync.Mutex
	out    io.Writer
	asJSON bool
	lines  *progressView
	bar    *progressbar.ProgressBar
	total  int64
}

func newWatchView(out io.Writer, asJSON bool) *watchView {
	v := &watchView{out: out, asJSON: asJSON}
	if f, ok := out.(*os.File); !asJSON && (!ok || !term.IsTerminal(int(f.Fd()))) {
		v.lines = newProgressView(out)
	}
	return v
}

func line(out io.Writer, v any) {
	b, err := json.Marshal(v)
	if err == nil {
		fmt.Fprintf(out, "%s\n", b)
	}
}

func (v *watchView) progress(p replace.Progress, ev api.StreamEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.asJSON:
		line(v.out, map[string]any{"type": ev.Type, "data": ev.Data})
	case v.lines != nil:
		v.lines.progress(p)
	default:
		if v.bar == nil || p.BytesTotal != v.total {
			v.total = p.BytesTotal
			v.bar = progressbar.NewOptions64(max(p.BytesTotal, 1), progressbar.OptionSetWriter(v.out), progressbar.OptionShowBytes(true),
				progressbar.OptionSetWidth(30), progressbar.OptionThrottle(250*time.Millisecond), progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(false), progressbar.OptionFullWidth())
		}
		desc := fmt.Sprintf("[%s] %d/%d partitions", p.Step, p.PartitionsDone, p.Partitions)
		if p.BytesPerSec > 0 {
			desc += fmt.Sprintf(", %s/s", humanize.IBytes(uint64(p.BytesPerSec)))
		}
		if p.ETASeconds > 0 {
			desc += fmt.Sprintf(", ETA %s", time.Duration(p.ETASeconds)*time.Second)
		}
		if p.Throttle != "" {
			desc += ", throttle " + p.Throttle
		}
		if p.UnderReplicated > 0 {
			desc += fmt.Sprintf(", %d under-replicated", p.UnderReplicated)
		}
		if p.Stalled {
			desc += ", STALLED"
		}
		v.bar.Describe(desc)
		_ = v.bar.Set64(max(p.BytesCopied, 0))
	}
}

func (v *watchView) step(s api.StepEvent, ev api.StreamEvent) {
	v.say(fmt.Sprintf("  done: %-20s next: %s", s.Done, s.Next), ev)
}

func (v *watchView) message(msg string, ev api.StreamEvent) { v.say("  "+msg, ev) }

func (v *watchView) note(msg string) { v.say(msg, api.StreamEvent{}) }

// say prints a line above the bar (or as JSON).
func (v *watchView) say(text string, ev api.StreamEvent) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.asJSON {
		if ev.Type != "" {
			line(v.out, map[string]any{"type": ev.Type, "data": ev.Data})
		}
		return
	}
	if v.bar != nil {
		_ = v.bar.Clear()
	}
	fmt.Fprintln(v.out, text)
	if v.bar != nil {
		_ = v.bar.RenderBlank()
	}
}

func (v *watchView) stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.bar != nil {
		_ = v.bar.Finish()
		fmt.Fprintln(v.out)
	}
	if v.lines != nil {
		v.lines.stop()
	}
}
