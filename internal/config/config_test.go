package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/tfoutputs"
)

const minimal = "cluster: c1\nkafka:\n  bootstrap: [b:9092]\nec2:\n  launch_template: kafka-broker\n"

func noEnv(t *testing.T) {
	for _, k := range []string{EnvBootstrap, EnvSASLPassword, EnvControllerSASLPassword, EnvAPIToken} {
		t.Setenv(k, "")
	}
}

// TestDocumentedExampleLoads parses the complete example in docs/config.md,
// so the documentation cannot drift from the code.
func TestDocumentedExampleLoads(t *testing.T) {
	noEnv(t) // it validates as written: no secret in the environment but the receiver's URL it names
	t.Setenv("FLEETD_SLACK_URL", "https://hooks.slack.example/services/T/B/X")
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/config.md has no yaml block")
	}
	c, err := Parse([]byte(block), "docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster != "orders-prod" || c.Replace.Throttle.Throttle != replace.Rate(50<<20) || c.Gate.RetryMax != 5*time.Minute || c.Chaos.CheckInterval != 15*time.Second || len(c.Kafka.Controllers) != 1 {
		t.Errorf("example loaded as %+v", c)
	}
	if c.Chaos.Enabled {
		t.Error("the documented example must keep chaos off")
	}
	if rs := c.Receivers(); len(rs) != 2 || !rs[0].Slack || rs[0].URL == "" {
		t.Errorf("example receivers %+v", rs)
	}
}

