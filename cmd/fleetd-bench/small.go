package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetd/fleetd/internal/config"
	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/kclient"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/workload"
)

// requestCounter counts the requests a client writes to brokers.
type requestCounter struct{ n atomic.Int64 }

func (c *requestCounter) OnBrokerWrite(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err == nil {
		c.n.Add(1)
	}
}

// layout is one shape of the same bytes.
type layout struct {
	name       string
	partitions int
	topics     int
	size       int64 // per partition
}

// runSmall replaces a broker holding the same bytes as 200 partitions of
// 1 MB and as 2,000 of 100 kB (across 10 topics, and in one topic), with
// fleetd and with kafka-reassign-partitions at the same throttle, on a
// fresh fleet; then an identity replacement's throttled catch-up.
func runSmall(ctx context.Context, out io.Writer, throttleS, only string) error {
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
	var counter requestCounter
	conn := kclient.Settings{Bootstrap: fleet.Bootstrap()}
	cl, adm, err := conn.Admin(kgo.WithHooks(&counter))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctrl := kclient.Settings{Bootstrap: fleet.QuorumBootstrap()}
	cc, _, err := ctrl.Admin(kgo.WithHooks(&counter))
	if err != nil {
		return err
	}
	defer cc.Close()
	store, err := replace.NewFileStore(filepath.Join(fleet.Dir(), "state"))
	if err != nil {
		return err
	}
	provider := local.NewProvider(fleet)
	lowest := func() (int32, int32, error) { return lowestBroker(ctx, cl) }
	executor := func(opts replace.Options) *replace.Executor {
		opts.Log, opts.StopTimeout = log, time.Minute
		return replace.New(replace.KafkaCluster{Client: cl, Controllers: cc}, provider, store, opts)
	}
	options := func(t replace.Throttle) replace.Options {
		rc := config.Replace{Throttle: config.Throttle{Throttle: t}, Poll: time.Second, RegisterTimeout: 2 * time.Minute}
		rc.Defaults()
		return rc.Options()
	}
	layouts := []layout{
		{"200 x 1 MB, 10 topics", 200, 10, 1_000_000},
		{"2,000 x 100 kB, 10 topics", 2000, 10, 100_000},
		{"2,000 x 100 kB, one topic", 2000, 1, 100_000},
	}
	fmt.Fprintf(out, "## Many small partitions against few large ones\n\n")
	fmt.Fprintf(out, "A fresh 3-broker fleet; the same bytes in each layout (RF 3, min ISR 2: every broker holds all of it); throttle T = %s/s. "+
		"Each layout is replaced once by fleetd (in this process: RSS is the process's peak during the replacement, admin requests every request its clients wrote to brokers and controllers) and once by kafka-reassign-partitions.\n\n", humanize.IBytes(rate))
	fmt.Fprintf(out, "| layout | bytes | fleetd copy phase | per partition | fleetd total | peak RSS | admin requests | tool copy phase | fleetd / tool | Kafka's floor (tool, unthrottled, all at once) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	if only == "identity" {
		return runIdentity(ctx, out, fleet, cl, adm, executor, options, rate)
	}
	if only != "" {
		layouts = slices.DeleteFunc(layouts, func(l layout) bool { return !strings.Contains(l.name, only) })
		if len(layouts) == 0 {
			return fmt.Errorf("-only %q: no layout has that in its name", only)
		}
	}
	var base time.Duration
	var copies []time.Duration
	var tools []time.Duration
	var floors []time.Duration
	var floorBase time.Duration
	for _, l := range layouts {
		names := make([]string, l.topics)
		for i := range l.topics {
			names[i] = fmt.Sprintf("small-%d", i)
			t := workload.Topic{Name: names[i], Partitions: int32(l.partitions / l.topics), ReplicationFactor: 3, MinInsyncReplicas: 2}
			if err := workload.CreateTopic(ctx, adm, t, 2*time.Minute); err != nil {
				return err
			}
			// Records of 10 kB round-robin: every partition gets its share.
			if err := workload.Fill(ctx, fleet.Bootstrap(), names[i], l.size*int64(l.partitions/l.topics), workload.FillOptions{RecordBytes: 10_000}); err != nil {
				return err
			}
		}
		broker, _, err := lowest()
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s: fleetd replacing broker %d\n", l.name, broker)
		ex := executor(options(replace.Rate(int64(rate))))
		peakRSS(true)
		counter.n.Store(0)
		rec, err := ex.Begin(ctx, replace.Request{Broker: broker, Strategy: replace.StrategyMove, Triggers: []replace.Trigger{replace.TriggerBench}})
		if err != nil {
			return err
		}
		if err := ex.Run(ctx, rec); err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
		requests, rss := counter.n.Load(), peakRSS(false)
		var copyTime, total time.Duration
		for _, s := range rec.Steps {
			if s.Step == replace.StepMove {
				copyTime += s.Duration()
			}
			total += s.Duration()
		}
		broker, top, err := lowest()
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s: kafka-reassign-partitions replacing broker %d\n", l.name, broker)
		_, toolTime, _, err := toolReplace(ctx, fleet, provider, cl, broker, top+1, int64(rate), nil)
		toolCol, ratio := toolTime.Round(100*time.Millisecond).String(), "-"
		var failed *toolFailed
		switch {
		case errors.As(err, &failed):
			toolCol = "failed: " + firstLine(failed.Error())
		case err != nil:
			return fmt.Errorf("%s: tool: %w", l.name, err)
		default:
			ratio = fmt.Sprintf("%.2f", copyTime.Seconds()/toolTime.Seconds())
		}
		// Kafka's floor: the same move by the tool with no throttle and
		// every partition at once. What no mover on this machine can beat.
		broker, top, err = lowest()
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s: kafka-reassign-partitions replacing broker %d unthrottled\n", l.name, broker)
		_, floor, _, err := toolReplace(ctx, fleet, provider, cl, broker, top+1, 0, nil)
		if err != nil {
			return fmt.Errorf("%s: unthrottled tool: %w", l.name, err)
		}
		if base == 0 {
			base, floorBase = copyTime, floor
		}
		copies, tools, floors = append(copies, copyTime), append(tools, toolTime), append(floors, floor)
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s | %d | %s | %s | %s |\n", l.name, humanize.Bytes(uint64(rec.BytesMoved)), copyTime.Round(100*time.Millisecond),
			(copyTime / time.Duration(max(rec.Plan.Partitions, 1))).Round(time.Microsecond*100), total.Round(100*time.Millisecond), humanize.IBytes(uint64(rss)), requests,
			toolCol, ratio, floor.Round(100*time.Millisecond))
		if _, err := adm.DeleteTopics(ctx, names...); err != nil {
			return err
		}
		if err := until(ctx, 2*time.Minute, func() (bool, error) {
			ts, err := adm.ListTopics(ctx, names...)
			if err != nil {
				return false, nil
			}
			for _, d := range ts {
				if d.Err == nil { // still there (a deleted topic answers UNKNOWN_TOPIC_OR_PARTITION)
					return false, nil
				}
			}
			return true, nil
		}); err != nil {
			return err
		}
	}
	if only != "" {
		return nil // a diagnosis: no targets, no identity catch-up
	}
	worst := max(copies[1], copies[2])
	vsTool, toolOK := "", true
	for i := 1; i < 3; i++ {
		if tools[i] <= 0 {
			vsTool += fmt.Sprintf(" %s: the tool failed;", layouts[i].name)
			continue
		}
		vsTool += fmt.Sprintf(" %s: %.2fx;", layouts[i].name, copies[i].Seconds()/tools[i].Seconds())
		toolOK = toolOK && copies[i].Seconds() <= 2*tools[i].Seconds()
	}
	fmt.Fprintf(out, "\nTargets: the 2,000-partition copy within 1.5x the 200-partition one (%.2fx, %.2fx): %s; within 2x the tool's (%s): %s.\n",
		copies[1].Seconds()/base.Seconds(), copies[2].Seconds()/base.Seconds(), metIf(worst.Seconds() <= 1.5*base.Seconds()),
		strings.TrimSuffix(strings.TrimSpace(vsTool), ";"), metIf(toolOK))
	fmt.Fprintf(out, "Kafka's own floor on this machine, unthrottled with every move at once: 2,000 partitions take %.2fx, %.2fx the time of 200 (%s, %s vs %s); fleetd's 2,000-partition copies are %.2fx, %.2fx that floor.\n\n",
		floors[1].Seconds()/floorBase.Seconds(), floors[2].Seconds()/floorBase.Seconds(),
		floors[1].Round(100*time.Millisecond), floors[2].Round(100*time.Millisecond), floorBase.Round(100*time.Millisecond),
		copies[1].Seconds()/floors[1].Seconds(), copies[2].Seconds()/floors[2].Seconds())
	return runIdentity(ctx, out, fleet, cl, adm, executor, options, rate)
}

