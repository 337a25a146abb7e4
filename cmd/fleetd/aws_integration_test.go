//go:build integration

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/fleetd/fleetd/internal/api"
	"github.com/fleetd/fleetd/internal/local"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/testbed"
)

// awsQueues makes what the Terraform module makes: an event queue with a
// dead-letter queue, and EventBridge rules routing AWS Health and EC2
// state-change events to it.
func awsQueues(t *testing.T, sq *sqs.Client, eb *eventbridge.Client) (queueURL, dlqURL string) {
	t.Helper()
	ctx := testbed.Context(t)
	dlq, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("fleetd-test-events-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"2"}`, attrs.Attributes["QueueArn"])
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("fleetd-test-events"), Attributes: map[string]string{
		"VisibilityTimeout": "2", "RedrivePolicy": redrive}})
	if err != nil {
		t.Fatal(err)
	}
	qa, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	for name, pattern := range map[string]string{
		"fleetd-test-health": `{"source": ["aws.health"], "detail-type": ["AWS Health Event"], "detail": {"service": ["EC2"]}}`,
		"fleetd-test-state":  `{"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]}`,
	} {
		if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), EventPattern: aws.String(pattern)}); err != nil {
			t.Fatal(err)
		}
		if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name), Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(qa.Attributes["QueueArn"])}}}); err != nil {
			t.Fatal(err)
		}
	}
	return aws.ToString(q.QueueUrl), aws.ToString(dlq.QueueUrl)
}

// publish puts on the queue what EventBridge delivers for an event: its
// envelope with fleetd's account and region. moto's EventBridge (5.2.5)
// routes events to SQS without the "account" field real EventBridge always
// sets, and fleetd rightly refuses an event that does not name its account,
// so the genuine events go to the queue in the shape EventBridge delivers;
// one event routed through moto's EventBridge is checked to be refused.
func publish(t *testing.T, sq *sqs.Client, queueURL, source, detailType string, resources []string, detail any) {
	t.Helper()
	publishFrom(t, sq, queueURL, fmt.Sprintf("evt-%d", time.Now().UnixNano()), source, "123456789012", "us-east-1", detailType, resources, detail)
}

func publishFrom(t *testing.T, sq *sqs.Client, queueURL, id, source, account, region, detailType string, resources []string, detail any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"version": "0", "id": id, "detail-type": detailType, "source": source, "account": account,
		"region": region, "time": time.Now().UTC().Format(time.RFC3339), "resources": resources, "detail": detail})
	if _, err := sq.SendMessage(testbed.Context(t), &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
}

func retirement(arn, instance string, at time.Time) map[string]any {
	return map[string]any{
		"eventArn": arn, "service": "EC2", "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "eventTypeCategory": "scheduledChange",
		"startTime":        at.UTC().Format(time.RFC1123),
		"eventDescription": []map[string]string{{"language": "en_US", "latestDescription": "EC2 has detected degradation of the underlying hardware"}},
		"affectedEntities": []map[string]string{{"entityValue": instance}},
	}
}

func waitReplacement(t *testing.T, d *daemonProc, pred func(api.HistoryEntry) bool) api.HistoryEntry {
	t.Helper()
	var found api.HistoryEntry
	testbed.Eventually(t, 4*time.Minute, func() error {
		for _, h := range d.history(t) {
			if pred(h) && h.Phase.Terminal() {
				found = h
				return nil
			}
		}
		return fmt.Errorf("no such finished replacement yet")
	})
	return found
}

