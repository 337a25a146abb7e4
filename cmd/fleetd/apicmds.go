package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/config"
	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/replace"
)

// These commands are thin clients of a running `fleetd run`.

const defaultAPI = "http://127.0.0.1:7080"

type apiFlags struct {
	url     string
	timeout time.Duration
	asJSON  bool
	actor   string
}

func (a *apiFlags) register(fs *pflag.FlagSet, usage string) {
	a.registerURL(fs, usage)
	fs.BoolVar(&a.asJSON, "json", false, "print the daemon's JSON answer")
}

// registerURL adds --api and --api-timeout only (commands with their own --json).
func (a *apiFlags) registerURL(fs *pflag.FlagSet, usage string) {
	fs.StringVar(&a.url, "api", "", usage+" (the token is read from "+config.EnvAPIToken+")")
	fs.DurationVar(&a.timeout, "api-timeout", 30*time.Second, "give up on the daemon after this long")
	fs.StringVar(&a.actor, "as", defaultActor(), "who you are: kept with the daemon's log, events and records of a pause, resume, cancel, abort or throttle change (a label; the daemon adds the address it came from)")
}

// defaultActor is user@host, as far as this machine knows them.
func defaultActor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	switch {
	case name != "" && host != "":
		return name + "@" + host
	case name != "":
		return name
	}
	return host
}

// useDaemon says whether a command that works either way talks to the
// daemon: --api given, or FLEETD_API set and neither a flag nor an
// environment variable of the direct way (direct, directEnv) given.
func (a *apiFlags) useDaemon(fs *pflag.FlagSet, direct []string, directEnv ...string) bool {
	if a.url != "" {
		return true
	}
	env := os.Getenv("FLEETD_API")
	if env == "" {
		return false
	}
	for _, n := range direct {
		if fs.Changed(n) {
			return false
		}
	}
	for _, e := range directEnv {
		if os.Getenv(e) != "" {
			return false
		}
	}
	a.url = env
	return true
}

func (a *apiFlags) client() (*api.Client, error) {
	u := a.url
	if u == "" {
		u = os.Getenv("FLEETD_API")
	}
	if u == "" {
		u = defaultAPI
	}
	c, err := api.NewClient(u, os.Getenv(config.EnvAPIToken), a.timeout)
	if err != nil {
		return nil, err
	}
	c.Actor = a.actor
	return c, nil
}

// open returns the client and a context bounded by --api-timeout.
func (a *apiFlags) open(parent context.Context) (*api.Client, context.Context, context.CancelFunc, error) {
	c, err := a.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(parent, a.timeout)
	return c, ctx, cancel, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newAbortCmd() *cobra.Command {
	var a apiFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "abort",
		Short: "Roll back the replacement a running fleetd is doing now",
		Long: `Ask the running fleetd to abort its current replacement. Before the old
broker starts retiring, fleetd cancels the moves, moves any moved replicas
back, removes its throttles and the new broker (only if it holds nothing);
after that point an abort is ignored and the replacement finishes, because
finishing is then the only way back to full redundancy. Queued requests stay
queued: use pause to stop new replacements.

Exit codes: 0 aborted, 1 nothing was running, 2 error.`,
		Example: `  fleetd abort --api http://10.0.3.7:7080 --reason "peak traffic"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := c.Abort(ctx, reason)
			if api.IsStatus(err, 409) {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to abort: no replacement is running")
				return &codeError{code: exitNotSafe}
			}
			if err != nil {
				return err
			}
			if a.asJSON {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "abort requested for replacement %s; it rolls back at its next step boundary (fleetd history shows the outcome)\n", resp.Replacement)
			return nil
		},
	}
	a.register(cmd.Flags(), "daemon URL (env FLEETD_API, default "+defaultAPI+")")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the record and the logs")
	return cmd
}

func newPauseCmd(paused bool) *cobra.Command {
	var a apiFlags
	use, short, long := "pause", "Stop a running fleetd from starting new replacements",
		`Set the durable pause switch: no new replacement starts (the queue keeps
its requests; chaos slots are still decided and queued) until resume. It
survives restarts and takeovers. A replacement already running continues:
abort it if it must stop.`
	if !paused {
		use, short, long = "resume", "Let a paused fleetd start replacements again", "Clear the pause switch: queued requests are served again, in order."
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := c.SetPaused(ctx, paused)
			if err != nil {
				return err
			}
			if a.asJSON {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			if resp.Paused {
				fmt.Fprintln(cmd.OutOrStdout(), "paused: no new replacement starts until `fleetd resume`")
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "resumed: queued replacements run again")
			}
			return nil
		},
	}
	a.register(cmd.Flags(), "daemon URL (env FLEETD_API, default "+defaultAPI+")")
	return cmd
}

func newHistoryCmd() *cobra.Command {
	var a apiFlags
	var limit int
	var id string
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List a running fleetd's replacements, newest first, with each step's duration",
		Example: `  fleetd history --api http://127.0.0.1:7080
  fleetd history --id r-20261124T100000-2-1a2b3c4d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			var entries []api.HistoryEntry
			if id != "" {
				e, err := c.Replacement(ctx, id)
				if err != nil {
					return err
				}
				entries = []api.HistoryEntry{e}
			} else if entries, err = c.History(ctx, limit); err != nil {
				return err
			}
			if a.asJSON {
				return printJSON(cmd.OutOrStdout(), entries)
			}
			renderHistory(cmd.OutOrStdout(), entries, id != "")
			return nil
		},
	}
	a.register(cmd.Flags(), "daemon URL (env FLEETD_API, default "+defaultAPI+")")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many replacements")
	cmd.Flags().StringVar(&id, "id", "", "show one replacement with its steps")
	return cmd
}

