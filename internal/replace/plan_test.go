package replace

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/health"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got (as indented JSON) with testdata/name, or rewrites it
// with -update.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(b) {
		t.Errorf("%s differs from golden file; got:\n%s", name, b)
	}
}

func loadSnapshot(t *testing.T, name string) *health.Snapshot {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var s health.Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestPlanMoveGolden(t *testing.T) {
	s := loadSnapshot(t, "snapshot-6brokers.json")
	tests := []struct {
		golden string
		opts   PlanOptions
	}{
		{"plan-smallest-first.json", PlanOptions{Concurrency: 2, Throttle: 10 << 20}},
		{"plan-largest-first.json", PlanOptions{Concurrency: 3, Order: LargestFirst}},
		{"plan-by-name-default-concurrency.json", PlanOptions{Order: ByName, Throttle: 50 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			p, err := PlanMove(s, 2, 7, "az-b", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, p)
		})
	}
}

func TestPlanMoveIsAOneToOneSubstitution(t *testing.T) {
	s := loadSnapshot(t, "snapshot-6brokers.json")
	p, err := PlanMove(s, 2, 7, "az-b", PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, part := range s.Partitions {
		for _, r := range part.Replicas {
			if r == 2 {
				held++
			}
		}
	}
	if p.Partitions != held {
		t.Fatalf("plan moves %d partitions, broker 2 holds %d", p.Partitions, held)
	}
	for _, m := range p.Moves {
		for i := range m.From {
			switch {
			case m.From[i] == 2 && m.To[i] != 7:
				t.Errorf("%s: position %d was 2, became %d", m.TP, i, m.To[i])
			case m.From[i] != 2 && m.To[i] != m.From[i]:
				t.Errorf("%s: untouched replica moved %v -> %v", m.TP, m.From, m.To)
			}
		}
		// During the copy the new broker is last, so it leads nothing;
		// the others keep their order.
		c := m.CopyTarget()
		if c[len(c)-1] != 7 || !slices.Equal(c[:len(c)-1], slices.DeleteFunc(slices.Clone(m.From), func(b int32) bool { return b == 2 })) {
			t.Errorf("%s: copy target %v, want %v without 2 and 7 last", m.TP, c, m.From)
		}
	}
}

// A record written before moves streamed keeps its batches: they are read
// as the window's moves, the done batches as submitted.
func TestLegacyBatchesAreReadAsMoves(t *testing.T) {
	raw := `{"old":2,"new":7,"batches":[{"moves":[{"topic":"a","partition":0,"from":[2],"to":[7]},{"topic":"a","partition":1,"from":[2],"to":[7]}]},{"moves":[{"topic":"b","partition":0,"from":[2],"to":[7]}]}],"partitions":3}`
	var p Plan
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	if n := p.Normalize(1); n != 2 || len(p.Moves) != 3 || p.Moves[2].Topic != "b" || p.LegacyBatches != nil {
		t.Fatalf("normalized: submitted %d, moves %+v, batches %v", n, p.Moves, p.LegacyBatches)
	}
	if n := p.Normalize(1); n != 0 {
		t.Fatalf("a second Normalize reports %d submitted, want 0", n)
	}
}

func TestPlanMoveRefusesNonsense(t *testing.T) {
	s := loadSnapshot(t, "snapshot-6brokers.json")
	for _, tt := range []struct {
		old, new int32
		opts     PlanOptions
		want     string
	}{
		{2, 2, PlanOptions{}, "both 2"},
		{2, 3, PlanOptions{}, "already has broker 3"},
		{2, 7, PlanOptions{Order: "random"}, "unknown order"},
	} {
		if _, err := PlanMove(s, tt.old, tt.new, "", tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("PlanMove(%d->%d, %+v) = %v, want error with %q", tt.old, tt.new, tt.opts, err, tt.want)
		}
	}
}

func TestPlanETAFollowsThrottle(t *testing.T) {
	s := &health.Snapshot{Partitions: []health.Partition{{TP: health.TP{Topic: "t"}, Replicas: []int32{1, 2}, Bytes: 100 << 20}}}
	p, err := PlanMove(s, 1, 3, "", PlanOptions{Throttle: 10 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if p.ETA != 10*time.Second {
		t.Errorf("ETA = %s, want 10s for 100 MiB at 10 MiB/s", p.ETA)
	}
}

func TestReverseMovesBackOnlyWhatArrived(t *testing.T) {
	s := loadSnapshot(t, "snapshot-6brokers.json")
	p, _ := PlanMove(s, 2, 7, "", PlanOptions{Concurrency: 2})
	first := p.Moves[0]
	moved := map[health.TP][]int32{first.TP: first.To}
	r := p.Reverse(moved)
	if r.Partitions != 1 || r.Moves[0].TP != first.TP {
		t.Fatalf("reverse = %+v, want only %s", r, first.TP)
	}
	m := r.Moves[0]
	for i := range m.To {
		if m.To[i] != first.From[i] {
			t.Errorf("reverse target %v, want the original %v", m.To, first.From)
		}
	}
}

// The ETA learns from the cluster's past moves: the median efficiency of
// the last five completed, throttled moves; refused, rolled-back,
// unthrottled and identity records teach nothing; a past copy faster than
// its throttle is not believed.
func TestETALearnsFromPastMoves(t *testing.T) {
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	past := func(phase Phase, s Strategy, th Throttle, bytes int64, copy time.Duration) *Record {
		return &Record{Phase: phase, Strategy: s, Throttle: th, BytesMoved: bytes,
			Steps: []StepTiming{{Step: StepMove, Started: start, Ended: start.Add(copy)}}}
	}
	mib := int64(1 << 20)
	hist := []*Record{
		past(PhaseCompleted, StrategyMove, Rate(10*mib), 100*mib, 20*time.Second),         // 0.5
		past(PhaseCompleted, StrategyMove, Rate(10*mib), 100*mib, 10*time.Second),         // 1.0
		past(PhaseCompleted, StrategyMove, Rate(10*mib), 100*mib, 12500*time.Millisecond), // 0.8
		past(PhaseRolledBack, StrategyMove, Rate(10*mib), 100*mib, 100*time.Second),
		past(PhaseCompleted, StrategyIdentity, Rate(10*mib), 100*mib, 100*time.Second),
		past(PhaseCompleted, StrategyMove, NoThrottle(), 100*mib, 100*time.Second),
	}
	eff, n, ok := Efficiency(hist)
	if !ok || n != 3 || eff != 0.8 {
		t.Fatalf("efficiency %v from %d moves (%v), want the median 0.8 of 3", eff, n, ok)
	}
	p := &Plan{Options: PlanOptions{Throttle: 10 * mib}, TotalBytes: 100 * mib}
	p.estimate(hist)
	if p.ETA != 13*time.Second || !strings.Contains(p.ETABasis, "0.80x the last 3 moves") {
		t.Errorf("ETA %s (%s), want 100 MiB at 10 MiB/s x 0.8 = 12.5 s, rounded", p.ETA, p.ETABasis)
	}
	p.estimate(nil)
	if p.ETA != 10*time.Second || !strings.Contains(p.ETABasis, "no past move") {
		t.Errorf("without history: ETA %s (%s)", p.ETA, p.ETABasis)
	}
	p.estimate([]*Record{past(PhaseCompleted, StrategyMove, Rate(10*mib), 100*mib, 5*time.Second)})
	if p.ETA != 10*time.Second {
		t.Errorf("a past copy at 2x its throttle made the ETA %s, want no faster than bytes / throttle", p.ETA)
	}
}
