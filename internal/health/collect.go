package health

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Collect reads the cluster into a Snapshot. Every request goes to the
// cluster: kadm's listing calls answer from the client's metadata cache, which
// can lag by minutes, and a gate must not judge a stale picture.
//
// An error means nothing usable was read (Kafka unreachable, metadata
// refused). Anything partial after that is listed in Snapshot.Incomplete, which
// makes every gate refuse; byte counts from DescribeLogDirs are informational
// and only marked unknown.
func Collect(ctx context.Context, cl *kgo.Client) (*Snapshot, error) {
	s := &Snapshot{Taken: time.Now(), Controller: -1}
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("read cluster metadata: %w", err)
	}
	s.ClusterID = str(meta.ClusterID)
	s.Brokers = metadataBrokers(meta)
	if err := describeCluster(ctx, cl, s); err != nil {
		s.Incomplete = append(s.Incomplete, "registered brokers: "+err.Error())
	}
	index := partitionsFrom(meta, s)
	if err := activeController(ctx, cl, s); err != nil {
		s.Incomplete = append(s.Incomplete, "active controller: "+err.Error())
	}
	if err := reassignments(ctx, cl, s, index); err != nil {
		s.Incomplete = append(s.Incomplete, "in-flight reassignments: "+err.Error())
	}
	if err := minISRs(ctx, cl, s); err != nil {
		s.Incomplete = append(s.Incomplete, "min.insync.replicas: "+err.Error())
	}
	if err := eligibleLeaders(ctx, cl, s, index); err != nil {
		s.Incomplete = append(s.Incomplete, "eligible leader replicas (DescribeTopicPartitions): "+err.Error())
	}
	logDirSizes(ctx, cl, s, index)
	return s, nil
}

// eligibleLeaders adds each partition's eligible leader replicas (KIP-966)
// from DescribeTopicPartitions, on a cluster that has it (Kafka 3.8+, asked
// with ApiVersions). There, a failed read makes the snapshot incomplete: a
// gate must not judge partitions whose ELR it could not see. A cluster
// without the request has no ELR to see.
func eligibleLeaders(ctx context.Context, cl *kgo.Client, s *Snapshot, index map[TP]int) error {
	if v, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl); err == nil && kerr.ErrorForCode(v.ErrorCode) == nil {
		supported := false
		for _, k := range v.ApiKeys {
			supported = supported || k.ApiKey == kmsg.DescribeTopicPartitions.Int16()
		}
		if !supported {
			return nil
		}
	}
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.ResponsePartitionLimit = 2000
	seen := map[string]bool{}
	for _, p := range s.Partitions {
		if !seen[p.Topic] {
			seen[p.Topic] = true
			t := kmsg.NewDescribeTopicPartitionsRequestTopic()
			t.Topic = p.Topic
			req.Topics = append(req.Topics, t)
		}
	}
	// Pages of 2000 partitions; the bound keeps a misbehaving cursor from
	// looping forever.
	for page := 0; len(req.Topics) > 0 && page < 1+len(s.Partitions)/1000; page++ {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		for _, t := range resp.Topics {
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
				return fmt.Errorf("topic %s: %w", str(t.Topic), err)
			}
			for _, p := range t.Partitions {
				if i, ok := index[TP{str(t.Topic), p.Partition}]; ok {
					s.Partitions[i].ELR = p.EligibleLeaderReplicas
				}
			}
		}
		if resp.NextCursor == nil {
			return nil
		}
		req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
	}
	return nil
}

