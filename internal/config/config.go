// Package config loads fleetd's one YAML configuration file: strictly (an
// unknown key is an error naming it and its line), with defaults and
// validation in one place, and secrets from the environment so that they
// never need to be written into the file or onto a command line.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/events"
	"github.com/fleetd/fleetd/internal/kclient"
	"github.com/fleetd/fleetd/internal/notify"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/schedule"
	"github.com/fleetd/fleetd/internal/tfoutputs"
)

// Config is fleetd's configuration. docs/config.md holds a complete,
// commented example that the tests load.
type Config struct {
	// Cluster names the Kafka cluster; instances carry it in their cluster tag.
	Cluster  string           `yaml:"cluster"`
	StateDir string           `yaml:"state_dir"`
	Kafka    kclient.Settings `yaml:"kafka"`
	Provider Provider         `yaml:"provider"`
	Replace  Replace          `yaml:"replace"`
	Canary   Canary           `yaml:"canary"`
	Gate     Gate             `yaml:"gate"`
	Chaos    Chaos            `yaml:"chaos"`
	Lease    Lease            `yaml:"lease"`
	AWS      AWS              `yaml:"aws"`
	EC2      EC2              `yaml:"ec2"`
	Events   Events           `yaml:"events"`
	AMIDrift AMIDrift         `yaml:"ami_drift"`
	API      API              `yaml:"api"`
	Tracing  Tracing          `yaml:"tracing"`
	Log      Log              `yaml:"log"`
	// Notifications are the receivers of fleetd's events (none by default).
	Notifications []Notification `yaml:"notifications"`
}

// Notification is one receiver of fleetd's events: a generic JSON webhook
// or a Slack-compatible incoming webhook.
type Notification struct {
	// Name names the receiver in logs and metrics (its URL never appears).
	Name string `yaml:"name"`
	// Kind is webhook (the event as JSON; the default) or slack ({"text"}).
	Kind string `yaml:"kind"`
	// URL, or URLEnv: the environment variable that holds it, so that the
	// secret stays out of the file.
	URL    string `yaml:"url"`
	URLEnv string `yaml:"url_env"`
	// Events to send (default all): request-accepted, request-refused,
	// started, completed, rolled-back, aborted, failed, paused, resumed,
	// lease-lost, lease-acquired.
	Events []string `yaml:"events"`
	// RefusedAfter: request-refused is sent once per request, when the gate
	// has refused it for this long (default 1h).
	RefusedAfter time.Duration `yaml:"refused_after"`
}

// Provider says what fleetd's instances are.
type Provider struct {
	Kind string `yaml:"kind"` // local or ec2
	// LocalFleet is the control API URL of `fleetd local up` (kind local).
	LocalFleet string `yaml:"local_fleet"`
}

// Replace tunes replacements.
type Replace struct {
	Throttle        Throttle      `yaml:"throttle"` // per second, or none
	Concurrency     int           `yaml:"concurrency"`
	Order           replace.Order `yaml:"order"`
	Poll            time.Duration `yaml:"poll"`
	RegisterTimeout time.Duration `yaml:"register_timeout"`
	StallWarn       time.Duration `yaml:"stall_warn"`
	StallAbort      time.Duration `yaml:"stall_abort"`
	// RateCap bounds the rate fleetd configures while steering the copy
	// towards the throttle, as a multiple of it (1: no steering).
	RateCap float64 `yaml:"rate_cap"`
	// LeaderSettle and LeaderGroup: leaders move to new replicas this long
	// after the copy, this many partitions at a time.
	LeaderSettle time.Duration `yaml:"leader_settle"`
	LeaderGroup  int           `yaml:"leader_group"`
	// DeadlinePolicy is what a move that cannot finish before its
	// request's deadline (an AWS retirement) does; DeadlineMargin the time
	// kept before the deadline for the rest of the workflow.
	DeadlinePolicy replace.DeadlinePolicy `yaml:"deadline_policy"`
	DeadlineMargin time.Duration          `yaml:"deadline_margin"`
}

// Canary is fleetd's canary: during every workflow, sequenced records
// (acks=all, idempotent) written to a topic of fleetd's own and read back,
// the verdict kept in the record. On unless enabled is false.
type Canary struct {
	Enabled *bool  `yaml:"enabled"`
	Topic   string `yaml:"topic"`
	Rate    int    `yaml:"rate"` // records per second
}

