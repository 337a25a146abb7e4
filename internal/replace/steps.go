package replace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fleetd/fleetd/internal/health"
)

// alive: registered and not fenced.
func alive(s *health.Snapshot, id int32) bool {
	b, ok := s.Broker(id)
	return ok && !b.Fenced
}

// InfraDown lists the node ids whose instances the infrastructure sees
// stopping, stopped or shutting down: Kafka notices only when their sessions
// expire.
func InfraDown(insts []Instance) []int32 {
	var out []int32
	for _, in := range insts {
		switch in.State {
		case StateStopping, StateStopped, StateShuttingDown:
			out = append(out, in.NodeID)
		}
	}
	return out
}

// guard asks the blast-radius check (health.BlastRadius) on fresh metadata
// right before an act that takes nodes away, whatever step the workflow
// resumed at: the gate ran once, maybe hours ago. While it refuses, or cannot
// read the cluster, the workflow waits, bounded by Opts.GuardWait, with the
// reason in the record (status shows it); then the step fails with a
// guardError, never proceeds.
func (e *Executor) guard(ctx context.Context, r *Record, act string, check func(context.Context) health.Verdict) error {
	var last health.Verdict
	err := e.poll(ctx, r, "guard before "+act, e.Opts.GuardWait, func(ctx context.Context) (bool, error) {
		last = check(ctx)
		if last.Safe {
			return true, e.setWaiting(ctx, r, "")
		}
		return false, e.setWaiting(ctx, r, fmt.Sprintf("%s: %s", act, last.Summary()))
	})
	if isTimeout(err) && !last.Safe {
		return &guardError{act: act, v: last, wait: e.Opts.GuardWait}
	}
	return err
}

// WhatIf asks the blast-radius guard about taking nodes away now, on fresh
// metadata and the infrastructure's view; a cluster or infrastructure that
// cannot be read is a refusal. Every destructive act asks it right before
// acting (a chaos pick before it is queued, too).
func (e *Executor) WhatIf(ctx context.Context, nodes []int32) health.Verdict {
	snap, err := e.Cluster.Snapshot(ctx)
	if err != nil {
		return health.NotEvaluated(err)
	}
	insts, err := e.Provider.Instances(ctx)
	if err != nil {
		return health.NotEvaluated(fmt.Errorf("list instances: %w", err))
	}
	return health.BlastRadius(snap, nodes, InfraDown(insts))
}

// setWaiting records why the workflow waits ("" when it no longer does),
// saving only on a change so that status shows it and a poll writes nothing.
func (e *Executor) setWaiting(ctx context.Context, r *Record, why string) error {
	if r.Waiting == why {
		return nil
	}
	log := e.logger(r)
	if why != "" {
		log.Warn().Str("reason", why).Msg("waiting: the blast-radius guard refuses")
		r.WaitingSince = e.Opts.Now()
	} else {
		log.Info().Msg("the blast-radius guard allows the act now")
		r.WaitingSince = time.Time{}
	}
	r.Waiting = why
	return e.save(ctx, r)
}

func (e *Executor) instance(ctx context.Context, nodeID int32) (Instance, bool, error) {
	insts, err := e.Provider.Instances(ctx)
	if err != nil {
		return Instance{}, false, fmt.Errorf("list instances: %w", err)
	}
	for _, in := range insts {
		if in.NodeID == nodeID && in.State != StateTerminated && in.State != StateShuttingDown {
			return in, true, nil
		}
	}
	return Instance{}, false, nil
}