func metadataBrokers(meta *kmsg.MetadataResponse) []Broker {
	out := make([]Broker, 0, len(meta.Brokers))
	for _, b := range meta.Brokers {
		out = append(out, Broker{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: str(b.Rack)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// describeCluster replaces the metadata's broker list with the registered
// brokers including fenced ones, where the cluster can say (Kafka 4.0+).
func describeCluster(ctx context.Context, cl *kgo.Client, s *Snapshot) error {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeFencedBrokers = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("%w: %s", err, str(resp.ErrorMessage))
	}
	if resp.Version < 2 {
		return nil // fenced brokers are not reported; the metadata list stands
	}
	bs := make([]Broker, 0, len(resp.Brokers))
	for _, b := range resp.Brokers {
		bs = append(bs, Broker{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: str(b.Rack), Fenced: b.IsFenced})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].ID < bs[j].ID })
	s.Brokers = bs
	return nil
}

// partitionsFrom fills s.Partitions and returns an index by TP.
func partitionsFrom(meta *kmsg.MetadataResponse, s *Snapshot) map[TP]int {
	n := 0
	for _, t := range meta.Topics {
		n += len(t.Partitions)
	}
	s.Partitions = make([]Partition, 0, n)
	for _, t := range meta.Topics {
		topic := str(t.Topic)
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			s.Incomplete = append(s.Incomplete, fmt.Sprintf("topic %s: %v", topic, err))
			continue
		}
		for _, p := range t.Partitions {
			leader := p.Leader
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil && !errors.Is(err, kerr.LeaderNotAvailable) && !errors.Is(err, kerr.ReplicaNotAvailable) {
				s.Incomplete = append(s.Incomplete, fmt.Sprintf("partition %s-%d: %v", topic, p.Partition, err))
			} else if errors.Is(err, kerr.LeaderNotAvailable) {
				leader = -1
			}
			s.Partitions = append(s.Partitions, Partition{
				TP: TP{topic, p.Partition}, Leader: leader,
				Replicas: p.Replicas, ISR: p.ISR, Offline: p.OfflineReplicas,
			})
		}
	}
	sort.Slice(s.Partitions, func(i, j int) bool {
		a, b := s.Partitions[i].TP, s.Partitions[j].TP
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	index := make(map[TP]int, len(s.Partitions))
	for i, p := range s.Partitions {
		index[p.TP] = i
	}
	return index
}

// activeController reads the metadata quorum: its leader is the active
// controller. Brokers forward DescribeQuorum to the controllers.
func activeController(ctx context.Context, cl *kgo.Client, s *Snapshot) error {
	q, err := ReadQuorum(ctx, cl)
	if err != nil {
		return err
	}
	s.Quorum, s.Controller, s.Controllers = q, q.Leader, q.VoterIDs()
	if s.Controller < 0 {
		return errors.New("the metadata quorum has no leader")
	}
	return nil
}

// reassignments lists every in-flight reassignment (a null topic list means
// all; kadm's helper sends nothing for an empty set).
func reassignments(ctx context.Context, cl *kgo.Client, s *Snapshot, index map[TP]int) error {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = 15000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("%w: %s", err, str(resp.ErrorMessage))
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			i, ok := index[TP{t.Topic, p.Partition}]
			if !ok {
				return fmt.Errorf("reassignment listed for %s-%d, which metadata does not know", t.Topic, p.Partition)
			}
			part := &s.Partitions[i]
			part.Reassigning = true
			part.Adding = p.AddingReplicas
			part.Removing = p.RemovingReplicas
		}
	}
	return nil
}

// minISRs reads each topic's effective min.insync.replicas: DescribeConfigs on
// a topic reports the topic's own value or the default it inherits.
func minISRs(ctx context.Context, cl *kgo.Client, s *Snapshot) error {
	req := kmsg.NewPtrDescribeConfigsRequest()
	seen := map[string]bool{}
	for _, p := range s.Partitions {
		if seen[p.Topic] {
			continue
		}
		seen[p.Topic] = true
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType = kmsg.ConfigResourceTypeTopic
		r.ResourceName = p.Topic
		r.ConfigNames = []string{"min.insync.replicas"}
		req.Resources = append(req.Resources, r)
	}
	if len(req.Resources) == 0 {
		return nil
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	vals := map[string]int{}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("topic %s: %w", r.ResourceName, err)
		}
		for _, c := range r.Configs {
			if c.Name != "min.insync.replicas" || c.Value == nil {
				continue
			}
			n, err := strconv.Atoi(*c.Value)
			if err != nil {
				return fmt.Errorf("topic %s: min.insync.replicas=%q: %w", r.ResourceName, *c.Value, err)
			}
			vals[r.ResourceName] = n
		}
	}
	for i := range s.Partitions {
		v, ok := vals[s.Partitions[i].Topic]
		if !ok {
			return fmt.Errorf("topic %s: no min.insync.replicas in the answer", s.Partitions[i].Topic)
		}
		s.Partitions[i].MinISR = v
	}
	return nil
}

// logDirSizes adds bytes on disk per broker and per partition. A broker that
// does not answer only leaves its bytes unknown.
func logDirSizes(ctx context.Context, cl *kgo.Client, s *Snapshot, index map[TP]int) {
	all, err := kadm.NewClient(cl).DescribeAllLogDirs(ctx, nil)
	if err != nil && all == nil {
		return
	}
	for i := range s.Brokers {
		b := &s.Brokers[i]
		dirs, ok := all[b.ID]
		if !ok || !dirs.Ok() {
			continue
		}
		b.Bytes, b.BytesKnown = dirs.Size(), true
		dirs.EachPartition(func(d kadm.DescribedLogDirPartition) {
			if i, ok := index[TP{d.Topic, d.Partition}]; ok && d.Size > s.Partitions[i].Bytes {
				s.Partitions[i].Bytes = d.Size
			}
		})
	}
}

// Check collects a snapshot and runs CanDisrupt; a collection error is a
// refusal with the error as its reason.
func Check(ctx context.Context, cl *kgo.Client, pol Policy) (*Snapshot, Verdict) {
	s, err := Collect(ctx, cl)
	if err != nil {
		return nil, NotEvaluated(err)
	}
	return s, CanDisrupt(s, pol)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
