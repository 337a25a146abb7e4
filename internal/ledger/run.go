package ledger

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configures a ledger run.
type Options struct {
	Topic string
	// Rate is records per second over all partitions (default 200).
	Rate int
	// ValueBytes pads each record to this size (default 100, minimum 8).
	ValueBytes int
	// DrainTimeout bounds how long Stop reads to catch up (default 2 min).
	DrainTimeout time.Duration
	// ClientOpts are added to both clients (TLS, SASL, logging).
	ClientOpts []kgo.Opt
}

// Run is a producer and a consumer working one topic. Start it before an
// operation, Stop it after, and read the Report.
type Run struct {
	opts   Options
	id     []byte // key of every record of this run; others' records are ignored
	ledger *Ledger
	parts  []int32
	prod   *kgo.Client
	cons   *kgo.Client

	cancelProduce context.CancelFunc
	produceDone   chan struct{}
	cancelConsume context.CancelFunc
	consumeDone   chan struct{}

	mu          sync.Mutex
	consumed    map[int32]int64 // next offset to read, per partition
	latencies   []time.Duration
	sentAt      []time.Time // when each of latencies' records was sent
	produceErrs int64
	lastErr     error
}

// Start discovers the topic's partitions and starts producing and consuming.
func Start(ctx context.Context, seeds []string, opts Options) (*Run, error) {
	if opts.Topic == "" {
		return nil, errors.New("ledger: Options.Topic is required")
	}
	if opts.Rate <= 0 {
		opts.Rate = 200
	}
	opts.ValueBytes = max(opts.ValueBytes, 8)
	if opts.ValueBytes == 8 {
		opts.ValueBytes = 100
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 2 * time.Minute
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	r := &Run{opts: opts, id: []byte("ledger-" + hex.EncodeToString(id)), ledger: New(), consumed: map[int32]int64{}}

	prod, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is kgo's default with acks=all
		kgo.ProducerLinger(5 * time.Millisecond),
	}, opts.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("ledger producer: %w", err)
	}
	r.prod = prod
	parts, err := topicPartitions(ctx, kadm.NewClient(prod), opts.Topic)
	if err != nil {
		prod.Close()
		return nil, err
	}
	r.parts = parts
	offsets := map[int32]kgo.Offset{}
	for _, p := range parts {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cons, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{opts.Topic: offsets}),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, opts.ClientOpts...)...)
	if err != nil {
		prod.Close()
		return nil, fmt.Errorf("ledger consumer: %w", err)
	}
	r.cons = cons

	pctx, pcancel := context.WithCancel(context.Background())
	cctx, ccancel := context.WithCancel(context.Background())
	r.cancelProduce, r.cancelConsume = pcancel, ccancel
	r.produceDone, r.consumeDone = make(chan struct{}), make(chan struct{})
	go r.produce(pctx)
	go r.consume(cctx)
	return r, nil
}

func topicPartitions(ctx context.Context, adm *kadm.Client, topic string) ([]int32, error) {
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("ledger: describe topic %q: %w", topic, err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return nil, fmt.Errorf("ledger: topic %q not found: %v", topic, d.Err)
	}
	var parts []int32
	for p := range d.Partitions {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	return parts, nil
}

func (r *Run) produce(ctx context.Context) {
	defer close(r.produceDone)
	interval := time.Second / time.Duration(r.opts.Rate)
	tick := time.NewTicker(max(interval, time.Millisecond))
	defer tick.Stop()
	i := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p := r.parts[i%len(r.parts)]
		i++
		seq := r.ledger.Next(p)
		val := make([]byte, r.opts.ValueBytes)
		binary.BigEndian.PutUint64(val, uint64(seq))
		sent := time.Now()
		// Produce with a background context: a record handed to the client
		// must be allowed to finish (or fail) even while we stop.
		r.prod.Produce(context.Background(), &kgo.Record{Topic: r.opts.Topic, Partition: p, Key: r.id, Value: val},
			func(_ *kgo.Record, err error) {
				if err != nil {
					r.mu.Lock()
					r.produceErrs++
					r.mu.Unlock()
					return
				}
				r.ledger.Acked(p, seq)
				r.mu.Lock()
				r.latencies = append(r.latencies, time.Since(sent))
				r.sentAt = append(r.sentAt, sent)
				r.mu.Unlock()
			})
	}
}

