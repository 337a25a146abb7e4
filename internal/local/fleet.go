package local

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// MaxHeapMB caps every broker JVM's heap, so that a controller and four
// brokers fit a small machine alongside the tests.
const MaxHeapMB = 512

// DefaultRacks are the simulated availability zones brokers rotate over.
var DefaultRacks = []string{"local-1a", "local-1b", "local-1c"}

// Options configures a Fleet. Dir and Dist are required.
type Options struct {
	// Dist is the Kafka distribution (default: DefaultDist).
	Dist Dist
	// Dir holds one sub-directory per node (config, data, logs). The caller
	// owns it. Empty: a temporary directory that Close deletes.
	Dir string
	// Controllers is the size of the KRaft controller quorum (default 1).
	Controllers int
	// ControllerBaseID is the first controller node id (default 9000); broker
	// ids must stay clear of the controllers' ids.
	ControllerBaseID int32
	// Racks is the rotation of broker.rack values (default DefaultRacks).
	Racks []string
	// BrokerHeapMB is each broker's -Xmx (default and maximum MaxHeapMB).
	BrokerHeapMB int
	// ControllerHeapMB is each controller's -Xmx (default 256).
	ControllerHeapMB int
	// BrokerConfig is added to (and overrides) every broker's server.properties.
	BrokerConfig map[string]string
	// StartTimeout bounds how long a node may take to listen (default 90 s).
	StartTimeout time.Duration
	// StopTimeout bounds a graceful stop before SIGKILL (default 60 s).
	StopTimeout time.Duration
	// SASLSSL, when set, gives every broker a second listener, SASL_SSL
	// with SCRAM-SHA-512, on a port of its own (BrokerInfo.SecureAddr), as
	// the AMI's sasl_ssl option does. Replication and the controllers stay
	// on PLAINTEXT. SCRAM users are made with AlterUserScramCredentials.
	SASLSSL *SASLSSL
	Log     zerolog.Logger
}

// SASLSSL is the brokers' TLS identity for their SASL_SSL listener.
type SASLSSL struct {
	// KeystorePEM is a PEM file holding the private key (PKCS#8, not
	// encrypted) and the certificate chain the brokers present.
	KeystorePEM string
}

func (o *Options) setDefaults() error {
	if o.Dist.Home == "" {
		d, err := DefaultDist()
		if err != nil {
			return err
		}
		o.Dist = d
	}
	if o.Controllers == 0 {
		o.Controllers = 1
	}
	if o.ControllerBaseID == 0 {
		o.ControllerBaseID = 9000
	}
	if len(o.Racks) == 0 {
		o.Racks = DefaultRacks
	}
	if o.BrokerHeapMB == 0 {
		o.BrokerHeapMB = MaxHeapMB
	}
	if o.BrokerHeapMB < 64 || o.BrokerHeapMB > MaxHeapMB {
		return fmt.Errorf("local fleet: BrokerHeapMB=%d, want 64..%d", o.BrokerHeapMB, MaxHeapMB)
	}
	if o.ControllerHeapMB == 0 {
		o.ControllerHeapMB = 256
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 90 * time.Second
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 60 * time.Second
	}
	return nil
}

// BrokerInfo describes one broker of the fleet, running or not.
type BrokerInfo struct {
	ID int32
	// Incarnation counts how often this node id was created afresh (Remove
	// ends an incarnation), so a replaced instance gets a new identity.
	Incarnation int
	Started     time.Time
	Rack        string
	Addr        string // host:port of its PLAINTEXT listener
	// SecureAddr is its SASL_SSL listener when Options.SASLSSL is set.
	SecureAddr string
	DataDir    string
	PID        int // 0 when not running
	Running    bool
}

type node struct {
	id          int32
	incarnation int
	started     time.Time
	rack        string
	port        int
	securePort  int // SASL_SSL listener, when Options.SASLSSL is set
	dir         string
	proc        *Process
	starting    bool
}

func (n *node) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }
func (n *node) secureAddr() string {
	if n.securePort == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.securePort))
}
func (n *node) dataDir() string { return filepath.Join(n.dir, "data") }
func (n *node) running() bool   { return n.proc != nil && !n.proc.Exited() }