func renderHistory(w io.Writer, entries []api.HistoryEntry, steps bool) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "no replacements yet")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tTRIGGER\tSTRATEGY\tBROKER\tOUTCOME\tSTEP\tTOOK\tMOVED\tCANARY")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d -> %s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Created.Local().Format("2006-01-02 15:04"), e.TriggerList(), e.Strategy,
			e.OldBroker, newBroker(e.Record), e.Phase, e.Step, (time.Duration(e.TotalSeconds * float64(time.Second))).Round(time.Second), humanize.IBytes(uint64(max(e.BytesMoved, 0))),
			canaryCell(e.Canary))
	}
	tw.Flush()
	for _, e := range entries {
		if e.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", e.ID, e.Error)
		}
		if !steps {
			continue
		}
		printCanary(w, e.Canary)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  STEP\tTOOK")
		for _, s := range e.Timeline {
			took := (time.Duration(s.Seconds * float64(time.Second))).Round(10 * time.Millisecond).String()
			if s.Running {
				took = "running"
			}
			fmt.Fprintf(tw, "  %s\t%s\n", s.Step, took)
		}
		tw.Flush()
	}
}

// canaryCell is a record's canary verdict in one word.
func canaryCell(v *replace.CanaryVerdict) string {
	switch {
	case v == nil:
		return "-"
	case v.Verified:
		return fmt.Sprintf("ok (%d)", v.Acked)
	case v.Lost > 0 || v.Duplicated > 0:
		return fmt.Sprintf("FAILED (lost %d, dup %d)", v.Lost, v.Duplicated)
	}
	return "no verdict"
}

func newBroker(r *replace.Record) string {
	if r.NewBroker < 0 {
		return "-"
	}
	return fmt.Sprint(r.NewBroker)
}

// daemonStatus is `fleetd status --api`.
func daemonStatus(cmd *cobra.Command, a apiFlags) error {
	c, ctx, cancel, err := a.open(cmd.Context())
	if err != nil {
		return err
	}
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if a.asJSON {
		return printJSON(cmd.OutOrStdout(), st)
	}
	return renderDaemonStatus(cmd.OutOrStdout(), &st)
}

