// Package terraform_test checks the Terraform module against fleetd's code:
// the IAM policy must grant every AWS action fleetd calls (the one list in
// internal/awsactions), and must let fleetd stop, terminate and tag only the
// instances carrying the cluster tag.
package terraform_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/fleetd/fleetd/internal/awsactions"
)

type statement struct {
	sid        string
	actions    []string
	conditions []condition
}

type condition struct{ test, variable string }

// evalCtx resolves the module's variables in conditions; resources are not
// evaluated (they are unknown before apply).
var evalCtx = &hcl.EvalContext{Variables: map[string]cty.Value{
	"var": cty.ObjectVal(map[string]cty.Value{"cluster_tag": cty.StringVal("fleetd:cluster"), "cluster": cty.StringVal("orders-prod")}),
}}

func fleetdPolicy(t *testing.T) []statement {
	t.Helper()
	files, _ := filepath.Glob("modules/kafka-fleet/*.tf")
	if len(files) == 0 {
		t.Fatal("no .tf files in modules/kafka-fleet")
	}
	p := hclparse.NewParser()
	var out []statement
	found := false
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", f, diags)
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			if b.Type != "data" || len(b.Labels) != 2 || b.Labels[0] != "aws_iam_policy_document" || b.Labels[1] != "fleetd" {
				continue
			}
			found = true
			for _, sb := range b.Body.Blocks {
				if sb.Type != "statement" {
					continue
				}
				var st statement
				if a, ok := sb.Body.Attributes["sid"]; ok {
					v, _ := a.Expr.Value(evalCtx)
					st.sid = v.AsString()
				}
				if a, ok := sb.Body.Attributes["effect"]; ok {
					if v, _ := a.Expr.Value(evalCtx); v.AsString() != "Allow" {
						continue
					}
				}
				v, diags := sb.Body.Attributes["actions"].Expr.Value(evalCtx)
				if diags.HasErrors() {
					t.Fatalf("statement %s actions: %s", st.sid, diags)
				}
				for _, a := range v.AsValueSlice() {
					st.actions = append(st.actions, a.AsString())
				}
				for _, cb := range sb.Body.Blocks {
					if cb.Type != "condition" {
						continue
					}
					tv, d1 := cb.Body.Attributes["test"].Expr.Value(evalCtx)
					vv, d2 := cb.Body.Attributes["variable"].Expr.Value(evalCtx)
					if d1.HasErrors() || d2.HasErrors() {
						t.Fatalf("statement %s condition: %s %s", st.sid, d1, d2)
					}
					st.conditions = append(st.conditions, condition{tv.AsString(), vv.AsString()})
				}
				out = append(out, st)
			}
		}
	}
	if !found {
		t.Fatal(`data "aws_iam_policy_document" "fleetd" not found in the module`)
	}
	return out
}

func grants(st statement, action string) bool {
	for _, a := range st.actions {
		if a == action || a == "*" || (strings.HasSuffix(a, "*") && strings.HasPrefix(action, strings.TrimSuffix(a, "*"))) {
			return true
		}
	}
	return false
}

func TestPolicyGrantsEveryActionFleetdCalls(t *testing.T) {
	sts := fleetdPolicy(t)
	for _, action := range awsactions.Actions {
		if !slices.ContainsFunc(sts, func(st statement) bool { return grants(st, action) }) {
			t.Errorf("fleetd calls %s but the module's fleetd policy does not grant it (terraform/modules/kafka-fleet/iam.tf)", action)
		}
	}
}

// Destructive actions only on the cluster's own instances: every statement
// granting them carries the cluster tag condition (CreateTags may instead be
// limited to tagging at launch).
func TestDestructiveActionsNeedTheClusterTag(t *testing.T) {
	for _, st := range fleetdPolicy(t) {
		for _, action := range []string{"ec2:TerminateInstances", "ec2:StopInstances", "ec2:CreateTags"} {
			if !grants(st, action) {
				continue
			}
			ok := slices.Contains(st.conditions, condition{"StringEquals", "ec2:ResourceTag/fleetd:cluster"})
			if action == "ec2:CreateTags" && slices.Contains(st.conditions, condition{"StringEquals", "ec2:CreateAction"}) {
				ok = true
			}
			if !ok {
				t.Errorf("statement %q grants %s without the condition StringEquals ec2:ResourceTag/<cluster_tag>", st.sid, action)
			}
		}
	}
}
