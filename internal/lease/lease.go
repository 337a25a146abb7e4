// Package lease keeps two fleetd processes from acting on one cluster at the
// same time. The holder renews its lease; a process that loses it must stop
// disruptive work at its next step boundary. A holder that dies releases it,
// so another process takes over and resumes from the durable records.
package lease

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrHeld is returned by TryAcquire when another process holds the lease.
var ErrHeld = errors.New("the lease is held by another fleetd")

// File is a lease for one host: an exclusive flock on a file. The kernel
// releases it when the holder exits, however it exits (SIGKILL included), so
// no expiry is needed. The file records the holder for people to read.
type File struct {
	Path   string
	Holder string // written into the file, e.g. "host:pid"

	f *os.File
}

// TryAcquire takes the lease if it is free, or returns ErrHeld (naming the
// holder when the file says).
func (l *File) TryAcquire(context.Context) error {
	if l.f != nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(l.Path), 0o750); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	f, err := os.OpenFile(l.Path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(l.Path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w (holder: %s)", ErrHeld, strings.TrimSpace(string(holder)))
		}
		return fmt.Errorf("lease: flock %s: %w", l.Path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(l.Holder+"\n"), 0)
	_ = f.Sync()
	l.f = f
	return nil
}

// Held reports whether this process holds the lease. A flock cannot be taken
// away from a living holder, so holding it once means holding it until Release.
func (l *File) Held(context.Context) (bool, error) { return l.f != nil, nil }

// Release gives the lease up. Idempotent.
func (l *File) Release(context.Context) error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}
