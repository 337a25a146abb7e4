package main

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/fleetd/fleetd/internal/config"
)

// TestMain lets tests run this binary as fleetd itself (FLEETD_TEST_AS_FLEETD=1),
// so that a test can SIGKILL a real fleetd process. FLEETD_TEST_PAUSE_AT names
// the durable event at which that fleetd stops dead to be killed.
func TestMain(m *testing.M) {
	if os.Getenv("FLEETD_TEST_AS_FLEETD") == "1" {
		pauseAtEvent = os.Getenv("FLEETD_TEST_PAUSE_AT")
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, strings.Fields(os.Getenv("FLEETD_TEST_ARGS")), os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestVersionPrintsFleetdVersion(t *testing.T) {
	var lines []string
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != exitOK {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
		}
		if !strings.HasPrefix(out.String(), "fleetd ") {
			t.Fatalf("%v: got %q, want a line starting with fleetd", args, out.String())
		}
		lines = append(lines, out.String())
	}
	if lines[0] != lines[1] {
		t.Errorf("fleetd version %q and fleetd --version %q differ", lines[0], lines[1])
	}
}

func TestHelpExplainsExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"Exit codes", "version"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUnknownCommandIsAnError(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errb); code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(errb.String(), "frobnicate") {
		t.Errorf("stderr %q does not name the unknown command", errb.String())
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/good.yaml"
	bad := dir + "/bad.yaml"
	os.WriteFile(good, []byte("cluster: c1\nstate_dir: "+dir+"/state\nkafka:\n  bootstrap: [b:9092]\nec2:\n  launch_template: kafka-broker\n"), 0o644)
	os.WriteFile(bad, []byte("cluster: c1\nkafka:\n  bootstrap: [b:9092]\nchaos:\n  enabled: yes please\n"), 0o644)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"config", "validate", good}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "is valid: cluster c1") {
		t.Errorf("good config: exit %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"config", "validate", bad}, &out, &errb); code != exitError || !strings.Contains(errb.String(), "line 5") {
		t.Errorf("bad config: exit %d %q", code, errb.String())
	}
	// Issue 12's acceptance: each refused, with the key named. A state_dir
	// under a regular file cannot be written even by root.
	notADir := dir + "/plain-file"
	os.WriteFile(notADir, nil, 0o644)
	const base = "cluster: c1\nkafka:\n  bootstrap: [b:9092]\nec2:\n  launch_template: kafka-broker\n"
	for name, tt := range map[string]struct{ yaml, want string }{
		"30 February":      {base + "state_dir: " + dir + "/s\nchaos:\n  enabled: true\n  cron: \"0 10 30 2 *\"\n", "chaos.cron"},
		"throttle 0":       {base + "state_dir: " + dir + "/s\nreplace:\n  throttle: 0\n", "replace.throttle"},
		"one-char token":   {base + "state_dir: " + dir + "/s\napi:\n  listen: 0.0.0.0:7080\n  token: x\n", "api.token"},
		"unwritable state": {base + "state_dir: " + notADir + "/state\n", "state_dir: " + notADir + "/state is not writable"},
		"unwritable lease": {base + "state_dir: " + dir + "/s\nlease:\n  path: " + notADir + "/lease\n", "lease.path"},
	} {
		p := dir + "/" + strings.ReplaceAll(name, " ", "-") + ".yaml"
		os.WriteFile(p, []byte(tt.yaml), 0o600)
		errb.Reset()
		if code := run(context.Background(), []string{"config", "validate", p}, &out, &errb); code != exitError || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%s: exit %d %q; want 2 naming %q", name, code, errb.String(), tt.want)
		}
	}
}

