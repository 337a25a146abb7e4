package health

import (
	"fmt"
	"slices"
	"time"
)

// TP names a topic partition.
type TP struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

func (tp TP) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Broker is a broker the cluster reports as registered.
type Broker struct {
	ID   int32  `json:"id"`
	Rack string `json:"rack,omitempty"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	// Fenced brokers are registered but not serving. Kafka 4.0+ lists them
	// (DescribeCluster v2); older clusters omit them, so they look absent.
	Fenced bool `json:"fenced"`
	// Bytes on disk over all log dirs, from DescribeLogDirs.
	Bytes      int64 `json:"bytes"`
	BytesKnown bool  `json:"bytes_known"`
}

// Partition is one partition's state. During a reassignment Replicas is the
// union of the target and the replicas being removed.
type Partition struct {
	TP
	Leader   int32   `json:"leader"`
	Replicas []int32 `json:"replicas"`
	ISR      []int32 `json:"isr"`
	Offline  []int32 `json:"offline_replicas,omitempty"`
	// ELR are the eligible leader replicas (KIP-966): out of the ISR but
	// holding every committed record, so they may be elected. Empty where
	// the cluster does not keep them.
	ELR      []int32 `json:"elr,omitempty"`
	Adding   []int32 `json:"adding,omitempty"`
	Removing []int32 `json:"removing,omitempty"`
	// Reassigning is true while a reassignment is listed for the partition.
	Reassigning bool `json:"reassigning,omitempty"`
	// MinISR is the effective min.insync.replicas (topic config, else the
	// broker or cluster default).
	MinISR int `json:"min_isr"`
	// Bytes is the largest replica's size on disk, 0 when unknown.
	Bytes int64 `json:"bytes"`
}

// Target is the replica set the partition will have once any in-flight
// reassignment completes.
func (p *Partition) Target() []int32 {
	if len(p.Removing) == 0 {
		return p.Replicas
	}
	out := make([]int32, 0, len(p.Replicas))
	for _, r := range p.Replicas {
		if !slices.Contains(p.Removing, r) {
			out = append(out, r)
		}
	}
	return out
}

// Snapshot is the cluster at one instant, in fleetd's terms.
type Snapshot struct {
	Taken     time.Time `json:"taken"`
	ClusterID string    `json:"cluster_id"`
	// Controller is the active KRaft controller (the quorum leader), -1 if unknown.
	Controller int32 `json:"controller"`
	// Controllers are the node ids of the KRaft voters; broker ids must avoid them.
	Controllers []int32 `json:"controllers,omitempty"`
	// Quorum is the controller quorum (nil where it was not read).
	Quorum     *Quorum     `json:"quorum,omitempty"`
	Brokers    []Broker    `json:"brokers"`
	Partitions []Partition `json:"partitions"`
	// Incomplete lists what could not be read. Gates refuse while it is not
	// empty: a partial picture is not evidence of safety.
	Incomplete []string `json:"incomplete,omitempty"`
}

// Broker returns the registered broker with this id.
func (s *Snapshot) Broker(id int32) (Broker, bool) {
	for _, b := range s.Brokers {
		if b.ID == id {
			return b, true
		}
	}
	return Broker{}, false
}
