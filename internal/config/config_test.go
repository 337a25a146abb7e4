package config

import (
	"strings"
	"testing"
)

func TestParseRejectsUnknownKeyWithItsLine(t *testing.T) {
	_, err := Parse([]byte("kafka:\n  bootstrap: [b:9092]\n  bootstap_servers: x\n"), "fleetd.yaml")
	if err == nil {
		t.Fatal("unknown key accepted")
	}
	for _, want := range []string{"fleetd.yaml", "line 3", "bootstap_servers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestParseRequiresBootstrap(t *testing.T) {
	t.Setenv(EnvBootstrap, "")
	_, err := Parse([]byte("kafka: {}\n"), "f.yaml")
	if err == nil || !strings.Contains(err.Error(), "kafka.bootstrap") {
		t.Fatalf("got %v, want an error naming kafka.bootstrap", err)
	}
}

func TestEnvironmentOverridesFileAndCarriesSecrets(t *testing.T) {
	t.Setenv(EnvBootstrap, "a:1, b:2")
	t.Setenv(EnvSASLPassword, "s3cret")
	c, err := Parse([]byte("kafka:\n  bootstrap: [file:9092]\n  sasl: {mechanism: SCRAM-SHA-512, username: fleetd}\n  dial_timeout: 3s\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Kafka.Bootstrap, ","); got != "a:1,b:2" {
		t.Errorf("bootstrap = %s", got)
	}
	if c.Kafka.SASL.Password != "s3cret" {
		t.Error("password not taken from the environment")
	}
	if c.Kafka.DialTimeout.Seconds() != 3 {
		t.Errorf("dial_timeout = %s", c.Kafka.DialTimeout)
	}
}
