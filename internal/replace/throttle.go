package replace

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Throttle config names (Kafka's replication quotas).
const (
	leaderRate       = "leader.replication.throttled.rate"
	followerRate     = "follower.replication.throttled.rate"
	leaderReplicas   = "leader.replication.throttled.replicas"
	followerReplicas = "follower.replication.throttled.replicas"
)

// throttleValues are the configs a plan needs, as kafka-reassign-partitions
// sets them: the rate on every broker that sends or receives, leader-side
// throttling of the existing replicas and follower-side throttling of the new
// ones. Kafka applies them only to replicas out of the ISR, so in-sync
// replication of the same partitions is not slowed.
func throttleValues(p *Plan, rate int64) map[ConfigKey]string {
	out := map[ConfigKey]string{}
	brokers := map[int32]bool{p.New: true}
	leaders := map[string][]string{}
	followers := map[string][]string{}
	for _, b := range p.Batches {
		for _, m := range b.Moves {
			for _, r := range m.From {
				brokers[r] = true
				leaders[m.Topic] = append(leaders[m.Topic], fmt.Sprintf("%d:%d", m.Partition, r))
			}
			for _, r := range m.To {
				if !slices.Contains(m.From, r) {
					followers[m.Topic] = append(followers[m.Topic], fmt.Sprintf("%d:%d", m.Partition, r))
				}
			}
		}
	}
	v := strconv.FormatInt(rate, 10)
	for b := range brokers {
		out[ConfigKey{Kind: BrokerConfig, Resource: brokerRes(b), Name: leaderRate}] = v
		out[ConfigKey{Kind: BrokerConfig, Resource: brokerRes(b), Name: followerRate}] = v
	}
	for t, l := range leaders {
		out[ConfigKey{Kind: TopicConfig, Resource: t, Name: leaderReplicas}] = strings.Join(l, ",")
	}
	for t, l := range followers {
		out[ConfigKey{Kind: TopicConfig, Resource: t, Name: followerReplicas}] = strings.Join(l, ",")
	}
	return out
}

// mergeReplicaList adds ours to an operator's existing throttled-replicas list.
func mergeReplicaList(prev, ours string) string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(strings.Split(prev, ","), strings.Split(ours, ",")...) {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

// throttle records exactly which configs it will set, and what they were,
// before setting them, so that a crash at any instant leaves a record from
// which the throttles can be removed.
func (e *Executor) throttle(ctx context.Context, r *Record) error {
	bps, throttled := e.throttleOf(r).BytesPerSec()
	if !throttled || r.Plan == nil || r.Plan.Partitions == 0 {
		return nil
	}
	if len(r.Throttles) == 0 {
		want := throttleValues(r.Plan, bps)
		keys := make([]ConfigKey, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		cur, err := e.Cluster.Configs(ctx, keys)
		if err != nil {
			return err
		}
		var entries []ThrottleEntry
		for _, k := range keys {
			v, prev := want[k], cur[k]
			if prev != nil && (k.Name == leaderReplicas || k.Name == followerReplicas) {
				if *prev == "*" {
					continue // everything is throttled already; leave the operator's setting alone
				}
				v = mergeReplicaList(*prev, v)
			}
			entries = append(entries, ThrottleEntry{Key: k, Value: v, Previous: prev})
		}
		sort.Slice(entries, func(i, j int) bool {
			a, b := entries[i].Key, entries[j].Key
			return a.Kind < b.Kind || a.Kind == b.Kind && (a.Resource < b.Resource || a.Resource == b.Resource && a.Name < b.Name)
		})
		r.Throttles, r.ThrottlesRemoved = entries, false
		if err := e.save(ctx, r); err != nil {
			return err
		}
	}
	set := map[ConfigKey]*string{}
	for _, t := range r.Throttles {
		set[t.Key] = &t.Value
	}
	if err := e.Cluster.SetConfigs(ctx, set); err != nil {
		return err
	}
	e.logger(r).Info().Int("configs", len(r.Throttles)).Int64("bytes_per_sec", bps).Msg("replication throttles set")
	return nil
}

// unthrottle puts back what was there before fleetd's throttles: the
// operator's own value, or nothing.
func (e *Executor) unthrottle(ctx context.Context, r *Record) error {
	if err := RemoveThrottles(ctx, e.Cluster, r); err != nil {
		return err
	}
	if len(r.Throttles) > 0 {
		e.logger(r).Info().Int("configs", len(r.Throttles)).Msg("replication throttles removed")
	}
	return nil
}

// RemoveThrottles restores every config r records as set by fleetd, and marks
// r. It is idempotent; the caller saves r.
func RemoveThrottles(ctx context.Context, c Cluster, r *Record) error {
	if len(r.Throttles) == 0 || r.ThrottlesRemoved {
		return nil
	}
	restore := map[ConfigKey]*string{}
	for _, t := range r.Throttles {
		restore[t.Key] = t.Previous
	}
	if err := c.SetConfigs(ctx, restore); err != nil {
		return fmt.Errorf("remove throttles of %s: %w", r.ID, err)
	}
	r.ThrottlesRemoved = true
	return nil
}

// SweepThrottles removes throttles and cordons that finished replacements
// left behind (a fleetd that crashed after failing). Only configs fleetd
// recorded as its own are touched. In-flight replacements are left to their
// resumption.
func SweepThrottles(ctx context.Context, c Cluster, s Store) (int, error) {
	all, err := s.List(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range all {
		leftThrottles := len(r.Throttles) > 0 && !r.ThrottlesRemoved
		leftCordon := r.Cordon != nil && !r.CordonRemoved
		if !r.Phase.Terminal() || !leftThrottles && !leftCordon {
			continue
		}
		if err := RemoveThrottles(ctx, c, r); err != nil {
			return n, err
		}
		if err := RemoveCordon(ctx, c, r); err != nil {
			return n, err
		}
		if err := s.Save(ctx, r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
