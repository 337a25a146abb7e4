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
	p := brokerProps(4, "127.0.0.1:9092", "az-b", "/d", Properties{"controller.quorum.bootstrap.servers": "127.0.0.1:9093"}, map[string]string{"num.partitions": "3"})
	for k, want := range map[string]string{
		"node.id": "4", "broker.rack": "az-b", "num.partitions": "3",
		"controller.quorum.bootstrap.servers": "127.0.0.1:9093", "process.roles": "broker",
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

func TestChildrenNeverSeeTheCallersJVMSettings(t *testing.T) {
	t.Setenv("JAVA_TOOL_OPTIONS", "-Xmx1m")
	t.Setenv("KAFKA_OPTS", "-XX:OnOutOfMemoryError=/tmp/pwn.sh")
	t.Setenv("FLEETD_KEEP_ME", "yes")
	env := strings.Join(childEnv(), "\n")
	for _, bad := range []string{"JAVA_TOOL_OPTIONS=", "KAFKA_OPTS="} {
		if strings.Contains(env, bad) {
			t.Errorf("child environment carries %s", bad)
		}
	}
	if !strings.Contains(env, "FLEETD_KEEP_ME=yes") {
		t.Error("child environment lost an unrelated variable")
	}
}