// TestRunOnAWSEvents: fleetd run with the EC2 provider, the real SDK against
// moto (EC2, SQS, EventBridge) and real Kafka brokers mirroring moto's
// instances. A retirement published to EventBridge is routed to the queue and
// replaces that broker end to end; a duplicate, a foreign instance's event
// and a malformed message change nothing and the daemon keeps running; a
// broker's instance terminated behind fleetd's back is restored with its
// identity.
func TestRunOnAWSEvents(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	awsCfg, _, awsEnv := testbed.MotoConfig(t)
	ec2c, sq, eb := ec2.NewFromConfig(awsCfg), sqs.NewFromConfig(awsCfg), eventbridge.NewFromConfig(awsCfg)
	seed := testbed.SeedEC2(t, ec2c, "test", 3)
	queueURL, dlqURL := awsQueues(t, sq, eb)
	c := testbed.NewClusterFrom(t, func(f *local.Fleet) { testbed.MirrorEC2(t, f, ec2c, "test") }, 1, 2, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 12)
	ledgerRun := c.StartLedger("orders", 100)

	listen := freeAddr(t)
	cfg := writeConfig(t, c, "", t.TempDir(), listen, fmt.Sprintf(`ec2:
  launch_template: %s
events:
  queue_url: %s
  wait: 1s
replace:
  throttle: 10MiB
  poll: 500ms
chaos:
  days: sun-sat
  hours: "00:00-24:00"
`, seed.LaunchTemplate, queueURL))
	d := startDaemon(t, cfg, listen, awsEnv...)
	d.waitFor(t, "the lease", 30*time.Second, func(st api.Status) bool { return st.Active })

	victim := seed.Instances[2]
	arn := "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_test1"
	published := time.Now()
	publish(t, sq, queueURL, "aws.health", "AWS Health Event", []string{victim}, retirement(arn, victim, time.Now().Add(14*24*time.Hour)))
	publish(t, sq, queueURL, "aws.health", "AWS Health Event", []string{victim}, retirement(arn, victim, time.Now().Add(14*24*time.Hour))) // duplicate
	publish(t, sq, queueURL, "aws.health", "AWS Health Event", []string{"i-0foreign0000000001"}, retirement(arn+"x", "i-0foreign0000000001", time.Now().Add(time.Hour)))
	// Through moto's EventBridge rule: it arrives without an account, so it
	// is not believed (see publish).
	out, err := eb.PutEvents(testbed.Context(t), &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{Source: aws.String("aws.ec2"),
		DetailType: aws.String("EC2 Instance State-change Notification"), Detail: aws.String(`{"instance-id": "` + seed.Instances[3] + `", "state": "stopped"}`)}}})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("put event: %v %+v", err, out)
	}
	if _, err := sq.SendMessage(testbed.Context(t), &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(`{"this is": "not an event"`)}); err != nil {
		t.Fatal(err)
	}
	// Anyone who can send to the queue: state changes naming a running
	// broker's instance from another account, another region, with a forged
	// source, and one from the right origin that EC2's own state contradicts.
	// None may queue anything; the first three are deleted as not ours.
	healthy := seed.Instances[3]
	for i, forged := range []struct{ source, account, region string }{
		{"aws.ec2", "999999999999", "us-east-1"}, {"aws.ec2", "123456789012", "eu-west-1"}, {"evil.forged", "123456789012", "us-east-1"}, {"aws.ec2", "123456789012", "us-east-1"},
	} {
		publishFrom(t, sq, queueURL, fmt.Sprintf("forged-%d", i), forged.source, forged.account, forged.region, "EC2 Instance State-change Notification",
			[]string{"arn:aws:ec2:us-east-1:123456789012:instance/" + healthy}, map[string]string{"instance-id": healthy, "state": "terminated"})
	}

	rep := waitReplacement(t, d, func(h api.HistoryEntry) bool { return h.OldInstance == victim })
	if rep.Phase != replace.PhaseCompleted || rep.TriggerList() != "instance-retirement" || rep.Strategy != replace.StrategyMove {
		t.Fatalf("retirement replacement: %s trigger %q strategy %s (%s)", rep.Phase, rep.TriggerList(), rep.Strategy, rep.Error)
	}
	t.Logf("retirement: event published -> replacement created in %s, done in %.1fs", rep.Created.Sub(published).Round(time.Millisecond), rep.TotalSeconds)
	if h := d.history(t); len(h) != 1 {
		t.Errorf("%d replacements for one retirement (a duplicate, a foreign and four forged events were sent too), want 1", len(h))
	}
	if st := d.status(t); len(st.Controller.Queue) != 0 {
		t.Errorf("queue after forged events: %+v, want empty", st.Controller.Queue)
	}
	old, nw := testbed.EC2Instance(t, ec2c, victim), testbed.EC2Instance(t, ec2c, rep.NewInstance)
	if old.State.Name != ec2types.InstanceStateNameTerminated {
		t.Errorf("old instance %s: %s, want terminated", victim, old.State.Name)
	}
	tags := map[string]string{}
	for _, tg := range nw.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["fleetd:cluster"] != "test" || tags["fleetd:node-id"] != fmt.Sprint(rep.NewBroker) || tags["fleetd:replacement"] != rep.ID {
		t.Errorf("new instance tags %v", tags)
	}
	if aws.ToString(nw.SubnetId) != aws.ToString(old.SubnetId) || aws.ToString(nw.Placement.AvailabilityZone) != aws.ToString(old.Placement.AvailabilityZone) ||
		aws.ToString(nw.ImageId) != seed.Image || nw.InstanceType != ec2types.InstanceTypeIm4gn4xlarge {
		t.Errorf("new instance %s/%s %s %s; want %s/%s, AMI %s, im4gn.4xlarge", aws.ToString(nw.SubnetId), aws.ToString(nw.Placement.AvailabilityZone),
			aws.ToString(nw.ImageId), nw.InstanceType, aws.ToString(old.SubnetId), aws.ToString(old.Placement.AvailabilityZone), seed.Image)
	}
	testbed.Eventually(t, 60*time.Second, c.Settled)
	testbed.Eventually(t, 15*time.Second, c.NoThrottles)

	// Every handled message is deleted; the malformed one goes to the DLQ.
	testbed.Eventually(t, 60*time.Second, func() error {
		out, err := sq.ReceiveMessage(testbed.Context(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlqURL), WaitTimeSeconds: 1})
		if err != nil {
			return err
		}
		for _, m := range out.Messages {
			if strings.Contains(aws.ToString(m.Body), "not an event") {
				return nil
			}
		}
		return fmt.Errorf("the malformed message is not in the dead-letter queue yet")
	})
	attrs, err := sq.GetQueueAttributes(testbed.Context(t), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Attributes["ApproximateNumberOfMessages"] != "0" || attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
		t.Errorf("event queue still holds messages: %v", attrs.Attributes)
	}
	m := metricsText(t, d.url)
	for _, want := range []string{`fleetd_event_messages_total{outcome="deleted"} 4`, `fleetd_event_messages_total{outcome="not-ours"} 4`,
		`fleetd_event_messages_total{outcome="malformed"}`, `fleetd_events_total{kind="instance-retirement"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	logs := d.logs.String()
	for _, want := range []string{"duplicate event ignored", "not a broker of this cluster", "malformed event message",
		`from account \"999999999999\"`, `from account \"\"`, `from region \"eu-west-1\"`, `with source \"evil.forged\"`, "EC2 says it is not; not believed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q", want)
		}
	}

	// Broker 1's instance is terminated behind fleetd's back.
	lost := seed.Instances[1]
	if _, err := ec2c.TerminateInstances(testbed.Context(t), &ec2.TerminateInstancesInput{InstanceIds: []string{lost}}); err != nil {
		t.Fatal(err)
	}
	publish(t, sq, queueURL, "aws.ec2", "EC2 Instance State-change Notification", []string{"arn:aws:ec2:us-east-1:123456789012:instance/" + lost},
		map[string]string{"instance-id": lost, "state": "terminated"})
	rep = waitReplacement(t, d, func(h api.HistoryEntry) bool { return h.OldInstance == lost })
	if rep.Phase != replace.PhaseCompleted || rep.Strategy != replace.StrategyIdentity || rep.NewBroker != 1 || rep.TriggerList() != "instance-lost" {
		t.Fatalf("lost broker: %s strategy %s new broker %d trigger %q (%s)", rep.Phase, rep.Strategy, rep.NewBroker, rep.TriggerList(), rep.Error)
	}
	testbed.Eventually(t, 2*time.Minute, c.Settled) // full ISR again, on broker 1's new disk
	c.StopLedger(ledgerRun)
	if st := d.status(t); !st.Active {
		t.Error("daemon lost its lease")
	}
	d.stop(t)
	checkLogs(t, d.logs.String())
}

