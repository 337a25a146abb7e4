package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/fleetd/fleetd/internal/ec2mirror"
	"github.com/fleetd/fleetd/internal/kclient"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/workload"
)

// The AWS benchmark runs a real `fleetd run` (provider ec2) against moto
// behind a counting proxy:
//
//   - idle, with 30 brokers' instances: AWS API calls per minute by action,
//     and the daemon's resident memory;
//   - with 3 brokers mirrored into real Kafka processes (so the gates pass):
//     the latency from a retirement event becoming visible in SQS to the
//     RunInstances call of its replacement.

// apiCounter is a reverse proxy to moto that records every AWS call.
type apiCounter struct {
	mu    sync.Mutex
	calls []apiCall
}

type apiCall struct {
	at     time.Time
	action string
}

func (c *apiCounter) handler(target *url.URL) http.Handler {
	proxy := httputil.NewSingleHostReverseProxy(target)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action := r.Header.Get("X-Amz-Target") // JSON protocols (SQS, EventBridge)
		if action == "" && r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			if v, err := url.ParseQuery(string(b)); err == nil {
				action = v.Get("Action") // query protocol (EC2)
			}
		}
		c.mu.Lock()
		c.calls = append(c.calls, apiCall{time.Now(), action})
		c.mu.Unlock()
		proxy.ServeHTTP(w, r)
	})
}

func (c *apiCounter) since(t time.Time) []apiCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []apiCall
	for _, a := range c.calls {
		if !a.at.Before(t) {
			out = append(out, a)
		}
	}
	return out
}

