package replace

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetd/fleetd/internal/health"
)

// KafkaCluster is the Cluster over a franz-go client.
type KafkaCluster struct {
	Client *kgo.Client
	// Controllers, if set, is a client seeded with the KRaft controllers
	// (KIP-919). Broker-level configs are changed through it, because a
	// broker only accepts changes to its own configs: without it, the
	// throttle of a broker that died mid-replacement cannot be removed.
	Controllers *kgo.Client
}

func (k KafkaCluster) adm() *kadm.Client { return kadm.NewClient(k.Client) }

func (k KafkaCluster) Snapshot(ctx context.Context) (*health.Snapshot, error) {
	return health.Collect(ctx, k.Client)
}

func (k KafkaCluster) Reassign(ctx context.Context, targets map[health.TP][]int32) error {
	req := kadm.AlterPartitionAssignmentsReq{}
	for tp, replicas := range targets {
		req.Assign(tp.Topic, tp.Partition, replicas)
	}
	resp, err := k.adm().AlterPartitionAssignments(ctx, req)
	if err != nil {
		return fmt.Errorf("alter partition assignments: %w", err)
	}
	return resp.Error()
}

func (k KafkaCluster) CancelReassign(ctx context.Context, tps []health.TP) error {
	if len(tps) == 0 {
		return nil
	}
	req := kadm.AlterPartitionAssignmentsReq{}
	for _, tp := range tps {
		req.CancelAssign(tp.Topic, tp.Partition)
	}
	resp, err := k.adm().AlterPartitionAssignments(ctx, req)
	if err != nil {
		return fmt.Errorf("cancel reassignments: %w", err)
	}
	var first error
	resp.Each(func(r kadm.AlterPartitionAssignmentsResponse) {
		if r.Err != nil && !errors.Is(r.Err, kerr.NoReassignmentInProgress) && first == nil {
			first = fmt.Errorf("cancel reassignment of %s-%d: %w", r.Topic, r.Partition, r.Err)
		}
	})
	return first
}

func (k KafkaCluster) ElectPreferred(ctx context.Context, tps []health.TP) error {
	if len(tps) == 0 {
		return nil
	}
	set := kadm.TopicsSet{}
	for _, tp := range tps {
		set.Add(tp.Topic, tp.Partition)
	}
	res, err := k.adm().ElectLeaders(ctx, kadm.ElectPreferredReplica, set)
	if err != nil {
		return fmt.Errorf("elect preferred leaders: %w", err)
	}
	for _, ps := range res {
		for _, r := range ps {
			if r.Err != nil && !errors.Is(r.Err, kerr.ElectionNotNeeded) {
				return fmt.Errorf("elect preferred leader of %s-%d: %w %s", r.Topic, r.Partition, r.Err, r.ErrMessage)
			}
		}
	}
	return nil
}

func (k KafkaCluster) Configs(ctx context.Context, keys []ConfigKey) (map[ConfigKey]*string, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	type res struct {
		kind ConfigKind
		name string
	}
	names := map[res][]string{}
	for _, key := range keys {
		r := res{key.Kind, key.Resource}
		names[r] = append(names[r], key.Name)
	}
	for r, ns := range names {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType = resourceType(r.kind)
		rr.ResourceName = r.name
		rr.ConfigNames = ns
		req.Resources = append(req.Resources, rr)
	}
	resp, err := req.RequestWith(ctx, k.Client)
	if err != nil {
		return nil, fmt.Errorf("describe configs: %w", err)
	}
	out := map[ConfigKey]*string{}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return nil, fmt.Errorf("describe configs of %s: %w", r.ResourceName, err)
		}
		kind := BrokerConfig
		if r.ResourceType == kmsg.ConfigResourceTypeTopic {
			kind = TopicConfig
		}
		for _, c := range r.Configs {
			// Only a dynamic value set on this very resource is ours to
			// restore; defaults and static values are not "set".
			if c.Source != kmsg.ConfigSourceDynamicTopicConfig && c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
				continue
			}
			out[ConfigKey{Kind: kind, Resource: r.ResourceName, Name: c.Name}] = c.Value
		}
	}
	return out, nil
}

