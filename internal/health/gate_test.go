package health

import (
	"reflect"
	"slices"
	"testing"
)

// p builds a partition of topic "t" with min.insync.replicas 2.
func p(n int32, leader int32, replicas, isr []int32) Partition {
	return Partition{TP: TP{"t", n}, Leader: leader, Replicas: replicas, ISR: isr, MinISR: 2}
}

func brokers(ids ...int32) []Broker {
	var out []Broker
	for _, id := range ids {
		out = append(out, Broker{ID: id, Host: "h", Port: 9092})
	}
	return out
}

func codes(rs []Reason) []Code {
	var out []Code
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

func TestCanDisrupt(t *testing.T) {
	healthy := []Partition{p(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}), p(1, 2, []int32{2, 3, 1}, []int32{2, 3, 1})}
	reassigning := p(2, 1, []int32{1, 2, 4, 3}, []int32{1, 2, 3})
	reassigning.Adding, reassigning.Removing, reassigning.Reassigning = []int32{4}, []int32{3}, true
	rf2min2 := p(3, 1, []int32{1, 2}, []int32{1, 2})
	rf1min2 := p(4, 1, []int32{1}, []int32{1})

	tests := []struct {
		name         string
		snap         Snapshot
		pol          Policy
		wantSafe     bool
		wantBlockers []Code
		wantWarnings []Code
	}{
		{name: "healthy is safe", snap: Snapshot{Brokers: brokers(1, 2, 3), Partitions: healthy}, wantSafe: true},
		{
			name:         "dead broker blocks and names its partitions",
			snap:         Snapshot{Brokers: brokers(1, 3), Partitions: []Partition{p(0, 1, []int32{1, 2, 3}, []int32{1, 3})}},
			wantBlockers: []Code{CodeBrokerDown, CodeUnderReplicated},
		},
		{
			name:         "fenced broker counts as down",
			snap:         Snapshot{Brokers: append(brokers(1, 3), Broker{ID: 2, Fenced: true}), Partitions: healthy},
			wantBlockers: []Code{CodeBrokerDown},
		},
		{
			name:         "emergency excuses the one dead broker",
			snap:         Snapshot{Brokers: brokers(1, 3), Partitions: []Partition{p(0, 1, []int32{1, 2, 3}, []int32{1, 3})}},
			pol:          Policy{AllowDown: []int32{2}},
			wantSafe:     true,
			wantWarnings: []Code{CodeExcused},
		},
		{
			name:         "emergency does not excuse an offline partition",
			snap:         Snapshot{Brokers: brokers(1, 3), Partitions: []Partition{p(0, -1, []int32{2, 1}, []int32{2})}},
			pol:          Policy{AllowDown: []int32{2}},
			wantBlockers: []Code{CodeOffline},
			wantWarnings: []Code{CodeExcused, CodeNoHeadroom},
		},
		{
			name:         "emergency does not excuse another broker's lag",
			snap:         Snapshot{Brokers: brokers(1, 3), Partitions: []Partition{p(0, 1, []int32{1, 2, 3}, []int32{1})}},
			pol:          Policy{AllowDown: []int32{2}},
			wantBlockers: []Code{CodeUnderMinISR, CodeUnderReplicated},
			wantWarnings: []Code{CodeExcused},
		},
		{
			name:         "two brokers down is a mass failure",
			snap:         Snapshot{Brokers: brokers(1), Partitions: []Partition{p(0, 1, []int32{1, 2, 3}, []int32{1})}},
			pol:          Policy{AllowDown: []int32{2}},
			wantBlockers: []Code{CodeMassFailure, CodeBrokerDown, CodeUnderMinISR, CodeUnderReplicated},
		},
		{
			name:         "foreign reassignment blocks but is not under-replication",
			snap:         Snapshot{Brokers: brokers(1, 2, 3, 4), Partitions: append(slices.Clone(healthy), reassigning)},
			wantBlockers: []Code{CodeForeignReassignment},
		},
		{
			name:     "own reassignment does not block",
			snap:     Snapshot{Brokers: brokers(1, 2, 3, 4), Partitions: append(slices.Clone(healthy), reassigning)},
			pol:      Policy{Own: map[TP]bool{{"t", 2}: true}},
			wantSafe: true,
		},
		{
			name:         "leaderless partition is offline",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: []Partition{p(0, -1, []int32{1, 2, 3}, []int32{1, 2, 3})}},
			wantBlockers: []Code{CodeOffline},
		},
		{
			name:         "RF equal to min ISR warns, never blocks",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: append(slices.Clone(healthy), rf2min2)},
			wantSafe:     true,
			wantWarnings: []Code{CodeNoHeadroom},
		},
		{
			name:         "RF below min ISR warns, never blocks",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: []Partition{rf1min2}},
			wantSafe:     true,
			wantWarnings: []Code{CodeNoHeadroom},
		},
		{
			name:         "incomplete snapshot fails closed",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: healthy, Incomplete: []string{"min.insync.replicas of topic t: timeout"}},
			wantBlockers: []Code{CodeCannotEvaluate},
		},
		{
			name:         "no brokers fails closed",
			snap:         Snapshot{},
			wantBlockers: []Code{CodeCannotEvaluate},
		},
		{
			name:         "skewed leadership warns",
			snap:         Snapshot{Brokers: brokers(1, 2, 3), Partitions: []Partition{p(0, 2, []int32{1, 2, 3}, []int32{1, 2, 3})}},
			wantSafe:     true,
			wantWarnings: []Code{CodeLeaderSkew},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CanDisrupt(&tt.snap, tt.pol)
			if got.Safe != tt.wantSafe {
				t.Errorf("Safe = %v, want %v (%s)", got.Safe, tt.wantSafe, got.Summary())
			}
			if g := codes(got.Blockers); !reflect.DeepEqual(g, tt.wantBlockers) {
				t.Errorf("blockers = %v, want %v", g, tt.wantBlockers)
			}
			if g := codes(got.Warnings); !reflect.DeepEqual(g, tt.wantWarnings) {
				t.Errorf("warnings = %v, want %v", g, tt.wantWarnings)
			}
		})
	}
}

