package daemon

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/ec2"
	"github.com/fleetd/fleetd/internal/events"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/schedule"
)

// This file is the AWS side of the daemon: the EC2 provider, the event
// sources and the policy that turns events into requests, and AMI drift.

// awsParts are the AWS clients of a daemon with provider.kind ec2.
type awsParts struct {
	cfg      aws.Config
	ec2      *awsec2.Client
	provider *ec2.Provider
}

func (d *Daemon) newEC2(ctx context.Context) (*awsParts, error) {
	cfg, err := ec2.LoadConfig(ctx, ec2.ConfigOptions{Region: d.cfg.AWS.Region, Log: &d.log})
	if err != nil {
		return nil, err
	}
	client := awsec2.NewFromConfig(cfg)
	e := d.cfg.EC2
	p, err := ec2.NewProvider(client, ec2.Options{
		Cluster: d.cfg.Cluster, ClusterTag: e.ClusterTag, NodeIDTag: e.NodeIDTag,
		LaunchTemplate: e.LaunchTemplate, LaunchTemplateVersion: e.LaunchTemplateVersion, InstanceType: e.InstanceType,
		ImageOwners: e.AMIOwners, ImageTags: e.AMITags, SubnetsByAZ: e.SubnetsByAZ,
	})
	if err != nil {
		return nil, err
	}
	return &awsParts{cfg: cfg, ec2: client, provider: p}, nil
}

// runEvents starts the event sources; they act only while this process
// holds the lease (a standby leaves messages for the active one).
func (d *Daemon) runEvents(ctx context.Context, start func(func())) error {
	if d.aws == nil {
		return nil
	}
	ev := d.cfg.Events
	if ev.QueueURL == "" && ev.PollInterval <= 0 {
		return nil
	}
	if err := d.dispatcher.Load(); err != nil {
		return err
	}
	if ev.QueueURL != "" {
		origin, err := queueOrigin(ev.QueueURL, d.aws.cfg.Region)
		if err != nil {
			return err
		}
		c := &events.Consumer{API: sqs.NewFromConfig(d.aws.cfg), QueueURL: ev.QueueURL, Wait: ev.Wait, Dispatcher: d.dispatcher, Log: d.log,
			Origin: origin, Members: d.members,
			Active: d.active.Load, OnMessage: func(_, outcome string) { d.metrics.EventMessage(outcome) }}
		start(func() { c.Run(ctx) })
	}
	if ev.PollInterval > 0 {
		start(func() {
			events.PollScheduled(ctx, d.aws.ec2, ev.PollInterval, d.dispatcher, d.members, d.log, d.active.Load)
		})
	}
	return nil
}

// queueOrigin is the account and region whose events fleetd believes: the
// queue's own account (its URL's path is /ACCOUNT/NAME; the Terraform module
// puts the rules and the queue in one account) and fleetd's region.
func queueOrigin(queueURL, region string) (events.Origin, error) {
	u, err := url.Parse(queueURL)
	if err != nil {
		return events.Origin{}, fmt.Errorf("events.queue_url %q: %w", queueURL, err)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || len(parts[0]) != 12 || strings.Trim(parts[0], "0123456789") != "" {
		return events.Origin{}, fmt.Errorf("events.queue_url %q: want https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, whose 12-digit account is the only one whose events fleetd believes", queueURL)
	}
	if region == "" {
		return events.Origin{}, fmt.Errorf("no AWS region: set aws.region so that fleetd believes only its own region's events")
	}
	return events.Origin{Account: parts[0], Region: region}, nil
}

// members says which instance ids are brokers of this cluster, in one
// filtered lookup.
func (d *Daemon) members(ctx context.Context, ids []string) (map[string]bool, error) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	found, err := d.aws.provider.LookupMany(lctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(found))
	for id := range found {
		out[id] = true
	}
	return out, nil
}