func (k KafkaCluster) SetConfigs(ctx context.Context, values map[ConfigKey]*string) error {
	if k.Controllers == nil {
		return k.alterConfigs(ctx, values, k.Client.Request)
	}
	brokers, direct := map[ConfigKey]*string{}, map[ConfigKey]*string{}
	for key, v := range values {
		// Topic configs go to any broker. A cordon is set on the broker
		// itself: controllers only let a cordon shrink, as they do not know
		// the broker's log directories (KAFKA-20441).
		if key.Kind == BrokerConfig && (key.Name != cordonedLogDirs || v == nil) {
			brokers[key] = v
		} else {
			direct[key] = v
		}
	}
	if err := k.alterConfigs(ctx, direct, k.Client.Request); err != nil {
		return err
	}
	return k.alterConfigs(ctx, brokers, k.controllerRequest)
}

// KnowsConfig asks the resource whether it knows the config's name.
func (k KafkaCluster) KnowsConfig(ctx context.Context, key ConfigKey) (bool, error) {
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = resourceType(key.Kind), key.Resource, []string{key.Name}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, k.Client)
	if err != nil {
		return false, fmt.Errorf("describe configs: %w", err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return false, fmt.Errorf("describe configs of %s: %w", r.ResourceName, err)
		}
		for _, c := range r.Configs {
			if c.Name == key.Name {
				return true, nil
			}
		}
	}
	return false, nil
}

// controllerRequest sends req to the first controller that answers.
func (k KafkaCluster) controllerRequest(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	var last error
	for _, b := range k.Controllers.SeedBrokers() {
		resp, err := b.Request(ctx, req)
		if err == nil {
			return resp, nil
		}
		last = err
	}
	return nil, fmt.Errorf("no controller answered: %w", last)
}

func (k KafkaCluster) alterConfigs(ctx context.Context, values map[ConfigKey]*string, send func(context.Context, kmsg.Request) (kmsg.Response, error)) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	byRes := map[ConfigKey][]kmsg.IncrementalAlterConfigsRequestResourceConfig{}
	for key, v := range values {
		res := ConfigKey{Kind: key.Kind, Resource: key.Resource}
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name = key.Name
		if v == nil {
			c.Op = kmsg.IncrementalAlterConfigOpDelete
		} else {
			c.Op = kmsg.IncrementalAlterConfigOpSet
			c.Value = v
		}
		byRes[res] = append(byRes[res], c)
	}
	for res, cs := range byRes {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType = resourceType(res.Kind)
		r.ResourceName = res.Resource
		r.Configs = cs
		req.Resources = append(req.Resources, r)
	}
	if len(req.Resources) == 0 {
		return nil
	}
	raw, err := send(ctx, req)
	if err != nil {
		if k.Controllers == nil {
			return fmt.Errorf("alter configs: %w (a broker accepts changes only to its own configs; to change a down broker's, configure kafka.controllers)", err)
		}
		return fmt.Errorf("alter configs: %w", err)
	}
	resp := raw.(*kmsg.IncrementalAlterConfigsResponse)
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("alter configs of %s: %w %s", r.ResourceName, err, str(r.ErrorMessage))
		}
	}
	return nil
}

func resourceType(k ConfigKind) kmsg.ConfigResourceType {
	if k == TopicConfig {
		return kmsg.ConfigResourceTypeTopic
	}
	return kmsg.ConfigResourceTypeBroker
}

func (k KafkaCluster) ReplicaBytes(ctx context.Context, broker int32) (map[health.TP]int64, error) {
	dirs, err := k.adm().DescribeBrokerLogDirs(ctx, broker, nil)
	if err != nil {
		return nil, fmt.Errorf("describe log dirs of broker %d: %w", broker, err)
	}
	if err := dirs.Error(); err != nil {
		return nil, fmt.Errorf("describe log dirs of broker %d: %w", broker, err)
	}
	out := map[health.TP]int64{}
	dirs.EachPartition(func(d kadm.DescribedLogDirPartition) {
		out[health.TP{Topic: d.Topic, Partition: d.Partition}] += d.Size
	})
	return out, nil
}

