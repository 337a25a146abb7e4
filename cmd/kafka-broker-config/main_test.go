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
	if err := run(context.Background(), srv.URL, dir, "/var/lib/kafka/data", meminfo, Plaintext); err != nil {
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
	err := run(context.Background(), srv.URL, dir, "/data", "/proc/meminfo", Plaintext)
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

// Issue 12: tags written by anyone with ec2:CreateTags once added lines to
// server.properties (log.retention.ms=1 deletes every broker's data) and to
// kafka.env (KAFKA_OPTS runs a script as the broker). The boot must be
// refused, naming the tag, with nothing written.
func TestHostileTagsRefuseTheBootAndWriteNothing(t *testing.T) {
	for tag, value := range map[string]string{
		"fleetd:node-id":           "7\nlog.retention.ms=1",
		"fleetd:controller-quorum": "10.0.1.5:9093\nlisteners=PLAINTEXT://0.0.0.0:1",
		"fleetd:cluster-id":        "q1Sh-9_ISia_zwGINzRvyQ\nKAFKA_OPTS=-XX:OnOutOfMemoryError=/tmp/pwn.sh",
		"fleetd:cluster":           "orders prod",
	} {
		t.Run(tag, func(t *testing.T) {
			meta := map[string]string{}
			for k, v := range brokerMeta {
				meta[k] = v
			}
			meta["tags/instance/"+tag] = value
			srv, _ := fakeIMDS(t, meta)
			dir := filepath.Join(t.TempDir(), "etc-kafka")
			err := run(context.Background(), srv.URL, dir, "/data", writeMeminfo(t), Plaintext)
			if err == nil || !strings.Contains(err.Error(), "tag "+tag+"=") {
				t.Fatalf("hostile %s: err %v, want a refusal naming the tag", tag, err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("files were written despite the refusal: %v", entries)
			}
		})
	}
}

func writeMeminfo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "meminfo")
	if err := os.WriteFile(p, []byte("MemTotal:       65011712 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateAcceptsRealValuesAndNamesBadOnes(t *testing.T) {
	good := Identity{NodeID: 7, Cluster: "orders-prod", ClusterID: "q1Sh-9_ISia_zwGINzRvyQ", Quorum: "ctl-1.kafka.internal:9093,10.0.2.5:9093,[fd00::5]:9093", Zone: "us-west-2-lax-1a", PrivateIPv4: "10.0.2.17"}
	if err := Validate(good); err != nil {
		t.Fatalf("real values refused: %v", err)
	}
	for name, mutate := range map[string]func(*Identity){
		"cluster id too short": func(i *Identity) { i.ClusterID = "abc" },
		"cluster id with dash": func(i *Identity) { i.ClusterID = "-1Sh-9_ISia_zwGINzRvyQ" },
		"quorum without port":  func(i *Identity) { i.Quorum = "10.0.1.5" },
		"quorum port 0":        func(i *Identity) { i.Quorum = "10.0.1.5:0" },
		"quorum with a space":  func(i *Identity) { i.Quorum = "10.0.1.5:9093, 10.0.2.5:9093" },
		"zone with a newline":  func(i *Identity) { i.Zone = "us-east-1b\nx=y" },
		"ipv4 that is ipv6":    func(i *Identity) { i.PrivateIPv4 = "fd00::1" },
		"cluster with a slash": func(i *Identity) { i.Cluster = "../etc" },
		"negative node id":     func(i *Identity) { i.NodeID = -1 },
	} {
		id := good
		mutate(&id)
		if err := Validate(id); err == nil {
			t.Errorf("%s: accepted %+v", name, id)
		}
	}
	for _, v := range []string{"", "+7", "-1", "07a", "2147483648", " 7"} {
		if _, err := parseNodeID(v); err == nil {
			t.Errorf("node id %q accepted", v)
		}
	}
}

// FuzzTagValues: whatever the tags say, either the boot is refused or the
// rendered files have exactly the keys the renderer writes, one per line.
func FuzzTagValues(f *testing.F) {
	f.Add("7", "orders-prod", "q1Sh-9_ISia_zwGINzRvyQ", "10.0.1.5:9093,10.0.2.5:9093", "us-east-1b", "10.0.2.17", "")
	f.Add("7\nlog.retention.ms=1", "x", "q1Sh-9_ISia_zwGINzRvyQ\nKAFKA_OPTS=x", "h:1\nlisteners=x", "us-east-1b", "10.0.0.1", "broker\nprocess.roles=x")
	f.Add("2147483647", "a", "AAAAAAAAAAAAAAAAAAAAAA", "[::1]:9093", "eu-west-3c", "192.168.0.1", "controller")
	f.Fuzz(func(t *testing.T, node, cluster, clusterID, quorum, zone, ip, role string) {
		n, err := parseNodeID(node)
		if err != nil {
			return
		}
		id := Identity{NodeID: n, Role: Role(role), Cluster: cluster, ClusterID: clusterID, Quorum: quorum, Zone: zone, PrivateIPv4: ip}
		if Validate(id) != nil {
			return
		}
		props, err := Properties(id, "/var/lib/kafka/data", Plaintext)
		if err != nil {
			t.Fatalf("validated values refused by the renderer: %v", err)
		}
		secure, err := Properties(id, "/var/lib/kafka/data", SASLSSL)
		if err != nil {
			t.Fatalf("validated values refused by the sasl_ssl renderer: %v", err)
		}
		env, err := Env(id, 1024)
		if err != nil {
			t.Fatalf("validated values refused by the renderer: %v", err)
		}
		checkKeys(t, env, 4)
		if id.Role == RoleController {
			checkKeys(t, props, 10)
			checkKeys(t, secure, 14)
			return
		}
		checkKeys(t, secure, 30)
		checkKeys(t, props, 21)
	})
}

// checkKeys: a header line, then exactly n distinct key=value lines.
func checkKeys(t *testing.T, file string, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(file, "\n"), "\n")
	if len(lines) != n+1 {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), n+1, file)
	}
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		k, _, ok := strings.Cut(l, "=")
		if !ok || seen[k] {
			t.Fatalf("line %q repeats a key or has none:\n%s", l, file)
		}
		seen[k] = true
	}
}

