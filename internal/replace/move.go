package replace

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/fleetd/fleetd/internal/health"
)

// moveDone is the only definition of "moved": the replica set equals the
// target, the ISR holds every target replica, and the reassignment is no
// longer listed.
func moveDone(p *health.Partition, to []int32) bool {
	if p.Reassigning || !slices.Equal(p.Replicas, to) {
		return false
	}
	for _, r := range to {
		if !slices.Contains(p.ISR, r) {
			return false
		}
	}
	return true
}

func partitionsByTP(s *health.Snapshot) map[health.TP]*health.Partition {
	m := make(map[health.TP]*health.Partition, len(s.Partitions))
	for i := range s.Partitions {
		m[s.Partitions[i].TP] = &s.Partitions[i]
	}
	return m
}

func (e *Executor) move(ctx context.Context, r *Record) error {
	for r.BatchesDone < len(r.Plan.Batches) {
		i := r.BatchesDone
		b := r.Plan.Batches[i]
		if err := e.runBatch(ctx, r, b.Moves, r.Plan.New, i, len(r.Plan.Batches), fmt.Sprintf("batch-submitted:%d", i)); err != nil {
			return err
		}
		r.BatchesDone++
		r.BytesMoved += b.Bytes
		if err := e.save(ctx, r); err != nil {
			return err
		}
		e.event(fmt.Sprintf("batch-done:%d", i), r)
	}
	return nil
}

// runBatch submits the moves not yet done (resubmitting the same target is
// harmless, so a resumed batch simply continues) and waits until all are
// done, dest dies, the copy stalls, or the batch times out.
func (e *Executor) runBatch(ctx context.Context, r *Record, moves []Move, dest int32, index, total int, event string) error {
	snap, err := e.Cluster.Snapshot(ctx)
	if err != nil {
		return err
	}
	parts := partitionsByTP(snap)
	targets := map[health.TP][]int32{}
	var bytes int64
	for _, m := range moves {
		bytes += m.Bytes
		p, ok := parts[m.TP]
		if !ok {
			return &personError{fmt.Errorf("partition %s vanished during the replacement", m.TP)}
		}
		if !moveDone(p, m.To) && !(p.Reassigning && slices.Equal(p.Target(), m.To)) {
			targets[m.TP] = m.To
		}
	}
	if len(targets) > 0 {
		if err := e.Cluster.Reassign(ctx, targets); err != nil {
			return err
		}
	}
	e.event(event, r)
	timeout := e.Opts.BatchTimeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
		if bps, ok := e.throttleOf(r).BytesPerSec(); ok {
			timeout = max(timeout, 3*time.Duration(float64(bytes)/float64(bps)*float64(time.Second)))
		}
	}
	st := stallTracker{}
	deadPolls := 0
	return e.poll(ctx, r, fmt.Sprintf("batch %d of %d", index+1, total), timeout, func(ctx context.Context) (bool, error) {
		snap, err := e.Cluster.Snapshot(ctx)
		if err != nil {
			return false, err
		}
		if !alive(snap, dest) {
			// A broker briefly missing from one answer is not dead; three
			// polls in a row is.
			if deadPolls++; deadPolls >= 3 {
				return false, fatal("broker %d, the destination of the copy, is down", dest)
			}
			return false, nil
		}
		deadPolls = 0
		parts := partitionsByTP(snap)
		done := 0
		for _, m := range moves {
			if p := parts[m.TP]; p != nil && moveDone(p, m.To) {
				done++
			}
		}
		var copied int64
		if sizes, err := e.Cluster.ReplicaBytes(ctx, dest); err == nil {
			for _, m := range moves {
				copied += sizes[m.TP]
			}
		}
		stalled, serr := st.observe(e, r, copied, done == len(moves))
		e.progress(Progress{ID: r.ID, Phase: r.Phase, Step: r.Step, Batch: index + 1, Batches: total,
			PartitionsDone: e.partitionsBefore(r, index) + done, Partitions: e.partitionsTotal(r, len(moves)),
			BytesCopied: r.BytesMoved + copied, BytesTotal: e.bytesTotal(r, bytes), UnderReplicated: len(health.UnderReplicated(snap)), Stalled: stalled})
		if serr != nil {
			return false, serr
		}
		return done == len(moves), nil
	})
}

func (e *Executor) partitionsBefore(r *Record, index int) int {
	if r.Phase != PhaseRunning || r.Plan == nil {
		return 0
	}
	n := 0
	for _, b := range r.Plan.Batches[:index] {
		n += len(b.Moves)
	}
	return n
}

func (e *Executor) partitionsTotal(r *Record, fallback int) int {
	if r.Phase != PhaseRunning || r.Plan == nil {
		return fallback
	}
	return r.Plan.Partitions
}

func (e *Executor) bytesTotal(r *Record, fallback int64) int64 {
	if r.Phase != PhaseRunning || r.Plan == nil {
		return fallback
	}
	return r.Plan.TotalBytes
}

