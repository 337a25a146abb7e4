package replace

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/fleetd/fleetd/internal/health"
)

// Order is the order partitions are moved in.
type Order string

const (
	// SmallestFirst finishes many partitions early and keeps data flowing.
	SmallestFirst Order = "smallest-first"
	LargestFirst  Order = "largest-first"
	// ByName moves partitions in topic/partition order.
	ByName Order = "by-name"
)

// Orders are the move orders there are (config validation and flags use it).
var Orders = []Order{SmallestFirst, LargestFirst, ByName}

// PlanOptions tune a move plan.
type PlanOptions struct {
	// Concurrency is the most partition moves in flight per broker (default 5,
	// as Cruise Control). Every move of a 1:1 substitution involves the new
	// broker, so it is the size of the mover's window: the next move is
	// submitted as soon as one is done.
	Concurrency int   `json:"concurrency"`
	Order       Order `json:"order"`
	// Throttle is the replication throttle in bytes per second (0: none).
	Throttle int64 `json:"throttle"`
}

// Move is one partition's reassignment.
type Move struct {
	health.TP
	From []int32 `json:"from"`
	// Copy is the target while the new replica copies: To with the new
	// broker last, so that a broker still busy copying is never the
	// partition's leader (Kafka elects the first in-sync replica of the
	// target when the old leader leaves, and the preferred leader is the
	// first). Empty when it is To already. The reorder step then moves the
	// new broker to the old one's position, which copies nothing.
	Copy  []int32 `json:"copy,omitempty"`
	To    []int32 `json:"to"`
	Bytes int64   `json:"bytes"`
	// Tiered, for a topic with remote storage, is the log's span: the new
	// replica copies only from its LocalStart (Bytes is the local log's).
	Tiered *TieredSpan `json:"tiered,omitempty"`
}

// CopyTarget is the replica list the copy is submitted with.
func (m Move) CopyTarget() []int32 {
	if len(m.Copy) > 0 {
		return m.Copy
	}
	return m.To
}

// Batch is how records written before the mover streamed grouped moves;
// such a plan is read into Moves (Normalize).
type Batch struct {
	Moves []Move `json:"moves"`
	Bytes int64  `json:"bytes"`
}

// Plan is a move of every replica of Old to New.
type Plan struct {
	Old     int32       `json:"old"`
	New     int32       `json:"new"`
	Rack    string      `json:"rack"`
	Options PlanOptions `json:"options"`
	// Moves are submitted in this order (the configured policy's), up to
	// Options.Concurrency at a time.
	Moves []Move `json:"moves"`
	// LegacyBatches: a plan written before moves streamed (read only).
	LegacyBatches []Batch `json:"batches,omitempty"`
	Partitions    int     `json:"partitions"`
	TotalBytes    int64   `json:"total_bytes"`
	// ETA is the expected copy time (0 when unthrottled): bytes / throttle,
	// scaled by what this cluster's past moves achieved; ETABasis says which.
	ETA      time.Duration `json:"eta"`
	ETABasis string        `json:"eta_basis,omitempty"`
	// Tiered counts the moves of tiered partitions (remote storage), and
	// TieredNote says what the plan made of them.
	Tiered     int    `json:"tiered,omitempty"`
	TieredNote string `json:"tiered_note,omitempty"`
}

// markTiered puts each tiered partition's span on its move and says how
// much of their logs stays remote.
func (p *Plan) markTiered(spans map[health.TP]TieredSpan) {
	var remote, local int64
	for i := range p.Moves {
		if s, ok := spans[p.Moves[i].TP]; ok {
			p.Moves[i].Tiered = &s
			p.Tiered++
			remote += s.Remote()
			local += max(s.End-s.LocalStart, 0)
		}
	}
	if p.Tiered > 0 {
		p.TieredNote = fmt.Sprintf("%d partitions have remote storage: a new replica copies only the local log (%d offsets), not the %d offsets in remote storage; their bytes are the local log's", p.Tiered, local, remote)
	}
}