// On reports whether the canary runs.
func (c Canary) On() bool { return c.Enabled == nil || *c.Enabled }

// Gate says how a request the gate refuses is retried: after RetryBase,
// doubling up to RetryMax, and dropped (with its reason kept in the status)
// after GiveUpAfter.
type Gate struct {
	RetryBase   time.Duration `yaml:"retry_base"`
	RetryMax    time.Duration `yaml:"retry_max"`
	GiveUpAfter time.Duration `yaml:"give_up_after"`
}

// Chaos is the weekly chaos schedule (off unless enabled).
type Chaos struct {
	Enabled     bool          `yaml:"enabled"`
	Leashed     bool          `yaml:"leashed"`
	Cron        string        `yaml:"cron"`
	Timezone    string        `yaml:"timezone"`
	Days        string        `yaml:"days"`
	Hours       string        `yaml:"hours"`
	MinInterval time.Duration `yaml:"min_interval"`
	Pick        string        `yaml:"pick"`
	// CheckInterval is how often the schedule is asked whether a slot has
	// come (default 15s; a slot is decided at most this late).
	CheckInterval time.Duration `yaml:"check_interval"`
	// Controllers lets a slot pick a KRaft controller too (default off),
	// at most once per ControllerMinInterval (default 720h, 30 days).
	Controllers           bool          `yaml:"controllers"`
	ControllerMinInterval time.Duration `yaml:"controller_min_interval"`
}

// Lease keeps two fleetd processes from both acting on one cluster.
type Lease struct {
	Kind  string        `yaml:"kind"` // file or dynamodb
	Path  string        `yaml:"path"`
	Table string        `yaml:"table"`
	TTL   time.Duration `yaml:"ttl"`
}

// AWS configures the AWS clients (the DynamoDB lease now; EC2, SQS next).
// Credentials always come from the standard chain (instance role,
// environment, shared files), never from this file.
type AWS struct {
	// Region; default from the standard chain (AWS_REGION, instance metadata).
	Region string `yaml:"region"`
}

// EC2 says which instances are the brokers and how new ones are launched
// (provider.kind ec2).
type EC2 struct {
	// ClusterTag's value on an instance is the cluster name; NodeIDTag's
	// value its broker node id.
	ClusterTag            string            `yaml:"cluster_tag"`
	NodeIDTag             string            `yaml:"node_id_tag"`
	LaunchTemplate        string            `yaml:"launch_template"`
	LaunchTemplateVersion string            `yaml:"launch_template_version"`
	InstanceType          string            `yaml:"instance_type"`
	AMIOwners             []string          `yaml:"ami_owners"`
	AMITags               map[string]string `yaml:"ami_tags"`
	// SubnetsByAZ places a replacement whose old instance's subnet is
	// unknown (the Terraform module's subnets_by_az output).
	SubnetsByAZ map[string]string `yaml:"subnets_by_az"`
	// ControllerLaunchTemplate launches KRaft controllers (the module's
	// controller_launch_template_id output); empty: controllers are not
	// replaced. ControllerInstanceType overrides the template's type;
	// ControllerPort is the controller listener's port (default 9093).
	ControllerLaunchTemplate string `yaml:"controller_launch_template"`
	ControllerInstanceType   string `yaml:"controller_instance_type"`
	ControllerPort           int    `yaml:"controller_port"`
}

// Events configures the AWS event sources (provider.kind ec2).
type Events struct {
	// QueueURL is the SQS queue EventBridge feeds; empty: not consumed.
	QueueURL string        `yaml:"queue_url"`
	Wait     time.Duration `yaml:"wait"`
	// PollInterval for DescribeInstanceStatus; 0 turns polling off.
	PollInterval time.Duration `yaml:"poll_interval"`
	// ReplaceOn lists the event kinds that queue a replacement; others are
	// logged only.
	ReplaceOn []events.Kind `yaml:"replace_on"`
	// LeadTime: a scheduled event's replacement waits for the maintenance
	// window only if the window opens at least this long before the event.
	LeadTime time.Duration `yaml:"lead_time"`
}

