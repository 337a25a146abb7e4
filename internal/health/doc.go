// Package health decides whether a Kafka cluster may be disrupted, and says
// exactly why not.
//
// The edge (collect.go) reads the cluster through franz-go into fleetd's own
// Snapshot type; everything else is pure functions over a Snapshot, so the
// rules can be table-tested without Kafka. Gates fail closed: a snapshot that
// could not be read completely never yields "safe", and a collection error is
// a refusal with the error as its reason, never a pass.
package health
