// Package schedule decides when the weekly chaos replacement fires and which
// broker it takes: a cron schedule in a time zone, a maintenance window, a
// minimum time between disruptions, and a pick policy. It is pure: the time
// and the random source are inputs, so every rule is testable in virtual time.
//
// Chaos is off unless enabled, and a leashed schedule only plans: it never
// asks for an action.
package schedule

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Window is a recurring maintenance window: some weekdays, from Start to End
// (offsets from local midnight) in Location.
type Window struct {
	Days     []time.Weekday
	Start    time.Duration
	End      time.Duration
	Location *time.Location
}

// Contains reports whether t falls inside the window.
func (w Window) Contains(t time.Time) bool {
	loc := w.Location
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	if !slices.Contains(w.Days, lt.Weekday()) {
		return false
	}
	midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
	off := lt.Sub(midnight)
	return off >= w.Start && off < w.End
}

// Next returns the first instant at or after t inside the window (t itself
// if t is inside), or the zero time if the window has no days.
func (w Window) Next(t time.Time) time.Time {
	if w.Contains(t) {
		return t
	}
	loc := w.Location
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	for i := 0; i <= 7; i++ {
		day := time.Date(lt.Year(), lt.Month(), lt.Day()+i, 0, 0, 0, 0, loc)
		start := day.Add(w.Start)
		if slices.Contains(w.Days, day.Weekday()) && !start.Before(t) {
			return start
		}
	}
	return time.Time{}
}

var dayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// ParseWindow reads days ("mon-fri", "tue,thu"), hours ("09:00-15:00") and a
// time zone name ("America/Los_Angeles").
func ParseWindow(days, hours, tz string) (Window, error) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return Window{}, fmt.Errorf("time zone %q: %w", tz, err)
	}
	w := Window{Location: loc}
	for _, part := range strings.Split(strings.ToLower(days), ",") {
		part = strings.TrimSpace(part)
		from, to, isRange := strings.Cut(part, "-")
		a, ok1 := dayNames[from]
		b, ok2 := dayNames[to]
		if !ok1 || (isRange && !ok2) {
			return Window{}, fmt.Errorf("days %q: want names like mon-fri or tue,thu", days)
		}
		if !isRange {
			b = a
		}
		for d := a; ; d = (d + 1) % 7 {
			if !slices.Contains(w.Days, d) {
				w.Days = append(w.Days, d)
			}
			if d == b {
				break
			}
		}
	}
	from, to, ok := strings.Cut(hours, "-")
	if !ok {
		return Window{}, fmt.Errorf("hours %q: want HH:MM-HH:MM", hours)
	}
	if w.Start, err = clock(from); err == nil {
		w.End, err = clock(to)
	}
	if err != nil {
		return Window{}, fmt.Errorf("hours %q: %w", hours, err)
	}
	if w.End <= w.Start {
		return Window{}, fmt.Errorf("hours %q: the window must end after it starts on the same day", hours)
	}
	return w, nil
}

