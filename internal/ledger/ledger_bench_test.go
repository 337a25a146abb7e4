package ledger

import "testing"

// BenchmarkLedgerRecord measures the bookkeeping cost of one record (hand
// out, ack, observe), which bounds the rate the ledger can verify.
func BenchmarkLedgerRecord(b *testing.B) {
	l := New()
	for i := 0; i < b.N; i++ {
		p := int32(i % 12)
		seq := l.Next(p)
		l.Acked(p, seq)
		l.Observed(p, seq)
	}
}

// BenchmarkLedgerReport1M measures a verdict over a million records.
func BenchmarkLedgerReport1M(b *testing.B) {
	l := New()
	for i := 0; i < 1_000_000; i++ {
		p := int32(i % 12)
		seq := l.Next(p)
		l.Acked(p, seq)
		l.Observed(p, seq)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := l.Report(); r.Acked != 1_000_000 {
			b.Fatalf("acked %d", r.Acked)
		}
	}
}
