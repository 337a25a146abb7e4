package daemon

import (
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/schedule"
)

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
		if got := startAt(w, tt.now, tt.deadline, lead); !got.Equal(tt.want) {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	if got := startAt(schedule.Window{}, tue(20), time.Time{}, lead); !got.IsZero() {
		t.Errorf("no window at all: %s, want now", got)
	}
}

func TestQueueOriginIsTheQueuesAccountAndFleetdsRegion(t *testing.T) {
	o, err := queueOrigin("https://sqs.us-east-1.amazonaws.com/123456789012/fleetd-events", "us-east-1")
	if err != nil || o.Account != "123456789012" || o.Region != "us-east-1" {
		t.Fatalf("%+v %v", o, err)
	}
	for _, bad := range []struct{ url, region string }{
		{"https://sqs.us-east-1.amazonaws.com/fleetd-events", "us-east-1"},
		{"https://sqs.us-east-1.amazonaws.com/12345/fleetd-events", "us-east-1"},
		{"https://sqs.us-east-1.amazonaws.com/123456789012/fleetd-events", ""},
	} {
		if _, err := queueOrigin(bad.url, bad.region); err == nil {
			t.Errorf("%s in %q: accepted", bad.url, bad.region)
		}
	}
}
