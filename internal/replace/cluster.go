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
	// ReplicaBytes reports the size of every replica on broker.
	ReplicaBytes(ctx context.Context, broker int32) (map[health.TP]int64, error)
	// Unregister removes a shut-down broker's registration (KRaft).
	Unregister(ctx context.Context, broker int32) error
}