// gate decides whether the replacement may start, and with which strategy.
// Nothing has been changed yet, so every problem is a refusal.
func (e *Executor) gate(ctx context.Context, r *Record) error {
	log := e.logger(r)
	snap, err := e.Cluster.Snapshot(ctx)
	if err != nil {
		return &refusedError{health.NotEvaluated(err)}
	}
	insts, err := e.Provider.Instances(ctx)
	if err != nil {
		return &refusedError{health.NotEvaluated(fmt.Errorf("list instances: %w", err))}
	}
	if _, isBroker := snap.Broker(r.OldBroker); !isBroker && slices.Contains(snap.Controllers, r.OldBroker) {
		return &refusedError{health.Verdict{Blockers: []health.Reason{{Code: "is-a-controller", Brokers: []int32{r.OldBroker},
			Message: fmt.Sprintf("node %d is a KRaft controller, not a broker: replace it with the controller workflow (fleetd replace --controller %d)", r.OldBroker, r.OldBroker)}}}}
	}
	var inst Instance
	found := false
	for _, in := range insts {
		if in.NodeID == r.OldBroker && in.State != StateTerminated && in.State != StateShuttingDown {
			inst, found = in, true
		}
	}
	r.OldDead = !alive(snap, r.OldBroker)
	if found && (inst.State == StateStopped || inst.State == StateStopping) {
		r.OldDead = true // Kafka has not noticed yet; the infrastructure has
	}
	if lk, ok := e.Provider.(InstanceLookup); ok && !found && r.OldInstance != "" {
		// The instance an event named, already gone: it says where the
		// broker was (subnet, AZ), and that it is dead even while Kafka
		// still lists it (until its session expires).
		in, ok, err := lk.Lookup(ctx, r.OldInstance)
		if err != nil {
			return &refusedError{health.NotEvaluated(fmt.Errorf("look up instance %s: %w", r.OldInstance, err))}
		}
		if ok && in.NodeID == r.OldBroker {
			inst, found = in, true
			switch in.State {
			case StateTerminated, StateShuttingDown, StateStopped, StateStopping:
				r.OldDead = true
			}
		}
	}
	requested := r.Strategy
	if r.Strategy == "" {
		r.Strategy = StrategyMove
		if r.OldDead {
			r.Strategy = StrategyIdentity
		}
	}
	refuse := func(code health.Code, format string, args ...any) error {
		return &refusedError{health.Verdict{Blockers: []health.Reason{{Code: code, Brokers: []int32{r.OldBroker}, Message: fmt.Sprintf(format, args...)}}}}
	}
	switch {
	case r.Strategy != StrategyMove && r.Strategy != StrategyIdentity:
		return refuse("bad-request", "unknown strategy %q (want move or identity)", r.Strategy)
	case r.Strategy == StrategyMove && r.OldDead:
		return refuse(health.CodeBrokerDown, "broker %d is down: a move needs the old broker serving; use the identity strategy", r.OldBroker)
	case !found && !r.OldDead:
		return refuse("no-instance", "broker %d is serving but no instance of this cluster carries node id %d", r.OldBroker, r.OldBroker)
	}
	if found {
		r.OldInstance, r.Zone, r.Like = inst.ID, inst.Zone, inst
	} else if b, ok := snap.Broker(r.OldBroker); ok && b.Rack != "" {
		r.Zone, r.Like = b.Rack, Instance{NodeID: r.OldBroker, Zone: b.Rack}
	} else {
		return refuse("no-instance", "broker %d is gone and no instance or registration says which zone it was in", r.OldBroker)
	}
	// Kafka notices a dead broker only when its session expires (seconds);
	// the infrastructure may know already. Another broker's instance that is
	// stopped or going away is a broker down.
	for _, in := range insts {
		if in.NodeID != r.OldBroker && in.State != StateRunning && in.State != StatePending && in.State != StateTerminated {
			return &refusedError{health.Verdict{Blockers: []health.Reason{{Code: health.CodeBrokerDown, Brokers: []int32{in.NodeID},
				Message: fmt.Sprintf("%s %d's instance %s is %s (Kafka may not have noticed yet)", RoleOf(in), in.NodeID, in.ID, in.State)}}}}
		}
	}
	// Data that is already gone is said first, by name: a plan must never
	// look as if it carried partitions whose every in-sync copy is dead.
	r.Lost = nil
	for _, tp := range health.DataLost(snap, append(InfraDown(insts), deadIf(r.OldDead, r.OldBroker)...)) {
		if p := partitionOf(snap, tp); p != nil && slices.Contains(p.Replicas, r.OldBroker) {
			r.Lost = append(r.Lost, tp)
		}
	}
	if len(r.Lost) > 0 {
		log.Error().Int("partitions", len(r.Lost)).Str("lost", fmt.Sprint(r.Lost)).
			Msgf("data lost: every in-sync replica of these partitions is on dead brokers; a replacement cannot bring it back")
	}
	pol := health.Policy{Own: r.Own()}
	if r.OldDead {
		pol.AllowDown = []int32{r.OldBroker}
		log.Warn().Msg("emergency: the broker is already dead; its under-replicated partitions are excused by the gate")
	}
	v := health.CanDisrupt(snap, pol)
	if !v.Safe {
		return &refusedError{v}
	}
	e.meetDeadline(ctx, r, snap, requested)
	if r.Strategy == StrategyIdentity {
		// The same guard the stop asks right before acting; asked here too so
		// that a request that could never pass is refused before it waits.
		if stop := health.BlastRadius(snap, []int32{r.OldBroker}, InfraDown(insts)); !stop.Safe {
			return &refusedError{stop}
		}
		r.NewBroker = r.OldBroker
	}
	for _, w := range v.Warnings {
		log.Warn().Str("code", string(w.Code)).Msg(w.Message)
	}
	return nil
}

