package events

import (
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/rs/zerolog"
)

// SQSAPI is the part of the SQS client the consumer uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

// Consumer reads EventBridge events from an SQS queue with long polling.
// A message is deleted only once every event in it was dispatched; a
// malformed one is logged with its id and left for the queue's redrive
// policy to move to the dead-letter queue. Nothing stops the loop but ctx.
type Consumer struct {
	API      SQSAPI
	QueueURL string
	// Wait is the long-poll wait (default and maximum 20 s).
	Wait       time.Duration
	Dispatcher *Dispatcher
	// Origin is the account and region fleetd's own events come from;
	// messages from elsewhere are deleted unread (see Parse).
	Origin Origin
	// Members, if set, says which instance ids are brokers of this cluster,
	// in one filtered lookup per message. Events about other instances are
	// dropped before they are dispatched, remembered or counted.
	Members func(ctx context.Context, ids []string) (map[string]bool, error)
	Log     zerolog.Logger
	// Active, if set, gates receiving: a standby leaves the messages to the
	// active fleetd.
	Active func() bool
	// OnMessage, if set, sees each message's outcome (metrics, tests):
	// "deleted", "not-ours", "malformed" or "retry".
	OnMessage func(id, outcome string)
}

// Run consumes until ctx ends.
func (c *Consumer) Run(ctx context.Context) {
	wait := c.Wait
	if wait <= 0 || wait > 20*time.Second {
		wait = 20 * time.Second
	}
	backoff := time.Second
	for ctx.Err() == nil {
		if c.Active != nil && !c.Active() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		out, err := c.API.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(c.QueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: int32(wait / time.Second),
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.Log.Warn().Err(err).Str("queue", c.QueueURL).Float64("retry_in_seconds", backoff.Seconds()).Msg("cannot receive from the event queue")
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
		for _, m := range out.Messages {
			c.handle(ctx, aws.ToString(m.MessageId), aws.ToString(m.Body), aws.ToString(m.ReceiptHandle))
		}
	}
}

func (c *Consumer) outcome(id, o string) {
	if c.OnMessage != nil {
		c.OnMessage(id, o)
	}
}

func (c *Consumer) handle(ctx context.Context, id, body, receipt string) {
	evs, err := Parse([]byte(body), time.Now(), c.Origin)
	switch {
	case IsNotOurs(err):
		c.Log.Warn().Str("sqs_message", id).Str("reason", err.Error()).Msg("message not ours: deleted without acting on it")
		c.delete(ctx, id, receipt, "not-ours")
		return
	case err != nil:
		c.Log.Error().Err(err).Str("sqs_message", id).Int("bytes", len(body)).Msg("malformed event message left on the queue for its dead-letter redrive")
		c.outcome(id, "malformed")
		return
	}
	evs, err = c.members(ctx, evs)
	if err != nil {
		c.Log.Warn().Err(err).Str("sqs_message", id).Msg("cannot tell which instances are this cluster's; the message stays and comes back")
		c.outcome(id, "retry")
		return
	}
	for _, ev := range evs {
		if err := c.Dispatcher.Dispatch(ctx, ev); err != nil {
			c.Log.Warn().Err(err).Str("sqs_message", id).Str("event", ev.ID).Msg("event not handled; the message stays and comes back")
			c.outcome(id, "retry")
			return
		}
	}
	c.delete(ctx, id, receipt, "deleted")
}

func (c *Consumer) delete(ctx context.Context, id, receipt, outcome string) {
	if _, err := c.API.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(c.QueueURL), ReceiptHandle: aws.String(receipt)}); err != nil {
		// Handled but not deleted: it comes back and is a duplicate then.
		c.Log.Warn().Err(err).Str("sqs_message", id).Msg("cannot delete a handled message")
		c.outcome(id, "retry")
		return
	}
	c.outcome(id, outcome)
}

// members keeps the events about this cluster's instances (and those that
// name none), with one lookup for the whole message.
func (c *Consumer) members(ctx context.Context, evs []Event) ([]Event, error) {
	return keepMembers(ctx, c.Members, evs, c.Log)
}

// keepMembers drops the events about instances that members says are not
// this cluster's, asking once for all of evs' instances. A nil members keeps
// everything.
func keepMembers(ctx context.Context, members func(context.Context, []string) (map[string]bool, error), evs []Event, log zerolog.Logger) ([]Event, error) {
	if members == nil {
		return evs, nil
	}
	var ids []string
	for _, ev := range evs {
		if ev.InstanceID != "" && !slices.Contains(ids, ev.InstanceID) {
			ids = append(ids, ev.InstanceID)
		}
	}
	if len(ids) == 0 {
		return evs, nil
	}
	ours, err := members(ctx, ids)
	if err != nil {
		return nil, err
	}
	kept := slices.DeleteFunc(slices.Clone(evs), func(ev Event) bool { return ev.InstanceID != "" && !ours[ev.InstanceID] })
	if n := len(evs) - len(kept); n > 0 {
		log.Info().Int("events", n).Int("instances", len(ids)-len(ours)).Str("first", evs[0].ID).
			Msg("events for instances that are not a broker of this cluster; ignored")
	}
	return kept, nil
}
