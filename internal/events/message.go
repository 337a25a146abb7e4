package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// envelope is EventBridge's event envelope, the body of every SQS message a
// rule targets at fleetd's queue.
type envelope struct {
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Region     string          `json:"region"`
	Time       time.Time       `json:"time"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Origin is where fleetd's own events come from: the AWS account and region
// whose EventBridge rules feed its queue. Anything else on the queue was
// sent by someone who can write to it, and is not believed.
type Origin struct {
	Account string
	Region  string
}

// NotOursError is a well-formed message that fleetd must not act on: another
// account or region, or a source that does not match its detail-type (a
// forgery). The message is deleted and logged, never retried or dead-lettered.
type NotOursError struct{ Reason string }

func (e *NotOursError) Error() string { return "not ours: " + e.Reason }

// IsNotOurs reports whether err says a message is not fleetd's to act on.
func IsNotOurs(err error) bool {
	var n *NotOursError
	return errors.As(err, &n)
}

// sources are the only sources AWS itself gives each detail-type fleetd acts
// on. EventBridge sets source from the caller for custom events, but no
// caller may use an aws.* source, so a match is AWS's word.
var sources = map[string]string{
	"AWS Health Event":                       "aws.health",
	"EC2 Instance State-change Notification": "aws.ec2",
}

// Parse reads one SQS message body. An error means the message is malformed
// (it is left on the queue for the dead-letter redrive), or, as a
// *NotOursError, that it comes from another account or region or carries a
// source its detail-type never has (it is deleted). A well-formed message of
// ours about something fleetd does not handle returns events of KindUnknown.
// A zero origin accepts any account and region (tests of the shapes only).
func Parse(body []byte, now time.Time, origin Origin) ([]Event, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("not an EventBridge event: %w", err)
	}
	if env.ID == "" || env.DetailType == "" || len(env.Detail) == 0 {
		return nil, fmt.Errorf("not an EventBridge event: id, detail-type or detail missing")
	}
	if origin.Account != "" && env.Account != origin.Account {
		return nil, &NotOursError{fmt.Sprintf("event %s from account %q, fleetd's is %q", env.ID, env.Account, origin.Account)}
	}
	if origin.Region != "" && env.Region != origin.Region {
		return nil, &NotOursError{fmt.Sprintf("event %s from region %q, fleetd's is %q", env.ID, env.Region, origin.Region)}
	}
	if want, ok := sources[env.DetailType]; ok && env.Source != want {
		return nil, &NotOursError{fmt.Sprintf("event %s is a %q with source %q: AWS sends those only as %q", env.ID, env.DetailType, env.Source, want)}
	}
	switch env.DetailType {
	case "AWS Health Event":
		return parseHealth(env, now)
	case "EC2 Instance State-change Notification":
		return parseStateChange(env, now)
	default:
		return []Event{{ID: "other/" + env.ID, Kind: KindUnknown, Source: env.Source, Description: env.DetailType, Seen: now}}, nil
	}
}
