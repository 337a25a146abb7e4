package health

import (
	"fmt"
	"slices"
	"strings"
)

// Code identifies a reason. Codes are stable: alerts and the API match them.
type Code string

const (
	// CodeCannotEvaluate: the cluster's state could not be read completely.
	CodeCannotEvaluate Code = "cannot-evaluate"
	// CodeBrokerDown: brokers hold replicas but are absent or fenced.
	CodeBrokerDown Code = "broker-down"
	// CodeMassFailure: more than one broker is down; automation waits for a person.
	CodeMassFailure Code = "mass-failure"
	// CodeOffline: partitions without a leader.
	CodeOffline Code = "offline"
	// CodeUnderReplicated: in-sync replicas missing, not explained by a reassignment.
	CodeUnderReplicated Code = "under-replicated"
	// CodeUnderMinISR: fewer in-sync replicas than min.insync.replicas.
	CodeUnderMinISR Code = "under-min-isr"
	// CodeForeignReassignment: a reassignment fleetd did not start is in flight.
	CodeForeignReassignment Code = "foreign-reassignment"
	// CodeNoHeadroom (warning): replication factor at or below
	// min.insync.replicas. Stopping a replica (plain stop, identity strategy)
	// blocks acks=all writes; the move strategy never shrinks the ISR and is
	// safe. Never a blocker of CanDisrupt, so such topics cannot block fleetd
	// forever (strimzi #2964).
	CodeNoHeadroom Code = "no-isr-headroom"
	// CodeExcused (warning): problems caused only by the broker an emergency
	// replacement is for.
	CodeExcused Code = "excused-dead-broker"
	// CodeLeaderSkew (warning): partitions not led by their preferred replica.
	CodeLeaderSkew Code = "leader-skew"
	// CodeWouldGoOffline: stopping the broker leaves partitions with no in-sync replica.
	CodeWouldGoOffline Code = "would-go-offline"
	// CodeWouldFallBelowMinISR: stopping the broker takes partitions below min.insync.replicas.
	CodeWouldFallBelowMinISR Code = "would-fall-below-min-isr"
	// CodeHoldsReplicas: the broker is still in a replica set.
	CodeHoldsReplicas Code = "holds-replicas"
	// CodeInISR: the broker is still in an ISR.
	CodeInISR Code = "in-isr"
)

// Reason explains one cause of a verdict.
type Reason struct {
	Code       Code    `json:"code"`
	Message    string  `json:"message"`
	Brokers    []int32 `json:"brokers,omitempty"`
	Partitions []TP    `json:"partitions,omitempty"`
}

// Verdict is a gate's answer. Safe is true only when there are no blockers.
type Verdict struct {
	Safe     bool     `json:"safe"`
	Blockers []Reason `json:"blockers,omitempty"`
	Warnings []Reason `json:"warnings,omitempty"`
}

func (v *Verdict) block(r Reason) { v.Blockers = append(v.Blockers, r) }
func (v *Verdict) warn(r Reason)  { v.Warnings = append(v.Warnings, r) }

func (v Verdict) done() Verdict {
	v.Safe = len(v.Blockers) == 0
	return v
}

// Has reports whether a blocker or warning with code c is present.
func (v Verdict) Has(c Code) bool {
	for _, r := range append(slices.Clone(v.Blockers), v.Warnings...) {
		if r.Code == c {
			return true
		}
	}
	return false
}

// Summary is the blockers' messages in one line, for logs and errors.
func (v Verdict) Summary() string {
	if v.Safe {
		return "safe"
	}
	msgs := make([]string, len(v.Blockers))
	for i, r := range v.Blockers {
		msgs[i] = string(r.Code) + ": " + r.Message
	}
	return strings.Join(msgs, "; ")
}

// NotEvaluated is the verdict when the cluster could not be read at all.
func NotEvaluated(err error) Verdict {
	return Verdict{Blockers: []Reason{{Code: CodeCannotEvaluate, Message: fmt.Sprintf("cluster state unavailable, doing nothing disruptive: %v", err)}}}
}

// Policy adjusts CanDisrupt.
type Policy struct {
	// AllowDown names the broker an emergency replacement is for: it may be
	// down, and problems it alone causes are warnings, not blockers. At most
	// one: with more than one broker down fleetd waits for a person.
	AllowDown []int32
	// Own lists partitions whose in-flight reassignment fleetd started.
	Own map[TP]bool
}

