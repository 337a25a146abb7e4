// Package daemon assembles `fleetd run` from its parts: the configuration,
// the provider, the Kafka clients, the replacement executor, the controller
// and its lease, the trigger sources (internal/trigger), the HTTP API,
// metrics and tracing. It holds the glue and nothing else: every rule lives
// in the packages it wires.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/canary"
	"github.com/fleetd/fleetd/internal/config"
	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/ec2"
	"github.com/fleetd/fleetd/internal/events"
	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/lease"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/metrics"
	"github.com/fleetd/fleetd/internal/notify"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/tracing"
	"github.com/fleetd/fleetd/internal/trigger"
	"github.com/fleetd/fleetd/internal/ui"
	"github.com/fleetd/fleetd/internal/version"
)

// Options are what the command line adds to the configuration.
type Options struct {
	Log     zerolog.Logger
	Version string
	// Holder names this process in the lease (default host:pid).
	Holder string
	// Listener, if set, replaces api.listen (tests).
	Listener net.Listener
	// ControllerTick is the controller's loop period (default 5 s).
	ControllerTick time.Duration
}

// Daemon is a running fleetd.
type Daemon struct {
	cfg     *config.Config
	o       Options
	log     zerolog.Logger
	prov    replace.Provider
	cl      *kgo.Client
	store   *replace.FileStore
	exec    *replace.Executor
	ctl     *controller.Controller
	metrics *metrics.Metrics
	// notifier tells the configured receivers what happens (never blocks).
	notifier *notify.Notifier
	// hub feeds GET /v1/events (watch, --follow, the status page).
	hub *api.Hub
	// lastProgress is when progress was last streamed (at most 1/s).
	lastProgress time.Time
	tracer       *tracing.Tracer
	chaos        *trigger.Chaos
	// aws is set for provider.kind ec2.
	aws        *awsParts
	dispatcher *events.Dispatcher

	active   atomic.Bool
	loopSeen atomic.Int64 // unix nanos of the controller loop's last turn
	// ctlErr is the controller's Status.Error: readiness fails while set.
	ctlErr atomic.Value

	mu       sync.Mutex
	progress *replace.Progress
}

// Paths in state_dir.
const (
	recordsDir = "replacements"
	queueFile  = "queue.json"
	pauseFile  = "paused"
	chaosFile  = "chaos.json"
	eventsFile = "events-seen.json"
)

// Run runs fleetd until ctx ends.
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	d, closeAll, err := build(ctx, cfg, o)
	if err != nil {
		return err
	}
	defer closeAll()
	return d.run(ctx)
}

func defaultHolder() string {
	host, _ := os.Hostname()
	return host + ":" + strconv.Itoa(os.Getpid())
}

