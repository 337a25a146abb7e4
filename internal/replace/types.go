package replace

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/fleetd/fleetd/internal/health"
)

// InstanceState is an instance's lifecycle state, as EC2 names them.
type InstanceState string

const (
	StatePending      InstanceState = "pending"
	StateRunning      InstanceState = "running"
	StateStopping     InstanceState = "stopping"
	StateStopped      InstanceState = "stopped"
	StateShuttingDown InstanceState = "shutting-down"
	StateTerminated   InstanceState = "terminated"
)

// Role is what a node runs as (process.roles).
type Role string

const (
	RoleBroker     Role = "broker"
	RoleController Role = "controller"
)

// Instance is the machine a broker or a KRaft controller runs on.
type Instance struct {
	ID     string `json:"id"`
	NodeID int32  `json:"node_id"`
	// Role is the node's role ("" is read as broker: instances tagged before
	// roles were).
	Role Role `json:"role,omitempty"`
	// Endpoint is a controller's listener, host:port (the provider knows
	// the address; Kafka learns it from AddRaftVoter).
	Endpoint string `json:"endpoint,omitempty"`
	Zone     string `json:"zone"` // availability zone, which is the broker's rack
	// Subnet is where the instance runs (EC2); a replacement goes in the same.
	Subnet string        `json:"subnet,omitempty"`
	State  InstanceState `json:"state"`
	Image  string        `json:"image,omitempty"`
	// ImageCreated is when the AMI was made (EC2; zero when unknown), so
	// that an old image is seen beside the node.
	ImageCreated time.Time `json:"image_created,omitzero"`
	// Type is the instance type (EC2), shown beside the node.
	Type       string            `json:"type,omitempty"`
	LaunchedAt time.Time         `json:"launched_at"`
	Tags       map[string]string `json:"tags,omitempty"`
}

// IsController reports whether the instance runs a KRaft controller.
func (in Instance) IsController() bool { return in.Role == RoleController }

// RoleOf is in's role, broker when it carries none.
func RoleOf(in Instance) Role {
	if in.Role == "" {
		return RoleBroker
	}
	return in.Role
}

// LaunchRequest asks for a node like Like (same zone and role), with NodeID.
type LaunchRequest struct {
	// Token makes the launch idempotent: a repeated request with the same
	// token returns the instance the first one started, never a second one.
	Token         string
	Like          Instance
	NodeID        int32
	ReplacementID string
}

// Role is the role the new node takes: the one it replaces.
func (r LaunchRequest) Role() Role { return RoleOf(r.Like) }

// Provider is what a replacement needs from the infrastructure. Launch may
// return before the broker runs (EC2 is asynchronous): the executor waits for
// the broker to register with Kafka, which is the only readiness that counts.
// Every method may fail transiently and is retried.
type Provider interface {
	// Instances lists the cluster's broker instances that are not terminated.
	Instances(ctx context.Context) ([]Instance, error)
	Launch(ctx context.Context, req LaunchRequest) (Instance, error)
	// Stop shuts the broker down gracefully (Kafka's controlled shutdown).
	Stop(ctx context.Context, instanceID string) error
	// Terminate destroys the instance and its instance-store data.
	Terminate(ctx context.Context, instanceID string) error
}

// InstanceLookup is an optional Provider method: find an instance of the
// cluster by id in any state, terminated included (ok false: not the
// cluster's). The EC2 provider has it.
type InstanceLookup interface {
	Lookup(ctx context.Context, id string) (Instance, bool, error)
}

// ErrNotFound is returned by a Store for an unknown record.
var ErrNotFound = errors.New("replacement record not found")

// Store keeps replacement records durably: Save returns only once the record
// would survive a crash.
type Store interface {
	Save(ctx context.Context, r *Record) error
	Load(ctx context.Context, id string) (*Record, error)
	List(ctx context.Context) ([]*Record, error)
}

// Strategy is how a broker is replaced.
type Strategy string

const (
	// StrategyMove (make-before-break): a new node id takes over the old
	// broker's replicas 1:1 by reassignment; redundancy never drops.
	StrategyMove Strategy = "move"
	// StrategyIdentity (break-before-make): for a dead broker; a new instance
	// takes the old node id with an empty disk and Kafka re-replicates.
	StrategyIdentity Strategy = "identity"
	// StrategyController replaces a KRaft controller of a dynamic quorum: a
	// new controller joins as an observer, is added as a voter, and the old
	// one is removed, one voter change at a time (controller.go).
	StrategyController Strategy = "controller"
)

// Phase is where a replacement stands overall.
type Phase string

const (
	PhaseRunning     Phase = "running"
	PhaseRollingBack Phase = "rolling-back"
	PhaseCompleted   Phase = "completed"
	PhaseRolledBack  Phase = "rolled-back"
	// PhaseFailed: neither finished nor rolled back cleanly; a person must look.
	PhaseFailed Phase = "failed"
	// PhaseRefused: the gate refused before anything was changed.
	PhaseRefused Phase = "refused"
)