// CanDisrupt answers whether a disruption (a replacement) may start now. It
// refuses on an incomplete snapshot, a down broker (except the one the policy
// allows), a leaderless, under-replicated or under-min-ISR partition, or a
// reassignment fleetd did not start.
func CanDisrupt(s *Snapshot, pol Policy) Verdict {
	var v Verdict
	if !complete(s, &v) {
		return v.done()
	}
	if len(pol.AllowDown) > 1 {
		v.block(Reason{Code: CodeMassFailure, Brokers: pol.AllowDown, Message: "an emergency may excuse one dead broker, not several"})
	}
	down := DownBrokers(s)
	allow := pol.AllowDown
	if len(down) > 1 || len(allow) > 1 {
		allow = nil // in a mass failure nothing is excused
	}
	var excusedBrokers, otherDown []int32
	for _, b := range down {
		if slices.Contains(allow, b) {
			excusedBrokers = append(excusedBrokers, b)
		} else {
			otherDown = append(otherDown, b)
		}
	}
	if len(down) > 1 {
		v.block(Reason{Code: CodeMassFailure, Brokers: down, Message: fmt.Sprintf("%d brokers are down (%s): mass failure is not a job for automation; waiting for a person", len(down), ids(down))})
	}
	if len(otherDown) > 0 {
		v.block(Reason{Code: CodeBrokerDown, Brokers: otherDown, Message: fmt.Sprintf("broker %s holds replicas but is not registered or is fenced", ids(otherDown))})
	}

	if s.Quorum != nil {
		// The controllers are fleet members too: a broker disruption waits
		// while the quorum is degraded or a voter change is half done.
		q := QuorumHealthy(s.Quorum)
		v.Blockers = append(v.Blockers, q.Blockers...)
	}

	var offline, urp, underMin, foreign, excused, noHeadroom, unsafe []TP
	for i := range s.Partitions {
		p := &s.Partitions[i]
		f := factsOf(p)
		excuse := len(f.missing) > 0 && subset(f.missing, allow)
		switch {
		case f.leaderless:
			offline = append(offline, p.TP) // never excused: a new empty broker must not lead it
		case excuse:
			excused = append(excused, p.TP)
		case len(f.missing) > 0 && f.underMinISR:
			underMin = append(underMin, p.TP)
			urp = append(urp, p.TP)
		case len(f.missing) > 0:
			urp = append(urp, p.TP)
		}
		if p.Reassigning && !pol.Own[p.TP] {
			foreign = append(foreign, p.TP)
		}
		if f.noHeadroom {
			noHeadroom = append(noHeadroom, p.TP)
			if f.alreadyUnsafe {
				unsafe = append(unsafe, p.TP)
			}
		}
	}
	if len(offline) > 0 {
		v.block(Reason{Code: CodeOffline, Partitions: offline, Message: fmt.Sprintf("%d partitions have no leader (%s)", len(offline), tps(offline))})
	}
	if len(underMin) > 0 {
		v.block(Reason{Code: CodeUnderMinISR, Partitions: underMin, Message: fmt.Sprintf("%d partitions are below min.insync.replicas, acks=all writes fail (%s)%s", len(underMin), tps(underMin), elrNote(s, underMin))})
	}
	if len(urp) > 0 {
		v.block(Reason{Code: CodeUnderReplicated, Partitions: urp, Message: fmt.Sprintf("%d partitions are under-replicated (%s)", len(urp), tps(urp))})
	}
	if len(foreign) > 0 {
		v.block(Reason{Code: CodeForeignReassignment, Partitions: foreign, Message: fmt.Sprintf("%d partitions are being reassigned by someone else (%s); wait for it to finish or cancel it", len(foreign), tps(foreign))})
	}
	if len(excusedBrokers) > 0 || len(excused) > 0 {
		v.warn(Reason{Code: CodeExcused, Brokers: allow, Partitions: excused, Message: fmt.Sprintf("emergency for dead broker %s: its %d under-replicated partitions do not block", ids(allow), len(excused))})
	}
	if len(noHeadroom) > 0 {
		msg := fmt.Sprintf("%d partitions have replication factor <= min.insync.replicas (%s): stopping one of their replicas blocks acks=all writes; only the move strategy is safe for them", len(noHeadroom), tps(noHeadroom))
		if len(unsafe) > 0 {
			msg += fmt.Sprintf("; %d already have fewer replicas than min.insync.replicas and can never take acks=all writes (%s)", len(unsafe), tps(unsafe))
		}
		v.warn(Reason{Code: CodeNoHeadroom, Partitions: noHeadroom, Message: msg})
	}
	if skew := LeaderSkew(s); len(skew) > 0 {
		v.warn(Reason{Code: CodeLeaderSkew, Partitions: skew, Message: fmt.Sprintf("%d partitions are not led by their preferred replica (%s)", len(skew), tps(skew))})
	}
	return v.done()
}

