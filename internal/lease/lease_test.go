package lease

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFileLeaseIsExclusiveAndReleased(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lease")
	a := &File{Path: path, Holder: "a:1"}
	b := &File{Path: path, Holder: "b:2"}
	if err := a.TryAcquire(ctx); err != nil {
		t.Fatal(err)
	}
	err := b.TryAcquire(ctx)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "a:1") {
		t.Fatalf("second acquire: %v, want ErrHeld naming a:1", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.TryAcquire(ctx); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if held, _ := b.Held(ctx); !held {
		t.Error("b should hold the lease")
	}
}

// A holder killed with SIGKILL must not keep the lease: another process
// takes over at once.
func TestFileLeaseFreedWhenHolderIsKilled(t *testing.T) {
	if os.Getenv("FLEETD_LEASE_CHILD") != "" {
		l := &File{Path: os.Getenv("FLEETD_LEASE_CHILD"), Holder: "child"}
		if err := l.TryAcquire(context.Background()); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("HELD\n")
		time.Sleep(time.Minute)
		return
	}
	path := filepath.Join(t.TempDir(), "lease")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFileLeaseFreedWhenHolderIsKilled$")
	cmd.Env = append(os.Environ(), "FLEETD_LEASE_CHILD="+path)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf[:4]) != "HELD" {
		t.Fatalf("child did not take the lease: %q %v", buf, err)
	}
	ctx := context.Background()
	other := &File{Path: path, Holder: "parent"}
	if err := other.TryAcquire(ctx); !errors.Is(err, ErrHeld) {
		t.Fatalf("while the child holds it: %v, want ErrHeld", err)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if err := other.TryAcquire(ctx); err != nil {
		t.Fatalf("after SIGKILL of the holder: %v", err)
	}
}
