package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
)

// This file is the daemon as the API's Backend.

// Status gathers the controller's, the cluster's and the fleet's state.
// Parts that cannot be read are reported as errors beside the rest.
func (d *Daemon) Status(ctx context.Context) (api.Status, error) {
	cst, err := d.ctl.Status(ctx)
	if err != nil {
		return api.Status{}, err
	}
	st := api.Status{Cluster: d.cfg.Cluster, Holder: d.o.Holder, Active: cst.LeaseHeld, Controller: cst, Fleet: []replace.Instance{}}
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if snap, v, err := d.look(hctx, cst.Running); err != nil {
		st.HealthError = err.Error()
	} else {
		rep := health.NewReport(snap, v)
		st.Health = &rep
	}
	if insts, err := d.prov.Instances(hctx); err != nil {
		st.FleetError = err.Error()
	} else {
		st.Fleet = insts
	}
	d.mu.Lock()
	if d.progress != nil {
		p := *d.progress
		st.Progress = &p
	}
	d.mu.Unlock()
	sched := d.chaos.Schedule
	st.Chaos = api.ChaosStatus{Enabled: sched.Enabled, Leashed: sched.Leashed, Decisions: d.chaos.Decisions()}
	if sched.Enabled {
		st.Chaos.Next = sched.Decide(time.Now(), d.chaos.LastSlot(), time.Time{}, nil, nil).Next
	}
	return st, nil
}

// History lists replacements, newest first.
func (d *Daemon) History(ctx context.Context, limit int) ([]*replace.Record, error) {
	recs, err := d.store.List(ctx)
	if err != nil {
		return nil, err
	}
	slices.Reverse(recs) // List is oldest first
	return recs[:min(limit, len(recs))], nil
}

// Replacement is one record.
func (d *Daemon) Replacement(ctx context.Context, id string) (*replace.Record, error) {
	r, err := d.store.Load(ctx, id)
	switch {
	case errors.Is(err, replace.ErrBadID):
		return nil, api.Errorf(http.StatusBadRequest, err.Error())
	case errors.Is(err, replace.ErrNotFound) || errors.Is(err, os.ErrNotExist):
		return nil, api.Errorf(http.StatusNotFound, fmt.Sprintf("no replacement %q (GET /v1/history lists them)", id))
	case err != nil:
		// The cause names paths on this host: it goes to the log, not to
		// the client.
		d.log.Error().Err(err).Str("replacement", id).Msg("cannot read a replacement record")
		return nil, api.Errorf(http.StatusInternalServerError, fmt.Sprintf("cannot read replacement %q (fleetd's log says why)", id))
	}
	return r, nil
}

// Request queues an operator's replacement, or previews it. The answer says
// what became of it: queued, merged into the request queued for the broker,
// or attached to the replacement of the broker running now.
func (d *Daemon) Request(ctx context.Context, req api.ReplaceRequest) (api.ReplaceResponse, error) {
	rr := replace.Request{Broker: *req.Broker, Strategy: replace.Strategy(req.Strategy), Triggers: []replace.Trigger{replace.TriggerOperator},
		Throttle: req.Throttle, Concurrency: req.Concurrency, Order: req.Order, Reason: req.Reason}
	if err := d.knownBroker(ctx, rr.Broker); err != nil {
		return api.ReplaceResponse{}, err
	}
	if req.DryRun {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		rec, err := d.exec.Preview(pctx, rr)
		if err != nil {
			return api.ReplaceResponse{}, err
		}
		return api.ReplaceResponse{Preview: rec}, nil
	}
	sub, err := d.ctl.Submit(ctx, controller.Request{Broker: rr.Broker, Strategy: rr.Strategy, Triggers: rr.Triggers,
		Throttle: rr.Throttle, Concurrency: rr.Concurrency, Order: rr.Order, Reason: rr.Reason})
	if err != nil {
		return api.ReplaceResponse{}, d.apiError(err)
	}
	return api.ReplaceResponse{Queued: &sub.Request, Outcome: sub.Outcome, Into: sub.Into}, nil
}

// apiError gives the controller's refusals their HTTP status.
func (d *Daemon) apiError(err error) error {
	var (
		na *controller.NotActiveError
		cf *controller.ConflictError
		nq *controller.NotQueuedError
	)
	switch {
	case errors.As(err, &na):
		return api.Errorf(http.StatusServiceUnavailable, "this fleetd ("+d.o.Holder+") is on standby and changes nothing: "+cmp.Or(na.Lease, "the lease is not held yet")+"; send the request to the active fleetd")
	case errors.As(err, &cf):
		return api.Errorf(http.StatusConflict, cf.Error())
	case errors.As(err, &nq):
		return api.Errorf(http.StatusNotFound, nq.Error())
	case errors.Is(err, replace.ErrNotRunning):
		return api.Errorf(http.StatusConflict, "no replacement is running: a throttle is changed on a running one (queued requests carry their own: fleetd replace --throttle)")
	}
	return err
}

// knownBroker refuses a node id that is neither on an instance nor
// registered with Kafka: a typo must not sit in the queue for a day.
func (d *Daemon) knownBroker(ctx context.Context, id int32) error {
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	insts, err := d.prov.Instances(ictx)
	if err != nil {
		return api.Errorf(http.StatusServiceUnavailable, "cannot list the fleet to check broker "+fmt.Sprint(id)+": "+err.Error())
	}
	var ids []int32
	for _, in := range insts {
		if in.NodeID == id {
			return nil
		}
		ids = append(ids, in.NodeID)
	}
	slices.Sort(ids)
	return api.Errorf(http.StatusNotFound, fmt.Sprintf("broker %d is not in the fleet (brokers: %v)", id, ids))
}

// Abort rolls back the running replacement.
func (d *Daemon) Abort(ctx context.Context, reason string) (api.AbortResponse, error) {
	cst, err := d.ctl.Status(ctx)
	if err != nil {
		return api.AbortResponse{}, err
	}
	ok, err := d.ctl.Abort(ctx, reason)
	resp := api.AbortResponse{Aborted: ok}
	if ok && cst.Running != nil {
		resp.Replacement = cst.Running.ID
	}
	return resp, d.apiError(err)
}

// SetPaused flips the durable pause switch.
func (d *Daemon) SetPaused(ctx context.Context, paused bool) error {
	return d.apiError(d.ctl.SetPaused(ctx, paused))
}

// Cancel takes a queued request off the queue.
func (d *Daemon) Cancel(ctx context.Context, id, reason string) (controller.Request, error) {
	q, err := d.ctl.Cancel(ctx, id, reason)
	return q, d.apiError(err)
}

// SetThrottle changes the running replacement's throttle.
func (d *Daemon) SetThrottle(ctx context.Context, t replace.Throttle) (replace.ThrottleResult, error) {
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := d.ctl.SetThrottle(tctx, t)
	return res, d.apiError(err)
}

// Ready: the controller loop turns (active or standby both serve) and can
// use its lease and records.
func (d *Daemon) Ready(context.Context) error {
	seen := d.loopSeen.Load()
	if seen == 0 {
		return errors.New("starting: the controller loop has not run yet")
	}
	if age := time.Since(time.Unix(0, seen)); age > 3*d.o.ControllerTick+10*time.Second {
		return fmt.Errorf("%w (last turn %s ago)", errLoopStalled, age.Round(time.Second))
	}
	if msg, _ := d.ctlErr.Load().(string); msg != "" {
		return errors.New(msg)
	}
	return nil
}