// renderDaemonStatus prints a running fleetd's status for people.
func renderDaemonStatus(w io.Writer, st *api.Status) error {
	role := "standby (" + st.Controller.Lease + ")"
	if st.Active {
		role = "active"
	}
	fmt.Fprintf(w, "fleetd %s on cluster %s: %s", st.Holder, st.Cluster, role)
	if st.Controller.Paused {
		fmt.Fprint(w, ", PAUSED")
	}
	fmt.Fprintln(w)
	if st.Controller.PauseReason != "" {
		fmt.Fprintf(w, "paused by fleetd itself: %s\n", st.Controller.PauseReason)
	}
	if r := st.Controller.Running; r != nil {
		fmt.Fprintf(w, "running: %s, broker %d -> %s (%s), step %s, trigger %s\n", r.ID, r.OldBroker, newBroker(r), r.Strategy, r.Step, r.TriggerList())
		if r.Waiting != "" {
			fmt.Fprintf(w, "  WAITING since %s: %s\n", r.WaitingSince.Local().Format(time.TimeOnly), r.Waiting)
		}
		if p := st.Progress; p != nil && p.Partitions > 0 {
			fmt.Fprintf(w, "  partitions %d/%d (%d in flight), copied %s/%s", p.PartitionsDone, p.Partitions, p.InFlight,
				humanize.IBytes(uint64(max(p.BytesCopied, 0))), humanize.IBytes(uint64(max(p.BytesTotal, 0))))
			if p.BytesPerSec > 0 {
				fmt.Fprintf(w, " at %s/s (throttle %s)", humanize.IBytes(uint64(p.BytesPerSec)), p.Throttle)
			}
			if p.ETASeconds > 0 {
				fmt.Fprintf(w, ", ETA %s", time.Duration(p.ETASeconds)*time.Second)
			}
			if p.Stalled {
				fmt.Fprint(w, ", STALLED")
			}
			fmt.Fprintln(w)
			for _, b := range p.Behind {
				fmt.Fprintf(w, "  BEHIND its writes: %s\n", b)
			}
		}
	} else {
		fmt.Fprintln(w, "running: nothing")
	}
	if len(st.Controller.Queue) == 0 {
		fmt.Fprintln(w, "queue: empty")
	} else {
		fmt.Fprintln(w, "queue:")
		for _, q := range st.Controller.Queue {
			line := fmt.Sprintf("  %s broker %d (%s)", q.ID, q.Broker, replace.JoinTriggers(q.Triggers))
			if q.LastRefusal != "" {
				line += fmt.Sprintf(", refused %d times, retry after %s: %s", q.Attempts, q.NotBefore.Local().Format(time.TimeOnly), q.LastRefusal)
			}
			fmt.Fprintln(w, line)
		}
	}
	for _, d := range st.Controller.Dropped {
		fmt.Fprintf(w, "dropped: broker %d at %s: %s\n", d.Broker, d.At.Local().Format(time.DateTime), d.Reason)
	}
	for _, d := range st.Controller.Done {
		fmt.Fprintf(w, "served: request %s for broker %d at %s: %s\n", d.ID, d.Broker, d.At.Local().Format(time.DateTime), d.Reason)
	}
	if st.Chaos.Enabled {
		mode := ""
		if st.Chaos.Leashed {
			mode = " (leashed: plans only)"
		}
		fmt.Fprintf(w, "chaos%s: next slot %s\n", mode, st.Chaos.Next.Local().Format(time.DateTime))
		for _, d := range st.Chaos.Decisions[:min(3, len(st.Chaos.Decisions))] {
			fmt.Fprintf(w, "  %s: %s\n", d.Slot.Local().Format(time.DateTime), d.Reason)
		}
	} else {
		fmt.Fprintln(w, "chaos: off")
	}
	if st.FleetError != "" {
		fmt.Fprintf(w, "fleet: cannot list: %s\n", st.FleetError)
	}
	if st.Health == nil {
		fmt.Fprintf(w, "cluster: cannot read: %s\n", st.HealthError)
		return &codeError{code: exitError}
	}
	fmt.Fprintln(w)
	renderStatus(w, *st.Health, st.Fleet)
	return nil
}

