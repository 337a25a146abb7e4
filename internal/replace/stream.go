package replace

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/fleetd/fleetd/internal/health"
)

// The mover streams: up to Concurrency partition moves are in flight, and
// the next is submitted as soon as one is done (a batch no longer waits for
// its slowest partition). Small moves are admitted beyond Concurrency while
// the window holds less than WindowTime of copying at the throttle (at most
// maxInFlightMoves), so that many small partitions move at the same per-byte
// speed as a few large ones. Each poll reads only the moves in flight
// (Cluster.Watch), the throttled-replica lists name only them, and the
// replication rate is steered so that the copy achieves the throttle
// (rateSteer).

// moveState is one move's state in the window.
type moveState uint8

const (
	movePending moveState = iota
	moveInFlight
	moveDone
)

// window is the mover's state over one list of moves to one destination.
type window struct {
	moves    []Move
	dest     int32
	state    []moveState
	inflight []int // indexes into moves, submission order
	done     int
	// listBytes are the in-flight moves' share of each topic's
	// throttled-replica list.
	listBytes map[string]int
	// doneBytes are the done moves' bytes (planned, or as last measured
	// on dest when live writes made them more); last the in-flight moves'
	// sizes on dest at the last poll (progress and rate).
	doneBytes int64
	last      map[health.TP]int64
	// copied accumulates bytes written to dest by in-flight moves.
	copied int64
}

// maxInFlightMoves bounds the moves in flight however small they are;
// unthrottledWindow is the window's bytes when there is no throttle.
const (
	maxInFlightMoves  = 500
	unthrottledWindow = 512 << 20
)

func newWindow(moves []Move, dest int32, cursor int) *window {
	w := &window{moves: moves, dest: dest, state: make([]moveState, len(moves)), last: map[health.TP]int64{}, listBytes: map[string]int{}}
	// Submitted before (a resumed move): the first poll finds out which
	// are done, in flight, or never reached Kafka.
	for i := range min(cursor, len(moves)) {
		w.add(i)
	}
	return w
}

// listCost is what m adds to its topic's leader-side throttled-replica
// list ("p:b," per existing replica), the longer of the two lists.
func listCost(m Move) int {
	n := 0
	for _, b := range m.From {
		n += len(fmt.Sprintf("%d:%d,", m.Partition, b))
	}
	return n
}

func (w *window) add(i int) {
	w.state[i] = moveInFlight
	w.inflight = append(w.inflight, i)
	w.listBytes[w.moves[i].Topic] += listCost(w.moves[i])
}

func (w *window) remove(i int) {
	w.listBytes[w.moves[i].Topic] -= listCost(w.moves[i])
}

// admits says whether m may join the window: while fewer than conc moves
// are in flight, or while the bytes left to copy in flight are below
// windowBytes; and never when its topic's throttled-replica list would
// outgrow what Kafka accepts in a config value.
func (w *window) admits(m Move, conc int, windowBytes int64) bool {
	if w.listBytes[m.Topic]+listCost(m) > maxReplicaList || len(w.inflight) >= maxInFlightMoves {
		return false
	}
	if len(w.inflight) < conc {
		return true
	}
	return w.left()+m.Bytes <= windowBytes
}

// describe names the moves in flight with their progress on dest.
func (w *window) describe() []string {
	out := make([]string, 0, len(w.inflight))
	for _, i := range w.inflight {
		m := w.moves[i]
		out = append(out, fmt.Sprintf("%s %s/%s", m.TP, humanize.IBytes(uint64(max(w.last[m.TP], 0))), humanize.IBytes(uint64(max(m.Bytes, 0)))))
	}
	return out
}

// left is the bytes the moves in flight have yet to copy (by the plan's
// sizes).
func (w *window) left() int64 {
	var n int64
	for _, i := range w.inflight {
		n += max(w.moves[i].Bytes-w.last[w.moves[i].TP], 0)
	}
	return n
}

func (w *window) tps() []health.TP {
	out := make([]health.TP, len(w.inflight))
	for j, i := range w.inflight {
		out[j] = w.moves[i].TP
	}
	return out
}

