// Package replace replaces one Kafka broker, or one KRaft controller, end to
// end, never losing data and never leaving the cluster worse than it found it.
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
//  1. gate: the cluster may be disrupted now (health.CanDisrupt, the
//     controller quorum included); else refused.
//  2. plan: a pure 1:1 substitution of the old node id by a new one.
//  3. demote-old: the old broker last wherever it is the preferred leader
//     (no data moves), then preferred elections: leadership leaves it
//     before the copy, so no partition changes leader during the copy.
//     Before the cordon: Kafka 4.4 refuses this reordering of a cordoned
//     broker.
//  4. cordon-old: record, then set, cordoned.log.dirs=* on the old broker
//     (KIP-1066, Kafka 4.3+), so partitions created during the move are not
//     placed on it; skipped, and said why, on an older Kafka.
//  5. launch a broker like the old one (same zone) with the new node id.
//  6. await-registration of the new broker in the old one's rack.
//  7. throttle: record, then set, the replication rates.
//  8. move: stream the replicas through a window (stream.go): up to
//     Concurrency moves in flight (more while small), the next submitted as
//     soon as one is done, the throttled-replica lists naming only the
//     window, the configured rate steered so the copy achieves the
//     throttle; the new broker copies as the last replica, so it leads
//     nothing. A move is done only when every target is in the ISR.
//  9. reorder: the new broker takes the old one's place in each replica
//     list (no data moves).
//  10. elect-leaders: a settle time after the copy, restore preferred
//     leadership a few partitions at a time (a timeout only warns).
//  11. unthrottle: put back what was there before fleetd's throttles.
//  12. verify-empty: the cluster's metadata shows the old broker holding nothing.
//  13. stop-old — the point of no return — asks the blast-radius guard, records
//     old_stopped, then shuts the old broker down.
//  14. terminate-old, after the guard again.
//  15. uncordon-old: the cordon goes while the id is still registered (the
//     controllers refuse configs of an unregistered id).
//  16. unregister-old: its id leaves the cluster's metadata.
//
// A failure in steps 1-2 changes nothing (rolled back); in 3-12 it runs the
// rollback table: cancel our reassignments, uncordon the old broker (Kafka
// refuses a reassignment onto a cordoned one), move back what arrived and
// give every partition its original replica order (preferred leader) back,
// remove our throttles, and terminate the new broker once it holds nothing
// (the guard asked first). From step 13 on, a failure needs a person and an
// abort is declined: finishing is the only way back to full redundancy.
//
// Strategy identity (break-before-make), for a dead broker:
//
//  1. gate, which also asks the blast-radius guard about stopping the broker.
//  2. stop-old — the point of no return once old_stopped is recorded — asks
//     the guard, records old_stopped, then stops the instance.
//  3. terminate-old, after the guard again.
//  4. throttle: record, then set, the catch-up throttles: rates on the
//     brokers that send, lists naming exactly the broker's partitions.
//  5. launch an instance with the same node id and an empty disk.
//  6. await-registration.
//  7. throttle-new: the relaunched broker's own follower rate (the
//     controllers accept it only once the id is registered).
//  8. await-in-sync: Kafka re-replicates; done when it is in every ISR.
//  9. unthrottle.
//  10. elect-leaders, a settle time after the catch-up.
//
// A failure before old_stopped is recorded changes nothing (rolled back);
// after it, it needs a person and an abort is declined.
//
// Strategy controller, for a KRaft controller of a dynamic quorum
// (kraft.version 1, KIP-853), one voter change at a time (controller.go):
//
//  1. gate: the quorum is dynamic, has a leader, every voter is caught up
//     (the old one excused when it is already dead), no voter change is
//     half done (an even voter count), and the brokers are healthy. A static
//     quorum is refused with the upgrade path.
//  2. launch a controller like the old one (same zone) with a new node id.
//  3. await-observer: it fetches the metadata log as a caught-up observer;
//     its directory id and endpoint are recorded.
//  4. add-voter: voter_added is recorded, then AddRaftVoter is sent.
//  5. await-voter: the new voter is listed and caught up.
//  6. remove-old-voter — the point of no return once old_stopped is
//     recorded — asks the quorum guard (the voters left must keep a
//     caught-up majority), records old_stopped, sends RemoveRaftVoter and
//     stops the old controller at once: a removed controller left running
//     tells every observer that reaches it the leader is unknown.
//  7. stop-old, after the quorum guard (idempotent).
//  8. await-voters: the quorum lists exactly the intended voters, caught up.
//  9. terminate-old, after the quorum guard.
//
// A failure in 2-6 before old_stopped runs the controller rollback table:
// remove the new voter if it may have been added (guarded), then terminate
// the new instance. Every act that takes a controller away is judged by the
// quorum (health.WithoutVoter), not by the partitions' blast radius.
//
// The planner (plan.go) is pure. The executor knows nothing of EC2 or
// processes (it asks a Provider) and nothing of kadm (it asks a Cluster);
// health gates decide, and "the task said done" is never evidence: the old
// broker is terminated only when the cluster's metadata shows it empty.
package replace
