// Package replace replaces one Kafka broker end to end, never losing data and
// never leaving the cluster worse than it found it.
//
// A replacement is a Record moved through a declared table of idempotent
// steps (workflow.go) by one goroutine (Executor.Run). Each step's outcome is
// saved in a Store before the next begins, so a fleetd killed at any instant
// resumes, or rolls back, from the record alone. Every error is sorted by
// one function (Classify): retry, fatal, needs a person, refused, aborted,
// interrupted; what a fatal error means at a step is the table's OnFailure.
//
// Strategy move (make-before-break), for a serving broker:
//
//  1. gate: the cluster may be disrupted now (health.CanDisrupt); else refused.
//  2. plan: a pure 1:1 substitution of the old node id by a new one.
//  3. launch a broker like the old one (same zone) with the new node id.
//  4. await-registration of the new broker in the old one's rack.
//  5. throttle: record, then set, the replication throttles.
//  6. move the replicas in batches; done only when every target is in the ISR.
//  7. elect-leaders: restore preferred leadership (a timeout only warns).
//  8. unthrottle: put back what was there before fleetd's throttles.
//  9. verify-empty: the cluster's metadata shows the old broker holding nothing.
//  10. stop-old — the point of no return — asks the blast-radius guard, records
//     old_stopped, then shuts the old broker down.
//  11. terminate-old, after the guard again.
//  12. unregister-old: its id leaves the cluster's metadata.
//
// A failure in steps 1-2 changes nothing (rolled back); in 3-9 it runs the
// rollback table: cancel our reassignments, move back what arrived, remove
// our throttles, and terminate the new broker once it holds nothing (the
// guard asked first). From step 10 on, a failure needs a person and an
// abort is declined: finishing is the only way back to full redundancy.
//
// Strategy identity (break-before-make), for a dead broker:
//
//  1. gate, which also asks the blast-radius guard about stopping the broker.
//  2. stop-old — the point of no return once old_stopped is recorded — asks
//     the guard, records old_stopped, then stops the instance.
//  3. terminate-old, after the guard again.
//  4. launch an instance with the same node id and an empty disk.
//  5. await-registration.
//  6. await-in-sync: Kafka re-replicates; done when it is in every ISR.
//  7. elect-leaders.
//
// A failure before old_stopped is recorded changes nothing (rolled back);
// after it, it needs a person and an abort is declined.
//
// The planner (plan.go) is pure. The executor knows nothing of EC2 or
// processes (it asks a Provider) and nothing of kadm (it asks a Cluster);
// health gates decide, and "the task said done" is never evidence: the old
// broker is terminated only when the cluster's metadata shows it empty.
package replace
