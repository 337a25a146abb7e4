package health

import (
	"reflect"
	"testing"
)

func withMinISR(pt Partition, n int) Partition { pt.MinISR = n; return pt }

func withELR(pt Partition, elr ...int32) Partition { pt.ELR = elr; return pt }

func TestBlastRadius(t *testing.T) {
	rf3 := []Partition{p(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}), p(1, 2, []int32{2, 3, 1}, []int32{2, 3, 1})}
	fenced := func(id int32) []Broker {
		bs := brokers(1, 2, 3, 4)
		for i := range bs {
			bs[i].Fenced = bs[i].ID == id
		}
		return bs
	}
	tests := []struct {
		name         string
		snap         Snapshot
		set, infra   []int32
		wantBlockers []Code
		wantWarnings []Code
		wantHurt     []TP // partitions named by the blockers, in order
	}{
		{
			name: "one broker of RF 3, min ISR 2 may go",
			snap: Snapshot{Brokers: brokers(1, 2, 3), Partitions: rf3},
			set:  []int32{2},
		},
		{
			name:         "two brokers of RF 3, min ISR 2 take it below min ISR",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: rf3},
			set:          []int32{2, 3},
			wantBlockers: []Code{CodeWouldFallBelowMinISR},
			wantHurt:     []TP{{"t", 0}, {"t", 1}},
		},
		{
			name:         "every replica in the set loses the data",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: rf3},
			set:          []int32{1, 2, 3},
			wantBlockers: []Code{CodeWouldLoseData},
			wantHurt:     []TP{{"t", 0}, {"t", 1}},
		},
		{
			name:         "RF 1: its only replica",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: []Partition{withMinISR(p(0, 3, []int32{3}, []int32{3}), 1)}},
			set:          []int32{3},
			wantBlockers: []Code{CodeWouldLoseData},
			wantHurt:     []TP{{"t", 0}},
		},
		{
			name:         "RF 2, min ISR 2: one replica blocks acks=all",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: []Partition{p(0, 1, []int32{1, 2}, []int32{1, 2})}},
			set:          []int32{2},
			wantBlockers: []Code{CodeWouldFallBelowMinISR},
			wantHurt:     []TP{{"t", 0}},
		},
		{
			name:         "RF 2, min ISR 1, lagging partner: no in-sync replica left",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: []Partition{withMinISR(p(0, 2, []int32{1, 2}, []int32{2}), 1)}},
			set:          []int32{2},
			wantBlockers: []Code{CodeWouldGoOffline},
			wantHurt:     []TP{{"t", 0}},
		},
		{
			name: "an eligible leader replica counts toward min ISR",
			snap: Snapshot{Brokers: brokers(1, 2, 3, 4), Partitions: []Partition{withELR(p(0, 1, []int32{1, 2, 3, 4}, []int32{1, 2, 3}), 4)}},
			set:  []int32{2, 3},
		},
		{
			name:         "the same without the eligible replica is refused",
			snap:         Snapshot{Brokers: brokers(1, 2, 3, 4), Partitions: []Partition{p(0, 1, []int32{1, 2, 3, 4}, []int32{1, 2, 3})}},
			set:          []int32{2, 3},
			wantBlockers: []Code{CodeWouldFallBelowMinISR},
			wantHurt:     []TP{{"t", 0}},
		},
		{
			name:         "another broker's instance is stopped (Kafka has not noticed)",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: rf3},
			set:          []int32{2},
			infra:        []int32{3},
			wantBlockers: []Code{CodeBrokerDown, CodeWouldFallBelowMinISR},
			wantHurt:     []TP{{"t", 0}, {"t", 1}},
		},
		{
			name:         "another broker is fenced",
			snap:         Snapshot{Brokers: fenced(3), Partitions: []Partition{p(0, 1, []int32{1, 2, 3, 4}, []int32{1, 2, 4})}},
			set:          []int32{2},
			wantBlockers: []Code{CodeBrokerDown},
		},
		{
			name:         "emergency: the set's broker is already dead, nothing more is taken",
			snap:         Snapshot{Brokers: fenced(3), Partitions: []Partition{p(0, 1, []int32{1, 2, 3}, []int32{1, 2})}},
			set:          []int32{3},
			wantWarnings: nil,
		},
		{
			name:         "emergency on a dead RF 1 broker: nothing to take, the loss is named",
			snap:         Snapshot{Brokers: brokers(1, 2), Partitions: []Partition{withMinISR(p(0, 3, []int32{3}, []int32{3}), 1)}},
			set:          []int32{3},
			wantWarnings: []Code{CodeDataLost},
		},
		{
			name:         "a broker holding nothing may go while another is down",
			snap:         Snapshot{Brokers: brokers(1, 2, 3, 4), Partitions: rf3},
			set:          []int32{4},
			infra:        []int32{3},
			wantWarnings: nil,
		},
		{
			name:         "already below min ISR and untouched by the act: the gate's business, not the guard's",
			snap:         Snapshot{Brokers: brokers(1, 2, 3, 4), Partitions: []Partition{p(0, 1, []int32{1, 4}, []int32{1}), p(1, 2, []int32{2, 3}, []int32{2, 3})}},
			set:          []int32{4},
			wantBlockers: nil,
		},
		{
			name:         "already below min ISR, the act takes one more",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: []Partition{withMinISR(p(0, 1, []int32{1, 2, 3}, []int32{1, 2}), 3)}},
			set:          []int32{2},
			wantBlockers: []Code{CodeWouldFallBelowMinISR},
			wantHurt:     []TP{{"t", 0}},
		},
		{
			name:         "a replica being added counts as held",
			snap:         Snapshot{Brokers: brokers(1, 2, 3, 4), Partitions: []Partition{{TP: TP{"t", 0}, Leader: 1, Replicas: []int32{1, 2, 4}, ISR: []int32{1, 2}, Adding: []int32{4}, Reassigning: true, MinISR: 2}}},
			set:          []int32{4},
			infra:        []int32{3},
			wantBlockers: []Code{CodeBrokerDown},
		},
		{
			name:         "incomplete metadata cannot be judged",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: rf3, Incomplete: []string{"min.insync.replicas: timeout"}},
			set:          []int32{2},
			wantBlockers: []Code{CodeCannotEvaluate},
		},
		{
			name:         "no brokers listed cannot be judged",
			snap:         Snapshot{},
			set:          []int32{2},
			wantBlockers: []Code{CodeCannotEvaluate},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := BlastRadius(&tt.snap, tt.set, tt.infra)
			if got, want := codes(v.Blockers), tt.wantBlockers; !reflect.DeepEqual(got, want) {
				t.Errorf("blockers = %v, want %v (%s)", got, want, v.Summary())
			}
			if got, want := codes(v.Warnings), tt.wantWarnings; !reflect.DeepEqual(got, want) {
				t.Errorf("warnings = %v, want %v", got, want)
			}
			if v.Safe != (len(tt.wantBlockers) == 0) {
				t.Errorf("safe = %v with blockers %v", v.Safe, codes(v.Blockers))
			}
			if tt.wantHurt != nil {
				var hurt []TP
				for _, r := range v.Blockers {
					hurt = append(hurt, r.Partitions...)
				}
				if !reflect.DeepEqual(hurt, tt.wantHurt) {
					t.Errorf("partitions named = %v, want %v", hurt, tt.wantHurt)
				}
			}
		})
	}
}

func TestBlastRadiusNilSnapshotFailsClosed(t *testing.T) {
	if v := BlastRadius(nil, []int32{1}, nil); v.Safe || !v.Has(CodeCannotEvaluate) {
		t.Fatalf("nil snapshot: %+v, want refused cannot-evaluate", v)
	}
}

func TestDataLostNamesPartitionsWithNoLiveInSyncReplica(t *testing.T) {
	s := &Snapshot{Brokers: brokers(1, 2, 3), Partitions: []Partition{
		withMinISR(p(0, 3, []int32{3}, []int32{3}), 1),
		p(1, 1, []int32{1, 3}, []int32{1, 3}),
		withELR(p(2, 3, []int32{3, 2}, []int32{3}), 2),
	}}
	if got := DataLost(s, nil); got != nil {
		t.Fatalf("nothing down: %v", got)
	}
	got := DataLost(s, []int32{3})
	if want := []TP{{"t", 0}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("DataLost = %v, want %v (t-1 has 1 in sync, t-2 an eligible replica on 2)", got, want)
	}
}
