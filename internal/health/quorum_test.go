package health

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// replicaState is a DescribeQuorum replica: LEO, the leader-clock times of
// its last fetch and last caught-up moment (ms), and a directory id byte.
func replicaState(id int32, leo, fetched, caughtUp int64, dir byte) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	r := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
	r.ReplicaID, r.LogEndOffset, r.LastFetchTimestamp, r.LastCaughtUpTimestamp = id, leo, fetched, caughtUp
	r.ReplicaDirectoryID[15] = dir
	return r
}

func TestQuorumFromDescribeQuorum(t *testing.T) {
	p := kmsg.NewDescribeQuorumResponseTopicPartition()
	p.LeaderID, p.LeaderEpoch, p.HighWatermark = 9000, 4, 500
	p.CurrentVoters = append(p.CurrentVoters,
		replicaState(9000, 510, 100_000, 100_000, 1),
		replicaState(9001, 509, 99_900, 99_900, 2),
		replicaState(9002, 300, 80_000, 80_000, 3), // stopped fetching 20 s ago
	)
	p.Observers = append(p.Observers, replicaState(1, 510, 100_000, 99_950, 0), replicaState(9003, 100, 100_000, -1, 4))
	node := kmsg.NewDescribeQuorumResponseNode()
	node.NodeID = 9001
	node.Listeners = append(node.Listeners, kmsg.DescribeQuorumResponseNodeListener{Name: "CONTROLLER", Host: "10.0.0.5", Port: 9093})
	q := quorumFrom(2, p, []kmsg.DescribeQuorumResponseNode{node})

	if q.Kind != QuorumDynamic || q.Leader != 9000 || len(q.Voters) != 3 || len(q.Observers) != 2 {
		t.Fatalf("quorum = %+v", q)
	}
	v1, _ := q.Voter(9001)
	if !v1.CaughtUp || v1.Lag != 1 || len(v1.Endpoints) != 1 || v1.Endpoints[0] != "CONTROLLER://10.0.0.5:9093" || v1.DirectoryID == "" {
		t.Errorf("voter 9001 = %+v, want caught up, lag 1, its endpoint and directory id", v1)
	}
	if v2, _ := q.Voter(9002); v2.CaughtUp || v2.Lag != 210 {
		t.Errorf("voter 9002 = %+v, want not caught up (20 s since), lag 210", v2)
	}
	if o, _ := q.Observer(9003); o.CaughtUp || o.SinceCaughtUp != -1 {
		t.Errorf("observer 9003 = %+v, want never caught up", o)
	}
	if o, _ := q.Observer(1); o.DirectoryID != "" {
		t.Errorf("a zero directory id must read as none, got %q", o.DirectoryID)
	}
	// A static quorum reports no directory ids.
	for i := range p.CurrentVoters {
		p.CurrentVoters[i].ReplicaDirectoryID = [16]byte{}
	}
	if k := quorumFrom(2, p, nil).Kind; k != QuorumStatic {
		t.Errorf("kind without directory ids = %s, want static", k)
	}
}

func voters(caughtUp ...bool) *Quorum {
	q := &Quorum{Kind: QuorumDynamic, Leader: 9000}
	for i, up := range caughtUp {
		q.Voters = append(q.Voters, Replica{ID: 9000 + int32(i), CaughtUp: up, DirectoryID: "x"})
	}
	return q
}

func TestQuorumVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    Verdict
		want Code // "" = safe
	}{
		{"three caught up", QuorumHealthy(voters(true, true, true)), ""},
		{"one lagging", QuorumHealthy(voters(true, true, false)), CodeVoterLagging},
		{"four voters: a change half done", QuorumHealthy(voters(true, true, true, true)), CodeVoterChange},
		{"no leader", QuorumHealthy(&Quorum{Leader: -1, Voters: voters(true).Voters}), CodeQuorumNoLeader},
		{"nil quorum", QuorumHealthy(nil), CodeCannotEvaluate},
		{"static quorum", CanChangeVoters(&Quorum{Kind: QuorumStatic, Leader: 9000, Voters: voters(true, true, true).Voters}, "3.7.0"), CodeStaticQuorum},
		{"remove old from 4, new caught up", WithoutVoter(voters(true, true, true, true), 9001, true), ""},
		{"remove old from 4, new not caught up", WithoutVoter(voters(true, true, false, false), 9001, true), CodeQuorumMajority},
		{"remove from 3 with one down", WithoutVoter(voters(true, true, false), 9001, true), CodeQuorumMajority},
		{"stop a voter of 3 with one down", WithoutVoter(voters(true, true, false), 9001, false), CodeQuorumMajority},
		{"stop a voter of 3, all up", WithoutVoter(voters(true, true, true), 9001, false), ""},
		{"stop a non-voter", WithoutVoter(voters(true, false, false), 9005, false), ""},
		{"remove the only voter", WithoutVoter(voters(true), 9000, true), CodeQuorumMajority},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				if !tc.v.Safe {
					t.Fatalf("refused: %s", tc.v.Summary())
				}
				return
			}
			if tc.v.Safe || !tc.v.Has(tc.want) {
				t.Fatalf("verdict %+v, want a %s blocker", tc.v, tc.want)
			}
		})
	}
	msg := CanChangeVoters(&Quorum{Kind: QuorumStatic, Leader: 1, Voters: voters(true).Voters}, "3.7.0").Summary()
	for _, want := range []string{"kraft.version=1", "4.1", "3.7.0", "controller.quorum.bootstrap.servers"} {
		if !strings.Contains(msg, want) {
			t.Errorf("static refusal %q does not say %q", msg, want)
		}
	}
}

func TestCanDisruptRefusesWhileAVoterChangeIsHalfDone(t *testing.T) {
	s := &Snapshot{Brokers: brokers(1, 2, 3), Partitions: []Partition{p(0, 1, []int32{1, 2, 3}, []int32{1, 2, 3})}, Quorum: voters(true, true, true, true)}
	if v := CanDisrupt(s, Policy{}); v.Safe || !v.Has(CodeVoterChange) {
		t.Fatalf("a broker move during a voter change: %+v, want refused with %s", v, CodeVoterChange)
	}
	s.Quorum = voters(true, true, true)
	if v := CanDisrupt(s, Policy{}); !v.Safe {
		t.Fatalf("healthy quorum refused: %s", v.Summary())
	}
}

func TestUUIDRoundTrip(t *testing.T) {
	id := "MvDxzVmcRsaTz33bUuRU6A"
	b, err := ParseUUID(id)
	if err != nil || UUIDString(b) != id {
		t.Fatalf("ParseUUID(%q) = %v, %v", id, b, err)
	}
	if _, err := ParseUUID("nope"); err == nil {
		t.Fatal("a bad id parsed")
	}
}

func TestUnderMinISRReasonNamesEligibleLeaderReplicas(t *testing.T) {
	elr := p(0, 1, []int32{1, 2, 3}, []int32{1})
	elr.MinISR, elr.ELR = 2, []int32{3}
	plain := p(1, 1, []int32{1, 2, 3}, []int32{1})
	plain.MinISR = 2
	s := &Snapshot{Brokers: brokers(1, 2, 3), Partitions: []Partition{elr, plain}}
	v := CanDisrupt(s, Policy{})
	var msg string
	for _, b := range v.Blockers {
		if b.Code == CodeUnderMinISR {
			msg = b.Message
		}
	}
	if !strings.Contains(msg, "1 of them keep eligible leader replicas (ELR, KIP-966) on broker 3 (t-0)") {
		t.Fatalf("under-min-ISR reason %q does not name t-0's ELR on broker 3", msg)
	}
	s.Partitions[0].ELR = nil
	if msg := CanDisrupt(s, Policy{}).Summary(); strings.Contains(msg, "ELR") {
		t.Fatalf("no ELR, yet the reason says so: %s", msg)
	}
}
