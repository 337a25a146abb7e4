package health

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// QuorumKind says whether the controller quorum can change its voters.
type QuorumKind string

const (
	// QuorumDynamic: kraft.version 1 (KIP-853); voters change with
	// AddRaftVoter and RemoveRaftVoter.
	QuorumDynamic QuorumKind = "dynamic"
	// QuorumStatic: kraft.version 0; the voters are fixed by
	// controller.quorum.voters and cannot change.
	QuorumStatic QuorumKind = "static"
)

// CaughtUpWithin is how recently a voter must have been at the leader's log
// end to count as caught up, measured on the leader's clock against the
// newest fetch it has seen. Controllers fetch continuously (every 500 ms
// or faster while the leader writes its no-op records), so a live voter is
// always well within it and a dead one falls out of it in seconds.
const CaughtUpWithin = 5 * time.Second

// Replica is one member of the metadata quorum, a voter or an observer, as
// DescribeQuorum reports it.
type Replica struct {
	ID int32 `json:"id"`
	// DirectoryID is the replica's metadata log directory id (a Kafka Uuid);
	// with the node id it names a voter of a dynamic quorum. Empty when the
	// cluster does not report it (static quorum, DescribeQuorum before v2).
	DirectoryID string `json:"directory_id,omitempty"`
	// Endpoints are a voter's listeners ("CONTROLLER://host:port").
	Endpoints    []string `json:"endpoints,omitempty"`
	LogEndOffset int64    `json:"log_end_offset"`
	// Lag is the leader's log end offset minus this replica's.
	Lag int64 `json:"lag"`
	// SinceCaughtUp is how long ago the replica was last at the leader's log
	// end, by the leader's clock (-1: never, or unknown).
	SinceCaughtUp time.Duration `json:"since_caught_up"`
	CaughtUp      bool          `json:"caught_up"`
}

// Quorum is the KRaft controller quorum at one instant.
type Quorum struct {
	Kind QuorumKind `json:"kind"`
	// KRaftVersion is the finalized kraft.version (-1: not reported).
	KRaftVersion  int16     `json:"kraft_version"`
	Leader        int32     `json:"leader"`
	Epoch         int32     `json:"epoch"`
	HighWatermark int64     `json:"high_watermark"`
	Voters        []Replica `json:"voters"`
	// Observers are the replicas that follow the log without voting: the
	// brokers, and a controller that has not been added as a voter yet.
	Observers []Replica `json:"observers,omitempty"`
}

// VoterIDs lists the voters' node ids.
func (q *Quorum) VoterIDs() []int32 {
	out := make([]int32, len(q.Voters))
	for i, v := range q.Voters {
		out[i] = v.ID
	}
	return out
}

// Voter returns voter id.
func (q *Quorum) Voter(id int32) (Replica, bool) {
	i := slices.IndexFunc(q.Voters, func(v Replica) bool { return v.ID == id })
	if i < 0 {
		return Replica{}, false
	}
	return q.Voters[i], true
}

// Observer returns observer id.
func (q *Quorum) Observer(id int32) (Replica, bool) {
	i := slices.IndexFunc(q.Observers, func(v Replica) bool { return v.ID == id })
	if i < 0 {
		return Replica{}, false
	}
	return q.Observers[i], true
}

// caughtUp counts the caught-up voters among ids.
func (q *Quorum) caughtUp(ids []int32) int {
	n := 0
	for _, id := range ids {
		if v, ok := q.Voter(id); ok && v.CaughtUp {
			n++
		}
	}
	return n
}

// majority of n voters.
func majority(n int) int { return n/2 + 1 }

// ZeroUUID is Kafka's Uuid.ZERO in its base64 form: no directory id.
const ZeroUUID = "AAAAAAAAAAAAAAAAAAAAAA"

// UUIDString renders a Kafka Uuid as Kafka prints it (base64url, no padding).
func UUIDString(b [16]byte) string { return base64.RawURLEncoding.EncodeToString(b[:]) }

// ParseUUID reads a Kafka Uuid in its printed form.
func ParseUUID(s string) ([16]byte, error) {
	var out [16]byte
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 16 {
		return out, fmt.Errorf("%q is not a Kafka Uuid (22 characters of base64url)", s)
	}
	copy(out[:], b)
	return out, nil
}

