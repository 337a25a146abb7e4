package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with fleetd's configuration file (see docs/config.md)"}
	var tf terraformFlags
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a config file: strict keys, types, defaults, and every rule fleetd applies at start-up",
		Long: `Check a config file the way fleetd reads it at start-up: unknown keys, bad
durations or sizes, missing required settings and unsafe combinations are
errors naming the key (and line). The environment overrides
(FLEETD_KAFKA_BOOTSTRAP, FLEETD_KAFKA_SASL_PASSWORD, FLEETD_API_TOKEN) apply.
state_dir and the file lease's directory must be writable (a probe file is
written and removed). Nothing is contacted (with --terraform-dir, terraform
reads its state).
Exit 0 when valid, 2 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := tf.load(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			chaos := "off"
			if c.Chaos.Enabled {
				chaos = fmt.Sprintf("%q in %s, window %s %s", c.Chaos.Cron, c.Chaos.Timezone, c.Chaos.Days, c.Chaos.Hours)
				if c.Chaos.Leashed {
					chaos += " (leashed: plan only)"
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is valid: cluster %s, provider %s, %d bootstrap servers, lease %s, API %s, chaos %s\n",
				args[0], c.Cluster, c.Provider.Kind, len(c.Kafka.Bootstrap), c.Lease.Kind, c.API.Listen, chaos)
			return nil
		},
	}
	tf.register(validate.Flags())
	cmd.AddCommand(validate)
	return cmd
}