func build(ctx context.Context, cfg *config.Config, o Options) (*Daemon, func(), error) {
	if o.Holder == "" {
		o.Holder = defaultHolder()
	}
	if o.ControllerTick <= 0 {
		// Notice a lost lease well within its TTL.
		o.ControllerTick = min(5*time.Second, cfg.Lease.TTL/4)
	}
	d := &Daemon{cfg: cfg, o: o, log: o.Log.With().Str("cluster", cfg.Cluster).Logger()}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (*Daemon, func(), error) { closeAll(); return nil, nil, err }

	switch cfg.Provider.Kind {
	case "local":
		d.prov = local.NewRemote(cfg.Provider.LocalFleet)
	case "ec2":
		a, err := d.newEC2(ctx)
		if err != nil {
			return fail(err)
		}
		d.aws, d.prov = a, a.provider
	default:
		return fail(fmt.Errorf("provider.kind %q: want local or ec2", cfg.Provider.Kind))
	}
	cl, cc, closeClients, err := cfg.Kafka.Clients()
	if err != nil {
		return fail(err)
	}
	closers = append(closers, closeClients)
	d.cl = cl
	if d.store, err = replace.NewFileStore(filepath.Join(cfg.StateDir, recordsDir)); err != nil {
		return fail(err)
	}
	if cfg.Tracing.Enabled {
		if d.tracer, err = tracing.New(cfg.Tracing.Endpoint, cfg.Cluster, o.Version, d.log); err != nil {
			return fail(err)
		}
	} else {
		d.tracer = tracing.Disabled()
	}
	closers = append(closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.tracer.Shutdown(sctx)
	})
	v, rev := version.Get()
	d.metrics = metrics.New(metrics.Options{Holder: o.Holder, Version: v, Revision: rev})
	d.hub = api.NewHub()
	d.notifier = notify.New(cfg.Receivers(), notify.Options{Outcome: d.metrics.Notification, Log: d.log})
	d.metrics.Receivers(d.notifier.Receivers())
	opts := cfg.Replace.Options()
	opts.OnStep = func(r *replace.Record, t replace.StepTiming, err error) {
		d.metrics.Step(r, t, err)
		d.tracer.Step(r, t, err)
		if t.Step == replace.StepGate && err == nil {
			d.workflowStarted(r)
		}
	}
	opts.OnEvent = func(ev string, r *replace.Record) {
		if step, ok := strings.CutPrefix(ev, "after:"); ok {
			d.hub.Publish(api.TypeStep, api.StepEvent{ID: r.ID, RequestID: r.RequestID, Done: step, Next: string(r.Step), Phase: string(r.Phase)})
		}
		if d.aws == nil {
			return
		}
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := d.aws.provider.TagProgress(tctx, r); err != nil {
			replace.Logger(d.log, r).Warn().Err(err).Msg("cannot record progress in instance tags (the record in state_dir is the truth)")
		}
	}
	opts.OnProgress = func(p replace.Progress) {
		d.mu.Lock()
		d.progress = &p
		stream := time.Since(d.lastProgress) >= time.Second
		if stream {
			d.lastProgress = time.Now()
		}
		d.mu.Unlock()
		d.metrics.Progress(&p)
		if stream {
			d.hub.Publish(api.TypeProgress, p)
		}
	}
	opts.Log = d.log
	kopts, err := cfg.Kafka.Opts()
	if err != nil {
		return fail(err)
	}
	opts.Canary = canary.ForExecutor(cl, cfg.Canary.On(), canary.Options{Topic: cfg.Canary.Topic, Rate: cfg.Canary.Rate, Seeds: cfg.Kafka.Bootstrap, ClientOpts: kopts})
	d.exec = replace.New(replace.KafkaCluster{Client: cl, Controllers: cc}, d.prov, d.store, opts)
	lse, err := d.newLease(ctx)
	if err != nil {
		return fail(err)
	}
	d.ctl = controller.New(&tracedExec{d: d}, d.store, lse, controller.Options{
		Tick:        o.ControllerTick,
		RetryBase:   cfg.Gate.RetryBase,
		RetryMax:    cfg.Gate.RetryMax,
		GiveUpAfter: cfg.Gate.GiveUpAfter,
		PauseFile:   filepath.Join(cfg.StateDir, pauseFile),
		QueueFile:   filepath.Join(cfg.StateDir, queueFile),
		OnAcquire:   d.onAcquire,
		OnEvent:     d.controllerEvent,
		OnStatus: func(st controller.Status) {
			d.active.Store(st.LeaseHeld)
			d.loopSeen.Store(time.Now().UnixNano())
			d.ctlErr.Store(st.Error)
			d.metrics.Controller(o.Holder, st.LeaseHeld, st.Paused, st.Running != nil, len(st.Queue))
		},
		Log: d.log,
	})
	sched, err := cfg.ChaosSchedule()
	if err != nil {
		return fail(err)
	}
	d.chaos = &trigger.Chaos{Schedule: sched, Ctl: d.ctl, Fleet: d.prov, Records: d.store, Guard: d.exec,
		Controllers: cfg.Chaos.Controllers, ControllerMinInterval: cfg.Chaos.ControllerMinInterval,
		Path: filepath.Join(cfg.StateDir, chaosFile), Counted: d.metrics.ChaosDecision, Log: d.log}
	if d.aws != nil {
		d.chaos.Images = d.aws.provider
	}
	if err := d.chaos.Load(); err != nil {
		return fail(err)
	}
	d.seedMetrics(ctx)
	return d, closeAll, nil
}