// ReadQuorum asks the cluster for its metadata quorum (DescribeQuorum v2,
// which brokers forward to the controllers) and for the finalized
// kraft.version (ApiVersions).
func ReadQuorum(ctx context.Context, cl *kgo.Client) (*Quorum, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("describe quorum: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("describe quorum: %w %s", err, str(resp.ErrorMessage))
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return nil, errors.New("describe quorum: the answer names no metadata partition")
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return nil, fmt.Errorf("describe quorum: %w %s", err, str(p.ErrorMessage))
	}
	q := quorumFrom(resp.Version, p, resp.Nodes)
	q.KRaftVersion = kraftVersion(ctx, cl)
	switch {
	case q.KRaftVersion >= 1:
		q.Kind = QuorumDynamic
	case q.KRaftVersion == 0:
		q.Kind = QuorumStatic
	}
	return q, nil
}

// quorumFrom turns a DescribeQuorum answer into a Quorum. Without a
// finalized kraft.version the kind is read from the voters: a static quorum
// has no directory ids.
func quorumFrom(version int16, p kmsg.DescribeQuorumResponseTopicPartition, nodes []kmsg.DescribeQuorumResponseNode) *Quorum {
	q := &Quorum{KRaftVersion: -1, Leader: p.LeaderID, Epoch: p.LeaderEpoch, HighWatermark: p.HighWatermark, Kind: QuorumStatic}
	endpoints := map[int32][]string{}
	for _, n := range nodes {
		for _, l := range n.Listeners {
			endpoints[n.NodeID] = append(endpoints[n.NodeID], l.Name+"://"+net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))))
		}
	}
	var leaderLEO, newest int64 = -1, -1
	for _, r := range append(slices.Clone(p.CurrentVoters), p.Observers...) {
		if r.ReplicaID == p.LeaderID {
			leaderLEO = max(leaderLEO, r.LogEndOffset)
		}
		newest = max(newest, r.LastFetchTimestamp, r.LastCaughtUpTimestamp)
	}
	if leaderLEO < 0 {
		leaderLEO = p.HighWatermark
	}
	replica := func(r kmsg.DescribeQuorumResponseTopicPartitionReplicaState) Replica {
		out := Replica{ID: r.ReplicaID, LogEndOffset: r.LogEndOffset, Lag: max(0, leaderLEO-r.LogEndOffset), SinceCaughtUp: -1, Endpoints: endpoints[r.ReplicaID]}
		if version >= 2 {
			if id := UUIDString(r.ReplicaDirectoryID); id != ZeroUUID {
				out.DirectoryID = id
			}
		}
		if r.LastCaughtUpTimestamp >= 0 && newest >= 0 {
			out.SinceCaughtUp = time.Duration(newest-r.LastCaughtUpTimestamp) * time.Millisecond
		}
		out.CaughtUp = r.ReplicaID == p.LeaderID || out.SinceCaughtUp >= 0 && out.SinceCaughtUp <= CaughtUpWithin
		return out
	}
	for _, r := range p.CurrentVoters {
		v := replica(r)
		if v.DirectoryID != "" {
			q.Kind = QuorumDynamic
		}
		q.Voters = append(q.Voters, v)
	}
	for _, r := range p.Observers {
		q.Observers = append(q.Observers, replica(r))
	}
	sort.Slice(q.Voters, func(i, j int) bool { return q.Voters[i].ID < q.Voters[j].ID })
	sort.Slice(q.Observers, func(i, j int) bool { return q.Observers[i].ID < q.Observers[j].ID })
	return q
}

// kraftVersion is the finalized kraft.version feature the cluster reports
// (-1 when it reports none, as Kafka before 3.9 does).
func kraftVersion(ctx context.Context, cl *kgo.Client) int16 {
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil || kerr.ErrorForCode(resp.ErrorCode) != nil {
		return -1
	}
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "kraft.version" {
			return f.MaxVersionLevel
		}
	}
	return -1
}

// Quorum verdict codes.
const (
	// CodeQuorumNoLeader: the controller quorum has no leader.
	CodeQuorumNoLeader Code = "quorum-no-leader"
	// CodeVoterLagging: a voter is down or behind the leader.
	CodeVoterLagging Code = "voter-lagging"
	// CodeVoterChange: a voter change looks unfinished.
	CodeVoterChange Code = "voter-change-in-flight"
	// CodeStaticQuorum: the quorum cannot change voters (kraft.version 0).
	CodeStaticQuorum Code = "static-quorum"
	// CodeQuorumMajority: the act would leave fewer caught-up voters than a majority.
	CodeQuorumMajority Code = "quorum-majority"
)

