package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// An EC2 instance state change, as EventBridge delivers it (a rule matching
// source aws.ec2 and detail-type "EC2 Instance State-change Notification"):
//
//	{
//	  "version": "0",
//	  "id": "4e3b8c4a-9f0e-4e6a-8d0b-2f6c1d7e9a11",
//	  "detail-type": "EC2 Instance State-change Notification",
//	  "source": "aws.ec2",
//	  "account": "123456789012",
//	  "time": "2026-11-24T09:12:03Z",
//	  "region": "us-east-1",
//	  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1111def222333"],
//	  "detail": {"instance-id": "i-0abc1111def222333", "state": "terminated"}
//	}
//
// A broker going to stopping, stopped, shutting-down or terminated that
// fleetd did not ask for is lost; other states are of no interest.
type stateDetail struct {
	InstanceID string `json:"instance-id"`
	State      string `json:"state"`
}

func parseStateChange(env envelope, now time.Time) ([]Event, error) {
	var d stateDetail
	if err := json.Unmarshal(env.Detail, &d); err != nil {
		return nil, fmt.Errorf("state-change detail: %w", err)
	}
	if d.InstanceID == "" || d.State == "" {
		return nil, fmt.Errorf("state-change event without instance-id or state")
	}
	kind := KindUnknown
	if lostStates[d.State] {
		kind = KindInstanceLost
	}
	return []Event{{ID: "state-change/" + env.ID, Kind: kind, InstanceID: d.InstanceID, State: d.State, NotBefore: env.Time,
		Source: env.Source, Description: "instance is " + d.State, Seen: now}}, nil
}
