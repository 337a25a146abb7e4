package replace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetd/fleetd/internal/health"
)

// fakeCluster applies reassignments at once and keeps configs in a map. It
// agrees with Kafka only on what the step machine's tests need; behaviour
// that matters is proved against real Kafka in the integration tests.
type fakeCluster struct {
	mu       sync.Mutex
	snap     health.Snapshot
	configs  map[ConfigKey]*string
	reassign int
	// quorum is a dynamic quorum of three caught-up controllers; launched
	// controllers join it as caught-up observers.
	quorum       health.Quorum
	voterChanges int
	quorumErr    error // the quorum cannot be read
	noCordon     bool  // a Kafka older than 4.3
	bootstrap    []string

	// copyRate > 0 makes reassignments copy over (virtual) time: the
	// destination's follower rate config, times quotaEfficiency (default
	// 1), capped at copyRate, shared by the copies in flight. 0: every
	// reassignment completes at once.
	copyRate        int64
	quotaEfficiency float64
	copies          map[health.TP]*fakeCopy
	lastAdvance     time.Time
	maxInFlight     int
	// copyLeaders counts the partitions seen led by a replica still copying.
	copyLeaders int
	watches     int
	// unthrottledCopies counts copies submitted while fleetd's rates were
	// set but the topic's follower list did not name the new replica;
	// maxListEntries is the longest throttled-replica list set.
	unthrottledCopies int
	maxListEntries    int
	// writes are producers' write rates (bytes/s) by partition.
	writes map[health.TP]int64
	// tiered are the spans of partitions with remote storage.
	tiered map[health.TP]TieredSpan
	// unlisted: Watch shows copies in flight with their replicas on the
	// way (the union) but not as reassigning, as Kafka's two reads do when
	// a move completes between them.
	unlisted bool
}

// fakeCopy is one reassignment in flight.
type fakeCopy struct {
	target []int32
	adding []int32
	copied float64
	bytes  int64
}

// fakeControllers are the fake quorum's voters at the start.
var fakeControllers = []int32{9000, 9001, 9002}

func fakeDirectory(id int32) string { return fmt.Sprintf("dir%019d", id) }

func newFakeCluster(brokers ...int32) *fakeCluster {
	c := &fakeCluster{configs: map[ConfigKey]*string{}, quorum: health.Quorum{Kind: health.QuorumDynamic, KRaftVersion: 1, Leader: 9000}}
	for _, id := range fakeControllers {
		c.quorum.Voters = append(c.quorum.Voters, health.Replica{ID: id, DirectoryID: fakeDirectory(id), CaughtUp: true})
	}
	for _, b := range brokers {
		c.snap.Brokers = append(c.snap.Brokers, health.Broker{ID: b, Rack: fmt.Sprintf("az-%d", b)})
	}
	n := len(brokers)
	for i := 0; i < 4; i++ {
		reps := []int32{brokers[i%n], brokers[(i+1)%n], brokers[(i+2)%n]}
		c.snap.Partitions = append(c.snap.Partitions, health.Partition{TP: health.TP{Topic: "t", Partition: int32(i)}, Leader: reps[0], Replicas: reps, ISR: slices.Clone(reps), MinISR: 2, Bytes: 1 << 20})
	}
	return c
}

func (c *fakeCluster) Snapshot(context.Context) (*health.Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance()
	s := c.snap
	s.Brokers = slices.Clone(c.snap.Brokers)
	s.Partitions = make([]health.Partition, len(c.snap.Partitions))
	for i, p := range c.snap.Partitions {
		p.Replicas, p.ISR = slices.Clone(p.Replicas), slices.Clone(p.ISR)
		s.Partitions[i] = p
	}
	return &s, nil
}

