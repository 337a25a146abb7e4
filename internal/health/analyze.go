package health

import (
	"slices"
	"sort"
)

// facts are what one pass over a partition establishes; every analysis and
// gate reads them, so the rules are written once.
type facts struct {
	// missing are replicas absent from the ISR that no in-flight reassignment
	// explains (a replica being added is expected to be out of the ISR).
	missing []int32
	// catchingUp are replicas being added that are not yet in the ISR.
	catchingUp  []int32
	leaderless  bool
	underMinISR bool // fewer in-sync replicas than min.insync.replicas
	atMinISR    bool // exactly min.insync.replicas in sync, with replicas missing
	// noHeadroom: the target RF is not above min.insync.replicas, so losing
	// any in-sync replica blocks acks=all writes. alreadyUnsafe: RF is below
	// it, so acks=all writes can never succeed.
	noHeadroom    bool
	alreadyUnsafe bool
}

func factsOf(p *Partition) facts {
	var f facts
	for _, r := range p.Replicas {
		if slices.Contains(p.ISR, r) {
			continue
		}
		if slices.Contains(p.Adding, r) {
			f.catchingUp = append(f.catchingUp, r)
		} else {
			f.missing = append(f.missing, r)
		}
	}
	f.leaderless = p.Leader < 0
	rf := len(p.Target())
	f.underMinISR = len(p.ISR) < p.MinISR
	f.atMinISR = len(p.ISR) == p.MinISR && len(f.missing) > 0
	f.noHeadroom = rf <= p.MinISR
	f.alreadyUnsafe = rf < p.MinISR
	return f
}

// UnderReplicated lists partitions with an in-sync replica missing that no
// in-flight reassignment explains. A replica being added by a reassignment is
// catching up, not under-replicated: see Reassigning.
func UnderReplicated(s *Snapshot) []TP {
	return selectTPs(s, func(p *Partition, f facts) bool { return len(f.missing) > 0 })
}

// Reassigning lists partitions with an in-flight reassignment.
func Reassigning(s *Snapshot) []TP {
	return selectTPs(s, func(p *Partition, f facts) bool { return p.Reassigning })
}

// UnderMinISR lists partitions whose ISR is smaller than min.insync.replicas:
// acks=all writes to them fail now.
func UnderMinISR(s *Snapshot) []TP {
	return selectTPs(s, func(p *Partition, f facts) bool { return f.underMinISR })
}

// AtMinISR lists degraded partitions with exactly min.insync.replicas in sync:
// one more loss blocks acks=all writes.
func AtMinISR(s *Snapshot) []TP {
	return selectTPs(s, func(p *Partition, f facts) bool { return f.atMinISR })
}

// Offline lists partitions without a leader.
func Offline(s *Snapshot) []TP {
	return selectTPs(s, func(p *Partition, f facts) bool { return f.leaderless })
}

// AlreadyUnsafe lists partitions whose replication factor is below
// min.insync.replicas: acks=all writes to them can never succeed, whatever
// fleetd does.
func AlreadyUnsafe(s *Snapshot) []TP {
	return selectTPs(s, func(p *Partition, f facts) bool { return f.alreadyUnsafe })
}

// NoHeadroom lists partitions whose replication factor is at or below
// min.insync.replicas: stopping any of their replicas blocks acks=all writes.
func NoHeadroom(s *Snapshot) []TP {
	return selectTPs(s, func(p *Partition, f facts) bool { return f.noHeadroom })
}

// LeaderSkew lists partitions not led by their preferred (first) replica
// although it is in sync, so a preferred leader election would move them.
func LeaderSkew(s *Snapshot) []TP {
	return selectTPs(s, func(p *Partition, f facts) bool {
		return len(p.Replicas) > 0 && p.Leader >= 0 && p.Leader != p.Replicas[0] && slices.Contains(p.ISR, p.Replicas[0])
	})
}

// DownBrokers lists brokers that hold replicas but are not registered, or are
// registered but fenced.
func DownBrokers(s *Snapshot) []int32 {
	up := map[int32]bool{}
	for _, b := range s.Brokers {
		up[b.ID] = !b.Fenced
	}
	seen := map[int32]bool{}
	var down []int32
	for i := range s.Partitions {
		for _, r := range s.Partitions[i].Replicas {
			if !up[r] && !seen[r] {
				seen[r] = true
				down = append(down, r)
			}
		}
	}
	slices.Sort(down)
	return down
}

// Load is one broker's share of the cluster.
type Load struct {
	Broker   int32 `json:"broker"`
	Replicas int   `json:"replicas"`
	Leaders  int   `json:"leaders"`
	// Preferred counts partitions whose first replica is this broker.
	Preferred int `json:"preferred"`
}

// Loads counts replicas, leaders and preferred leaderships per broker, for
// every broker registered or holding a replica, by id.
func Loads(s *Snapshot) []Load {
	m := map[int32]*Load{}
	get := func(id int32) *Load {
		l := m[id]
		if l == nil {
			l = &Load{Broker: id}
			m[id] = l
		}
		return l
	}
	for _, b := range s.Brokers {
		get(b.ID)
	}
	for i := range s.Partitions {
		p := &s.Partitions[i]
		for _, r := range p.Replicas {
			get(r).Replicas++
		}
		if p.Leader >= 0 {
			get(p.Leader).Leaders++
		}
		if len(p.Replicas) > 0 {
			get(p.Replicas[0]).Preferred++
		}
	}
	out := make([]Load, 0, len(m))
	for _, l := range m {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Broker < out[j].Broker })
	return out
}

func selectTPs(s *Snapshot, keep func(*Partition, facts) bool) []TP {
	var out []TP
	for i := range s.Partitions {
		p := &s.Partitions[i]
		if keep(p, factsOf(p)) {
			out = append(out, p.TP)
		}
	}
	return out
}
