//go:build integration

package local_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/testbed"
)

func TestThreeBrokersAcceptWritesAtRF3MinISR2(t *testing.T) {
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("orders", 6, 3, 2)
	for _, p := range c.Partitions("orders") {
		if len(p.Replicas) != 3 || len(p.ISR) != 3 {
			t.Fatalf("partition %d replicas=%v isr=%v, want 3 and 3", p.Partition, p.Replicas, p.ISR)
		}
	}
	racks := map[string]bool{}
	for _, b := range c.Fleet.Brokers() {
		racks[b.Rack] = true
	}
	if len(racks) != 3 {
		t.Errorf("brokers span racks %v, want 3 distinct simulated AZs", racks)
	}
	run := c.StartLedger("orders", 300)
	time.Sleep(3 * time.Second)
	c.StopLedger(run)
}

// An instance loss on NVMe storage: the broker is gone with its disk. Kafka
// must drop it from the ISRs, and the same node id on an empty disk must
// catch up to a full ISR again without losing acknowledged writes.
func TestKilledBrokerLeavesISRAndRejoinsWithEmptyDisk(t *testing.T) {
	c := testbed.NewCluster(t, 3)
	c.CreateTopic("payments", 6, 3, 2)
	c.Fill("payments", 20)
	run := c.StartLedger("payments", 200)
	before, _ := c.Fleet.Broker(2)
	dirIDBefore := directoryID(t, before.DataDir)

	if err := c.Fleet.KillNode(2); err != nil {
		t.Fatal(err)
	}
	testbed.Eventually(t, 60*time.Second, func() error {
		for _, p := range c.Partitions("payments") {
			if slices.Contains(p.ISR, 2) {
				return fmt.Errorf("partition %d still lists broker 2 in ISR %v", p.Partition, p.ISR)
			}
			if !slices.Contains(p.Replicas, 2) {
				return fmt.Errorf("partition %d lost broker 2 from its replicas %v", p.Partition, p.Replicas)
			}
		}
		return nil
	})

	info, err := c.Fleet.RestartEmpty(testbed.Context(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := directoryID(t, info.DataDir); got == dirIDBefore {
		t.Fatalf("log directory id %s unchanged: the data dir was not wiped and re-formatted", got)
	}
	testbed.Eventually(t, 120*time.Second, func() error {
		for _, p := range c.Partitions("payments") {
			if len(p.ISR) != 3 {
				return fmt.Errorf("partition %d ISR %v, want all 3", p.Partition, p.ISR)
			}
		}
		return nil
	})
	c.StopLedger(run)
}

func TestNewBrokerJoinsAndGracefulStopExitsCleanly(t *testing.T) {
	c := testbed.NewCluster(t, 3)
	if _, err := c.Fleet.StartBroker(testbed.Context(t), 4, ""); err != nil {
		t.Fatal(err)
	}
	c.WaitBrokers(1, 2, 3, 4)
	if b, _ := c.Fleet.Broker(4); b.Rack != local.DefaultRacks[0] {
		t.Errorf("broker 4 rack = %q, want the rotation to wrap to %q", b.Rack, local.DefaultRacks[0])
	}

	c.CreateTopic("events", 3, 3, 2)
	start := time.Now()
	if err := c.Fleet.StopNode(testbed.Context(t), 4); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	t.Logf("controlled shutdown took %s", time.Since(start))
	c.WaitBrokers(1, 2, 3)
	for _, p := range c.Partitions("events") {
		if p.Leader == 4 {
			t.Errorf("partition %d still led by stopped broker 4", p.Partition)
		}
	}
	if err := c.Fleet.StopNode(testbed.Context(t), 4); err == nil {
		t.Error("stopping a stopped broker should fail")
	}
}

// TestNoOrphanJVMWhenOwnerPanics runs this test binary again as an owner that
// starts a fleet and panics; the owner's controller JVM must die with it.
func TestNoOrphanJVMWhenOwnerPanics(t *testing.T) {
	if os.Getenv("FLEETD_ORPHAN_CHILD") == "1" {
		orphanChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoOrphanJVMWhenOwnerPanics$")
	cmd.Env = append(os.Environ(), "FLEETD_ORPHAN_CHILD=1", "FLEETD_ORPHAN_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CONTROLLER_PID="); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("owner should have died of its panic, got %v", err)
	}
	if pid == 0 {
		t.Fatal("owner never reported its controller pid")
	}
	testbed.Eventually(t, 15*time.Second, func() error {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("controller JVM %d outlived its owner", pid)
	})
}

// directoryID reads the log directory's id from meta.properties; formatting
// an empty directory gives it a new one.
func directoryID(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(dataDir + "/meta.properties")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "directory.id="); ok {
			return v
		}
	}
	t.Fatalf("no directory.id in %s/meta.properties:\n%s", dataDir, b)
	return ""
}

func orphanChild() {
	d, err := local.DefaultDist()
	if err != nil {
		fmt.Println("dist:", err)
		os.Exit(3)
	}
	f, err := local.Start(context.Background(), local.Options{Dist: d, Dir: os.Getenv("FLEETD_ORPHAN_DIR")})
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(3)
	}
	_ = f // deliberately never closed
	out, _ := exec.Command("pgrep", "-f", local.OwnerProperty+"="+strconv.Itoa(os.Getpid())).Output()
	fields := strings.Fields(string(out))
	if len(fields) == 0 {
		fmt.Println("no JVM found")
		os.Exit(3)
	}
	fmt.Println("CONTROLLER_PID=" + fields[0])
	os.Stdout.Sync()
	panic("owner crashes with its fleet running")
}
