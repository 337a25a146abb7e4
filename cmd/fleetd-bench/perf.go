package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// perfResult is Kafka's ProducerPerformance's summary of one run.
type perfResult struct {
	records       int
	p50, p99, max time.Duration
}

func (p perfResult) String() string {
	if p.records == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s", p.p50, p.p99, p.max)
}

// perfLine is ProducerPerformance's final line: "N records sent, ...,
// A ms avg latency, M ms max latency, P ms 50th, P ms 95th, P ms 99th,
// P ms 99.9th."
var perfLine = regexp.MustCompile(`(\d+) records sent, .* ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th`)

// producerPerf runs Kafka's own load generator (ProducerPerformance, from
// the same kafka-tools as the reassignment tool): records of 1 KiB at rate
// records/s, acks=all, no linger, idempotent off (as a plain producer).
// It is an independent producer: fleetd's code is not in its path.
func producerPerf(ctx context.Context, bootstrap []string, topic string, records, rate int) (perfResult, error) {
	tools := os.Getenv("FLEETD_KAFKA_TOOLS")
	if tools == "" {
		return perfResult{}, fmt.Errorf("FLEETD_KAFKA_TOOLS is not set (scripts/bench.sh sets it from scripts/kafka-tools.sh)")
	}
	// Bounded: three times its sending time, plus a minute for the JVM.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Duration(records/max(rate, 1))*time.Second+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", "-Xmx256m", "-cp", filepath.Join(tools, "*"), "org.apache.kafka.tools.ProducerPerformance",
		"--topic", topic, "--num-records", strconv.Itoa(records), "--record-size", "1024", "--throughput", strconv.Itoa(rate),
		"--producer-props", "bootstrap.servers="+strings.Join(bootstrap, ","), "acks=all", "linger.ms=0", "enable.idempotence=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return perfResult{}, fmt.Errorf("ProducerPerformance: %w\n%s", err, out)
	}
	m := perfLine.FindStringSubmatch(string(out))
	if m == nil {
		return perfResult{}, fmt.Errorf("ProducerPerformance printed no summary:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	mx, _ := strconv.ParseFloat(m[2], 64)
	ms := func(s string) time.Duration { v, _ := strconv.Atoi(s); return time.Duration(v) * time.Millisecond }
	return perfResult{records: n, max: time.Duration(mx * float64(time.Millisecond)), p50: ms(m[3]), p99: ms(m[5])}, nil
}

// perfAsync starts producerPerf in the background; wait returns its result.
func perfAsync(ctx context.Context, bootstrap []string, topic string, records, rate int) (wait func() (perfResult, error)) {
	type res struct {
		p   perfResult
		err error
	}
	ch := make(chan res, 1)
	go func() {
		p, err := producerPerf(ctx, bootstrap, topic, records, rate)
		ch <- res{p, err}
	}()
	return func() (perfResult, error) {
		r := <-ch
		return r.p, r.err
	}
}

// peakRSS resets (reset true) or reads this process's peak resident set
// (Linux: clear_refs 5 resets VmHWM).
func peakRSS(reset bool) int64 {
	if reset {
		_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		return 0
	}
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
