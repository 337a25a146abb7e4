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
	// broker, so it is also the batch size.
	Concurrency int   `json:"concurrency"`
	Order       Order `json:"order"`
	// Throttle is the replication throttle in bytes per second (0: none).
	Throttle int64 `json:"throttle"`
}

// Move is one partition's reassignment.
type Move struct {
	health.TP
	From  []int32 `json:"from"`
	To    []int32 `json:"to"`
	Bytes int64   `json:"bytes"`
}

// Batch is a set of moves submitted together.
type Batch struct {
	Moves []Move `json:"moves"`
	Bytes int64  `json:"bytes"`
}

// Plan is a move of every replica of Old to New.
type Plan struct {
	Old        int32       `json:"old"`
	New        int32       `json:"new"`
	Rack       string      `json:"rack"`
	Options    PlanOptions `json:"options"`
	Batches    []Batch     `json:"batches"`
	Partitions int         `json:"partitions"`
	TotalBytes int64       `json:"total_bytes"`
	// ETA is the copy time at the throttle (0 when unthrottled).
	ETA time.Duration `json:"eta"`
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
		moves = append(moves, Move{TP: part.TP, From: slices.Clone(target), To: to, Bytes: part.Bytes})
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
	for start := 0; start < len(moves); start += o.Concurrency {
		b := Batch{Moves: moves[start:min(start+o.Concurrency, len(moves))]}
		for _, m := range b.Moves {
			b.Bytes += m.Bytes
		}
		p.Batches = append(p.Batches, b)
		p.TotalBytes += b.Bytes
	}
	p.Partitions = len(moves)
	if o.Throttle > 0 {
		p.ETA = time.Duration(float64(p.TotalBytes) / float64(o.Throttle) * float64(time.Second)).Round(time.Second)
	}
	return p, nil
}

// Reverse is the plan that moves everything of p's that reached New back to
// Old, for a rollback. moved lists the partitions that now hold New.
func (p *Plan) Reverse(moved map[health.TP][]int32) *Plan {
	r := &Plan{Old: p.New, New: p.Old, Rack: p.Rack, Options: p.Options}
	var b Batch
	for _, batch := range p.Batches {
		for _, m := range batch.Moves {
			cur, ok := moved[m.TP]
			if !ok {
				continue
			}
			idx := slices.Index(cur, p.New)
			if idx < 0 || slices.Contains(cur, p.Old) {
				continue
			}
			to := slices.Clone(cur)
			to[idx] = p.Old
			b.Moves = append(b.Moves, Move{TP: m.TP, From: cur, To: to, Bytes: m.Bytes})
			b.Bytes += m.Bytes
		}
	}
	if len(b.Moves) > 0 {
		r.Batches = []Batch{b}
		r.Partitions, r.TotalBytes = len(b.Moves), b.Bytes
	}
	return r
}
