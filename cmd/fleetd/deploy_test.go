package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// The systemd unit must call commands and flags that exist, and keep its
// hardening.
func TestSystemdUnitMatchesTheCLI(t *testing.T) {
	f, err := os.Open("../../deploy/fleetd.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("not a key=value line: %q", line)
			continue
		}
		keys[k] = append(keys[k], v)
	}
	for _, k := range []string{"ExecStart", "ExecStartPre"} {
		if len(keys[k]) != 1 {
			t.Fatalf("%s: %v, want one", k, keys[k])
		}
		args := strings.Fields(keys[k][0])
		if args[0] != "/usr/local/bin/fleetd" {
			t.Errorf("%s runs %s", k, args[0])
		}
		var out, errb bytes.Buffer
		if code := run(context.Background(), append(args[1:], "--help"), &out, &errb); code != exitOK || strings.Contains(out.String(), "Available Commands") {
			t.Errorf("%s %q: not a fleetd command with these flags (exit %d): %s", k, args[1:], code, errb.String())
		}
	}
	for k, want := range map[string]string{
		"User": "fleetd", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"CapabilityBoundingSet": "", "StateDirectory": "fleetd", "Restart": "always", "KillSignal": "SIGTERM",
	} {
		if len(keys[k]) == 0 || keys[k][0] != want {
			t.Errorf("%s=%v, want %q", k, keys[k], want)
		}
	}
}
