// Command kafka-broker-config runs at boot on a Kafka instance (the
// kafka-config systemd unit): it reads the instance's identity and tags from
// IMDSv2 and renders Kafka's server.properties and the JVM settings, so one
// AMI serves every broker and every KRaft controller of every cluster. It is
// built for linux/arm64 into packer/files/bin before `packer build`.
//
// Tags read (the launch templates and fleetd write them): the cluster tag,
// the node id tag, fleetd:role (broker, the default, or controller),
// fleetd:cluster-id (the KRaft cluster id) and fleetd:controller-quorum
// (controller.quorum.bootstrap.servers). A broker's rack is the instance's
// availability zone. A controller formats its empty disk with
// --no-initial-controllers: it joins the dynamic quorum as an observer and
// fleetd adds it as a voter (AddRaftVoter) once it has caught up.
//
// Tags are data, never configuration: anyone with ec2:CreateTags on the
// instance writes them. Only these keys are read; each value is checked
// against what it may be (Validate) and the boot is refused, with nothing
// written, when one is not. The files are rendered only from checked values,
// and the renderer refuses any value that could start a new line or key.
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func main() {
	endpoint := flag.String("imds-endpoint", "", "IMDS endpoint (default: the instance's); tests point it at a fake")
	out := flag.String("out", "/etc/kafka", "directory for server.properties and kafka.env")
	logDirs := flag.String("log-dirs", "/var/lib/kafka/data", "Kafka log directories (the kafka-disks unit mounts the instance store there)")
	meminfo := flag.String("meminfo", "/proc/meminfo", "where to read the instance's memory")
	security := flag.String("security", envOr("KAFKA_LISTENER_SECURITY", "plaintext"), "listener security: plaintext, or sasl_ssl (SCRAM-SHA-512 over TLS; see docs/ami.md for the files it needs); env KAFKA_LISTENER_SECURITY")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, *endpoint, *out, *logDirs, *meminfo, Security(*security)); err != nil {
		fmt.Fprintln(os.Stderr, "kafka-broker-config:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Security is how the broker's listeners are secured.
type Security string

const (
	// Plaintext: no TLS, no authentication (a private network only).
	Plaintext Security = "plaintext"
	// SASLSSL: clients and replication on SASL_SSL with SCRAM-SHA-512,
	// the controller listener on SSL (KRaft's CONTROLLER listener does not
	// take SCRAM). The TLS files and the inter-broker credential come from
	// files the operator's secret delivery puts under TLSDir before boot;
	// no secret is ever written into server.properties or read from a tag.
	SASLSSL Security = "sasl_ssl"
)

// TLSDir holds the broker's TLS identity and inter-broker credential for
// sasl_ssl: broker.pem (PKCS#8 key + certificate chain), ca.pem, and
// jaas.properties with the key inter.broker.jaas (a ScramLoginModule line).
const TLSDir = "/etc/kafka/tls"

// Role is what the instance runs (process.roles).
type Role string

const (
	RoleBroker     Role = "broker"
	RoleController Role = "controller"
)

// ControllerPort is the controller listener's port (the Terraform module's
// controller_port default; brokers reach the quorum on it).
const ControllerPort = 9093

// Identity is what the renderer needs from IMDS.
type Identity struct {
	NodeID      int
	Role        Role
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
	TagRole      = "fleetd:role"
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
	role, err := get(ctx, c, "tags/instance/"+TagRole)
	var re *smithyhttp.ResponseError
	switch {
	case errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound:
		id.Role = RoleBroker // instances tagged before roles were
	case err != nil:
		errs = append(errs, err)
	default:
		id.Role = Role(role)
	}
	if len(errs) > 0 {
		return id, fmt.Errorf("%w (are instance tags in metadata enabled in the launch template?)", errors.Join(errs...))
	}
	n, err := parseNodeID(node)
	if err != nil {
		return id, err
	}
	id.NodeID = n
	return id, Validate(id)
}

var (
	digits = regexp.MustCompile(`^[0-9]{1,10}$`)
	// A cluster name as fleetd allows it (config.Cluster): tag- and
	// file-name-safe.
	clusterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	// An availability zone (us-east-1b) or a Local Zone (us-west-2-lax-1a).
	zoneName = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+[a-z]$`)
	hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
)

func parseNodeID(v string) (int, error) {
	if !digits.MatchString(v) {
		return 0, fmt.Errorf("tag %s=%q is not a node id (digits only, 0 to %d)", TagNodeID, v, math.MaxInt32)
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("tag %s=%q is not a node id (0 to %d)", TagNodeID, v, math.MaxInt32)
	}
	return int(n), nil
}

// Validate checks every value read from IMDS against what it may be. Each
// error names the tag (or metadata path) and what was expected.
func Validate(id Identity) error {
	var errs []error
	if id.NodeID < 0 || id.NodeID > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("tag %s=%d is out of range", TagNodeID, id.NodeID))
	}
	if id.Role != "" && id.Role != RoleBroker && id.Role != RoleController {
		errs = append(errs, fmt.Errorf("tag %s=%q is not a role (broker or controller)", TagRole, id.Role))
	}
	if !clusterName.MatchString(id.Cluster) {
		errs = append(errs, fmt.Errorf("tag %s=%q is not a cluster name (letters, digits, '.', '_', '-'; at most 63)", TagCluster, id.Cluster))
	}
	if err := checkClusterID(id.ClusterID); err != nil {
		errs = append(errs, err)
	}
	if err := checkQuorum(id.Quorum); err != nil {
		errs = append(errs, err)
	}
	if !zoneName.MatchString(id.Zone) || len(id.Zone) > 64 {
		errs = append(errs, fmt.Errorf("placement/availability-zone=%q is not an availability zone name", id.Zone))
	}
	if ip := net.ParseIP(id.PrivateIPv4); ip == nil || ip.To4() == nil || !strings.Contains(id.PrivateIPv4, ".") {
		errs = append(errs, fmt.Errorf("local-ipv4=%q is not an IPv4 address", id.PrivateIPv4))
	}
	if len(errs) > 0 {
		return fmt.Errorf("refusing to configure Kafka from these instance tags, nothing written: %w", errors.Join(errs...))
	}
	return nil
}

// checkClusterID: Kafka's form, 16 bytes in URL-safe base64 without padding
// (22 characters), never starting with '-' (Kafka's own ids never do, and it
// would read as an option).
func checkClusterID(v string) error {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) != 16 || len(v) != 22 || strings.HasPrefix(v, "-") {
		return fmt.Errorf("tag %s=%q is not a Kafka cluster id (22 characters of URL-safe base64, as kafka-storage random-uuid prints)", TagClusterID, v)
	}
	return nil
}

// checkQuorum: host:port[,host:port...], hosts as DNS names or IPv4/[IPv6]
// addresses, ports 1-65535, at most 16 controllers.
func checkQuorum(v string) error {
	bad := func(why string) error {
		return fmt.Errorf("tag %s=%q is not a controller list (host:port,host:port...): %s", TagQuorum, v, why)
	}
	parts := strings.Split(v, ",")
	if v == "" || len(parts) > 16 {
		return bad("want 1 to 16 entries")
	}
	for _, p := range parts {
		host, port, err := net.SplitHostPort(p)
		if err != nil {
			return bad(err.Error())
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || !digits.MatchString(port) {
			return bad(fmt.Sprintf("port %q", port))
		}
		if net.ParseIP(host) == nil && (!hostName.MatchString(host) || len(host) > 253) {
			return bad(fmt.Sprintf("host %q", host))
		}
	}
	return nil
}

// Properties renders server.properties for a broker. Every value went
// through Validate; render refuses, as a second wall, any value that could
// end its line.
func Properties(id Identity, logDirs string, sec Security) (string, error) {
	listeners := [][2]string{
		{"listeners", "PLAINTEXT://0.0.0.0:9092"},
		{"advertised.listeners", "PLAINTEXT://" + id.PrivateIPv4 + ":9092"},
		{"inter.broker.listener.name", "PLAINTEXT"},
		{"listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"},
	}
	switch sec {
	case Plaintext:
	case SASLSSL:
		listeners = [][2]string{
			{"listeners", "SASL_SSL://0.0.0.0:9092"},
			{"advertised.listeners", "SASL_SSL://" + id.PrivateIPv4 + ":9092"},
			{"inter.broker.listener.name", "SASL_SSL"},
			{"listener.security.protocol.map", "SASL_SSL:SASL_SSL,CONTROLLER:SSL"},
			{"sasl.enabled.mechanisms", "SCRAM-SHA-512"},
			{"sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"},
			{"ssl.keystore.type", "PEM"},
			{"ssl.keystore.location", TLSDir + "/broker.pem"},
			{"ssl.truststore.type", "PEM"},
			{"ssl.truststore.location", TLSDir + "/ca.pem"},
			// The credential stays in its file: Kafka's file config
			// provider reads it when the broker starts.
			{"config.providers", "file"},
			{"config.providers.file.class", "org.apache.kafka.common.config.provider.FileConfigProvider"},
			{"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config", "${file:" + TLSDir + "/jaas.properties:inter.broker.jaas}"},
		}
	default:
		return "", fmt.Errorf("--security %q: want plaintext or sasl_ssl", sec)
	}
	if id.Role == RoleController {
		return controllerProperties(id, logDirs, sec)
	}
	kv := [][2]string{
		{"process.roles", "broker"},
		{"node.id", strconv.Itoa(id.NodeID)},
		{"broker.rack", id.Zone},
		{"controller.quorum.bootstrap.servers", id.Quorum},
		{"controller.listener.names", "CONTROLLER"},
	}
	kv = append(kv, listeners...)
	return render("# Rendered at boot by kafka-broker-config from IMDS; do not edit.", "=", append(kv, [][2]string{
		{"log.dirs", logDirs},
		{"num.network.threads", "8"},
		{"num.io.threads", "16"},
		{"num.replica.fetchers", "4"},
		{"default.replication.factor", "3"},
		{"min.insync.replicas", "2"},
		{"unclean.leader.election.enable", "false"},
		{"auto.create.topics.enable", "false"},
		{"auto.leader.rebalance.enable", "true"},
		{"offsets.topic.replication.factor", "3"},
		{"transaction.state.log.replication.factor", "3"},
		{"transaction.state.log.min.isr", "2"},
	}...))
}

// controllerProperties renders a KRaft controller's server.properties: the
// CONTROLLER listener on ControllerPort, advertised at the private address
// (fleetd names it in AddRaftVoter), and the quorum's bootstrap servers.
// Under sasl_ssl the listener is SSL, as the brokers expect it.
func controllerProperties(id Identity, logDirs string, sec Security) (string, error) {
	port := strconv.Itoa(ControllerPort)
	kv := [][2]string{
		{"process.roles", "controller"},
		{"node.id", strconv.Itoa(id.NodeID)},
		{"controller.quorum.bootstrap.servers", id.Quorum},
		{"controller.listener.names", "CONTROLLER"},
		{"listeners", "CONTROLLER://0.0.0.0:" + port},
		{"advertised.listeners", "CONTROLLER://" + id.PrivateIPv4 + ":" + port},
	}
	switch sec {
	case Plaintext:
		kv = append(kv, [2]string{"listener.security.protocol.map", "CONTROLLER:PLAINTEXT"})
	case SASLSSL:
		kv = append(kv, [][2]string{
			{"listener.security.protocol.map", "CONTROLLER:SSL"},
			{"ssl.keystore.type", "PEM"},
			{"ssl.keystore.location", TLSDir + "/broker.pem"},
			{"ssl.truststore.type", "PEM"},
			{"ssl.truststore.location", TLSDir + "/ca.pem"},
		}...)
	default:
		return "", fmt.Errorf("--security %q: want plaintext or sasl_ssl", sec)
	}
	return render("# Rendered at boot by kafka-broker-config from IMDS; do not edit.", "=", append(kv, [][2]string{
		{"log.dirs", logDirs},
		{"num.network.threads", "4"},
		{"num.io.threads", "8"},
	}...))
}

// formatArgs are kafka-storage format's role arguments: a controller
// formats to join the quorum as an observer (fleetd adds it as a voter).
func formatArgs(id Identity) string {
	if id.Role == RoleController {
		return "--no-initial-controllers"
	}
	return ""
}

// safeValue: printable ASCII without the characters that end, continue or
// quote a line in a properties or systemd environment file.
var safeValue = regexp.MustCompile(`^[A-Za-z0-9 ._:/,@=+\[\]${}-]*$`)

// render writes "key<sep>value" lines, refusing any value or key that is not
// safeValue: no value can add a line, a key or a quote.
func render(header, sep string, kv [][2]string) (string, error) {
	var b strings.Builder
	b.WriteString(header + "\n")
	for _, e := range kv {
		if !safeValue.MatchString(e[0]) || !safeValue.MatchString(e[1]) || strings.ContainsAny(e[0], " =") {
			return "", fmt.Errorf("refusing to write %s=%q: it could change the file's meaning", e[0], e[1])
		}
		b.WriteString(e[0] + sep + e[1] + "\n")
	}
	return b.String(), nil
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

// Env renders kafka.env for the kafka unit (a systemd EnvironmentFile).
func Env(id Identity, heapMB int64) (string, error) {
	return render("# Rendered at boot by kafka-broker-config; do not edit.", "=", [][2]string{
		{"KAFKA_HEAP_OPTS", fmt.Sprintf("-Xms%[1]dm -Xmx%[1]dm", heapMB)},
		{"KAFKA_JVM_PERFORMANCE_OPTS", "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+AlwaysPreTouch -Djava.awt.headless=true"},
		{"KAFKA_CLUSTER_ID", id.ClusterID},
		{"KAFKA_FORMAT_ARGS", formatArgs(id)},
	})
}

func writeAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func run(ctx context.Context, endpoint, out, logDirs, meminfo string, sec Security) error {
	// Reading IMDS is this program's whole job: an AWS_EC2_METADATA_DISABLED
	// left in the boot environment must not turn it off.
	opts := imds.Options{ClientEnableState: imds.ClientEnabled}
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
	// Both files are rendered before either is written: a refusal leaves
	// nothing behind, and the kafka unit does not start.
	props, err := Properties(id, logDirs, sec)
	if err != nil {
		return err
	}
	env, err := Env(id, HeapMB(mem))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(out, "server.properties"), props); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(out, "kafka.env"), env)
}