func (c *fakeCluster) Reassign(_ context.Context, targets map[health.TP][]int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// As Kafka 4.4: no reassignment places a replica on a cordoned broker.
	for i := range c.snap.Partitions {
		p := c.snap.Partitions[i]
		for _, b := range targets[p.TP] {
			if _, cordoned := c.configs[cordonKey(b)]; cordoned && !slices.Contains(p.Replicas, b) {
				return fmt.Errorf("INVALID_REPLICA_ASSIGNMENT: broker %d is cordoned", b)
			}
		}
	}
	c.advance()
	c.reassign++
	listed := map[string]map[string]bool{} // topic -> its follower list's entries
	throttled := func(topic string, entry string) bool {
		if listed[topic] == nil {
			listed[topic] = map[string]bool{}
			if l := c.configs[ConfigKey{Kind: TopicConfig, Resource: topic, Name: followerReplicas}]; l != nil {
				for _, e := range strings.Split(*l, ",") {
					listed[topic][e] = true
				}
			}
		}
		return listed[topic][entry] || listed[topic]["*"]
	}
	for i := range c.snap.Partitions {
		p := &c.snap.Partitions[i]
		to, ok := targets[p.TP]
		if !ok {
			continue
		}
		var adding []int32
		for _, b := range to {
			if !slices.Contains(p.Replicas, b) {
				adding = append(adding, b)
				rate := c.configs[ConfigKey{Kind: BrokerConfig, Resource: brokerRes(b), Name: followerRate}]
				if rate != nil && !throttled(p.Topic, fmt.Sprintf("%d:%d", p.Partition, b)) {
					c.unthrottledCopies++
				}
			}
		}
		if c.copyRate > 0 && len(adding) > 0 {
			if c.copies == nil {
				c.copies = map[health.TP]*fakeCopy{}
			}
			if cp, ok := c.copies[p.TP]; ok {
				cp.target = slices.Clone(to)
				continue
			}
			c.copies[p.TP] = &fakeCopy{target: slices.Clone(to), adding: adding, bytes: p.Bytes}
			p.Reassigning = true
			for _, b := range adding {
				p.Replicas = append(p.Replicas, b)
			}
			c.maxInFlight = max(c.maxInFlight, len(c.copies))
			continue
		}
		c.complete(p, to)
	}
	return nil
}

// complete ends p's reassignment as Kafka does: the replicas become the
// target; the leader stays if it is in it, else the first in-sync replica
// of the target leads.
func (c *fakeCluster) complete(p *health.Partition, to []int32) {
	p.Replicas, p.ISR, p.Reassigning = slices.Clone(to), slices.Clone(to), false
	if !slices.Contains(to, p.Leader) {
		p.Leader = to[0]
	}
}

// advance copies bytes for the time passed since the last call.
func (c *fakeCluster) advance() {
	now := time.Now()
	dt := now.Sub(c.lastAdvance).Seconds()
	if c.lastAdvance.IsZero() {
		dt = 0
	}
	c.lastAdvance = now
	// Producers write to the partitions in writes: a copy must catch up
	// with what is written meanwhile.
	for i := range c.snap.Partitions {
		p := &c.snap.Partitions[i]
		if w := c.writes[p.TP]; w > 0 && dt > 0 {
			grown := int64(float64(w) * dt)
			p.Bytes += grown
			if cp, ok := c.copies[p.TP]; ok {
				cp.bytes += grown
			}
		}
	}
	if len(c.copies) == 0 {
		return
	}
	rate := float64(c.copyRate)
	for _, cp := range c.copies { // every copy goes to the same broker
		if v := c.configs[ConfigKey{Kind: BrokerConfig, Resource: brokerRes(cp.adding[0]), Name: followerRate}]; v != nil {
			n, _ := strconv.ParseFloat(*v, 64)
			rate = min(rate, n*cmp.Or(c.quotaEfficiency, 1))
		}
		break
	}
	share := rate * dt / float64(len(c.copies))
	for i := range c.snap.Partitions {
		p := &c.snap.Partitions[i]
		cp, ok := c.copies[p.TP]
		if !ok {
			continue
		}
		if slices.Contains(cp.adding, p.Leader) {
			c.copyLeaders++
		}
		cp.copied += share
		if cp.copied >= float64(cp.bytes) {
			delete(c.copies, p.TP)
			c.complete(p, cp.target)
		}
	}
}

func (c *fakeCluster) CancelReassign(_ context.Context, tps []health.TP) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.snap.Partitions {
		p := &c.snap.Partitions[i]
		if cp, ok := c.copies[p.TP]; ok && slices.Contains(tps, p.TP) {
			delete(c.copies, p.TP)
			p.Replicas = slices.DeleteFunc(p.Replicas, func(b int32) bool { return slices.Contains(cp.adding, b) })
			p.Reassigning = false
		}
	}
	return nil
}

func (c *fakeCluster) ElectPreferred(_ context.Context, tps []health.TP) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := map[health.TP]bool{}
	for _, tp := range tps {
		want[tp] = true
	}
	for i := range c.snap.Partitions {
		p := &c.snap.Partitions[i]
		if want[p.TP] && len(p.Replicas) > 0 && slices.Contains(p.ISR, p.Replicas[0]) {
			p.Leader = p.Replicas[0]
		}
	}
	return nil
}