// Unregister sends KRaft's UnregisterBroker, which kadm does not wrap. A
// broker that is not registered is already unregistered.
func (k KafkaCluster) Unregister(ctx context.Context, broker int32) error {
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = broker
	resp, err := req.RequestWith(ctx, k.Client)
	if err != nil {
		return fmt.Errorf("unregister broker %d: %w", broker, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil && !errors.Is(err, kerr.BrokerIDNotRegistered) {
		return fmt.Errorf("unregister broker %d: %w %s", broker, err, str(resp.ErrorMessage))
	}
	return nil
}

// Quorum reads the controller quorum (see health.ReadQuorum).
func (k KafkaCluster) Quorum(ctx context.Context) (*health.Quorum, error) {
	return health.ReadQuorum(ctx, k.Client)
}

// AddVoter sends AddRaftVoter (brokers forward it to the active controller)
// and waits for the new voter set to be committed.
func (k KafkaCluster) AddVoter(ctx context.Context, v Voter) error {
	dir, err := health.ParseUUID(v.DirectoryID)
	if err != nil {
		return fatal("add voter %d: directory id: %w", v.ID, err)
	}
	name, hostport, ok := strings.Cut(v.Endpoint, "://")
	host, portText, perr := net.SplitHostPort(hostport)
	port, cerr := strconv.ParseUint(portText, 10, 16)
	if !ok || perr != nil || cerr != nil {
		return fatal("add voter %d: endpoint %q is not NAME://host:port", v.ID, v.Endpoint)
	}
	req := kmsg.NewPtrAddRaftVoterRequest()
	req.TimeoutMillis = 30_000
	req.VoterID, req.VoterDirectoryID = v.ID, dir
	req.AckWhenCommitted = true
	l := kmsg.NewAddRaftVoterRequestListener()
	l.Name, l.Host, l.Port = name, host, uint16(port)
	req.Listeners = append(req.Listeners, l)
	resp, err := req.RequestWith(ctx, k.Client)
	if err != nil {
		return fmt.Errorf("add voter %d: %w", v.ID, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil && !errors.Is(err, kerr.DuplicateVoter) {
		return fmt.Errorf("add voter %d: %w %s", v.ID, err, str(resp.ErrorMessage))
	}
	return nil
}

// QuorumBootstrap asks every serving broker for its
// controller.quorum.bootstrap.servers (a static config: only the broker
// itself reports it).
func (k KafkaCluster) QuorumBootstrap(ctx context.Context) (map[int32][]string, error) {
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, k.Client)
	if err != nil {
		return nil, fmt.Errorf("read brokers: %w", err)
	}
	ids := make([]int32, 0, len(meta.Brokers))
	for _, b := range meta.Brokers {
		ids = append(ids, b.NodeID)
	}
	rcs, err := k.adm().DescribeBrokerConfigs(ctx, ids...)
	if err != nil {
		return nil, fmt.Errorf("describe broker configs: %w", err)
	}
	out := map[int32][]string{}
	for _, rc := range rcs {
		if rc.Err != nil {
			return nil, fmt.Errorf("describe configs of broker %s: %w", rc.Name, rc.Err)
		}
		id, err := strconv.ParseInt(rc.Name, 10, 32)
		if err != nil {
			continue
		}
		for _, c := range rc.Configs {
			if c.Key == "controller.quorum.bootstrap.servers" {
				for _, e := range strings.Split(c.MaybeValue(), ",") {
					if e = strings.TrimSpace(e); e != "" {
						out[int32(id)] = append(out[int32(id)], e)
					}
				}
			}
		}
	}
	return out, nil
}

// RemoveVoter sends RemoveRaftVoter.
func (k KafkaCluster) RemoveVoter(ctx context.Context, id int32, directoryID string) error {
	dir, err := health.ParseUUID(directoryID)
	if err != nil {
		return fatal("remove voter %d: directory id: %w", id, err)
	}
	req := kmsg.NewPtrRemoveRaftVoterRequest()
	req.VoterID, req.VoterDirectoryID = id, dir
	resp, err := req.RequestWith(ctx, k.Client)
	if err != nil {
		return fmt.Errorf("remove voter %d: %w", id, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil && !errors.Is(err, kerr.VoterNotFound) {
		return fmt.Errorf("remove voter %d: %w %s", id, err, str(resp.ErrorMessage))
	}
	return nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// brokerRes is the config resource name of a broker.
func brokerRes(id int32) string { return strconv.Itoa(int(id)) }

// Watch reads tps with three requests, whatever the cluster's size:
// ListPartitionReassignments of tps (answered by the controller), Metadata
// of their topics (which also says whether dest serves: KRaft lists only
// unfenced brokers), and dest's DescribeLogDirs of tps.
func (k KafkaCluster) Watch(ctx context.Context, tps []health.TP, dest int32) (*Watched, error) {
	set := kadm.TopicsSet{}
	for _, tp := range tps {
		set.Add(tp.Topic, tp.Partition)
	}
	w := &Watched{Partitions: make(map[health.TP]WatchedPartition, len(tps))}
	meta, err := k.metadata(ctx, set.Topics())
	if err != nil {
		return nil, err
	}
	for _, b := range meta.Brokers {
		w.DestAlive = w.DestAlive || b.NodeID == dest
	}
	for _, t := range meta.Topics {
		err := kerr.ErrorForCode(t.ErrorCode)
		if t.Topic == nil || errors.Is(err, kerr.UnknownTopicOrPartition) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("metadata of %s: %w", *t.Topic, err)
		}
		for _, p := range t.Partitions {
			tp := health.TP{Topic: *t.Topic, Partition: p.Partition}
			if _, ok := set[tp.Topic][tp.Partition]; ok {
				w.Partitions[tp] = WatchedPartition{Replicas: p.Replicas, ISR: p.ISR, Leader: p.Leader}
			}
		}
	}
	if len(tps) > 0 {
		ls, err := k.adm().ListPartitionReassignments(ctx, set)
		if err != nil {
			return nil, fmt.Errorf("list reassignments: %w", err)
		}
		for t, ps := range ls {
			for p, r := range ps {
				tp := health.TP{Topic: t, Partition: p}
				if wp, ok := w.Partitions[tp]; ok && (len(r.AddingReplicas) > 0 || len(r.RemovingReplicas) > 0) {
					wp.Reassigning = true
					w.Partitions[tp] = wp
				}
			}
		}
	}
	if !w.DestAlive || len(tps) == 0 {
		return w, nil
	}
	dirs, err := k.adm().DescribeBrokerLogDirs(ctx, dest, set)
	if err != nil || dirs.Error() != nil {
		return w, nil // sizes are progress, not state: read again next time
	}
	w.DestBytes = make(map[health.TP]int64, len(tps))
	dirs.EachPartition(func(d kadm.DescribedLogDirPartition) {
		w.DestBytes[health.TP{Topic: d.Topic, Partition: d.Partition}] += d.Size
	})
	return w, nil
}

// LeaderBytes asks each leader of tps for their sizes (DescribeLogDirs of
// just those partitions): one request per leader.
func (k KafkaCluster) LeaderBytes(ctx context.Context, tps []health.TP) (map[health.TP]int64, error) {
	set := kadm.TopicsSet{}
	for _, tp := range tps {
		set.Add(tp.Topic, tp.Partition)
	}
	meta, err := k.metadata(ctx, set.Topics())
	if err != nil {
		return nil, err
	}
	byLeader := map[int32]kadm.TopicsSet{}
	for _, t := range meta.Topics {
		if t.Topic == nil {
			continue
		}
		for _, p := range t.Partitions {
			if _, ok := set[*t.Topic][p.Partition]; ok && p.Leader >= 0 {
				ls := byLeader[p.Leader]
				if ls == nil {
					ls = kadm.TopicsSet{}
					byLeader[p.Leader] = ls
				}
				ls.Add(*t.Topic, p.Partition)
			}
		}
	}
	out := make(map[health.TP]int64, len(tps))
	for leader, s := range byLeader {
		dirs, err := k.adm().DescribeBrokerLogDirs(ctx, leader, s)
		if err == nil {
			err = dirs.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("log dirs of broker %d: %w", leader, err)
		}
		dirs.EachPartition(func(d kadm.DescribedLogDirPartition) {
			out[health.TP{Topic: d.Topic, Partition: d.Partition}] += d.Size
		})
	}
	return out, nil
}

// metadata reads topics' metadata fresh, with a MetadataRequest of our
// own: kadm.Metadata answers from franz-go's cache, up to 5 s old, which
// made every wave of moves, reorder and election wait 5 s for what Kafka
// had done in milliseconds.
func (k KafkaCluster) metadata(ctx context.Context, topics []string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	meta, err := req.RequestWith(ctx, k.Client)
	if err != nil {
		return nil, fmt.Errorf("metadata of %d topics: %w", len(topics), err)
	}
	return meta, nil
}
