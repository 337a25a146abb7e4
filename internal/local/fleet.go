package local

import (
	"cmp"
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
	"strings"
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
	// ControllerHosts, if set, are the loopback addresses (127.x.y.z) the
	// initial controllers listen on, one each, and ControllerPort the port
	// every controller listens on (0: a free port each): how a test gives
	// controllers the addresses moto assigned their instances.
	ControllerHosts []string
	ControllerPort  int
	// StaticQuorum formats the controllers with a static voter set
	// (controller.quorum.voters, kraft.version 0), which cannot change its
	// voters. The default is a dynamic quorum (KIP-853, kraft.version 1:
	// controller.quorum.bootstrap.servers and --initial-controllers), as
	// Kafka documents for new clusters; Kafka 3.x fleets are always static.
	StaticQuorum bool
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

// Roles of a node (process.roles).
const (
	RoleBroker     = "broker"
	RoleController = "controller"
)

// BrokerInfo describes one node of the fleet (a broker, or a controller
// where Role says so), running or not.
type BrokerInfo struct {
	ID   int32
	Role string
	// Incarnation counts how often this node id was created afresh (Remove
	// ends an incarnation), so a replaced instance gets a new identity.
	Incarnation int
	Started     time.Time
	Rack        string
	Addr        string // host:port of its PLAINTEXT listener
	// SecureAddr is its SASL_SSL listener when Options.SASLSSL is set.
	SecureAddr string
	DataDir    string
	// DirectoryID is the metadata log directory's id (a controller's
	// identity in a dynamic quorum, with its node id).
	DirectoryID string
	PID         int // 0 when not running
	Running     bool
}

type node struct {
	id          int32
	host        string // listen address ("": 127.0.0.1)
	role        string
	directoryID string
	incarnation int
	started     time.Time
	rack        string
	port        int
	securePort  int // SASL_SSL listener, when Options.SASLSSL is set
	dir         string
	proc        *Process
	starting    bool
}

func (n *node) addr() string {
	return net.JoinHostPort(cmp.Or(n.host, "127.0.0.1"), strconv.Itoa(n.port))
}
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
	opts      Options
	tempDir   string // created by Start, deleted by Close
	clusterID string
	dynamic   bool
	// initial are the controllers the quorum was formatted with.
	initial []endpoint
	// proxy is the dynamic quorum's stable bootstrap address.
	proxy *bootstrapProxy

	mu           sync.Mutex
	controllers  map[int32]*node
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
	f := &Fleet{opts: opts, tempDir: tempDir, clusterID: newClusterID(), dynamic: !opts.StaticQuorum && opts.Dist.Major() >= 4,
		controllers: map[int32]*node{}, brokers: map[int32]*node{}, incarnations: map[int32]int{}}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if f.dynamic {
		if f.proxy, err = startBootstrapProxy(f.ControllerAddrs); err != nil {
			return nil, fmt.Errorf("local fleet: quorum bootstrap address: %w", err)
		}
	}
	if len(opts.ControllerHosts) > 0 && len(opts.ControllerHosts) != opts.Controllers {
		return nil, fmt.Errorf("local fleet: %d controller hosts for %d controllers", len(opts.ControllerHosts), opts.Controllers)
	}
	var initial []*node
	for i := 0; i < opts.Controllers; i++ {
		port, err := f.controllerPort()
		if err != nil {
			return nil, err
		}
		id := opts.ControllerBaseID + int32(i)
		f.incarnations[id]++
		n := &node{id: id, role: RoleController, incarnation: 1, rack: opts.Racks[i%len(opts.Racks)], port: port,
			dir: filepath.Join(opts.Dir, fmt.Sprintf("controller-%d-1", id))}
		if len(opts.ControllerHosts) > 0 {
			n.host = opts.ControllerHosts[i]
		}
		if f.dynamic {
			n.directoryID = newClusterID() // the same form: a Kafka Uuid
		}
		initial = append(initial, n)
		f.controllers[id] = n
		f.initial = append(f.initial, endpoint{id: id, addr: n.addr(), directoryID: n.directoryID})
	}
	for _, n := range initial {
		if err := f.prepare(ctx, n, f.controllerProps(n), f.initialControllers()...); err != nil {
			return nil, err
		}
	}
	// A quorum only elects a leader once enough voters run, so start all first.
	for _, n := range initial {
		p, err := startJVM(n.dir, jvmArgs(opts.ControllerHeapMB, n.dir, opts.Dist, "kafka.Kafka", filepath.Join(n.dir, "server.properties")))
		if err != nil {
			return nil, fmt.Errorf("controller %d: %w", n.id, err)
		}
		f.mu.Lock() // the bootstrap proxy reads the controllers already
		n.proc, n.started = p, time.Now()
		f.mu.Unlock()
	}
	for _, n := range initial {
		if err := waitListening(ctx, n.proc, n.addr(), opts.StartTimeout); err != nil {
			return nil, fmt.Errorf("controller %d: %w; see %s", n.id, err, filepath.Join(n.dir, "server.log"))
		}
		opts.Log.Info().Int32("node_id", n.id).Str("addr", n.addr()).Int("pid", n.proc.PID()).Bool("dynamic_quorum", f.dynamic).Msg("controller started")
	}
	return f, nil
}

