package local

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A port handed to one caller is not handed to another until its claim is
// stale, whoever asks.
func TestPortClaimIsExclusiveUntilStale(t *testing.T) {
	dir := t.TempDir()
	if !claimPort(dir, 40001) {
		t.Fatal("first claim refused")
	}
	if claimPort(dir, 40001) {
		t.Fatal("a held port was claimed twice")
	}
	old := time.Now().Add(-portClaimTTL - time.Minute)
	if err := os.Chtimes(filepath.Join(dir, "40001"), old, old); err != nil {
		t.Fatal(err)
	}
	if !claimPort(dir, 40001) {
		t.Fatal("a stale claim was not taken over")
	}
	if claimPort(dir, 40001) {
		t.Fatal("a refreshed claim was claimed again")
	}
}

func TestFreePortsAreDistinct(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
