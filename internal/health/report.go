package health

import (
	"slices"
	"time"
)

// BrokerState is how a broker stands in a report.
type BrokerState string

const (
	BrokerUp     BrokerState = "up"
	BrokerFenced BrokerState = "fenced"
	// BrokerDown: holds replicas but is not registered.
	BrokerDown BrokerState = "down"
)

// BrokerReport is a broker's row in a report.
type BrokerReport struct {
	Broker
	State BrokerState `json:"state"`
	Load
}

// PartitionProblem is a partition that needs attention and what is wrong.
type PartitionProblem struct {
	Partition
	Problems []string `json:"problems"`
}

// Report is what `fleetd status` and the status API show: the brokers, the
// partitions with problems, in-flight reassignments and the verdict.
type Report struct {
	ClusterID     string             `json:"cluster_id"`
	Controller    int32              `json:"controller"`
	Taken         time.Time          `json:"taken"`
	Partitions    int                `json:"partitions"`
	Brokers       []BrokerReport     `json:"brokers"`
	Problems      []PartitionProblem `json:"problem_partitions"`
	Reassignments []Partition        `json:"reassignments"`
	Incomplete    []string           `json:"incomplete,omitempty"`
	// Quorum is the controller quorum: its voters, and the observers that
	// are not brokers (a controller not yet added as a voter).
	Quorum  *Quorum `json:"quorum,omitempty"`
	Verdict Verdict `json:"verdict"`
}

// NewReport builds the report of s with the verdict v.
func NewReport(s *Snapshot, v Verdict) Report {
	r := Report{
		ClusterID: s.ClusterID, Controller: s.Controller, Taken: s.Taken, Partitions: len(s.Partitions),
		Incomplete: s.Incomplete, Verdict: v,
		Brokers: []BrokerReport{}, Problems: []PartitionProblem{}, Reassignments: []Partition{},
	}
	for _, l := range Loads(s) {
		br := BrokerReport{Load: l, State: BrokerDown, Broker: Broker{ID: l.Broker}}
		if b, ok := s.Broker(l.Broker); ok {
			br.Broker, br.State = b, BrokerUp
			if b.Fenced {
				br.State = BrokerFenced
			}
		}
		r.Brokers = append(r.Brokers, br)
	}
	for i := range s.Partitions {
		p := &s.Partitions[i]
		f := factsOf(p)
		var probs []string
		if f.leaderless {
			probs = append(probs, string(CodeOffline))
		}
		if len(f.missing) > 0 {
			probs = append(probs, string(CodeUnderReplicated))
		}
		if f.underMinISR {
			probs = append(probs, string(CodeUnderMinISR))
		} else if f.atMinISR {
			probs = append(probs, "at-min-isr")
		}
		if f.noHeadroom {
			probs = append(probs, string(CodeNoHeadroom))
		}
		if len(probs) > 0 {
			r.Problems = append(r.Problems, PartitionProblem{Partition: *p, Problems: probs})
		}
		if p.Reassigning {
			r.Reassignments = append(r.Reassignments, *p)
		}
	}
	slices.SortStableFunc(r.Problems, func(a, b PartitionProblem) int { return len(b.Problems) - len(a.Problems) })
	if s.Quorum != nil {
		q := *s.Quorum
		q.Observers = slices.DeleteFunc(slices.Clone(q.Observers), func(o Replica) bool {
			_, isBroker := s.Broker(o.ID)
			return isBroker
		})
		r.Quorum = &q
	}
	return r
}
