package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/canary"
	"github.com/fleetd/fleetd/internal/config"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/replace"
)

// pauseAtEvent, when set (only by this package's tests), makes replace stop
// dead at that durable event so a test can SIGKILL it there.
var pauseAtEvent string

const replaceLong = `Replace one broker, or one KRaft controller, end to end.

Strategy "move" (the default for a serving broker) launches a new broker with a
new node id in the same zone, moves the old broker's replicas to it one for
one under a replication throttle (up to --concurrency moves in flight, the next
submitted as soon as one is done; more while they are small), steers Kafka's
configured rate so that the copy achieves the throttle, keeps the new broker
last in every replica list until the whole copy is done (so it leads nothing
while copying), then moves it to the old one's place and restores preferred
leaders a few at a time, removes the throttles, and only
when the cluster's metadata shows the old broker empty, shuts it down,
terminates it and unregisters its id. Redundancy never drops.

Strategy "identity" (the default for a dead broker) terminates the old
instance and launches a new one with the same node id and an empty disk; Kafka
re-replicates. Asked for a serving broker, it is allowed only when stopping it
takes no partition below min.insync.replicas.

--controller N replaces a KRaft controller of a dynamic quorum (kraft.version
1): a new controller in the same zone joins as an observer, is added as a voter
once caught up (AddRaftVoter), then the old one is removed (RemoveRaftVoter) and
its instance stopped and terminated. One voter change at a time, and never one
that leaves fewer caught-up voters than a majority. A static quorum is refused
with the upgrade path.

Every step is recorded in --state-dir before the next begins. If fleetd is
killed, run the same command again: it resumes the replacement in flight (or
finishes rolling it back). Throttles left by a crashed run are removed at
start-up. Interrupting (Ctrl-C) leaves the replacement resumable.

Exit codes: 0 replaced, 1 refused or rolled back (nothing lost; reasons
printed), 2 error or failed (a person should look; the record says where),
130 interrupted (run the same command again to resume).`

type replaceFlags struct {
	kf          kafkaFlags
	broker      int32
	controller  int32
	strategy    string
	dryRun      bool
	localFleet  string
	stateDir    string
	canary      bool
	canaryTopic string
	throttle    string
	throttleMax string
	targetP99   time.Duration
	concurrency int
	order       string
	poll        time.Duration
	reason      string
	asJSON      bool
	follow      bool
	api         apiFlags
}

// localOnly are the replace flags that only mean something when this
// process replaces the broker itself; the daemon has its own.
var localOnly = []string{"local-fleet", "state-dir", "poll", "config", "bootstrap", "tls", "tls-ca", "tls-cert", "tls-key", "tls-server-name", "sasl-mechanism", "sasl-username", "timeout", "canary", "canary-topic", "throttle-max", "target-p99"}

func defaultStateDir() string {
	if d := os.Getenv("FLEETD_STATE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "fleetd")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".fleetd"
	}
	return filepath.Join(home, ".local", "state", "fleetd")
}

