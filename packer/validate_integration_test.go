//go:build integration

package packer_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetd/fleetd/internal/testbed"
)

// A well-formed digest; validate checks the form, the build checks the value.
var fakeSHA512 = strings.Repeat("0123456789abcdef", 8)

// packer runs the real packer (built from its Go module by scripts/packer.sh)
// offline in dir: no checkpoint call, the amazon plugin from the cache.
func packer(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	bin, plugins := testbed.Packer(t)
	cmd := exec.CommandContext(testbed.Context(t), bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1", "PACKER_PLUGIN_PATH="+plugins,
		"PACKER_CONFIG_DIR="+t.TempDir(), "PACKER_CACHE_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPackerFmtAndValidate(t *testing.T) {
	if out, err := packer(t, ".", "fmt", "-check", "-diff", "."); err != nil {
		t.Fatalf("packer fmt -check: %v\n%s\nrun `packer fmt packer/`", err, out)
	}
	out, err := packer(t, ".", "validate", "-var", "kafka_sha512="+fakeSHA512, ".")
	if err != nil {
		t.Fatalf("packer validate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "The configuration is valid.") {
		t.Fatalf("packer validate said:\n%s", out)
	}
}

func TestPackerValidateRefusesBadInput(t *testing.T) {
	// The checksum variable has a validation rule: a truncated digest is
	// refused before any instance starts.
	out, err := packer(t, ".", "validate", "-var", "kafka_sha512=abc123", ".")
	if err == nil || !strings.Contains(out, "kafka_sha512 must be the 128 hex digits") {
		t.Errorf("a short kafka_sha512: err %v\n%s", err, out)
	}
	// The amazon plugin's schema is enforced: an argument it does not know
	// fails validate. This is what caught imds_support, which needs a newer
	// plugin than the one packer 1.9.4 bundles.
	dir := t.TempDir()
	raw, err := os.ReadFile("kafka-broker.pkr.hcl")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(raw), "  ssh_username  = \"ubuntu\"\n",
		"  ssh_username  = \"ubuntu\"\n  no_such_option = true\n", 1)
	if broken == string(raw) {
		t.Fatal("the template's ssh_username line moved; update this test")
	}
	if err := os.WriteFile(filepath.Join(dir, "kafka-broker.pkr.hcl"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = packer(t, dir, "validate", "-var", "kafka_sha512="+fakeSHA512, ".")
	if err == nil || !strings.Contains(out, `"no_such_option" is not expected`) {
		t.Errorf("an unknown amazon-ebs argument: err %v\n%s", err, out)
	}
}
