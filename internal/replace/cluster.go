package replace

import (
	"context"

	"github.com/fleetd/fleetd/internal/health"
)

// Cluster is what the executor needs from Kafka. KafkaCluster implements it
// over franz-go; tests of the step machine use a fake.
type Cluster interface {
	// Snapshot reads the cluster fresh (never from a cache).
	Snapshot(ctx context.Context) (*health.Snapshot, error)
	// Reassign submits reassignments (target replica lists).
	Reassign(ctx context.Context, targets map[health.TP][]int32) error
	// CancelReassign cancels in-flight reassignments of these partitions; a
	// partition with none in flight is not an error.
	CancelReassign(ctx context.Context, tps []health.TP) error
	// ElectPreferred runs a preferred leader election; partitions already led
	// by their preferred replica are not an error.
	ElectPreferred(ctx context.Context, tps []health.TP) error
	// Configs reads the current values of dynamic configs (nil: not set).
	Configs(ctx context.Context, keys []ConfigKey) (map[ConfigKey]*string, error)
	// SetConfigs sets (or, for a nil value, deletes) dynamic configs.
	SetConfigs(ctx context.Context, values map[ConfigKey]*string) error
	// KnowsConfig reports whether the resource's Kafka knows the config at
	// all (set or not): how a feature newer than the cluster is detected,
	// since Kafka accepts a dynamic broker config of any name.
	KnowsConfig(ctx context.Context, key ConfigKey) (bool, error)
	// ReplicaBytes reports the size of every replica on broker.
	ReplicaBytes(ctx context.Context, broker int32) (map[health.TP]int64, error)
	// Watch reads what a move in flight needs and nothing more: tps'
	// reassignment state, replicas, ISR and leader, whether dest serves,
	// and the size of tps' replicas on dest. Its cost follows tps (and
	// their topics), not the cluster's size.
	Watch(ctx context.Context, tps []health.TP, dest int32) (*Watched, error)
	// LeaderBytes reports the size of tps' replicas on their leaders (what
	// a new follower must copy, and how fast it grows). Its cost follows
	// tps and their leaders, not the cluster's size.
	LeaderBytes(ctx context.Context, tps []health.TP) (map[health.TP]int64, error)
	// TieredSpans reads, for those of tps whose topics have remote storage
	// enabled, the offsets a new follower copies (tiered.go).
	TieredSpans(ctx context.Context, tps []health.TP) (map[health.TP]TieredSpan, error)
	// Unregister removes a shut-down broker's registration (KRaft).
	Unregister(ctx context.Context, broker int32) error
	// Quorum reads the controller quorum fresh (DescribeQuorum v2).
	Quorum(ctx context.Context) (*health.Quorum, error)
	// AddVoter makes a caught-up observer controller a voter (AddRaftVoter,
	// answered once the new voter set is committed). A node that is already
	// a voter with this directory id is not an error.
	AddVoter(ctx context.Context, v Voter) error
	// RemoveVoter removes a voter (RemoveRaftVoter). A node that is no
	// longer a voter is not an error.
	RemoveVoter(ctx context.Context, id int32, directoryID string) error
	// QuorumBootstrap is each serving broker's
	// controller.quorum.bootstrap.servers (host:port entries): where it
	// looks for the quorum when it loses the leader.
	QuorumBootstrap(ctx context.Context) (map[int32][]string, error)
}

// Voter names a controller for AddRaftVoter: its node id, directory id and
// listener ("NAME://host:port").
type Voter struct {
	ID          int32  `json:"id"`
	DirectoryID string `json:"directory_id"`
	Endpoint    string `json:"endpoint"`
}

// Watched is what Watch read. A partition missing from Partitions does not
// exist (its topic was deleted).
type Watched struct {
	DestAlive  bool
	Partitions map[health.TP]WatchedPartition
	// DestBytes are the sizes of the watched partitions' replicas on dest
	// (nil when dest's log directories could not be read this time).
	DestBytes map[health.TP]int64
}

// WatchedPartition is one partition's state in a Watch.
type WatchedPartition struct {
	Replicas    []int32
	ISR         []int32
	Leader      int32
	Reassigning bool
}
