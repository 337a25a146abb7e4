package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fleetd/fleetd/internal/ec2"
	"github.com/fleetd/fleetd/internal/replace"
)

// orphans looks, in the cluster's instance tags, for replacements that are
// in flight (the fleetd:step tag says running or rolling-back) but have no
// record in store. A fleetd that takes the lease over from a holder on
// another host without a shared state_dir is in exactly that position: it
// could not resume the half-done replacement, and starting a new one beside
// it would be two disruptions at once. It returns the reason to pause, or "".
//
// A record that exists but is finished while the tags say running is not an
// orphan: the holder died between saving the record and tagging.
func orphans(ctx context.Context, insts []replace.Instance, store replace.Store, stateDir string) (string, error) {
	byID := map[string][]string{} // replacement id -> instance ids
	steps := map[string]string{}
	for _, in := range insts {
		id, step := in.Tags[ec2.TagReplacement], in.Tags[ec2.TagStep]
		phase, _, _ := strings.Cut(step, "/")
		if id == "" || (phase != string(replace.PhaseRunning) && phase != string(replace.PhaseRollingBack)) {
			continue
		}
		byID[id] = append(byID[id], in.ID)
		steps[id] = step
	}
	var lines []string
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		_, err := store.Load(ctx, id)
		switch {
		case err == nil:
			continue
		case !errors.Is(err, replace.ErrNotFound):
			return "", fmt.Errorf("check record of replacement %s: %w", id, err)
		}
		lines = append(lines, fmt.Sprintf("%s (instances %s, tag %s=%q)", id, strings.Join(byID[id], ", "), ec2.TagStep, steps[id]))
	}
	if len(lines) == 0 {
		return "", nil
	}
	return fmt.Sprintf("replacement in flight per instance tags but with no record in state_dir %s: %s. "+
		"This fleetd cannot resume it; is state_dir shared with the previous holder (docs/daemon.md)? "+
		"Finish or roll it back with the previous holder's records, or by hand; then remove the %s tag from those instances and run fleetd resume",
		stateDir, strings.Join(lines, "; "), ec2.TagStep), nil
}
