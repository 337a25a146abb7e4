package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/replace"
)

const whatIfLong = `Ask the blast-radius guard what taking nodes down would do, now. Nothing is
changed.

The guard is the one check fleetd asks, on fresh metadata, right before every
act that can take a replica away (stopping or terminating a broker, an identity
replacement's stop, a chaos pick). It simulates the cluster with the nodes in
--down gone and refuses if any partition would be left with no in-sync replica,
fewer in-sync replicas than its min.insync.replicas (eligible leader replicas
count where the cluster keeps them), or every replica inside the set; or while
another node is already down. The partitions that would be hurt are listed by
name. Use it before a runbook step that stops or terminates brokers.

With --local-fleet, instances the fleet reports stopped count as down even
before Kafka notices.

Exit codes: 0 the act is safe now, 1 refused (reasons and partitions printed),
2 error (nothing was judged).`

func newWhatIfCmd() *cobra.Command {
	var kf kafkaFlags
	var down []int32
	var asJSON bool
	var fleetURL string
	cmd := &cobra.Command{
		Use:   "what-if --down ID[,ID...]",
		Short: "Say whether taking these nodes down now would hurt any partition, and which",
		Long:  whatIfLong,
		Example: `  fleetd what-if --down 3 --bootstrap kafka-1:9092
  fleetd what-if --down 3,5 --config /etc/fleetd/fleetd.yaml --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(down) == 0 {
				return fmt.Errorf("--down is required: the node ids to take down, e.g. --down 3,5")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), kf.timeout)
			defer cancel()
			var infra []int32
			if fleetURL != "" {
				insts, err := local.NewRemote(fleetURL).Instances(ctx)
				if err != nil {
					return &codeError{code: exitError, err: fmt.Errorf("list the local fleet's instances: %w", err)}
				}
				infra = replace.InfraDown(insts)
			}
			snap, err := kf.snapshot(ctx)
			if err != nil {
				return err
			}
			v := health.BlastRadius(snap, down, infra)
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), v); err != nil {
					return err
				}
			} else {
				renderWhatIf(cmd.OutOrStdout(), down, v)
			}
			if !v.Safe {
				return &codeError{code: exitNotSafe}
			}
			return nil
		},
	}
	kf.register(cmd.Flags())
	cmd.Flags().Int32SliceVar(&down, "down", nil, "node ids that would go down or lose their data, e.g. 3,5")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verdict as JSON")
	cmd.Flags().StringVar(&fleetURL, "local-fleet", "", "control API URL of a local fleet: its stopped instances count as down")
	return cmd
}

// renderWhatIf prints the guard's verdict with every partition it names.
func renderWhatIf(w io.Writer, down []int32, v health.Verdict) {
	ids := make([]string, len(down))
	for i, id := range down {
		ids[i] = fmt.Sprint(id)
	}
	if v.Safe {
		fmt.Fprintf(w, "safe: taking node %s down now hurts no partition\n", strings.Join(ids, ", "))
	} else {
		fmt.Fprintf(w, "refused: taking node %s down now would hurt the cluster\n", strings.Join(ids, ", "))
	}
	for _, r := range v.Blockers {
		fmt.Fprintf(w, "  %s: %s\n", r.Code, r.Message)
		for _, tp := range r.Partitions {
			fmt.Fprintf(w, "    %s\n", tp)
		}
	}
	for _, r := range v.Warnings {
		fmt.Fprintf(w, "  warning %s: %s\n", r.Code, r.Message)
	}
}
