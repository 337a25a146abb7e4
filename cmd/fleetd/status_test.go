package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/controller"
	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
)

func TestRenderStatusShowsBrokersProblemsAndReasons(t *testing.T) {
	s := &health.Snapshot{ClusterID: "c1", Controller: 9000,
		Brokers:    []health.Broker{{ID: 1, Rack: "az-a", Host: "h1", Port: 9092, Bytes: 3 << 20, BytesKnown: true}},
		Partitions: []health.Partition{{TP: health.TP{Topic: "orders", Partition: 0}, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1}, MinISR: 2}},
	}
	var out bytes.Buffer
	renderStatus(&out, health.NewReport(s, health.CanDisrupt(s, health.Policy{})), nil)
	for _, want := range []string{
		"1       az-a  h1:9092  up",
		"2       -     -        down",
		"3.0 MiB",
		"orders-0",
		"under-replicated,under-min-isr,no-isr-headroom",
		"safe to disrupt: no",
		"- broker-down: broker 2 holds replicas",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(in); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

// A fleetd that paused itself says why, and a cluster it cannot read is an
// error exit, not a silent success.
func TestDaemonStatusShowsWhyFleetdPausedItself(t *testing.T) {
	st := &api.Status{Cluster: "orders", Holder: "h1:42", Active: true,
		Controller:  controller.Status{LeaseHeld: true, Paused: true, PauseReason: "replacement in flight per instance tags but with no record in state_dir /srv: r-9"},
		HealthError: "kafka unreachable"}
	var out bytes.Buffer
	err := renderDaemonStatus(&out, st)
	for _, want := range []string{
		"fleetd h1:42 on cluster orders: active, PAUSED\n",
		"paused by fleetd itself: replacement in flight per instance tags but with no record in state_dir /srv: r-9\n",
		"cluster: cannot read: kafka unreachable\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	var ce *codeError
	if !errors.As(err, &ce) || ce.code != exitError {
		t.Errorf("exit %v, want the error code when the cluster cannot be read", err)
	}
}

func TestDaemonStatusShowsWhyAReplacementWaits(t *testing.T) {
	since := time.Date(2026, 12, 3, 10, 0, 0, 0, time.Local)
	st := &api.Status{Cluster: "orders", Holder: "h1:42", Active: true,
		Controller: controller.Status{LeaseHeld: true, Running: &replace.Record{ID: "r-1", OldBroker: 2, NewBroker: 2,
			Strategy: replace.StrategyIdentity, Step: replace.StepStopOld, Triggers: []replace.Trigger{replace.TriggerOperator},
			Waiting: "stop broker 2 (instance i-2): broker-down: node 3 is down or stopping", WaitingSince: since}},
		HealthError: "kafka unreachable"}
	var out bytes.Buffer
	_ = renderDaemonStatus(&out, st)
	want := "  WAITING since 10:00:00: stop broker 2 (instance i-2): broker-down: node 3 is down or stopping\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("status lacks %q:\n%s", want, out.String())
	}
}

func TestPreviewSaysDataLostBeforeAnythingElse(t *testing.T) {
	r := &replace.Record{OldBroker: 3, NewBroker: 3, Strategy: replace.StrategyIdentity, OldInstance: "local-3-1", Zone: "az-c",
		Lost: []health.TP{{Topic: "single", Partition: 2}}}
	var out bytes.Buffer
	printPreview(&out, r, false)
	if want := "DATA LOST: 1 partitions had every in-sync replica on dead brokers; no replacement brings their data back: single-2\n"; !strings.HasPrefix(out.String(), want) {
		t.Fatalf("preview starts:\n%s\nwant it to start with %q", out.String(), want)
	}
}

func TestRenderStatusShowsTheQuorumWithInstances(t *testing.T) {
	q := &health.Quorum{Kind: health.QuorumDynamic, KRaftVersion: 1, Leader: 9000, Epoch: 3, Voters: []health.Replica{
		{ID: 9000, DirectoryID: "dirA", Endpoints: []string{"CONTROLLER://10.0.0.1:9093"}, CaughtUp: true},
		{ID: 9001, DirectoryID: "dirB", Lag: 420, SinceCaughtUp: 12 * time.Second},
	}, Observers: []health.Replica{{ID: 1, CaughtUp: true}, {ID: 9003, DirectoryID: "dirC", CaughtUp: true}}}
	s := &health.Snapshot{ClusterID: "c1", Controller: 9000, Brokers: []health.Broker{{ID: 1}}, Quorum: q}
	var out bytes.Buffer
	renderStatus(&out, health.NewReport(s, health.CanDisrupt(s, health.Policy{})), []replace.Instance{{ID: "i-0aaa", NodeID: 9000}, {ID: "i-0ccc", NodeID: 9003}})
	for _, want := range []string{
		"controller quorum dynamic (kraft.version 1)  leader 9000  epoch 3",
		"9000  leader    CONTROLLER://10.0.0.1:9093  dirA       0    yes",
		"i-0aaa",
		"9001  voter",
		"no (12s ago)",
		"9003  observer",
		"i-0ccc",
		"- voter-lagging: controller voter 9001 is down or not caught up",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "\n1     observer") {
		t.Errorf("a broker is listed among the quorum's observers:\n%s", out.String())
	}
}