// Terminal reports whether nothing more will happen to a record in phase p.
func (p Phase) Terminal() bool {
	return p == PhaseCompleted || p == PhaseRolledBack || p == PhaseFailed || p == PhaseRefused
}

// Step names one idempotent step.
type Step string

const (
	StepGate          Step = "gate"
	StepPlan          Step = "plan"
	StepLaunch        Step = "launch"
	StepAwaitRegister Step = "await-registration"
	StepThrottle      Step = "throttle"
	StepThrottleNew   Step = "throttle-new"
	StepMove          Step = "move"
	StepElectLeaders  Step = "elect-leaders"
	StepUnthrottle    Step = "unthrottle"
	StepVerifyEmpty   Step = "verify-empty"
	StepStopOld       Step = "stop-old"
	StepTerminateOld  Step = "terminate-old"
	StepUnregisterOld Step = "unregister-old"
	StepCordon        Step = "cordon-old"
	StepUncordonOld   Step = "uncordon-old"
	StepUncordon      Step = "rollback-uncordon"
	StepAwaitInSync   Step = "await-in-sync"
	StepReorder       Step = "reorder"
	StepDemoteOld     Step = "demote-old"
	StepDone          Step = "done"
	StepCancelMoves   Step = "rollback-cancel"
	StepMoveBack      Step = "rollback-move-back"
	StepRollbackUnthr Step = "rollback-unthrottle"
	StepRemoveNew     Step = "rollback-remove-new"
	StepRolledBack    Step = "rolled-back"

	// The controller workflow's own steps.
	StepAwaitObserver  Step = "await-observer"
	StepAddVoter       Step = "add-voter"
	StepAwaitVoter     Step = "await-voter"
	StepRemoveOldVoter Step = "remove-old-voter"
	StepAwaitVoters    Step = "await-voters"
	StepRemoveNewVoter Step = "rollback-remove-new-voter"
)

