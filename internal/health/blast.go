package health

import (
	"fmt"
	"slices"
)

// CodeWouldLoseData: every replica of a partition is inside the set about to
// go down: its data would exist nowhere else.
const CodeWouldLoseData Code = "would-lose-data"

// CodeDataLost (warning): every in-sync replica of a partition is on nodes
// that are already down; whatever only they held is gone or unreachable.
const CodeDataLost Code = "data-lost"

// BlastRadius is the one check every act that can take a replica away asks,
// right before acting, on fresh metadata: stopping or terminating a broker,
// an identity replacement's stop, a chaos pick, an operator's what-if.
//
// set are the nodes the act takes down (or whose data it wipes). infraDown
// are nodes the infrastructure already sees stopped or going away, which
// Kafka may not have noticed yet. The snapshot is simulated with the set
// gone; the act is refused if any partition would be left with no in-sync
// replica, with fewer in-sync replicas than its min.insync.replicas (eligible
// leader replicas count: they hold every committed record), or with every
// replica inside the set. It is also refused while any other node is down,
// and on a snapshot that cannot support a verdict.
//
// Only what the act changes is judged: members of the set that are already
// down take nothing away (an emergency for a dead broker), and a partition
// that was below min.insync.replicas before the act is refused only if the
// act takes one more of its in-sync replicas. A set that holds no replica and
// sits in no ISR is always safe.
func BlastRadius(s *Snapshot, set, infraDown []int32) Verdict {
	var v Verdict
	if !complete(s, &v) {
		return v.done()
	}
	dead := map[int32]bool{}
	for _, id := range DownBrokers(s) {
		dead[id] = true
	}
	for _, id := range infraDown {
		dead[id] = true
	}
	var takes, others []int32
	for _, id := range set {
		if !dead[id] && !slices.Contains(takes, id) {
			takes = append(takes, id)
		}
	}
	for id := range dead {
		if !slices.Contains(set, id) {
			others = append(others, id)
		}
	}
	slices.Sort(others)

	var touched, lost, offline, belowMin []TP
	for i := range s.Partitions {
		p := &s.Partitions[i]
		if !holdsAny(p, takes) {
			continue
		}
		touched = append(touched, p.TP)
		// The copies that can serve now: in sync or eligible, and not down.
		var live []int32
		for _, r := range p.ISR {
			if !dead[r] && !slices.Contains(live, r) {
				live = append(live, r)
			}
		}
		for _, r := range p.ELR {
			if !dead[r] && !slices.Contains(live, r) {
				live = append(live, r)
			}
		}
		var after int
		for _, r := range live {
			if !slices.Contains(takes, r) {
				after++
			}
		}
		allInside := true
		for _, r := range p.Target() {
			if !dead[r] && !slices.Contains(takes, r) {
				allInside = false
			}
		}
		switch {
		case allInside:
			lost = append(lost, p.TP)
		case after == 0 && len(live) > 0:
			offline = append(offline, p.TP)
		case after < p.MinISR && after < len(live):
			belowMin = append(belowMin, p.TP)
		}
	}
	if len(touched) > 0 && len(others) > 0 {
		v.block(Reason{Code: CodeBrokerDown, Brokers: others, Message: fmt.Sprintf("node %s is down or stopping: nothing that holds a replica is taken away while another node is down", ids(others))})
	}
	if len(lost) > 0 {
		v.block(Reason{Code: CodeWouldLoseData, Brokers: takes, Partitions: lost, Message: fmt.Sprintf("every replica of %d partitions is on node %s: their data would exist nowhere else (%s)", len(lost), ids(takes), tps(lost))})
	}
	if len(offline) > 0 {
		v.block(Reason{Code: CodeWouldGoOffline, Brokers: takes, Partitions: offline, Message: fmt.Sprintf("taking node %s down leaves %d partitions without an in-sync replica (%s)", ids(takes), len(offline), tps(offline))})
	}
	if len(belowMin) > 0 {
		v.block(Reason{Code: CodeWouldFallBelowMinISR, Brokers: takes, Partitions: belowMin, Message: fmt.Sprintf("taking node %s down leaves %d partitions below min.insync.replicas, acks=all writes would fail (%s)", ids(takes), len(belowMin), tps(belowMin))})
	}
	if gone := DataLost(s, infraDown); len(gone) > 0 {
		v.warn(Reason{Code: CodeDataLost, Partitions: gone, Message: lostMessage(gone)})
	}
	return v.done()
}

// DataLost lists partitions whose every in-sync (or eligible) replica is on a
// node that is down, by Kafka's view or the infrastructure's: what only
// those replicas held is gone, or unreachable until they return. A plan or
// dry-run that touches such a partition says so first.
func DataLost(s *Snapshot, infraDown []int32) []TP {
	if s == nil {
		return nil
	}
	dead := map[int32]bool{}
	for _, id := range DownBrokers(s) {
		dead[id] = true
	}
	for _, id := range infraDown {
		dead[id] = true
	}
	if len(dead) == 0 {
		return nil
	}
	var out []TP
	for i := range s.Partitions {
		p := &s.Partitions[i]
		copies := append(slices.Clone(p.ISR), p.ELR...)
		if len(copies) == 0 {
			copies = p.Replicas // leaderless with an empty ISR: judge by replicas
		}
		alive := false
		for _, r := range copies {
			if !dead[r] {
				alive = true
			}
		}
		if !alive {
			out = append(out, p.TP)
		}
	}
	return out
}

func lostMessage(gone []TP) string {
	return fmt.Sprintf("%d partitions have no in-sync replica on a live node: their data is gone or unreachable (%s)", len(gone), tps(gone))
}

// holdsAny reports whether any node in ids is a replica of p (being added or
// removed included) or in its ISR or ELR.
func holdsAny(p *Partition, ids []int32) bool {
	for _, id := range ids {
		if slices.Contains(p.Replicas, id) || slices.Contains(p.ISR, id) || slices.Contains(p.ELR, id) ||
			slices.Contains(p.Adding, id) || slices.Contains(p.Removing, id) {
			return true
		}
	}
	return false
}