// initialControllers are the storage format arguments of the controllers the
// quorum starts with: their ids, endpoints and directory ids for a dynamic
// quorum (Kafka's documented --initial-controllers), nothing for a static one.
func (f *Fleet) initialControllers() []string {
	if !f.dynamic {
		return nil
	}
	return []string{"--initial-controllers", initialControllers(f.initial)}
}

// Dynamic reports whether the quorum is dynamic (kraft.version 1).
func (f *Fleet) Dynamic() bool { return f.dynamic }

// quorumProps is how a node finds the quorum: the voters themselves for a
// static quorum; for a dynamic one the stable bootstrap address, from which
// it learns the voters (see bootstrapProxy).
func (f *Fleet) quorumProps() Properties {
	if !f.dynamic {
		return Properties{"controller.quorum.voters": quorumVoters(f.initial)}
	}
	return Properties{"controller.quorum.bootstrap.servers": f.proxy.addr()}
}

// QuorumBootstrap is where a client finds the controllers whatever
// replacements happened: the stable bootstrap address of a dynamic quorum,
// the voters of a static one.
func (f *Fleet) QuorumBootstrap() []string {
	if f.proxy != nil {
		return []string{f.proxy.addr()}
	}
	return f.ControllerAddrs()
}

func (f *Fleet) controllerProps(n *node) Properties {
	return controllerProps(n.id, n.addr(), n.dataDir(), f.quorumProps())
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

// ControllerAddrs lists the listeners (host:port) of the controllers that
// have not been removed, by node id.
func (f *Fleet) ControllerAddrs() []string {
	var out []string
	for _, c := range f.Controllers() {
		out = append(out, c.Addr)
	}
	return out
}

// prepare writes a node's configuration and formats its storage unless it
// already is (a restart with data keeps its data).
func (f *Fleet) prepare(ctx context.Context, n *node, props Properties, format ...string) error {
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
	args := jvmArgsWith(256, n.dir, f.opts.Dist, cds, append([]string{"kafka.tools.StorageTool", "format", "-t", f.clusterID, "-c", cfg, "--ignore-formatted"}, format...)...)
	if err := runTool(ctx, n.dir, args); err != nil {
		os.Remove(dumped)
		return fmt.Errorf("format storage of node %d: %w", n.id, err)
	}
	cdsKeep(f.opts.Dist, dumped)
	id, err := readDirectoryID(n.dataDir())
	if err != nil {
		return err
	}
	f.mu.Lock()
	n.directoryID = id
	f.mu.Unlock()
	return nil
}

// readDirectoryID reads a formatted log directory's id from meta.properties.
func readDirectoryID(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "meta.properties"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "directory.id="); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("no directory.id in %s", filepath.Join(dataDir, "meta.properties"))
}