// AMIDrift replaces brokers on an older AMI than the newest matching one,
// one at a time, inside the chaos maintenance window and min_interval.
type AMIDrift struct {
	Enabled  bool          `yaml:"enabled"`
	Interval time.Duration `yaml:"interval"`
}

// API is fleetd's HTTP API.
type API struct {
	Listen string `yaml:"listen"`
	// Token is required unless Listen is loopback; set it with FLEETD_API_TOKEN.
	Token string `yaml:"token"`
}

// Tracing sends one trace per replacement over OTLP (off by default).
type Tracing struct {
	Enabled  bool   `yaml:"enabled"`
	Endpoint string `yaml:"endpoint"`
}

// Log configures zerolog.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"` // json or console
}

// Throttle is replace.throttle: a rate per second like "50MiB", or none
// (replace.ParseThrottle), or an adaptive throttle
// {min: 20MiB, max: 200MiB, target_p99: 200ms}; unset takes the
// executor's default.
type Throttle struct {
	replace.Throttle
	Adaptive *replace.Adaptive
}

// UnmarshalYAML accepts a rate, none, or the adaptive mapping.
func (t *Throttle) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		return t.adaptive(n)
	}
	v, err := replace.ParseThrottle(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: replace.throttle: %w", n.Line, err)
	}
	t.Throttle = v
	return nil
}

// adaptive reads {min, max, target_p99}: every key is required, and the
// bounds are rates.
func (t *Throttle) adaptive(n *yaml.Node) error {
	var raw struct {
		Min       *string        `yaml:"min"`
		Max       *string        `yaml:"max"`
		TargetP99 *time.Duration `yaml:"target_p99"`
	}
	if err := n.Decode(&raw); err != nil {
		return fmt.Errorf("line %d: replace.throttle: %w", n.Line, err)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != "min" && k != "max" && k != "target_p99" {
			return fmt.Errorf("line %d: replace.throttle: unknown key %q: an adaptive throttle has min, max and target_p99", n.Content[i].Line, k)
		}
	}
	if raw.Min == nil || raw.Max == nil || raw.TargetP99 == nil {
		return fmt.Errorf("line %d: replace.throttle: an adaptive throttle needs min, max and target_p99 (e.g. {min: 20MiB, max: 200MiB, target_p99: 200ms})", n.Line)
	}
	var a replace.Adaptive
	for _, b := range []struct {
		name string
		v    string
		into *int64
	}{{"min", *raw.Min, &a.Min}, {"max", *raw.Max, &a.Max}} {
		v, err := replace.ParseThrottle(b.v)
		bps, ok := v.BytesPerSec()
		if err != nil || !ok {
			return fmt.Errorf("line %d: replace.throttle.%s: %q, want a rate like 50MiB", n.Line, b.name, b.v)
		}
		*b.into = bps
	}
	a.TargetP99 = *raw.TargetP99
	if err := a.Check(); err != nil {
		return fmt.Errorf("line %d: replace.throttle: %w", n.Line, err)
	}
	t.Throttle, t.Adaptive = replace.Rate(a.Min), &a
	return nil
}

// positiveKeys must be above zero when written: a zero has no meaning for
// them, and taking it as "the default" would run fleetd with a value nobody
// wrote. (events.poll_interval is not here: 0 turns polling off.)
var positiveKeys = []string{
	"replace.concurrency", "replace.poll", "replace.deadline_margin", "replace.register_timeout", "replace.stall_warn", "replace.stall_abort",
	"gate.retry_base", "gate.retry_max", "gate.give_up_after", "chaos.min_interval", "chaos.check_interval", "chaos.controller_min_interval", "lease.ttl",
	"events.wait", "events.lead_time", "ami_drift.interval", "kafka.dial_timeout", "ec2.controller_port",
}

// explicitValues refuses a zero or negative value written for a key in
// positiveKeys, naming the key and its line. Defaults fill only what the
// file leaves out.
func explicitValues(raw []byte) error {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil || len(root.Content) == 0 {
		return nil // the strict decode reports it
	}
	for _, key := range positiveKeys {
		n := lookup(root.Content[0], strings.Split(key, "."))
		if n == nil || n.Kind != yaml.ScalarNode {
			continue
		}
		v := strings.TrimSpace(n.Value)
		d, derr := time.ParseDuration(v)
		i, ierr := strconv.Atoi(v)
		if derr == nil && d <= 0 || ierr == nil && i <= 0 {
			return fmt.Errorf("line %d: %s: %s must be above zero (leave the key out for the default)", n.Line, key, v)
		}
	}
	return nil
}