func deadIf(dead bool, id int32) []int32 {
	if dead {
		return []int32{id}
	}
	return nil
}

func partitionOf(s *health.Snapshot, tp health.TP) *health.Partition {
	for i := range s.Partitions {
		if s.Partitions[i].TP == tp {
			return &s.Partitions[i]
		}
	}
	return nil
}

// nextNodeID picks a node id above every broker, replica and broker
// instance id ever seen, and clear of every controller and instance, so a
// new broker never inherits an old identity.
func nextNodeID(s *health.Snapshot, insts []Instance) int32 {
	var top int32
	for _, b := range s.Brokers {
		top = max(top, b.ID)
	}
	for _, p := range s.Partitions {
		for _, id := range p.Replicas {
			top = max(top, id)
		}
	}
	used := map[int32]bool{}
	for _, id := range s.Controllers {
		used[id] = true
	}
	for _, in := range insts {
		used[in.NodeID] = true
		if !in.IsController() {
			top = max(top, in.NodeID)
		}
	}
	id := top + 1
	for used[id] {
		id++
	}
	return id
}

func (e *Executor) plan(ctx context.Context, r *Record) error {
	if r.Plan != nil {
		return nil
	}
	snap, err := e.Cluster.Snapshot(ctx)
	if err != nil {
		return err
	}
	insts, err := e.Provider.Instances(ctx)
	if err != nil {
		return err
	}
	if r.NewBroker < 0 {
		r.NewBroker = nextNodeID(snap, insts)
	}
	p, err := PlanMove(snap, r.OldBroker, r.NewBroker, r.Zone, e.planOptions(r))
	if err != nil {
		return fatal("%w", err)
	}
	tps := make([]health.TP, len(p.Moves))
	for i, m := range p.Moves {
		tps[i] = m.TP
	}
	if spans, err := e.Cluster.TieredSpans(ctx, tps); err != nil {
		// The offsets are for the plan's reader: the bytes (DescribeLogDirs,
		// local logs only) stand without them.
		e.logger(r).Warn().Err(err).Msg("could not read the tiered partitions' local offsets; the plan's bytes are local logs all the same")
	} else {
		p.markTiered(spans)
	}
	if past, err := e.Store.List(ctx); err == nil {
		p.estimate(past)
	}
	r.Plan = p
	e.logger(r).Info().Str("eta_basis", p.ETABasis).Int("partitions", p.Partitions).Int("concurrency", p.Options.Concurrency).Int64("bytes", p.TotalBytes).
		Dur("eta", p.ETA).Msg("plan made")
	return nil
}

func (e *Executor) launch(ctx context.Context, r *Record) error {
	in, err := e.Provider.Launch(ctx, LaunchRequest{Token: r.ID + "-launch", Like: r.Like, NodeID: r.NewBroker, ReplacementID: r.ID})
	if err != nil {
		return fmt.Errorf("launch broker %d: %w", r.NewBroker, err)
	}
	r.NewInstance = in.ID
	return nil
}

// poll calls check every Poll until it reports done, it fails for good, or
// timeout passes (a *timeoutError). Transient check errors are retried until
// the timeout; every other class of error ends the wait as it is.
func (e *Executor) poll(ctx context.Context, r *Record, what string, timeout time.Duration, check func(ctx context.Context) (bool, error)) error {
	return e.pollEvery(ctx, r, what, timeout, e.Opts.Poll, check)
}