// fleetd run refuses a bad config before touching anything, naming the key.
func TestRunRefusesBadConfigs(t *testing.T) {
	dir := t.TempDir()
	const base = "cluster: c1\nkafka:\n  bootstrap: [b:9092]\nprovider:\n  kind: local\n  local_fleet: http://127.0.0.1:7070\n"
	for name, tt := range map[string]struct{ yaml, want string }{
		"unknown key":       {base + "choas:\n  enabled: true\n", `line 7: field choas not found`},
		"bad duration":      {base + "lease:\n  ttl: half a minute\n", `line 8: "ttl: half a minute": not a duration`},
		"missing bootstrap": {"cluster: c1\n", "kafka.bootstrap"},
		"open listener":     {base + "api:\n  listen: 0.0.0.0:7080\n", "token of at least 16 characters is required"},
		"bad log level":     {base + "log:\n  level: loud\n", "log.level"},
		"chaos sans cron":   {base + "chaos:\n  enabled: true\n", "chaos.cron"},
		"short lease":       {base + "lease:\n  ttl: 1s\n", "lease.ttl"},
		"ec2 sans template": {"cluster: c1\nkafka:\n  bootstrap: [b:9092]\n", "ec2.launch_template"},
		"bad event kind":    {"cluster: c1\nkafka:\n  bootstrap: [b:9092]\nec2:\n  launch_template: lt\nevents:\n  replace_on: [instance-reboot, meteor]\n", `"meteor" is not an event kind`},
	} {
		t.Run(name, func(t *testing.T) {
			p := dir + "/" + strings.ReplaceAll(name, " ", "-") + ".yaml"
			os.WriteFile(p, []byte(tt.yaml), 0o600)
			t.Setenv("FLEETD_API_TOKEN", "")
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"run", "--config", p}, &out, &errb)
			if code != exitError || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tt.want)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"run"}, &out, &errb); code != exitError || !strings.Contains(errb.String(), "--config is required") {
		t.Fatalf("run without a config: %d %q", code, errb.String())
	}
}

func TestLocalUpWritesAValidDaemonConfig(t *testing.T) {
	raw := localConfig("abc", "/tmp/fleet", []string{"127.0.0.1:1", "127.0.0.1:2"}, []string{"127.0.0.1:3"}, "http://127.0.0.1:7070")
	c, err := config.Parse([]byte(raw), "local")
	if err != nil {
		t.Fatal(err)
	}
	if c.Provider.Kind != "local" || len(c.Kafka.Bootstrap) != 2 || c.StateDir != "/tmp/fleet/fleetd-state" || c.Chaos.Enabled {
		t.Fatalf("config %+v", c)
	}
	// The commented chaos block, uncommented, is valid too.
	lines := strings.Split(raw, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "# chaos:") || strings.HasPrefix(l, "#   ") {
			lines[i], _, _ = strings.Cut(l[2:], "  #")
		}
	}
	if c, err = config.Parse([]byte(strings.Join(lines, "\n")), "local"); err != nil || !c.Chaos.Enabled || c.Chaos.Cron != "0 * * * *" {
		t.Fatalf("uncommented chaos block: %v", err)
	}
}

// Issue 12: Ctrl-C printed "fill orders: context canceled" or "signal:
// killed" and exit 2. An interrupted command says so and exits 130.
func TestInterruptedCommandSaysSoAndExits130(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"status", "--bootstrap", "127.0.0.1:1", "--timeout", "2s"}, &out, &errb)
	if code != exitInterrupted || errb.String() != "fleetd: interrupted\n" {
		t.Fatalf("exit %d, stderr %q; want 130 and \"fleetd: interrupted\"", code, errb.String())
	}
}

// Every replace flag's default is a value the flag accepts: run without
// flags, replace gets past them to what is really missing.
func TestReplaceFlagDefaultsParse(t *testing.T) {
	t.Setenv("FLEETD_API", "")
	t.Setenv("FLEETD_LOCAL_FLEET", "")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"replace", "--broker", "2"}, &out, &errb)
	if code != exitError || !strings.Contains(errb.String(), "no infrastructure to act on") {
		t.Fatalf("exit %d: %s%s; want the missing --local-fleet named, not a flag default refused", code, out.String(), errb.String())
	}
}

// With --api, a flag the daemon cannot apply is an error, never dropped.
func TestReplaceThroughTheAPIRefusesLocalOnlyFlags(t *testing.T) {
	for _, args := range [][]string{{"--poll", "1s"}, {"--state-dir", "/tmp/x"}, {"--bootstrap", "k:9092"}} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"replace", "--api", "http://127.0.0.1:1", "--broker", "2"}, args...), &out, &errb)
		if code != exitError || !strings.Contains(errb.String(), args[0]+" cannot apply with --api") {
			t.Errorf("%v: exit %d %s", args, code, errb.String())
		}
	}
}
