package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fleetd/fleetd/internal/atomicfile"
	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/schedule"
)

// ChaosDecision is one decided chaos slot, as the status shows it.
type ChaosDecision struct {
	schedule.Decision
	At time.Time `json:"at"`
	// Plan is the dry-run plan of a leashed decision.
	Plan      *replace.Record `json:"plan,omitempty"`
	PlanError string          `json:"plan_error,omitempty"`
}

// chaosState is kept in a file: the last decided slot (so a restart never
// decides a slot twice) and the latest decisions.
type chaosState struct {
	LastSlot  time.Time       `json:"last_slot,omitzero"`
	Decisions []ChaosDecision `json:"decisions"`
}

// Guard is what chaos asks the executor before it acts: the blast-radius
// verdict for a pick, and the plan a leashed decision records.
type Guard interface {
	WhatIf(ctx context.Context, nodes []int32) health.Verdict
	Preview(ctx context.Context, req replace.Request) (*replace.Record, error)
}

// Chaos runs the chaos schedule: each decided slot is recorded durably and,
// unless leashed, its pick is queued, once the blast-radius guard allows it.
type Chaos struct {
	Schedule *schedule.Chaos
	Ctl      Controller
	Fleet    Fleet
	// Images, if set, marks candidates on an outdated image (pick
	// outdated-image).
	Images  Images
	Records Records
	Guard   Guard
	// Controllers lets the schedule pick a KRaft controller too (opt-in),
	// at most once per ControllerMinInterval.
	Controllers           bool
	ControllerMinInterval time.Duration
	// Path is the state file.
	Path string
	// Counted sees each decision's outcome: skipped, leashed or fired.
	Counted func(outcome string)
	Log     zerolog.Logger

	mu    sync.Mutex
	state chaosState
}

// Load reads the state file (a missing file is a fresh start).
func (c *Chaos) Load() error {
	b, err := os.ReadFile(c.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(b, &c.state)
	}
	if err != nil {
		return fmt.Errorf("chaos state %s: %w (move it aside to start afresh; a slot may then be decided again)", c.Path, err)
	}
	return nil
}

// Run asks the schedule every interval while active says this process may
// act, until ctx ends.
func (c *Chaos) Run(ctx context.Context, interval time.Duration, active func() bool) {
	r := &schedule.Runner{
		Chaos:          c.Schedule,
		Interval:       interval,
		Candidates:     func() ([]schedule.Candidate, error) { return c.candidates(ctx) },
		LastDisruption: func() time.Time { return LastDisruption(ctx, c.Records, time.Now()) },
		Rand:           rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid()))),
		Active:         active,
		LastSlot:       c.LastSlot(),
	}
	r.Run(ctx, func(dec schedule.Decision) { c.Decided(ctx, dec) })
}

// LastSlot is the last decided slot.
func (c *Chaos) LastSlot() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.LastSlot
}

// Decisions are the latest decisions, newest first.
func (c *Chaos) Decisions() []ChaosDecision {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Decisions == nil {
		return []ChaosDecision{}
	}
	return slices.Clone(c.state.Decisions)
}

// candidates are the nodes the schedule may pick: running brokers, and
// running controllers when allowed and their own interval has passed.
func (c *Chaos) candidates(ctx context.Context) ([]schedule.Candidate, error) {
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	insts, err := c.Fleet.Instances(ictx)
	if err != nil {
		c.Log.Warn().Err(err).Msg("chaos: cannot list instances; the slot waits")
		return nil, err
	}
	newest := ""
	if c.Images != nil && c.Schedule.Pick == schedule.PickOutdatedImage {
		if newest, err = c.Images.NewestImageID(ictx); err != nil {
			return nil, err
		}
	}
	controllers := false
	if c.Controllers {
		now := time.Now()
		last := LastControllerChaos(ctx, c.Records, now)
		controllers = last.IsZero() || now.Sub(last) >= c.ControllerMinInterval
	}
	var out []schedule.Candidate
	for _, in := range insts {
		if in.State == replace.StateRunning && (!in.IsController() || controllers) {
			out = append(out, schedule.Candidate{NodeID: in.NodeID, InstanceID: in.ID, LaunchedAt: in.LaunchedAt,
				Outdated: newest != "" && in.Image != newest, Controller: in.IsController()})
		}
	}
	return out, nil
}

