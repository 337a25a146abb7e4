// Command fleetd keeps self-managed Apache Kafka fleets on EC2 healthy by
// replacing brokers safely. main only wires signals and exit codes; the
// commands live in the files beside it and the work in internal/.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
