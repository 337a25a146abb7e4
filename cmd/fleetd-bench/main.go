// Command fleetd-bench measures a real replacement on a local fleet and
// prints a Markdown report (scripts/bench.sh puts it in docs/benchmarks.md):
//
//   - a move of a broker holding at least 1 GiB at throttle T: wall time per
//     step and the copy phase against the ideal bytes/T;
//   - Kafka's own kafka-reassign-partitions (kafka-tools from Maven Central,
//     the same version) doing the same 1:1 move at the same throttle, in the
//     same run, alternating with fleetd, two runs each; and one fleetd run
//     with the rate steering off (open loop, as the tool);
//   - the ledger producer's p99 produce latency with and without a
//     replacement in progress;
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
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"

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
	flag.Parse()
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
	rec      *replace.Record
	bytes    int64
	copyTime time.Duration
	total    time.Duration
	// lat is the ledger run around the replacement; copyFrom..copyTo the
	// copy phase its latencies are cut to.
	lat              *ledger.Run
	copyFrom, copyTo time.Time
}

func run(ctx context.Context, out io.Writer, dataS, throttleS string) error {
	data, err := humanize.ParseBytes(dataS)
	if err != nil {
		return err
	}
	rate, err := humanize.ParseBytes(throttleS)
	if err != nil {
		return err
	}
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
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
	const topic = "bench"
	if err := workload.CreateTopic(ctx, kadm.NewClient(cl), workload.Topic{Name: topic, Partitions: 12, ReplicationFactor: 3, MinInsyncReplicas: 2}, time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "loading %s\n", humanize.Bytes(data))
	fillStart := time.Now()
	if err := workload.Fill(ctx, fleet.Bootstrap(), topic, int64(data), workload.FillOptions{}); err != nil {
		return err
	}
	fillTime := time.Since(fillStart)

	// p99 with no replacement: the same producer, the same rate, 30 s.
	idle, err := ledgerAround(ctx, fleet, topic, func() error { return sleepCtx(ctx, 30*time.Second) })
	if err != nil {
		return err
	}
	store, err := replace.NewFileStore(filepath.Join(fleet.Dir(), "state"))
	if err != nil {
		return err
	}
	provider := local.NewProvider(fleet)
	// lowest is the lowest broker id serving: every broker holds all the
	// data (RF 3 on 3 brokers), so each run replaces a full one.
	lowest := func() (int32, int32, error) {
		snap, err := health.Collect(ctx, cl)
		if err != nil {
			return 0, 0, err
		}
		low, top := int32(-1), int32(0)
		for _, b := range snap.Brokers {
			if !b.Fenced && (low < 0 || b.ID < low) {
				low = b.ID
			}
			top = max(top, b.ID)
		}
		return low, top, nil
	}
	fleetdOnce := func(name string, rateCap float64) (result, error) {
		broker, _, err := lowest()
		if err != nil {
			return result{}, err
		}
		fmt.Fprintf(os.Stderr, "%s: replacing broker %d\n", name, broker)
		rc := config.Replace{Throttle: config.Throttle{Throttle: replace.Rate(int64(rate))}, Poll: time.Second, RegisterTimeout: 2 * time.Minute, RateCap: rateCap}
		rc.Defaults()
		opts := rc.Options()
		opts.Log, opts.StopTimeout = log, time.Minute
		ex := replace.New(replace.KafkaCluster{Client: cl, Controllers: cc}, provider, store, opts)
		res := result{name: name}
		var runErr error
		res.lat, err = ledgerAround(ctx, fleet, topic, func() error {
			rec, err := ex.Begin(ctx, replace.Request{Broker: broker, Strategy: replace.StrategyMove, Triggers: []replace.Trigger{replace.TriggerBench}})
			if err != nil {
				return err
			}
			res.rec = rec
			runErr = ex.Run(ctx, rec)
			return nil
		})
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
				res.copyFrom, res.copyTo = s.Started, s.Ended
			}
			res.total += s.Duration()
		}
		return res, nil
	}
	toolOnce := func() (result, error) {
		broker, top, err := lowest()
		if err != nil {
			return result{}, err
		}
		res := result{name: "kafka-reassign-partitions"}
		fmt.Fprintf(os.Stderr, "%s: replacing broker %d\n", res.name, broker)
		res.lat, err = ledgerAround(ctx, fleet, topic, func() error {
			var err error
			res.copyFrom, res.copyTime, res.bytes, err = toolReplace(ctx, fleet, provider, cl, broker, top+1, int64(rate))
			res.copyTo = res.copyFrom.Add(res.copyTime)
			return err
		})
		return res, err
	}
	var results []result
	for i := range 2 {
		r, err := fleetdOnce(fmt.Sprintf("fleetd #%d", i+1), 0)
		if err != nil {
			return err
		}
		results = append(results, r)
		if r, err = toolOnce(); err != nil {
			return err
		}
		r.name += fmt.Sprintf(" #%d", i+1)
		results = append(results, r)
	}
	open, err := fleetdOnce("fleetd, steering off (rate_cap 1)", 1)
	if err != nil {
		return err
	}
	results = append(results, open)

	ideal := func(b int64) time.Duration { return time.Duration(float64(b) / float64(rate) * float64(time.Second)) }
	fmt.Fprintf(out, "## Replacement on a local fleet, beside Kafka's own tool\n\n")
	fmt.Fprintf(out, "3 brokers, topic with 12 partitions at RF 3 (min ISR 2), %s loaded in %s; throttle T = %s/s; ledger producer at 200 records/s throughout. "+
		"Each run replaces a broker holding all the data with a new one, 1:1; runs alternate on the same fleet. The tool's copy phase is from `--execute` to Kafka listing no reassignment (polled every 250 ms: its best case).\n\n",
		humanize.Bytes(data), fillTime.Round(time.Second), humanize.IBytes(rate))
	fmt.Fprintf(out, "| run | bytes moved | copy phase | ideal (bytes / T) | copy / ideal | total | produce p50 / p99 in the copy phase | p99 over the whole run |\n|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(out, "| no replacement (30 s) | - | - | - | - | - | %s / %s | %s |\n", idle.LatencyPercentile(0.5).Round(100*time.Microsecond),
		idle.LatencyPercentile(0.99).Round(100*time.Microsecond), idle.LatencyPercentile(0.99).Round(100*time.Microsecond))
	for _, r := range results {
		total := "-"
		if r.total > 0 {
			total = r.total.Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %.2f | %s | %s / %s | %s |\n", r.name, humanize.IBytes(uint64(r.bytes)), r.copyTime.Round(100*time.Millisecond),
			ideal(r.bytes).Round(100*time.Millisecond), r.copyTime.Seconds()/ideal(r.bytes).Seconds(), total,
			r.lat.LatencyPercentileBetween(0.5, r.copyFrom, r.copyTo).Round(100*time.Microsecond), r.lat.LatencyPercentileBetween(0.99, r.copyFrom, r.copyTo).Round(100*time.Microsecond),
			r.lat.LatencyPercentile(0.99).Round(100*time.Microsecond))
	}
	first := results[0]
	fmt.Fprintf(out, "\nWall time per step (%s):\n\n| step | wall time |\n|---|---|\n", first.name)
	for _, s := range first.rec.Steps {
		fmt.Fprintf(out, "| %s | %s |\n", s.Step, s.Duration().Round(10*time.Millisecond))
	}
	fmt.Fprintln(out)
	return nil
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
