package replace

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetd/fleetd/internal/health"
)

// No cluster with tiered storage runs here: Kafka's LocalTieredStorage
// ships in org.apache.kafka:kafka-storage's test jar, which this machine's
// Maven registry does not serve (tried for 4.4.0). These are the responses
// a Kafka 4.4 broker gives, in the protocol's shape (DescribeConfigs v4,
// ListOffsets v8+): a topic "logs" with remote storage, "orders" without.
func describeLogsOrders() *kmsg.DescribeConfigsResponse {
	resp := kmsg.NewPtrDescribeConfigsResponse()
	for topic, v := range map[string]string{"logs": "true", "orders": "false"} {
		r := kmsg.NewDescribeConfigsResponseResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value = remoteStorageEnable, kmsg.StringPtr(v)
		r.Configs = append(r.Configs, c)
		resp.Resources = append(resp.Resources, r)
	}
	gone := kmsg.NewDescribeConfigsResponseResource()
	gone.ResourceType, gone.ResourceName, gone.ErrorCode = kmsg.ConfigResourceTypeTopic, "deleted", kerr.UnknownTopicOrPartition.Code
	resp.Resources = append(resp.Resources, gone)
	return resp
}

func listed(offsets map[int32]int64) *kmsg.ListOffsetsResponse {
	resp := kmsg.NewPtrListOffsetsResponse()
	t := kmsg.NewListOffsetsResponseTopic()
	t.Topic = "logs"
	for p, o := range offsets {
		rp := kmsg.NewListOffsetsResponseTopicPartition()
		rp.Partition, rp.Offset, rp.Timestamp, rp.LeaderEpoch = p, o, -1, 3
		t.Partitions = append(t.Partitions, rp)
	}
	resp.Topics = append(resp.Topics, t)
	return resp
}

// The responses read into spans: only the topic with remote storage, each
// partition from its earliest offset (remote) through its earliest local
// offset to its end; an error names the partition.
func TestTieredSpansFromListOffsets(t *testing.T) {
	remote, err := remoteTopics(describeLogsOrders())
	if err != nil || !remote["logs"] || remote["orders"] || len(remote) != 1 {
		t.Fatalf("remote topics %v, %v: want logs only", remote, err)
	}
	earliest, _ := listedOffsets(listed(map[int32]int64{0: 0, 1: 0}))
	local, _ := listedOffsets(listed(map[int32]int64{0: 90_000, 1: 120_000}))
	end, _ := listedOffsets(listed(map[int32]int64{0: 100_000, 1: 125_000}))
	spans := spansOf(earliest, local, end)
	want := map[health.TP]TieredSpan{{Topic: "logs", Partition: 0}: {0, 90_000, 100_000}, {Topic: "logs", Partition: 1}: {0, 120_000, 125_000}}
	for tp, s := range want {
		if spans[tp] != s {
			t.Errorf("%s: %+v, want %+v", tp, spans[tp], s)
		}
	}
	bad := listed(map[int32]int64{0: -1})
	bad.Topics[0].Partitions[0].ErrorCode = kerr.NotLeaderForPartition.Code
	if _, err := listedOffsets(bad); err == nil || !strings.Contains(err.Error(), "logs-0") {
		t.Errorf("error %v, want logs-0 named", err)
	}
}

// A plan of a broker holding tiered partitions marks their moves with the
// spans and says how much stays remote; their bytes are the local logs'
// (what DescribeLogDirs reports), so the ETA counts only what is copied.
func TestThePlanCountsOnlyTheLocalLogOfTieredPartitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _, ex := streamFakes(4, 2, 1<<20)
		c.copyRate = 0
		c.tiered = map[health.TP]TieredSpan{{Topic: "t0", Partition: 0}: {0, 900, 1000}, {Topic: "t0", Partition: 1}: {0, 500, 1000}}
		r, err := ex.Preview(context.Background(), Request{Broker: 2})
		if err != nil {
			t.Fatal(err)
		}
		p := r.Plan
		if p.Tiered != 2 || !strings.Contains(p.TieredNote, "only the local log (600 offsets), not the 1400 offsets in remote storage") {
			t.Errorf("tiered %d: %q", p.Tiered, p.TieredNote)
		}
		for _, m := range p.Moves {
			_, isTiered := c.tiered[m.TP]
			if (m.Tiered != nil) != isTiered || m.Bytes != 1<<20 {
				t.Errorf("%s: tiered %v bytes %d", m.TP, m.Tiered, m.Bytes)
			}
		}
	})
}
