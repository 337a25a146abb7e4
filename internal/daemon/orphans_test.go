package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/fleetd/fleetd/internal/ec2"
	"github.com/fleetd/fleetd/internal/replace"
)

func tagged(id, replacement, step string) replace.Instance {
	return replace.Instance{ID: id, Tags: map[string]string{"fleetd:cluster": "c", ec2.TagReplacement: replacement, ec2.TagStep: step}}
}

func TestOrphanedReplacementsPause(t *testing.T) {
	ctx := context.Background()
	store, err := replace.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A replacement this process has a record of (finished, though its tags
	// still say running: the holder died between the two writes).
	if err := store.Save(ctx, &replace.Record{ID: "r-known", Phase: replace.PhaseCompleted}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		insts []replace.Instance
		want  []string // substrings of the pause reason; nil: no pause
	}{
		{"no tags", []replace.Instance{{ID: "i-1", Tags: map[string]string{}}}, nil},
		{"finished elsewhere", []replace.Instance{tagged("i-1", "r-old", "completed/done 2026-11-20T10:00:00Z")}, nil},
		{"failed elsewhere is a person's job, not an orphan", []replace.Instance{tagged("i-1", "r-old", "failed/move 2026-11-20T10:00:00Z")}, nil},
		{"in flight with a record here", []replace.Instance{tagged("i-1", "r-known", "running/move 2026-11-20T10:00:00Z")}, nil},
		{"in flight without a record", []replace.Instance{
			tagged("i-old", "r-lost", "running/move 2026-11-20T10:00:00Z"),
			tagged("i-new", "r-lost", "running/move 2026-11-20T10:00:00Z"),
			tagged("i-x", "r-known", "running/move 2026-11-20T10:00:00Z"),
		}, []string{"r-lost (instances i-old, i-new", "state_dir /srv/fleetd", "fleetd resume", "remove the fleetd:step tag"}},
		{"rolling back without a record", []replace.Instance{tagged("i-1", "r-rb", "rolling-back/move 2026-11-20T10:00:00Z")}, []string{"r-rb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := orphans(ctx, tc.insts, store, "/srv/fleetd")
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if got != "" {
					t.Fatalf("paused for %q", got)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("pause reason %q lacks %q", got, w)
				}
			}
			if strings.Contains(got, "r-known") {
				t.Errorf("pause reason names a replacement with a record: %q", got)
			}
		})
	}
}