func TestCanDisruptNamesDeadBrokerAndItsPartitions(t *testing.T) {
	s := Snapshot{Brokers: brokers(1, 3), Partitions: []Partition{
		p(0, 1, []int32{1, 2, 3}, []int32{1, 3}),
		p(1, 3, []int32{3, 1, 2}, []int32{3, 1}),
		p(2, 1, []int32{1, 3}, []int32{1, 3}),
	}}
	v := CanDisrupt(&s, Policy{})
	if got := v.Blockers[0].Brokers; !reflect.DeepEqual(got, []int32{2}) {
		t.Errorf("broker-down names %v, want [2]", got)
	}
	if got, want := v.Blockers[1].Partitions, []TP{{"t", 0}, {"t", 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("under-replicated names %v, want %v", got, want)
	}
}

func TestSafeToStop(t *testing.T) {
	s := Snapshot{Brokers: brokers(1, 2, 3), Partitions: []Partition{
		p(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}), // 3 -> 2: fine
		p(1, 1, []int32{1, 2, 3}, []int32{1, 3}),    // 2 -> 1 < 2: below min
		p(2, 3, []int32{3, 2}, []int32{3}),          // last ISR member: offline
		p(3, 1, []int32{1, 2}, []int32{1}),          // 3 not in ISR: unaffected
	}}
	v := SafeToStop(&s, 3)
	if v.Safe {
		t.Fatal("stopping broker 3 must not be safe")
	}
	want := []Reason{
		{Code: CodeWouldGoOffline, Brokers: []int32{3}, Partitions: []TP{{"t", 2}}},
		{Code: CodeWouldFallBelowMinISR, Brokers: []int32{3}, Partitions: []TP{{"t", 1}}},
	}
	for i := range want {
		if v.Blockers[i].Code != want[i].Code || !reflect.DeepEqual(v.Blockers[i].Partitions, want[i].Partitions) {
			t.Errorf("blocker %d = %+v, want %+v", i, v.Blockers[i], want[i])
		}
	}
	if got := SafeToStop(&s, 4); !got.Safe {
		t.Errorf("a broker in no ISR is safe to stop, got %s", got.Summary())
	}
	s.Incomplete = []string{"x"}
	if got := SafeToStop(&s, 4); got.Safe {
		t.Error("incomplete snapshot must not be safe")
	}
}

