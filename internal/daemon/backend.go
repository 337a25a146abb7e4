package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/atomicfile"
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
	snap, err := health.Collect(hctx, d.cl)
	if err != nil {
		st.HealthError = err.Error()
	} else {
		pol := health.Policy{}
		if cst.Running != nil {
			pol.Own = cst.Running.Own()
		}
		rep := health.NewReport(snap, health.CanDisrupt(snap, pol))
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
	st.Chaos = api.ChaosStatus{Enabled: d.chaos.Enabled, Leashed: d.chaos.Leashed, Decisions: slices.Clone(d.chaosLog.Decisions)}
	d.mu.Unlock()
	if d.chaos.Enabled {
		st.Chaos.Next = d.chaos.Decide(time.Now(), d.chaosLastSlot(), time.Time{}, nil, nil).Next
	}
	if st.Chaos.Decisions == nil {
		st.Chaos.Decisions = []api.ChaosDecision{}
	}
	return st, nil
}

func (d *Daemon) chaosLastSlot() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.chaosLog.LastSlot
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

// Request queues an operator's replacement, or previews it.
func (d *Daemon) Request(ctx context.Context, req api.ReplaceRequest) (api.ReplaceResponse, error) {
	rr := replace.Request{Broker: *req.Broker, Strategy: replace.Strategy(req.Strategy), Trigger: "operator"}
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
	cst, err := d.ctl.Status(ctx)
	if err != nil {
		return api.ReplaceResponse{}, err
	}
	if !cst.LeaseHeld {
		return api.ReplaceResponse{}, d.errNotActive(cst)
	}
	q, err := d.ctl.Submit(ctx, controller.Request{Broker: rr.Broker, Strategy: rr.Strategy, Triggers: []string{"operator"}})
	if err != nil {
		return api.ReplaceResponse{}, err
	}
	return api.ReplaceResponse{Queued: &q}, nil
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
	if !cst.LeaseHeld {
		return api.AbortResponse{}, d.errNotActive(cst)
	}
	ok, err := d.ctl.Abort(ctx, reason)
	resp := api.AbortResponse{Aborted: ok}
	if ok && cst.Running != nil {
		resp.Replacement = cst.Running.ID
	}
	return resp, err
}

// SetPaused flips the durable pause switch.
func (d *Daemon) SetPaused(ctx context.Context, paused bool) error {
	cst, err := d.ctl.Status(ctx)
	if err != nil {
		return err
	}
	if !cst.LeaseHeld {
		return d.errNotActive(cst)
	}
	return d.ctl.SetPaused(ctx, paused)
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

func (d *Daemon) loadChaos() error {
	b, err := os.ReadFile(filepath.Join(d.cfg.StateDir, chaosFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(b, &d.chaosLog)
	}
	if err != nil {
		return fmt.Errorf("chaos state %s: %w (move it aside to start afresh; a slot may then be decided again)", filepath.Join(d.cfg.StateDir, chaosFile), err)
	}
	return nil
}

func (d *Daemon) saveChaosLocked() error {
	b, err := json.MarshalIndent(d.chaosLog, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(d.cfg.StateDir, chaosFile), b, 0o640)
}
