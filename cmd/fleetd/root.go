package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleetd/internal/version"
)

// Exit codes shared by every command. `fleetd status` uses exitNotSafe for a
// cluster that answered but is not safe to disrupt.
const (
	exitOK      = 0
	exitNotSafe = 1
	exitError   = 2
	// exitInterrupted: stopped by SIGINT or SIGTERM before it finished (the
	// shell's 128+SIGINT). What was interrupted says how to go on.
	exitInterrupted = 130
)

// exitError carries a specific exit code out of a command.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

const rootLong = `fleetd replaces Apache Kafka brokers on AWS EC2 safely and end to end.

It reacts to EC2 retirement and scheduled events, unexpected instance loss, a
weekly chaos schedule, AMI drift and operator requests. Each replacement passes
safety gates, launches a new broker in the same AZ from the newest AMI, moves
the old broker's replicas to it under a replication throttle, waits until
nothing is under-replicated, restores preferred leaders, and only then shuts
down, terminates and unregisters the old broker.

Exit codes: 0 success; 1 not safe, refused or rolled back (nothing lost, the
reasons are printed); 2 error or failed (a person should look); 130
interrupted (Ctrl-C or SIGTERM; a replacement resumes when run again).`

// run executes one fleetd invocation and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil {
		// The signal, not the work, ended it: "context canceled" or a killed
		// child process is not the error to show.
		fmt.Fprintln(stderr, "fleetd: interrupted")
		return exitInterrupted
	}
	var ce *codeError
	if errors.As(err, &ce) {
		if ce.err != nil && ce.code == exitError {
			fmt.Fprintln(stderr, "fleetd:", ce.err)
		}
		return ce.code
	}
	fmt.Fprintln(stderr, "fleetd:", err)
	return exitError
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "fleetd",
		Short:         "Replace Apache Kafka brokers on EC2 safely",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(), // fleetd --version, as fleetd version
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newVersionCmd(), newRunCmd(), newStatusCmd(), newReplaceCmd(), newAbortCmd(), newPauseCmd(true), newPauseCmd(false), newHistoryCmd(), newLocalCmd(), newDemoCmd(), newConfigCmd(), newWhatIfCmd(), newCancelCmd(), newThrottleCmd(), newWatchCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print fleetd's version, revision and platform",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
			return nil
		},
	}
}
