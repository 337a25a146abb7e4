package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// exported are the metric names fleetd's registry serves (a histogram's
// _bucket, _sum and _count included).
func exported(t *testing.T) []string {
	t.Helper()
	m := newTest()
	m.Receivers([]string{"oncall"}) // series per receiver exist once one is configured
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if mf.GetType().String() == "HISTOGRAM" {
			names = append(names, mf.GetName()+"_bucket", mf.GetName()+"_sum", mf.GetName()+"_count")
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\bfleetd_[a-z0-9_]+`)

// checkNames fails for every fleetd_ metric a query names that fleetd does
// not export (a renamed metric silently empties a panel or an alert).
func checkNames(t *testing.T, where, query string, names []string) int {
	t.Helper()
	found := 0
	for _, n := range metricName.FindAllString(query, -1) {
		found++
		if !slices.Contains(names, n) {
			t.Errorf("%s names %s, which fleetd does not export", where, n)
		}
	}
	return found
}

// Every query of the Grafana dashboard names metrics fleetd exports.
func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana/fleetd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/fleetd.json: %v", err)
	}
	names := exported(t)
	if len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	for _, p := range dash.Panels {
		n := 0
		for _, tg := range p.Targets {
			n += checkNames(t, "panel "+p.Title, tg.Expr, names)
		}
		if n == 0 {
			t.Errorf("panel %q queries no fleetd metric", p.Title)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			checkNames(t, "variable query", q, names)
		}
	}
}

// Every alert rule names metrics fleetd exports and links its runbook
// entry, which exists in docs/runbook.md.
func TestAlertRulesNameExportedMetricsAndRunbooks(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/prometheus/fleetd-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	runbook, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	names := exported(t)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if checkNames(t, "alert "+r.Alert, r.Expr, names) == 0 {
				t.Errorf("alert %s queries no fleetd metric", r.Alert)
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook"], "docs/runbook.md#")
			if !ok {
				t.Errorf("alert %s: runbook %q, want docs/runbook.md#<entry>", r.Alert, r.Annotations["runbook"])
				continue
			}
			if !strings.Contains(strings.ToLower(string(runbook)), "\n## "+anchor) {
				t.Errorf("alert %s: docs/runbook.md has no section %q", r.Alert, anchor)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alert rules")
	}
}
