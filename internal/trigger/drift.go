package trigger

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/schedule"
)

// Images names the newest image the fleet should run.
type Images interface {
	NewestImageID(ctx context.Context) (string, error)
}

// Drift queues one broker on an outdated AMI at a time, inside the
// maintenance window and at least MinInterval after the last disruption.
type Drift struct {
	Ctl         Controller
	Fleet       Fleet
	Images      Images
	Records     Records
	Window      schedule.Window
	MinInterval time.Duration
	Log         zerolog.Logger
}

// Run checks every interval while active says this process may act.
func (d *Drift) Run(ctx context.Context, interval time.Duration, active func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if active() {
			if err := d.Once(ctx, time.Now()); err != nil && ctx.Err() == nil {
				d.Log.Warn().Err(err).Msg("AMI drift check failed; retrying at the next interval")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once queues the oldest node (broker or controller: one AMI serves both)
// whose image is not the newest, if the time
// is right and nothing else is running, queued or paused.
func (d *Drift) Once(ctx context.Context, now time.Time) error {
	if !d.Window.Contains(now) {
		return nil
	}
	if last := LastDisruption(ctx, d.Records, now); !last.IsZero() && now.Sub(last) < d.MinInterval {
		return nil
	}
	cst, err := d.Ctl.Status(ctx)
	if err != nil || cst.Running != nil || len(cst.Queue) > 0 || cst.Paused || !cst.LeaseHeld {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	newest, err := d.Images.NewestImageID(cctx)
	if err != nil {
		return err
	}
	insts, err := d.Fleet.Instances(cctx)
	if err != nil {
		return err
	}
	for _, in := range insts { // oldest first
		if in.State == replace.StateRunning && in.Image != newest {
			sub, err := d.Ctl.Submit(ctx, controller.Request{Broker: in.NodeID, Strategy: StrategyFor(in, replace.StrategyMove), Triggers: []replace.Trigger{replace.TriggerAMIDrift}})
			if err == nil {
				d.Log.Info().Int32("node", in.NodeID).Str("role", string(replace.RoleOf(in))).Str("instance", in.ID).Str("image", in.Image).Str("newest", newest).
					Str("request", sub.Request.ID).Str("outcome", string(sub.Outcome)).Msg("AMI drift: replacement requested")
			}
			return err
		}
	}
	return nil
}