// Fleet is a running local Kafka cluster. All methods are safe for concurrent
// use; Close is idempotent and must be called (defer it right after Start).
type Fleet struct {
	opts        Options
	tempDir     string // created by Start, deleted by Close
	clusterID   string
	controllers []*node
	voters      []endpoint

	mu           sync.Mutex
	brokers      map[int32]*node
	incarnations map[int32]int
	rotation     int
	closed       bool
}

// Start formats and starts the controller quorum. Brokers are added with
// StartBroker. On error everything started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Fleet, err error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	tempDir := ""
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "fleetd-fleet-")
		if err != nil {
			return nil, fmt.Errorf("local fleet: %w", err)
		}
		opts.Dir, tempDir = d, d
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("local fleet: %w", err)
	}
	f := &Fleet{opts: opts, tempDir: tempDir, clusterID: newClusterID(), brokers: map[int32]*node{}, incarnations: map[int32]int{}}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	for i := 0; i < opts.Controllers; i++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		id := opts.ControllerBaseID + int32(i)
		n := &node{id: id, port: port, dir: filepath.Join(opts.Dir, fmt.Sprintf("controller-%d", id))}
		f.controllers = append(f.controllers, n)
		f.voters = append(f.voters, endpoint{id: id, addr: n.addr()})
	}
	for _, n := range f.controllers {
		props := controllerProps(n.id, n.addr(), n.dataDir(), f.voters)
		if err := f.prepare(ctx, n, props); err != nil {
			return nil, err
		}
	}
	// A quorum only elects a leader once enough voters run, so start all first.
	for _, n := range f.controllers {
		p, err := startJVM(n.dir, jvmArgs(opts.ControllerHeapMB, n.dir, opts.Dist, "kafka.Kafka", filepath.Join(n.dir, "server.properties")))
		if err != nil {
			return nil, fmt.Errorf("controller %d: %w", n.id, err)
		}
		n.proc = p
	}
	for _, n := range f.controllers {
		if err := waitListening(ctx, n.proc, n.addr(), opts.StartTimeout); err != nil {
			return nil, fmt.Errorf("controller %d: %w; see %s", n.id, err, filepath.Join(n.dir, "server.log"))
		}
		opts.Log.Info().Int32("node_id", n.id).Str("addr", n.addr()).Int("pid", n.proc.PID()).Msg("controller started")
	}
	return f, nil
}

// newClusterID returns a random Kafka UUID in base64url. Like Kafka's own
// Uuid.randomUuid it never starts with '-', which kafka-storage's argument
// parser would take for an option (1 run in 64 failed before this).
func newClusterID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

// ClusterID is the KRaft cluster id every node was formatted with.
func (f *Fleet) ClusterID() string { return f.clusterID }

// ControllerAddrs lists the controller listeners (host:port).
func (f *Fleet) ControllerAddrs() []string {
	out := make([]string, len(f.controllers))
	for i, n := range f.controllers {
		out[i] = n.addr()
	}
	return out
}

// prepare writes a node's configuration and formats its storage unless it
// already is (a restart with data keeps its data).
func (f *Fleet) prepare(ctx context.Context, n *node, props Properties) error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return err
	}
	cfg := filepath.Join(n.dir, "server.properties")
	if err := os.WriteFile(cfg, []byte(props.String()), 0o644); err != nil {
		return err
	}
	logName, logCfg := "log4j2.properties", log4j2Config
	if f.opts.Dist.Major() == 3 {
		logName, logCfg = "log4j.properties", log4jConfig
	}
	if err := os.WriteFile(filepath.Join(n.dir, logName), []byte(logCfg), 0o644); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(n.dataDir(), "meta.properties")); err == nil {
		return nil
	}
	cds, dumped := cdsArgs(f.opts.Dist, true)
	args := jvmArgsWith(256, n.dir, f.opts.Dist, cds, "kafka.tools.StorageTool", "format", "-t", f.clusterID, "-c", cfg, "--ignore-formatted")
	if err := runTool(ctx, n.dir, args); err != nil {
		os.Remove(dumped)
		return fmt.Errorf("format storage of node %d: %w", n.id, err)
	}
	cdsKeep(f.opts.Dist, dumped)
	return nil
}