func newReplaceCmd() *cobra.Command {
	var f replaceFlags
	cmd := &cobra.Command{
		Use:   "replace --broker N | --controller N",
		Short: "Replace a broker (move its replicas to a new one, or restore a dead one's identity) or a KRaft controller",
		Long:  replaceLong,
		Example: `  fleetd local up &                       # a local fleet to practise on
  fleetd replace --broker 2 --dry-run     # show the plan, change nothing
  fleetd replace --broker 2 --throttle 20MiB
  fleetd replace --broker 3 --strategy identity
  fleetd replace --controller 9001 --dry-run   # a KRaft controller: gate and voters
  fleetd replace --broker 2 --api http://127.0.0.1:7080   # queue it with the daemon`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			if err := f.nodeFromFlags(fs); err != nil {
				return err
			}
			if f.api.useDaemon(fs, []string{"local-fleet"}, "FLEETD_LOCAL_FLEET") {
				req, err := f.apiRequest(fs)
				if err != nil {
					return err
				}
				f.api.asJSON = f.asJSON
				return daemonReplace(cmd, f.api, req, f.follow)
			}
			if f.follow {
				return errors.New("--follow follows a replacement the daemon runs: use it with --api (or FLEETD_API); a replacement in this process shows its progress anyway")
			}
			return runReplace(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f, nodeSet(fs))
		},
	}
	fs := cmd.Flags()
	f.kf.register(fs)
	fs.Int32Var(&f.broker, "broker", -1, "node id of the broker to replace")
	fs.Int32Var(&f.controller, "controller", -1, "node id of the KRaft controller to replace (dynamic quorum)")
	fs.StringVar(&f.strategy, "strategy", "", `"move" or "identity" (default: move if the broker serves, identity if it is dead); a controller has its own workflow`)
	fs.BoolVar(&f.dryRun, "dry-run", false, "run the gate and print the plan; change nothing")
	fs.BoolVar(&f.follow, "follow", false, "with --api: follow the queued request live until its replacement ends (as fleetd watch; the exit code says how it ended)")
	fs.BoolVar(&f.canary, "canary", true, "run the canary: sequenced acks=all records written to --canary-topic and read back during the replacement; the verdict goes in the record")
	fs.StringVar(&f.canaryTopic, "canary-topic", canary.DefaultTopic, "the canary's own topic (created if missing; never a user topic)")
	fs.StringVar(&f.localFleet, "local-fleet", os.Getenv("FLEETD_LOCAL_FLEET"), "control API URL of a local fleet (fleetd local up prints it; env FLEETD_LOCAL_FLEET)")
	fs.StringVar(&f.stateDir, "state-dir", defaultStateDir(), "where replacement records are kept (env FLEETD_STATE_DIR)")
	def := replace.DefaultOptions()
	fs.StringVar(&f.throttle, "throttle", def.Throttle.String(), `replication throttle per second, e.g. 20MiB or 100MB, or "none" for no throttle (with --api: the daemon's replace.throttle unless given)`)
	fs.StringVar(&f.throttleMax, "throttle-max", "", "with --target-p99: an adaptive throttle from --throttle up to this rate (e.g. 200MiB), raised while producers are healthy, halved when the canary's p99 passes --target-p99 or a partition not moving is under min ISR")
	fs.DurationVar(&f.targetP99, "target-p99", 0, "with --throttle-max: the canary's produce p99 the adaptive throttle keeps under (e.g. 200ms)")
	fs.IntVar(&f.concurrency, "concurrency", def.Plan.Concurrency, "partition moves in flight at once; small ones are admitted beyond it while the window holds under 10 s of copying (with --api: the daemon's unless given)")
	fs.StringVar(&f.order, "order", string(def.Plan.Order), "move order: "+orderNames()+" (with --api: the daemon's unless given)")
	fs.DurationVar(&f.poll, "poll", def.Poll, "how often progress is checked")
	fs.StringVar(&f.reason, "reason", "", "why, kept with the request and its record")
	fs.BoolVar(&f.asJSON, "json", false, "print the final record (or the dry-run plan) as JSON")
	f.api.registerURL(fs, "queue the request with a running fleetd (its URL; env FLEETD_API unless --local-fleet) instead of replacing from this process")
	return cmd
}

// nodeFromFlags reads --controller: the node to replace and the controller
// workflow, instead of --broker and a broker strategy.
func (f *replaceFlags) nodeFromFlags(fs *pflag.FlagSet) error {
	if !fs.Changed("controller") {
		return nil
	}
	if fs.Changed("broker") {
		return errors.New("--broker and --controller name the node to replace: give one")
	}
	if fs.Changed("strategy") && f.strategy != string(replace.StrategyController) {
		return fmt.Errorf("--strategy %s is for brokers; a controller is replaced by its own workflow", f.strategy)
	}
	f.broker, f.strategy = f.controller, string(replace.StrategyController)
	return nil
}

