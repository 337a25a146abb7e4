// Package ledger proves that a Kafka operation lost nothing. A producer writes
// sequence-numbered records (acks=all, idempotent) to every partition of a
// topic; a consumer reads them back; the Ledger compares what the brokers
// acknowledged with what was read and reports, per partition, records lost,
// duplicated and read out of order.
//
// The Ledger itself is pure bookkeeping with no I/O, so it can be tested (and
// made to fail) without Kafka. A record whose produce failed is never counted
// as lost: only acknowledged records are promises.
package ledger

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Ledger records sequence numbers per partition. Safe for concurrent use.
type Ledger struct {
	mu    sync.Mutex
	parts map[int32]*partition
}

type partition struct {
	next     int64   // next sequence number to hand out
	acked    []bool  // acked[seq]
	seen     []uint8 // times seq was observed, saturating at 255
	maxSeen  int64   // highest seq observed so far, -1 before any
	outOrder int64
}

// New returns an empty ledger.
func New() *Ledger { return &Ledger{parts: map[int32]*partition{}} }

func (l *Ledger) part(p int32) *partition {
	pt := l.parts[p]
	if pt == nil {
		pt = &partition{maxSeen: -1}
		l.parts[p] = pt
	}
	return pt
}

// Next hands out the next sequence number for partition p. Sequence numbers
// are dense from 0, so a missing one is a gap.
func (l *Ledger) Next(p int32) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	pt := l.part(p)
	seq := pt.next
	pt.next++
	return seq
}

// Acked records that the brokers acknowledged seq on partition p.
func (l *Ledger) Acked(p int32, seq int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pt := l.part(p)
	pt.acked = grow(pt.acked, seq)
	pt.acked[seq] = true
}

// Observed records that a consumer read seq on partition p, in read order.
func (l *Ledger) Observed(p int32, seq int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pt := l.part(p)
	pt.seen = grow(pt.seen, seq)
	first := pt.seen[seq] == 0
	if pt.seen[seq] < 255 {
		pt.seen[seq]++
	}
	if first && seq < pt.maxSeen {
		pt.outOrder++
	}
	if seq > pt.maxSeen {
		pt.maxSeen = seq
	}
}

func grow[T any](s []T, idx int64) []T {
	if idx < int64(len(s)) {
		return s
	}
	n := max(int64(len(s))*2, idx+1, 1024)
	out := make([]T, n)
	copy(out, s)
	return out
}

// PartitionReport is the verdict for one partition.
type PartitionReport struct {
	Partition  int32   `json:"partition"`
	Acked      int64   `json:"acked"`
	Observed   int64   `json:"observed"` // distinct sequence numbers read
	Lost       int64   `json:"lost"`
	Duplicated int64   `json:"duplicated"` // extra reads of a sequence number
	OutOfOrder int64   `json:"out_of_order"`
	LostSample []int64 `json:"lost_sample,omitempty"` // first lost sequence numbers
}

// Report is the ledger's verdict over all partitions.
type Report struct {
	Partitions []PartitionReport `json:"partitions"`
	Acked      int64             `json:"acked"`
	Observed   int64             `json:"observed"`
	Lost       int64             `json:"lost"`
	Duplicated int64             `json:"duplicated"`
	OutOfOrder int64             `json:"out_of_order"`
	// ProduceErrors counts records the producer gave up on: never
	// acknowledged, so not promises and not losses, but worth knowing.
	ProduceErrors int64 `json:"produce_errors"`
}

// OK is true when nothing acknowledged was lost, duplicated or reordered.
func (r Report) OK() bool { return r.Lost == 0 && r.Duplicated == 0 && r.OutOfOrder == 0 }

func (r Report) String() string {
	s := fmt.Sprintf("acked=%d observed=%d lost=%d duplicated=%d out_of_order=%d produce_errors=%d", r.Acked, r.Observed, r.Lost, r.Duplicated, r.OutOfOrder, r.ProduceErrors)
	var bad []string
	for _, p := range r.Partitions {
		if p.Lost+p.Duplicated+p.OutOfOrder > 0 {
			bad = append(bad, fmt.Sprintf("p%d(lost=%d dup=%d ooo=%d first_lost=%v)", p.Partition, p.Lost, p.Duplicated, p.OutOfOrder, p.LostSample))
		}
	}
	if len(bad) > 0 {
		s += " " + strings.Join(bad, " ")
	}
	return s
}

const lostSampleSize = 10

// Report compares acknowledgements with observations.
func (l *Ledger) Report() Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r Report
	for id, pt := range l.parts {
		pr := PartitionReport{Partition: id, OutOfOrder: pt.outOrder}
		for seq, ok := range pt.acked {
			if !ok {
				continue
			}
			pr.Acked++
			if seq >= len(pt.seen) || pt.seen[seq] == 0 {
				pr.Lost++
				if len(pr.LostSample) < lostSampleSize {
					pr.LostSample = append(pr.LostSample, int64(seq))
				}
			}
		}
		for _, n := range pt.seen {
			if n > 0 {
				pr.Observed++
				pr.Duplicated += int64(n - 1)
			}
		}
		r.Partitions = append(r.Partitions, pr)
		r.Acked += pr.Acked
		r.Observed += pr.Observed
		r.Lost += pr.Lost
		r.Duplicated += pr.Duplicated
		r.OutOfOrder += pr.OutOfOrder
	}
	sort.Slice(r.Partitions, func(i, j int) bool { return r.Partitions[i].Partition < r.Partitions[j].Partition })
	return r
}
