package terraform_test

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/fleetd/fleetd/internal/tfoutputs"
)

// outputs maps each output declared in dir's .tf files to its value
// expression's source text.
func outputs(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
	if len(files) == 0 {
		t.Fatalf("no .tf files in %s", dir)
	}
	p := hclparse.NewParser()
	out := map[string]string{}
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", f, diags)
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			if b.Type != "output" || len(b.Labels) != 1 {
				continue
			}
			a, ok := b.Body.Attributes["value"]
			if !ok {
				t.Fatalf("%s: output %q has no value", f, b.Labels[0])
			}
			r := a.Expr.Range()
			out[b.Labels[0]] = strings.TrimSpace(string(file.Bytes[r.Start.Byte:r.End.Byte]))
		}
	}
	return out
}

// fleetdReads are the outputs internal/tfoutputs decodes.
func fleetdReads(t *testing.T) []string {
	t.Helper()
	var names []string
	typ := reflect.TypeFor[tfoutputs.Outputs]()
	for i := range typ.NumField() {
		names = append(names, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
	}
	for _, r := range tfoutputs.Required {
		if !slices.Contains(names, r) {
			t.Fatalf("tfoutputs.Required names %q, which tfoutputs.Outputs does not decode", r)
		}
	}
	return names
}

// Every output fleetd reads through --terraform-dir is declared by the module,
// re-exported by the example root module (the directory users point
// --terraform-dir at), and present in the offline fixture the glue is tested
// on. A renamed output fails here, not at a user's first `fleetd run`.
func TestOutputsFleetdReadsExistEverywhere(t *testing.T) {
	module := outputs(t, "modules/kafka-fleet")
	example := outputs(t, "examples/basic")
	fixture := outputs(t, "../internal/tfoutputs/testdata/fixture")
	for _, name := range fleetdReads(t) {
		if _, ok := module[name]; !ok {
			t.Errorf("modules/kafka-fleet has no output %q, which fleetd reads", name)
		}
		if got, want := example[name], "module.kafka_fleet."+name; got != want {
			t.Errorf("examples/basic output %q is %q, want %q", name, got, want)
		}
		if _, ok := fixture[name]; !ok {
			t.Errorf("the tfoutputs fixture lacks output %q, so the glue test does not cover it", name)
		}
	}
}
