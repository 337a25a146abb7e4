package ledger

import (
	"reflect"
	"testing"
)

// feed hands out n sequence numbers on partition p, acks those in acked and
// replays the observations in order.
func feed(l *Ledger, p int32, n int64, acked []int64, observed []int64) {
	for i := int64(0); i < n; i++ {
		l.Next(p)
	}
	for _, s := range acked {
		l.Acked(p, s)
	}
	for _, s := range observed {
		l.Observed(p, s)
	}
}

func TestLedgerReportsEachFault(t *testing.T) {
	all := []int64{0, 1, 2, 3, 4, 5}
	tests := []struct {
		name     string
		acked    []int64
		observed []int64
		want     PartitionReport
	}{
		{"clean", all, all, PartitionReport{Acked: 6, Observed: 6}},
		{"gap is lost", all, []int64{0, 1, 3, 4, 5}, PartitionReport{Acked: 6, Observed: 5, Lost: 1, LostSample: []int64{2}}},
		{"duplicate", all, []int64{0, 1, 2, 3, 3, 4, 5}, PartitionReport{Acked: 6, Observed: 6, Duplicated: 1}},
		{"reordering", all, []int64{0, 1, 2, 3, 5, 4}, PartitionReport{Acked: 6, Observed: 6, OutOfOrder: 1}},
		{"unacked and unread is not lost", []int64{0, 1, 2}, []int64{0, 1, 2}, PartitionReport{Acked: 3, Observed: 3}},
		{"unacked but read is fine", []int64{0, 1}, []int64{0, 1, 2}, PartitionReport{Acked: 2, Observed: 3}},
		{"tail lost", all, []int64{0, 1, 2}, PartitionReport{Acked: 6, Observed: 3, Lost: 3, LostSample: []int64{3, 4, 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New()
			feed(l, 7, 6, tt.acked, tt.observed)
			r := l.Report()
			tt.want.Partition = 7
			if got := r.Partitions[0]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			wantOK := tt.want.Lost == 0 && tt.want.Duplicated == 0 && tt.want.OutOfOrder == 0
			if r.OK() != wantOK {
				t.Errorf("OK() = %v, want %v (%s)", r.OK(), wantOK, r)
			}
		})
	}
}

func TestLedgerTotalsAcrossPartitions(t *testing.T) {
	l := New()
	feed(l, 0, 3, []int64{0, 1, 2}, []int64{0, 2})       // 1 lost
	feed(l, 1, 3, []int64{0, 1, 2}, []int64{0, 0, 1, 2}) // 1 duplicated
	r := l.Report()
	if r.Lost != 1 || r.Duplicated != 1 || r.Acked != 6 || r.Observed != 5 {
		t.Fatalf("got %s", r)
	}
	if r.OK() {
		t.Fatal("a report with a loss must not be OK")
	}
}

func TestLedgerNextIsDensePerPartition(t *testing.T) {
	l := New()
	got := []int64{l.Next(0), l.Next(1), l.Next(0), l.Next(0)}
	if want := []int64{0, 0, 1, 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