// checkTimeout bounds one check of a poll (its requests to Kafka).
const checkTimeout = time.Minute

// pollEvery is poll at its own interval.
func (e *Executor) pollEvery(ctx context.Context, r *Record, what string, timeout, every time.Duration, check func(ctx context.Context) (bool, error)) error {
	deadline := e.Opts.Now().Add(timeout)
	var last error
	for {
		if e.abortReason() != "" && r.Phase == PhaseRunning {
			return ErrAborted
		}
		e.applyPending(ctx, r)
		// Every check has a bound: a request that never returns (a broker
		// franz-go cannot reach) is a transient error, retried and logged,
		// never a silent hang.
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		done, err := check(cctx)
		cancel()
		if err != nil && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%s: a check took over %s: %w", what, checkTimeout, err)
			e.logger(r).Warn().Err(err).Msg("check timed out; retrying")
		}
		switch {
		case err == nil && done:
			return nil
		case err == nil:
		case Classify(ctx, err) == Interrupted:
			return ctx.Err()
		case Classify(ctx, err) != Retry:
			return err
		default:
			last = err
		}
		if e.Opts.Now().After(deadline) {
			return &timeoutError{what: what, bound: timeout, last: last}
		}
		if !e.pollSleep(ctx, every) {
			return ctx.Err()
		}
	}
}

func (e *Executor) awaitRegister(ctx context.Context, r *Record) error {
	return e.poll(ctx, r, fmt.Sprintf("broker %d registration", r.NewBroker), e.Opts.RegisterTimeout, func(ctx context.Context) (bool, error) {
		snap, err := e.Cluster.Snapshot(ctx)
		if err != nil {
			return false, err
		}
		b, ok := snap.Broker(r.NewBroker)
		if !ok || b.Fenced {
			in, found, err := e.instance(ctx, r.NewBroker)
			if err == nil && (!found || in.ID != r.NewInstance) && r.NewInstance != "" {
				return false, fatal("instance %s of broker %d is gone before it registered", r.NewInstance, r.NewBroker)
			}
			return false, nil
		}
		if r.Zone != "" && b.Rack != "" && b.Rack != r.Zone {
			return false, fatal("broker %d registered in rack %q, want %q: it would unbalance the racks", r.NewBroker, b.Rack, r.Zone)
		}
		return true, nil
	})
}

func (e *Executor) verifyEmpty(ctx context.Context, r *Record) error {
	return e.requireEmpty(ctx, r.OldBroker)
}

// requireEmpty reads the cluster fresh and refuses unless broker holds no
// replica and sits in no ISR: the only evidence fleetd retires a broker on.
func (e *Executor) requireEmpty(ctx context.Context, broker int32) error {
	snap, err := e.Cluster.Snapshot(ctx)
	if err != nil {
		return err
	}
	if v := health.Empty(snap, broker); !v.Safe {
		return &personError{fmt.Errorf("broker %d is not empty, refusing to retire it: %s", broker, v.Summary())}
	}
	return nil
}

// beforeRetiringOld is what every act on the old broker's instance asks
// first: for a move, that the cluster shows it empty; for both strategies,
// the blast-radius guard, right now. Then OldStopped is recorded, before the
// act: from there on the old broker may be going, and a rollback of the
// identity strategy has nothing to return to. ok is false when there is no
// instance to act on.
func (e *Executor) beforeRetiringOld(ctx context.Context, r *Record) (ok bool, err error) {
	if r.Strategy == StrategyMove {
		if err := e.requireEmpty(ctx, r.OldBroker); err != nil {
			return false, err
		}
	}
	if r.OldInstance == "" {
		return false, nil
	}
	if err := e.guardStep(ctx, r); err != nil {
		return false, err
	}
	if !r.OldStopped {
		r.OldStopped = true
		if err := e.save(ctx, r); err != nil {
			return false, err
		}
	}
	return true, nil
}