// copyDone is the only definition of a copy done: the replica set is the
// copy target, every target replica is in the ISR, and the reassignment is
// no longer listed.
func copyDone(p WatchedPartition, to []int32) bool {
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

// streamSpec says what one stream is: its moves, the destination, and
// whether its progress is part of the record (the forward move) or derived
// again from the cluster on resume (a rollback's move back).
type streamSpec struct {
	what    string
	moves   []Move
	dest    int32
	durable bool
	// cursor is where the stream starts (the record's, when durable).
	cursor int
}

// stream runs moves through the window until every one is done, dest dies,
// the copy makes no progress for StallAbort, or the bound passes.
func (e *Executor) stream(ctx context.Context, r *Record, s streamSpec) error {
	w := newWindow(s.moves, s.dest, s.cursor)
	cursor := min(s.cursor, len(s.moves))
	var total int64
	for _, m := range s.moves {
		total += m.Bytes
	}
	timeout := 30 * time.Minute
	if bps, ok := e.throttleOf(r).BytesPerSec(); ok {
		timeout = max(timeout, 3*time.Duration(float64(total)/float64(bps)*float64(time.Second)))
	}
	st := stallTracker{inflight: w.describe}
	steer := newRateSteer(e, r)
	var conv convergence
	var behind []string
	var sampled time.Time
	deadPolls := 0
	first := true
	logged := e.Opts.Now()
	return e.pollEvery(ctx, r, s.what, timeout, e.Opts.MovePoll, func(ctx context.Context) (bool, error) {
		began := time.Now()
		watched, err := e.Cluster.Watch(ctx, w.tps(), s.dest)
		watchTook := time.Since(began)
		if err != nil {
			return false, err
		}
		if !watched.DestAlive {
			// A broker briefly missing from one answer is not dead; three
			// polls in a row is.
			if deadPolls++; deadPolls >= 3 {
				return false, fatal("broker %d, the destination of the copy, is down", s.dest)
			}
			return false, nil
		}
		deadPolls = 0
		var resubmit []int
		doneBefore := w.done
		still := w.inflight[:0:0]
		var inflightBytes int64
		for _, i := range w.inflight {
			m := w.moves[i]
			p, ok := watched.Partitions[m.TP]
			if !ok {
				return false, &personError{fmt.Errorf("partition %s vanished during the replacement", m.TP)}
			}
			if size, ok := watched.DestBytes[m.TP]; ok {
				if prev, seen := w.last[m.TP]; seen && size > prev {
					w.copied += size - prev
				}
				w.last[m.TP] = size
			}
			switch {
			case copyDone(p, m.CopyTarget()):
				w.state[i] = moveDone
				w.remove(i)
				w.done++
				// Counted as last seen on dest when writes during the
				// copy grew it past the plan: bytes copied never go back
				// when a move ends.
				w.doneBytes += max(m.Bytes, w.last[m.TP])
				delete(w.last, m.TP)
				continue
			case !p.Reassigning && sameSet(p.Replicas, m.From):
				// Recorded as submitted, but Kafka has no reassignment
				// (fleetd died between the two, or someone cancelled it).
				resubmit = append(resubmit, i)
			case !p.Reassigning && !sameSet(p.Replicas, m.CopyTarget()) && !sameSet(p.Replicas, union(m.From, m.CopyTarget())):
				// Neither where it was, nor on its way (Metadata and
				// ListPartitionReassignments are two reads: a move that
				// completes between them shows the union, unlisted), nor
				// where fleetd sends it: something else reassigned it, and
				// waiting would never end.
				return false, &personError{fmt.Errorf("partition %s has replicas %v, neither the plan's %v nor its copy target %v: something other than fleetd reassigned it during the move",
					m.TP, p.Replicas, m.From, m.CopyTarget())}
			}
			still = append(still, i)
			inflightBytes += w.last[m.TP]
		}
		w.inflight = still
		// The window follows the throttle and, with an adaptive throttle,
		// its concurrency.
		conc := e.windowConc(r)
		windowBytes := int64(unthrottledWindow)
		if bps, ok := e.throttleOf(r).BytesPerSec(); ok {
			windowBytes = int64(float64(bps) * e.Opts.WindowTime.Seconds())
		}
		var fresh []int
		for cursor < len(s.moves) && w.admits(s.moves[cursor], conc, windowBytes) {
			w.add(cursor)
			fresh = append(fresh, cursor)
			cursor++
		}
		submit := append(resubmit, fresh...)
		if w.done != doneBefore || len(submit) > 0 || first {
			if err := e.followWindow(ctx, r, w, s.durable, cursor, len(submit) > 0, first); err != nil {
				return false, err
			}
			if s.durable && w.done != doneBefore {
				e.event(fmt.Sprintf("moves-done:%d", w.done), r)
			}
			if len(fresh) > 0 && s.durable {
				e.event(fmt.Sprintf("moves-submitted:%d", cursor), r)
			}
		}
		first = false
		followTook := time.Since(began) - watchTook
		if len(submit) > 0 {
			targets := make(map[health.TP][]int32, len(submit))
			for _, i := range submit {
				targets[w.moves[i].TP] = w.moves[i].CopyTarget()
			}
			if err := e.Cluster.Reassign(ctx, targets); err != nil {
				return false, err
			}
		}
		// What a poll costs, at debug level: where a slow move's time goes.
		e.logger(r).Debug().Int("in_flight", len(w.inflight)).Int("done", w.done).Int("submitted", len(submit)).
			Float64("watch_seconds", watchTook.Seconds()).Float64("window_seconds", followTook.Seconds()).Float64("poll_seconds", time.Since(began).Seconds()).Msg(s.what + ": poll")
		finished := w.done == len(s.moves)
		rate := steer.observe(ctx, w.copied, len(w.inflight) > 0 && !finished)
		// Every RateInterval: which moves fall behind their writes, and
		// what the adaptive throttle makes of the producers' health.
		if now := e.Opts.Now(); !finished && now.Sub(sampled) >= e.Opts.RateInterval {
			sampled = now
			behind = conv.observe(ctx, e, r, w)
			e.adapt(ctx, r, w.tps(), behind)
		}
		// Moves with nothing left to copy (empty partitions) wait on Kafka,
		// not on the throttle: they are no stall.
		stalled, serr := st.observe(e, r, w.copied+int64(w.done), finished || w.left() == 0)
		copiedNow := w.doneBytes + inflightBytes
		// Live writes can grow the data past the plan; the total shown grows
		// with it rather than read "110% copied".
		total = max(total, copiedNow)
		eta := liveETA(total-copiedNow, rate, e.throttleOf(r))
		e.progress(Progress{ID: r.ID, RequestID: r.RequestID, Phase: r.Phase, Step: r.Step, InFlight: len(w.inflight), ETASeconds: eta,
			PartitionsDone: w.done, Partitions: len(s.moves), BytesCopied: copiedNow, BytesTotal: total,
			BytesPerSec: rate, Throttle: e.throttleOf(r).String(), AppliedRate: appliedRate(r), Stalled: stalled || len(behind) > 0,
			Behind: behind})
		// A progress line every progressLogEvery, so a log alone tells how
		// a long move went.
		if now := e.Opts.Now(); !finished && now.Sub(logged) >= progressLogEvery {
			logged = now
			e.logger(r).Info().Int("partitions_done", w.done).Int("partitions", len(s.moves)).Int("in_flight", len(w.inflight)).
				Int64("bytes_copied", copiedNow).Int64("bytes_total", total).Int64("bytes_per_sec", rate).Int64("eta_seconds", eta).
				Bool("stalled", stalled || len(behind) > 0).Msg(s.what + ": progress")
		}
		if serr != nil {
			return false, serr
		}
		return finished, nil
	})
}

// progressLogEvery is how often a move logs its progress at info.
const progressLogEvery = 30 * time.Second

// union is a's replicas, then b's not in a.
func union(a, b []int32) []int32 {
	out := slices.Clone(a)
	for _, r := range b {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// followWindow makes the throttled-replica lists name exactly the moves in
// flight (so no list can outgrow Kafka's 32,767-byte config value, whatever
// a topic's size) and records, in one save before anything is set or
// submitted: the lists (a topic's first with the value it replaces), the
// cursor and the moves done. The lists change only while fleetd's
// throttles are in force. force sets every list again (a resumed move
// cannot know which of the recorded values reached Kafka).
func (e *Executor) followWindow(ctx context.Context, r *Record, w *window, durable bool, cursor int, submitting, force bool) error {
	set := map[ConfigKey]*string{}
	if throttlesActive(r) {
		want := windowLists(w)
		known := len(r.Throttles)
		if err := e.recordThrottles(ctx, r, want); err != nil {
			return err
		}
		for i := range r.Throttles {
			t := &r.Throttles[i]
			if t.Key.Kind != TopicConfig {
				continue
			}
			// Value is what fleetd set last ("": deleted). A topic that
			// left the window gets its previous value back.
			v, ok := want[t.Key]
			nv := restoredList(t.Previous, v, ok)
			if !force && i < known && t.Value == str(nv) {
				continue
			}
			t.Value = str(nv)
			set[t.Key] = nv
		}
	}
	changed := len(set) > 0 || submitting
	if durable && (r.MoveCursor != cursor || r.MovesDone != w.done) {
		r.MoveCursor, r.MovesDone, r.BytesMoved = cursor, w.done, w.doneBytes
		changed = true
	}
	if changed {
		if err := e.save(ctx, r); err != nil {
			return err
		}
	}
	if len(set) > 0 {
		if err := e.Cluster.SetConfigs(ctx, set); err != nil {
			return fmt.Errorf("throttled replicas of the moves in flight: %w", err)
		}
	}
	return nil
}

// restoredList is a recorded topic list's value for the window: the
// operator's previous value merged with ours, or the previous value alone
// (nil: delete) when the topic has no move in flight.
func restoredList(prev *string, ours string, inWindow bool) *string {
	if !inWindow {
		return prev
	}
	v := mergeReplicaList(str(prev), ours)
	return &v
}

// windowLists are the throttled-replica lists of the moves in flight, as
// kafka-reassign-partitions sets them: leader-side the existing replicas,
// follower-side the new ones. Kafka throttles only replicas out of the ISR.
func windowLists(w *window) map[ConfigKey]string {
	leaders := map[string][]string{}
	followers := map[string][]string{}
	for _, i := range w.inflight {
		m := w.moves[i]
		for _, b := range m.From {
			leaders[m.Topic] = append(leaders[m.Topic], fmt.Sprintf("%d:%d", m.Partition, b))
		}
		for _, b := range m.To {
			if !slices.Contains(m.From, b) {
				followers[m.Topic] = append(followers[m.Topic], fmt.Sprintf("%d:%d", m.Partition, b))
			}
		}
	}
	out := map[ConfigKey]string{}
	for t, l := range leaders {
		out[ConfigKey{Kind: TopicConfig, Resource: t, Name: leaderReplicas}] = strings.Join(l, ",")
	}
	for t, l := range followers {
		out[ConfigKey{Kind: TopicConfig, Resource: t, Name: followerReplicas}] = strings.Join(l, ",")
	}
	return out
}

// throttlesActive: fleetd's rates are set and not removed yet.
func throttlesActive(r *Record) bool {
	if r.ThrottlesRemoved {
		return false
	}
	for _, t := range r.Throttles {
		if t.Key.Name == leaderRate || t.Key.Name == followerRate {
			return true
		}
	}
	return false
}

func sortedKeys(keys []ConfigKey) []ConfigKey {
	slices.SortFunc(keys, func(a, b ConfigKey) int {
		return strings.Compare(string(a.Kind)+"\x00"+a.Resource+"\x00"+a.Name, string(b.Kind)+"\x00"+b.Resource+"\x00"+b.Name)
	})
	return keys
}

// liveETA is the whole seconds the copy left takes at the measured rate, or
// at the throttle until a rate has been measured (a move shorter than one
// RateInterval would otherwise never show one); 0 when neither is known.
func liveETA(left, measured int64, throttle Throttle) int64 {
	rate := measured
	if rate <= 0 {
		rate, _ = throttle.BytesPerSec()
	}
	if rate <= 0 || left <= 0 {
		return 0
	}
	return (left + rate - 1) / rate
}
