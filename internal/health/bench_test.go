package health

import (
	"fmt"
	"runtime"
	"testing"
)

// syntheticSnapshot builds brokers×partitions at RF 3 with min ISR 2, racks
// over three AZs, every 1000th partition under-replicated and every 5000th
// being reassigned, so every gate has work to do.
func syntheticSnapshot(brokers, partitions int) *Snapshot {
	s := &Snapshot{ClusterID: "bench", Controller: 9000}
	for i := 0; i < brokers; i++ {
		s.Brokers = append(s.Brokers, Broker{ID: int32(i), Rack: fmt.Sprintf("az-%d", i%3), Host: "10.0.0.1", Port: 9092, BytesKnown: true, Bytes: 1 << 40})
	}
	s.Partitions = make([]Partition, 0, partitions)
	for i := 0; i < partitions; i++ {
		a, b, c := int32(i%brokers), int32((i+1)%brokers), int32((i+2)%brokers)
		p := Partition{TP: TP{fmt.Sprintf("topic-%d", i/100), int32(i % 100)}, Leader: a, Replicas: []int32{a, b, c}, ISR: []int32{a, b, c}, MinISR: 2, Bytes: 1 << 30}
		if i%1000 == 0 {
			p.ISR = []int32{a, b}
		}
		if i%5000 == 0 {
			d := int32((i + 3) % brokers)
			p.Replicas = append(p.Replicas, d)
			p.Adding, p.Removing, p.Reassigning = []int32{d}, []int32{c}, true
		}
		s.Partitions = append(s.Partitions, p)
	}
	return s
}

// BenchmarkGates200Brokers200kPartitions is the derived view plus every gate
// on a large cluster. Target: under 100 ms and 200 MB per run.
func BenchmarkGates200Brokers200kPartitions(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := syntheticSnapshot(200, 200_000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := CanDisrupt(s, Policy{})
		if v.Safe {
			b.Fatal("synthetic snapshot has under-replicated partitions")
		}
		_ = NewReport(s, v)
		_ = SafeToStop(s, 7)
		_ = Empty(s, 7)
		_ = AtMinISR(s)
		_ = AlreadyUnsafe(s)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "snapshot-MiB")
}
