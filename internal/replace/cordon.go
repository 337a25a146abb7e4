package replace

import (
	"context"
	"fmt"
)

// cordonedLogDirs is KIP-1066's broker config (Kafka 4.3+): log directories
// that take no new partitions; "*" cordons them all, so the broker gets no
// replica of a topic or partition created while it is cordoned.
const cordonedLogDirs = "cordoned.log.dirs"

func cordonKey(broker int32) ConfigKey {
	return ConfigKey{Kind: BrokerConfig, Resource: brokerRes(broker), Name: cordonedLogDirs}
}

// cordon cordons the old broker, the move's first change, so that topics
// and partitions created during the move cannot land on a broker that is
// leaving. Like a throttle, the value and what it replaced are recorded
// before it is set. A Kafka without cordoning is said, not failed: the
// verify-empty step still refuses to retire a broker that holds anything.
func (e *Executor) cordon(ctx context.Context, r *Record) error {
	log := e.logger(r)
	if r.Cordon == nil {
		key := cordonKey(r.OldBroker)
		known, err := e.Cluster.KnowsConfig(ctx, key)
		if err != nil {
			return err
		}
		if !known {
			r.CordonSkipped = fmt.Sprintf("broker %d does not know %s: its Kafka predates broker cordoning (KIP-1066, Kafka 4.3); partitions created during the move may be placed on it, and verify-empty waits for a person if they are", r.OldBroker, cordonedLogDirs)
			log.Warn().Str("reason", r.CordonSkipped).Msg("cordon skipped")
			return nil
		}
		cur, err := e.Cluster.Configs(ctx, []ConfigKey{key})
		if err != nil {
			return err
		}
		r.Cordon, r.CordonRemoved, r.CordonSkipped = &ThrottleEntry{Key: key, Value: "*", Previous: cur[key]}, false, ""
		if err := e.save(ctx, r); err != nil {
			return err
		}
	}
	if err := e.Cluster.SetConfigs(ctx, map[ConfigKey]*string{r.Cordon.Key: &r.Cordon.Value}); err != nil {
		return fmt.Errorf("cordon broker %d: %w", r.OldBroker, err)
	}
	log.Info().Msg("old broker cordoned: no new partitions are placed on it")
	return nil
}

// uncordon (rollback) puts back the old broker's own value.
func (e *Executor) uncordon(ctx context.Context, r *Record) error {
	if err := RemoveCordon(ctx, e.Cluster, r); err != nil {
		return err
	}
	if r.Cordon != nil {
		e.logger(r).Info().Msg("old broker uncordoned")
	}
	return nil
}

// uncordonOld removes the retired broker's cordon from the cluster's
// metadata. The broker is stopped, so this goes through the controllers
// (kafka.controllers), which change a broker's configs only while it is
// registered (BROKER_ID_NOT_REGISTERED after): hence before unregister-old.
// A stopped broker is fenced, and no placement picks a fenced broker.
func (e *Executor) uncordonOld(ctx context.Context, r *Record) error {
	if err := RemoveCordon(ctx, e.Cluster, r); err != nil {
		return err
	}
	if r.Cordon != nil {
		e.logger(r).Info().Msg("retired broker's cordon removed")
	}
	return nil
}

// RemoveCordon restores the cordon config r records as set by fleetd, and
// marks r. It is idempotent; the caller saves r.
func RemoveCordon(ctx context.Context, c Cluster, r *Record) error {
	if r.Cordon == nil || r.CordonRemoved {
		return nil
	}
	if err := c.SetConfigs(ctx, map[ConfigKey]*string{r.Cordon.Key: r.Cordon.Previous}); err != nil {
		return fmt.Errorf("uncordon broker %s of %s: %w", r.Cordon.Key.Resource, r.ID, err)
	}
	r.CordonRemoved = true
	return nil
}