// Normalize reads a plan written before moves streamed (batches) into
// Moves; it returns how many moves the first done batches held, which
// were all submitted.
func (p *Plan) Normalize(batchesDone int) (submitted int) {
	if len(p.Moves) > 0 || len(p.LegacyBatches) == 0 {
		return 0
	}
	for i, b := range p.LegacyBatches {
		p.Moves = append(p.Moves, b.Moves...)
		if i < batchesDone {
			submitted += len(b.Moves)
		}
	}
	p.LegacyBatches = nil
	return submitted
}

func (o *PlanOptions) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 5
	}
	if o.Order == "" {
		o.Order = SmallestFirst
	}
}

// PlanMove substitutes new for old in every partition old holds, keeping each
// replica's position (so leadership preference moves with it) and nothing
// else: the rest of the cluster's balance is untouched. It does no I/O.
func PlanMove(s *health.Snapshot, old, new int32, rack string, o PlanOptions) (*Plan, error) {
	o.defaults()
	if old == new {
		return nil, fmt.Errorf("plan: old and new broker are both %d", old)
	}
	switch o.Order {
	case SmallestFirst, LargestFirst, ByName:
	default:
		return nil, fmt.Errorf("plan: unknown order %q (want %s, %s or %s)", o.Order, SmallestFirst, LargestFirst, ByName)
	}
	p := &Plan{Old: old, New: new, Rack: rack, Options: o}
	var moves []Move
	for i := range s.Partitions {
		part := &s.Partitions[i]
		target := part.Target()
		idx := slices.Index(target, old)
		if idx < 0 {
			continue
		}
		if slices.Contains(target, new) {
			return nil, fmt.Errorf("plan: %s already has broker %d as a replica", part.TP, new)
		}
		to := slices.Clone(target)
		to[idx] = new
		moves = append(moves, Move{TP: part.TP, From: slices.Clone(target), Copy: copyOrder(to, new), To: to, Bytes: part.Bytes})
	}
	if len(moves) == 0 {
		return p, nil
	}
	sort.SliceStable(moves, func(i, j int) bool {
		a, b := moves[i], moves[j]
		switch o.Order {
		case SmallestFirst:
			if a.Bytes != b.Bytes {
				return a.Bytes < b.Bytes
			}
		case LargestFirst:
			if a.Bytes != b.Bytes {
				return a.Bytes > b.Bytes
			}
		}
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	p.Moves = moves
	for _, m := range moves {
		p.TotalBytes += m.Bytes
	}
	p.Partitions = len(moves)
	p.estimate(nil)
	return p, nil
}

// copyOrder is to with the new broker moved last, or nil when it is last.
func copyOrder(to []int32, new int32) []int32 {
	if to[len(to)-1] == new {
		return nil
	}
	out := slices.DeleteFunc(slices.Clone(to), func(b int32) bool { return b == new })
	return append(out, new)
}

// Reverse is the plan that puts every partition of p back as it was,
// its original replicas in their original order, for a rollback: the
// partitions that reached New go back to Old, and those only reordered
// (demote-old, a cancelled copy) get their order, and so their preferred
// leader, back. current holds the current replicas of p's partitions.
func (p *Plan) Reverse(current map[health.TP][]int32) *Plan {
	r := &Plan{Old: p.New, New: p.Old, Rack: p.Rack, Options: p.Options}
	for _, m := range p.Moves {
		cur, ok := current[m.TP]
		if !ok || slices.Equal(cur, m.From) {
			continue
		}
		mv := Move{TP: m.TP, From: cur, To: slices.Clone(m.From)}
		if slices.Contains(cur, p.New) {
			mv.Bytes = m.Bytes
		}
		r.Moves = append(r.Moves, mv)
		r.TotalBytes += mv.Bytes
	}
	r.Partitions = len(r.Moves)
	return r
}
