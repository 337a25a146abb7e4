// Package local runs a Kafka fleet as processes on loopback: a KRaft controller
// quorum and broker processes, each with its own data directory, ports and a
// broker.rack rotating over simulated availability zones.
//
// It is the local fleet that `fleetd demo`, fleetd's local Provider and the
// integration tests are built on. It must never leave a JVM behind: every child
// is started in its own process group with a parent-death signal, and Close
// kills whatever is still running.
package local
