package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultKafkaVersion is the release scripts/kafka-dist.sh assembles unless
// KAFKA_VERSION says otherwise. Keep the two in step.
const DefaultKafkaVersion = "4.4.0"

// Dist is an Apache Kafka distribution assembled by scripts/kafka-dist.sh:
// a directory with a VERSION file and libs/ holding every runtime jar.
type Dist struct {
	Home    string
	Version string
}

// CacheDir is where fleetd's set-up scripts keep Kafka and the tool virtualenv:
// $FLEETD_CACHE, else $XDG_CACHE_HOME/fleetd, else ~/.cache/fleetd.
func CacheDir() string {
	if d := os.Getenv("FLEETD_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "fleetd")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "fleetd-cache")
	}
	return filepath.Join(home, ".cache", "fleetd")
}

// DefaultDist finds the distribution the environment points at: $KAFKA_HOME if
// set, else the cached assembly of $KAFKA_VERSION (default DefaultKafkaVersion).
func DefaultDist() (Dist, error) {
	if h := os.Getenv("KAFKA_HOME"); h != "" {
		return OpenDist(h)
	}
	v := os.Getenv("KAFKA_VERSION")
	if v == "" {
		v = DefaultKafkaVersion
	}
	return OpenDist(filepath.Join(CacheDir(), "kafka", v))
}

// OpenDist checks that dir holds a complete assembly and reads its version.
func OpenDist(dir string) (Dist, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "VERSION"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Dist{}, fmt.Errorf("no Kafka distribution at %s: run scripts/kafka-dist.sh (or make kafka) first", dir)
		}
		return Dist{}, fmt.Errorf("read Kafka distribution version: %w", err)
	}
	d := Dist{Home: dir, Version: strings.TrimSpace(string(raw))}
	jar := filepath.Join(dir, "libs", "kafka_2.13-"+d.Version+".jar")
	if _, err := os.Stat(jar); err != nil {
		return Dist{}, fmt.Errorf("Kafka distribution at %s is incomplete (%s missing): delete it and run scripts/kafka-dist.sh again", dir, jar)
	}
	return d, nil
}

// Major is the release line: 3 or 4. It decides the logging configuration.
func (d Dist) Major() int {
	if strings.HasPrefix(d.Version, "3.") {
		return 3
	}
	return 4
}

func (d Dist) classpath() string { return filepath.Join(d.Home, "libs", "*") }
