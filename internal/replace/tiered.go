package replace

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetd/fleetd/internal/health"
)

// Tiered storage (KIP-405). A new follower of a partition whose topic has
// remote.storage.enable=true does not copy the whole log: it starts at the
// leader's earliest local offset (below it the log lives in remote storage)
// and copies the local log from there. The plan's bytes are already local:
// they come from DescribeLogDirs, whose partition size is the local log's
// (UnifiedLog.size sums the local segments). TieredSpans adds the offsets,
// from ListOffsets with EARLIEST_LOCAL_TIMESTAMP, so that the plan says how
// much of each tiered log stays remote.

// TieredSpan is one tiered partition's log: Earliest is its first offset
// anywhere (remote included), LocalStart the leader's first local offset
// (where a new follower starts), End the log end.
type TieredSpan struct {
	Earliest   int64 `json:"earliest"`
	LocalStart int64 `json:"local_start"`
	End        int64 `json:"end"`
}

// Remote is the count of offsets a new follower does not copy.
func (s TieredSpan) Remote() int64 { return max(s.LocalStart-s.Earliest, 0) }

// ListOffsets' special timestamps (KIP-405: earliest local needs v8+).
const (
	latestTimestamp        = -1
	earliestTimestamp      = -2
	earliestLocalTimestamp = -4
)

const remoteStorageEnable = "remote.storage.enable"

// remoteTopics reads a DescribeConfigs response of topics: those with
// remote storage enabled.
func remoteTopics(resp *kmsg.DescribeConfigsResponse) (map[string]bool, error) {
	out := map[string]bool{}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			if err == kerr.UnknownTopicOrPartition {
				continue // deleted meanwhile
			}
			return nil, fmt.Errorf("configs of topic %s: %w", r.ResourceName, err)
		}
		for _, c := range r.Configs {
			if c.Name == remoteStorageEnable && c.Value != nil && *c.Value == "true" {
				out[r.ResourceName] = true
			}
		}
	}
	return out, nil
}

// listedOffsets reads a ListOffsets response: each partition's offset.
func listedOffsets(resp *kmsg.ListOffsetsResponse) (map[health.TP]int64, error) {
	out := map[health.TP]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("list offsets of %s-%d: %w", t.Topic, p.Partition, err)
			}
			out[health.TP{Topic: t.Topic, Partition: p.Partition}] = p.Offset
		}
	}
	return out, nil
}

// spansOf joins the three listings into spans.
func spansOf(earliest, local, end map[health.TP]int64) map[health.TP]TieredSpan {
	out := make(map[health.TP]TieredSpan, len(local))
	for tp, l := range local {
		out[tp] = TieredSpan{Earliest: earliest[tp], LocalStart: l, End: end[tp]}
	}
	return out
}

// TieredSpans reads the spans of tps whose topics have remote storage
// enabled (none: an empty map): one DescribeConfigs of their topics, then
// three ListOffsets (franz-go sends each to the partitions' leaders).
func (k KafkaCluster) TieredSpans(ctx context.Context, tps []health.TP) (map[health.TP]TieredSpan, error) {
	var topics []string
	for _, tp := range tps {
		if !slices.Contains(topics, tp.Topic) {
			topics = append(topics, tp.Topic)
		}
	}
	if len(topics) == 0 {
		return nil, nil
	}
	dreq := kmsg.NewPtrDescribeConfigsRequest()
	for _, t := range topics {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName, r.ConfigNames = kmsg.ConfigResourceTypeTopic, t, []string{remoteStorageEnable}
		dreq.Resources = append(dreq.Resources, r)
	}
	dresp, err := dreq.RequestWith(ctx, k.Client)
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	remote, err := remoteTopics(dresp)
	if err != nil || len(remote) == 0 {
		return nil, err
	}
	list := func(ts int64) (map[health.TP]int64, error) {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		index := map[string]int{} // topic -> its place in req.Topics
		for _, tp := range tps {
			if !remote[tp.Topic] {
				continue
			}
			i, ok := index[tp.Topic]
			if !ok {
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = tp.Topic
				i, index[tp.Topic] = len(req.Topics), len(req.Topics)
				req.Topics = append(req.Topics, rt)
			}
			p := kmsg.NewListOffsetsRequestTopicPartition()
			p.Partition, p.Timestamp, p.CurrentLeaderEpoch = tp.Partition, ts, -1
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
		}
		resp, err := req.RequestWith(ctx, k.Client)
		if err != nil {
			return nil, fmt.Errorf("list offsets: %w", err)
		}
		return listedOffsets(resp)
	}
	earliest, err := list(earliestTimestamp)
	if err != nil {
		return nil, err
	}
	local, err := list(earliestLocalTimestamp)
	if err != nil {
		return nil, fmt.Errorf("earliest local offsets (Kafka 3.6+): %w", err)
	}
	end, err := list(latestTimestamp)
	if err != nil {
		return nil, err
	}
	return spansOf(earliest, local, end), nil
}