func (d *Daemon) newLease(ctx context.Context) (controller.Lease, error) {
	switch d.cfg.Lease.Kind {
	case "dynamodb":
		awsCfg, err := ec2.LoadConfig(ctx, ec2.ConfigOptions{Region: d.cfg.AWS.Region, Log: &d.log})
		if err != nil {
			return nil, err
		}
		return &lease.DynamoDB{Client: dynamodb.NewFromConfig(awsCfg), Table: d.cfg.Lease.Table, Name: d.cfg.Cluster, Holder: d.o.Holder, TTL: d.cfg.Lease.TTL}, nil
	default:
		return &lease.File{Path: d.cfg.Lease.Path, Holder: d.o.Holder}, nil
	}
}

// onAcquire runs when this process becomes active: throttles that a dead
// holder's finished replacements left behind are removed, and on EC2 the
// instance tags are checked for a replacement in flight whose record this
// process cannot see (it pauses then: see orphans).
func (d *Daemon) onAcquire(ctx context.Context) (pause string, err error) {
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if d.aws != nil {
		insts, err := d.aws.provider.Instances(sctx)
		if err != nil {
			return "", fmt.Errorf("check instance tags for replacements in flight: %w", err)
		}
		if pause, err = orphans(sctx, insts, d.store, d.cfg.StateDir); err != nil {
			return "", err
		}
	}
	n, err := replace.SweepThrottles(sctx, d.exec.Cluster, d.store)
	switch {
	case err != nil:
		d.log.Error().Err(err).Msg("start-up throttle sweep failed; it runs again at the next takeover, and each replacement removes its own")
	case n > 0:
		d.log.Warn().Int("records", n).Msg("removed throttles left behind by finished replacements")
	}
	if recs, err := d.store.List(sctx); err == nil {
		d.metrics.ThrottlesSwept(recs)
	}
	return pause, nil
}

// seedMetrics restores what the metrics say about the past from history.
func (d *Daemon) seedMetrics(ctx context.Context) {
	d.metrics.ChaosEnabled(d.chaos.Schedule.Enabled && !d.chaos.Schedule.Leashed)
	if recs, err := d.store.List(ctx); err == nil {
		d.metrics.Seed(recs)
	}
}

// probeEvery is how often the daemon looks at the cluster on its own, for
// the gate and partition metrics (a status request looks too).
const probeEvery = 30 * time.Second