func clock(s string) (time.Duration, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// Pick is how the chaos schedule chooses its broker.
type Pick string

const (
	// PickOldest takes the broker whose instance was launched first: no node
	// grows old (Honeycomb's rule is 12 months at most).
	PickOldest Pick = "oldest"
	// PickOutdatedImage prefers brokers on an AMI older than the newest, the
	// oldest of them first; otherwise the oldest broker.
	PickOutdatedImage Pick = "outdated-ami"
	// PickRandom takes any broker, as Chaos Monkey does.
	PickRandom Pick = "random"
)

// Candidate is a broker the schedule may pick.
type Candidate struct {
	NodeID     int32     `json:"node_id"`
	InstanceID string    `json:"instance_id,omitempty"`
	LaunchedAt time.Time `json:"launched_at,omitzero"`
	// Outdated: its image is older than the newest matching one.
	Outdated bool `json:"outdated,omitempty"`
	// Controller: a KRaft controller (candidates only where chaos is
	// allowed to pick controllers).
	Controller bool `json:"controller,omitempty"`
}

// Chaos is the weekly chaos schedule.
type Chaos struct {
	Enabled bool
	// Leashed: decide and record the plan, never act.
	Leashed bool
	// Cron is a five-field cron expression; its time zone is Window.Location.
	Cron string
	// Window bounds when a disruption may start.
	Window Window
	// MinInterval is the least time between two disruptions of the cluster.
	MinInterval time.Duration
	Pick        Pick
	// Grace is how late a slot may still fire (fleetd was down or busy);
	// older slots are skipped (default 1 h).
	Grace time.Duration

	sched cron.Schedule
}

// Compile parses the cron expression; call it once after building a Chaos.
func (c *Chaos) Compile() error {
	if c.Pick == "" {
		c.Pick = PickOldest
	}
	switch c.Pick {
	case PickOldest, PickOutdatedImage, PickRandom:
	default:
		return fmt.Errorf("pick %q: want oldest, outdated-ami or random", c.Pick)
	}
	if c.Grace <= 0 {
		c.Grace = time.Hour
	}
	if !c.Enabled {
		return nil
	}
	if c.Window.Location == nil || len(c.Window.Days) == 0 {
		return errors.New("an enabled chaos schedule needs a maintenance window")
	}
	s, err := cron.ParseStandard("CRON_TZ=" + c.Window.Location.String() + " " + c.Cron)
	if err != nil {
		return fmt.Errorf("cron %q: %w", c.Cron, err)
	}
	c.sched = s
	return nil
}

// Horizon is how far ahead a chaos schedule must next fire to be accepted: a
// cron that names 30 February (or only 29 February, or a weekday that never
// falls on its date) would otherwise be searched for without end.
const Horizon = 400 * 24 * time.Hour

// FiresWithin returns an error unless an enabled schedule fires within
// Horizon after now, and inside its window at least once in that time.
func (c *Chaos) FiresWithin(now time.Time) error {
	if !c.Enabled || c.sched == nil {
		return nil
	}
	next := c.sched.Next(now)
	if next.IsZero() || next.Sub(now) > Horizon {
		return fmt.Errorf("cron %q never fires within %d days of %s: is the date impossible (30 February) or too rare?", c.Cron, int(Horizon.Hours()/24), now.UTC().Format(time.DateOnly))
	}
	for slot, n := next, 0; !slot.IsZero() && slot.Sub(now) <= Horizon && n < maxSlots; slot, n = c.sched.Next(slot), n+1 {
		if c.Window.Contains(slot) {
			return nil
		}
	}
	return fmt.Errorf("cron %q never fires inside the maintenance window (days and hours) within %d days: every slot would be skipped", c.Cron, int(Horizon.Hours()/24))
}

// maxSlots bounds every walk over a schedule's slots (a cron firing every
// minute has 576,000 slots in 400 days).
const maxSlots = 600_000

// Decision is what the schedule says at one instant.
type Decision struct {
	// Slot is the scheduled instant this decision is about (zero: none due).
	// The caller records it so that a slot is decided once.
	Slot time.Time `json:"slot,omitzero"`
	// Fire: a disruption is due now and Broker is the one to take.
	Fire   bool      `json:"fire"`
	Broker Candidate `json:"broker,omitzero"`
	// Act: carry it out. False for a leashed schedule, which only plans.
	Act    bool   `json:"act"`
	Reason string `json:"reason"`
	// Next is the next scheduled slot after this one.
	Next time.Time `json:"next,omitzero"`
}

// Decide says whether a chaos disruption is due at now. lastSlot is the last
// slot already decided (zero if none); lastDisruption the end of the last
// disruption of the cluster, of any trigger (zero if none).
func (c *Chaos) Decide(now, lastSlot, lastDisruption time.Time, cands []Candidate, rnd *rand.Rand) Decision {
	if !c.Enabled || c.sched == nil {
		return Decision{Reason: "chaos is disabled"}
	}
	from := lastSlot
	if from.IsZero() {
		from = now.Add(-c.Grace)
	}
	slot := c.sched.Next(from)
	d := Decision{Next: slot}
	if slot.IsZero() {
		d.Reason = "the schedule never fires"
		return d
	}
	if slot.After(now) {
		d.Reason = "not due until " + slot.Format(time.RFC3339)
		return d
	}
	// Of several due slots (fleetd was down, or the cron is frequent) only
	// the latest counts: the earlier ones are superseded, never run late.
	// Slots older than the grace would be skipped anyway, so the walk starts
	// there: it is bounded by the grace, not by how long fleetd was down.
	if early := now.Add(-c.Grace); slot.Before(early) {
		if s := c.sched.Next(early.Add(-time.Second)); !s.IsZero() && !s.After(now) {
			slot = s
		}
	}
	for n := 0; n < maxSlots; n++ {
		next := c.sched.Next(slot)
		if next.IsZero() || next.After(now) {
			break
		}
		slot = next
	}
	d.Slot, d.Next = slot, c.sched.Next(slot)
	switch {
	case now.Sub(slot) > c.Grace:
		d.Reason = fmt.Sprintf("slot %s missed by more than %s; skipped", slot.Format(time.RFC3339), c.Grace)
	case !c.Window.Contains(now):
		d.Reason = "outside the maintenance window; slot skipped"
	case !lastDisruption.IsZero() && now.Sub(lastDisruption) < c.MinInterval:
		d.Reason = fmt.Sprintf("last disruption %s ago, minimum interval %s; slot skipped", now.Sub(lastDisruption).Round(time.Minute), c.MinInterval)
	case len(cands) == 0:
		d.Reason = "no broker to pick"
	default:
		d.Fire, d.Broker, d.Act = true, pick(c.Pick, cands, rnd), !c.Leashed
		d.Reason = fmt.Sprintf("chaos picks broker %d (%s)", d.Broker.NodeID, c.Pick)
		if c.Leashed {
			d.Reason += "; leashed: plan only"
		}
	}
	return d
}

func pick(p Pick, cands []Candidate, rnd *rand.Rand) Candidate {
	cs := slices.Clone(cands)
	sort.Slice(cs, func(i, j int) bool {
		if !cs[i].LaunchedAt.Equal(cs[j].LaunchedAt) {
			return cs[i].LaunchedAt.Before(cs[j].LaunchedAt)
		}
		return cs[i].NodeID < cs[j].NodeID
	})
	switch p {
	case PickRandom:
		return cs[rnd.IntN(len(cs))]
	case PickOutdatedImage:
		for _, c := range cs {
			if c.Outdated {
				return c
			}
		}
	}
	return cs[0]
}
