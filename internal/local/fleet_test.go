package local

import (
	"strings"
	"testing"
)

func TestClusterIDNeverLooksLikeAnOption(t *testing.T) {
	for i := 0; i < 5000; i++ {
		id := newClusterID()
		if strings.HasPrefix(id, "-") || len(id) != 22 {
			t.Fatalf("cluster id %q: want 22 characters not starting with '-'", id)
		}
	}
}

func TestBrokerPropsOverridesAndRack(t *testing.T) {
	p := brokerProps(4, "127.0.0.1:9092", "az-b", "/d", []endpoint{{9000, "127.0.0.1:9093"}}, map[string]string{"num.partitions": "3"})
	for k, want := range map[string]string{
		"node.id": "4", "broker.rack": "az-b", "num.partitions": "3",
		"controller.quorum.voters": "9000@127.0.0.1:9093", "process.roles": "broker",
	} {
		if p[k] != want {
			t.Errorf("%s = %q, want %q", k, p[k], want)
		}
	}
	if !strings.Contains(p.String(), "broker.rack=az-b\n") {
		t.Errorf("rendered properties lack the rack:\n%s", p)
	}
}

func TestParseInstanceID(t *testing.T) {
	node, inc, err := parseInstanceID("local-12-3")
	if err != nil || node != 12 || inc != 3 {
		t.Fatalf("got %d %d %v", node, inc, err)
	}
	for _, bad := range []string{"i-0abc", "local-x-1", "local-1"} {
		if _, _, err := parseInstanceID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