// runIdentity kills a broker holding 200 MB and replaces it by identity at
// a throttle: the catch-up's time against bytes / throttle, and the record's
// proof that the throttles were set and removed.
func runIdentity(ctx context.Context, out io.Writer, fleet *local.Fleet, cl *kgo.Client, adm *kadm.Client,
	executor func(replace.Options) *replace.Executor, options func(replace.Throttle) replace.Options, rate uint64) error {
	const topic = "identity"
	if err := workload.CreateTopic(ctx, adm, workload.Topic{Name: topic, Partitions: 12, ReplicationFactor: 3, MinInsyncReplicas: 2}, time.Minute); err != nil {
		return err
	}
	if err := workload.Fill(ctx, fleet.Bootstrap(), topic, 200_000_000, workload.FillOptions{}); err != nil {
		return err
	}
	snap, err := health.Collect(ctx, cl)
	if err != nil {
		return err
	}
	victim := snap.Brokers[0].ID
	var bytes int64
	for _, p := range snap.Partitions {
		for _, r := range p.Replicas {
			if r == victim {
				bytes += p.Bytes
			}
		}
	}
	throttle := int64(rate) / 2
	fmt.Fprintf(os.Stderr, "identity: killing broker %d, replacing it by identity at %s/s\n", victim, humanize.IBytes(uint64(throttle)))
	if err := fleet.KillNode(victim); err != nil {
		return err
	}
	ex := executor(options(replace.Rate(throttle)))
	rec, err := ex.Begin(ctx, replace.Request{Broker: victim, Strategy: replace.StrategyIdentity, Triggers: []replace.Trigger{replace.TriggerBench}})
	if err != nil {
		return err
	}
	// The catch-up is timed on the new disk itself: step boundaries say
	// little here (the broker fetches as soon as it registers, which can be
	// before the launch step ends), the disk's growth says what Kafka did.
	sctx, stopSampling := context.WithCancel(ctx)
	samples := make(chan diskGrowth, 1)
	go func() { samples <- sampleDisk(sctx, adm, victim) }()
	runErr := ex.Run(ctx, rec)
	stopSampling()
	g := <-samples
	if runErr != nil {
		return fmt.Errorf("identity: %w", runErr)
	}
	var synced time.Time
	for _, s := range rec.Steps {
		if s.Step == replace.StepAwaitInSync {
			synced = s.Ended
		}
	}
	if g.first.IsZero() {
		return fmt.Errorf("identity: broker %d's log dirs were never seen growing", victim)
	}
	catchUp := synced.Sub(g.first)
	copied := bytes - g.firstBytes // what was copied after the first sample
	rateGot := float64(copied) / catchUp.Seconds()
	ideal := time.Duration(float64(bytes) / float64(throttle) * float64(time.Second))
	fmt.Fprintf(out, "## Identity catch-up\n\nBroker %d killed (its disk gone with it) and replaced by identity at %s/s: %s to catch up. Timed on the new broker's disk (log dirs sampled every 250 ms): from the first bytes seen to the end of await-in-sync.\n\n", victim, humanize.IBytes(uint64(throttle)), humanize.Bytes(uint64(bytes)))
	fmt.Fprintf(out, "| catch-up (first bytes to in sync) | bytes at the first sample | achieved rate | rate / throttle | throttle configs recorded and set | removed |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(out, "| %s | %s | %s/s | %.2f | %d | %v |\n\n", catchUp.Round(100*time.Millisecond), humanize.Bytes(uint64(g.firstBytes)), humanize.IBytes(uint64(rateGot)), rateGot/float64(throttle), len(rec.Throttles), rec.ThrottlesRemoved)
	fmt.Fprintf(os.Stderr, "identity: ideal %s, catch-up %s\n", ideal.Round(100*time.Millisecond), catchUp.Round(100*time.Millisecond))
	return nil
}

// diskGrowth is when a broker's log dirs were first seen holding bytes.
type diskGrowth struct {
	first      time.Time
	firstBytes int64
}

// sampleDisk polls a broker's log-dir sizes every 250 ms until ctx ends and
// says when it first held any bytes (a broker not up yet answers an error,
// which is a sample of nothing).
func sampleDisk(ctx context.Context, adm *kadm.Client, broker int32) diskGrowth {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return diskGrowth{}
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		dirs, err := adm.DescribeBrokerLogDirs(rctx, broker, nil)
		cancel()
		if err != nil {
			continue
		}
		var size int64
		dirs.Each(func(d kadm.DescribedLogDir) { size += d.Size() })
		if size > 0 {
			return diskGrowth{first: time.Now(), firstBytes: size}
		}
	}
}

// firstLine is s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func metIf(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}
