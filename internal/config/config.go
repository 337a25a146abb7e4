// Package config loads fleetd's one YAML configuration file: strictly (an
// unknown key is an error naming it and its line), with defaults and
// validation in one place, and secrets from the environment so that they
// never need to be written into the file or onto a command line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fleetd/fleetd/internal/kclient"
)

// Config is fleetd's configuration.
type Config struct {
	Kafka kclient.Settings `yaml:"kafka"`
}

// Environment variables that override the file.
const (
	EnvBootstrap    = "FLEETD_KAFKA_BOOTSTRAP"
	EnvSASLPassword = "FLEETD_KAFKA_SASL_PASSWORD"
)

// Load reads and validates the file at path, applying environment overrides.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(raw, path)
}

// Parse decodes raw (named source in errors), applies the environment and
// defaults, and validates.
func Parse(raw []byte, source string) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %s", source, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	c.ApplyEnv(os.Getenv)
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
}

// Validate reports the first setting that cannot work, naming its key.
func (c *Config) Validate() error {
	return c.Kafka.Validate()
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