func (r *Run) consume(ctx context.Context) {
	defer close(r.consumeDone)
	for {
		fs := r.cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachRecord(func(rec *kgo.Record) {
			r.mu.Lock()
			r.consumed[rec.Partition] = rec.Offset + 1
			r.mu.Unlock()
			if string(rec.Key) != string(r.id) || len(rec.Value) < 8 {
				return
			}
			r.ledger.Observed(rec.Partition, int64(binary.BigEndian.Uint64(rec.Value)))
		})
	}
}

// LatencyPercentile returns the q-quantile (0..1) of acknowledged produce
// latencies, 0 when nothing was acknowledged.
func (r *Run) LatencyPercentile(q float64) time.Duration {
	return r.LatencyPercentileBetween(q, time.Time{}, time.Time{})
}

// LatencyPercentileBetween is LatencyPercentile of the records sent in
// [from, to) (a zero bound is open): latencies cut to one phase.
func (r *Run) LatencyPercentileBetween(q float64, from, to time.Time) time.Duration {
	r.mu.Lock()
	var l []time.Duration
	for i, d := range r.latencies {
		if at := r.sentAt[i]; (from.IsZero() || !at.Before(from)) && (to.IsZero() || at.Before(to)) {
			l = append(l, d)
		}
	}
	r.mu.Unlock()
	if len(l) == 0 {
		return 0
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	idx := int(q * float64(len(l)-1))
	return l[idx]
}

// Stop stops producing, waits for every outstanding record to be acknowledged
// or failed, reads every partition up to its end offset and returns the
// verdict. It closes both clients. An error means the verdict is incomplete.
func (r *Run) Stop(ctx context.Context) (Report, error) {
	r.cancelProduce()
	<-r.produceDone
	defer r.cons.Close()
	defer r.prod.Close()
	fctx, cancel := context.WithTimeout(ctx, r.opts.DrainTimeout)
	defer cancel()
	err := r.prod.Flush(fctx)
	if err != nil {
		r.stopConsumer()
		return r.report(), fmt.Errorf("ledger: flush producer: %w", err)
	}
	// The client may pick a seed broker that is gone (after a whole fleet was
	// replaced, every seed is); another try reaches a live one.
	var end kadm.ListedOffsets
	for {
		end, err = kadm.NewClient(r.prod).ListEndOffsets(fctx, r.opts.Topic)
		if err == nil {
			err = end.Error()
		}
		if err == nil {
			break
		}
		select {
		case <-fctx.Done():
			r.stopConsumer()
			return r.report(), fmt.Errorf("ledger: list end offsets: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !r.caughtUp(end) {
		select {
		case <-fctx.Done():
			r.stopConsumer()
			return r.report(), fmt.Errorf("ledger: consumer did not reach the end offsets within %s", r.opts.DrainTimeout)
		case <-tick.C:
		}
	}
	r.stopConsumer()
	return r.report(), nil
}

// report is the ledger's verdict plus what only the run knows.
func (r *Run) report() Report {
	rep := r.ledger.Report()
	r.mu.Lock()
	rep.ProduceErrors = r.produceErrs
	r.mu.Unlock()
	return rep
}

func (r *Run) stopConsumer() {
	r.cancelConsume()
	<-r.consumeDone
}

func (r *Run) caughtUp(end kadm.ListedOffsets) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	caught := true
	end.Each(func(o kadm.ListedOffset) {
		if r.consumed[o.Partition] < o.Offset {
			caught = false
		}
	})
	return caught
}