// StartBroker starts broker id and waits until it listens. A broker that ran
// before keeps its data and port; a new id formats a fresh data directory.
// rack "" means the next rack in the rotation (or the broker's old rack).
func (f *Fleet) StartBroker(ctx context.Context, id int32, rack string) (BrokerInfo, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return BrokerInfo{}, errors.New("local fleet is closed")
	}
	if f.controllers[id] != nil {
		f.mu.Unlock()
		return BrokerInfo{}, fmt.Errorf("node id %d belongs to a controller", id)
	}
	n := f.brokers[id]
	if n != nil && (n.running() || n.starting) {
		f.mu.Unlock()
		return BrokerInfo{}, fmt.Errorf("broker %d is already running", id)
	}
	if n == nil {
		f.incarnations[id]++
		n = &node{id: id, role: RoleBroker, incarnation: f.incarnations[id], dir: filepath.Join(f.opts.Dir, fmt.Sprintf("broker-%d-%d", id, f.incarnations[id]))}
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
		p, err := FreePort()
		if err != nil {
			f.mu.Unlock()
			return BrokerInfo{}, err
		}
		n.port = p
	}
	if f.opts.SASLSSL != nil && (n.securePort == 0 || !portFree(n.securePort)) {
		p, err := FreePort()
		if err != nil {
			f.mu.Unlock()
			return BrokerInfo{}, err
		}
		n.securePort = p
	}
	n.starting = true
	f.mu.Unlock()

	info, err := f.started(n, f.startBroker(ctx, n), nil)
	if err != nil {
		return BrokerInfo{}, err
	}
	f.opts.Log.Info().Int32("node_id", id).Str("rack", info.Rack).Str("addr", info.Addr).Int("pid", info.PID).Msg("broker started")
	return info, nil
}

// started ends the start of n (begun with n.starting set) that ended with
// err: a failed start's process is killed and forget (if set) drops the
// node; a fleet closed meanwhile kills the process too, so no JVM leaks.
// It describes the started node.
func (f *Fleet) started(n *node, err error, forget func()) (BrokerInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n.starting = false
	if err != nil {
		if n.proc != nil {
			n.proc.Kill()
		}
		if forget != nil {
			forget()
		}
		return BrokerInfo{}, fmt.Errorf("%s %d: %w; see %s", n.role, n.id, err, filepath.Join(n.dir, "server.log"))
	}
	if f.closed {
		n.proc.Kill()
		return BrokerInfo{}, errors.New("local fleet closed during start")
	}
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

// controllerPort is Options.ControllerPort, else a free port.
func (f *Fleet) controllerPort() (int, error) {
	if f.opts.ControllerPort > 0 {
		return f.opts.ControllerPort, nil
	}
	return FreePort()
}

// AddController starts a new controller, node id, in rack ("": the next in
// the rotation). It joins a dynamic quorum as an observer (formatted with
// --no-initial-controllers, so with a new directory id) and becomes a voter
// only when someone sends AddRaftVoter. A static quorum cannot take one.
func (f *Fleet) AddController(ctx context.Context, id int32, rack string) (BrokerInfo, error) {
	return f.AddControllerAt(ctx, id, rack, "")
}

// AddControllerAt is AddController listening on host (a loopback address;
// "": 127.0.0.1).
func (f *Fleet) AddControllerAt(ctx context.Context, id int32, rack, host string) (BrokerInfo, error) {
	if !f.dynamic {
		return BrokerInfo{}, errors.New("local fleet: a static quorum (kraft.version 0) cannot add a controller")
	}
	port, err := f.controllerPort()
	if err != nil {
		return BrokerInfo{}, err
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return BrokerInfo{}, errors.New("local fleet is closed")
	}
	if f.lookup(id) != nil {
		f.mu.Unlock()
		return BrokerInfo{}, fmt.Errorf("node id %d is already in use", id)
	}
	f.incarnations[id]++
	if rack == "" {
		rack = f.opts.Racks[f.rotation%len(f.opts.Racks)]
		f.rotation++
	}
	n := &node{id: id, host: host, role: RoleController, incarnation: f.incarnations[id], rack: rack, port: port, starting: true,
		dir: filepath.Join(f.opts.Dir, fmt.Sprintf("controller-%d-%d", id, f.incarnations[id]))}
	f.controllers[id] = n
	f.mu.Unlock()

	info, err := f.started(n, f.startController(ctx, n), func() { delete(f.controllers, id) })
	if err != nil {
		return BrokerInfo{}, err
	}
	f.opts.Log.Info().Int32("node_id", id).Str("addr", info.Addr).Str("directory_id", info.DirectoryID).Msg("controller started as an observer")
	return info, nil
}

func (f *Fleet) startController(ctx context.Context, n *node) error {
	if err := f.prepare(ctx, n, f.controllerProps(n), "--no-initial-controllers"); err != nil {
		return err
	}
	return f.launch(ctx, n, f.opts.ControllerHeapMB)
}

// launch starts a prepared node's JVM and waits until it listens.
func (f *Fleet) launch(ctx context.Context, n *node, heapMB int) error {
	p, err := startJVM(n.dir, jvmArgs(heapMB, n.dir, f.opts.Dist, "kafka.Kafka", filepath.Join(n.dir, "server.properties")))
	if err != nil {
		return err
	}
	f.mu.Lock()
	n.proc, n.started = p, time.Now()
	f.mu.Unlock()
	return waitListening(ctx, p, n.addr(), f.opts.StartTimeout)
}

func (f *Fleet) startBroker(ctx context.Context, n *node) error {
	props := brokerProps(n.id, n.addr(), n.rack, n.dataDir(), f.quorumProps(), f.opts.BrokerConfig)
	if f.opts.SASLSSL != nil {
		props.addSASLSSL(n.secureAddr(), f.opts.SASLSSL.KeystorePEM)
	}
	if err := f.prepare(ctx, n, props); err != nil {
		return err
	}
	return f.launch(ctx, n, f.opts.BrokerHeapMB)
}

func (n *node) info() BrokerInfo {
	bi := BrokerInfo{ID: n.id, Role: n.role, Incarnation: n.incarnation, Started: n.started, Rack: n.rack, Addr: n.addr(),
		SecureAddr: n.secureAddr(), DataDir: n.dataDir(), DirectoryID: n.directoryID}
	if n.running() {
		bi.PID = n.proc.PID()
		bi.Running = true
	}
	return bi
}

// lookup finds node id among brokers and controllers; the caller holds mu.
func (f *Fleet) lookup(id int32) *node {
	if n := f.brokers[id]; n != nil {
		return n
	}
	return f.controllers[id]
}

func (f *Fleet) runningNode(id int32) (*node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(id)
	if n == nil {
		return nil, fmt.Errorf("node %d is not part of this fleet", id)
	}
	if !n.running() {
		return nil, fmt.Errorf("%s %d is not running", n.role, id)
	}
	return n, nil
}

// StopNode stops a broker or controller gracefully: SIGTERM makes a broker
// run a controlled shutdown (leadership moves away first). If it has not
// exited within StopTimeout it is killed and the error says so.
func (f *Fleet) StopNode(ctx context.Context, id int32) error {
	n, err := f.runningNode(id)
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
		return fmt.Errorf("%s %d did not shut down gracefully, killed: %w", n.role, id, err)
	}
	f.opts.Log.Info().Int32("node_id", id).Str("role", n.role).Msg("stopped gracefully")
	return nil
}

