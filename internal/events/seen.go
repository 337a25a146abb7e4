package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/fleetd/fleetd/internal/atomicfile"
)

// Handler acts on one new event. nil means the event is dealt with (acted
// on, or deliberately ignored) and may be forgotten by its source; an error
// means try again later (the SQS message stays, the poll sees it again).
type Handler func(ctx context.Context, ev Event) error

// Dispatcher hands each event to the Handler once: it remembers the ids of
// events dealt with, durably, for Keep (14 days).
type Dispatcher struct {
	Handler Handler
	// Path is the file of remembered ids ("" keeps them in memory).
	Path string
	Keep time.Duration
	Log  zerolog.Logger
	Now  func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time
}

// Load reads the remembered ids.
func (d *Dispatcher) Load() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = map[string]time.Time{}
	if d.Path == "" {
		return nil
	}
	b, err := os.ReadFile(d.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(b, &d.seen)
	}
	if err != nil {
		return fmt.Errorf("seen events %s: %w (move it aside to start afresh: events may then be acted on again, which the queue deduplicates by broker)", d.Path, err)
	}
	return nil
}

// Dispatch deals with ev once. It returns nil for a duplicate.
func (d *Dispatcher) Dispatch(ctx context.Context, ev Event) error {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	d.mu.Lock()
	if d.seen == nil {
		d.seen = map[string]time.Time{}
	}
	_, dup := d.seen[ev.ID]
	d.mu.Unlock()
	if dup {
		d.Log.Info().Str("event", ev.ID).Str("kind", string(ev.Kind)).Str("instance", ev.InstanceID).Msg("duplicate event ignored")
		return nil
	}
	if err := d.Handler(ctx, ev); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen[ev.ID] = now()
	keep := d.Keep
	if keep <= 0 {
		keep = 14 * 24 * time.Hour
	}
	for id, at := range d.seen {
		if now().Sub(at) > keep {
			delete(d.seen, id)
		}
	}
	if d.Path == "" {
		return nil
	}
	b, err := json.Marshal(d.seen)
	if err != nil {
		return err
	}
	return atomicfile.Write(d.Path, b, 0o640)
}
