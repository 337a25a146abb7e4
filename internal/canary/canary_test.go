package canary

import (
	"fmt"
	"testing"
)

// One partition per broker, each broker the preferred (first) replica of
// exactly one, RF min(3, brokers), no broker twice in a partition.
func TestSpreadLeadsWithEveryBroker(t *testing.T) {
	for n := 1; n <= 7; n++ {
		brokers := make([]int32, n)
		for i := range brokers {
			brokers[i] = int32(10 + 3*i)
		}
		layout := Spread(brokers)
		if len(layout) != n {
			t.Fatalf("%d brokers: %d partitions", n, len(layout))
		}
		first := map[int32]int{}
		for p, reps := range layout {
			if len(reps) != min(3, n) {
				t.Errorf("%d brokers: partition %d has RF %d", n, p, len(reps))
			}
			seen := map[int32]bool{}
			for _, b := range reps {
				if seen[b] {
					t.Errorf("%d brokers: partition %d names %d twice: %v", n, p, b, reps)
				}
				seen[b] = true
			}
			first[reps[0]]++
		}
		for _, b := range brokers {
			if first[b] != 1 {
				t.Errorf("%d brokers: broker %d is the preferred leader of %d partitions, want 1 (%s)", n, b, first[b], fmt.Sprint(layout))
			}
		}
	}
}
