// Command fleetd-bench measures a real replacement on a local fleet and
// prints a Markdown report (scripts/bench.sh puts it in docs/benchmarks.md):
//
//   - a move of a broker holding at least 1 GiB at throttle T, in batches:
//     wall time per step and the copy phase against the ideal bytes/T;
//   - the baseline of submitting the whole reassignment at once (as Kafka's
//     reassign tool does), on the same data and throttle;
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
	p99      time.Duration
	bytes    int64
	copyTime time.Duration
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
	idle, err := ledgerP99(ctx, fleet, topic, func() error { return sleepCtx(ctx, 30*time.Second) })
	if err != nil {
		return err
	}
	store, err := replace.NewFileStore(filepath.Join(fleet.Dir(), "state"))
	if err != nil {
		return err
	}
	provider := local.NewProvider(fleet)
	replaceOnce := func(name string, broker int32, concurrency int) (result, error) {
		fmt.Fprintf(os.Stderr, "%s: replacing broker %d\n", name, broker)
		rc := config.Replace{Throttle: config.Throttle{Throttle: replace.Rate(int64(rate))}, Concurrency: concurrency, Poll: time.Second, RegisterTimeout: 2 * time.Minute}
		rc.Defaults()
		opts := rc.Options()
		opts.Log, opts.StopTimeout = log, time.Minute
		ex := replace.New(replace.KafkaCluster{Client: cl, Controllers: cc}, provider, store, opts)
		res := result{name: name}
		var runErr error
		res.p99, err = ledgerP99(ctx, fleet, topic, func() error {
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
			}
		}
		return res, nil
	}
	batched, err := replaceOnce("fleetd (batches of 5)", 2, 5)
	if err != nil {
		return err
	}
	allAtOnce, err := replaceOnce("baseline (whole reassignment at once)", 3, 1_000_000)
	if err != nil {
		return err
	}

	ideal := func(b int64) time.Duration { return time.Duration(float64(b) / float64(rate) * float64(time.Second)) }
	fmt.Fprintf(out, "## Replacement on a local fleet\n\n")
	fmt.Fprintf(out, "3 brokers, topic with 12 partitions at RF 3 (min ISR 2), %s loaded in %s; throttle T = %s/s; ledger producer at 200 records/s throughout.\n\n",
		humanize.Bytes(data), fillTime.Round(time.Second), humanize.IBytes(rate))
	fmt.Fprintf(out, "| run | bytes moved | copy phase | ideal (bytes / T) | copy / ideal | total | p99 produce latency |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(out, "| no replacement (30 s) | - | - | - | - | - | %s |\n", idle.Round(100*time.Microsecond))
	for _, r := range []result{batched, allAtOnce} {
		var total time.Duration
		for _, s := range r.rec.Steps {
			total += s.Duration()
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %.2f | %s | %s |\n", r.name, humanize.IBytes(uint64(r.bytes)), r.copyTime.Round(100*time.Millisecond),
			ideal(r.bytes).Round(100*time.Millisecond), r.copyTime.Seconds()/ideal(r.bytes).Seconds(), total.Round(100*time.Millisecond), r.p99.Round(100*time.Microsecond))
	}
	fmt.Fprintf(out, "\nWall time per step:\n\n| step | %s | %s |\n|---|---|---|\n", batched.name, allAtOnce.name)
	for i, s := range batched.rec.Steps {
		other := "-"
		if i < len(allAtOnce.rec.Steps) && allAtOnce.rec.Steps[i].Step == s.Step {
			other = allAtOnce.rec.Steps[i].Duration().Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(out, "| %s | %s | %s |\n", s.Step, s.Duration().Round(10*time.Millisecond), other)
	}
	fmt.Fprintln(out)
	return nil
}

// ledgerP99 runs a ledger producer around during and returns its p99 produce
// latency; it fails if the ledger lost anything.
func ledgerP99(ctx context.Context, fleet *local.Fleet, topic string, during func() error) (time.Duration, error) {
	r, err := ledger.Start(ctx, fleet.Bootstrap(), ledger.Options{Topic: topic, Rate: 200})
	if err != nil {
		return 0, err
	}
	derr := during()
	rep, err := r.Stop(ctx)
	if derr != nil {
		return 0, derr
	}
	if err != nil {
		return 0, err
	}
	if !rep.OK() {
		return 0, fmt.Errorf("ledger: %s", rep)
	}
	return r.LatencyPercentile(0.99), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
