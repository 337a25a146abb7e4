package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/fleetd/fleetd/internal/config"
	"github.com/fleetd/fleetd/internal/kclient"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/workload"
)

// runControllers replaces each of three KRaft controllers in turn with
// fleetd's controller workflow, and measures the bare runbook beside it:
// the same Kafka calls (start an observer, wait until it caught up,
// AddRaftVoter, RemoveRaftVoter, stop) with no gate, guard or record. The
// difference is what fleetd's safety costs in wall time.
func runControllers(ctx context.Context, out io.Writer) error {
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
	fleet, err := local.Up(ctx, local.Options{Log: log, Controllers: 3, Dir: os.Getenv("FLEETD_BENCH_DIR")}, 3)
	if err != nil {
		return err
	}
	defer fleet.Close()
	cl, cc, closeClients, err := kclient.Settings{Bootstrap: fleet.Bootstrap(), Controllers: fleet.QuorumBootstrap()}.Clients()
	if err != nil {
		return err
	}
	defer closeClients()
	const topic = "bench-controllers"
	if err := workload.CreateTopic(ctx, kadm.NewClient(cl), workload.Topic{Name: topic, Partitions: 6, ReplicationFactor: 3, MinInsyncReplicas: 2}, time.Minute); err != nil {
		return err
	}
	store, err := replace.NewFileStore(filepath.Join(fleet.Dir(), "state-controllers"))
	if err != nil {
		return err
	}
	kc := replace.KafkaCluster{Client: cl, Controllers: cc}
	rc := config.Replace{Poll: time.Second, RegisterTimeout: 2 * time.Minute}
	rc.Defaults()
	opts := rc.Options()
	opts.Log = log
	ex := replace.New(kc, local.NewProvider(fleet), store, opts)

	var recs []*replace.Record
	p99, err := ledgerP99(ctx, fleet, topic, func() error {
		for _, old := range []int32{9000, 9001, 9002} {
			fmt.Fprintf(os.Stderr, "controllers: replacing %d\n", old)
			rec, err := ex.Begin(ctx, replace.Request{Broker: old, Strategy: replace.StrategyController, Triggers: []replace.Trigger{replace.TriggerBench}})
			if err != nil {
				return err
			}
			if err := ex.Run(ctx, rec); err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var runbook []time.Duration
	next := int32(9100)
	for _, r := range recs {
		start := time.Now()
		if err := bareRunbook(ctx, fleet, kc, r.NewBroker, next); err != nil {
			return fmt.Errorf("bare runbook: %w", err)
		}
		runbook = append(runbook, time.Since(start))
		next++
	}

	fmt.Fprintf(out, "## Controller replacement on a local fleet\n\n")
	fmt.Fprintf(out, "3 controllers in a dynamic quorum (kraft.version 1), 3 brokers, ledger producer at 200 records/s; each controller replaced in turn with poll 1 s. ")
	fmt.Fprintf(out, "The bare runbook is the same Kafka calls with no gate, guard or record (start an observer, wait until it caught up, AddRaftVoter, RemoveRaftVoter, stop), run on the new controllers afterwards. Ledger p99 produce latency during fleetd's three replacements: %s.\n\n", p99.Round(100*time.Microsecond))
	fmt.Fprintf(out, "| step |")
	for _, r := range recs {
		fmt.Fprintf(out, " %d -> %d |", r.OldBroker, r.NewBroker)
	}
	fmt.Fprintf(out, "\n|---|---|---|---|\n")
	for i, s := range recs[0].Steps {
		fmt.Fprintf(out, "| %s |", s.Step)
		for _, r := range recs {
			d := "-"
			if i < len(r.Steps) && r.Steps[i].Step == s.Step {
				d = r.Steps[i].Duration().Round(10 * time.Millisecond).String()
			}
			fmt.Fprintf(out, " %s |", d)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "| **fleetd total** |")
	for _, r := range recs {
		fmt.Fprintf(out, " %s |", r.Finished.Sub(r.Created).Round(10*time.Millisecond))
	}
	fmt.Fprintf(out, "\n| **bare runbook total** |")
	for _, d := range runbook {
		fmt.Fprintf(out, " %s |", d.Round(10*time.Millisecond))
	}
	fmt.Fprintf(out, "\n\n")
	return nil
}

// bareRunbook replaces controller old by a new controller id with the
// Kafka calls alone, as a person following Kafka's documentation would.
func bareRunbook(ctx context.Context, fleet *local.Fleet, kc replace.KafkaCluster, old, id int32) error {
	info, err := fleet.AddController(ctx, id, "")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		q, err := kc.Quorum(ctx)
		if err == nil {
			if o, ok := q.Observer(id); ok && o.CaughtUp {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("controller %d never caught up as an observer", id)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	if err := kc.AddVoter(ctx, replace.Voter{ID: id, DirectoryID: info.DirectoryID, Endpoint: "CONTROLLER://" + info.Addr}); err != nil {
		return err
	}
	oldInfo, _ := fleet.Node(old)
	if err := kc.RemoveVoter(ctx, old, oldInfo.DirectoryID); err != nil {
		return err
	}
	if err := fleet.StopNode(ctx, old); err != nil {
		return err
	}
	return fleet.Remove(old)
}