func nodeSet(fs *pflag.FlagSet) bool { return fs.Changed("broker") || fs.Changed("controller") }

func orderNames() string {
	s := make([]string, len(replace.Orders))
	for i, o := range replace.Orders {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

// apiRequest is the request --api sends: every flag given that the daemon
// can carry out, and an error for one it cannot (never silence).
func (f *replaceFlags) apiRequest(fs *pflag.FlagSet) (api.ReplaceRequest, error) {
	if !nodeSet(fs) {
		return api.ReplaceRequest{}, errors.New("--broker or --controller is required")
	}
	for _, name := range localOnly {
		if fs.Changed(name) {
			return api.ReplaceRequest{}, fmt.Errorf("--%s cannot apply with --api (or FLEETD_API): the daemon uses its own configuration for it; drop the flag, or replace from this process with --local-fleet", name)
		}
	}
	req := api.ReplaceRequest{Broker: &f.broker, Strategy: f.strategy, DryRun: f.dryRun, Reason: f.reason}
	if fs.Changed("throttle") {
		t, err := parseThrottle(f.throttle)
		if err != nil {
			return req, err
		}
		req.Throttle = t
	}
	if fs.Changed("concurrency") {
		if f.concurrency < 1 {
			return req, fmt.Errorf("--concurrency %d: want at least 1", f.concurrency)
		}
		req.Concurrency = f.concurrency
	}
	if fs.Changed("order") {
		req.Order = replace.Order(f.order)
	}
	return req, checkReplaceFlags(req.Strategy, replace.Order(f.order))
}

// checkReplaceFlags asks replace.CheckRequest, naming the flag.
func checkReplaceFlags(strategy string, order replace.Order) error {
	if err := replace.CheckRequest(replace.Request{Strategy: replace.Strategy(strategy), Order: order}); err != nil {
		return fmt.Errorf("--%w", err)
	}
	return nil
}

func parseThrottle(s string) (replace.Throttle, error) {
	v, err := replace.ParseThrottle(s)
	if err != nil {
		return v, fmt.Errorf("--throttle: %w", err)
	}
	return v, nil
}

// adaptiveFlags reads --throttle-max and --target-p99 into an adaptive
// throttle starting at --throttle (nil when neither is given).
func adaptiveFlags(min replace.Throttle, maxRate string, p99 time.Duration) (*replace.Adaptive, error) {
	if maxRate == "" && p99 == 0 {
		return nil, nil
	}
	lo, ok := min.BytesPerSec()
	if maxRate == "" || p99 <= 0 || !ok {
		return nil, errors.New("an adaptive throttle needs --throttle RATE (its start and min), --throttle-max RATE and --target-p99 DURATION")
	}
	hi, err := replace.ParseThrottle(maxRate)
	hiBps, isRate := hi.BytesPerSec()
	if err != nil || !isRate {
		return nil, fmt.Errorf("--throttle-max %q: want a rate like 200MiB", maxRate)
	}
	a := &replace.Adaptive{Min: lo, Max: hiBps, TargetP99: p99}
	if err := a.Check(); err != nil {
		return nil, fmt.Errorf("--throttle, --throttle-max, --target-p99: %w", err)
	}
	return a, nil
}

func runReplace(ctx context.Context, out, errOut io.Writer, f replaceFlags, brokerSet bool) error {
	throttle, err := parseThrottle(f.throttle)
	if err != nil {
		return err
	}
	if err := checkReplaceFlags(f.strategy, replace.Order(f.order)); err != nil {
		return err
	}
	if f.concurrency < 1 {
		return fmt.Errorf("--concurrency %d: want at least 1", f.concurrency)
	}
	if f.localFleet == "" {
		return errors.New("no infrastructure to act on: give --local-fleet URL (from `fleetd local up`); the EC2 provider runs under `fleetd run`")
	}
	remote := local.NewRemote(f.localFleet)
	var fleetControllers []string
	if len(f.kf.bootstrap) == 0 && f.kf.configPath == "" && os.Getenv("FLEETD_KAFKA_BOOTSTRAP") == "" {
		ci, err := remote.Cluster(ctx)
		if err != nil {
			return fmt.Errorf("ask the local fleet for its bootstrap servers: %w", err)
		}
		f.kf.bootstrap = ci.Bootstrap
		fleetControllers = ci.Controllers
	}
	s, err := f.kf.settings()
	if err != nil {
		return err
	}
	if len(s.Controllers) == 0 {
		s.Controllers = fleetControllers
	}
	cl, cc, closeClients, err := s.Clients()
	if err != nil {
		return err
	}
	defer closeClients()
	store, err := replace.NewFileStore(f.stateDir)
	if err != nil {
		return err
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: errOut, TimeFormat: "15:04:05", NoColor: !isTerminal(errOut)}).With().Timestamp().Logger()
	view := newProgressView(out)
	rc := config.Replace{Throttle: config.Throttle{Throttle: throttle}, Concurrency: f.concurrency, Order: replace.Order(f.order), Poll: f.poll}
	if rc.Throttle.Adaptive, err = adaptiveFlags(throttle, f.throttleMax, f.targetP99); err != nil {
		return err
	}
	rc.Defaults()
	opts := rc.Options()
	opts.Log, opts.OnProgress = log, view.progress
	opts.OnEvent = func(ev string, r *replace.Record) {
		view.event(ev, r)
		if pauseAtEvent != "" && (ev == pauseAtEvent || strings.HasSuffix(pauseAtEvent, ":") && strings.HasPrefix(ev, pauseAtEvent)) {
			fmt.Fprintf(out, "FLEETD-PAUSED %s\n", ev)
			<-ctx.Done() // wait here to be killed
		}
	}
	if kopts, err := s.Opts(); err == nil {
		opts.Canary = canary.ForExecutor(cl, f.canary, canary.Options{Topic: f.canaryTopic, Rate: 20, Seeds: s.Bootstrap, ClientOpts: kopts})
	}
	ex := replace.New(replace.KafkaCluster{Client: cl, Controllers: cc}, remote, store, opts)

	if n, err := replace.SweepThrottles(ctx, ex.Cluster, store); err != nil {
		return fmt.Errorf("start-up sweep of leftover throttles: %w", err)
	} else if n > 0 {
		log.Warn().Int("records", n).Msg("removed throttles left by a crashed run")
	}
	inflight, err := replace.InFlight(ctx, store)
	if err != nil {
		return err
	}
	if f.dryRun {
		if !brokerSet {
			return errors.New("--broker or --controller is required")
		}
		rec, err := ex.Preview(ctx, replace.Request{Broker: f.broker, Strategy: replace.Strategy(f.strategy), Reason: f.reason})
		if err != nil {
			return err
		}
		printPreview(out, rec, f.asJSON)
		if rec.Phase == replace.PhaseRefused {
			return &codeError{code: exitNotSafe}
		}
		return nil
	}
	var rec *replace.Record
	switch {
	case len(inflight) > 0:
		rec = inflight[0]
		if brokerSet && rec.OldBroker != f.broker {
			return fmt.Errorf("replacement %s of %s is in flight (step %s); one replacement at a time: run again without --broker or --controller to resume it", rec.ID, nodeName(rec), rec.Step)
		}
		fmt.Fprintf(out, "resuming replacement %s of %s at step %s (%s)\n", rec.ID, nodeName(rec), rec.Step, rec.Phase)
	case !brokerSet:
		return errors.New("--broker or --controller is required (no replacement is in flight to resume)")
	default:
		rec, err = ex.Begin(ctx, replace.Request{Broker: f.broker, Strategy: replace.Strategy(f.strategy), Reason: f.reason})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "replacement %s of %s started\n", rec.ID, nodeName(rec))
	}
	runErr := ex.Run(ctx, rec)
	if ctx.Err() != nil {
		fmt.Fprintf(out, "interrupted at step %s; run the same command again to resume\n", rec.Step)
		return ctx.Err()
	}
	view.stop()
	printSummary(out, rec, f.asJSON)
	switch rec.Phase {
	case replace.PhaseCompleted:
		return nil
	case replace.PhaseRefused, replace.PhaseRolledBack:
		return &codeError{code: exitNotSafe}
	default:
		return &codeError{code: exitError, err: runErr}
	}
}

