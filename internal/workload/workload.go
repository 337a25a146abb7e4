// Package workload puts data into a Kafka cluster for demos, tests and
// benchmarks: topics with a chosen replication factor and min.insync.replicas,
// and bulk loading of incompressible data. It never deletes anything.
package workload

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic describes a topic to create.
type Topic struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	MinInsyncReplicas int // 0 leaves the broker default
	Configs           map[string]string
}

// CreateTopic creates t and waits (at most timeout) until every partition has
// a leader and a full ISR, so callers can write to it at once.
func CreateTopic(ctx context.Context, adm *kadm.Client, t Topic, timeout time.Duration) error {
	cfg := map[string]*string{}
	for k, v := range t.Configs {
		cfg[k] = &v
	}
	if t.MinInsyncReplicas > 0 {
		v := strconv.Itoa(t.MinInsyncReplicas)
		cfg["min.insync.replicas"] = &v
	}
	if _, err := adm.CreateTopic(ctx, t.Partitions, t.ReplicationFactor, cfg, t.Name); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", t.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ready, why := topicReady(ctx, adm, t)
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not ready within %s: %s", t.Name, timeout, why)
		case <-tick.C:
		}
	}
}

func topicReady(ctx context.Context, adm *kadm.Client, t Topic) (bool, string) {
	td, err := adm.ListTopics(ctx, t.Name)
	if err != nil {
		return false, err.Error()
	}
	d := td[t.Name]
	if d.Err != nil {
		return false, d.Err.Error()
	}
	if int32(len(d.Partitions)) != t.Partitions {
		return false, fmt.Sprintf("%d of %d partitions listed", len(d.Partitions), t.Partitions)
	}
	for _, p := range d.Partitions {
		if p.Leader < 0 || len(p.ISR) != int(t.ReplicationFactor) {
			return false, fmt.Sprintf("partition %d leader=%d isr=%v", p.Partition, p.Leader, p.ISR)
		}
	}
	return true, ""
}

// FillOptions tunes Fill.
type FillOptions struct {
	RecordBytes int // default 64 KiB
	ClientOpts  []kgo.Opt
}

// Fill writes about bytes of incompressible data spread over all partitions of
// topic with acks=all, and returns once every record is acknowledged.
func Fill(ctx context.Context, seeds []string, topic string, bytes int64, o FillOptions) error {
	if o.RecordBytes <= 0 {
		o.RecordBytes = 64 << 10
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(10 * time.Millisecond),
		kgo.MaxBufferedBytes(64 << 20),
	}, o.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("fill %s: %w", topic, err)
	}
	defer cl.Close()
	// One random block, sliced at varying offsets: incompressible without
	// generating every byte.
	block := make([]byte, 4<<20)
	_, _ = rand.Read(block)
	var (
		mu      sync.Mutex
		firstEr error
		wg      sync.WaitGroup
	)
	n := bytes / int64(o.RecordBytes)
	for i := int64(0); i < n; i++ {
		if ctx.Err() != nil {
			break
		}
		off := (i * 7919) % int64(len(block)-o.RecordBytes)
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: block[off : off+int64(o.RecordBytes)]}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstEr == nil {
					firstEr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstEr != nil {
		return fmt.Errorf("fill %s: %w", topic, firstEr)
	}
	return ctx.Err()
}