// StartBroker starts broker id and waits until it listens. A broker that ran
// before keeps its data and port; a new id formats a fresh data directory.
// rack "" means the next rack in the rotation (or the broker's old rack).
func (f *Fleet) StartBroker(ctx context.Context, id int32, rack string) (BrokerInfo, error) {
	for _, c := range f.controllers {
		if c.id == id {
			return BrokerInfo{}, fmt.Errorf("node id %d belongs to a controller", id)
		}
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return BrokerInfo{}, errors.New("local fleet is closed")
	}
	n := f.brokers[id]
	if n != nil && (n.running() || n.starting) {
		f.mu.Unlock()
		return BrokerInfo{}, fmt.Errorf("broker %d is already running", id)
	}
	if n == nil {
		f.incarnations[id]++
		n = &node{id: id, incarnation: f.incarnations[id], dir: filepath.Join(f.opts.Dir, fmt.Sprintf("broker-%d-%d", id, f.incarnations[id]))}
		f.brokers[id] = n
	}
	if rack != "" {
		n.rack = rack
	}
	if n.rack == "" {
		n.rack = f.opts.Racks[f.rotation%len(f.opts.Racks)]
		f.rotation++
	}
	// Keep the old port when possible so addresses stay stable across restarts.
	if n.port == 0 || !portFree(n.port) {
		p, err := freePort()
		if err != nil {
			f.mu.Unlock()
			return BrokerInfo{}, err
		}
		n.port = p
	}
	if f.opts.SASLSSL != nil && (n.securePort == 0 || !portFree(n.securePort)) {
		p, err := freePort()
		if err != nil {
			f.mu.Unlock()
			return BrokerInfo{}, err
		}
		n.securePort = p
	}
	n.starting = true
	f.mu.Unlock()

	err := f.startBroker(ctx, n)

	f.mu.Lock()
	defer f.mu.Unlock()
	n.starting = false
	if err != nil {
		if n.proc != nil {
			n.proc.Kill()
		}
		return BrokerInfo{}, fmt.Errorf("broker %d: %w; see %s", id, err, filepath.Join(n.dir, "server.log"))
	}
	if f.closed { // Close ran while we were starting: do not leak the JVM.
		n.proc.Kill()
		return BrokerInfo{}, errors.New("local fleet closed during start")
	}
	f.opts.Log.Info().Int32("node_id", id).Str("rack", n.rack).Str("addr", n.addr()).Int("pid", n.proc.PID()).Msg("broker started")
	return n.info(), nil
}