// lookup finds the value node at path in a mapping node.
func lookup(n *yaml.Node, path []string) *yaml.Node {
	for _, name := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// badDuration matches yaml's message for a string that is not a duration.
var badDuration = regexp.MustCompile("line ([0-9]+): cannot unmarshal !!str `[^`]*` into time.Duration")

// DefaultAMITags select broker AMIs: the Packer template (packer/) writes
// exactly these tags (packer/packer_test.go keeps them equal).
var DefaultAMITags = map[string]string{"fleetd:role": "kafka-broker"}

// Environment variables that override the file.
const (
	EnvBootstrap    = "FLEETD_KAFKA_BOOTSTRAP"
	EnvSASLPassword = "FLEETD_KAFKA_SASL_PASSWORD"
	// EnvControllerSASLPassword is kafka.controller_security.sasl.password.
	EnvControllerSASLPassword = "FLEETD_KAFKA_CONTROLLER_SASL_PASSWORD"
	EnvAPIToken               = "FLEETD_API_TOKEN"
)

// Load reads and validates the file at path, applying environment overrides.
func Load(path string) (*Config, error) {
	return LoadWith(path, nil)
}

// LoadWith is Load with Terraform outputs filling what the file leaves out
// (explicit values win; outputs win over defaults).
func LoadWith(path string, outs *tfoutputs.Outputs) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseWith(raw, path, outs)
}

// Parse decodes raw (named source in errors), applies the environment and
// defaults, and validates.
func Parse(raw []byte, source string) (*Config, error) { return ParseWith(raw, source, nil) }

// ParseWith is Parse with Terraform outputs (see LoadWith).
func ParseWith(raw []byte, source string, outs *tfoutputs.Outputs) (*Config, error) {
	if err := explicitValues(raw); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		// yaml shortens the value; quote the whole line instead.
		lines := strings.Split(string(raw), "\n")
		msg = badDuration.ReplaceAllStringFunc(msg, func(m string) string {
			n, _ := strconv.Atoi(badDuration.FindStringSubmatch(m)[1])
			text := ""
			if n >= 1 && n <= len(lines) {
				text = strings.TrimSpace(lines[n-1])
			}
			return fmt.Sprintf("line %d: %q: not a duration (write it like 90s, 10m or 24h)", n, text)
		})
		return nil, fmt.Errorf("%s: %s", source, msg)
	}
	c.ApplyEnv(os.Getenv)
	if outs != nil {
		c.ApplyOutputs(*outs)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return c, nil
}

// ApplyEnv applies environment overrides through getenv.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if v := getenv(EnvBootstrap); v != "" {
		c.Kafka.Bootstrap = SplitList(v)
	}
	if v := getenv(EnvSASLPassword); v != "" {
		c.Kafka.SASL.Password = v
	}
	if v := getenv(EnvControllerSASLPassword); v != "" && c.Kafka.ControllerSecurity != nil {
		c.Kafka.ControllerSecurity.SASL.Password = v
	}
	if v := getenv(EnvAPIToken); v != "" {
		c.API.Token = v
	}
	for i := range c.Notifications {
		if n := &c.Notifications[i]; n.URLEnv != "" {
			n.URL = getenv(n.URLEnv)
		}
	}
}

// ApplyOutputs fills settings the file left empty from the Terraform
// module's outputs.
func (c *Config) ApplyOutputs(o tfoutputs.Outputs) {
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	set(&c.Cluster, o.Cluster)
	set(&c.EC2.LaunchTemplate, o.LaunchTemplateID)
	set(&c.EC2.ControllerLaunchTemplate, o.ControllerLaunchTemplateID)
	set(&c.EC2.ClusterTag, o.ClusterTag)
	set(&c.EC2.NodeIDTag, o.NodeIDTag)
	set(&c.Events.QueueURL, o.EventsQueueURL)
	if c.Lease.Table == "" && o.LeaseTable != "" {
		c.Lease.Table = o.LeaseTable
		set(&c.Lease.Kind, "dynamodb")
	}
	if len(c.EC2.AMIOwners) == 0 {
		c.EC2.AMIOwners = o.AMIOwners
	}
	if c.EC2.AMITags == nil {
		c.EC2.AMITags = o.AMITags
	}
	if c.EC2.SubnetsByAZ == nil {
		c.EC2.SubnetsByAZ = o.SubnetsByAZ
	}
}

