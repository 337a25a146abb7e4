package events

import (
	"context"
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
	Log        zerolog.Logger
	// Active, if set, gates receiving: a standby leaves the messages to the
	// active fleetd.
	Active func() bool
	// OnMessage, if set, sees each message's outcome (metrics, tests):
	// "deleted", "malformed" or "retry".
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
			c.Log.Warn().Err(err).Str("queue", c.QueueURL).Dur("retry_in", backoff).Msg("cannot receive from the event queue")
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
	evs, err := Parse([]byte(body), time.Now())
	if err != nil {
		c.Log.Error().Err(err).Str("message", id).Int("bytes", len(body)).Msg("malformed event message left on the queue for its dead-letter redrive")
		c.outcome(id, "malformed")
		return
	}
	for _, ev := range evs {
		if err := c.Dispatcher.Dispatch(ctx, ev); err != nil {
			c.Log.Warn().Err(err).Str("message", id).Str("event", ev.ID).Msg("event not handled; the message stays and comes back")
			c.outcome(id, "retry")
			return
		}
	}
	if _, err := c.API.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(c.QueueURL), ReceiptHandle: aws.String(receipt)}); err != nil {
		// Handled but not deleted: it comes back and is a duplicate then.
		c.Log.Warn().Err(err).Str("message", id).Msg("cannot delete a handled message")
		c.outcome(id, "retry")
		return
	}
	c.outcome(id, "deleted")
}