// daemonReplace is `fleetd replace --api`.
func daemonReplace(cmd *cobra.Command, a apiFlags, req api.ReplaceRequest, follow bool) error {
	c, ctx, cancel, err := a.open(cmd.Context())
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.Replace(ctx, req)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if follow && resp.Preview == nil {
		if a.asJSON {
			line(w, resp)
		} else {
			printQueued(w, resp)
		}
		// The request's own id, or what it joined: a queued request (merged)
		// or the running replacement (attached).
		target := resp.Queued.ID
		if resp.Into != "" {
			target = resp.Into
		}
		return watch(cmd.Context(), c, w, target, a.asJSON)
	}
	if a.asJSON {
		return printJSON(w, resp)
	}
	if resp.Preview != nil {
		printPreview(w, resp.Preview, false)
		if resp.Preview.Phase == replace.PhaseRefused {
			return &codeError{code: exitNotSafe}
		}
		return nil
	}
	printQueued(w, resp)
	return nil
}

// printQueued says what became of a request the daemon accepted.
func printQueued(w io.Writer, resp api.ReplaceResponse) {
	q := resp.Queued
	switch resp.Outcome {
	case controller.Attached:
		fmt.Fprintf(w, "attached: broker %d is being replaced right now by %s; this request (%s) is listed there and done when it completes (fleetd history --id %s follows it)\n", q.Broker, resp.Into, q.ID, resp.Into)
	case controller.Merged:
		fmt.Fprintf(w, "merged: broker %d was already queued as %s; that request now carries triggers %s (fleetd cancel %s withdraws it)\n", q.Broker, resp.Into, replace.JoinTriggers(q.Triggers), resp.Into)
	default:
		fmt.Fprintf(w, "queued: request %s to replace broker %d (triggers %s); fleetd status shows its place, fleetd history its outcome, fleetd cancel %s withdraws it\n", q.ID, q.Broker, replace.JoinTriggers(q.Triggers), q.ID)
	}
}

func newCancelCmd() *cobra.Command {
	var a apiFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "cancel REQUEST-ID",
		Short: "Withdraw a queued replacement request from a running fleetd",
		Long: `Take a queued request (q-..., as fleetd status lists it) off the daemon's
queue. It is listed under dropped with the reason. A replacement that is
already running is not cancelled: abort rolls it back.

Exit codes: 0 cancelled, 2 error (no such queued request, standby, ...).`,
		Example: `  fleetd cancel q-1a2b3c4d --reason "replaced by hand"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := c.Cancel(ctx, args[0], reason)
			if err != nil {
				return err
			}
			if a.asJSON {
				return printJSON(cmd.OutOrStdout(), resp)
			}
			q := resp.Cancelled
			fmt.Fprintf(cmd.OutOrStdout(), "cancelled: request %s to replace broker %d (triggers %s)\n", q.ID, q.Broker, replace.JoinTriggers(q.Triggers))
			return nil
		},
	}
	a.register(cmd.Flags(), "daemon URL (env FLEETD_API, default "+defaultAPI+")")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the record and the logs")
	return cmd
}

func newThrottleCmd() *cobra.Command {
	var a apiFlags
	cmd := &cobra.Command{
		Use:   "throttle RATE",
		Short: "Change the replication throttle of the replacement running now",
		Long: `Change the running replacement's replication throttle, e.g. to slow it
down at peak traffic or speed it up at night. RATE is a size per second
(20MiB, 100MB) or none. The new value is written into the replacement's
record first (a restarted fleetd keeps it), then set on the brokers'
leader/follower.replication.throttled.rate at once.

Exit codes: 0 changed, 1 no replacement is running, 2 error.`,
		Example: `  fleetd throttle 20MiB
  fleetd throttle none --api http://10.0.3.7:7080`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := replace.ParseThrottle(args[0])
			if err != nil {
				return err
			}
			c, ctx, cancel, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer cancel()
			res, err := c.SetThrottle(ctx, t)
			if api.IsStatus(err, 409) {
				fmt.Fprintln(cmd.OutOrStdout(), err.Error())
				return &codeError{code: exitNotSafe}
			}
			if err != nil {
				return err
			}
			if a.asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replacement %s: throttle %s -> %s: %s\n", res.Replacement, res.Previous, res.Throttle, res.Message)
			return nil
		},
	}
	a.register(cmd.Flags(), "daemon URL (env FLEETD_API, default "+defaultAPI+")")
	return cmd
}