func printPreview(w io.Writer, r *replace.Record, asJSON bool) {
	if asJSON {
		_ = printJSON(w, r)
		return
	}
	if len(r.Lost) > 0 {
		names := make([]string, len(r.Lost))
		for i, tp := range r.Lost {
			names[i] = tp.String()
		}
		fmt.Fprintf(w, "DATA LOST: %d partitions had every in-sync replica on dead brokers; no replacement brings their data back: %s\n", len(r.Lost), strings.Join(names, ", "))
	}
	if r.Phase == replace.PhaseRefused {
		fmt.Fprintf(w, "refused: %s\n", r.Error)
		return
	}
	if r.Strategy == replace.StrategyController {
		fmt.Fprintf(w, "plan: replace controller %d (%s, zone %s, directory %s)\n", r.OldBroker, r.OldInstance, r.Zone, r.OldDirectory)
		fmt.Fprintf(w, "  voters now %v; a new controller joins as an observer, is added once caught up, then %d is removed\n", r.Voters, r.OldBroker)
		return
	}
	fmt.Fprintf(w, "plan: replace broker %d (%s, zone %s) with strategy %s\n", r.OldBroker, r.OldInstance, r.Zone, r.Strategy)
	if r.DeadlineDecision != "" {
		fmt.Fprintf(w, "  deadline %s: %s\n", r.Deadline.Local().Format(time.RFC3339), r.DeadlineDecision)
	}
	if r.Plan == nil {
		fmt.Fprintf(w, "  a new instance takes node id %d with an empty disk; Kafka re-replicates its partitions\n", r.NewBroker)
		return
	}
	p := r.Plan
	fmt.Fprintf(w, "  new broker %d, %d partitions, up to %d moves in flight (more while they are small), %s to copy", p.New, p.Partitions, p.Options.Concurrency, humanize.IBytes(uint64(p.TotalBytes)))
	if p.ETA > 0 {
		fmt.Fprintf(w, ", about %s at %s/s (%s)", p.ETA, humanize.IBytes(uint64(p.Options.Throttle)), p.ETABasis)
	}
	fmt.Fprintln(w)
	if p.TieredNote != "" {
		fmt.Fprintf(w, "  tiered storage: %s\n", p.TieredNote)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tPARTITION\tFROM\tCOPY AS\tTO\tBYTES")
	for i, m := range p.Moves {
		fmt.Fprintf(tw, "  %d\t%s\t%v\t%v\t%v\t%s\n", i+1, m.TP, m.From, m.CopyTarget(), m.To, humanize.IBytes(uint64(m.Bytes)))
	}
	tw.Flush()
}

// nodeName is "broker N" or "controller N".
func nodeName(r *replace.Record) string {
	if r.Strategy == replace.StrategyController {
		return fmt.Sprintf("controller %d", r.OldBroker)
	}
	return fmt.Sprintf("broker %d", r.OldBroker)
}

func printSummary(w io.Writer, r *replace.Record, asJSON bool) {
	if asJSON {
		_ = printJSON(w, r)
		return
	}
	fmt.Fprintf(w, "\nreplacement %s: %s\n", r.ID, r.Phase)
	if r.Error != "" {
		fmt.Fprintf(w, "  reason: %s\n", r.Error)
	}
	fmt.Fprintf(w, "  broker %d (%s) -> broker %d (%s), strategy %s\n", r.OldBroker, r.OldInstance, r.NewBroker, r.NewInstance, r.Strategy)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STEP\tWALL TIME")
	var total, move time.Duration
	for _, s := range r.Steps {
		fmt.Fprintf(tw, "  %s\t%s\n", s.Step, s.Duration().Round(10*time.Millisecond))
		total += s.Duration()
		if s.Step == replace.StepMove {
			move += s.Duration()
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "  total %s, moved %s", total.Round(10*time.Millisecond), humanize.IBytes(uint64(r.BytesMoved)))
	if move > 0 && r.BytesMoved > 0 {
		fmt.Fprintf(w, " at %.1f MB/s effective", float64(r.BytesMoved)/move.Seconds()/1e6)
	}
	fmt.Fprintln(w)
	printCanary(w, r.Canary)
}

// printCanary prints a record's canary verdict.
func printCanary(w io.Writer, v *replace.CanaryVerdict) {
	switch {
	case v == nil:
		return
	case v.Error != "" && v.Acked == 0:
		fmt.Fprintf(w, "  canary: no verdict (%s)\n", v.Error)
		return
	}
	verdict := "verified"
	if !v.Verified {
		verdict = "VERIFICATION FAILED"
		if v.Error != "" {
			verdict = "incomplete: " + v.Error
		}
	}
	partial := ""
	if v.Partial {
		partial = " (since this fleetd resumed it)"
	}
	fmt.Fprintf(w, "  canary %s: %s%s: acked %d, observed %d, lost %d, duplicated %d\n", v.Topic, verdict, partial, v.Acked, v.Observed, v.Lost, v.Duplicated)
	fmt.Fprintf(w, "  canary produce p50/p99: before %.1f/%.1f ms, during %.1f/%.1f ms, after %.1f/%.1f ms\n",
		v.Before.P50Ms, v.Before.P99Ms, v.During.P50Ms, v.During.P99Ms, v.After.P50Ms, v.After.P99Ms)
}

// progressView prints live progress, at most one line every two seconds.
type progressView struct {
	mu   sync.Mutex
	w    io.Writer
	last time.Time
	done bool
}

func newProgressView(w io.Writer) *progressView { return &progressView{w: w} }

func (v *progressView) progress(p replace.Progress) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.done || time.Since(v.last) < 2*time.Second {
		return
	}
	v.last = time.Now()
	stalled := ""
	if p.Stalled {
		stalled = "  STALLED"
	}
	extra := ""
	if p.InFlight > 0 {
		extra += fmt.Sprintf("  in flight %d", p.InFlight)
	}
	if p.BytesPerSec > 0 {
		extra += fmt.Sprintf("  %s/s", humanize.IBytes(uint64(p.BytesPerSec)))
	}
	if p.AppliedRate > 0 {
		extra += fmt.Sprintf(" (throttle %s, configured %s/s)", p.Throttle, humanize.IBytes(uint64(p.AppliedRate)))
	}
	if p.ETASeconds > 0 {
		extra += fmt.Sprintf("  ETA %s", time.Duration(p.ETASeconds)*time.Second)
	}
	if p.UnderReplicated > 0 {
		extra += fmt.Sprintf("  under-replicated %d", p.UnderReplicated)
	}
	fmt.Fprintf(v.w, "  [%s] partitions %d/%d  copied %s/%s%s%s\n", p.Step, p.PartitionsDone, p.Partitions,
		humanize.IBytes(uint64(max(p.BytesCopied, 0))), humanize.IBytes(uint64(max(p.BytesTotal, 0))), extra, stalled)
	for _, b := range p.Behind {
		fmt.Fprintf(v.w, "      behind its writes: %s\n", b)
	}
}

func (v *progressView) event(ev string, r *replace.Record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if step, ok := strings.CutPrefix(ev, "after:"); ok && !v.done {
		fmt.Fprintf(v.w, "  done: %-20s next: %s\n", step, r.Step)
	}
}

func (v *progressView) stop() {
	v.mu.Lock()
	v.done = true
	v.mu.Unlock()
}
