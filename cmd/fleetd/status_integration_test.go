//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/testbed"
)

func fleetd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(testbed.Context(t), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestStatusExitCodesFollowTheCluster(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 3, 3, 2)
	bootstrap := strings.Join(c.Fleet.Bootstrap(), ",")

	code, out, errOut := fleetd(t, "status", "--bootstrap", bootstrap)
	if code != exitOK || !strings.Contains(out, "safe to disrupt: yes") {
		t.Fatalf("healthy: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = fleetd(t, "status", "--bootstrap", bootstrap, "--json")
	var rep health.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json is not JSON: %v\n%s", err, out)
	}
	if code != exitOK || !rep.Verdict.Safe || len(rep.Brokers) != 3 || rep.Partitions < 3 {
		t.Fatalf("healthy --json: exit %d, %+v", code, rep)
	}

	// The blast-radius guard, asked from the command line: one broker of
	// RF 3 / min ISR 2 may go, two may not, and the hurt partitions are named.
	code, out, errOut = fleetd(t, "what-if", "--down", "2", "--bootstrap", bootstrap)
	if code != exitOK || !strings.HasPrefix(out, "safe: taking node 2 down now hurts no partition") {
		t.Fatalf("what-if --down 2: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = fleetd(t, "what-if", "--down", "2,3", "--bootstrap", bootstrap)
	if code != exitNotSafe || !strings.Contains(out, "would-fall-below-min-isr") || !strings.Contains(out, "    orders-0\n") {
		t.Fatalf("what-if --down 2,3: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = fleetd(t, "what-if", "--down", "1,2,3", "--bootstrap", bootstrap, "--json")
	var v health.Verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != exitNotSafe || !v.Has(health.CodeWouldLoseData) {
		t.Fatalf("what-if --down 1,2,3 --json: exit %d, %v, %s", code, err, out)
	}

	if err := c.Fleet.KillNode(2); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 60*time.Second, func() error {
		code, out, errOut = fleetd(t, "status", "--bootstrap", c.Fleet.Bootstrap()[0])
		if code != exitNotSafe || !strings.Contains(out, "under-replicated") {
			return fmt.Errorf("exit %d: %s%s", code, out, errOut)
		}
		return nil
	})
	for _, want := range []string{"safe to disrupt: no", "broker-down: broker 2", "orders-0"} {
		if !strings.Contains(out, want) {
			t.Errorf("not-safe output lacks %q:\n%s", want, out)
		}
	}
}

func TestStatusUnreachableExitsTwoWithinTimeout(t *testing.T) {
	// A closed port refuses at once; a listener that accepts and never
	// answers (a hung broker) must be bounded by --timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, addr := range []string{"127.0.0.1:1", silent.Addr().String()} {
		start := time.Now()
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"status", "--bootstrap", addr, "--timeout", "3s"}, &out, &errb)
		if code != exitError {
			t.Fatalf("%s: exit %d, want %d", addr, code, exitError)
		}
		if !strings.Contains(errb.String(), "cannot read cluster state from "+addr) {
			t.Errorf("%s: message %q does not say what failed", addr, errb.String())
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("%s: took %s with --timeout 3s", addr, el)
		}
	}
}
