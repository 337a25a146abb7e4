package replace

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fleetd/fleetd/internal/health"
)

// Throttle config names (Kafka's replication quotas).
const (
	leaderRate       = "leader.replication.throttled.rate"
	followerRate     = "follower.replication.throttled.rate"
	leaderReplicas   = "leader.replication.throttled.replicas"
	followerReplicas = "follower.replication.throttled.replicas"
)

// throttleValues are the rate configs a plan needs, as
// kafka-reassign-partitions sets them: the rate on every broker that sends
// or receives. The throttled-replica lists follow the mover's window
// (followWindow), so they name only the moves in flight.
func throttleValues(p *Plan, rate int64) map[ConfigKey]string {
	out := map[ConfigKey]string{}
	brokers := map[int32]bool{p.New: true}
	for _, m := range p.Moves {
		for _, r := range m.From {
			brokers[r] = true
		}
	}
	v := strconv.FormatInt(rate, 10)
	for b := range brokers {
		out[ConfigKey{Kind: BrokerConfig, Resource: brokerRes(b), Name: leaderRate}] = v
		out[ConfigKey{Kind: BrokerConfig, Resource: brokerRes(b), Name: followerRate}] = v
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
		if err := e.recordThrottles(ctx, r, throttleValues(r.Plan, bps)); err != nil {
			return err
		}
	}
	// The throttled-replica lists follow the mover's window.
	if err := e.Cluster.SetConfigs(ctx, rateKeys(r)); err != nil {
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

// maxReplicaList is the longest throttled-replica list fleetd writes; Kafka
// refuses a config string over 32,767 bytes. A longer list becomes "*"
// (every replica of the topic; Kafka throttles only those out of the ISR).
const maxReplicaList = 30_000

// catchUpThrottles are the configs that throttle an identity
// replacement's re-replication: the rate on every broker that sends, and
// lists naming exactly the partitions the relaunched broker must catch up
// (leader-side: the other replicas, any of which may lead; follower-side:
// the broker itself). The relaunched broker's own rate is set once it has
// registered (throttleNew): Kafka's controllers refuse a config of a broker
// id that is not registered.
func catchUpThrottles(s *health.Snapshot, broker int32, rate int64) map[ConfigKey]string {
	senders := map[int32]bool{}
	leaders := map[string][]string{}
	followers := map[string][]string{}
	for _, p := range s.Partitions {
		if !slices.Contains(p.Replicas, broker) {
			continue
		}
		for _, b := range p.Replicas {
			if b != broker {
				senders[b] = true
				leaders[p.Topic] = append(leaders[p.Topic], fmt.Sprintf("%d:%d", p.Partition, b))
			}
		}
		followers[p.Topic] = append(followers[p.Topic], fmt.Sprintf("%d:%d", p.Partition, broker))
	}
	out := map[ConfigKey]string{}
	v := strconv.FormatInt(rate, 10)
	for b := range senders {
		out[ConfigKey{Kind: BrokerConfig, Resource: brokerRes(b), Name: leaderRate}] = v
	}
	for t, l := range leaders {
		out[ConfigKey{Kind: TopicConfig, Resource: t, Name: leaderReplicas}] = capList(l)
	}
	for t, l := range followers {
		out[ConfigKey{Kind: TopicConfig, Resource: t, Name: followerReplicas}] = capList(l)
	}
	return out
}

func capList(l []string) string {
	if v := strings.Join(l, ","); len(v) <= maxReplicaList {
		return v
	}
	return "*"
}

// recordThrottles adds want's configs to r's throttles, each with the value
// it replaces (an operator's list is merged with ours, and one that is "*"
// already is left alone), and saves r before anything is set. Keys r
// records already are kept as they are.
func (e *Executor) recordThrottles(ctx context.Context, r *Record, want map[ConfigKey]string) error {
	var keys []ConfigKey
	for k := range want {
		if !slices.ContainsFunc(r.Throttles, func(t ThrottleEntry) bool { return t.Key == k }) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	cur, err := e.Cluster.Configs(ctx, keys)
	if err != nil {
		return err
	}
	for _, k := range sortedKeys(keys) {
		v, prev := want[k], cur[k]
		if prev != nil && (k.Name == leaderReplicas || k.Name == followerReplicas) {
			if *prev == "*" {
				continue
			}
			if v != "*" {
				v = capList(strings.Split(mergeReplicaList(*prev, v), ","))
			}
		}
		r.Throttles = append(r.Throttles, ThrottleEntry{Key: k, Value: v, Previous: prev})
	}
	r.ThrottlesRemoved = false
	return e.save(ctx, r)
}

// setRecorded sets r's recorded throttles (all of them, or those keep
// accepts).
func (e *Executor) setRecorded(ctx context.Context, r *Record, keep func(ConfigKey) bool) (int, error) {
	set := map[ConfigKey]*string{}
	for i := range r.Throttles {
		if keep == nil || keep(r.Throttles[i].Key) {
			set[r.Throttles[i].Key] = &r.Throttles[i].Value
		}
	}
	return len(set), e.Cluster.SetConfigs(ctx, set)
}

// throttleCatchUp (identity) records and sets the catch-up throttles of the
// partitions the relaunched broker must copy, before it is launched.
func (e *Executor) throttleCatchUp(ctx context.Context, r *Record) error {
	bps, throttled := e.throttleOf(r).BytesPerSec()
	if !throttled {
		return nil
	}
	if len(r.Throttles) == 0 {
		snap, err := e.Cluster.Snapshot(ctx)
		if err != nil {
			return err
		}
		if err := e.recordThrottles(ctx, r, catchUpThrottles(snap, r.NewBroker, bps)); err != nil {
			return err
		}
	}
	n, err := e.setRecorded(ctx, r, func(k ConfigKey) bool { return k.Resource != brokerRes(r.NewBroker) || k.Kind != BrokerConfig })
	if err == nil && n > 0 {
		e.logger(r).Info().Int("configs", n).Int64("bytes_per_sec", bps).Msg("catch-up throttles set")
	}
	return err
}

// throttleNew (identity) sets the relaunched broker's follower rate, now
// that it is registered, so that the sum it fetches from all leaders is
// bounded too.
func (e *Executor) throttleNew(ctx context.Context, r *Record) error {
	bps, throttled := e.throttleOf(r).BytesPerSec()
	if !throttled || r.ThrottlesRemoved || len(r.Throttles) == 0 {
		return nil
	}
	k := ConfigKey{Kind: BrokerConfig, Resource: brokerRes(r.NewBroker), Name: followerRate}
	if err := e.recordThrottles(ctx, r, map[ConfigKey]string{k: strconv.FormatInt(bps, 10)}); err != nil {
		return err
	}
	_, err := e.setRecorded(ctx, r, func(c ConfigKey) bool { return c == k })
	return err
}
