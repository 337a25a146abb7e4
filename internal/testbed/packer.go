package testbed

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fleetd/fleetd/internal/local"
)

// Packer is the packer v1.9.4 scripts/packer.sh builds (or FLEETD_PACKER)
// and the plugin directory holding the amazon plugin it built beside it (or
// PACKER_PLUGIN_PATH). A missing one fails the test with the command to run.
func Packer(t testing.TB) (bin, pluginPath string) {
	t.Helper()
	bin = os.Getenv("FLEETD_PACKER")
	if bin == "" {
		bin = filepath.Join(local.CacheDir(), "bin", "packer-1.9.4")
	}
	pluginPath = os.Getenv("PACKER_PLUGIN_PATH")
	if pluginPath == "" {
		pluginPath = filepath.Join(local.CacheDir(), "packer-plugins")
	}
	for _, p := range []string{bin, pluginPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s not found: run scripts/packer.sh (or make tools) first", p)
		}
	}
	return bin, pluginPath
}