func (c *fakeCluster) Watch(_ context.Context, tps []health.TP, dest int32) (*Watched, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance()
	c.watches++
	w := &Watched{Partitions: map[health.TP]WatchedPartition{}, DestBytes: map[health.TP]int64{}}
	for _, b := range c.snap.Brokers {
		w.DestAlive = w.DestAlive || b.ID == dest && !b.Fenced
	}
	want := map[health.TP]bool{}
	for _, tp := range tps {
		want[tp] = true
	}
	for _, p := range c.snap.Partitions {
		if !want[p.TP] {
			continue
		}
		w.Partitions[p.TP] = WatchedPartition{Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR), Leader: p.Leader, Reassigning: p.Reassigning && !c.unlisted}
		if cp, ok := c.copies[p.TP]; ok {
			w.DestBytes[p.TP] = int64(cp.copied)
		} else if slices.Contains(p.Replicas, dest) {
			w.DestBytes[p.TP] = p.Bytes
		}
	}
	return w, nil
}

func (c *fakeCluster) LeaderBytes(_ context.Context, tps []health.TP) (map[health.TP]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance()
	out := map[health.TP]int64{}
	for _, p := range c.snap.Partitions {
		if slices.Contains(tps, p.TP) {
			out[p.TP] = p.Bytes
		}
	}
	return out, nil
}

func (c *fakeCluster) TieredSpans(_ context.Context, tps []health.TP) (map[health.TP]TieredSpan, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[health.TP]TieredSpan{}
	for _, tp := range tps {
		if s, ok := c.tiered[tp]; ok {
			out[tp] = s
		}
	}
	return out, nil
}

func (c *fakeCluster) Configs(_ context.Context, keys []ConfigKey) (map[ConfigKey]*string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[ConfigKey]*string{}
	for _, k := range keys {
		if v, ok := c.configs[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}

func (c *fakeCluster) SetConfigs(_ context.Context, values map[ConfigKey]*string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range values {
		// As Kafka: a config string is at most 32,767 bytes (the broker
		// closes the connection on a longer one).
		if v != nil && len(*v) > 32767 {
			return fmt.Errorf("alter configs: %s of %s is %d bytes: connection closed", k.Name, k.Resource, len(*v))
		}
		if v != nil && (k.Name == leaderReplicas || k.Name == followerReplicas) {
			c.maxListEntries = max(c.maxListEntries, len(strings.Split(*v, ",")))
		}
	}
	for k, v := range values {
		if v == nil {
			delete(c.configs, k)
		} else {
			c.configs[k] = v
		}
	}
	return nil
}

// KnowsConfig: the fake is a Kafka with cordoning unless noCordon.
func (c *fakeCluster) KnowsConfig(_ context.Context, key ConfigKey) (bool, error) {
	return key.Name != cordonedLogDirs || !c.noCordon, nil
}

func (c *fakeCluster) ReplicaBytes(context.Context, int32) (map[health.TP]int64, error) {
	return map[health.TP]int64{}, nil
}

func (c *fakeCluster) Unregister(_ context.Context, broker int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snap.Brokers = slices.DeleteFunc(c.snap.Brokers, func(b health.Broker) bool { return b.ID == broker })
	return nil
}

func (c *fakeCluster) Quorum(context.Context) (*health.Quorum, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.quorumErr != nil {
		return nil, c.quorumErr
	}
	q := c.quorum
	q.Voters, q.Observers = slices.Clone(q.Voters), slices.Clone(q.Observers)
	return &q, nil
}

// QuorumBootstrap: every broker finds the quorum through a name that
// follows the controllers, unless bootstrap says otherwise.
func (c *fakeCluster) QuorumBootstrap(context.Context) (map[int32][]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int32][]string{}
	for _, b := range c.snap.Brokers {
		out[b.ID] = []string{"controllers.internal:9093"}
		if c.bootstrap != nil {
			out[b.ID] = c.bootstrap
		}
	}
	return out, nil
}

func (c *fakeCluster) AddVoter(_ context.Context, v Voter) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.quorum.Voter(v.ID); ok {
		return nil
	}
	o, ok := c.quorum.Observer(v.ID)
	if !ok || !o.CaughtUp || o.DirectoryID != v.DirectoryID {
		return fmt.Errorf("add voter %d: not a caught-up observer with directory %s", v.ID, v.DirectoryID)
	}
	c.voterChanges++
	c.quorum.Observers = slices.DeleteFunc(c.quorum.Observers, func(r health.Replica) bool { return r.ID == v.ID })
	c.quorum.Voters = append(c.quorum.Voters, o)
	slices.SortFunc(c.quorum.Voters, func(a, b health.Replica) int { return int(a.ID - b.ID) })
	return nil
}

func (c *fakeCluster) RemoveVoter(_ context.Context, id int32, dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.quorum.Voter(id)
	if !ok {
		return nil
	}
	if v.DirectoryID != dir {
		return fmt.Errorf("remove voter %d: directory %s, want %s", id, dir, v.DirectoryID)
	}
	c.voterChanges++
	c.quorum.Voters = slices.DeleteFunc(c.quorum.Voters, func(r health.Replica) bool { return r.ID == id })
	c.quorum.Observers = append(c.quorum.Observers, v)
	if c.quorum.Leader == id && len(c.quorum.Voters) > 0 {
		c.quorum.Leader = c.quorum.Voters[0].ID
	}
	return nil
}