func (e *Executor) stopOld(ctx context.Context, r *Record) error {
	if ok, err := e.beforeRetiringOld(ctx, r); !ok {
		return err
	}
	if err := e.Provider.Stop(ctx, r.OldInstance); err != nil {
		return fmt.Errorf("stop %s: %w", r.OldInstance, err)
	}
	err := e.poll(ctx, r, fmt.Sprintf("broker %d shutdown", r.OldBroker), e.Opts.StopTimeout, func(ctx context.Context) (bool, error) {
		snap, err := e.Cluster.Snapshot(ctx)
		if err != nil {
			return false, err
		}
		return !alive(snap, r.OldBroker), nil
	})
	if isTimeout(err) {
		// It is empty (move) or being replaced anyway (identity): terminate.
		e.logger(r).Warn().Err(err).Msg("old broker did not shut down in time; terminating it")
		return nil
	}
	return err
}

func (e *Executor) terminateOld(ctx context.Context, r *Record) error {
	if ok, err := e.beforeRetiringOld(ctx, r); !ok {
		return err
	}
	if err := e.Provider.Terminate(ctx, r.OldInstance); err != nil {
		return fmt.Errorf("terminate %s: %w", r.OldInstance, err)
	}
	return nil
}

func (e *Executor) unregisterOld(ctx context.Context, r *Record) error {
	return e.unregister(ctx, r, r.OldBroker)
}

// unregister waits until broker is no longer serving, then removes its
// registration and waits until the cluster no longer lists it.
func (e *Executor) unregister(ctx context.Context, r *Record, broker int32) error {
	return e.poll(ctx, r, fmt.Sprintf("unregistration of broker %d", broker), e.Opts.StopTimeout, func(ctx context.Context) (bool, error) {
		snap, err := e.Cluster.Snapshot(ctx)
		if err != nil {
			return false, err
		}
		if alive(snap, broker) {
			return false, nil // its session has not expired yet
		}
		if _, listed := snap.Broker(broker); !listed {
			return true, nil
		}
		return false, e.Cluster.Unregister(ctx, broker)
	})
}

// awaitInSync (identity): the new, empty broker re-replicates its partitions
// at Kafka's pace; done when it is back in every ISR.
func (e *Executor) awaitInSync(ctx context.Context, r *Record) error {
	st := stallTracker{}
	steer := newRateSteer(e, r) // the catch-up's rate is steered to the throttle, as a move's is
	var sampled time.Time
	err := e.poll(ctx, r, fmt.Sprintf("broker %d back in sync", r.NewBroker), e.Opts.InSyncTimeout, func(ctx context.Context) (bool, error) {
		snap, err := e.Cluster.Snapshot(ctx)
		if err != nil {
			return false, err
		}
		var total int64
		var parts, synced int
		var catching []health.TP
		for _, p := range snap.Partitions {
			if !slices.Contains(p.Replicas, r.NewBroker) {
				continue
			}
			parts++
			total += p.Bytes
			if slices.Contains(p.ISR, r.NewBroker) {
				synced++
			} else {
				catching = append(catching, p.TP)
			}
		}
		// An adaptive throttle adapts the catch-up too.
		if now := e.Opts.Now(); len(catching) > 0 && now.Sub(sampled) >= e.Opts.RateInterval {
			sampled = now
			e.adapt(ctx, r, catching, nil)
		}
		copied := int64(0)
		if sizes, err := e.Cluster.ReplicaBytes(ctx, r.NewBroker); err == nil {
			for _, n := range sizes {
				copied += n
			}
		}
		bps := steer.observe(ctx, copied, len(catching) > 0)
		stalled, err := st.observe(e, r, copied, synced == parts)
		e.progress(Progress{ID: r.ID, RequestID: r.RequestID, Phase: r.Phase, Step: r.Step, PartitionsDone: synced, Partitions: parts, BytesCopied: copied,
			BytesTotal: total, UnderReplicated: len(health.UnderReplicated(snap)), Stalled: stalled, BytesPerSec: bps,
			Throttle: e.throttleOf(r).String(), AppliedRate: appliedRate(r), ETASeconds: liveETA(total-copied, bps, e.throttleOf(r))})
		if err != nil {
			return false, err
		}
		return synced == parts && alive(snap, r.NewBroker), nil
	})
	if isTimeout(err) {
		// The old disk is gone: nothing to roll back to. A person must look.
		return &personError{err}
	}
	if err != nil {
		return err
	}
	return e.copied(ctx, r)
}