// StepTiming records when a step ran.
type StepTiming struct {
	Step    Step      `json:"step"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
}

// Duration is how long the step took (0 while running).
func (t StepTiming) Duration() time.Duration {
	if t.Ended.IsZero() {
		return 0
	}
	return t.Ended.Sub(t.Started)
}

// ConfigKind is the kind of resource a throttle config lives on.
type ConfigKind string

const (
	BrokerConfig ConfigKind = "broker"
	TopicConfig  ConfigKind = "topic"
)

// ConfigKey names one dynamic config entry.
type ConfigKey struct {
	Kind     ConfigKind `json:"kind"`
	Resource string     `json:"resource"` // broker id or topic name
	Name     string     `json:"name"`
}

// ThrottleEntry is one config fleetd set, with what it replaced, so that
// removing it restores the operator's own setting instead of deleting it.
type ThrottleEntry struct {
	Key      ConfigKey `json:"key"`
	Value    string    `json:"value"`
	Previous *string   `json:"previous"`
}

// Trigger names who asked for a replacement: operator, chaos, ami-drift, or
// an AWS event's kind (instance-retirement, instance-lost, ...).
type Trigger string

const (
	TriggerOperator Trigger = "operator"
	TriggerChaos    Trigger = "chaos"
	TriggerAMIDrift Trigger = "ami-drift"
	TriggerDemo     Trigger = "demo"
	TriggerBench    Trigger = "bench"
)

func triggersOr(ts []Trigger) []Trigger {
	if len(ts) == 0 {
		return []Trigger{TriggerOperator}
	}
	return slices.Clone(ts)
}

// Record is the durable state of one replacement.
type Record struct {
	ID string `json:"id"`
	// Triggers say who asked (a merged request keeps every asker).
	Triggers []Trigger `json:"triggers"`
	// LegacyTrigger is how records written before triggers were a list
	// said it ("a,b"); the store reads it into Triggers.
	LegacyTrigger string   `json:"trigger,omitempty"`
	Strategy      Strategy `json:"strategy"`
	// Throttle, Concurrency and Order are what this replacement runs with
	// (the request's, else the executor's); a throttle change is recorded
	// here before it is applied. Reason is the operator's free text.
	Throttle Throttle `json:"throttle,omitzero"`
	// Adaptive, if set, adapts Throttle within its bounds (adapt.go);
	// each change is recorded before it is set.
	Adaptive    *Adaptive `json:"adaptive,omitempty"`
	Concurrency int       `json:"concurrency,omitempty"`
	Order       Order     `json:"order,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	// RequestID is the daemon's queued request this record serves.
	RequestID string `json:"request_id,omitempty"`
	// Deadline is when the old instance goes away (the request's);
	// DeadlineDecision what the gate made of it (DeadlinePolicy).
	Deadline         time.Time `json:"deadline,omitzero"`
	DeadlineDecision string    `json:"deadline_decision,omitempty"`
	// OldBroker is the node id being replaced; NewBroker the node id taking
	// over (equal for the identity strategy). For the controller strategy
	// they are controllers' node ids.
	OldBroker   int32  `json:"old_broker"`
	NewBroker   int32  `json:"new_broker"`
	OldInstance string `json:"old_instance,omitempty"`
	NewInstance string `json:"new_instance,omitempty"`
	Zone        string `json:"zone,omitempty"`
	// Like is the old broker's instance as it was at the gate; the new one is
	// launched like it (same zone), even after the old one is gone.
	Like Instance `json:"like"`
	// OldDead: the old broker was already gone when the replacement began (an
	// emergency: the gate excuses it, and the log says so).
	OldDead bool `json:"old_dead,omitempty"`
	// Lost are the old broker's partitions whose every in-sync replica was on
	// dead brokers at the gate: their data is gone, and no plan brings it back.
	Lost []health.TP `json:"lost,omitempty"`

	// OldStopped: fleetd has begun retiring the old node: stopping or
	// terminating it, or removing it from the voters (recorded before the
	// act). Until then an identity replacement has changed nothing and a
	// controller replacement can roll back.
	OldStopped bool `json:"old_stopped,omitempty"`

	// The controller strategy's state. OldDirectory and NewDirectory are
	// the voters' directory ids, NewEndpoint the new controller's listener
	// (NAME://host:port), Voters the voter set at the gate. VoterAdded is
	// recorded before AddRaftVoter is sent, so that a rollback knows the new
	// node may be a voter.
	OldDirectory string  `json:"old_directory,omitempty"`
	NewDirectory string  `json:"new_directory,omitempty"`
	NewEndpoint  string  `json:"new_endpoint,omitempty"`
	Voters       []int32 `json:"voters,omitempty"`
	VoterAdded   bool    `json:"voter_added,omitempty"`
	// Waiting says why the workflow is waiting (the blast-radius guard
	// refuses its next act), since WaitingSince; empty when it is not.
	Waiting      string    `json:"waiting,omitempty"`
	WaitingSince time.Time `json:"waiting_since,omitzero"`

	Phase Phase `json:"phase"`
	Step  Step  `json:"step"`
	Plan  *Plan `json:"plan,omitempty"`
	// MoveCursor counts the plan's moves submitted (recorded before they
	// are): a resumed move continues the window from here, and finds the
	// submitted ones' state in the cluster. MovesDone counts the moves
	// verified done when the record was last saved.
	MoveCursor int `json:"move_cursor,omitempty"`
	MovesDone  int `json:"moves_done,omitempty"`
	// CopiedAt is when every new replica was in sync (leaders move to them
	// a settle time later).
	CopiedAt time.Time `json:"copied_at,omitzero"`
	// LegacyBatchesDone: records written before moves streamed (read only).
	LegacyBatchesDone int `json:"batches_done,omitempty"`
	// Throttles are exactly the configs fleetd set (recorded before setting).
	Throttles        []ThrottleEntry `json:"throttles,omitempty"`
	ThrottlesRemoved bool            `json:"throttles_removed,omitempty"`
	// Cordon is the old broker's cordon (KIP-1066) fleetd set, recorded
	// with what it replaced before it is set; CordonSkipped says why a
	// move went without one.
	Cordon        *ThrottleEntry `json:"cordon,omitempty"`
	CordonRemoved bool           `json:"cordon_removed,omitempty"`
	CordonSkipped string         `json:"cordon_skipped,omitempty"`

	// Canary is the canary's verdict on this workflow (nil: no canary ran).
	Canary *CanaryVerdict `json:"canary,omitempty"`

	// Attempts counts the gate's refusals of this record's request (a
	// refused request is retried by reopening its one record).
	Attempts int `json:"attempts,omitempty"`
	// Refusals are the gate's blocker codes when the phase is refused.
	Refusals       []health.Code `json:"refusals,omitempty"`
	AbortRequested string        `json:"abort_requested,omitempty"`
	Error          string        `json:"error,omitempty"`
	Steps          []StepTiming  `json:"steps,omitempty"`
	BytesMoved     int64         `json:"bytes_moved"`
	Created        time.Time     `json:"created"`
	Updated        time.Time     `json:"updated"`
	Finished       time.Time     `json:"finished,omitzero"`
}

// TriggerList is r's triggers for display ("chaos,operator").
func (r *Record) TriggerList() string { return JoinTriggers(r.Triggers) }

// OutcomeAborted is the outcome of a replacement an operator aborted and
// fleetd rolled back: not a failure.
const OutcomeAborted = "aborted"

// Outcome is how r ended, as metrics, traces and notifications name it: its
// phase, except that a rollback an operator asked for is "aborted".
func (r *Record) Outcome() string {
	if r.Phase == PhaseRolledBack && r.AbortRequested != "" {
		return OutcomeAborted
	}
	return string(r.Phase)
}

// JoinTriggers is triggers for display: "a,b".
func JoinTriggers(ts []Trigger) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ",")
}

// Own lists the partitions whose reassignments this replacement starts, for
// the gate's policy.
func (r *Record) Own() map[health.TP]bool {
	own := map[health.TP]bool{}
	if r.Plan != nil {
		for _, m := range r.Plan.Moves {
			own[m.TP] = true
		}
	}
	return own
}
