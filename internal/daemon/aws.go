package daemon

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/fleetd/fleetd/internal/ec2"
	"github.com/fleetd/fleetd/internal/events"
	"github.com/fleetd/fleetd/internal/trigger"
)

// This file is the AWS side of the daemon: the EC2 provider and the event
// sources' wiring (their policy is trigger.Events).

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
		ControllerLaunchTemplate: e.ControllerLaunchTemplate, ControllerInstanceType: e.ControllerInstanceType, ControllerPort: e.ControllerPort,
	})
	if err != nil {
		return nil, err
	}
	return &awsParts{cfg: cfg, ec2: client, provider: p}, nil
}

// eventSources are the AWS event sources (the EventBridge queue, the
// DescribeInstanceStatus poll), each handing events to trigger.Events. They
// act only while this process holds the lease (a standby leaves messages
// for the active one).
func (d *Daemon) eventSources() ([]trigger.Source, error) {
	if d.aws == nil {
		return nil, nil
	}
	ev := d.cfg.Events
	if ev.QueueURL == "" && ev.PollInterval <= 0 {
		return nil, nil
	}
	policy := &trigger.Events{Ctl: d.ctl, Lookup: d.aws.provider, Records: d.store, ReplaceOn: ev.ReplaceOn,
		Window: d.chaos.Schedule.Window, LeadTime: ev.LeadTime, Log: d.log,
		Counted: func(k events.Kind) { d.metrics.Event(string(k)) }}
	d.dispatcher = &events.Dispatcher{Handler: policy.Handle, Path: filepath.Join(d.cfg.StateDir, eventsFile), Log: d.log}
	if err := d.dispatcher.Load(); err != nil {
		return nil, err
	}
	var out []trigger.Source
	if ev.QueueURL != "" {
		origin, err := queueOrigin(ev.QueueURL, d.aws.cfg.Region)
		if err != nil {
			return nil, err
		}
		c := &events.Consumer{API: sqs.NewFromConfig(d.aws.cfg), QueueURL: ev.QueueURL, Wait: ev.Wait, Dispatcher: d.dispatcher, Log: d.log,
			Origin: origin, Members: d.members,
			Active: d.active.Load, OnMessage: func(_, outcome string) { d.metrics.EventMessage(outcome) }}
		out = append(out, trigger.Source{Name: "eventbridge-queue", Run: c.Run})
	}
	if ev.PollInterval > 0 {
		out = append(out, trigger.Source{Name: "instance-status-poll", Run: func(ctx context.Context) {
			events.PollScheduled(ctx, d.aws.ec2, ev.PollInterval, d.dispatcher, d.members, d.log, d.active.Load)
		}})
	}
	return out, nil
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
