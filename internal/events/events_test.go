package events

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/rs/zerolog"
)

var now = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

const healthSample = `{
  "version": "0",
  "id": "7bf73129-1428-4cd3-a780-95db273d1602",
  "detail-type": "AWS Health Event",
  "source": "aws.health",
  "account": "123456789012",
  "time": "2026-11-24T01:43:21Z",
  "region": "us-east-1",
  "resources": ["i-0abc1111def222333"],
  "detail": {
    "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_7f5d6e",
    "service": "EC2",
    "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
    "eventTypeCategory": "scheduledChange",
    "startTime": "Sat, 05 Dec 2026 15:00:00 GMT",
    "eventDescription": [{"language": "en_US", "latestDescription": "EC2 has detected degradation"}],
    "affectedEntities": [{"entityValue": "i-0abc1111def222333"}]
  }
}`

const stateSample = `{
  "version": "0",
  "id": "4e3b8c4a-9f0e-4e6a-8d0b-2f6c1d7e9a11",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2026-11-24T09:12:03Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1111def222333"],
  "detail": {"instance-id": "i-0abc1111def222333", "state": "terminated"}
}`

func TestParseSamples(t *testing.T) {
	evs, err := Parse([]byte(healthSample), now, Origin{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("health: %v %v", evs, err)
	}
	e := evs[0]
	if e.Kind != KindRetirement || e.InstanceID != "i-0abc1111def222333" || !e.NotBefore.Equal(time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)) ||
		!strings.HasSuffix(e.ID, "/i-0abc1111def222333") || e.Description != "EC2 has detected degradation" {
		t.Errorf("health event %+v", e)
	}
	evs, err = Parse([]byte(stateSample), now, Origin{})
	if err != nil || len(evs) != 1 || evs[0].Kind != KindInstanceLost || evs[0].State != "terminated" || evs[0].InstanceID != "i-0abc1111def222333" {
		t.Fatalf("state change: %+v %v", evs, err)
	}
	running := strings.Replace(stateSample, `"terminated"`, `"running"`, 1)
	if evs, _ := Parse([]byte(running), now, Origin{}); evs[0].Kind != KindUnknown {
		t.Errorf("running is not a loss: %+v", evs[0])
	}
	other := strings.Replace(stateSample, "EC2 Instance State-change Notification", "EC2 Spot Instance Interruption Warning", 1)
	if evs, err := Parse([]byte(other), now, Origin{}); err != nil || evs[0].Kind != KindUnknown {
		t.Errorf("other detail type: %+v %v", evs, err)
	}
}

