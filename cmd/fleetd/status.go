package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetd/fleetd/internal/config"
	"github.com/fleetd/fleetd/internal/health"
	"github.com/fleetd/fleetd/internal/replace"
)

const statusLong = `Show the cluster's brokers, problem partitions and in-flight reassignments,
and whether it is safe to disrupt a broker now, with the reasons if not.

Exit codes:
  0  safe to disrupt
  1  not safe (the reasons are printed)
  2  error: Kafka unreachable, bad flags or config (nothing was judged)

A cluster whose state cannot be read completely is reported as not safe.`

// snapshot reads the cluster with the connection flags, bounded by
// --timeout; a cluster that cannot be read is an error (exit 2), never a
// verdict.
func (kf *kafkaFlags) snapshot(ctx context.Context) (*health.Snapshot, error) {
	s, err := kf.settings()
	if err != nil {
		return nil, err
	}
	// kgo's connection handshake does not watch the context; only the
	// request timeout overhead bounds it (10 s by default).
	cl, _, err := s.Admin(kgo.RequestTimeoutOverhead(min(kf.timeout, 10*time.Second)))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, kf.timeout)
	defer cancel()
	snap, err := health.Collect(ctx, cl)
	if err != nil {
		return nil, &codeError{code: exitError, err: fmt.Errorf("cannot read cluster state from %s within %s: %w (check --bootstrap and that the brokers are reachable; nothing was judged)", strings.Join(s.Bootstrap, ","), kf.timeout, err)}
	}
	return snap, nil
}

func newStatusCmd() *cobra.Command {
	var kf kafkaFlags
	var asJSON bool
	var a apiFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show cluster health and whether a broker may be disrupted now",
		Long:  statusLong,
		Example: `  fleetd status --bootstrap kafka-1:9092,kafka-2:9092
  fleetd status --config /etc/fleetd/fleetd.yaml --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.useDaemon(cmd.Flags(), []string{"config", "bootstrap"}, "FLEETD_CONFIG", config.EnvBootstrap) {
				a.asJSON = asJSON
				return daemonStatus(cmd, a)
			}
			snap, err := kf.snapshot(cmd.Context())
			if err != nil {
				return err
			}
			rep := health.NewReport(snap, health.CanDisrupt(snap, health.Policy{}))
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				renderStatus(cmd.OutOrStdout(), rep, nil)
			}
			if !rep.Verdict.Safe {
				return &codeError{code: exitNotSafe}
			}
			return nil
		},
	}
	kf.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (same content as the table)")
	a.registerURL(cmd.Flags(), "ask a running fleetd (its URL; env FLEETD_API unless --config or --bootstrap) instead of Kafka: adds the queue, the replacement in flight and the chaos schedule")
	return cmd
}

const maxRows = 20

// renderStatus prints the report as compact tables; fleet, when known,
// names the instance each node runs on.
func renderStatus(w io.Writer, r health.Report, fleet []replace.Instance) {
	fmt.Fprintf(w, "cluster %s  controller %d  brokers %d  partitions %d\n\n", r.ClusterID, r.Controller, len(r.Brokers), r.Partitions)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BROKER\tRACK\tADDRESS\tSTATE\tREPLICAS\tLEADERS\tBYTES")
	for _, b := range r.Brokers {
		addr, bytes := "-", "?"
		if b.Host != "" {
			addr = fmt.Sprintf("%s:%d", b.Host, b.Port)
		}
		if b.BytesKnown {
			bytes = humanBytes(b.Bytes)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\n", b.ID, dash(b.Rack), addr, b.State, b.Replicas, b.Leaders, bytes)
	}
	tw.Flush()
	if r.Quorum != nil {
		renderQuorum(w, r.Quorum, fleet)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(w, "\nproblem partitions (%d)\n", len(r.Problems))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tLEADER\tREPLICAS\tISR\tMIN ISR\tPROBLEMS")
		for i, p := range r.Problems {
			if i == maxRows {
				fmt.Fprintf(tw, "... %d more (see --json)\n", len(r.Problems)-maxRows)
				break
			}
			fmt.Fprintf(tw, "%s\t%d\t%v\t%v\t%d\t%s\n", p.TP, p.Leader, p.Replicas, p.ISR, p.MinISR, strings.Join(p.Problems, ","))
		}
		tw.Flush()
	}
	if len(r.Reassignments) > 0 {
		fmt.Fprintf(w, "\nin-flight reassignments (%d)\n", len(r.Reassignments))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tREPLICAS\tADDING\tREMOVING\tISR")
		for i, p := range r.Reassignments {
			if i == maxRows {
				fmt.Fprintf(tw, "... %d more (see --json)\n", len(r.Reassignments)-maxRows)
				break
			}
			fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%v\n", p.TP, p.Replicas, p.Adding, p.Removing, p.ISR)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	if r.Verdict.Safe {
		fmt.Fprintln(w, "safe to disrupt: yes")
	} else {
		fmt.Fprintln(w, "safe to disrupt: no")
		for _, b := range r.Verdict.Blockers {
			fmt.Fprintf(w, "  - %s: %s\n", b.Code, b.Message)
		}
	}
	for _, wr := range r.Verdict.Warnings {
		fmt.Fprintf(w, "  warning %s: %s\n", wr.Code, wr.Message)
	}
}

// renderQuorum prints the controller quorum: its kind, leader, and each
// voter (and controller observer) with its lag and instance.
func renderQuorum(w io.Writer, q *health.Quorum, fleet []replace.Instance) {
	kind := string(q.Kind)
	if q.KRaftVersion >= 0 {
		kind += fmt.Sprintf(" (kraft.version %d)", q.KRaftVersion)
	}
	if q.Kind == health.QuorumStatic {
		kind += ": voters cannot change; see `fleetd replace --controller --help`"
	}
	fmt.Fprintf(w, "\ncontroller quorum %s  leader %d  epoch %d\n", kind, q.Leader, q.Epoch)
	instance := map[int32]string{}
	for _, in := range fleet {
		instance[in.NodeID] = in.ID
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE	ROLE	ENDPOINT	DIRECTORY	LAG	CAUGHT UP	INSTANCE")
	row := func(r health.Replica, role string) {
		if r.ID == q.Leader {
			role = "leader"
		}
		ep := "-"
		if len(r.Endpoints) > 0 {
			ep = strings.Join(r.Endpoints, ",")
		}
		up := "yes"
		if !r.CaughtUp {
			up = "no"
			if r.SinceCaughtUp >= 0 {
				up = fmt.Sprintf("no (%s ago)", r.SinceCaughtUp.Round(time.Second))
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, role, ep, dash(r.DirectoryID), r.Lag, up, dash(instance[r.ID]))
	}
	for _, v := range q.Voters {
		row(v, "voter")
	}
	for _, o := range q.Observers {
		row(o, "observer")
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
