//go:build integration

package tfoutputs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/fleetd/fleetd/internal/local"
)

// terraformBinary is the terraform v1.5.7 scripts/terraform.sh builds.
func terraformBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("FLEETD_TERRAFORM")
	if bin == "" {
		bin = filepath.Join(local.CacheDir(), "bin", "terraform-1.5.7")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("terraform not found at %s: run scripts/terraform.sh (or make tools) first", bin)
	}
	return bin
}

// applied copies the fixture (outputs only, no provider: runs offline),
// drops the outputs named in drop, and applies it with the real binary.
func applied(t *testing.T, drop ...string) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/fixture/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, block := range strings.Split(string(raw), "\noutput ") {
		name, _, _ := strings.Cut(block, " ")
		if slicesContains(drop, strings.Trim(name, `"`)) {
			continue
		}
		kept = append(kept, block)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(strings.Join(kept, "\noutput ")), 0o644); err != nil {
		t.Fatal(err)
	}
	tf, err := tfexec.NewTerraform(dir, terraformBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := tf.Init(ctx); err != nil {
		t.Fatalf("terraform init: %v", err)
	}
	if err := tf.Apply(ctx); err != nil {
		t.Fatalf("terraform apply: %v", err)
	}
	return dir
}

func slicesContains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestReadOutputsWithTheRealTerraform(t *testing.T) {
	dir := applied(t)
	o, err := Read(context.Background(), terraformBinary(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	if o.LaunchTemplateID != "lt-0123456789abcdef0" || o.SubnetsByAZ["us-east-1b"] != "subnet-bbb" || o.LeaseTable != "fleetd-orders-prod-lease" ||
		!strings.HasSuffix(o.EventsQueueURL, "/fleetd-orders-prod-events") || o.AMITags["fleetd:role"] != "kafka-broker" || len(o.AMIOwners) != 1 || o.Cluster != "orders-prod" {
		t.Fatalf("outputs %+v", o)
	}
}

func TestMissingOutputsAreNamed(t *testing.T) {
	dir := applied(t, "lease_table", "events_queue_url")
	_, err := Read(context.Background(), terraformBinary(t), dir)
	if err == nil || !strings.Contains(err.Error(), "events_queue_url, lease_table") {
		t.Fatalf("missing outputs: %v, want both named", err)
	}
}

func TestNotADeployment(t *testing.T) {
	_, err := Read(context.Background(), terraformBinary(t), t.TempDir())
	if err == nil {
		t.Fatal("an empty directory gave outputs")
	}
}
