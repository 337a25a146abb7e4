// Package replace replaces one Kafka broker end to end, never losing data and
// never leaving the cluster worse than it found it.
//
// A replacement is a Record moved through explicit, idempotent steps by one
// goroutine (Executor.Run). Each step's outcome is saved in a Store before the
// next begins, so a fleetd killed at any instant resumes, or rolls back, from
// the record alone. The planner (plan.go) is pure. The executor knows nothing
// of EC2 or processes (it asks a Provider) and nothing of kadm (it asks a
// Cluster); health gates decide, and "the task said done" is never evidence:
// the old broker is terminated only when the cluster's metadata shows it empty.
package replace
