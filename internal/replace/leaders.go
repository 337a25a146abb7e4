package replace

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/fleetd/fleetd/internal/health"
)

// Leadership goes to a new replica only once it is ready: during the copy
// the new broker is last in every replica list (Move.Copy) and leads
// nothing; when the whole copy is done, reorder puts it where the old
// broker was (no data moves), and electLeaders moves leadership to it a
// settle time later, a few partitions at a time.

// reorderChunk bounds one reassignment request of the reorder;
// maxLeaderGroups bounds the number of election groups (and pauses);
// leaderPoll is how often an election's outcome is checked.
const (
	reorderChunk    = 500
	maxLeaderGroups = 20
	leaderPoll      = 250 * time.Millisecond
)

// reorder submits the plan's final replica order for every move whose copy
// ran with the new broker last, and waits until Kafka shows it.
func (e *Executor) reorder(ctx context.Context, r *Record) error {
	if r.Plan == nil {
		return nil
	}
	var moves []Move
	for _, m := range r.Plan.Moves {
		if len(m.Copy) > 0 {
			moves = append(moves, m)
		}
	}
	for start := 0; start < len(moves); start += reorderChunk {
		chunk := moves[start:min(start+reorderChunk, len(moves))]
		tps := make([]health.TP, len(chunk))
		for i, m := range chunk {
			tps[i] = m.TP
		}
		err := e.pollEvery(ctx, r, fmt.Sprintf("reorder of %d partitions", len(chunk)), e.Opts.LeaderTimeout, e.Opts.MovePoll, func(ctx context.Context) (bool, error) {
			w, err := e.Cluster.Watch(ctx, tps, r.Plan.New)
			if err != nil {
				return false, err
			}
			targets := map[health.TP][]int32{}
			for _, m := range chunk {
				p, ok := w.Partitions[m.TP]
				if !ok {
					return false, &personError{fmt.Errorf("partition %s vanished during the replacement", m.TP)}
				}
				if !slices.Equal(p.Replicas, m.To) && !p.Reassigning {
					targets[m.TP] = m.To
				}
			}
			if len(targets) == 0 {
				return true, nil
			}
			// A repeated order-only reassignment is harmless.
			return false, e.Cluster.Reassign(ctx, targets)
		})
		if isTimeout(err) {
			// The copy is done; only leadership preference is off.
			e.logger(r).Warn().Err(err).Msg("new broker not moved to the old one's place in every replica list; continuing (leadership is not redundancy)")
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// leaderTPs are the partitions whose leadership the replacement touched.
func (e *Executor) leaderTPs(ctx context.Context, r *Record) ([]health.TP, error) {
	var tps []health.TP
	if r.Plan != nil && r.Strategy == StrategyMove {
		for _, m := range r.Plan.Moves {
			tps = append(tps, m.TP)
		}
		return tps, nil
	}
	snap, err := e.Cluster.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range snap.Partitions {
		if slices.Contains(p.Replicas, r.NewBroker) {
			tps = append(tps, p.TP)
		}
	}
	return tps, nil
}

// electLeaders restores preferred leadership once the new replicas have
// been in sync for LeaderSettle, LeaderGroup partitions at a time (larger
// groups when there would be more than 20) with LeaderPause between
// groups, so producers follow a few leaders at a time.
// Leadership is not redundancy: a group that does not settle in time is
// warned about and the next goes on.
func (e *Executor) electLeaders(ctx context.Context, r *Record) error {
	if err := e.settle(ctx, r); err != nil {
		return err
	}
	tps, err := e.leaderTPs(ctx, r)
	if err != nil {
		return err
	}
	// Only the partitions not led by their preferred replica need an
	// election.
	var need []health.TP
	for start := 0; start < len(tps); start += reorderChunk {
		chunk := tps[start:min(start+reorderChunk, len(tps))]
		w, err := e.Cluster.Watch(ctx, chunk, r.NewBroker)
		if err != nil {
			return err
		}
		for _, tp := range chunk {
			if p, ok := w.Partitions[tp]; ok && needsElection(p) {
				need = append(need, tp)
			}
		}
	}
	return e.electGroups(ctx, r, need, r.NewBroker)
}

// electGroups elects the preferred leaders of need in groups of
// LeaderGroup, but never more than maxLeaderGroups of them (2,000
// partitions must not take 200 pauses), LeaderPause apart, each group
// watched (through broker) until it settles or LeaderTimeout passes: then
// it is warned about, and the next goes on.
func (e *Executor) electGroups(ctx context.Context, r *Record, need []health.TP, broker int32) error {
	size := max(e.Opts.LeaderGroup, (len(need)+maxLeaderGroups-1)/maxLeaderGroups)
	for start := 0; start < len(need); start += size {
		if start > 0 && !sleep(ctx, e.Opts.LeaderPause) {
			return ctx.Err()
		}
		if start > 0 {
			e.calm(ctx, r)
		}
		group := need[start:min(start+size, len(need))]
		if err := e.Cluster.ElectPreferred(ctx, group); err != nil {
			return err
		}
		err := e.pollEvery(ctx, r, fmt.Sprintf("preferred leaders of %d partitions", len(group)), e.Opts.LeaderTimeout, min(e.Opts.MovePoll, leaderPoll), func(ctx context.Context) (bool, error) {
			w, err := e.Cluster.Watch(ctx, group, broker)
			if err != nil {
				return false, err
			}
			for _, tp := range group {
				if p, ok := w.Partitions[tp]; ok && needsElection(p) {
					return false, nil
				}
			}
			return true, nil
		})
		if isTimeout(err) {
			e.logger(r).Warn().Err(err).Msg("preferred leaders not restored; continuing (leadership is not redundancy)")
			continue
		}
		if err != nil {
			return err
		}
	}
	if len(need) > 0 {
		e.logger(r).Info().Int("partitions", len(need)).Int("group", size).Msg("preferred leaders elected")
	}
	return nil
}

// demoted is replicas with old moved last.
func demoted(replicas []int32, old int32) []int32 {
	out := slices.DeleteFunc(slices.Clone(replicas), func(b int32) bool { return b == old })
	return append(out, old)
}

// demoteOld moves leadership off the old broker before the copy begins, so
// that no partition changes leader while the copy runs (a completed move
// would otherwise take the old broker's leadership away mid-copy, and
// producers would see a leader change at every completion): an order-only
// reassignment puts the old broker last wherever it is the preferred
// leader, then preferred elections, a few groups at a time, move the
// leaders. Producers see one wave of leader changes before the copy, and
// one after it (elect-leaders), as with Kafka's own tool.
func (e *Executor) demoteOld(ctx context.Context, r *Record) error {
	if r.Plan == nil {
		return nil
	}
	old := r.Plan.Old
	var tps []health.TP
	target := map[health.TP][]int32{}
	for _, m := range r.Plan.Moves {
		tps = append(tps, m.TP)
		if m.From[0] == old && len(m.From) > 1 {
			target[m.TP] = demoted(m.From, old)
		}
	}
	var leading []health.TP
	for start := 0; start < len(tps); start += reorderChunk {
		chunk := tps[start:min(start+reorderChunk, len(tps))]
		err := e.pollEvery(ctx, r, fmt.Sprintf("demotion of broker %d in %d partitions", old, len(chunk)), e.Opts.LeaderTimeout, e.Opts.MovePoll, func(ctx context.Context) (bool, error) {
			w, err := e.Cluster.Watch(ctx, chunk, old)
			if err != nil {
				return false, err
			}
			submit := map[health.TP][]int32{}
			for _, tp := range chunk {
				p, ok := w.Partitions[tp]
				to, reorder := target[tp]
				if !ok || !reorder || !slices.Contains(p.Replicas, old) || p.Reassigning || slices.Equal(p.Replicas, to) {
					continue // gone, not led by preference, already moved, moving, or done
				}
				if sameSet(p.Replicas, to) {
					submit[tp] = to
				}
			}
			if len(submit) == 0 {
				for _, tp := range chunk {
					if p, ok := w.Partitions[tp]; ok && p.Leader == old && slices.Contains(p.Replicas, old) {
						leading = append(leading, tp)
					}
				}
				return true, nil
			}
			return false, e.Cluster.Reassign(ctx, submit) // order only: nothing is copied
		})
		if isTimeout(err) {
			e.logger(r).Warn().Err(err).Msg("old broker not moved last in every replica list; the copy goes on (leadership is not redundancy)")
			continue
		}
		if err != nil {
			return err
		}
	}
	return e.electGroups(ctx, r, leading, old)
}

// sameSet: a and b hold the same brokers, in any order.
func sameSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// needsElection: led by another replica while the preferred one is in sync.
func needsElection(p WatchedPartition) bool {
	return len(p.Replicas) > 0 && p.Leader >= 0 && p.Leader != p.Replicas[0] && slices.Contains(p.ISR, p.Replicas[0])
}

// settle waits until the new replicas have been in sync for LeaderSettle
// (from the record's CopiedAt; a record without one settles from now).
func (e *Executor) settle(ctx context.Context, r *Record) error {
	if err := e.copied(ctx, r); err != nil {
		return err
	}
	wait := r.CopiedAt.Add(e.Opts.LeaderSettle).Sub(e.Opts.Now())
	if wait > 0 && !sleep(ctx, min(wait, e.Opts.LeaderSettle)) {
		return ctx.Err()
	}
	return nil
}
