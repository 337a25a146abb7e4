package daemon

import (
	"fmt"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/notify"
	"github.com/fleetd/fleetd/internal/replace"
)

// This file turns what the controller decides and how workflows end into
// notifications (notify.Event): one sentence for people, the facts as JSON.

// controllerEvent tells the controller's decisions. It runs on the
// controller's goroutine: Notify only queues.
func (d *Daemon) controllerEvent(ev controller.Event) {
	n := notify.Event{Cluster: d.cfg.Cluster}
	if ev.Request != nil {
		n.Request = request(ev.Request)
	}
	node := func() string {
		if ev.Request == nil {
			return ""
		}
		return fmt.Sprintf("node %d", ev.Request.Broker)
	}
	switch ev.Kind {
	case controller.EventAccepted:
		n.Kind = notify.Accepted
		n.Message = fmt.Sprintf("Request %s to replace %s (asked by %s): %s.", ev.Request.ID, node(), replace.JoinTriggers(ev.Request.Triggers), ev.Reason)
	case controller.EventRefused:
		n.Kind = notify.Refused
		n.WaitedSeconds = int64(ev.Waited / time.Second)
		n.Message = fmt.Sprintf("Request %s to replace %s has been refused by the gate for %s; it waits and is retried: %s", ev.Request.ID, node(), ev.Waited.Round(time.Minute), ev.Reason)
		if ev.Record != nil {
			n.Replacement = summary(ev.Record)
		}
	case controller.EventPaused:
		n.Kind = notify.Paused
		n.Message = fmt.Sprintf("fleetd is paused (%s): no new replacement starts until it is resumed.", ev.Reason)
	case controller.EventResumed:
		n.Kind = notify.Resumed
		n.Message = fmt.Sprintf("fleetd resumed (%s): replacements may start again.", ev.Reason)
	case controller.EventLeaseLost:
		n.Kind = notify.LeaseLost
		n.Message = fmt.Sprintf("fleetd on %s lost the lease (%s): it stops at the next step boundary; another fleetd must take over.", d.o.Holder, ev.Reason)
	case controller.EventLeaseAcquired:
		n.Kind = notify.LeaseAcquired
		n.Message = fmt.Sprintf("fleetd on %s is now the active controller.", d.o.Holder)
	default:
		return
	}
	// Pause, resume and the lease are logged as events of their own, with why.
	switch ev.Kind {
	case controller.EventPaused, controller.EventResumed, controller.EventLeaseLost, controller.EventLeaseAcquired:
		d.log.Info().Str("event", string(n.Kind)).Str("reason", ev.Reason).Msg(n.Message)
	}
	d.tell(n)
	if ev.Kind == controller.EventRefused && ev.Record != nil {
		d.hub.Publish(api.TypeEnd, ev.Record)
	}
}

// tell notifies the receivers and the event streams.
func (d *Daemon) tell(ev notify.Event) {
	ev = ev.Stamped()
	d.notifier.Notify(ev)
	d.hub.Publish(api.TypeEvent, ev)
}

// workflowStarted tells that r passed its gate: it acts on the cluster now.
func (d *Daemon) workflowStarted(r *replace.Record) {
	d.tell(notify.Event{Kind: notify.Started, Cluster: d.cfg.Cluster, Replacement: summary(r),
		Message: fmt.Sprintf("Replacement %s of %s started (%s, asked by %s).", r.ID, oldNode(r), r.Strategy, r.TriggerList())})
}

// workflowEnded tells how r ended (a refusal is the controller's to tell:
// it knows how long the request has waited).
func (d *Daemon) workflowEnded(r *replace.Record) {
	ev := notify.Event{Cluster: d.cfg.Cluster, Replacement: summary(r)}
	switch r.Outcome() {
	case string(replace.PhaseCompleted):
		ev.Kind = notify.Completed
		ev.Message = fmt.Sprintf("Replacement %s completed: %s replaced by %s%s%s.", r.ID, oldNode(r), newNode(r), moved(r), canaryClause(r))
	case replace.OutcomeAborted:
		ev.Kind = notify.Aborted
		ev.Message = fmt.Sprintf("Replacement %s of %s was aborted (%s) and rolled back: %s stays.%s", r.ID, oldNode(r), r.AbortRequested, oldNode(r), canaryClause(r))
	case string(replace.PhaseRolledBack):
		ev.Kind = notify.RolledBack
		ev.Message = fmt.Sprintf("Replacement %s of %s rolled back: %s. %s stays.%s", r.ID, oldNode(r), r.Error, oldNode(r), canaryClause(r))
	case string(replace.PhaseFailed):
		ev.Kind = notify.Failed
		ev.Message = fmt.Sprintf("Replacement %s of %s FAILED and needs a person: %s (docs/runbook.md#fleetdworkflowfailed).%s", r.ID, oldNode(r), r.Error, canaryClause(r))
	default:
		return
	}
	d.tell(ev)
	d.hub.Publish(api.TypeEnd, r)
}

func oldNode(r *replace.Record) string {
	if r.OldInstance != "" {
		return fmt.Sprintf("node %d (%s)", r.OldBroker, r.OldInstance)
	}
	return fmt.Sprintf("node %d", r.OldBroker)
}

func newNode(r *replace.Record) string {
	if r.Strategy == replace.StrategyIdentity {
		return fmt.Sprintf("a new instance (%s) with the same node id", r.NewInstance)
	}
	if r.NewInstance != "" {
		return fmt.Sprintf("node %d (%s)", r.NewBroker, r.NewInstance)
	}
	return fmt.Sprintf("node %d", r.NewBroker)
}

func moved(r *replace.Record) string {
	if r.BytesMoved == 0 {
		return ""
	}
	return ", " + humanize.Bytes(uint64(r.BytesMoved)) + " moved"
}

// canaryClause is the canary's verdict as a clause ("" when none ran).
func canaryClause(r *replace.Record) string {
	v := r.Canary
	switch {
	case v == nil:
		return ""
	case v.Lost > 0 || v.Duplicated > 0:
		return fmt.Sprintf("; canary: %d acknowledged records LOST, %d duplicated", v.Lost, v.Duplicated)
	case v.Error != "":
		return "; canary: no verdict (" + v.Error + ")"
	default:
		return fmt.Sprintf("; canary: %d acknowledged, all read back once", v.Acked)
	}
}

func summary(r *replace.Record) *notify.Replacement {
	s := &notify.Replacement{ID: r.ID, Strategy: string(r.Strategy), OldNode: r.OldBroker, OldInstance: r.OldInstance, NewNode: r.NewBroker,
		NewInstance: r.NewInstance, Phase: string(r.Phase), Error: r.Error, BytesMoved: r.BytesMoved}
	if r.Phase.Terminal() {
		s.Outcome = r.Outcome()
	}
	for _, t := range r.Triggers {
		s.Triggers = append(s.Triggers, string(t))
	}
	if v := r.Canary; v != nil {
		s.Canary = &notify.Canary{Verified: v.Verified, Acked: v.Acked, Lost: v.Lost, Duplicated: v.Duplicated}
	}
	return s
}

func request(r *controller.Request) *notify.Request {
	out := &notify.Request{ID: r.ID, Node: r.Broker, Reason: r.Reason}
	for _, t := range r.Triggers {
		out.Triggers = append(out.Triggers, string(t))
	}
	return out
}
