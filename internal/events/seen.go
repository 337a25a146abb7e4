package events

import (
	"bytes"
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
//
// The file is append-only, one JSON line per event dealt with, fsynced before
// Dispatch returns (an SQS message is deleted only after that). It is
// rewritten only to drop expired ids, when it has grown to twice what is
// live: a burst of events costs a line each, not the whole file each.
// Events fleetd does not act on (KindUnknown) are not remembered.
type Dispatcher struct {
	Handler Handler
	// Path is the file of remembered ids ("" keeps them in memory).
	Path string
	Keep time.Duration
	Log  zerolog.Logger
	Now  func() time.Time

	mu        sync.Mutex
	seen      map[string]time.Time
	lines     int // lines in the file, live or expired
	compacted int // lines right after the last compaction
}

// seenLine is one line of the file.
type seenLine struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// Load reads the remembered ids. A file in the earlier whole-map format is
// read and rewritten as lines; a torn last line (a crash mid-append) is
// dropped: its event was not acknowledged, so it comes back.
func (d *Dispatcher) Load() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen, d.lines = map[string]time.Time{}, 0
	if d.Path == "" {
		return nil
	}
	b, err := os.ReadFile(d.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("seen events %s: %w", d.Path, err)
	}
	if old := map[string]time.Time{}; json.Unmarshal(b, &old) == nil {
		d.seen = old
		return d.compact()
	}
	lines := bytes.Split(b, []byte("\n"))
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var l seenLine
		if err := json.Unmarshal(line, &l); err != nil || l.ID == "" {
			if i == len(lines)-1 {
				break // torn last line
			}
			return fmt.Errorf("seen events %s line %d: not an event line (move the file aside to start afresh: events may then be acted on again, which the queue deduplicates by broker)", d.Path, i+1)
		}
		d.seen[l.ID] = l.At
		d.lines++
	}
	d.compacted = len(d.seen)
	return nil
}

// Dispatch deals with ev once. It returns nil for a duplicate.
func (d *Dispatcher) Dispatch(ctx context.Context, ev Event) error {
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
	if ev.Kind == KindUnknown {
		return nil
	}
	return d.remember(ev.ID)
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// remember records id durably: one appended, fsynced line.
func (d *Dispatcher) remember(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	at := d.now()
	d.seen[id] = at
	if d.Path == "" {
		return nil
	}
	if d.lines >= max(1000, 2*d.compacted) {
		return d.compact()
	}
	line, err := json.Marshal(seenLine{ID: id, At: at})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(d.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("seen events %s: %w", d.Path, err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("seen events %s: %w", d.Path, err)
	}
	d.lines++
	return nil
}

// compact drops expired ids and rewrites the file with the live ones.
// Called with d.mu held.
func (d *Dispatcher) compact() error {
	keep := d.Keep
	if keep <= 0 {
		keep = 14 * 24 * time.Hour
	}
	now := d.now()
	var buf bytes.Buffer
	for id, at := range d.seen {
		if now.Sub(at) > keep {
			delete(d.seen, id)
			continue
		}
		line, err := json.Marshal(seenLine{ID: id, At: at})
		if err != nil {
			return err
		}
		buf.Write(append(line, '\n'))
	}
	if err := atomicfile.Write(d.Path, buf.Bytes(), 0o640); err != nil {
		return err
	}
	d.lines, d.compacted = len(d.seen), len(d.seen)
	return nil
}