// handleEvent is the policy: what an event means for the queue. nil means
// dealt with (the message may be deleted); an error, try again later.
func (d *Daemon) handleEvent(ctx context.Context, ev events.Event) error {
	log := d.log.With().Str("event", ev.ID).Str("kind", string(ev.Kind)).Str("instance", ev.InstanceID).Str("source", ev.Source).Logger()
	if ev.Kind == events.KindUnknown {
		log.Info().Str("description", ev.Description).Msg("event of no interest to fleetd")
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	inst, ok, err := d.aws.provider.Lookup(lctx, ev.InstanceID)
	if err != nil {
		return err
	}
	if !ok {
		log.Info().Msg("event for an instance that is not a broker of this cluster; ignored")
		return nil
	}
	// Counted once known to be about this cluster: a flood of other
	// instances' events must not move fleetd's metrics.
	d.metrics.Event(string(ev.Kind))
	log = log.With().Int32("broker", inst.NodeID).Logger()
	if ev.Kind == events.KindInstanceLost && !lostState(inst.State) {
		log.Warn().Str("said", ev.State).Str("state", string(inst.State)).
			Msg("an event says the instance is lost but EC2 says it is not; not believed, nothing queued")
		return nil
	}
	if !slices.Contains(d.cfg.Events.ReplaceOn, string(ev.Kind)) {
		log.Warn().Time("not_before", ev.NotBefore).Str("description", ev.Description).Msg("event logged only (not in events.replace_on)")
		return nil
	}
	if ev.Kind == events.KindInstanceLost {
		if own, err := d.ownInstance(ctx, ev.InstanceID); err != nil {
			return err
		} else if own != "" {
			log.Info().Str("replacement", own).Msg("state change caused by fleetd's own replacement; nothing to do")
			return nil
		}
	}
	now := time.Now()
	req := controller.Request{Broker: inst.NodeID, Triggers: []string{string(ev.Kind)}}
	switch {
	case ev.Kind == events.KindInstanceLost:
		req.Emergency, req.Strategy, req.Instance = true, replace.StrategyIdentity, ev.InstanceID
	default:
		req.Deadline = ev.NotBefore
		req.NotBefore = startAt(d.chaos.Window, now, req.Deadline, d.cfg.Events.LeadTime)
	}
	cst, err := d.ctl.Status(ctx)
	if err != nil {
		return err
	}
	if !cst.LeaseHeld {
		return fmt.Errorf("standby: the active fleetd handles events")
	}
	q, err := d.ctl.Submit(ctx, req)
	if err != nil {
		return err
	}
	log.Warn().Str("request", q.ID).Time("deadline", req.Deadline).Time("not_before", req.NotBefore).Bool("emergency", req.Emergency).Msg("replacement queued for an AWS event")
	return nil
}

// lostState: an instance in this state no longer serves.
func lostState(s replace.InstanceState) bool {
	switch s {
	case replace.StateStopping, replace.StateStopped, replace.StateShuttingDown, replace.StateTerminated:
		return true
	}
	return false
}

// startAt is when a scheduled event's replacement may start: now inside the
// maintenance window; otherwise when the window next opens, unless that is
// less than lead before the deadline (AWS acts first), then now. A zero
// result means now.
func startAt(w schedule.Window, now, deadline time.Time, lead time.Duration) time.Time {
	next := w.Next(now)
	if next.IsZero() || !next.After(now) {
		return time.Time{}
	}
	if !deadline.IsZero() && deadline.Sub(next) < lead {
		return time.Time{}
	}
	return next
}

// ownInstance names the replacement that stops or removes instance id
// ("" if none): fleetd's own stop-old and terminate-old steps, and a rolled
// back launch, cause state changes that are no loss.
func (d *Daemon) ownInstance(ctx context.Context, id string) (string, error) {
	recs, err := d.store.List(ctx)
	if err != nil {
		return "", err
	}
	for _, r := range recs {
		if r.OldInstance == id || (r.NewInstance == id && r.Phase != replace.PhaseCompleted) {
			return r.ID, nil
		}
	}
	return "", nil
}

// runDrift queues one broker on an outdated AMI at a time.
func (d *Daemon) runDrift(ctx context.Context) {
	t := time.NewTicker(d.cfg.AMIDrift.Interval)
	defer t.Stop()
	for {
		if d.active.Load() {
			if err := d.driftOnce(ctx, time.Now()); err != nil && ctx.Err() == nil {
				d.log.Warn().Err(err).Msg("AMI drift check failed; retrying at the next interval")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Daemon) driftOnce(ctx context.Context, now time.Time) error {
	if !d.chaos.Window.Contains(now) {
		return nil
	}
	if last := d.lastDisruption(ctx); !last.IsZero() && now.Sub(last) < d.cfg.Chaos.MinInterval {
		return nil
	}
	cst, err := d.ctl.Status(ctx)
	if err != nil || cst.Running != nil || len(cst.Queue) > 0 || cst.Paused {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	newest, err := d.aws.provider.NewestImageID(cctx)
	if err != nil {
		return err
	}
	insts, err := d.aws.provider.Instances(cctx)
	if err != nil {
		return err
	}
	for _, in := range insts { // oldest first
		if in.State == replace.StateRunning && in.Image != newest {
			q, err := d.ctl.Submit(ctx, controller.Request{Broker: in.NodeID, Strategy: replace.StrategyMove, Triggers: []string{"ami-drift"}})
			if err == nil {
				d.log.Info().Int32("broker", in.NodeID).Str("instance", in.ID).Str("image", in.Image).Str("newest", newest).Str("request", q.ID).Msg("AMI drift: replacement queued")
			}
			return err
		}
	}
	return nil
}
