package replace

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fleetd/fleetd/internal/health"
)

// The controller workflow replaces a KRaft controller of a dynamic quorum
// (KIP-853) one voter change at a time: the new controller is added before
// the old one is removed, so the quorum never has fewer caught-up voters
// than it started with. The package comment lists its steps.
var (
	controllerRollbackFlow = &Workflow{Name: "controller-rollback", End: StepRolledBack, EndPhase: PhaseRolledBack, Steps: []StepSpec{
		{Step: StepRemoveNewVoter, Run: (*Executor).removeNewVoter, OnFailure: NoReturn, TakesAway: takesNewVoter, Voters: VoterRemove},
		{Step: StepRemoveNew, Run: (*Executor).removeNewController, OnFailure: NoReturn, TakesAway: takesNew, Voters: VoterStop},
	}}
	controllerFlow = &Workflow{Name: "controller", End: StepDone, EndPhase: PhaseCompleted, Rollback: controllerRollbackFlow, Steps: []StepSpec{
		{Step: StepGate, Run: (*Executor).controllerGate, OnFailure: NothingToUndo},
		{Step: StepLaunch, Run: (*Executor).launchController, OnFailure: RollBack},
		{Step: StepAwaitObserver, Run: (*Executor).awaitObserver, OnFailure: RollBack},
		{Step: StepAddVoter, Run: (*Executor).addVoter, OnFailure: RollBack},
		{Step: StepAwaitVoter, Run: (*Executor).awaitVoter, OnFailure: RollBack},
		// Removing the old voter is the point of no return: until it is
		// recorded as begun, the new voter can still be taken out again.
		{Step: StepRemoveOldVoter, Run: (*Executor).removeOldVoter, OnFailure: NoReturn, RetiresOld: true, BeforeAct: RollBack,
			TakesAway: takesOldVoter, Voters: VoterRemove},
		// remove-old-voter already stopped the removed controller (see
		// there); this step is its declared, guarded act, and idempotent.
		{Step: StepStopOld, Run: (*Executor).stopOldController, OnFailure: NoReturn, TakesAway: takesOld("stop controller"), Voters: VoterStop},
		{Step: StepAwaitVoters, Run: (*Executor).awaitVoters, OnFailure: NoReturn},
		{Step: StepTerminateOld, Run: (*Executor).terminateOldController, OnFailure: NoReturn, TakesAway: takesOld("terminate controller"), Voters: VoterStop},
	}}
)

// VoterAct says that a step's act is judged by the controller quorum rather
// than by the partitions (controllers hold none).
type VoterAct int

const (
	// VoterNone: a broker act, judged by the blast-radius guard.
	VoterNone VoterAct = iota
	// VoterRemove: the nodes leave the voter set (RemoveRaftVoter).
	VoterRemove
	// VoterStop: the nodes' processes stop; a node still a voter must leave
	// a caught-up majority behind.
	VoterStop
)

func takesOldVoter(r *Record) (string, []int32) {
	return fmt.Sprintf("remove voter %d (instance %s) from the quorum", r.OldBroker, r.OldInstance), []int32{r.OldBroker}
}

func takesNewVoter(r *Record) (string, []int32) {
	return fmt.Sprintf("remove new voter %d (instance %s) from the quorum", r.NewBroker, r.NewInstance), []int32{r.NewBroker}
}

// quorumWhatIf is the guard of a controller act: the quorum, read fresh,
// must keep a caught-up majority without nodes.
func (e *Executor) quorumWhatIf(ctx context.Context, nodes []int32, act VoterAct) health.Verdict {
	q, err := e.Cluster.Quorum(ctx)
	if err != nil {
		return health.NotEvaluated(err)
	}
	v := health.Verdict{Safe: true}
	for _, n := range nodes {
		w := health.WithoutVoter(q, n, act == VoterRemove)
		v.Blockers = append(v.Blockers, w.Blockers...)
	}
	v.Safe = len(v.Blockers) == 0
	return v
}