func freeTCP() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func runAWS(ctx context.Context, out io.Writer) error {
	dir, err := os.MkdirTemp("", "fleetd-bench-aws-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "fleetd")
	if b, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/fleetd").CombinedOutput(); err != nil {
		return fmt.Errorf("build fleetd: %v\n%s", err, b)
	}
	port, err := freeTCP()
	if err != nil {
		return err
	}
	moto, err := local.Spawn(dir, filepath.Join(dir, "moto.log"), filepath.Join(local.CacheDir(), "venv", "bin", "moto_server"), "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("moto_server (run scripts/tools.sh): %w", err)
	}
	defer moto.Kill()
	motoURL, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(port))
	for i := 0; ; i++ {
		if resp, err := http.Get(motoURL.String() + "/moto-api/"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 300 {
			return fmt.Errorf("moto_server did not start; see %s", filepath.Join(dir, "moto.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	counter := &apiCounter{}
	proxy := httptest.NewServer(counter.handler(motoURL))
	defer proxy.Close()
	env := []string{"AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench", "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=" + proxy.URL, "AWS_EC2_METADATA_DISABLED=true"}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		os.Setenv(k, v)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	ec2c, sq := ec2.NewFromConfig(awsCfg), sqs.NewFromConfig(awsCfg)

	// Idle, 30 brokers.
	seed, err := ec2mirror.SeedEC2(ctx, ec2c, "idle", 30)
	if err != nil {
		return err
	}
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("idle-events")})
	if err != nil {
		return err
	}
	idleCfg := fmt.Sprintf(`cluster: idle
state_dir: %s
kafka:
  bootstrap: [127.0.0.1:1]
provider:
  kind: ec2
ec2:
  launch_template: %s
events:
  queue_url: %s
  poll_interval: 1m
api:
  listen: 127.0.0.1:0
`, filepath.Join(dir, "idle-state"), seed.LaunchTemplate, aws.ToString(q.QueueUrl))
	const warm, window = 30 * time.Second, 2 * time.Minute
	fmt.Fprintf(os.Stderr, "aws: idle fleetd run with 30 brokers for %s\n", warm+window)
	daemon, err := startFleetd(ctx, bin, dir, "idle", idleCfg, env)
	if err != nil {
		return err
	}
	if err := sleepCtx(ctx, warm); err != nil {
		return err
	}
	from := time.Now()
	if err := sleepCtx(ctx, window); err != nil {
		return err
	}
	calls := counter.since(from)
	rss, hwm := memOf(daemon.Process.Pid)
	stopFleetd(daemon)

	// Event to launch, 3 brokers in real Kafka.
	lat, err := eventToLaunch(ctx, bin, dir, env, ec2c, sq, counter)
	if err != nil {
		return err
	}

	byAction := map[string]int{}
	for _, c := range calls {
		byAction[c.action]++
	}
	actions := make([]string, 0, len(byAction))
	for a := range byAction {
		actions = append(actions, a)
	}
	slices.Sort(actions)
	fmt.Fprintf(out, "## fleetd run on AWS (moto)\n\n")
	fmt.Fprintf(out, "A real `fleetd run` (provider ec2, SQS queue with 20 s long polls, DescribeInstanceStatus every minute) against moto_server behind a counting proxy.\n\n")
	fmt.Fprintf(out, "**Idle, 30 brokers' instances** (measured over %s after %s of start-up): %.1f AWS API calls per minute; resident memory %s (peak %s).\n\n",
		window, warm, float64(len(calls))/window.Minutes(), rss, hwm)
	fmt.Fprintf(out, "| action | calls per minute |\n|---|---|\n")
	for _, a := range actions {
		fmt.Fprintf(out, "| %s | %.1f |\n", a, float64(byAction[a])/window.Minutes())
	}
	fmt.Fprintf(out, "\n**Event to launch, gates passing** (3 brokers mirrored into real Kafka processes, a retirement event sent to the queue for each in turn; from SendMessage returning to the replacement's RunInstances call):\n\n")
	fmt.Fprintf(out, "| run | latency |\n|---|---|\n")
	for i, l := range lat {
		fmt.Fprintf(out, "| %d | %s |\n", i+1, l.Round(time.Millisecond))
	}
	fmt.Fprintln(out)
	return nil
}

func startFleetd(ctx context.Context, bin, dir, name, cfg string, env []string) (*exec.Cmd, error) {
	p := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "run", "--config", p)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, cmd.Start()
}

func stopFleetd(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// memOf reads VmRSS and VmHWM of pid.
func memOf(pid int) (rss, hwm string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?", "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.Join(strings.Fields(v), " ")
		switch k {
		case "VmRSS":
			rss = v
		case "VmHWM":
			hwm = v
		}
	}
	return rss, hwm
}

func eventToLaunch(ctx context.Context, bin, dir string, env []string, ec2c *ec2.Client, sq *sqs.Client, counter *apiCounter) ([]time.Duration, error) {
	seed, err := ec2mirror.SeedEC2(ctx, ec2c, "lat", 3)
	if err != nil {
		return nil, err
	}
	fleet, err := local.Start(ctx, local.Options{Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel), Dir: filepath.Join(dir, "fleet")})
	if err != nil {
		return nil, err
	}
	defer fleet.Close()
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := make(chan struct{})
	mirror := &ec2mirror.Mirror{EC2: ec2c, Fleet: fleet, Cluster: "lat"}
	go mirror.Run(mctx, first, func(err error) { fmt.Fprintln(os.Stderr, "mirror:", err) })
	<-first
	cl, _, closeClients, err := kclient.Settings{Bootstrap: fleet.Bootstrap(), Controllers: fleet.QuorumBootstrap()}.Clients()
	if err != nil {
		return nil, err
	}
	defer closeClients()
	if err := workload.CreateTopic(ctx, kadm.NewClient(cl), workload.Topic{Name: "lat", Partitions: 6, ReplicationFactor: 3, MinInsyncReplicas: 2}, time.Minute); err != nil {
		return nil, err
	}
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("lat-events")})
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`cluster: lat
state_dir: %s
kafka:
  bootstrap: [%s]
  controllers: [%s]
provider:
  kind: ec2
ec2:
  launch_template: %s
events:
  queue_url: %s
replace:
  poll: 1s
chaos:
  days: sun-sat
  hours: "00:00-24:00"
api:
  listen: 127.0.0.1:0
`, filepath.Join(dir, "lat-state"), strings.Join(fleet.Bootstrap(), ", "), strings.Join(fleet.QuorumBootstrap(), ", "), seed.LaunchTemplate, aws.ToString(q.QueueUrl))
	daemon, err := startFleetd(ctx, bin, dir, "lat", cfg, env)
	if err != nil {
		return nil, err
	}
	defer stopFleetd(daemon)
	if err := sleepCtx(ctx, 10*time.Second); err != nil { // lease, first receive
		return nil, err
	}
	var lat []time.Duration
	for broker := int32(1); broker <= 3; broker++ {
		id := seed.Instances[broker]
		body, _ := json.Marshal(map[string]any{
			"version": "0", "id": fmt.Sprintf("bench-%d", broker), "detail-type": "AWS Health Event", "source": "aws.health",
			"account": "123456789012", "region": "us-east-1", // what EventBridge delivers; moto's default account
			"time": time.Now().UTC().Format(time.RFC3339), "resources": []string{id},
			"detail": map[string]any{"eventArn": fmt.Sprintf("arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/bench-%d", broker),
				"service": "EC2", "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "startTime": time.Now().Add(14 * 24 * time.Hour).UTC().Format(time.RFC1123),
				"affectedEntities": []map[string]string{{"entityValue": id}}},
		})
		if _, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(string(body))}); err != nil {
			return nil, err
		}
		visible := time.Now()
		var launched time.Time
		for deadline := time.Now().Add(3 * time.Minute); launched.IsZero(); {
			for _, c := range counter.since(visible) {
				if c.action == "RunInstances" {
					launched = c.at
					break
				}
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("no launch within 3 minutes of the event for broker %d; see %s", broker, filepath.Join(dir, "lat.log"))
			}
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				return nil, err
			}
		}
		lat = append(lat, launched.Sub(visible))
		fmt.Fprintf(os.Stderr, "aws: broker %d: event -> launch %s; waiting for the replacement to finish\n", broker, launched.Sub(visible).Round(time.Millisecond))
		for deadline := time.Now().Add(5 * time.Minute); ; {
			out, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
			if err == nil && len(out.Reservations) > 0 && out.Reservations[0].Instances[0].State.Name == "terminated" {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("replacement of broker %d did not finish; see %s", broker, filepath.Join(dir, "lat.log"))
			}
			if err := sleepCtx(ctx, time.Second); err != nil {
				return nil, err
			}
		}
		if err := sleepCtx(ctx, 5*time.Second); err != nil { // unregister-old, next gate
			return nil, err
		}
	}
	return lat, nil
}