// probe looks at the cluster every probeEvery until ctx ends.
func (d *Daemon) probe(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		if cst, err := d.ctl.Status(pctx); err == nil {
			_, _, _ = d.look(pctx, cst.Running)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// look takes a snapshot and the gate's verdict on it (the running
// workflow's own moves excused), and tells the metrics.
func (d *Daemon) look(ctx context.Context, running *replace.Record) (*health.Snapshot, health.Verdict, error) {
	snap, err := health.Collect(ctx, d.cl)
	if err != nil {
		v := health.Verdict{Blockers: []health.Reason{{Code: health.CodeCannotEvaluate, Message: err.Error()}}}
		d.metrics.Gate(v)
		return nil, v, err
	}
	pol := health.Policy{}
	if running != nil {
		pol.Own = running.Own()
	}
	v := health.CanDisrupt(snap, pol)
	d.metrics.Gate(v)
	d.metrics.Cluster(snap)
	return snap, v, nil
}

func (d *Daemon) run(ctx context.Context) error {
	l := d.o.Listener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", d.cfg.API.Listen); err != nil {
			return fmt.Errorf("api.listen %s: %w", d.cfg.API.Listen, err)
		}
	}
	srv := &api.Server{Backend: d, Token: d.cfg.API.Token, Metrics: d.metrics.Handler(), Log: d.log, Events: d.hub, UI: ui.Handler()}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Go(func() {
		if err := srv.Serve(ctx, l); err != nil {
			errc <- fmt.Errorf("api: %w", err)
		}
	})
	wg.Go(func() {
		if err := d.ctl.Run(ctx); err != nil {
			errc <- fmt.Errorf("controller: %w", err)
		}
	})
	sources, err := d.sources()
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	names := make([]string, len(sources))
	for i, src := range sources {
		names[i] = src.Name
		wg.Go(func() { src.Run(ctx) })
	}
	wg.Go(func() { d.probe(ctx) })
	wg.Go(func() { d.notifier.Run(ctx) })
	d.log.Info().Str("listen", l.Addr().String()).Str("holder", d.o.Holder).Str("provider", d.cfg.Provider.Kind).Strs("triggers", names).
		Strs("notify", d.notifier.Receivers()).Bool("chaos", d.chaos.Schedule.Enabled).Bool("leashed", d.chaos.Schedule.Leashed).Str("version", d.o.Version).Msg("fleetd running")
	select {
	case <-ctx.Done():
	case err = <-errc:
		cancel()
	}
	wg.Wait()
	d.log.Info().Msg("fleetd stopped")
	return err
}

// tracedExec wraps the executor with the replacement's trace and metrics.
type tracedExec struct{ d *Daemon }

func (t *tracedExec) Begin(ctx context.Context, req replace.Request) (*replace.Record, error) {
	return t.d.exec.Begin(ctx, req)
}

func (t *tracedExec) Run(ctx context.Context, r *replace.Record) error {
	ctx = t.d.tracer.Begin(ctx, r, len(r.Steps) > 0)
	defer func() {
		t.d.mu.Lock()
		t.d.progress = nil
		t.d.mu.Unlock()
		t.d.metrics.Progress(nil)
	}()
	err := t.d.exec.Run(ctx, r)
	t.d.tracer.End(r)
	if r.Phase.Terminal() {
		t.d.metrics.Finished(r)
		t.d.workflowEnded(r)
	}
	return err
}

func (t *tracedExec) Abort(reason string) { t.d.exec.Abort(reason) }

func (t *tracedExec) SetThrottle(ctx context.Context, th replace.Throttle) (replace.ThrottleResult, error) {
	return t.d.exec.SetThrottle(ctx, th)
}

func (t *tracedExec) Reopen(ctx context.Context, r *replace.Record, req replace.Request) error {
	return t.d.exec.Reopen(ctx, r, req)
}

var errLoopStalled = errors.New("the controller loop has not turned recently")

// sources lists every trigger source this fleetd runs, in one place: the
// chaos schedule, the EventBridge queue, the DescribeInstanceStatus poll and
// AMI drift, each when configured. Each acts only while this process holds
// the lease.
func (d *Daemon) sources() ([]trigger.Source, error) {
	var out []trigger.Source
	if d.chaos.Schedule.Enabled {
		out = append(out, trigger.Source{Name: "chaos", Run: func(ctx context.Context) {
			d.chaos.Run(ctx, d.cfg.Chaos.CheckInterval, d.active.Load)
		}})
	}
	evs, err := d.eventSources()
	if err != nil {
		return nil, err
	}
	out = append(out, evs...)
	if d.aws != nil && d.cfg.AMIDrift.Enabled {
		drift := &trigger.Drift{Ctl: d.ctl, Fleet: d.aws.provider, Images: d.aws.provider, Records: d.store,
			Window: d.chaos.Schedule.Window, MinInterval: d.cfg.Chaos.MinInterval, Log: d.log}
		out = append(out, trigger.Source{Name: "ami-drift", Run: func(ctx context.Context) {
			drift.Run(ctx, d.cfg.AMIDrift.Interval, d.active.Load)
		}})
	}
	return out, nil
}