var receiverName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// validateNotifications checks the receivers. No message quotes a URL: it
// is the receiver's secret.
func (c *Config) validateNotifications() error {
	seen := map[string]bool{}
	for i, n := range c.Notifications {
		key := fmt.Sprintf("notifications[%d]", i)
		if !receiverName.MatchString(n.Name) {
			return fmt.Errorf("%s.name: %q, want lower-case letters, digits, '-' or '_' (at most 63; it labels metrics)", key, n.Name)
		}
		if seen[n.Name] {
			return fmt.Errorf("%s.name: %q names two receivers", key, n.Name)
		}
		seen[n.Name] = true
		if n.Kind != "webhook" && n.Kind != "slack" {
			return fmt.Errorf("%s.kind: %q, want webhook or slack", key, n.Kind)
		}
		if n.URL == "" {
			if n.URLEnv != "" {
				return fmt.Errorf("%s.url_env: the environment variable %s is empty or not set", key, n.URLEnv)
			}
			return fmt.Errorf("%s.url: required (or url_env naming the environment variable that holds it)", key)
		}
		if u, err := url.Parse(n.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s.url: not an http(s) URL with a host (not shown: it may hold a secret)", key)
		}
		for _, e := range n.Events {
			if !slices.Contains(notify.Kinds, notify.Kind(e)) {
				return fmt.Errorf("%s.events: %q is not one of %s", key, e, joinNames(notify.Kinds))
			}
		}
		if n.RefusedAfter < 0 {
			return fmt.Errorf("%s.refused_after: %s is negative", key, n.RefusedAfter)
		}
	}
	return nil
}

// Receivers are the notification receivers as the notify package takes them.
func (c *Config) Receivers() []notify.Receiver {
	var out []notify.Receiver
	for _, n := range c.Notifications {
		r := notify.Receiver{Name: n.Name, Slack: n.Kind == "slack", URL: n.URL, RefusedAfter: n.RefusedAfter}
		for _, e := range n.Events {
			r.Events = append(r.Events, notify.Kind(e))
		}
		out = append(out, r)
	}
	return out
}

var topicName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

