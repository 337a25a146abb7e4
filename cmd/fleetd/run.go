package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/fleetd/fleetd/internal/config"
	"github.com/fleetd/fleetd/internal/daemon"
	"github.com/fleetd/fleetd/internal/tfoutputs"
	"github.com/fleetd/fleetd/internal/version"
)

const runLong = `Run fleetd as a daemon: the controller that replaces brokers on its own.

fleetd run reads one config file (docs/config.md), takes the cluster's lease
(only one fleetd per cluster acts; others wait on standby and take over if it
dies), resumes any replacement in flight, and then serves its queue: one
replacement at a time, requests deduplicated by broker, refused ones retried
with backoff. Requests come from operators through the HTTP API (fleetd
replace/abort/pause/resume/history --api URL) and, with provider.kind ec2, from
AWS: retirement, stop and maintenance events (EventBridge via SQS, and
DescribeInstanceStatus polled), lost instances (an emergency), and AMI drift;
and from the weekly chaos schedule. Chaos and AMI drift are off until
configured. It serves, on api.listen:

  /v1/...    the API (bearer token required unless bound to loopback)
  /metrics   Prometheus metrics
  /healthz   the process lives;  /readyz  the controller loop turns

Logs are JSON lines on stderr (log.format: console for people); every line of
a replacement carries its replacement id, broker and instance ids. SIGTERM or
Ctrl-C stops at once and leaves a running replacement resumable: the next
fleetd (this one restarted, or the standby) resumes it from its record.

State in state_dir: replacements/ (one durable record each), queue.json,
paused (present while paused), chaos.json (decided slots), events-seen.json
(AWS event ids handled, for dedup), lease (kind file).

Exit codes: 0 stopped by a signal, 2 could not start or failed.`

func newRunCmd() *cobra.Command {
	var configPath string
	var tf terraformFlags
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the controller daemon (chaos schedule, operator API, one active fleetd per cluster)",
		Long:  runLong,
		Example: `  fleetd config validate /etc/fleetd/fleetd.yaml
  FLEETD_API_TOKEN=... fleetd run --config /etc/fleetd/fleetd.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return errors.New("--config is required (or FLEETD_CONFIG): see docs/config.md for a complete example")
			}
			cfg, err := tf.load(cmd.Context(), configPath)
			if err != nil {
				return err
			}
			log, err := newLogger(cmd.ErrOrStderr(), cfg.Log)
			if err != nil {
				return err
			}
			captureStdlibLog(log)
			return daemon.Run(cmd.Context(), cfg, daemon.Options{Log: log, Version: version.Version})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", os.Getenv("FLEETD_CONFIG"), "config file (env FLEETD_CONFIG)")
	tf.register(cmd.Flags())
	return cmd
}

// terraformFlags read infrastructure settings from Terraform outputs.
type terraformFlags struct {
	dir, bin string
}

func (t *terraformFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.dir, "terraform-dir", os.Getenv("FLEETD_TERRAFORM_DIR"), "Terraform working directory of a kafka-fleet deployment: launch template, subnets, queue, lease table and AMI selector come from its outputs (explicit config values win; env FLEETD_TERRAFORM_DIR)")
	fs.StringVar(&t.bin, "terraform", envOr("FLEETD_TERRAFORM", "terraform"), "terraform binary for --terraform-dir (env FLEETD_TERRAFORM)")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// load reads the config, with the Terraform outputs when --terraform-dir is
// set, and checks that its state_dir and lease directory are writable: both
// fleetd run and config validate must refuse a config fleetd could not run.
func (t *terraformFlags) load(ctx context.Context, path string) (*config.Config, error) {
	c, err := t.read(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := c.CheckPaths(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (t *terraformFlags) read(ctx context.Context, path string) (*config.Config, error) {
	if t.dir == "" {
		return config.Load(path)
	}
	bin, err := exec.LookPath(t.bin)
	if err != nil {
		return nil, fmt.Errorf("--terraform %q: %w (scripts/terraform.sh builds one)", t.bin, err)
	}
	tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	outs, err := tfoutputs.Read(tctx, bin, t.dir)
	if err != nil {
		return nil, err
	}
	return config.LoadWith(path, &outs)
}

// captureStdlibLog sends what libraries write through Go's standard logger
// (net/http's server errors, for one) into l as JSON lines, so that a log
// pipeline reading fleetd's stderr never meets a plain-text line.
func captureStdlibLog(l zerolog.Logger) {
	stdlog.SetFlags(0)
	stdlog.SetOutput(l.With().Str("component", "stdlib").Logger())
}

func newLogger(w io.Writer, c config.Log) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(c.Level))
	if err != nil || lvl == zerolog.NoLevel {
		return zerolog.Logger{}, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Level)
	}
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isTerminal(w)}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// isTerminal says whether w is a terminal: colour codes only go there, never
// into a journal or a file.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