// controllerGate decides whether the controller may be replaced now: the
// quorum is dynamic, has a leader and every voter caught up (the old one
// excused when it is already dead), no voter change is half done, and the
// brokers are healthy (one disruption per cluster, brokers and controllers
// together).
func (e *Executor) controllerGate(ctx context.Context, r *Record) error {
	log := e.logger(r)
	snap, err := e.Cluster.Snapshot(ctx)
	if err != nil {
		return &refusedError{health.NotEvaluated(err)}
	}
	q, err := e.Cluster.Quorum(ctx)
	if err != nil {
		return &refusedError{health.NotEvaluated(err)}
	}
	insts, err := e.Provider.Instances(ctx)
	if err != nil {
		return &refusedError{health.NotEvaluated(fmt.Errorf("list instances: %w", err))}
	}
	refuse := func(code health.Code, format string, args ...any) error {
		return &refusedError{health.Verdict{Blockers: []health.Reason{{Code: code, Brokers: []int32{r.OldBroker}, Message: fmt.Sprintf(format, args...)}}}}
	}
	if q.Kind != health.QuorumDynamic {
		return refuse(health.CodeStaticQuorum, "%s", health.StaticQuorumMessage(""))
	}
	old, isVoter := q.Voter(r.OldBroker)
	if !isVoter {
		return refuse("not-a-voter", "node %d is not a voter of the controller quorum (voters: %v); nothing to replace", r.OldBroker, q.VoterIDs())
	}
	if old.DirectoryID == "" {
		return refuse(health.CodeCannotEvaluate, "the quorum does not report voter %d's directory id (DescribeQuorum v2 is needed)", r.OldBroker)
	}
	var inst Instance
	found := false
	for _, in := range insts {
		if in.NodeID == r.OldBroker && in.State != StateTerminated && in.State != StateShuttingDown {
			inst, found = in, true
		}
	}
	lost := false
	if lk, ok := e.Provider.(InstanceLookup); ok && !found && r.OldInstance != "" {
		// The instance an event named, already gone (a lost controller):
		// it says where the controller was (subnet, zone).
		in, ok, err := lk.Lookup(ctx, r.OldInstance)
		if err != nil {
			return &refusedError{health.NotEvaluated(fmt.Errorf("look up instance %s: %w", r.OldInstance, err))}
		}
		if ok && in.NodeID == r.OldBroker {
			inst, found, lost = in, true, true
		}
	}
	if !found {
		return refuse("no-instance", "no instance of this cluster carries controller node id %d", r.OldBroker)
	}
	if !inst.IsController() {
		return refuse("not-a-controller", "instance %s of node %d is tagged role %q, not controller", inst.ID, r.OldBroker, inst.Role)
	}
	r.OldInstance, r.Zone, r.Like = inst.ID, inst.Zone, inst
	r.OldDirectory, r.Voters = old.DirectoryID, q.VoterIDs()
	r.OldDead = lost || !old.CaughtUp || inst.State == StateStopped || inst.State == StateStopping

	// The quorum's own health, with the old voter excused when it is the
	// one that is dead: replacing it is the cure.
	v := health.QuorumHealthy(q)
	var blockers []health.Reason
	for _, b := range v.Blockers {
		if b.Code == health.CodeVoterLagging && r.OldDead && slices.Equal(b.Brokers, []int32{r.OldBroker}) {
			log.Warn().Msg("emergency: the controller being replaced is down or behind; its lag is excused by the gate")
			continue
		}
		blockers = append(blockers, b)
	}
	// The brokers: nothing else may be disrupted (the quorum was judged above).
	snap.Quorum = nil
	bv := health.CanDisrupt(snap, health.Policy{})
	blockers = append(blockers, bv.Blockers...)
	for _, in := range insts {
		if in.NodeID != r.OldBroker && in.State != StateRunning && in.State != StatePending && in.State != StateTerminated {
			blockers = append(blockers, health.Reason{Code: health.CodeBrokerDown, Brokers: []int32{in.NodeID},
				Message: fmt.Sprintf("%s %d's instance %s is %s", RoleOf(in), in.NodeID, in.ID, in.State)})
		}
	}
	if len(blockers) > 0 {
		return &refusedError{health.Verdict{Blockers: blockers}}
	}
	if err := e.bootstrapSurvives(ctx, q, r.OldBroker); err != nil {
		return err
	}
	// The addition commits on a majority of the grown voter set, the new
	// voter included: a dead old voter leaves the others to carry it.
	up := 0
	for _, x := range q.Voters {
		if x.CaughtUp {
			up++
		}
	}
	if grown := len(q.Voters) + 1; up+1 < grown/2+1 {
		return refuse(health.CodeQuorumMajority, "only %d of %d voters are caught up: adding a voter needs %d caught-up voters of %d", up, len(q.Voters), grown/2+1, grown)
	}
	return nil
}