func TestEmpty(t *testing.T) {
	moving := p(1, 1, []int32{1, 2, 4}, []int32{1, 2})
	moving.Adding = []int32{4}
	s := Snapshot{Brokers: brokers(1, 2, 3, 4), Partitions: []Partition{p(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}), moving}}
	tests := []struct {
		broker int32
		want   []Code
	}{
		{3, []Code{CodeHoldsReplicas, CodeInISR}},
		{4, []Code{CodeHoldsReplicas}}, // being added, not yet in ISR: still not empty
		{5, nil},
	}
	for _, tt := range tests {
		v := Empty(&s, tt.broker)
		if got := codes(v.Blockers); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Empty(%d) = %v, want %v", tt.broker, got, tt.want)
		}
		if v.Safe != (tt.want == nil) {
			t.Errorf("Empty(%d).Safe = %v", tt.broker, v.Safe)
		}
	}
}

func TestAnalysis(t *testing.T) {
	reassigning := p(5, 1, []int32{1, 2, 3, 4}, []int32{1, 2, 3})
	reassigning.Adding, reassigning.Removing, reassigning.Reassigning = []int32{4}, []int32{3}, true
	s := Snapshot{Brokers: brokers(1, 2, 3, 4), Partitions: []Partition{
		p(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}),
		p(1, 1, []int32{1, 2, 3}, []int32{1, 2}), // URP, at min
		p(2, 1, []int32{1, 2, 3}, []int32{1}),    // URP, under min
		p(3, -1, []int32{1, 2}, []int32{1, 2}),   // offline, no headroom
		p(4, 1, []int32{1}, []int32{1}),          // RF 1 < min 2: already unsafe
		reassigning,                              // catching up, not URP
	}}
	tp := func(ns ...int32) []TP {
		var out []TP
		for _, n := range ns {
			out = append(out, TP{"t", n})
		}
		return out
	}
	checks := []struct {
		name string
		got  []TP
		want []TP
	}{
		{"UnderReplicated", UnderReplicated(&s), tp(1, 2)},
		{"Reassigning", Reassigning(&s), tp(5)},
		{"UnderMinISR", UnderMinISR(&s), tp(2, 4)},
		{"AtMinISR", AtMinISR(&s), tp(1)},
		{"Offline", Offline(&s), tp(3)},
		{"AlreadyUnsafe", AlreadyUnsafe(&s), tp(4)},
		{"NoHeadroom", NoHeadroom(&s), tp(3, 4)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if got := reassigning.Target(); !reflect.DeepEqual(got, []int32{1, 2, 4}) {
		t.Errorf("Target = %v, want [1 2 4]", got)
	}
	loads := Loads(&s)
	if loads[0].Broker != 1 || loads[0].Leaders != 5 || loads[0].Replicas != 6 {
		t.Errorf("load of broker 1 = %+v", loads[0])
	}
}

func TestDownBrokersIncludesUnregisteredAndFenced(t *testing.T) {
	s := Snapshot{Brokers: append(brokers(1), Broker{ID: 3, Fenced: true}), Partitions: []Partition{p(0, 1, []int32{1, 2, 3}, []int32{1})}}
	if got := DownBrokers(&s); !reflect.DeepEqual(got, []int32{2, 3}) {
		t.Fatalf("got %v, want [2 3]", got)
	}
}
