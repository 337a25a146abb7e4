package controller

import (
	"reflect"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/replace"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func req(id string, broker int32, trigger string, at time.Duration) Request {
	return Request{ID: id, Broker: broker, Triggers: []replace.Trigger{replace.Trigger(trigger)}, Received: t0.Add(at)}
}

func TestQueueDeduplicatesByBrokerWithoutDropping(t *testing.T) {
	var q Queue
	if !q.Add(req("a", 2, "operator", 0)) {
		t.Fatal("first request not added")
	}
	late := req("b", 2, "retirement", time.Minute)
	late.Deadline = t0.Add(48 * time.Hour)
	if q.Add(late) {
		t.Fatal("second request for broker 2 added twice")
	}
	lost := req("c", 2, "instance-lost", 2*time.Minute)
	lost.Emergency = true
	q.Add(lost)
	if q.Len() != 1 {
		t.Fatalf("len %d, want 1", q.Len())
	}
	got, _ := q.Next(t0)
	want := Request{ID: "a", Broker: 2, Triggers: []replace.Trigger{"operator", "retirement", "instance-lost"}, Received: t0,
		Deadline: t0.Add(48 * time.Hour), Emergency: true, Strategy: replace.StrategyIdentity}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged = %+v\nwant     %+v", got, want)
	}
}

func TestQueueOrder(t *testing.T) {
	var q Queue
	q.Add(req("old", 1, "chaos", 0))
	soon := req("deadline", 2, "retirement", time.Minute)
	soon.Deadline = t0.Add(time.Hour)
	q.Add(soon)
	em := req("emergency", 3, "instance-lost", 2*time.Minute)
	em.Emergency = true
	q.Add(em)
	var order []string
	for q.Len() > 0 {
		r, ok := q.Next(t0)
		if !ok {
			t.Fatal("nothing ready")
		}
		order = append(order, r.ID)
		q.Remove(r.ID)
	}
	if want := []string{"emergency", "deadline", "old"}; !reflect.DeepEqual(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
}

func TestRefusedRequestWaitsWithCappedBackoffAndKeepsItsReason(t *testing.T) {
	var q Queue
	q.Add(req("a", 1, "operator", 0))
	now := t0
	var waits []time.Duration
	for i := 0; i < 6; i++ {
		q.Refused(1, "under-replicated: 3 partitions", now, 10*time.Second, time.Minute)
		r := q.List()[0]
		waits = append(waits, r.NotBefore.Sub(now))
		if _, ok := q.Next(now); ok {
			t.Fatal("a refused request must wait")
		}
		now = r.NotBefore
		if _, ok := q.Next(now); !ok {
			t.Fatal("the request must be ready again after its wait")
		}
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute, time.Minute}
	if !reflect.DeepEqual(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	if r := q.List()[0]; r.Attempts != 6 || r.LastRefusal != "under-replicated: 3 partitions" {
		t.Errorf("request %+v lost its refusal history", r)
	}
}