// KillNode sends SIGKILL to a broker or controller, as an instance loss
// would, and waits for the exit.
func (f *Fleet) KillNode(id int32) error {
	n, err := f.runningNode(id)
	if err != nil {
		return err
	}
	n.proc.Kill()
	f.opts.Log.Info().Int32("node_id", id).Str("role", n.role).Msg("killed")
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

// Remove ends node id's incarnation (a broker's or a controller's) as a
// terminated instance would: the process is killed and its directory, data
// included, deleted. Starting the id again creates a new incarnation on an
// empty disk. Unknown ids are fine.
func (f *Fleet) Remove(id int32) error {
	f.mu.Lock()
	n := f.lookup(id)
	if n == nil {
		f.mu.Unlock()
		return nil
	}
	if n.starting {
		f.mu.Unlock()
		return fmt.Errorf("%s %d is starting", n.role, id)
	}
	delete(f.brokers, id)
	delete(f.controllers, id)
	proc := n.proc
	f.mu.Unlock()
	if proc != nil {
		proc.Kill()
	}
	if err := os.RemoveAll(n.dir); err != nil {
		return fmt.Errorf("remove broker %d: %w", id, err)
	}
	f.opts.Log.Info().Int32("node_id", id).Str("role", n.role).Msg("removed with its data")
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

// Node describes node id, a broker or a controller.
func (f *Fleet) Node(id int32) (BrokerInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.lookup(id)
	if n == nil {
		return BrokerInfo{}, false
	}
	return n.info(), true
}

// Brokers describes every broker not removed, by id.
func (f *Fleet) Brokers() []BrokerInfo { return f.infos(f.brokers) }

// Controllers describes every controller not removed, by id.
func (f *Fleet) Controllers() []BrokerInfo { return f.infos(f.controllers) }

func (f *Fleet) infos(nodes map[int32]*node) []BrokerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]BrokerInfo, 0, len(nodes))
	for _, n := range nodes {
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
	if f.proxy != nil {
		f.proxy.close()
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
