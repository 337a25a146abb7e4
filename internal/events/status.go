package events

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/rs/zerolog"
)

// StatusAPI is the EC2 call the poller makes.
type StatusAPI interface {
	DescribeInstanceStatus(ctx context.Context, in *ec2.DescribeInstanceStatusInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
}

// ScheduledCodes are the EC2 scheduled event codes fleetd asks about.
var ScheduledCodes = []string{"instance-retirement", "instance-stop", "system-maintenance", "system-reboot", "instance-reboot"}

// Scheduled lists the account's scheduled instance events with one
// paginated DescribeInstanceStatus call (filtered by event code, so only
// instances with events come back; the Handler keeps its fleet's). A
// response item looks like this (ec2query XML, as the SDK reads it):
//
//	<item>
//	  <instanceId>i-0abc1111def222333</instanceId>
//	  <availabilityZone>us-east-1a</availabilityZone>
//	  <instanceState><code>16</code><name>running</name></instanceState>
//	  <eventsSet><item>
//	    <instanceEventId>instance-event-0d59937288b749b32</instanceEventId>
//	    <code>instance-retirement</code>
//	    <description>The instance is running on degraded hardware</description>
//	    <notBefore>2026-12-05T15:00:00.000Z</notBefore>
//	  </item></eventsSet>
//	</item>
//
// Events whose description starts with [Completed] or [Canceled] are over.
func Scheduled(ctx context.Context, api StatusAPI, now time.Time) ([]Event, error) {
	in := &ec2.DescribeInstanceStatusInput{
		IncludeAllInstances: aws.Bool(true),
		Filters:             []types.Filter{{Name: aws.String("event.code"), Values: ScheduledCodes}},
	}
	var out []Event
	pg := ec2.NewDescribeInstanceStatusPaginator(api, in)
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, st := range page.InstanceStatuses {
			for _, e := range st.Events {
				desc := aws.ToString(e.Description)
				if strings.HasPrefix(desc, "[Completed]") || strings.HasPrefix(desc, "[Canceled]") {
					continue
				}
				out = append(out, Event{
					ID: "scheduled/" + aws.ToString(e.InstanceEventId), Kind: kindOfCode(string(e.Code)), InstanceID: aws.ToString(st.InstanceId),
					NotBefore: aws.ToTime(e.NotBefore), NotAfter: aws.ToTime(e.NotAfter), Source: "describe-instance-status", Description: desc, Seen: now,
				})
			}
		}
	}
	return out, nil
}

// PollScheduled asks every interval and dispatches what it finds until ctx
// ends. A failed call is logged and retried at the next interval.
// Only while active() (the lease holder) does it ask.
func PollScheduled(ctx context.Context, api StatusAPI, interval time.Duration, d *Dispatcher, members func(context.Context, []string) (map[string]bool, error), log zerolog.Logger, active func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var evs []Event
		var err error
		if active() {
			// The account's events, of every instance: only this cluster's
			// go on, with one lookup for all of them.
			if evs, err = Scheduled(ctx, api, time.Now()); err == nil {
				evs, err = keepMembers(ctx, members, evs, log)
			}
		}
		if err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("DescribeInstanceStatus failed; retrying at the next poll")
		}
		for _, ev := range evs {
			if err := d.Dispatch(ctx, ev); err != nil && ctx.Err() == nil {
				log.Warn().Err(err).Str("event", ev.ID).Str("instance", ev.InstanceID).Msg("scheduled event not handled; retrying at the next poll")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