func TestParseRejectsMalformedMessages(t *testing.T) {
	for name, body := range map[string]string{
		"not json":          `{"id": `,
		"not an event":      `{"hello": "world"}`,
		"health no arn":     strings.Replace(healthSample, `"eventArn"`, `"arn"`, 1),
		"health bad time":   strings.Replace(healthSample, "Sat, 05 Dec 2026 15:00:00 GMT", "next tuesday", 1),
		"health no entity":  strings.NewReplacer(`"resources": ["i-0abc1111def222333"]`, `"resources": []`, `{"entityValue": "i-0abc1111def222333"}`, ``).Replace(healthSample),
		"state no instance": strings.Replace(stateSample, `"instance-id"`, `"instance"`, 1),
	} {
		if _, err := Parse([]byte(body), now, Origin{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestKindOfCode(t *testing.T) {
	for code, want := range map[string]Kind{
		"instance-retirement": KindRetirement, "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED": KindRetirement, "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED": KindRetirement,
		"instance-stop": KindStop, "AWS_EC2_INSTANCE_STOP_SCHEDULED": KindStop,
		"system-reboot": KindSystemReboot, "AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED": KindSystemReboot,
		"instance-reboot": KindInstanceReboot, "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED": KindInstanceReboot,
		"system-maintenance": KindSystemMaintenance, "AWS_EC2_MAINTENANCE_SCHEDULED": KindSystemMaintenance,
		"AWS_EC2_OPERATIONAL_ISSUE": KindUnknown,
	} {
		if got := kindOfCode(code); got != want {
			t.Errorf("%s: %s, want %s", code, got, want)
		}
	}
}

func TestDispatcherHandlesEachEventOnceAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seen.json")
	var mu sync.Mutex
	var handled []string
	fail := true
	h := func(_ context.Context, ev Event) error {
		mu.Lock()
		defer mu.Unlock()
		if ev.ID == "flaky" && fail {
			fail = false
			return errors.New("cannot list the fleet")
		}
		handled = append(handled, ev.ID)
		return nil
	}
	d := &Dispatcher{Handler: h, Path: path, Log: zerolog.Nop()}
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"a", "a", "flaky", "b"} {
		_ = d.Dispatch(ctx, Event{ID: id})
	}
	d2 := &Dispatcher{Handler: h, Path: path, Log: zerolog.Nop()}
	if err := d2.Load(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "flaky", "flaky"} {
		_ = d2.Dispatch(ctx, Event{ID: id})
	}
	if got := strings.Join(handled, " "); got != "a b flaky" {
		t.Fatalf("handled %q, want each once (flaky after its failure)", got)
	}
}

// moto returns no scheduled events, so DescribeInstanceStatus is tested
// against an EC2 API response recorded in its real shape (ec2query XML),
// served by an httptest server to the real SDK client.
const describeStatusPage1 = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstanceStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>3be1508e-c444-4fef-89cc-0b1223c4f02f</requestId>
    <instanceStatusSet>
        <item>
            <instanceId>i-0abc1111def222333</instanceId>
            <availabilityZone>us-east-1a</availabilityZone>
            <instanceState><code>16</code><name>running</name></instanceState>
            <systemStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></systemStatus>
            <instanceStatus><status>ok</status><details><item><name>reachability</name><status>passed</status></item></details></instanceStatus>
            <eventsSet>
                <item>
                    <instanceEventId>instance-event-0d59937288b749b32</instanceEventId>
                    <code>instance-retirement</code>
                    <description>The instance is running on degraded hardware</description>
                    <notBefore>2026-12-05T15:00:00.000Z</notBefore>
                </item>
                <item>
                    <instanceEventId>instance-event-01a2b3c4d5e6f7a8b</instanceEventId>
                    <code>system-reboot</code>
                    <description>[Completed] Scheduled reboot</description>
                    <notBefore>2026-11-01T02:00:00.000Z</notBefore>
                    <notAfter>2026-11-01T04:00:00.000Z</notAfter>
                </item>
            </eventsSet>
        </item>
    </instanceStatusSet>
    <nextToken>page-2</nextToken>
</DescribeInstanceStatusResponse>`

const describeStatusPage2 = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstanceStatusResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>0c6c9a5d-7f2e-4d3b-9d55-2a1e4f0b8c77</requestId>
    <instanceStatusSet>
        <item>
            <instanceId>i-0def4444abc555666</instanceId>
            <availabilityZone>us-east-1b</availabilityZone>
            <instanceState><code>16</code><name>running</name></instanceState>
            <systemStatus><status>ok</status></systemStatus>
            <instanceStatus><status>ok</status></instanceStatus>
            <eventsSet>
                <item>
                    <instanceEventId>instance-event-0f1e2d3c4b5a69788</instanceEventId>
                    <code>system-maintenance</code>
                    <description>Scheduled system maintenance</description>
                    <notBefore>2026-12-01T06:00:00.000Z</notBefore>
                    <notAfter>2026-12-01T10:00:00.000Z</notAfter>
                </item>
            </eventsSet>
        </item>
    </instanceStatusSet>
</DescribeInstanceStatusResponse>`

func TestScheduledEventsFromARecordedResponse(t *testing.T) {
	var mu sync.Mutex
	var forms []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		mu.Lock()
		forms = append(forms, r.PostForm)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		if r.PostForm.Get("NextToken") == "page-2" {
			_, _ = w.Write([]byte(describeStatusPage2))
			return
		}
		_, _ = w.Write([]byte(describeStatusPage1))
	}))
	defer srv.Close()
	c := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: aws.AnonymousCredentials{}})
	evs, err := Scheduled(context.Background(), c, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("%d events, want the retirement and the maintenance (the completed reboot skipped): %+v", len(evs), evs)
	}
	r, m := evs[0], evs[1]
	if r.Kind != KindRetirement || r.InstanceID != "i-0abc1111def222333" || r.ID != "scheduled/instance-event-0d59937288b749b32" || !r.NotBefore.Equal(time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)) {
		t.Errorf("retirement %+v", r)
	}
	if m.Kind != KindSystemMaintenance || m.InstanceID != "i-0def4444abc555666" || !m.NotAfter.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("maintenance %+v", m)
	}
	if len(forms) != 2 {
		t.Fatalf("%d calls, want 2 pages", len(forms))
	}
	f := forms[0]
	if f.Get("Action") != "DescribeInstanceStatus" || f.Get("IncludeAllInstances") != "true" || f.Get("Filter.1.Name") != "event.code" || f.Get("Filter.1.Value.1") != "instance-retirement" || f.Get("InstanceId.1") != "" {
		t.Errorf("request %v: want one fleet-wide call filtered by event code", f)
	}
}
