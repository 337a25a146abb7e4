package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// envelope is EventBridge's event envelope, the body of every SQS message a
// rule targets at fleetd's queue.
type envelope struct {
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Time       time.Time       `json:"time"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Parse reads one SQS message body. An error means the message is malformed
// (it is left on the queue for the dead-letter redrive); a well-formed
// message about something fleetd does not handle returns events of
// KindUnknown.
func Parse(body []byte, now time.Time) ([]Event, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("not an EventBridge event: %w", err)
	}
	if env.ID == "" || env.DetailType == "" || len(env.Detail) == 0 {
		return nil, fmt.Errorf("not an EventBridge event: id, detail-type or detail missing")
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
