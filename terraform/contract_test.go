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
	values     conditionValues
}

type condition struct{ test, variable string }

// conditionValues are a statement's condition values where they are
// literal (nil where they depend on resources or functions).
type conditionValues map[condition][]string

// evalCtx resolves the module's variables in conditions; resources are not
// evaluated (they are unknown before apply).
var evalCtx = &hcl.EvalContext{Variables: map[string]cty.Value{
	"var": cty.ObjectVal(map[string]cty.Value{"cluster_tag": cty.StringVal("fleetd:cluster"), "node_id_tag": cty.StringVal("fleetd:node-id"), "cluster": cty.StringVal("orders-prod")}),
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
					c := condition{tv.AsString(), vv.AsString()}
					st.conditions = append(st.conditions, c)
					if vals, d := cb.Body.Attributes["values"].Expr.Value(evalCtx); !d.HasErrors() && vals.CanIterateElements() {
						if st.values == nil {
							st.values = conditionValues{}
						}
						for _, v := range vals.AsValueSlice() {
							st.values[c] = append(st.values[c], v.AsString())
						}
					}
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

// RunInstances only from the module's launch template (issue 12: any image
// owner and key pair were allowed).
func TestRunInstancesOnlyFromTheLaunchTemplate(t *testing.T) {
	for _, st := range fleetdPolicy(t) {
		if grants(st, "ec2:RunInstances") && !slices.Contains(st.conditions, condition{"ArnEquals", "ec2:LaunchTemplate"}) {
			t.Errorf("statement %q grants ec2:RunInstances without ArnEquals ec2:LaunchTemplate", st.sid)
		}
	}
}

// CreateTags names the keys it may write; after launch, only the progress
// tags: the identity tags a broker reads at boot are never writable then.
func TestCreateTagsIsLimitedToKnownKeys(t *testing.T) {
	identity := []string{"fleetd:node-id", "fleetd:cluster", "fleetd:role", "fleetd:cluster-id", "fleetd:controller-quorum"}
	for _, st := range fleetdPolicy(t) {
		if !grants(st, "ec2:CreateTags") {
			continue
		}
		keys := condition{"ForAllValues:StringEquals", "aws:TagKeys"}
		if !slices.Contains(st.conditions, keys) {
			t.Errorf("statement %q grants ec2:CreateTags for any tag key (want ForAllValues:StringEquals aws:TagKeys)", st.sid)
			continue
		}
		if slices.Contains(st.conditions, condition{"StringEquals", "ec2:CreateAction"}) {
			continue // at launch, on an instance fleetd is creating
		}
		vals, ok := st.values[keys]
		if !ok {
			t.Errorf("statement %q: the tag keys allowed after launch must be a literal list", st.sid)
		}
		for _, k := range vals {
			if slices.Contains(identity, k) {
				t.Errorf("statement %q lets fleetd rewrite identity tag %s after launch", st.sid, k)
			}
		}
	}
}

// moduleBlocks returns the module's blocks of type typ with first label
// label (e.g. resource aws_sqs_queue).
func moduleBlocks(t *testing.T, typ, label string) map[string]*hclsyntax.Block {
	t.Helper()
	files, _ := filepath.Glob("modules/kafka-fleet/*.tf")
	p := hclparse.NewParser()
	out := map[string]*hclsyntax.Block{}
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", f, diags)
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			if b.Type == typ && len(b.Labels) == 2 && b.Labels[0] == label {
				out[b.Labels[1]] = b
			}
		}
	}
	return out
}

func literal(t *testing.T, b *hclsyntax.Block, name string) cty.Value {
	t.Helper()
	a, ok := b.Body.Attributes[name]
	if !ok {
		return cty.NilVal
	}
	v, diags := a.Expr.Value(evalCtx)
	if diags.HasErrors() {
		return cty.NilVal
	}
	return v
}

func TestEventsDeadLetterQueueDepthAlarms(t *testing.T) {
	for name, b := range moduleBlocks(t, "resource", "aws_cloudwatch_metric_alarm") {
		m := literal(t, b, "metric_name")
		dims, ok := b.Body.Attributes["dimensions"]
		if m == cty.NilVal || m.AsString() != "ApproximateNumberOfMessagesVisible" || !ok {
			continue
		}
		if slices.ContainsFunc(dims.Expr.Variables(), func(tr hcl.Traversal) bool {
			return tr.RootName() == "aws_sqs_queue" && len(tr) > 1 && tr[1].(hcl.TraverseAttr).Name == "events_dlq"
		}) {
			t.Logf("alarm %s watches the dead-letter queue", name)
			return
		}
	}
	t.Error("no CloudWatch alarm on the events dead-letter queue's depth: a message moved there is never seen")
}

func TestEventsQueueDeniesOtherSenders(t *testing.T) {
	doc, ok := moduleBlocks(t, "data", "aws_iam_policy_document")["events_queue"]
	if !ok {
		t.Fatal("no events_queue policy document")
	}
	for _, st := range doc.Body.Blocks {
		if e := literal(t, st, "effect"); e != cty.NilVal && e.AsString() == "Deny" {
			return
		}
	}
	t.Error("the events queue policy has no Deny for senders other than the two EventBridge rules")
}

func TestLaunchTemplateEncryptsTheRootVolumeAndEgressIsNotOpen(t *testing.T) {
	templates := moduleBlocks(t, "resource", "aws_launch_template")
	for _, name := range []string{"broker", "controller"} {
		lt, ok := templates[name]
		if !ok {
			t.Errorf("no %s launch template", name)
			continue
		}
		encrypted := false
		for _, b := range lt.Body.Blocks {
			if b.Type != "block_device_mappings" {
				continue
			}
			for _, e := range b.Body.Blocks {
				if v := literal(t, e, "encrypted"); e.Type == "ebs" && v != cty.NilVal && v.True() {
					encrypted = true
				}
			}
		}
		if !encrypted {
			t.Errorf("the %s launch template does not encrypt the root volume", name)
		}
	}
	for name, b := range moduleBlocks(t, "resource", "aws_vpc_security_group_egress_rule") {
		if p := literal(t, b, "ip_protocol"); p != cty.NilVal && p.AsString() == "-1" {
			t.Errorf("egress rule %s allows every protocol and port", name)
		}
	}
	table := moduleBlocks(t, "resource", "aws_dynamodb_table")["lease"]
	if !slices.ContainsFunc(table.Body.Blocks, func(b *hclsyntax.Block) bool { return b.Type == "server_side_encryption" }) {
		t.Error("the lease table has no server_side_encryption block (KMS key)")
	}
}