// QuorumHealthy answers whether the quorum is healthy enough for any
// disruption, broker or controller: a leader, every voter caught up, and no
// voter change half done. An even number of voters is how a replacement
// looks between AddRaftVoter and RemoveRaftVoter (3 + 1); fleetd never
// starts another disruption on top of it.
func QuorumHealthy(q *Quorum) Verdict {
	var v Verdict
	if q == nil {
		v.block(Reason{Code: CodeCannotEvaluate, Message: "the controller quorum could not be read"})
		return v.done()
	}
	if q.Leader < 0 {
		v.block(Reason{Code: CodeQuorumNoLeader, Message: "the controller quorum has no leader (an election is running or a majority is down)"})
	}
	var lagging []int32
	var why []string
	for _, r := range q.Voters {
		if !r.CaughtUp {
			lagging = append(lagging, r.ID)
			why = append(why, fmt.Sprintf("%d: %d records behind, last caught up %s", r.ID, r.Lag, sinceText(r.SinceCaughtUp)))
		}
	}
	if len(lagging) > 0 {
		v.block(Reason{Code: CodeVoterLagging, Brokers: lagging, Message: fmt.Sprintf("controller voter %s is down or not caught up with the leader (%s)", ids(lagging), strings.Join(why, "; "))})
	}
	if n := len(q.Voters); n > 1 && n%2 == 0 {
		v.block(Reason{Code: CodeVoterChange, Brokers: q.VoterIDs(), Message: fmt.Sprintf("the quorum has %d voters (%s): a voter change looks half done (a controller added, none removed yet); finish or undo it (kafka-metadata-quorum remove-controller) before any other disruption", n, ids(q.VoterIDs()))})
	}
	return v.done()
}

// CanChangeVoters answers whether a controller replacement may start: the
// quorum is dynamic and healthy.
func CanChangeVoters(q *Quorum, kafkaVersion string) Verdict {
	v := QuorumHealthy(q)
	if q != nil && q.Kind != QuorumDynamic {
		v.Safe = false
		v.block(Reason{Code: CodeStaticQuorum, Brokers: q.VoterIDs(), Message: StaticQuorumMessage(kafkaVersion)})
	}
	return v.done()
}

// StaticQuorumMessage is the refusal for a static quorum: what is needed
// and the command that upgrades it.
func StaticQuorumMessage(kafkaVersion string) string {
	msg := "the controller quorum is static (kraft.version 0, controller.quorum.voters): its voters cannot change, so a controller cannot be replaced without downtime. " +
		"Upgrade it to a dynamic quorum (KIP-853): Kafka 4.1 or later on every node, then run " +
		"`kafka-features.sh --bootstrap-server <broker> upgrade --feature kraft.version=1` and replace controller.quorum.voters with controller.quorum.bootstrap.servers in each node's configuration"
	if kafkaVersion != "" {
		msg += fmt.Sprintf(" (this cluster reports Kafka %s)", kafkaVersion)
	}
	return msg
}

// WithoutVoter answers whether voter id may leave the quorum now (removed
// with RemoveRaftVoter, or stopped while still a voter): the voters left
// must hold a majority of caught-up members, of the voter set as it will be
// (removed) or as it is (stopped). A node that is not a voter is no
// quorum's business.
func WithoutVoter(q *Quorum, id int32, removed bool) Verdict {
	var v Verdict
	if q == nil {
		v.block(Reason{Code: CodeCannotEvaluate, Message: "the controller quorum could not be read"})
		return v.done()
	}
	if _, ok := q.Voter(id); !ok {
		return v.done()
	}
	rest := slices.DeleteFunc(q.VoterIDs(), func(x int32) bool { return x == id })
	size := len(q.Voters)
	if removed {
		size = len(rest)
	}
	up := q.caughtUp(rest)
	if size == 0 || up < majority(size) {
		act := "stopping"
		if removed {
			act = "removing"
		}
		v.block(Reason{Code: CodeQuorumMajority, Brokers: []int32{id}, Message: fmt.Sprintf("%s voter %d leaves %d caught-up voters of %d (%s), fewer than a majority (%d)", act, id, up, size, ids(rest), majority(size))})
	}
	return v.done()
}

func sinceText(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(100*time.Millisecond).String() + " ago"
}
