//go:build integration

package tfoutputs

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/fleetd/fleetd/internal/testbed"
)

// applied applies the fixture (outputs only, no provider: runs offline)
// without the outputs named in drop.
func applied(t *testing.T, drop ...string) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/fixture/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, block := range strings.Split(string(raw), "\noutput ") {
		name, _, _ := strings.Cut(block, " ")
		if !slices.Contains(drop, strings.Trim(name, `"`)) {
			kept = append(kept, block)
		}
	}
	return testbed.TerraformApply(t, []byte(strings.Join(kept, "\noutput ")))
}

func TestReadOutputsWithTheRealTerraform(t *testing.T) {
	dir := applied(t)
	o, err := Read(context.Background(), testbed.TerraformBinary(t), dir)
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
	_, err := Read(context.Background(), testbed.TerraformBinary(t), dir)
	if err == nil || !strings.Contains(err.Error(), "events_queue_url, lease_table") {
		t.Fatalf("missing outputs: %v, want both named", err)
	}
}

func TestNotADeployment(t *testing.T) {
	_, err := Read(context.Background(), testbed.TerraformBinary(t), t.TempDir())
	if err == nil {
		t.Fatal("an empty directory gave outputs")
	}
}