func TestSASLSSLListenersKeepTheSecretInItsFile(t *testing.T) {
	srv, _ := fakeIMDS(t, brokerMeta)
	dir := t.TempDir()
	if err := run(context.Background(), srv.URL, dir, "/data", writeMeminfo(t), SASLSSL); err != nil {
		t.Fatal(err)
	}
	props, _ := os.ReadFile(filepath.Join(dir, "server.properties"))
	for _, want := range []string{"listeners=SASL_SSL://0.0.0.0:9092\n", "advertised.listeners=SASL_SSL://10.0.2.17:9092\n",
		"inter.broker.listener.name=SASL_SSL\n", "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL\n",
		"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n", "ssl.keystore.location=/etc/kafka/tls/broker.pem\n",
		"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${file:/etc/kafka/tls/jaas.properties:inter.broker.jaas}\n"} {
		if !strings.Contains(string(props), want) {
			t.Errorf("server.properties lacks %q:\n%s", want, props)
		}
	}
	if strings.Contains(string(props), "PLAINTEXT://") || strings.Contains(string(props), "password") {
		t.Errorf("sasl_ssl rendering has a PLAINTEXT listener or a password:\n%s", props)
	}
	if err := run(context.Background(), srv.URL, t.TempDir(), "/data", writeMeminfo(t), "ssl-ish"); err == nil {
		t.Error("an unknown --security was accepted")
	}
}

// One AMI serves both roles: an instance tagged fleetd:role=controller
// renders a controller that joins the quorum as an observer; an unknown
// role refuses the boot.
func TestRendersAControllerFromItsRoleTag(t *testing.T) {
	meta := map[string]string{}
	for k, v := range brokerMeta {
		meta[k] = v
	}
	meta["tags/instance/fleetd:role"] = "controller"
	meta["tags/instance/fleetd:node-id"] = "9003"
	srv, _ := fakeIMDS(t, meta)
	dir := t.TempDir()
	meminfo := filepath.Join(dir, "meminfo")
	os.WriteFile(meminfo, []byte("MemTotal:       8000000 kB\n"), 0o644)
	if err := run(context.Background(), srv.URL, dir, "/var/lib/kafka/data", meminfo, Plaintext); err != nil {
		t.Fatal(err)
	}
	props, _ := os.ReadFile(filepath.Join(dir, "server.properties"))
	for _, want := range []string{"process.roles=controller\n", "node.id=9003\n", "listeners=CONTROLLER://0.0.0.0:9093\n",
		"advertised.listeners=CONTROLLER://10.0.2.17:9093\n", "controller.quorum.bootstrap.servers=10.0.1.5:9093,10.0.2.5:9093,10.0.3.5:9093\n",
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT\n"} {
		if !strings.Contains(string(props), want) {
			t.Errorf("controller server.properties lacks %q:\n%s", want, props)
		}
	}
	if strings.Contains(string(props), "broker.rack") || strings.Contains(string(props), "PLAINTEXT://") {
		t.Errorf("controller server.properties has broker settings:\n%s", props)
	}
	env, _ := os.ReadFile(filepath.Join(dir, "kafka.env"))
	if !strings.Contains(string(env), "KAFKA_FORMAT_ARGS=--no-initial-controllers\n") {
		t.Errorf("kafka.env does not format the controller as an observer:\n%s", env)
	}

	// A broker (no role tag) formats without role arguments.
	srv, _ = fakeIMDS(t, brokerMeta)
	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "meminfo"), []byte("MemTotal:       8000000 kB\n"), 0o644)
	if err := run(context.Background(), srv.URL, dir, "/var/lib/kafka/data", filepath.Join(dir, "meminfo"), Plaintext); err != nil {
		t.Fatal(err)
	}
	if env, _ := os.ReadFile(filepath.Join(dir, "kafka.env")); !strings.Contains(string(env), "KAFKA_FORMAT_ARGS=\n") {
		t.Errorf("broker kafka.env:\n%s", env)
	}

	meta["tags/instance/fleetd:role"] = "broker,controller"
	srv, _ = fakeIMDS(t, meta)
	dir = t.TempDir()
	err := run(context.Background(), srv.URL, dir, "/var/lib/kafka/data", meminfo, Plaintext)
	if err == nil || !strings.Contains(err.Error(), `tag fleetd:role="broker,controller" is not a role`) {
		t.Fatalf("a combined role was not refused: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "server.properties")); err == nil {
		t.Error("a refused boot wrote server.properties")
	}
}