// elrNote says which of the partitions keep eligible leader replicas
// (KIP-966): out of the ISR yet holding every committed record. They are
// why such a partition can still elect a clean leader, and exactly the
// copies a further disruption must not touch until they rejoin the ISR.
func elrNote(s *Snapshot, l []TP) string {
	var with []TP
	holders := map[int32]bool{}
	byTP := make(map[TP]*Partition, len(s.Partitions))
	for i := range s.Partitions {
		byTP[s.Partitions[i].TP] = &s.Partitions[i]
	}
	for _, tp := range l {
		if p := byTP[tp]; p != nil && len(p.ELR) > 0 {
			with = append(with, tp)
			for _, b := range p.ELR {
				holders[b] = true
			}
		}
	}
	if len(with) == 0 {
		return ""
	}
	idList := make([]int32, 0, len(holders))
	for b := range holders {
		idList = append(idList, b)
	}
	slices.Sort(idList)
	return fmt.Sprintf("; %d of them keep eligible leader replicas (ELR, KIP-966) on broker %s (%s): the last clean copies outside the ISR, not safe to disrupt further until they rejoin the ISR", len(with), ids(idList), tps(with))
}

// SafeToStop answers whether broker may stop now without taking any partition
// offline or below min.insync.replicas. Partitions already degraded are judged
// by what they would become.
func SafeToStop(s *Snapshot, broker int32) Verdict {
	var v Verdict
	if !complete(s, &v) {
		return v.done()
	}
	var offline, belowMin []TP
	for i := range s.Partitions {
		p := &s.Partitions[i]
		if !slices.Contains(p.ISR, broker) {
			continue
		}
		left := len(p.ISR) - 1
		switch {
		case left == 0:
			offline = append(offline, p.TP)
		case left < p.MinISR:
			belowMin = append(belowMin, p.TP)
		}
	}
	if len(offline) > 0 {
		v.block(Reason{Code: CodeWouldGoOffline, Brokers: []int32{broker}, Partitions: offline, Message: fmt.Sprintf("stopping broker %d leaves %d partitions without an in-sync replica (%s)", broker, len(offline), tps(offline))})
	}
	if len(belowMin) > 0 {
		v.block(Reason{Code: CodeWouldFallBelowMinISR, Brokers: []int32{broker}, Partitions: belowMin, Message: fmt.Sprintf("stopping broker %d takes %d partitions below min.insync.replicas (%s)", broker, len(belowMin), tps(belowMin))})
	}
	return v.done()
}

// Empty answers whether broker holds no replica (also none being added or
// removed) and sits in no ISR: the only evidence on which fleetd terminates a
// broker.
func Empty(s *Snapshot, broker int32) Verdict {
	var v Verdict
	if !complete(s, &v) {
		return v.done()
	}
	var holds, inISR []TP
	for i := range s.Partitions {
		p := &s.Partitions[i]
		if slices.Contains(p.Replicas, broker) || slices.Contains(p.Adding, broker) || slices.Contains(p.Removing, broker) {
			holds = append(holds, p.TP)
		}
		if slices.Contains(p.ISR, broker) {
			inISR = append(inISR, p.TP)
		}
	}
	if len(holds) > 0 {
		v.block(Reason{Code: CodeHoldsReplicas, Brokers: []int32{broker}, Partitions: holds, Message: fmt.Sprintf("broker %d still holds %d replicas (%s)", broker, len(holds), tps(holds))})
	}
	if len(inISR) > 0 {
		v.block(Reason{Code: CodeInISR, Brokers: []int32{broker}, Partitions: inISR, Message: fmt.Sprintf("broker %d is still in %d ISRs (%s)", broker, len(inISR), tps(inISR))})
	}
	return v.done()
}

// complete adds a blocker and returns false when s cannot support a verdict.
func complete(s *Snapshot, v *Verdict) bool {
	switch {
	case s == nil:
		v.block(Reason{Code: CodeCannotEvaluate, Message: "no cluster snapshot"})
	case len(s.Incomplete) > 0:
		v.block(Reason{Code: CodeCannotEvaluate, Message: "cluster state incomplete: " + strings.Join(s.Incomplete, "; ")})
	case len(s.Brokers) == 0:
		v.block(Reason{Code: CodeCannotEvaluate, Message: "the cluster lists no brokers"})
	default:
		return true
	}
	return false
}

func subset(a, b []int32) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// tps names up to five partitions for a message; Reason.Partitions has all.
func tps(l []TP) string {
	const show = 5
	parts := make([]string, 0, show)
	for i, tp := range l {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(l)-show))
			break
		}
		parts = append(parts, tp.String())
	}
	return strings.Join(parts, ", ")
}

func ids(l []int32) string {
	parts := make([]string, len(l))
	for i, id := range l {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ", ")
}

// Codes lists every code a verdict can carry, so that metrics labelled by
// code exist from start-up.
var Codes = []Code{
	CodeCannotEvaluate, CodeBrokerDown, CodeMassFailure, CodeOffline, CodeUnderReplicated, CodeUnderMinISR,
	CodeForeignReassignment, CodeNoHeadroom, CodeExcused, CodeLeaderSkew, CodeWouldGoOffline,
	CodeWouldFallBelowMinISR, CodeHoldsReplicas, CodeInISR, CodeWouldLoseData, CodeDataLost,
	CodeQuorumNoLeader, CodeVoterLagging, CodeVoterChange, CodeStaticQuorum, CodeQuorumMajority,
}
