//go:build integration

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetd/fleetd/internal/testbed"
)

// fleetd config validate --terraform-dir reads the module's outputs with the
// real terraform binary: the launch template, queue and lease table need not
// be in the file.
func TestConfigFromTerraformOutputs(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	raw, err := os.ReadFile("../../internal/tfoutputs/testdata/fixture/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	dir, bin := testbed.TerraformApply(t, raw), testbed.TerraformBinary(t)
	cfg := filepath.Join(t.TempDir(), "fleetd.yaml")
	os.WriteFile(cfg, []byte("kafka:\n  bootstrap: [b:9092]\n"), 0o600)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"config", "validate", cfg, "--terraform-dir", dir, "--terraform", bin}, &out, &errb)
	if code != exitOK || !strings.Contains(out.String(), "cluster orders-prod, provider ec2") || !strings.Contains(out.String(), "lease dynamodb") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	// Without the outputs the same file lacks the launch template.
	if code := run(context.Background(), []string{"config", "validate", cfg}, &out, &errb); code != exitError || !strings.Contains(errb.String(), "cluster:") {
		t.Fatalf("without --terraform-dir: exit %d %s", code, errb.String())
	}
}