// bootstrapSurvives refuses a controller replacement after which a broker
// could not find the quorum again: a node that loses the leader asks only
// its controller.quorum.bootstrap.servers, and a list naming the old
// controller's address and no other live controller would strand it (seen
// in this project's tests). An entry that is no controller's address (a DNS
// name, a load balancer) is trusted to follow the controllers.
func (e *Executor) bootstrapSurvives(ctx context.Context, q *health.Quorum, old int32) error {
	boot, err := e.Cluster.QuorumBootstrap(ctx)
	if err != nil {
		return &refusedError{health.NotEvaluated(fmt.Errorf("brokers' controller.quorum.bootstrap.servers: %w", err))}
	}
	addr := func(ep string) string {
		if _, hp, ok := strings.Cut(ep, "://"); ok {
			return hp
		}
		return ep
	}
	leaving, staying := map[string]bool{}, map[string]bool{}
	for _, v := range q.Voters {
		for _, ep := range v.Endpoints {
			if v.ID == old {
				leaving[addr(ep)] = true
			} else {
				staying[addr(ep)] = true
			}
		}
	}
	var stranded []int32
	for b, entries := range boot {
		ok := len(entries) == 0 // not a dynamic-quorum broker (static voters)
		for _, en := range entries {
			ok = ok || staying[en] || !leaving[en]
		}
		if !ok {
			stranded = append(stranded, b)
		}
	}
	if len(stranded) == 0 {
		return nil
	}
	slices.Sort(stranded)
	return &refusedError{health.Verdict{Blockers: []health.Reason{{Code: "bootstrap-stranded", Brokers: stranded,
		Message: fmt.Sprintf("broker %v finds the quorum only through controller %d's address (controller.quorum.bootstrap.servers %v): after this replacement a broker that loses the leader could not find the quorum again. Point the setting at a DNS name or load balancer that follows the controllers (the Terraform module's controller_quorum), or add the other controllers' addresses, and restart those brokers first", stranded, old, boot[stranded[0]])}}}}
}

// nextControllerID picks a node id above every controller id seen (voters,
// observers that are not brokers, controller instances), clear of brokers.
func nextControllerID(snap *health.Snapshot, q *health.Quorum, insts []Instance) int32 {
	used := map[int32]bool{}
	var top int32
	for _, v := range q.Voters {
		used[v.ID], top = true, max(top, v.ID)
	}
	for _, o := range q.Observers {
		used[o.ID] = true
		if _, isBroker := snap.Broker(o.ID); !isBroker {
			top = max(top, o.ID)
		}
	}
	for _, in := range insts {
		used[in.NodeID] = true
		if in.IsController() {
			top = max(top, in.NodeID)
		}
	}
	for _, b := range snap.Brokers {
		used[b.ID] = true
	}
	for _, p := range snap.Partitions {
		for _, id := range p.Replicas {
			used[id] = true
		}
	}
	id := top + 1
	for used[id] {
		id++
	}
	return id
}

func (e *Executor) launchController(ctx context.Context, r *Record) error {
	if r.NewBroker < 0 {
		snap, err := e.Cluster.Snapshot(ctx)
		if err != nil {
			return err
		}
		q, err := e.Cluster.Quorum(ctx)
		if err != nil {
			return err
		}
		insts, err := e.Provider.Instances(ctx)
		if err != nil {
			return err
		}
		r.NewBroker = nextControllerID(snap, q, insts)
		if err := e.save(ctx, r); err != nil {
			return err
		}
	}
	like := r.Like
	like.Role = RoleController
	in, err := e.Provider.Launch(ctx, LaunchRequest{Token: r.ID + "-launch", Like: like, NodeID: r.NewBroker, ReplacementID: r.ID})
	if err != nil {
		return fmt.Errorf("launch controller %d: %w", r.NewBroker, err)
	}
	r.NewInstance = in.ID
	return nil
}