func TestDefaultsAreSafe(t *testing.T) {
	noEnv(t)
	c, err := Parse([]byte(minimal), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Chaos.Enabled || c.Replace.Concurrency != 5 || c.Lease.Kind != "file" || c.API.Listen != "127.0.0.1:7080" || c.Replace.StallWarn != 90*time.Second {
		t.Errorf("defaults: %+v", c)
	}
}

func TestParseRejectsWithTheKeyNamed(t *testing.T) {
	noEnv(t)
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key with its line", minimal + "replace:\n  throtle: 10MiB\n", []string{"f.yaml", "line 7", "throtle"}},
		{"bad duration", minimal + "gate:\n  retry_base: ten seconds\n", []string{`line 7: "retry_base: ten seconds": not a duration`}},
		{"bad size", minimal + "replace:\n  throttle: fast\n", []string{"line 7", "fast"}},
		{"missing bootstrap", "cluster: c1\n", []string{"kafka.bootstrap"}},
		{"missing cluster", "kafka:\n  bootstrap: [b:1]\n", []string{"cluster:"}},
		{"chaos without cron", minimal + "chaos:\n  enabled: true\n", []string{"chaos.cron"}},
		{"throttle 0", minimal + "replace:\n  throttle: 0\n", []string{"line 7", "replace.throttle", "write none for no throttle"}},
		{"throttle \"0\"", minimal + "replace:\n  throttle: \"0\"\n", []string{"replace.throttle", "write none"}},
		{"throttle 0MiB", minimal + "replace:\n  throttle: 0MiB\n", []string{"replace.throttle", "zero"}},
		{"adaptive without target", minimal + "replace:\n  throttle: {min: 10MiB, max: 100MiB}\n", []string{"line 7", "replace.throttle", "target_p99"}},
		{"adaptive max below min", minimal + "replace:\n  throttle: {min: 100MiB, max: 10MiB, target_p99: 200ms}\n", []string{"replace.throttle", "below min"}},
		{"adaptive none", minimal + "replace:\n  throttle: {min: none, max: 10MiB, target_p99: 200ms}\n", []string{"replace.throttle.min", "want a rate"}},
		{"adaptive unknown key", minimal + "replace:\n  throttle: {min: 1MiB, max: 10MiB, target_p99: 200ms, step: 1MiB}\n", []string{"replace.throttle", "unknown key \"step\""}},
		{"deadline policy", minimal + "replace:\n  deadline_policy: wait\n", []string{"replace.deadline_policy", "raise-throttle, identity"}},
		{"zero lead time", minimal + "events:\n  lead_time: 0s\n", []string{"line 7", "events.lead_time", "must be above zero"}},
		{"zero min interval", minimal + "chaos:\n  min_interval: 0\n", []string{"chaos.min_interval"}},
		{"zero lease ttl", minimal + "lease:\n  ttl: 0s\n", []string{"lease.ttl"}},
		{"zero concurrency", minimal + "replace:\n  concurrency: 0\n", []string{"replace.concurrency", "must be above zero"}},
		{"negative dial timeout", "cluster: c1\nkafka:\n  bootstrap: [b:9092]\n  dial_timeout: -5s\nec2:\n  launch_template: lt\n", []string{"kafka.dial_timeout"}},
		{"bootstrap without a numeric port", "cluster: c1\nkafka:\n  bootstrap: [host:notaport]\n", []string{"kafka.bootstrap", "notaport"}},
		{"one-character token on 0.0.0.0", minimal + "api:\n  listen: 0.0.0.0:7080\n  token: x\n", []string{"api.token", "at least 16"}},
		{"token of one space on 0.0.0.0", minimal + "api:\n  listen: 0.0.0.0:7080\n  token: \" \"\n", []string{"api.token", "printable"}},
		{"token with a newline", minimal + "api:\n  token: \"abcdefghijklmnop\\nq\"\n", []string{"api.token", "printable"}},
		{"cluster name with NUL and newline", "cluster: \"c\\0\\nx\"\nkafka:\n  bootstrap: [b:1]\n", []string{"cluster:", "not a cluster name"}},
		{"chaos on 30 February", minimal + "chaos:\n  enabled: true\n  cron: \"0 10 30 2 *\"\n", []string{"chaos.cron", "never fires within 400 days"}},
		{"chaos outside its window", minimal + "chaos:\n  enabled: true\n  cron: \"0 3 * * *\"\n  hours: \"09:00-15:00\"\n", []string{"chaos.cron", "never fires inside the maintenance window"}},
		{"bad time zone", minimal + "chaos:\n  timezone: Mars/Base\n", []string{"chaos", "Mars/Base"}},
		{"public API without token", minimal + "api:\n  listen: 0.0.0.0:7080\n", []string{"api.listen", "FLEETD_API_TOKEN"}},
		{"dynamodb lease without table", minimal + "lease:\n  kind: dynamodb\n", []string{"lease.table"}},
		{"local provider without URL", minimal + "provider:\n  kind: local\n", []string{"provider.local_fleet"}},
		{"stall limits reversed", minimal + "replace:\n  stall_warn: 10m\n  stall_abort: 1m\n", []string{"replace.stall_abort"}},
		{"controller port out of range", "cluster: c1\nkafka:\n  bootstrap: [b:9092]\nec2:\n  launch_template: lt\n  controller_port: 70000\n", []string{"ec2.controller_port", "70000"}},
		{"zero controller chaos interval", minimal + "chaos:\n  controller_min_interval: 0s\n", []string{"chaos.controller_min_interval"}},
		{"receiver without url", minimal + "notifications:\n  - name: ops\n", []string{"notifications[0].url", "url_env"}},
		{"receiver url_env unset", minimal + "notifications:\n  - name: ops\n    url_env: FLEETD_TEST_UNSET_URL\n", []string{"notifications[0].url_env", "FLEETD_TEST_UNSET_URL"}},
		{"receiver bad name", minimal + "notifications:\n  - name: Ops Team\n    url: https://h/x\n", []string{"notifications[0].name", "lower-case"}},
		{"receiver twice", minimal + "notifications:\n  - {name: a, url: \"https://h/x\"}\n  - {name: a, url: \"https://h/y\"}\n", []string{"notifications[1].name", "two receivers"}},
		{"receiver kind", minimal + "notifications:\n  - {name: a, kind: teams, url: \"https://h/x\"}\n", []string{"notifications[0].kind", "webhook or slack"}},
		{"receiver event", minimal + "notifications:\n  - {name: a, url: \"https://h/x\", events: [done]}\n", []string{"notifications[0].events", "\"done\"", "completed"}},
		{"receiver url not http, not echoed", minimal + "notifications:\n  - {name: a, url: \"ftp://h/services/SECRET\"}\n", []string{"notifications[0].url", "not shown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "f.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEnvironmentOverridesFileAndCarriesSecrets(t *testing.T) {
	noEnv(t)
	t.Setenv(EnvBootstrap, "a:1, b:2")
	t.Setenv(EnvSASLPassword, "s3cret")
	t.Setenv(EnvAPIToken, "tok-0123456789abcdef")
	c, err := Parse([]byte("cluster: c\nkafka:\n  bootstrap: [file:9092]\n  sasl: {mechanism: SCRAM-SHA-512, username: fleetd}\nec2: {launch_template: lt}\napi:\n  listen: 0.0.0.0:7080\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Kafka.Bootstrap, ","); got != "a:1,b:2" {
		t.Errorf("bootstrap = %s", got)
	}
	if c.Kafka.SASL.Password != "s3cret" || c.API.Token != "tok-0123456789abcdef" {
		t.Error("secrets not taken from the environment")
	}
}

// A receiver's URL comes from the file or from the variable url_env names;
// an error about it never quotes it (it is the receiver's secret).
func TestNotificationReceivers(t *testing.T) {
	noEnv(t)
	t.Setenv("FLEETD_TEST_SLACK_URL", "https://hooks.example/services/T/B/SECRET")
	c, err := Parse([]byte(minimal+"notifications:\n  - name: oncall\n    kind: slack\n    url_env: FLEETD_TEST_SLACK_URL\n    events: [failed, request-refused]\n    refused_after: 2h\n  - name: audit\n    url: https://audit.example/fleetd\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs := c.Receivers()
	if len(rs) != 2 || !rs[0].Slack || rs[0].URL != "https://hooks.example/services/T/B/SECRET" || len(rs[0].Events) != 2 || rs[0].RefusedAfter != 2*time.Hour ||
		rs[1].Slack || rs[1].RefusedAfter != time.Hour || len(rs[1].Events) != 0 {
		t.Errorf("receivers %+v", rs)
	}
	_, err = Parse([]byte(minimal+"notifications:\n  - {name: a, url: \"https//hooks.example/services/SECRET\"}\n"), "f.yaml")
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("bad URL: %v (accepted, or the error quotes the URL)", err)
	}
}

func TestTerraformOutputsFillWhatTheFileLeavesOut(t *testing.T) {
	noEnv(t)
	outs := &tfoutputs.Outputs{Cluster: "from-tf", LaunchTemplateID: "lt-0abc", ControllerLaunchTemplateID: "lt-0ctl", SubnetsByAZ: map[string]string{"us-east-1a": "subnet-a"},
		EventsQueueURL: "https://sqs/q", LeaseTable: "tf-lease", AMIOwners: []string{"123456789012"}, AMITags: map[string]string{"role": "broker"}}
	c, err := ParseWith([]byte("cluster: c1\nkafka:\n  bootstrap: [b:9092]\nlease:\n  table: my-own-table\n"), "f.yaml", outs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster != "c1" || c.Lease.Table != "my-own-table" {
		t.Errorf("explicit values lost: cluster %q lease table %q", c.Cluster, c.Lease.Table)
	}
	if c.EC2.LaunchTemplate != "lt-0abc" || c.EC2.ControllerLaunchTemplate != "lt-0ctl" || c.Events.QueueURL != "https://sqs/q" || c.EC2.SubnetsByAZ["us-east-1a"] != "subnet-a" ||
		c.EC2.AMIOwners[0] != "123456789012" || c.EC2.AMITags["role"] != "broker" {
		t.Errorf("outputs not applied: %+v %+v", c.EC2, c.Events)
	}
	c, err = ParseWith([]byte("kafka:\n  bootstrap: [b:9092]\n"), "f.yaml", outs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster != "from-tf" || c.Lease.Kind != "dynamodb" || c.Lease.Table != "tf-lease" {
		t.Errorf("outputs over defaults: cluster %q lease %s/%s", c.Cluster, c.Lease.Kind, c.Lease.Table)
	}
}

// The throttle is a typed value: none is none, a rate is a rate, and
// leaving it out takes the executor's default.
func TestThrottleIsTyped(t *testing.T) {
	noEnv(t)
	for _, c := range []struct {
		yaml string
		want replace.Throttle
	}{
		{"", replace.DefaultOptions().Throttle},
		{"replace:\n  throttle: none\n", replace.NoThrottle()},
		{"replace:\n  throttle: 20MiB\n", replace.Rate(20 << 20)},
	} {
		cfg, err := Parse([]byte(minimal+c.yaml), "test.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Replace.Options().Throttle; got != c.want {
			t.Errorf("%q: throttle %s, want %s", c.yaml, got, c.want)
		}
	}
}

// An adaptive throttle reads into the executor's options and starts at
// its min.
func TestAdaptiveThrottle(t *testing.T) {
	noEnv(t)
	cfg, err := Parse([]byte(minimal+"replace:\n  throttle:\n    min: 20MiB\n    max: 200MiB\n    target_p99: 250ms\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Replace.Options()
	want := replace.Adaptive{Min: 20 << 20, Max: 200 << 20, TargetP99: 250 * time.Millisecond}
	if o.Adaptive == nil || *o.Adaptive != want || o.Throttle != replace.Rate(20<<20) {
		t.Errorf("options: adaptive %+v throttle %s, want %+v from 20 MiB/s", o.Adaptive, o.Throttle, want)
	}
}

// An error that names a Terraform output names one the module has.
func TestMissingLaunchTemplateNamesARealOutput(t *testing.T) {
	noEnv(t)
	_, err := Parse([]byte("cluster: c1\nkafka:\n  bootstrap: [b:9092]\n"), "test.yaml")
	if err == nil || !strings.Contains(err.Error(), "ec2.launch_template") {
		t.Fatalf("err %v, want ec2.launch_template named", err)
	}
	for _, out := range tfoutputs.Required {
		if strings.Contains(err.Error(), out+" output") {
			return
		}
	}
	t.Fatalf("%q names no output of %v", err, tfoutputs.Required)
}
