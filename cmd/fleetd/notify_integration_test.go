//go:build integration

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/notify"
	"github.com/fleetd/fleetd/internal/replace"
)

// hook is a local webhook receiver that keeps the events it accepted, in
// order. failFirst answers 500 to the first attempt of every event (its
// retry is then accepted); hang never answers.
type hook struct {
	mu        sync.Mutex
	events    []notify.Event
	attempts  map[string]int
	requests  int
	failFirst bool
	hang      chan struct{}
	srv       *httptest.Server
}

func newHook(t *testing.T, failFirst, hang bool) *hook {
	h := &hook{attempts: map[string]int{}, failFirst: failFirst}
	if hang {
		h.hang = make(chan struct{})
	}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.requests++
		h.mu.Unlock()
		if h.hang != nil {
			select {
			case <-h.hang:
			case <-r.Context().Done():
			}
			return
		}
		var ev notify.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.attempts[ev.ID]++
		if h.failFirst && h.attempts[ev.ID] == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		h.events = append(h.events, ev)
	}))
	t.Cleanup(func() {
		if h.hang != nil {
			close(h.hang)
		}
		h.srv.Close()
	})
	return h
}

func (h *hook) got() []notify.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notify.Event(nil), h.events...)
}

func (h *hook) requestCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests
}

// cliProc is a fleetd command run as its own process (this test binary
// re-executed as fleetd), with the API token in its environment.
type cliProc struct {
	out  *syncBuffer
	done chan int
}

func startCLI(t *testing.T, args string) *cliProc {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "FLEETD_TEST_AS_FLEETD=1", "FLEETD_TEST_ARGS="+args, "FLEETD_API_TOKEN="+testToken)
	p := &cliProc{out: &syncBuffer{}, done: make(chan int, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		p.done <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return p
}

// wait returns the command's exit code and output once it exits.
func (p *cliProc) wait(t *testing.T, within time.Duration) (int, string) {
	t.Helper()
	select {
	case code := <-p.done:
		return code, p.out.String()
	case <-time.After(within):
		t.Fatalf("the command did not end within %s; its output:\n%s", within, p.out.String())
		return 0, ""
	}
}

// checkFollowed checks a `--follow --json` (or `watch --json`) output: the
// stream's progress shows bytes copied growing and a finite ETA, and the
// last line is the record, ended in phase want.
func checkFollowed(t *testing.T, out string, want replace.Phase) {
	t.Helper()
	var copied []int64
	eta := false
	var last replace.Record
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		var ev struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal([]byte(l), &ev) == nil && ev.Type == "progress" {
			var p replace.Progress
			if err := json.Unmarshal(ev.Data, &p); err != nil {
				t.Fatalf("progress %s: %v", ev.Data, err)
			}
			if p.Step == replace.StepMove {
				copied = append(copied, p.BytesCopied)
				eta = eta || p.ETASeconds > 0
			}
		}
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Phase != want {
		t.Fatalf("last line %q: %v, want the record %s", lines[len(lines)-1], err, want)
	}
	if want != replace.PhaseCompleted {
		return
	}
	grew := 0
	for i := 1; i < len(copied); i++ {
		if copied[i] < copied[i-1] {
			t.Errorf("bytes copied went back: %v", copied)
		}
		if copied[i] > copied[i-1] {
			grew++
		}
	}
	if grew == 0 || !eta {
		t.Errorf("progress during the move: bytes copied %v (want growing), a finite ETA seen: %v\n%s", copied, eta, out)
	}
}