// chaosRequest is the request a pick makes.
func chaosRequest(dec schedule.Decision) replace.Request {
	st := replace.StrategyMove
	if dec.Broker.Controller {
		st = replace.StrategyController
	}
	return replace.Request{Broker: dec.Broker.NodeID, Strategy: st, Triggers: []replace.Trigger{replace.TriggerChaos}}
}

// guard asks, for a pick, what every act asks: the blast-radius guard for a
// broker; for a controller the controller workflow's own gate (a healthy,
// dynamic quorum), since a controller holds no partition.
func (c *Chaos) guard(ctx context.Context, dec schedule.Decision) (ok bool, why string) {
	if dec.Broker.Controller {
		rec, err := c.Guard.Preview(ctx, chaosRequest(dec))
		switch {
		case err != nil:
			return false, err.Error()
		case rec.Phase == replace.PhaseRefused:
			return false, rec.Error
		}
		return true, ""
	}
	v := c.Guard.WhatIf(ctx, []int32{dec.Broker.NodeID})
	return v.Safe, v.Summary()
}

// Decided records a decided slot and, unless leashed, queues the pick. The
// pick first passes the blast-radius guard: a chaos exercise must never be
// the act that hurts a partition.
func (c *Chaos) Decided(ctx context.Context, dec schedule.Decision) {
	role := "broker"
	if dec.Broker.Controller {
		role = "controller"
	}
	if dec.Fire {
		gctx, cancel := context.WithTimeout(ctx, time.Minute)
		ok, why := c.guard(gctx, dec)
		cancel()
		if !ok {
			dec.Fire, dec.Act = false, false
			dec.Reason = fmt.Sprintf("chaos pick of %s %d refused by the blast-radius guard: %s; slot skipped", role, dec.Broker.NodeID, why)
		}
	}
	entry := ChaosDecision{Decision: dec, At: time.Now()}
	log := c.Log.With().Time("slot", dec.Slot).Str("reason", dec.Reason).Logger()
	count := func(outcome string) {
		if c.Counted != nil {
			c.Counted(outcome)
		}
	}
	switch {
	case !dec.Fire:
		count("skipped")
		log.Info().Msg("chaos slot skipped")
	case !dec.Act:
		count("leashed")
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		plan, err := c.Guard.Preview(pctx, chaosRequest(dec))
		cancel()
		if err != nil {
			entry.PlanError = err.Error()
		} else {
			entry.Plan = plan
		}
		log.Info().Int32("node", dec.Broker.NodeID).Str("role", role).Str("instance", dec.Broker.InstanceID).Msg("chaos (leashed): would replace this node; plan recorded, nothing done")
	default:
		count("fired")
		req := chaosRequest(dec)
		sub, err := c.Ctl.Submit(ctx, controller.Request{Broker: req.Broker, Strategy: req.Strategy, Triggers: req.Triggers})
		if err != nil {
			log.Error().Err(err).Msg("chaos: could not queue the replacement")
		} else {
			log.Info().Int32("node", dec.Broker.NodeID).Str("role", role).Str("instance", dec.Broker.InstanceID).Str("request", sub.Request.ID).
				Str("outcome", string(sub.Outcome)).Msg("chaos: replacement requested")
		}
	}
	c.mu.Lock()
	c.state.LastSlot = dec.Slot
	c.state.Decisions = append([]ChaosDecision{entry}, c.state.Decisions...)
	if len(c.state.Decisions) > 20 {
		c.state.Decisions = c.state.Decisions[:20]
	}
	b, err := json.MarshalIndent(c.state, "", "  ")
	c.mu.Unlock()
	if err == nil {
		err = atomicfile.Write(c.Path, b, 0o640)
	}
	if err != nil {
		log.Error().Err(err).Msg("cannot save the chaos state; after a restart this slot could be decided again")
	}
}