// Defaults fills what the file left out. Safe values: chaos off, leashed
// off only when asked, file lease, API on loopback.
func (c *Config) Defaults() {
	c.StateDir = cmp.Or(c.StateDir, "/var/lib/fleetd")
	c.Provider.Kind = cmp.Or(c.Provider.Kind, "ec2")
	c.Replace.Defaults()
	c.Canary.Topic = cmp.Or(c.Canary.Topic, "fleetd-canary")
	for i := range c.Notifications {
		n := &c.Notifications[i]
		n.Kind = cmp.Or(n.Kind, "webhook")
		n.RefusedAfter = cmp.Or(n.RefusedAfter, time.Hour)
	}
	c.Canary.Rate = cmp.Or(c.Canary.Rate, 20)
	gate := controller.DefaultOptions()
	c.Gate.RetryBase = cmp.Or(c.Gate.RetryBase, gate.RetryBase)
	c.Gate.RetryMax = cmp.Or(c.Gate.RetryMax, gate.RetryMax)
	c.Gate.GiveUpAfter = cmp.Or(c.Gate.GiveUpAfter, gate.GiveUpAfter)
	c.Chaos.Timezone = cmp.Or(c.Chaos.Timezone, "UTC")
	c.Chaos.Days = cmp.Or(c.Chaos.Days, "mon-fri")
	c.Chaos.Hours = cmp.Or(c.Chaos.Hours, "09:00-15:00")
	c.Chaos.MinInterval = cmp.Or(c.Chaos.MinInterval, 24*time.Hour)
	c.Chaos.CheckInterval = cmp.Or(c.Chaos.CheckInterval, 15*time.Second)
	c.Chaos.ControllerMinInterval = cmp.Or(c.Chaos.ControllerMinInterval, 30*24*time.Hour)
	c.Chaos.Pick = cmp.Or(c.Chaos.Pick, string(schedule.PickOldest))
	c.Lease.Kind = cmp.Or(c.Lease.Kind, "file")
	c.Lease.Path = cmp.Or(c.Lease.Path, c.StateDir+"/lease")
	c.Lease.TTL = cmp.Or(c.Lease.TTL, 30*time.Second)
	c.EC2.ClusterTag = cmp.Or(c.EC2.ClusterTag, "fleetd:cluster")
	c.EC2.NodeIDTag = cmp.Or(c.EC2.NodeIDTag, "fleetd:node-id")
	c.EC2.LaunchTemplateVersion = cmp.Or(c.EC2.LaunchTemplateVersion, "$Default")
	c.EC2.InstanceType = cmp.Or(c.EC2.InstanceType, "im4gn.4xlarge")
	if len(c.EC2.AMIOwners) == 0 {
		c.EC2.AMIOwners = []string{"self"}
	}
	if c.EC2.AMITags == nil {
		c.EC2.AMITags = maps.Clone(DefaultAMITags)
	}
	c.Events.Wait = cmp.Or(c.Events.Wait, 20*time.Second)
	if c.Events.ReplaceOn == nil {
		c.Events.ReplaceOn = slices.Clone(events.DefaultReplaceOn)
	}
	c.Events.LeadTime = cmp.Or(c.Events.LeadTime, 24*time.Hour)
	c.AMIDrift.Interval = cmp.Or(c.AMIDrift.Interval, time.Hour)
	c.API.Listen = cmp.Or(c.API.Listen, "127.0.0.1:7080")
	c.Log.Level = cmp.Or(c.Log.Level, "info")
	c.Log.Format = cmp.Or(c.Log.Format, "json")
}

// Defaults fills what the replace section left out, from the executor's
// defaults (replace.DefaultOptions, the one place they live).
func (r *Replace) Defaults() {
	d := replace.DefaultOptions()
	r.Throttle.Throttle = r.Throttle.Or(d.Throttle)
	r.Concurrency = cmp.Or(r.Concurrency, d.Plan.Concurrency)
	r.Order = cmp.Or(r.Order, d.Plan.Order)
	r.Poll = cmp.Or(r.Poll, d.Poll)
	r.RegisterTimeout = cmp.Or(r.RegisterTimeout, d.RegisterTimeout)
	r.StallWarn = cmp.Or(r.StallWarn, d.StallWarn)
	r.StallAbort = cmp.Or(r.StallAbort, d.StallAbort)
	r.RateCap = cmp.Or(r.RateCap, d.RateCap)
	r.DeadlinePolicy = cmp.Or(r.DeadlinePolicy, d.DeadlinePolicy)
	r.DeadlineMargin = cmp.Or(r.DeadlineMargin, d.DeadlineMargin)
	r.LeaderSettle = cmp.Or(r.LeaderSettle, d.LeaderSettle)
	r.LeaderGroup = cmp.Or(r.LeaderGroup, d.LeaderGroup)
}

// Options builds the executor's options from the replace section: the one
// way every executor (fleetd run, fleetd replace, the demo, the benchmark)
// is built. Callers add what is theirs alone (log, callbacks).
func (r Replace) Options() replace.Options {
	return replace.Options{
		Throttle:        r.Throttle.Throttle,
		Adaptive:        r.Throttle.Adaptive,
		Plan:            replace.PlanOptions{Concurrency: r.Concurrency, Order: r.Order},
		Poll:            r.Poll,
		RegisterTimeout: r.RegisterTimeout,
		StallWarn:       r.StallWarn,
		StallAbort:      r.StallAbort,
		RateCap:         r.RateCap,
		DeadlinePolicy:  r.DeadlinePolicy,
		DeadlineMargin:  r.DeadlineMargin,
		LeaderSettle:    r.LeaderSettle,
		LeaderGroup:     r.LeaderGroup,
	}
}

func joinNames[T ~string](names []T) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}

