package kclient

import (
	"strings"
	"testing"
)

func TestValidateNamesTheBadSetting(t *testing.T) {
	tests := []struct {
		name string
		s    Settings
		want string // substring of the error; "" means valid
	}{
		{"ok", Settings{Bootstrap: []string{"b1:9092"}}, ""},
		{"no bootstrap", Settings{}, "kafka.bootstrap"},
		{"no port", Settings{Bootstrap: []string{"b1"}}, `"b1": want host:port`},
		{"cert without key", Settings{Bootstrap: []string{"b:1"}, TLS: TLS{CertFile: "c"}}, "kafka.tls"},
		{"bad mechanism", Settings{Bootstrap: []string{"b:1"}, SASL: SASL{Mechanism: "PLAIN", Username: "u", Password: "p"}}, "kafka.sasl.mechanism"},
		{"scram without password", Settings{Bootstrap: []string{"b:1"}, SASL: SASL{Mechanism: "SCRAM-SHA-512", Username: "u"}}, "FLEETD_KAFKA_SASL_PASSWORD"},
		{"user without mechanism", Settings{Bootstrap: []string{"b:1"}, SASL: SASL{Username: "u"}}, "mechanism"},
		{"scram ok", Settings{Bootstrap: []string{"b:1"}, SASL: SASL{Mechanism: "scram-sha-256", Username: "u", Password: "p"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestErrorsNeverCarryThePassword(t *testing.T) {
	s := Settings{Bootstrap: []string{"b:1"}, SASL: SASL{Mechanism: "SCRAM-SHA-1", Username: "u", Password: "hunter2"}}
	if err := s.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v", err)
	}
}
