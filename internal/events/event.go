// Package events turns what AWS says about instances into fleetd's one
// event type: scheduled events from DescribeInstanceStatus, and EventBridge
// messages on an SQS queue (AWS Health scheduled changes, EC2 instance state
// changes). Each source's shape lives in its own file with a sample. The
// package decides nothing: the Handler (the daemon's policy) does.
package events

import (
	"strings"
	"time"
)

// Kind is what is going to happen, or has happened, to an instance. The
// scheduled kinds are EC2's own event codes.
type Kind string

const (
	KindRetirement        Kind = "instance-retirement"
	KindStop              Kind = "instance-stop"
	KindSystemMaintenance Kind = "system-maintenance"
	KindSystemReboot      Kind = "system-reboot"
	KindInstanceReboot    Kind = "instance-reboot"
	// KindInstanceLost: the instance is stopping, stopped, shutting down or
	// terminated without fleetd having asked: an emergency.
	KindInstanceLost Kind = "instance-lost"
	// KindUnknown is an event fleetd does not act on (logged).
	KindUnknown Kind = "unknown"
)

// AllKinds lists the kinds a policy may name.
var AllKinds = []Kind{KindRetirement, KindStop, KindSystemMaintenance, KindSystemReboot, KindInstanceReboot, KindInstanceLost}

// DefaultReplaceOn are the kinds that queue a replacement unless
// events.replace_on says otherwise: those after which the instance is gone.
var DefaultReplaceOn = []Kind{KindRetirement, KindStop, KindSystemMaintenance, KindInstanceLost}

// Event is one thing that happens to one instance.
type Event struct {
	// ID deduplicates: the same event seen twice (SQS delivers at least once;
	// a poll sees a scheduled event until it happens) has the same ID.
	ID         string    `json:"id"`
	Kind       Kind      `json:"kind"`
	InstanceID string    `json:"instance_id"`
	NotBefore  time.Time `json:"not_before,omitzero"` // when AWS will act (scheduled kinds)
	NotAfter   time.Time `json:"not_after,omitzero"`
	// State is the new state of a state change.
	State       string    `json:"state,omitempty"`
	Source      string    `json:"source"`
	Description string    `json:"description,omitempty"`
	Seen        time.Time `json:"seen"`
}

// kindOfCode maps an EC2 scheduled event code or an AWS Health event type
// code to a kind.
func kindOfCode(code string) Kind {
	c := strings.ToUpper(code)
	switch {
	case strings.Contains(c, "RETIREMENT"):
		return KindRetirement
	case strings.Contains(c, "INSTANCE-STOP"), strings.Contains(c, "INSTANCE_STOP"):
		return KindStop
	case strings.Contains(c, "SYSTEM-REBOOT"), strings.Contains(c, "SYSTEM_REBOOT"):
		return KindSystemReboot
	case strings.Contains(c, "INSTANCE-REBOOT"), strings.Contains(c, "INSTANCE_REBOOT"):
		return KindInstanceReboot
	case strings.Contains(c, "MAINTENANCE"):
		return KindSystemMaintenance
	}
	return KindUnknown
}

// lostStates are the states in which a broker no longer serves.
var lostStates = map[string]bool{"stopping": true, "stopped": true, "shutting-down": true, "terminated": true}