// caughtUpVoters counts the voters that are caught up.
func (c *fakeCluster) caughtUpVoters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.quorum.Voters {
		if v.CaughtUp {
			n++
		}
	}
	return n
}

// setController joins (or, gone, leaves) the quorum as a controller
// process would: a new one is a caught-up observer; a stopped voter stays a
// voter that no longer catches up.
func (c *fakeCluster) setController(id int32, alive bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.IndexFunc(c.quorum.Voters, func(r health.Replica) bool { return r.ID == id }); i >= 0 {
		c.quorum.Voters[i].CaughtUp = alive
		return
	}
	c.quorum.Observers = slices.DeleteFunc(c.quorum.Observers, func(r health.Replica) bool { return r.ID == id })
	if alive {
		c.quorum.Observers = append(c.quorum.Observers, health.Replica{ID: id, DirectoryID: fakeDirectory(id), CaughtUp: true})
	}
}

func (c *fakeCluster) setAlive(id int32, rack string, alive bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snap.Brokers = slices.DeleteFunc(c.snap.Brokers, func(b health.Broker) bool { return b.ID == id })
	if alive {
		c.snap.Brokers = append(c.snap.Brokers, health.Broker{ID: id, Rack: rack})
	}
}

// fakeProvider keeps instances in a map; terminateErr makes every Terminate fail.
type fakeProvider struct {
	mu           sync.Mutex
	cluster      *fakeCluster
	insts        map[string]Instance
	terminations int
	stops        int
	terminateErr error
	instancesErr error // the fleet cannot be listed
}

func newFakeProvider(c *fakeCluster) *fakeProvider {
	p := &fakeProvider{cluster: c, insts: map[string]Instance{}}
	for _, b := range c.snap.Brokers {
		id := fmt.Sprintf("i-%d", b.ID)
		p.insts[id] = Instance{ID: id, NodeID: b.ID, Zone: b.Rack, State: StateRunning, Role: RoleBroker}
	}
	for i, n := range fakeControllers {
		id := fmt.Sprintf("i-%d", n)
		p.insts[id] = Instance{ID: id, NodeID: n, Zone: fmt.Sprintf("az-%d", i+1), State: StateRunning, Role: RoleController, Endpoint: fmt.Sprintf("10.0.0.%d:9093", i+1)}
	}
	return p
}

// setNode tells the fake cluster that in's node came or went.
func (p *fakeProvider) setNode(in Instance, alive bool) {
	if in.IsController() {
		p.cluster.setController(in.NodeID, alive)
		return
	}
	p.cluster.setAlive(in.NodeID, in.Zone, alive)
}

func (p *fakeProvider) Instances(context.Context) ([]Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.instancesErr != nil {
		return nil, p.instancesErr
	}
	var out []Instance
	for _, in := range p.insts {
		out = append(out, in)
	}
	return out, nil
}

func (p *fakeProvider) Launch(_ context.Context, req LaunchRequest) (Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := "i-" + req.Token
	in := Instance{ID: id, NodeID: req.NodeID, Zone: req.Like.Zone, State: StateRunning, Role: req.Role()}
	if in.IsController() {
		in.Endpoint = fmt.Sprintf("10.0.1.%d:9093", req.NodeID%250)
	}
	p.insts[id] = in
	p.setNode(in, true)
	return in, nil
}

func (p *fakeProvider) Stop(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stops++
	if in, ok := p.insts[id]; ok {
		p.setNode(in, false)
	}
	return nil
}

func (p *fakeProvider) Terminate(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.terminations++
	if p.terminateErr != nil {
		return p.terminateErr
	}
	if in, ok := p.insts[id]; ok {
		p.setNode(in, false)
	}
	delete(p.insts, id)
	return nil
}

// memStore is a Store in memory.
type memStore struct {
	mu   sync.Mutex
	recs map[string]Record
}

func (m *memStore) Save(_ context.Context, r *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = map[string]Record{}
	}
	m.recs[r.ID] = *r
	return nil
}

func (m *memStore) Load(_ context.Context, id string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[id]
	if !ok {
		return nil, ErrNotFound
	}
	return &r, nil
}

func (m *memStore) List(context.Context) ([]*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Record
	for _, r := range m.recs {
		out = append(out, &r)
	}
	return out, nil
}

// setState sets an instance's state as the infrastructure reports it;
// Kafka's view is not changed (it notices only when a session expires).
func (p *fakeProvider) setState(id string, st InstanceState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := p.insts[id]
	in.State = st
	p.insts[id] = in
}

var errCloud = errors.New("cloud API: internal error")