// StartBrokers starts brokers with the given ids concurrently (racks from
// the rotation) and returns the first error.
func (f *Fleet) StartBrokers(ctx context.Context, ids ...int32) error {
	errs := make(chan error, len(ids))
	for _, id := range ids {
		go func(id int32) {
			_, err := f.StartBroker(ctx, id, "")
			errs <- err
		}(id)
	}
	var first error
	for range ids {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (f *Fleet) startBroker(ctx context.Context, n *node) error {
	props := brokerProps(n.id, n.addr(), n.rack, n.dataDir(), f.voters, f.opts.BrokerConfig)
	if f.opts.SASLSSL != nil {
		props.addSASLSSL(n.secureAddr(), f.opts.SASLSSL.KeystorePEM)
	}
	if err := f.prepare(ctx, n, props); err != nil {
		return err
	}
	p, err := startJVM(n.dir, jvmArgs(f.opts.BrokerHeapMB, n.dir, f.opts.Dist, "kafka.Kafka", filepath.Join(n.dir, "server.properties")))
	if err != nil {
		return err
	}
	f.mu.Lock()
	n.proc, n.started = p, time.Now()
	f.mu.Unlock()
	return waitListening(ctx, p, n.addr(), f.opts.StartTimeout)
}

func (n *node) info() BrokerInfo {
	bi := BrokerInfo{ID: n.id, Incarnation: n.incarnation, Started: n.started, Rack: n.rack, Addr: n.addr(), SecureAddr: n.secureAddr(), DataDir: n.dataDir()}
	if n.running() {
		bi.PID = n.proc.PID()
		bi.Running = true
	}
	return bi
}

func (f *Fleet) runningBroker(id int32) (*node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.brokers[id]
	if n == nil {
		return nil, fmt.Errorf("broker %d is not part of this fleet", id)
	}
	if !n.running() {
		return nil, fmt.Errorf("broker %d is not running", id)
	}
	return n, nil
}

// StopBroker stops a broker gracefully: SIGTERM makes Kafka run a controlled
// shutdown (leadership moves away first). If it has not exited within
// StopTimeout it is killed and the error says so.
func (f *Fleet) StopBroker(ctx context.Context, id int32) error {
	n, err := f.runningBroker(id)
	if err != nil {
		return err
	}
	n.proc.Signal(syscall.SIGTERM)
	wait := f.opts.StopTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		wait = time.Until(dl)
	}
	if err := n.proc.Wait(wait); err != nil {
		n.proc.Kill()
		return fmt.Errorf("broker %d did not shut down gracefully, killed: %w", id, err)
	}
	f.opts.Log.Info().Int32("node_id", id).Msg("broker stopped gracefully")
	return nil
}

// KillBroker sends SIGKILL, as an instance loss would, and waits for the exit.
func (f *Fleet) KillBroker(id int32) error {
	n, err := f.runningBroker(id)
	if err != nil {
		return err
	}
	n.proc.Kill()
	f.opts.Log.Info().Int32("node_id", id).Msg("broker killed")
	return nil
}

// RestartEmpty brings broker id back with the same node id, rack and port but
// an empty data directory, as a replaced instance with fresh NVMe would. A
// running broker is killed first.
func (f *Fleet) RestartEmpty(ctx context.Context, id int32) (BrokerInfo, error) {
	f.mu.Lock()
	n := f.brokers[id]
	var proc *Process
	var rack, data string
	if n != nil {
		proc, rack, data = n.proc, n.rack, n.dataDir()
	}
	f.mu.Unlock()
	if n == nil {
		return BrokerInfo{}, fmt.Errorf("broker %d is not part of this fleet", id)
	}
	if proc != nil {
		proc.Kill()
	}
	if err := os.RemoveAll(data); err != nil {
		return BrokerInfo{}, fmt.Errorf("wipe broker %d data: %w", id, err)
	}
	return f.StartBroker(ctx, id, rack)
}

// Remove ends broker id's incarnation as a terminated instance would: the
// process is killed and its directory, data included, deleted. Starting the
// id again creates a new incarnation on an empty disk. Unknown ids are fine.
func (f *Fleet) Remove(id int32) error {
	f.mu.Lock()
	n := f.brokers[id]
	if n == nil {
		f.mu.Unlock()
		return nil
	}
	if n.starting {
		f.mu.Unlock()
		return fmt.Errorf("broker %d is starting", id)
	}
	delete(f.brokers, id)
	proc := n.proc
	f.mu.Unlock()
	if proc != nil {
		proc.Kill()
	}
	if err := os.RemoveAll(n.dir); err != nil {
		return fmt.Errorf("remove broker %d: %w", id, err)
	}
	f.opts.Log.Info().Int32("node_id", id).Msg("broker removed with its data")
	return nil
}

// Broker describes broker id.
func (f *Fleet) Broker(id int32) (BrokerInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.brokers[id]
	if n == nil {
		return BrokerInfo{}, false
	}
	return n.info(), true
}

// Brokers describes every broker ever started, by id.
func (f *Fleet) Brokers() []BrokerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]BrokerInfo, 0, len(f.brokers))
	for _, n := range f.brokers {
		out = append(out, n.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Bootstrap lists the listeners of the running brokers.
func (f *Fleet) Bootstrap() []string {
	var out []string
	for _, b := range f.Brokers() {
		if b.Running {
			out = append(out, b.Addr)
		}
	}
	return out
}

// Close kills every node. It is idempotent and safe to call from a deferred
// cleanup after a failure.
func (f *Fleet) Close() {
	f.mu.Lock()
	f.closed = true
	var procs []*Process
	for _, n := range f.controllers {
		procs = append(procs, n.proc)
	}
	for _, n := range f.brokers {
		procs = append(procs, n.proc)
	}
	f.mu.Unlock()
	for _, p := range procs {
		if p != nil {
			p.Kill()
		}
	}
	if f.tempDir != "" {
		_ = os.RemoveAll(f.tempDir)
	}
}

// Up starts a fleet with brokers 1..n (concurrently), or nothing at all: on
// error everything started is stopped again.
func Up(ctx context.Context, opts Options, n int) (*Fleet, error) {
	if n < 1 {
		return nil, errors.New("local fleet: at least one broker is needed")
	}
	f, err := Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(i + 1)
	}
	if err := f.StartBrokers(ctx, ids...); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Dir is the directory holding the nodes (and anything a caller keeps beside them).
func (f *Fleet) Dir() string { return f.opts.Dir }

// KafkaVersion is the version of the distribution the fleet runs.
func (f *Fleet) KafkaVersion() string { return f.opts.Dist.Version }
