package testbed

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/fleetd/fleetd/internal/local"
)

// TerraformBinary is the terraform v1.5.7 scripts/terraform.sh builds (or
// FLEETD_TERRAFORM); a missing one fails the test with the command to run.
func TerraformBinary(t testing.TB) string {
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

// TerraformApply writes mainTF into a new working directory and runs the
// real `terraform init` and `apply` there. mainTF must need no provider, so
// that it runs offline. It returns the directory.
func TerraformApply(t testing.TB, mainTF []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), mainTF, 0o644); err != nil {
		t.Fatal(err)
	}
	tf, err := tfexec.NewTerraform(dir, TerraformBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	// The whole environment, not the caller's: a TF_CLI_CONFIG_FILE naming
	// no file, or a plugin cache elsewhere, must not change the test.
	if err := tf.SetEnv(map[string]string{"PATH": os.Getenv("PATH"), "HOME": dir, "TF_CLI_CONFIG_FILE": os.DevNull}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(Context(t), 2*time.Minute)
	defer cancel()
	if err := tf.Init(ctx); err != nil {
		t.Fatalf("terraform init: %v", err)
	}
	if err := tf.Apply(ctx); err != nil {
		t.Fatalf("terraform apply: %v", err)
	}
	return dir
}
