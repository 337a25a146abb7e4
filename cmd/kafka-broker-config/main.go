// Command kafka-broker-config runs at boot on a broker instance (the
// kafka-config systemd unit): it reads the instance's identity and tags from
// IMDSv2 and renders Kafka's server.properties and the JVM settings, so one
// AMI serves every broker of every cluster. It is built for linux/arm64 into
// packer/files/bin before `packer build`.
//
// Tags read (the launch template and fleetd write them): the cluster tag,
// the node id tag, fleetd:cluster-id (the KRaft cluster id) and
// fleetd:controller-quorum (controller.quorum.bootstrap.servers). The rack
// is the instance's availability zone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

func main() {
	endpoint := flag.String("imds-endpoint", "", "IMDS endpoint (default: the instance's); tests point it at a fake")
	out := flag.String("out", "/etc/kafka", "directory for server.properties and kafka.env")
	logDirs := flag.String("log-dirs", "/var/lib/kafka/data", "Kafka log directories (the kafka-disks unit mounts the instance store there)")
	meminfo := flag.String("meminfo", "/proc/meminfo", "where to read the instance's memory")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, *endpoint, *out, *logDirs, *meminfo); err != nil {
		fmt.Fprintln(os.Stderr, "kafka-broker-config:", err)
		os.Exit(1)
	}
}

// Identity is what the renderer needs from IMDS.
type Identity struct {
	NodeID      int
	Cluster     string
	ClusterID   string
	Quorum      string
	Zone        string
	PrivateIPv4 string
}

// Tag keys; the cluster and node id keys match fleetd's defaults.
const (
	TagCluster   = "fleetd:cluster"
	TagNodeID    = "fleetd:node-id"
	TagClusterID = "fleetd:cluster-id"
	TagQuorum    = "fleetd:controller-quorum"
)

func get(ctx context.Context, c *imds.Client, path string) (string, error) {
	out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", fmt.Errorf("IMDS %s: %w", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	return strings.TrimSpace(string(b)), err
}

// ReadIdentity asks IMDSv2 (the client fetches the session token).
func ReadIdentity(ctx context.Context, c *imds.Client) (Identity, error) {
	var id Identity
	var errs []error
	fetch := func(dst *string, path string) {
		v, err := get(ctx, c, path)
		if err != nil {
			errs = append(errs, err)
		}
		*dst = v
	}
	var node string
	fetch(&id.Zone, "placement/availability-zone")
	fetch(&id.PrivateIPv4, "local-ipv4")
	fetch(&id.Cluster, "tags/instance/"+TagCluster)
	fetch(&node, "tags/instance/"+TagNodeID)
	fetch(&id.ClusterID, "tags/instance/"+TagClusterID)
	fetch(&id.Quorum, "tags/instance/"+TagQuorum)
	if len(errs) > 0 {
		return id, fmt.Errorf("%w (are instance tags in metadata enabled in the launch template?)", errors.Join(errs...))
	}
	n, err := strconv.Atoi(node)
	if err != nil || n < 0 {
		return id, fmt.Errorf("tag %s=%q is not a node id", TagNodeID, node)
	}
	id.NodeID = n
	return id, nil
}

// Properties renders server.properties for a broker.
func Properties(id Identity, logDirs string) string {
	return fmt.Sprintf(`# Rendered at boot by kafka-broker-config from IMDS; do not edit.
process.roles=broker
node.id=%d
broker.rack=%s
controller.quorum.bootstrap.servers=%s
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://0.0.0.0:9092
advertised.listeners=PLAINTEXT://%s:9092
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=%s
num.network.threads=8
num.io.threads=16
num.replica.fetchers=4
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
auto.leader.rebalance.enable=true
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
`, id.NodeID, id.Zone, id.Quorum, id.PrivateIPv4, logDirs)
}

// HeapMB sizes Kafka's heap from the instance's memory: a quarter, between
// 1 GiB and 8 GiB (the page cache, not the heap, serves Kafka's reads).
func HeapMB(memKB int64) int64 {
	return min(max(memKB/1024/4, 1024), 8192)
}

func memTotalKB(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s has no MemTotal", path)
}

// Env renders kafka.env for the kafka unit.
func Env(id Identity, heapMB int64) string {
	return fmt.Sprintf(`KAFKA_HEAP_OPTS="-Xms%[1]dm -Xmx%[1]dm"
KAFKA_JVM_PERFORMANCE_OPTS="-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+AlwaysPreTouch -Djava.awt.headless=true"
KAFKA_CLUSTER_ID=%[2]s
`, heapMB, id.ClusterID)
}

func writeAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func run(ctx context.Context, endpoint, out, logDirs, meminfo string) error {
	opts := imds.Options{}
	if endpoint != "" {
		opts.Endpoint = endpoint
	}
	id, err := ReadIdentity(ctx, imds.New(opts))
	if err != nil {
		return err
	}
	mem, err := memTotalKB(meminfo)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(out, "server.properties"), Properties(id, logDirs)); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(out, "kafka.env"), Env(id, HeapMB(mem)))
}
