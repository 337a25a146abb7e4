package replace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/fleetd/fleetd/internal/atomicfile"
)

// FileStore keeps one JSON file per replacement in a directory. Save writes a
// temporary file, syncs it and renames it over the old one, then syncs the
// directory: after Save returns, a crash leaves either the old record or the
// new one, never a torn file.
type FileStore struct {
	Dir string
}

// NewFileStore creates dir if needed.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &FileStore{Dir: dir}, nil
}

func (s *FileStore) path(id string) string { return filepath.Join(s.Dir, id+".json") }

// ErrBadID: a replacement id that fleetd never makes. Ids are checked on
// every read as on every write, so no id can name a file outside the store.
var ErrBadID = errors.New("not a replacement id")

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

// CheckID returns ErrBadID unless id could be one fleetd made.
func CheckID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: %q (letters, digits, '-' and '_')", ErrBadID, id)
	}
	return nil
}

func (s *FileStore) Save(_ context.Context, r *Record) error {
	if err := CheckID(r.ID); err != nil {
		return fmt.Errorf("save record: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("save record %s: %w", r.ID, err)
	}
	if err := atomicfile.Write(s.path(r.ID), b, 0o640); err != nil {
		return fmt.Errorf("save record %s: %w", r.ID, err)
	}
	return nil
}

func (s *FileStore) Load(_ context.Context, id string) (*Record, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("load record %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("load record %s: %w", id, err)
	}
	if len(r.Triggers) == 0 && r.LegacyTrigger != "" {
		// Written before triggers were a list: read once, written back as one.
		for t := range strings.SplitSeq(r.LegacyTrigger, ",") {
			r.Triggers = append(r.Triggers, Trigger(t))
		}
	}
	r.LegacyTrigger = ""
	if r.Plan != nil {
		// Written before moves streamed: the batches become the window's
		// moves, the done batches its submitted ones.
		r.MoveCursor = max(r.MoveCursor, r.Plan.Normalize(r.LegacyBatchesDone))
	}
	r.LegacyBatchesDone = 0
	return &r, nil
}

// List returns every record, oldest first.
func (s *FileStore) List(ctx context.Context) ([]*Record, error) {
	names, err := filepath.Glob(filepath.Join(s.Dir, "*.json"))
	if err != nil {
		return nil, err
	}
	out := make([]*Record, 0, len(names))
	for _, n := range names {
		r, err := s.Load(ctx, strings.TrimSuffix(filepath.Base(n), ".json"))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}
