package local

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/fleetd/fleetd/internal/replace"
)

// ClusterTag is the value of the cluster tag every local instance carries.
const ClusterTag = "local"

// Provider is replace.Provider over a local fleet: an instance is one
// incarnation of a broker process, its zone the broker's rack, and
// terminating it deletes its data like a lost NVMe instance store.
type Provider struct {
	Fleet *Fleet

	mu       sync.Mutex
	launched map[string]string // launch token -> instance id
	owner    map[string]string // instance id -> replacement id
}

// NewProvider wraps f.
func NewProvider(f *Fleet) *Provider {
	return &Provider{Fleet: f, launched: map[string]string{}, owner: map[string]string{}}
}

func instanceID(b BrokerInfo) string { return fmt.Sprintf("local-%d-%d", b.ID, b.Incarnation) }

func parseInstanceID(id string) (int32, int, error) {
	parts := strings.Split(id, "-")
	if len(parts) != 3 || parts[0] != "local" {
		return 0, 0, fmt.Errorf("%q is not a local instance id (local-<node>-<incarnation>)", id)
	}
	node, err1 := strconv.ParseInt(parts[1], 10, 32)
	inc, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%q is not a local instance id (local-<node>-<incarnation>)", id)
	}
	return int32(node), inc, nil
}

func (p *Provider) toInstance(b BrokerInfo) replace.Instance {
	state := replace.StateStopped
	if b.Running {
		state = replace.StateRunning
	}
	id := instanceID(b)
	role := replace.Role(b.Role)
	tags := map[string]string{"fleetd:cluster": ClusterTag, "fleetd:node-id": strconv.Itoa(int(b.ID)), "fleetd:role": string(role)}
	p.mu.Lock()
	if r := p.owner[id]; r != "" {
		tags["fleetd:replacement"] = r
	}
	p.mu.Unlock()
	in := replace.Instance{ID: id, NodeID: b.ID, Role: role, Zone: b.Rack, State: state, LaunchedAt: b.Started, Tags: tags}
	if role == replace.RoleController {
		in.Endpoint = b.Addr
	}
	return in
}

// Instances lists every broker and controller incarnation that has not
// been terminated.
func (p *Provider) Instances(context.Context) ([]replace.Instance, error) {
	var out []replace.Instance
	for _, b := range append(p.Fleet.Brokers(), p.Fleet.Controllers()...) {
		out = append(out, p.toInstance(b))
	}
	return out, nil
}

// Launch starts node req.NodeID (a broker, or a controller joining the
// quorum as an observer) in req.Like's zone. A repeated token returns the
// instance the first launch made.
func (p *Provider) Launch(ctx context.Context, req replace.LaunchRequest) (replace.Instance, error) {
	p.mu.Lock()
	prev, seen := p.launched[req.Token]
	p.mu.Unlock()
	if seen {
		node, _, _ := parseInstanceID(prev)
		if b, ok := p.Fleet.Node(node); ok && instanceID(b) == prev {
			return p.toInstance(b), nil
		}
		return replace.Instance{}, fmt.Errorf("instance %s of launch %s no longer exists", prev, req.Token)
	}
	if b, ok := p.Fleet.Node(req.NodeID); ok {
		return replace.Instance{}, fmt.Errorf("node id %d already has instance %s", req.NodeID, instanceID(b))
	}
	start := p.Fleet.StartBroker
	if req.Role() == replace.RoleController {
		start = p.Fleet.AddController
	}
	b, err := start(ctx, req.NodeID, req.Like.Zone)
	if err != nil {
		return replace.Instance{}, err
	}
	id := instanceID(b)
	p.mu.Lock()
	p.launched[req.Token] = id
	p.owner[id] = req.ReplacementID
	p.mu.Unlock()
	return p.toInstance(b), nil
}

// current returns the broker an instance id names, if that incarnation lives.
func (p *Provider) current(id string) (BrokerInfo, bool, error) {
	node, _, err := parseInstanceID(id)
	if err != nil {
		return BrokerInfo{}, false, err
	}
	b, ok := p.Fleet.Node(node)
	return b, ok && instanceID(b) == id, nil
}

// Stop stops the node gracefully (a broker's controlled shutdown). Stopping
// a stopped or gone instance is not an error.
func (p *Provider) Stop(ctx context.Context, id string) error {
	b, ok, err := p.current(id)
	if err != nil || !ok || !b.Running {
		return err
	}
	return p.Fleet.StopNode(ctx, b.ID)
}

// Terminate kills the instance and deletes its data. Idempotent.
func (p *Provider) Terminate(_ context.Context, id string) error {
	b, ok, err := p.current(id)
	if err != nil || !ok {
		return err
	}
	return p.Fleet.Remove(b.ID)
}

// Kill sends SIGKILL to the instance's node, as a sudden instance loss
// would, leaving its data in place.
func (p *Provider) Kill(id string) error {
	b, ok, err := p.current(id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no instance %s", id)
	}
	return p.Fleet.KillNode(b.ID)
}