// TestRunAMIDriftReplacesOneOutdatedBrokerAtATime: all three brokers run an
// older AMI than the newest; with ami_drift on, fleetd replaces the oldest
// with the newest AMI, and then, inside the minimum interval, no other.
func TestRunAMIDriftReplacesOneOutdatedBrokerAtATime(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	awsCfg, _, awsEnv := testbed.MotoConfig(t)
	ec2c := ec2.NewFromConfig(awsCfg)
	seed := testbed.SeedEC2(t, ec2c, "test", 3)
	c := testbed.NewClusterFrom(t, func(f *local.Fleet) { testbed.MirrorEC2(t, f, ec2c, "test") }, 1, 2, 3)
	c.CreateTopic("orders", 6, 3, 2)
	c.Fill("orders", 6)
	ledgerRun := c.StartLedger("orders", 100)
	listen := freeAddr(t)
	d := startDaemon(t, writeConfig(t, c, "", t.TempDir(), listen, fmt.Sprintf(`ec2:
  launch_template: %s
ami_drift:
  enabled: true
  interval: 2s
replace:
  throttle: 10MiB
  poll: 500ms
chaos:
  days: sun-sat
  hours: "00:00-24:00"
  min_interval: 1h
`, seed.LaunchTemplate)), listen, awsEnv...)

	rep := waitReplacement(t, d, func(h api.HistoryEntry) bool { return true })
	if rep.Phase != replace.PhaseCompleted || rep.TriggerList() != "ami-drift" || rep.OldInstance != seed.Instances[1] {
		t.Fatalf("drift replacement: %s trigger %q of %s (%s); want broker 1's instance %s, the oldest", rep.Phase, rep.TriggerList(), rep.OldInstance, rep.Error, seed.Instances[1])
	}
	if img := aws.ToString(testbed.EC2Instance(t, ec2c, rep.NewInstance).ImageId); img != seed.Image {
		t.Errorf("new instance runs %s, want the newest AMI %s", img, seed.Image)
	}
	time.Sleep(10 * time.Second) // five more drift checks, inside min_interval
	if h := d.history(t); len(h) != 1 {
		t.Errorf("%d replacements, want one inside the minimum interval", len(h))
	}
	testbed.Eventually(t, 60*time.Second, c.Settled)
	testbed.Eventually(t, 15*time.Second, c.NoThrottles)
	c.StopLedger(ledgerRun)
	d.stop(t)
}