// listenerName is the controller listener's name the voters use
// ("CONTROLLER" when none says).
func listenerName(q *health.Quorum) string {
	for _, v := range q.Voters {
		for _, ep := range v.Endpoints {
			if name, _, ok := strings.Cut(ep, "://"); ok {
				return name
			}
		}
	}
	return "CONTROLLER"
}

// awaitObserver waits until the new controller fetches the metadata log as
// an observer and has caught up; it records its directory id and endpoint.
func (e *Executor) awaitObserver(ctx context.Context, r *Record) error {
	return e.poll(ctx, r, fmt.Sprintf("controller %d catching up as an observer", r.NewBroker), e.Opts.RegisterTimeout, func(ctx context.Context) (bool, error) {
		in, found, err := e.instance(ctx, r.NewBroker)
		if err != nil {
			return false, err
		}
		if !found || in.ID != r.NewInstance {
			return false, fatal("instance %s of controller %d is gone before it joined the quorum", r.NewInstance, r.NewBroker)
		}
		if in.Endpoint == "" {
			return false, nil // the infrastructure has not given it an address yet
		}
		q, err := e.Cluster.Quorum(ctx)
		if err != nil {
			return false, err
		}
		o, ok := q.Observer(r.NewBroker)
		if !ok {
			if v, isVoter := q.Voter(r.NewBroker); isVoter {
				o, ok = v, true // a resumed run that already added it
			}
		}
		if !ok || !o.CaughtUp || o.DirectoryID == "" {
			return false, nil
		}
		r.NewDirectory, r.NewEndpoint = o.DirectoryID, listenerName(q)+"://"+in.Endpoint
		return true, nil
	})
}

// addVoter records that the addition begins, then sends AddRaftVoter. The
// leader accepts one voter change at a time and only for a caught-up
// observer; a repeated addition of the same voter is not an error.
func (e *Executor) addVoter(ctx context.Context, r *Record) error {
	q, err := e.Cluster.Quorum(ctx)
	if err != nil {
		return err
	}
	if v, ok := q.Voter(r.NewBroker); ok && v.DirectoryID == r.NewDirectory {
		return nil // added before a crash
	}
	if n := len(q.Voters); n != len(r.Voters) {
		return &personError{fmt.Errorf("the quorum has %d voters (%v), not the %d the gate saw (%v): another voter change is running; not adding a second", n, q.VoterIDs(), len(r.Voters), r.Voters)}
	}
	if !r.VoterAdded {
		r.VoterAdded = true
		if err := e.save(ctx, r); err != nil {
			return err
		}
	}
	if err := e.Cluster.AddVoter(ctx, Voter{ID: r.NewBroker, DirectoryID: r.NewDirectory, Endpoint: r.NewEndpoint}); err != nil {
		return err
	}
	e.logger(r).Info().Str("directory_id", r.NewDirectory).Str("endpoint", r.NewEndpoint).Msg("controller added as a voter")
	return nil
}

// awaitVoter waits until the new voter is listed and caught up.
func (e *Executor) awaitVoter(ctx context.Context, r *Record) error {
	return e.poll(ctx, r, fmt.Sprintf("voter %d caught up", r.NewBroker), e.Opts.RegisterTimeout, func(ctx context.Context) (bool, error) {
		q, err := e.Cluster.Quorum(ctx)
		if err != nil {
			return false, err
		}
		v, ok := q.Voter(r.NewBroker)
		return ok && v.CaughtUp, nil
	})
}

