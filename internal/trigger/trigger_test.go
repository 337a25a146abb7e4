package trigger

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/events"
	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/schedule"
)

// fakeCtl records submissions; standby refuses them as the controller does.
type fakeCtl struct {
	subs    []controller.Request
	standby bool
	status  controller.Status
}

func (f *fakeCtl) Submit(_ context.Context, r controller.Request) (controller.Submission, error) {
	if f.standby {
		return controller.Submission{}, &controller.NotActiveError{}
	}
	f.subs = append(f.subs, r)
	return controller.Submission{Request: r, Outcome: controller.Queued}, nil
}

func (f *fakeCtl) Status(context.Context) (controller.Status, error) { return f.status, nil }

type fleet struct{ insts []replace.Instance }

func (f *fleet) Instances(context.Context) ([]replace.Instance, error) { return f.insts, nil }
func (f *fleet) Lookup(_ context.Context, id string) (replace.Instance, bool, error) {
	for _, in := range f.insts {
		if in.ID == id {
			return in, true, nil
		}
	}
	return replace.Instance{}, false, nil
}
func (f *fleet) NewestImageID(context.Context) (string, error) { return "ami-new", nil }

type records []*replace.Record

func (r records) List(context.Context) ([]*replace.Record, error) { return r, nil }

func fleetOf() *fleet {
	return &fleet{insts: []replace.Instance{
		{ID: "i-1", NodeID: 1, State: replace.StateRunning, Image: "ami-old"},
		{ID: "i-2", NodeID: 2, State: replace.StateStopped, Image: "ami-new"},
		{ID: "i-3", NodeID: 3, State: replace.StateRunning, Image: "ami-new"},
	}}
}

