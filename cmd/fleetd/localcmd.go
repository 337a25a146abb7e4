package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/fleetd/fleetd/internal/local"
)

func newLocalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run a Kafka fleet on this machine to practise on (KRaft, loopback)",
	}
	cmd.AddCommand(newLocalUpCmd())
	return cmd
}

func newLocalUpCmd() *cobra.Command {
	var (
		brokers, controllers int
		dir, listen          string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start KRaft controllers and brokers on loopback and serve their control API until interrupted",
		Long: `Start KRaft controllers (a dynamic quorum, ids 9000..) and brokers (ids
1..N, racks rotating over three simulated zones) from the Kafka distribution
that scripts/kafka-dist.sh assembled, and serve the local fleet's control API
on a loopback address. With --controllers 3, fleetd replace --controller 9001
replaces a controller one voter change at a time.
fleetd replace --local-fleet URL acts on the fleet through that API, so
fleetd itself can be stopped or killed while the brokers keep running.
Everything stops, and the data is deleted, when this command is interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return fmt.Errorf("--listen %q: %w", listen, err)
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return fmt.Errorf("--listen %q: the control API has no authentication and binds to loopback only", listen)
			}
			log := zerolog.New(zerolog.ConsoleWriter{Out: cmd.ErrOrStderr(), TimeFormat: "15:04:05", NoColor: !isTerminal(cmd.ErrOrStderr())}).With().Timestamp().Logger()
			if controllers < 1 || controllers > 9 {
				return fmt.Errorf("--controllers %d: want 1 to 9 (an odd number: 1, 3 or 5)", controllers)
			}
			fleet, err := local.Up(cmd.Context(), local.Options{Dir: dir, Log: log, Controllers: controllers}, brokers)
			if err != nil {
				return err
			}
			defer fleet.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: local.NewHandler(local.NewProvider(fleet)), ReadHeaderTimeout: 10 * time.Second}
			go func() { _ = srv.Serve(ln) }()
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "local fleet up: cluster %s\n  bootstrap:   %s\n  controllers: %s\n  control API: http://%s\n\n", fleet.ClusterID(),
				strings.Join(fleet.Bootstrap(), ","), strings.Join(fleet.QuorumBootstrap(), ","), ln.Addr())
			cfgPath := filepath.Join(fleet.Dir(), "fleetd.yaml")
			if err := os.WriteFile(cfgPath, []byte(localConfig(fleet.ClusterID(), fleet.Dir(), fleet.Bootstrap(), fleet.QuorumBootstrap(), "http://"+ln.Addr().String())), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(out, "  export FLEETD_LOCAL_FLEET=http://%s\n  fleetd status --bootstrap %s\n  fleetd replace --broker 2 --dry-run\n\n", ln.Addr(), fleet.Bootstrap()[0])
			fmt.Fprintf(out, "  the daemon, with a config written for this fleet:\n  fleetd run --config %s\n  fleetd status --api http://127.0.0.1:7080\n\nCtrl-C stops the fleet and deletes its data.\n", cfgPath)
			<-cmd.Context().Done()
			fmt.Fprintln(out, "stopping the local fleet")
			return nil
		},
	}
	cmd.Flags().IntVar(&brokers, "brokers", 3, "number of brokers")
	cmd.Flags().IntVar(&controllers, "controllers", 1, "number of KRaft controllers (3 to practise controller replacement)")
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the nodes' data and logs (default: a temporary one, deleted on exit)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7070", "loopback address of the control API")
	return cmd
}

// localConfig is a `fleetd run` config for a local fleet (docs/config.md).
func localConfig(clusterID, dir string, bootstrap, controllers []string, controlURL string) string {
	return fmt.Sprintf(`# fleetd run --config this-file   (written by fleetd local up)
cluster: local-%s
state_dir: %s
kafka:
  bootstrap: [%s]
  controllers: [%s]
provider:
  kind: local
  local_fleet: %s
replace:
  throttle: 20MiB
  poll: 2s
# chaos:            # uncomment to have fleetd replace the oldest broker at every hour
#   enabled: true
#   cron: "0 * * * *"
#   days: sun-sat
#   hours: "00:00-24:00"
#   min_interval: 30m
log:
  format: console
`, clusterID, filepath.Join(dir, "fleetd-state"), strings.Join(bootstrap, ", "), strings.Join(controllers, ", "), controlURL)
}
