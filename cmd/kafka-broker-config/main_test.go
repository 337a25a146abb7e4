package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeIMDS serves IMDSv2 on loopback: a session token from PUT
// /latest/api/token, required on every metadata GET.
func fakeIMDS(t *testing.T, meta map[string]string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var unauthorized atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
			if r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") == "" {
				http.Error(w, "ttl header required", http.StatusBadRequest)
				return
			}
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			_, _ = w.Write([]byte("tok-123"))
			return
		}
		if r.Header.Get("X-Aws-Ec2-Metadata-Token") != "tok-123" {
			unauthorized.Add(1)
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		v, ok := meta[strings.TrimPrefix(r.URL.Path, "/latest/meta-data/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(v))
	}))
	t.Cleanup(srv.Close)
	return srv, &unauthorized
}

var brokerMeta = map[string]string{
	"placement/availability-zone":            "us-east-1b",
	"local-ipv4":                             "10.0.2.17",
	"tags/instance/fleetd:cluster":           "orders-prod",
	"tags/instance/fleetd:node-id":           "7",
	"tags/instance/fleetd:cluster-id":        "q1Sh-9_ISia_zwGINzRvyQ",
	"tags/instance/fleetd:controller-quorum": "10.0.1.5:9093,10.0.2.5:9093,10.0.3.5:9093",
}

func TestRendersFromIMDSv2(t *testing.T) {
	srv, unauthorized := fakeIMDS(t, brokerMeta)
	dir := t.TempDir()
	meminfo := filepath.Join(dir, "meminfo")
	os.WriteFile(meminfo, []byte("MemTotal:       65011712 kB\nMemFree:        1000 kB\n"), 0o644) // im4gn.4xlarge: 62 GiB
	if err := run(context.Background(), srv.URL, dir, "/var/lib/kafka/data", meminfo); err != nil {
		t.Fatal(err)
	}
	props, _ := os.ReadFile(filepath.Join(dir, "server.properties"))
	for _, want := range []string{"node.id=7\n", "broker.rack=us-east-1b\n", "advertised.listeners=PLAINTEXT://10.0.2.17:9092\n",
		"controller.quorum.bootstrap.servers=10.0.1.5:9093,10.0.2.5:9093,10.0.3.5:9093\n", "log.dirs=/var/lib/kafka/data\n",
		"process.roles=broker\n", "unclean.leader.election.enable=false\n", "min.insync.replicas=2\n"} {
		if !strings.Contains(string(props), want) {
			t.Errorf("server.properties lacks %q:\n%s", want, props)
		}
	}
	env, _ := os.ReadFile(filepath.Join(dir, "kafka.env"))
	if !strings.Contains(string(env), `-Xms8192m -Xmx8192m`) || !strings.Contains(string(env), "UseG1GC") || !strings.Contains(string(env), "KAFKA_CLUSTER_ID=q1Sh-9_ISia_zwGINzRvyQ") {
		t.Errorf("kafka.env:\n%s", env)
	}
	if unauthorized.Load() != 0 {
		t.Errorf("%d metadata requests without the IMDSv2 token", unauthorized.Load())
	}
}

func TestMissingTagsAreNamed(t *testing.T) {
	meta := map[string]string{}
	for k, v := range brokerMeta {
		if k != "tags/instance/fleetd:node-id" && k != "tags/instance/fleetd:controller-quorum" {
			meta[k] = v
		}
	}
	srv, _ := fakeIMDS(t, meta)
	dir := t.TempDir()
	err := run(context.Background(), srv.URL, dir, "/data", "/proc/meminfo")
	if err == nil || !strings.Contains(err.Error(), "fleetd:node-id") || !strings.Contains(err.Error(), "fleetd:controller-quorum") {
		t.Fatalf("missing tags: %v, want both named", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "server.properties")); err == nil {
		t.Error("a config was written from incomplete metadata")
	}
}

func TestHeapFromMemory(t *testing.T) {
	for memGiB, want := range map[int64]int64{2: 1024, 8: 2048, 16: 4096, 62: 8192, 256: 8192} {
		if got := HeapMB(memGiB << 20); got != want {
			t.Errorf("%d GiB: heap %d MB, want %d", memGiB, got, want)
		}
	}
}