func TestEventsPolicy(t *testing.T) {
	for _, c := range []struct {
		name    string
		ev      events.Event
		recs    records
		standby bool
		want    string // the submitted request, or "" for none
		wantErr bool
	}{
		{name: "unknown kind", ev: events.Event{Kind: events.KindUnknown, InstanceID: "i-1"}},
		{name: "not a broker", ev: events.Event{Kind: events.KindRetirement, InstanceID: "i-9"}},
		{name: "retirement", ev: events.Event{Kind: events.KindRetirement, InstanceID: "i-1"}, want: "1 instance-retirement false"},
		{name: "lost, and EC2 agrees", ev: events.Event{Kind: events.KindInstanceLost, InstanceID: "i-2"}, want: "2 instance-lost true"},
		{name: "lost, but EC2 says running", ev: events.Event{Kind: events.KindInstanceLost, InstanceID: "i-3"}},
		{name: "logged only", ev: events.Event{Kind: events.KindSystemReboot, InstanceID: "i-1"}},
		{name: "fleetd's own stop", ev: events.Event{Kind: events.KindInstanceLost, InstanceID: "i-2"},
			recs: records{{ID: "r-1", OldInstance: "i-2", Phase: replace.PhaseRunning}}},
		{name: "standby: retried later", ev: events.Event{Kind: events.KindRetirement, InstanceID: "i-1"}, standby: true, wantErr: true},
	} {
		ctl := &fakeCtl{standby: c.standby}
		h := &Events{Ctl: ctl, Lookup: fleetOf(), Records: c.recs, ReplaceOn: events.DefaultReplaceOn, Log: zerolog.Nop()}
		err := h.Handle(context.Background(), c.ev)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err %v", c.name, err)
		}
		got := ""
		if len(ctl.subs) == 1 {
			r := ctl.subs[0]
			got = strings.TrimSpace(strings.Join([]string{itoa(r.Broker), replace.JoinTriggers(r.Triggers), boolS(r.Emergency)}, " "))
		}
		if got != c.want {
			t.Errorf("%s: submitted %q, want %q", c.name, got, c.want)
		}
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }
func boolS(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestScheduledEventsWaitForTheWindowOnlyWhenThereIsTime(t *testing.T) {
	w, err := schedule.ParseWindow("mon-fri", "09:00-15:00", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	tue := func(h int) time.Time { return time.Date(2026, 11, 24, h, 0, 0, 0, time.UTC) } // a Tuesday
	lead := 24 * time.Hour
	for _, tt := range []struct {
		name          string
		now, deadline time.Time
		want          time.Time
	}{
		{"inside the window: now", tue(10), tue(10).Add(14 * 24 * time.Hour), time.Time{}},
		{"evening, deadline in two weeks: next morning", tue(20), tue(20).Add(14 * 24 * time.Hour), tue(9).Add(24 * time.Hour)},
		{"evening, AWS acts tonight: now", tue(20), tue(23), time.Time{}},
		{"evening, AWS acts 12 h after the window opens: now (less than the lead time)", tue(20), tue(21).Add(24 * time.Hour), time.Time{}},
		{"Friday night, no deadline: Monday morning", time.Date(2026, 11, 27, 22, 0, 0, 0, time.UTC), time.Time{}, time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)},
	} {
		if got := StartAt(w, tt.now, tt.deadline, lead); !got.Equal(tt.want) {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	if got := StartAt(schedule.Window{}, tue(20), time.Time{}, lead); !got.IsZero() {
		t.Errorf("no window at all: %s, want now", got)
	}
}

type guard struct{ v health.Verdict }

func (g guard) WhatIf(context.Context, []int32) health.Verdict { return g.v }
func (g guard) Preview(_ context.Context, req replace.Request) (*replace.Record, error) {
	return &replace.Record{ID: "preview", OldBroker: req.Broker}, nil
}

// A chaos pick the blast-radius guard refuses is skipped with the reason,
// and nothing is queued; an allowed one is queued; both are recorded.
func TestChaosPickPassesTheGuardFirst(t *testing.T) {
	dec := schedule.Decision{Slot: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Fire: true, Act: true,
		Broker: schedule.Candidate{NodeID: 3, InstanceID: "i-3"}}
	refused := health.Verdict{Blockers: []health.Reason{{Code: health.CodeBrokerDown, Brokers: []int32{2}, Message: "node 2 is down"}}}
	for _, c := range []struct {
		name    string
		v       health.Verdict
		queued  int
		outcome string
	}{
		{"refused", refused, 0, "skipped"},
		{"allowed", health.Verdict{Safe: true}, 1, "fired"},
	} {
		ctl := &fakeCtl{}
		var counted []string
		ch := &Chaos{Schedule: &schedule.Chaos{Enabled: true}, Ctl: ctl, Fleet: fleetOf(), Records: records{}, Guard: guard{c.v},
			Path: filepath.Join(t.TempDir(), "chaos.json"), Counted: func(o string) { counted = append(counted, o) }, Log: zerolog.Nop()}
		ch.Decided(context.Background(), dec)
		if len(ctl.subs) != c.queued || len(counted) != 1 || counted[0] != c.outcome {
			t.Errorf("%s: queued %d counted %v", c.name, len(ctl.subs), counted)
		}
		got := ch.Decisions()
		if len(got) != 1 || (c.queued == 0) != strings.Contains(got[0].Reason, "refused by the blast-radius guard") {
			t.Errorf("%s: decisions %+v", c.name, got)
		}
		again := &Chaos{Path: ch.Path}
		if err := again.Load(); err != nil || !again.LastSlot().Equal(dec.Slot) {
			t.Errorf("%s: the decided slot did not survive a restart: %v %v", c.name, again.LastSlot(), err)
		}
	}
}

func TestDriftQueuesTheOutdatedBrokerOnlyWhenIdle(t *testing.T) {
	w, _ := schedule.ParseWindow("mon-sun", "00:00-23:59", "UTC")
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name   string
		status controller.Status
		recs   records
		want   int
	}{
		{"idle", controller.Status{LeaseHeld: true}, nil, 1},
		{"busy", controller.Status{LeaseHeld: true, Queue: []controller.Request{{Broker: 3}}}, nil, 0},
		{"paused", controller.Status{LeaseHeld: true, Paused: true}, nil, 0},
		{"standby", controller.Status{}, nil, 0},
		{"too soon after the last disruption", controller.Status{LeaseHeld: true},
			records{{Phase: replace.PhaseCompleted, Finished: now.Add(-time.Hour)}}, 0},
	} {
		ctl := &fakeCtl{status: c.status}
		f := fleetOf()
		d := &Drift{Ctl: ctl, Fleet: f, Images: f, Records: c.recs, Window: w, MinInterval: 24 * time.Hour, Log: zerolog.Nop()}
		if err := d.Once(context.Background(), now); err != nil {
			t.Fatal(err)
		}
		if len(ctl.subs) != c.want || c.want == 1 && (ctl.subs[0].Broker != 1 || ctl.subs[0].Triggers[0] != replace.TriggerAMIDrift) {
			t.Errorf("%s: submitted %+v", c.name, ctl.subs)
		}
	}
}

func TestLastDisruptionIsNowWhileOneIsInFlight(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fin := now.Add(-48 * time.Hour)
	if got := LastDisruption(context.Background(), records{{Phase: replace.PhaseCompleted, Finished: fin}, {Phase: replace.PhaseRefused, Finished: now}}, now); !got.Equal(fin) {
		t.Errorf("got %s, want the completed one's end (a refusal disrupts nothing)", got)
	}
	if got := LastDisruption(context.Background(), records{{Phase: replace.PhaseRunning}}, now); !got.Equal(now) {
		t.Errorf("in flight: %s, want now", got)
	}
	if got := LastDisruption(context.Background(), failing{}, now); !got.Equal(now) {
		t.Errorf("unreadable: %s, want now", got)
	}
}

type failing struct{}

func (failing) List(context.Context) ([]*replace.Record, error) { return nil, errors.New("disk") }

// withControllers is fleetOf plus a running controller (9001), a lost one
// (9002) and one on an old image (9000, oldest).
func withControllers() *fleet {
	f := fleetOf()
	f.insts = append([]replace.Instance{
		{ID: "i-c0", NodeID: 9000, Role: replace.RoleController, State: replace.StateRunning, Image: "ami-old"},
		{ID: "i-c1", NodeID: 9001, Role: replace.RoleController, State: replace.StateRunning, Image: "ami-new"},
		{ID: "i-c2", NodeID: 9002, Role: replace.RoleController, State: replace.StateTerminated, Image: "ami-new"},
	}, f.insts...)
	return f
}

// Every trigger routes a controller's instance to the controller workflow.
func TestTriggersRouteControllersToTheControllerWorkflow(t *testing.T) {
	for _, c := range []struct {
		ev       events.Event
		strategy replace.Strategy
		emerg    bool
	}{
		{events.Event{Kind: events.KindRetirement, InstanceID: "i-c1"}, replace.StrategyController, false},
		{events.Event{Kind: events.KindInstanceLost, InstanceID: "i-c2"}, replace.StrategyController, true},
		{events.Event{Kind: events.KindInstanceLost, InstanceID: "i-2"}, replace.StrategyIdentity, true},
		{events.Event{Kind: events.KindRetirement, InstanceID: "i-1"}, "", false},
	} {
		ctl := &fakeCtl{}
		h := &Events{Ctl: ctl, Lookup: withControllers(), Records: records{}, ReplaceOn: events.DefaultReplaceOn, Log: zerolog.Nop()}
		if err := h.Handle(context.Background(), c.ev); err != nil || len(ctl.subs) != 1 {
			t.Fatalf("%s of %s: err %v, submitted %v", c.ev.Kind, c.ev.InstanceID, err, ctl.subs)
		}
		if r := ctl.subs[0]; r.Strategy != c.strategy || r.Emergency != c.emerg {
			t.Errorf("%s of %s: strategy %q emergency %v, want %q %v", c.ev.Kind, c.ev.InstanceID, r.Strategy, r.Emergency, c.strategy, c.emerg)
		}
	}

	w, _ := schedule.ParseWindow("mon-sun", "00:00-23:59", "UTC")
	ctl := &fakeCtl{status: controller.Status{LeaseHeld: true}}
	f := withControllers()
	d := &Drift{Ctl: ctl, Fleet: f, Images: f, Records: records{}, Window: w, Log: zerolog.Nop()}
	if err := d.Once(context.Background(), time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if len(ctl.subs) != 1 || ctl.subs[0].Broker != 9000 || ctl.subs[0].Strategy != replace.StrategyController {
		t.Errorf("drift of controller 9000: submitted %+v", ctl.subs)
	}
}

// Chaos picks controllers only when opted in, at most once per its own
// interval, and a controller pick goes through the controller gate.
func TestChaosPicksControllersOnlyWhenAllowed(t *testing.T) {
	now := time.Now()
	picked := func(ch *Chaos) []int32 {
		cs, err := ch.candidates(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var ids []int32
		for _, c := range cs {
			if c.Controller {
				ids = append(ids, c.NodeID)
			}
		}
		return ids
	}
	base := func() *Chaos {
		return &Chaos{Schedule: &schedule.Chaos{Enabled: true}, Fleet: withControllers(), Records: records{}, ControllerMinInterval: 30 * 24 * time.Hour, Log: zerolog.Nop()}
	}
	if ids := picked(base()); len(ids) != 0 {
		t.Errorf("controllers %v are candidates without chaos.controllers", ids)
	}
	ch := base()
	ch.Controllers = true
	if ids := picked(ch); len(ids) != 2 {
		t.Errorf("opted in: controller candidates %v, want the two running ones", ids)
	}
	ch.Records = records{{Strategy: replace.StrategyController, Triggers: []replace.Trigger{replace.TriggerChaos}, Phase: replace.PhaseCompleted, Finished: now.Add(-24 * time.Hour)}}
	if ids := picked(ch); len(ids) != 0 {
		t.Errorf("a controller chaos replacement a day ago, yet controllers %v are candidates", ids)
	}

	dec := schedule.Decision{Slot: now, Fire: true, Act: true, Broker: schedule.Candidate{NodeID: 9001, InstanceID: "i-c1", Controller: true}}
	ctl := &fakeCtl{}
	ch = base()
	ch.Ctl, ch.Path, ch.Guard = ctl, filepath.Join(t.TempDir(), "chaos.json"), gatedGuard{refuse: "voter-lagging: controller voter 9000 is down"}
	ch.Decided(context.Background(), dec)
	if len(ctl.subs) != 0 || !strings.Contains(ch.Decisions()[0].Reason, "chaos pick of controller 9001 refused") || !strings.Contains(ch.Decisions()[0].Reason, "voter-lagging") {
		t.Errorf("refused controller pick: queued %v, decision %+v", ctl.subs, ch.Decisions()[0])
	}
	ch.Guard = gatedGuard{}
	ch.Decided(context.Background(), dec)
	if len(ctl.subs) != 1 || ctl.subs[0].Strategy != replace.StrategyController {
		t.Errorf("allowed controller pick: queued %+v", ctl.subs)
	}
}

// gatedGuard answers Preview with the controller gate's verdict; WhatIf
// (the partitions' blast radius) must not be what judges a controller.
type gatedGuard struct{ refuse string }

func (gatedGuard) WhatIf(context.Context, []int32) health.Verdict {
	return health.Verdict{Blockers: []health.Reason{{Code: "wrong-guard", Message: "a controller was judged by the partitions"}}}
}

func (g gatedGuard) Preview(_ context.Context, req replace.Request) (*replace.Record, error) {
	if req.Strategy != replace.StrategyController {
		return nil, errors.New("not previewed as a controller")
	}
	if g.refuse != "" {
		return &replace.Record{Phase: replace.PhaseRefused, Error: g.refuse}, nil
	}
	return &replace.Record{Phase: replace.PhaseRunning}, nil
}