// A retirement notice for a KRaft controller's instance reaches the
// controller workflow: a new controller is launched from the controller
// launch template in the old one's subnet, joins the quorum, and the old
// instance is terminated. Controllers run at the loopback addresses moto
// gave their instances (ec2mirror.SeedControllers).
func TestControllerRetirementOnAWS(t *testing.T) {
	t.Parallel() // a fleet of its own: runs beside the others
	awsCfg, _, awsEnv := testbed.MotoConfig(t)
	ec2c, sq, eb := ec2.NewFromConfig(awsCfg), sqs.NewFromConfig(awsCfg), eventbridge.NewFromConfig(awsCfg)
	seed := testbed.SeedEC2(t, ec2c, "test", 3)
	ctls := testbed.SeedControllers(t, ec2c, "test", seed, 3)
	queueURL, _ := awsQueues(t, sq, eb)
	port := freePort(t)
	c := testbed.NewClusterFromWith(t, []testbed.Option{testbed.WithControllerHosts(ctls.Hosts, port)},
		func(f *local.Fleet) { testbed.MirrorEC2(t, f, ec2c, "test") }, 1, 2, 3)
	c.CreateTopic("orders", 3, 3, 2)
	ledgerRun := c.StartLedger("orders", 100)

	listen := freeAddr(t)
	cfg := writeConfig(t, c, "", t.TempDir(), listen, fmt.Sprintf(`ec2:
  launch_template: %s
  controller_launch_template: %s
  controller_port: %d
events:
  queue_url: %s
  wait: 1s
replace:
  poll: 500ms
chaos:
  days: sun-sat
  hours: "00:00-24:00"
`, seed.LaunchTemplate, ctls.LaunchTemplate, port, queueURL))
	d := startDaemon(t, cfg, listen, awsEnv...)
	d.waitFor(t, "the lease", 30*time.Second, func(st api.Status) bool { return st.Active })

	victim := ctls.Instances[9001]
	arn := "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_ctl"
	publish(t, sq, queueURL, "aws.health", "AWS Health Event", []string{victim}, retirement(arn, victim, time.Now().Add(14*24*time.Hour)))
	rep := waitReplacement(t, d, func(h api.HistoryEntry) bool { return h.OldInstance == victim })
	if rep.Phase != replace.PhaseCompleted || rep.Strategy != replace.StrategyController || rep.TriggerList() != "instance-retirement" {
		t.Fatalf("controller retirement: %s strategy %s trigger %q (%s)", rep.Phase, rep.Strategy, rep.TriggerList(), rep.Error)
	}
	c.StopLedger(ledgerRun)
	old, nw := testbed.EC2Instance(t, ec2c, victim), testbed.EC2Instance(t, ec2c, rep.NewInstance)
	if old.State.Name != ec2types.InstanceStateNameTerminated {
		t.Errorf("old controller instance %s: %s, want terminated", victim, old.State.Name)
	}
	tags := map[string]string{}
	for _, tg := range nw.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["fleetd:role"] != "controller" || tags["fleetd:node-id"] != fmt.Sprint(rep.NewBroker) || tags["fleetd:replacement"] != rep.ID {
		t.Errorf("new controller instance tags %v", tags)
	}
	if aws.ToString(nw.SubnetId) != aws.ToString(old.SubnetId) || nw.InstanceType != ec2types.InstanceTypeM7gLarge || aws.ToString(nw.ImageId) != seed.Image {
		t.Errorf("new controller %s in %s, type %s, AMI %s; want the old one's subnet %s, the controller template's m7g.large, AMI %s",
			aws.ToString(nw.InstanceId), aws.ToString(nw.SubnetId), nw.InstanceType, aws.ToString(nw.ImageId), aws.ToString(old.SubnetId), seed.Image)
	}
	q, err := replace.KafkaCluster{Client: c.Client}.Quorum(testbed.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{9000, 9002, rep.NewBroker}; !slices.Equal(q.VoterIDs(), want) {
		t.Errorf("voters %v, want %v", q.VoterIDs(), want)
	}
	if v, _ := q.Voter(rep.NewBroker); len(v.Endpoints) != 1 || !strings.HasPrefix(v.Endpoints[0], "CONTROLLER://"+aws.ToString(nw.PrivateIpAddress)+":") {
		t.Errorf("new voter's endpoint %v, want its instance's private address %s", v.Endpoints, aws.ToString(nw.PrivateIpAddress))
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}
