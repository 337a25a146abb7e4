// Package version reports which fleetd build is running. The Makefile sets
// Version at link time; a plain `go build` falls back to the module's VCS data.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Revision are set with -ldflags "-X github.com/fleetd/fleetd/internal/version.Version=...".
var (
	Version  = ""
	Revision = ""
)

// String is a one-line description: version, VCS revision, Go version, platform.
func String() string {
	v, rev := Get()
	return fmt.Sprintf("fleetd %s (revision %s, %s, %s/%s)", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Get is the version and VCS revision: the link-time values, else the
// module's build info, else "dev" and "unknown".
func Get() (v, rev string) {
	v, rev = Version, Revision
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	if rev == "" {
		rev = "unknown"
	}
	return v, rev
}
