package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/fleetd/fleetd/internal/canary"
	"github.com/fleetd/fleetd/internal/config"
	"github.com/fleetd/fleetd/internal/kclient"
	"github.com/fleetd/fleetd/internal/ledger"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/workload"
)

func newDemoCmd() *cobra.Command {
	var (
		data     string
		throttle string
		broker   int32
		verbose  bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Replace a broker of a local fleet under load and prove nothing was lost",
		Long: `Start a local fleet (one KRaft controller, three brokers), create a topic with
replication factor 3 and min.insync.replicas 2, load it with data, start a
ledger (an idempotent acks=all producer writing sequence numbers and a
consumer checking them), replace one broker with the move strategy while
showing progress, then print the summary and the ledger's verdict.
Everything is torn down at the end, also on Ctrl-C.

Exit codes: 0 replaced with nothing lost, 2 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bytes, err := humanize.ParseBytes(data)
			if err != nil {
				return fmt.Errorf("--data %q: %w", data, err)
			}
			rate, err := parseThrottle(throttle)
			if err != nil {
				return err
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), int64(bytes), rate, broker, verbose)
		},
	}
	cmd.Flags().StringVar(&data, "data", "300MB", "data to load into the topic before the replacement")
	cmd.Flags().StringVar(&throttle, "throttle", "40MiB", "replication throttle per second")
	cmd.Flags().Int32Var(&broker, "broker", 2, "broker to replace (1-3)")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "show fleetd's structured log")
	return cmd
}

func runDemo(ctx context.Context, out, errOut io.Writer, data int64, throttle replace.Throttle, broker int32, verbose bool) (err error) {
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	logOut := io.Discard
	if verbose {
		logOut = errOut
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: logOut, TimeFormat: "15:04:05", NoColor: !isTerminal(logOut)}).With().Timestamp().Logger()

	say("starting a local fleet: 1 KRaft controller + 3 brokers on loopback")
	fleet, err := local.Up(ctx, local.Options{Log: log}, 3)
	if err != nil {
		return err
	}
	defer func() {
		fleet.Close()
		say("local fleet stopped and deleted")
	}()
	say("Kafka %s", fleet.KafkaVersion())
	for _, b := range fleet.Brokers() {
		say("  broker %d  rack %s  %s", b.ID, b.Rack, b.Addr)
	}
	conn := kclient.Settings{Bootstrap: fleet.Bootstrap(), Controllers: fleet.QuorumBootstrap()}
	cl, cc, closeClients, err := conn.Clients()
	if err != nil {
		return err
	}
	defer closeClients()

	const topic = "orders"
	say("creating topic %s: 12 partitions, replication factor 3, min.insync.replicas 2", topic)
	if err := workload.CreateTopic(ctx, kadm.NewClient(cl), workload.Topic{Name: topic, Partitions: 12, ReplicationFactor: 3, MinInsyncReplicas: 2}, time.Minute); err != nil {
		return err
	}
	say("loading %s of data", humanize.Bytes(uint64(data)))
	if err := workload.Fill(ctx, fleet.Bootstrap(), topic, data, workload.FillOptions{}); err != nil {
		return err
	}
	say("starting the ledger: idempotent acks=all producer (200 records/s) and a checking consumer")
	run, err := ledger.Start(ctx, fleet.Bootstrap(), ledger.Options{Topic: topic, Rate: 200})
	if err != nil {
		return err
	}
	store, err := replace.NewFileStore(filepath.Join(fleet.Dir(), "state"))
	if err != nil {
		return err
	}
	view := newProgressView(out)
	rc := config.Replace{Throttle: config.Throttle{Throttle: throttle}, Poll: time.Second, RegisterTimeout: 2 * time.Minute}
	rc.Defaults()
	opts := rc.Options()
	opts.StopTimeout, opts.LeaderTimeout = time.Minute, time.Minute
	opts.Log, opts.OnProgress, opts.OnEvent = log, view.progress, view.event
	opts.Canary = canary.ForExecutor(cl, true, canary.Options{Seeds: fleet.Bootstrap()})
	ex := replace.New(replace.KafkaCluster{Client: cl, Controllers: cc}, local.NewProvider(fleet), store, opts)
	preview, err := ex.Preview(ctx, replace.Request{Broker: broker, Strategy: replace.StrategyMove})
	if err != nil {
		return err
	}
	printPreview(out, preview, false)
	say("replacing broker %d (strategy move)", broker)
	rec, err := ex.Begin(ctx, replace.Request{Broker: broker, Strategy: replace.StrategyMove, Triggers: []replace.Trigger{replace.TriggerDemo}})
	if err != nil {
		return err
	}
	runErr := ex.Run(ctx, rec)
	view.stop()
	if ctx.Err() != nil {
		say("interrupted; tearing down")
		return &codeError{code: exitError, err: ctx.Err()}
	}
	printSummary(out, rec, false)
	say("stopping the ledger and reading every partition to its end")
	rep, lerr := run.Stop(ctx)
	fmt.Fprintf(out, "\nledger verdict: %s\n", rep)
	if lerr != nil {
		return &codeError{code: exitError, err: fmt.Errorf("ledger incomplete: %w", lerr)}
	}
	if runErr != nil {
		return &codeError{code: exitError, err: runErr}
	}
	if !rep.OK() || rep.Acked == 0 {
		return &codeError{code: exitError, err: fmt.Errorf("the ledger found a problem: %s", rep)}
	}
	fmt.Fprintf(out, "broker %d replaced by broker %d with nothing lost (lost=%d duplicated=%d) in %s\n", rec.OldBroker, rec.NewBroker, rep.Lost, rep.Duplicated, time.Since(start).Round(time.Second))
	return nil
}
