// Command fleetd-bench measures a real replacement on a local fleet and
// prints a Markdown report (scripts/bench.sh puts it in docs/benchmarks.md):
//
//   - a move of a broker holding at least 1 GiB at throttle T: wall time per
//     step and the copy phase against the ideal bytes/T;
//   - Kafka's own kafka-reassign-partitions (kafka-tools from Maven Central,
//     the same version) doing the same 1:1 move at the same throttle, in the
//     same run, alternating with fleetd, three runs each;
//   - latency from Kafka's own ProducerPerformance during each copy,
//     three rounds alternating tool, fleetd and fleetd with the adaptive
//     throttle, beside idle runs;
//   - with -small, 2,000 partitions of 100 kB against 200 of 1 MB (fleetd
//     and the tool), and an identity replacement's throttled catch-up;
//   - with -controllers, each of three KRaft controllers replaced in turn,
//     wall time per step, beside the bare runbook of the same Kafka calls.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetd/fleetd/internal/canary"
	"github.com/fleetd/fleetd/internal/config"
	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/kclient"
	"github.com/fleetd/fleetd/internal/ledger"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/workload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	data := flag.String("data", "1200MB", "data per broker (RF 3 on 3 brokers: every broker holds it all)")
	throttle := flag.String("throttle", "50MiB", "replication throttle per second")
	awsOnly := flag.Bool("aws", false, "run the AWS benchmark (fleetd run against moto) instead")
	controllers := flag.Bool("controllers", false, "run the controller replacement benchmark instead")
	small := flag.Bool("small", false, "run the many-small-partitions and identity catch-up benchmarks instead")
	only := flag.String("only", "", "with -small: run only the layouts whose name contains this (e.g. \"one topic\"), and no identity catch-up, or \"identity\" for only the identity catch-up; for diagnosis, not for docs/benchmarks.md")
	debug := flag.Bool("debug", false, "log fleetd's executor at debug level to stderr")
	flag.Parse()
	if *debug {
		benchLevel = zerolog.DebugLevel
	}
	if *small {
		if err := runSmall(ctx, os.Stdout, *throttle, *only); err != nil {
			fmt.Fprintln(os.Stderr, "fleetd-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *controllers {
		if err := runControllers(ctx, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "fleetd-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *awsOnly {
		if err := runAWS(ctx, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "fleetd-bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Stdout, *data, *throttle); err != nil {
		fmt.Fprintln(os.Stderr, "fleetd-bench:", err)
		os.Exit(1)
	}
}

type result struct {
	name     string
	side     string // tool, fleetd, adaptive
	rec      *replace.Record
	bytes    int64
	copyTime time.Duration
	total    time.Duration
	// perf is ProducerPerformance run from the copy's start for about the
	// ideal copy time: its latencies fall in the copy phase.
	perf perfResult
}

// benchLevel is the level of fleetd's logs on stderr (-debug lowers it).
var benchLevel = zerolog.WarnLevel

// perfRate is the independent producer's rate (records of 1 KiB).
const perfRate = 200

func run(ctx context.Context, out io.Writer, dataS, throttleS string) error {
	data, err := humanize.ParseBytes(dataS)
	if err != nil {
		return err
	}
	rate, err := humanize.ParseBytes(throttleS)
	if err != nil {
		return err
	}
	log := zerolog.New(os.Stderr).Level(benchLevel).With().Timestamp().Logger()
	fleet, err := local.Up(ctx, local.Options{Log: log}, 3)
	if err != nil {
		return err
	}
	defer fleet.Close()
	conn := kclient.Settings{Bootstrap: fleet.Bootstrap(), Controllers: fleet.QuorumBootstrap()}
	cl, cc, closeClients, err := conn.Clients()
	if err != nil {
		return err
	}
	defer closeClients()
	const topic, perfTopic = "bench", "bench-perf"
	for _, t := range []workload.Topic{{Name: topic, Partitions: 12, ReplicationFactor: 3, MinInsyncReplicas: 2}, {Name: perfTopic, Partitions: 6, ReplicationFactor: 3, MinInsyncReplicas: 2}} {
		if err := workload.CreateTopic(ctx, kadm.NewClient(cl), t, time.Minute); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "loading %s\n", humanize.Bytes(data))
	fillStart := time.Now()
	if err := workload.Fill(ctx, fleet.Bootstrap(), topic, int64(data), workload.FillOptions{}); err != nil {
		return err
	}
	fillTime := time.Since(fillStart)
	ideal := func(b int64) time.Duration { return time.Duration(float64(b) / float64(rate) * float64(time.Second)) }
	// ProducerPerformance runs for 0.9 of the ideal copy time from the
	// copy's start: inside the copy phase, whoever copies.
	perfRecords := int(ideal(int64(data)).Seconds() * 0.9 * perfRate)

	store, err := replace.NewFileStore(filepath.Join(fleet.Dir(), "state"))
	if err != nil {
		return err
	}
	provider := local.NewProvider(fleet)
	lowest := func() (int32, int32, error) { return lowestBroker(ctx, cl) }
	fleetdOnce := func(name, side string, adaptive *replace.Adaptive) (result, error) {
		broker, _, err := lowest()
		if err != nil {
			return result{}, err
		}
		fmt.Fprintf(os.Stderr, "%s: replacing broker %d\n", name, broker)
		rc := config.Replace{Throttle: config.Throttle{Throttle: replace.Rate(int64(rate)), Adaptive: adaptive}, Poll: time.Second, RegisterTimeout: 2 * time.Minute}
		if adaptive != nil {
			rc.Throttle.Throttle = replace.Rate(adaptive.Min)
		}
		rc.Defaults()
		opts := rc.Options()
		opts.Log, opts.StopTimeout = log, time.Minute
		opts.Canary = canary.ForExecutor(cl, true, canary.Options{Seeds: fleet.Bootstrap()})
		var wait func() (perfResult, error)
		opts.OnEvent = func(ev string, _ *replace.Record) {
			if ev == "after:"+string(replace.StepThrottle) && wait == nil { // the move starts now
				wait = perfAsync(ctx, fleet.Bootstrap(), perfTopic, perfRecords, perfRate)
			}
		}
		ex := replace.New(replace.KafkaCluster{Client: cl, Controllers: cc}, provider, store, opts)
		res := result{name: name, side: side}
		var runErr error
		_, err = ledgerAround(ctx, fleet, topic, func() error {
			rec, err := ex.Begin(ctx, replace.Request{Broker: broker, Strategy: replace.StrategyMove, Triggers: []replace.Trigger{replace.TriggerBench}})
			if err != nil {
				return err
			}
			res.rec = rec
			runErr = ex.Run(ctx, rec)
			return nil
		})
		if wait != nil {
			p, perr := wait()
			if perr != nil && err == nil {
				err = perr
			}
			res.perf = p
		}
		if err != nil {
			return res, err
		}
		if runErr != nil {
			return res, runErr
		}
		res.bytes = res.rec.BytesMoved
		for _, s := range res.rec.Steps {
			if s.Step == replace.StepMove {
				res.copyTime += s.Duration()
			}
			res.total += s.Duration()
		}
		return res, nil
	}
	toolOnce := func(name string) (result, error) {
		broker, top, err := lowest()
		if err != nil {
			return result{}, err
		}
		res := result{name: name, side: "tool"}
		fmt.Fprintf(os.Stderr, "%s: replacing broker %d\n", res.name, broker)
		var wait func() (perfResult, error)
		_, err = ledgerAround(ctx, fleet, topic, func() error {
			var err error
			_, res.copyTime, res.bytes, err = toolReplace(ctx, fleet, provider, cl, broker, top+1, int64(rate), func() {
				wait = perfAsync(ctx, fleet.Bootstrap(), perfTopic, perfRecords, perfRate)
			})
			return err
		})
		if wait != nil {
			p, perr := wait()
			if perr != nil && err == nil {
				err = perr
			}
			res.perf = p
		}
		return res, err
	}
	var idle []perfResult
	idleOnce := func() error {
		fmt.Fprintf(os.Stderr, "idle: ProducerPerformance without a replacement\n")
		p, err := producerPerf(ctx, fleet.Bootstrap(), perfTopic, perfRecords, perfRate)
		idle = append(idle, p)
		return err
	}
	// A first run warms the JVMs and the page cache (its p99 was 10x the
	// next ones'); it is not reported.
	fmt.Fprintf(os.Stderr, "warm-up: ProducerPerformance\n")
	if _, err := producerPerf(ctx, fleet.Bootstrap(), perfTopic, perfRecords, perfRate); err != nil {
		return err
	}
	if err := idleOnce(); err != nil {
		return err
	}
	// The adaptive throttle: from a fifth of the throttle to twice it,
	// keeping the canary's p99 under twice the idle p99 ProducerPerformance
	// saw.
	target := max(2*idle[0].p99, 50*time.Millisecond)
	adaptive := &replace.Adaptive{Min: int64(rate) / 5, Max: 2 * int64(rate), TargetP99: target}
	var results []result
	for i := range 3 {
		if i > 0 {
			if err := idleOnce(); err != nil {
				return err
			}
		}
		r, err := toolOnce(fmt.Sprintf("kafka-reassign-partitions #%d", i+1))
		if err != nil {
			return err
		}
		results = append(results, r)
		if r, err = fleetdOnce(fmt.Sprintf("fleetd #%d", i+1), "fleetd", nil); err != nil {
			return err
		}
		results = append(results, r)
		if r, err = fleetdOnce(fmt.Sprintf("fleetd adaptive #%d", i+1), "adaptive", adaptive); err != nil {
			return err
		}
		results = append(results, r)
	}

	fmt.Fprintf(out, "## Replacement on a local fleet, beside Kafka's own tool\n\n")
	fmt.Fprintf(out, "3 brokers, topic with 12 partitions at RF 3 (min ISR 2), %s loaded in %s; throttle T = %s/s. "+
		"Each run replaces a broker holding all the data with a new one, 1:1; runs alternate on the same fleet (tool, fleetd, fleetd adaptive; three rounds). "+
		"The tool's copy phase is from `--execute` to Kafka listing no reassignment (polled every 250 ms: its best case). "+
		"Latency is Kafka's own ProducerPerformance (1 KiB records at %d/s, acks=all, its own topic), started as the copy starts and sending for 0.9x the ideal copy time, so that its records fall in the copy phase; idle is the same run with no replacement, before each round. "+
		"The adaptive throttle runs from %s/s to %s/s with target_p99 %s (twice the first idle p99, after a warm-up run that is not reported). The ledger producer runs throughout every replacement and lost nothing (else the benchmark fails).\n\n",
		humanize.Bytes(data), fillTime.Round(time.Second), humanize.IBytes(rate), perfRate, humanize.IBytes(uint64(adaptive.Min)), humanize.IBytes(uint64(adaptive.Max)), target)
	fmt.Fprintf(out, "| run | bytes moved | copy phase | ideal (bytes / T) | copy / ideal | total | ProducerPerformance p50 / p99 / max during the copy | canary |\n|---|---|---|---|---|---|---|---|\n")
	for i, p := range idle {
		fmt.Fprintf(out, "| idle, round %d | - | - | - | - | - | %s | - |\n", i+1, p)
	}
	for _, r := range results {
		total, verdict := "-", "-"
		if r.total > 0 {
			total = r.total.Round(100 * time.Millisecond).String()
		}
		if r.rec != nil && r.rec.Canary != nil {
			v := r.rec.Canary
			verdict = fmt.Sprintf("%d acked, %d lost; p99 %.0f ms before, %.0f ms during", v.Acked, v.Lost, v.Before.P99Ms, v.During.P99Ms)
			if a := r.rec.Adaptive; a != nil {
				bps, _ := r.rec.Throttle.BytesPerSec()
				verdict += fmt.Sprintf("; %d rate changes, ended at %s/s", a.Changes, humanize.IBytes(uint64(bps)))
			}
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %.2f | %s | %s | %s |\n", r.name, humanize.IBytes(uint64(r.bytes)), r.copyTime.Round(100*time.Millisecond),
			ideal(r.bytes).Round(100*time.Millisecond), r.copyTime.Seconds()/ideal(r.bytes).Seconds(), total, r.perf, verdict)
	}
	summarize(out, results, idle, ideal)
	first := results[1]
	fmt.Fprintf(out, "\nWall time per step (%s):\n\n| step | wall time |\n|---|---|\n", first.name)
	for _, s := range first.rec.Steps {
		fmt.Fprintf(out, "| %s | %s |\n", s.Step, s.Duration().Round(10*time.Millisecond))
	}
	fmt.Fprintln(out)
	return nil
}

// lowestBroker is the lowest broker id serving, and the highest id: every
// broker holds all the data (RF 3 on 3 brokers), so each run replaces a
// full one, and the tool's new broker takes the id above the highest.
func lowestBroker(ctx context.Context, cl *kgo.Client) (low, top int32, err error) {
	snap, err := health.Collect(ctx, cl)
	if err != nil {
		return 0, 0, err
	}
	low = -1
	for _, b := range snap.Brokers {
		if !b.Fenced && (low < 0 || b.ID < low) {
			low = b.ID
		}
		top = max(top, b.ID)
	}
	return low, top, nil
}

// summarize prints each side's spread and the targets, met or not.
func summarize(out io.Writer, results []result, idle []perfResult, ideal func(int64) time.Duration) {
	ratio := map[string][]float64{}
	p99 := map[string][]float64{}
	for _, r := range results {
		ratio[r.side] = append(ratio[r.side], r.copyTime.Seconds()/ideal(r.bytes).Seconds())
		p99[r.side] = append(p99[r.side], float64(r.perf.p99.Milliseconds()))
	}
	for _, p := range idle {
		p99["idle"] = append(p99["idle"], float64(p.p99.Milliseconds()))
	}
	spread := func(v []float64, unit string) string {
		if len(v) == 0 {
			return "-"
		}
		s := slices.Clone(v)
		slices.Sort(s)
		return fmt.Sprintf("median %.2f%s (%.2f-%.2f)", s[len(s)/2], unit, s[0], s[len(s)-1])
	}
	med := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		if len(s) == 0 {
			return 0
		}
		return s[len(s)/2]
	}
	fmt.Fprintf(out, "\n| side | copy / ideal | ProducerPerformance p99 during the copy |\n|---|---|---|\n")
	for _, side := range []string{"tool", "fleetd", "adaptive", "idle"} {
		r := "-"
		if side != "idle" {
			r = spread(ratio[side], "x")
		}
		fmt.Fprintf(out, "| %s | %s | %s |\n", side, r, spread(p99[side], " ms"))
	}
	fmt.Fprintf(out, "\nTargets: fleetd copy / ideal <= 1.10 and below the tool's (medians %.2f vs %.2f): %s. "+
		"fleetd at a fixed throttle no worse than the tool's p99 (medians %.0f vs %.0f ms): %s. "+
		"fleetd adaptive p99 during the move at most 2x idle (medians %.0f vs %.0f ms): %s.\n",
		med(ratio["fleetd"]), med(ratio["tool"]), metIf(med(ratio["fleetd"]) <= 1.10 && med(ratio["fleetd"]) < med(ratio["tool"])),
		med(p99["fleetd"]), med(p99["tool"]), metIf(med(p99["fleetd"]) <= med(p99["tool"])),
		med(p99["adaptive"]), med(p99["idle"]), metIf(med(p99["adaptive"]) <= 2*med(p99["idle"])))
}

// ledgerP99 runs a ledger producer around during and returns its p99 produce
// latency; it fails if the ledger lost anything.
func ledgerP99(ctx context.Context, fleet *local.Fleet, topic string, during func() error) (time.Duration, error) {
	r, err := ledgerAround(ctx, fleet, topic, during)
	if err != nil {
		return 0, err
	}
	return r.LatencyPercentile(0.99), nil
}

// ledgerAround runs a ledger producer around during and returns it, for
// its latencies; it fails if the ledger lost anything.
func ledgerAround(ctx context.Context, fleet *local.Fleet, topic string, during func() error) (*ledger.Run, error) {
	r, err := ledger.Start(ctx, fleet.Bootstrap(), ledger.Options{Topic: topic, Rate: 200})
	if err != nil {
		return nil, err
	}
	derr := during()
	rep, err := r.Stop(ctx)
	if derr != nil {
		return nil, derr
	}
	if err != nil {
		return nil, err
	}
	if !rep.OK() {
		return nil, fmt.Errorf("ledger: %s", rep)
	}
	return r, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