// Validate reports the first setting that cannot work, naming its key.
func (c *Config) Validate() error {
	if c.Cluster == "" {
		return errors.New("cluster: a cluster name is required (it is the value of the instances' cluster tag)")
	}
	if !clusterName.MatchString(c.Cluster) {
		return fmt.Errorf("cluster: %q is not a cluster name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 (it becomes a tag value and part of file names)", c.Cluster)
	}
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	switch c.Provider.Kind {
	case "local":
		if c.Provider.LocalFleet == "" {
			return errors.New("provider.local_fleet: required for provider.kind local (the URL `fleetd local up` prints)")
		}
	case "ec2":
		if c.EC2.LaunchTemplate == "" {
			return errors.New("ec2.launch_template: required for provider.kind ec2 (the Terraform module's launch_template_id output; fleetd run --terraform-dir reads it for you)")
		}
		if p := c.EC2.ControllerPort; p < 0 || p > 65535 {
			return fmt.Errorf("ec2.controller_port: %d is not a TCP port (1-65535; 0 means 9093)", p)
		}
	default:
		return fmt.Errorf("provider.kind: %q is not local or ec2", c.Provider.Kind)
	}
	for _, k := range c.Events.ReplaceOn {
		if !slices.Contains(events.AllKinds, k) {
			return fmt.Errorf("events.replace_on: %q is not an event kind (%s)", k, joinNames(events.AllKinds))
		}
	}
	if c.Events.Wait > 20*time.Second {
		return fmt.Errorf("events.wait: %s is longer than SQS's 20s long-poll maximum", c.Events.Wait)
	}
	if (c.Events.QueueURL != "" || c.Events.PollInterval > 0 || c.AMIDrift.Enabled) && c.Provider.Kind != "ec2" {
		return errors.New("events and ami_drift need provider.kind ec2")
	}
	if c.Replace.Concurrency < 1 {
		return fmt.Errorf("replace.concurrency: %d, want at least 1", c.Replace.Concurrency)
	}
	if !slices.Contains(replace.Orders, c.Replace.Order) {
		return fmt.Errorf("replace.order: %q is not one of %s", c.Replace.Order, joinNames(replace.Orders))
	}
	for key, d := range map[string]time.Duration{"replace.poll": c.Replace.Poll, "replace.register_timeout": c.Replace.RegisterTimeout, "replace.stall_warn": c.Replace.StallWarn, "replace.stall_abort": c.Replace.StallAbort, "replace.leader_settle": c.Replace.LeaderSettle, "gate.retry_base": c.Gate.RetryBase, "gate.retry_max": c.Gate.RetryMax, "gate.give_up_after": c.Gate.GiveUpAfter, "chaos.min_interval": c.Chaos.MinInterval, "chaos.check_interval": c.Chaos.CheckInterval, "chaos.controller_min_interval": c.Chaos.ControllerMinInterval, "lease.ttl": c.Lease.TTL, "events.wait": c.Events.Wait, "events.poll_interval": c.Events.PollInterval, "events.lead_time": c.Events.LeadTime, "ami_drift.interval": c.AMIDrift.Interval} {
		if d < 0 {
			return fmt.Errorf("%s: %s is negative", key, d)
		}
	}
	if !slices.Contains(replace.DeadlinePolicies, c.Replace.DeadlinePolicy) {
		return fmt.Errorf("replace.deadline_policy: %q, want one of %s", c.Replace.DeadlinePolicy, joinNames(replace.DeadlinePolicies))
	}
	if c.Replace.RateCap < 1 || c.Replace.RateCap > 10 {
		return fmt.Errorf("replace.rate_cap: %g, want 1 (the configured rate is the throttle) to 10 (fleetd may configure up to 10x the throttle to achieve it)", c.Replace.RateCap)
	}
	if c.Canary.Rate < 1 || c.Canary.Rate > 1000 {
		return fmt.Errorf("canary.rate: %d records/s, want 1 to 1000 (a canary, not a load test)", c.Canary.Rate)
	}
	if !topicName.MatchString(c.Canary.Topic) {
		return fmt.Errorf("canary.topic: %q is not a Kafka topic name (letters, digits, '.', '_', '-', at most 249)", c.Canary.Topic)
	}
	if c.Replace.LeaderGroup < 1 {
		return fmt.Errorf("replace.leader_group: %d, want at least 1", c.Replace.LeaderGroup)
	}
	if c.Replace.StallAbort <= c.Replace.StallWarn {
		return fmt.Errorf("replace.stall_abort (%s) must be longer than replace.stall_warn (%s)", c.Replace.StallAbort, c.Replace.StallWarn)
	}
	if _, err := c.ChaosSchedule(); err != nil {
		return err
	}
	if c.Lease.TTL < 5*time.Second {
		return fmt.Errorf("lease.ttl: %s is too short (at least 5s; 30s is a good value): the holder renews every ttl/3", c.Lease.TTL)
	}
	switch c.Lease.Kind {
	case "file":
	case "dynamodb":
		if c.Lease.Table == "" {
			return errors.New("lease.table: required for lease.kind dynamodb")
		}
	default:
		return fmt.Errorf("lease.kind: %q is not file or dynamodb", c.Lease.Kind)
	}
	host, _, err := net.SplitHostPort(c.API.Listen)
	if err != nil {
		return fmt.Errorf("api.listen: %q: %w", c.API.Listen, err)
	}
	if err := checkToken(c.API.Token, c.API.Listen, host); err != nil {
		return err
	}
	if err := c.validateNotifications(); err != nil {
		return err
	}
	if c.Tracing.Enabled {
		if u, err := url.Parse(c.Tracing.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("tracing.endpoint: %q: want an OTLP/HTTP URL like http://otel-collector:4318 (required when tracing.enabled)", c.Tracing.Endpoint)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		return fmt.Errorf("log.format: %q is not json or console", c.Log.Format)
	}
	return nil
}

// CheckPaths makes sure fleetd can write where it keeps its state: state_dir
// (created if missing) and, for the file lease, lease.path's directory. It
// writes and removes a probe file in each; the error names the key, the
// path and the reason. fleetd run and config validate both call it: a
// read-only state_dir must stop fleetd at start, not leave it "standby".
func (c *Config) CheckPaths() error {
	dirs := [][2]string{{"state_dir", c.StateDir}}
	if c.Lease.Kind == "file" {
		dirs = append(dirs, [2]string{"lease.path", filepath.Dir(c.Lease.Path)})
	}
	for _, d := range dirs {
		if err := writable(d[1]); err != nil {
			return fmt.Errorf("%s: %s is not writable: %w", d[0], d[1], err)
		}
	}
	return nil
}

func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".fleetd-probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_, err = f.Write([]byte("probe\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// clusterName: what a tag value and a file name can both hold.
var clusterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// MinTokenLength is the shortest API token accepted on a listener that is
// not loopback.
const MinTokenLength = 16

// checkToken: a token is printable ASCII without spaces; off loopback one is
// required and at least MinTokenLength long.
func checkToken(token, listen, host string) error {
	for _, r := range token {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("api.token (%s): only printable characters without spaces (it contains %q)", EnvAPIToken, r)
		}
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	if len(token) < MinTokenLength {
		return fmt.Errorf("api.token (%s): api.listen %s is not loopback, so a token of at least %d characters is required (have %d; e.g. openssl rand -hex 24)", EnvAPIToken, listen, MinTokenLength, len(token))
	}
	return nil
}

// ChaosSchedule builds the compiled chaos schedule from the chaos section.
func (c *Config) ChaosSchedule() (*schedule.Chaos, error) {
	w, err := schedule.ParseWindow(c.Chaos.Days, c.Chaos.Hours, c.Chaos.Timezone)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	ch := &schedule.Chaos{Enabled: c.Chaos.Enabled, Leashed: c.Chaos.Leashed, Cron: c.Chaos.Cron, Window: w, MinInterval: c.Chaos.MinInterval, Pick: schedule.Pick(c.Chaos.Pick)}
	if c.Chaos.Enabled && c.Chaos.Cron == "" {
		return nil, errors.New("chaos.cron: required when chaos.enabled (e.g. \"0 10 * * TUE\")")
	}
	if err := ch.Compile(); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if err := ch.FiresWithin(time.Now()); err != nil {
		return nil, fmt.Errorf("chaos.cron: %w", err)
	}
	return ch, nil
}

// SplitList splits a comma-separated list, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
