package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/replace"
)

// toolReplace replaces broker old as an operator would with Kafka's own
// kafka-reassign-partitions (org.apache.kafka.tools.reassign, from Maven
// Central's kafka-tools, the same Kafka version): a new broker with node id
// new, a 1:1 reassignment submitted at once with --throttle, done when
// Kafka lists none of it (polled every 250 ms: the tool's best case; an
// operator polling --verify would notice later), then --verify removes the
// throttles; the old broker is stopped and unregistered so the fleet keeps
// three. It returns the copy phase (when --execute ran, and how long until
// the last partition was done) and the bytes moved. onCopy, if set, is
// called as the copy starts.
func toolReplace(ctx context.Context, fleet *local.Fleet, provider *local.Provider, cl *kgo.Client, old, new int32, rate int64, onCopy func()) (start time.Time, took time.Duration, bytes int64, err error) {
	tools := os.Getenv("FLEETD_KAFKA_TOOLS")
	if tools == "" {
		return start, 0, 0, fmt.Errorf("FLEETD_KAFKA_TOOLS is not set (scripts/bench.sh sets it from scripts/kafka-tools.sh)")
	}
	insts, err := provider.Instances(ctx)
	if err != nil {
		return start, 0, 0, err
	}
	var like replace.Instance
	for _, in := range insts {
		if in.NodeID == old {
			like = in
		}
	}
	if like.ID == "" {
		return start, 0, 0, fmt.Errorf("no instance of broker %d", old)
	}
	// A fresh token per run: a failed run may have used (and terminated) this node id already.
	launched, err := provider.Launch(ctx, replace.LaunchRequest{Token: fmt.Sprintf("tool-%d-%d", new, time.Now().UnixNano()), Like: like, NodeID: new})
	if err != nil {
		return start, 0, 0, err
	}
	if err := until(ctx, 2*time.Minute, func() (bool, error) {
		s, err := health.Collect(ctx, cl)
		if err != nil {
			return false, nil
		}
		b, ok := s.Broker(new)
		return ok && !b.Fenced, nil
	}); err != nil {
		return start, 0, 0, fmt.Errorf("broker %d registration: %w", new, err)
	}
	snap, err := health.Collect(ctx, cl)
	if err != nil {
		return start, 0, 0, err
	}
	type part struct {
		Topic     string  `json:"topic"`
		Partition int32   `json:"partition"`
		Replicas  []int32 `json:"replicas"`
	}
	plan := struct {
		Version    int    `json:"version"`
		Partitions []part `json:"partitions"`
	}{Version: 1}
	for _, p := range snap.Partitions {
		if i := slices.Index(p.Replicas, old); i >= 0 {
			to := slices.Clone(p.Replicas)
			to[i] = new
			plan.Partitions = append(plan.Partitions, part{p.Topic, p.Partition, to})
			bytes += p.Bytes
		}
	}
	file := filepath.Join(fleet.Dir(), fmt.Sprintf("reassign-%d.json", new))
	raw, _ := json.Marshal(plan)
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		return start, 0, 0, err
	}
	tool := func(args ...string) error {
		// Bounded: on a topic whose throttled-replica list would pass
		// Kafka's 32,767-byte config limit the broker closes the
		// connection, and --execute never returns.
		ctx, cancel := context.WithTimeout(ctx, toolTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "java", append([]string{"-cp", filepath.Join(tools, "*"), "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
			"--bootstrap-server", strings.Join(fleet.Bootstrap(), ","), "--reassignment-json-file", file}, args...)...)
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return fmt.Errorf("kafka-reassign-partitions %s did not return within %s (killed)", args[0], toolTimeout)
		}
		if err != nil {
			return fmt.Errorf("kafka-reassign-partitions %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	execute := []string{"--execute"}
	if rate > 0 { // rate 0: unthrottled, Kafka's floor
		execute = append(execute, "--throttle", strconv.FormatInt(rate, 10))
	}
	start = time.Now()
	if err := tool(execute...); err != nil {
		// The fleet goes on without the broker the tool could not fill.
		_ = provider.Terminate(context.WithoutCancel(ctx), launched.ID)
		k := replace.KafkaCluster{Client: cl}
		_ = until(ctx, time.Minute, func() (bool, error) { return k.Unregister(ctx, new) == nil, nil })
		return start, 0, 0, &toolFailed{err}
	}
	if onCopy != nil {
		onCopy()
	}
	if err := until(ctx, time.Hour, func() (bool, error) {
		resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, cl)
		if err != nil {
			return false, nil
		}
		return len(resp.Topics) == 0, nil
	}); err != nil {
		return start, 0, 0, err
	}
	took = time.Since(start)
	if err := tool("--verify"); err != nil { // removes the throttles
		return start, 0, 0, err
	}
	if err := provider.Stop(ctx, like.ID); err != nil {
		return start, 0, 0, err
	}
	if err := provider.Terminate(ctx, like.ID); err != nil {
		return start, 0, 0, err
	}
	k := replace.KafkaCluster{Client: cl}
	if err := until(ctx, time.Minute, func() (bool, error) {
		s, err := health.Collect(ctx, cl)
		if err != nil {
			return false, nil
		}
		b, ok := s.Broker(old)
		if !ok {
			return true, nil
		}
		if b.Fenced {
			_ = k.Unregister(ctx, old)
		}
		return false, nil
	}); err != nil {
		return start, 0, 0, fmt.Errorf("unregister broker %d: %w", old, err)
	}
	return start, took, bytes, nil
}

// toolTimeout bounds one kafka-reassign-partitions command.
const toolTimeout = 3 * time.Minute

// toolFailed is Kafka's tool failing at what fleetd is compared on: a
// result of the benchmark, not an error of it.
type toolFailed struct{ err error }

func (f *toolFailed) Error() string { return f.err.Error() }

// until calls ok every 250 ms until it reports true, fails, or timeout.
func until(ctx context.Context, timeout time.Duration, ok func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := ok()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done within %s", timeout)
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}
