//go:build integration

// Package scripts_test runs the project's set-up scripts the way a fresh
// machine with an unrelated environment would.
package scripts_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// hostile is an environment a developer's or CI's machine may well have:
// a terraform CLI config that does not exist (CI's machine had exactly that),
// an AWS profile for another account, JVM options, a packer plugin path.
var hostile = []string{
	"TF_CLI_CONFIG_FILE=/nonexistent/terraformrc",
	"TF_DATA_DIR=/nonexistent/tfdata",
	"AWS_PROFILE=some-other-account",
	"AWS_REGION=mars-north-1",
	"JAVA_TOOL_OPTIONS=-Xmx1m -Dfleetd.hostile=1",
	"_JAVA_OPTIONS=-Xmx1m",
	"MAVEN_OPTS=-Xmx1m",
	"PACKER_PLUGIN_PATH=/nonexistent/plugins",
	"CHECKPOINT_DISABLE=",
}

// TestSetUpScriptsIgnoreTheCallersEnvironment runs each set-up script (each
// checks what it built or cached: terraform and packer report their version)
// under the hostile environment; each must succeed and name what it made.
func TestSetUpScriptsIgnoreTheCallersEnvironment(t *testing.T) {
	for _, script := range []string{"terraform.sh", "packer.sh", "kafka-dist.sh", "tools.sh", "prereqs.sh"} {
		t.Run(script, func(t *testing.T) {
			cmd := exec.Command("./" + script)
			cmd.Env = append(os.Environ(), hostile...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s under a hostile environment: %v\n%s", script, err, stderr.String())
			}
			if script == "prereqs.sh" {
				return
			}
			path := strings.TrimSpace(string(out))
			if _, err := os.Stat(path); err != nil || strings.Contains(path, "\n") {
				t.Fatalf("%s printed %q, want one existing path: %v", script, path, err)
			}
		})
	}
}

// TestBuiltToolsRunUnderTheScriptsEnvironment runs the built terraform and
// packer as the Makefile's lint does, after sourcing lib.sh in a hostile
// environment: their output must not carry warnings about the caller's
// settings.
func TestBuiltToolsRunUnderTheScriptsEnvironment(t *testing.T) {
	cmd := exec.Command("bash", "-c", `. ./lib.sh && "$(./terraform.sh)" version && "$(./packer.sh)" version && java -version`)
	cmd.Env = append(os.Environ(), hostile...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, bad := range []string{"Warning", "CLI configuration", "Picked up", "hostile"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("output mentions %q: the caller's environment leaked through:\n%s", bad, out)
		}
	}
}