// stallTracker follows copied bytes. Below StallMinRate for StallWarn it
// reports a stall (a throttle below the partitions' ingress looks like this);
// no progress at all for StallAbort is fatal.
type stallTracker struct {
	lastBytes    int64
	lastAdvance  time.Time
	windowStart  time.Time
	windowBytes  int64
	warned       bool
	stalledState bool
}

func (s *stallTracker) observe(e *Executor, r *Record, copied int64, done bool) (bool, error) {
	now := e.Opts.Now()
	if s.lastAdvance.IsZero() {
		s.lastAdvance, s.windowStart, s.lastBytes, s.windowBytes = now, now, copied, copied
		return false, nil
	}
	if done {
		return false, nil
	}
	if copied > s.lastBytes {
		s.lastBytes, s.lastAdvance = copied, now
	}
	if now.Sub(s.windowStart) >= e.Opts.StallWarn {
		rate := float64(copied-s.windowBytes) / now.Sub(s.windowStart).Seconds()
		s.stalledState = rate < float64(e.Opts.StallMinRate)
		if s.stalledState && !s.warned {
			e.logger(r).Warn().Float64("bytes_per_sec", rate).Dur("window", e.Opts.StallWarn).
				Msg("copy is slow: is the throttle below the partitions' write rate?")
			s.warned = true
		}
		s.windowStart, s.windowBytes = now, copied
	}
	if now.Sub(s.lastAdvance) >= e.Opts.StallAbort {
		return true, fatal("copy made no progress for %s", e.Opts.StallAbort)
	}
	return s.stalledState, nil
}

// cancelMoves (rollback) cancels this replacement's in-flight reassignments;
// a cancelled partition returns to its original replicas.
func (e *Executor) cancelMoves(ctx context.Context, r *Record) error {
	if r.Plan == nil {
		return nil
	}
	own := r.Own()
	listed := func(ctx context.Context) ([]health.TP, error) {
		snap, err := e.Cluster.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		var tps []health.TP
		for _, tp := range health.Reassigning(snap) {
			if own[tp] {
				tps = append(tps, tp)
			}
		}
		return tps, nil
	}
	tps, err := listed(ctx)
	if err != nil {
		return err
	}
	if err := e.Cluster.CancelReassign(ctx, tps); err != nil {
		return err
	}
	return e.poll(ctx, r, "cancellation of reassignments", 2*time.Minute, func(ctx context.Context) (bool, error) {
		tps, err := listed(ctx)
		return len(tps) == 0, err
	})
}

// moveBack (rollback) moves every partition that already reached the new
// broker back to the old one, so the cluster ends as it began.
func (e *Executor) moveBack(ctx context.Context, r *Record) error {
	if r.Plan == nil {
		return nil
	}
	snap, err := e.Cluster.Snapshot(ctx)
	if err != nil {
		return err
	}
	moved := map[health.TP][]int32{}
	for _, p := range snap.Partitions {
		if slices.Contains(p.Replicas, r.Plan.New) {
			moved[p.TP] = p.Replicas
		}
	}
	rev := r.Plan.Reverse(moved)
	if rev.Partitions == 0 {
		return nil
	}
	e.logger(r).Warn().Int("partitions", rev.Partitions).Msg("moving partitions back to the old broker")
	moves := rev.Batches[0].Moves
	conc := max(r.Plan.Options.Concurrency, 1)
	for start := 0; start < len(moves); start += conc {
		chunk := moves[start:min(start+conc, len(moves))]
		if err := e.runBatch(ctx, r, chunk, r.Plan.Old, start/conc, (len(moves)+conc-1)/conc, "rollback-submitted"); err != nil {
			return err
		}
	}
	return nil
}

// removeNew (rollback) retires the new broker if, and only if, it holds
// nothing; otherwise a person decides.
// findNewInstance makes sure r names its new instance: fleetd may have
// died inside Launch, leaving an instance whose id was never saved; it is
// found by its node id. found is false when there is none.
func (e *Executor) findNewInstance(ctx context.Context, r *Record) (found bool, err error) {
	if r.NewInstance != "" {
		return true, nil
	}
	in, found, err := e.instance(ctx, r.NewBroker)
	if err != nil || !found {
		return false, err
	}
	r.NewInstance = in.ID
	return true, nil
}

func (e *Executor) removeNew(ctx context.Context, r *Record) error {
	if r.Strategy != StrategyMove || r.NewBroker < 0 {
		return nil
	}
	if found, err := e.findNewInstance(ctx, r); !found {
		return err
	}
	if err := e.requireEmpty(ctx, r.NewBroker); err != nil {
		return err
	}
	if err := e.guardStep(ctx, r); err != nil {
		return err
	}
	if err := e.Provider.Terminate(ctx, r.NewInstance); err != nil {
		return fmt.Errorf("terminate new instance %s: %w", r.NewInstance, err)
	}
	return e.unregister(ctx, r, r.NewBroker)
}