// removeOldVoter asks the quorum guard (the voters left must keep a
// caught-up majority), records that the old node's retirement begins, sends
// RemoveRaftVoter and stops the old controller at once. A removed controller
// left running answers every observer that reaches it through the bootstrap
// address that the leader is unknown; observers on a lasting connection to
// it (brokers behind a DNS name or load balancer) stop heartbeating and
// forwarding, so even DescribeQuorum through them stalls until it is gone
// (seen on Kafka 4.4). For the same reason a run resumed after the removal
// began stops the old controller before anything else: a voter of four that
// stops leaves three caught up, the majority the guard checked before the
// removal began.
func (e *Executor) removeOldVoter(ctx context.Context, r *Record) error {
	if !r.OldStopped {
		if err := e.guardStep(ctx, r); err != nil {
			return err
		}
		r.OldStopped = true
		if err := e.save(ctx, r); err != nil {
			return err
		}
	} else if err := e.Provider.Stop(ctx, r.OldInstance); err != nil {
		return fmt.Errorf("stop %s: %w", r.OldInstance, err)
	}
	if err := e.Cluster.RemoveVoter(ctx, r.OldBroker, r.OldDirectory); err != nil {
		return err
	}
	e.logger(r).Info().Str("directory_id", r.OldDirectory).Msg("old controller removed from the voters; stopping it")
	if err := e.Provider.Stop(ctx, r.OldInstance); err != nil {
		return fmt.Errorf("stop %s: %w", r.OldInstance, err)
	}
	return nil
}

// intendedVoters is the voter set the replacement ends with.
func intendedVoters(r *Record) []int32 {
	out := slices.DeleteFunc(slices.Clone(r.Voters), func(id int32) bool { return id == r.OldBroker })
	out = append(out, r.NewBroker)
	slices.Sort(out)
	return out
}

// awaitVoters waits until the quorum lists exactly the intended voters, all
// caught up.
func (e *Executor) awaitVoters(ctx context.Context, r *Record) error {
	want := intendedVoters(r)
	err := e.poll(ctx, r, fmt.Sprintf("voters %v", want), e.Opts.RegisterTimeout, func(ctx context.Context) (bool, error) {
		q, err := e.Cluster.Quorum(ctx)
		if err != nil {
			return false, err
		}
		if !slices.Equal(q.VoterIDs(), want) {
			return false, nil
		}
		for _, v := range q.Voters {
			if !v.CaughtUp {
				return false, nil
			}
		}
		return true, nil
	})
	if isTimeout(err) {
		return &personError{err}
	}
	return err
}

// stopOldController stops the old controller's process once the quorum
// guard agrees (it is no longer a voter).
func (e *Executor) stopOldController(ctx context.Context, r *Record) error {
	if err := e.guardStep(ctx, r); err != nil {
		return err
	}
	if err := e.Provider.Stop(ctx, r.OldInstance); err != nil {
		return fmt.Errorf("stop %s: %w", r.OldInstance, err)
	}
	return nil
}

func (e *Executor) terminateOldController(ctx context.Context, r *Record) error {
	if err := e.guardStep(ctx, r); err != nil {
		return err
	}
	if err := e.Provider.Terminate(ctx, r.OldInstance); err != nil {
		return fmt.Errorf("terminate %s: %w", r.OldInstance, err)
	}
	return nil
}

// removeNewVoter (rollback) takes the new controller out of the voters if
// the addition may have happened, and waits until the voters are the ones
// the gate saw.
func (e *Executor) removeNewVoter(ctx context.Context, r *Record) error {
	if !r.VoterAdded {
		return nil
	}
	if err := e.guardStep(ctx, r); err != nil {
		return err
	}
	q, err := e.Cluster.Quorum(ctx)
	if err != nil {
		return err
	}
	if v, ok := q.Voter(r.NewBroker); ok {
		if err := e.Cluster.RemoveVoter(ctx, r.NewBroker, v.DirectoryID); err != nil {
			return err
		}
	}
	want := slices.Sorted(slices.Values(r.Voters))
	return e.poll(ctx, r, fmt.Sprintf("voters back to %v", want), e.Opts.RegisterTimeout, func(ctx context.Context) (bool, error) {
		q, err := e.Cluster.Quorum(ctx)
		if err != nil {
			return false, err
		}
		return slices.Equal(q.VoterIDs(), want), nil
	})
}

// removeNewController (rollback) terminates the new controller's instance,
// found by its node id when fleetd died inside Launch.
func (e *Executor) removeNewController(ctx context.Context, r *Record) error {
	if r.NewBroker < 0 {
		return nil
	}
	if found, err := e.findNewInstance(ctx, r); !found {
		return err
	}
	if err := e.guardStep(ctx, r); err != nil {
		return err
	}
	if err := e.Provider.Terminate(ctx, r.NewInstance); err != nil {
		return fmt.Errorf("terminate new instance %s: %w", r.NewInstance, err)
	}
	return nil
}
