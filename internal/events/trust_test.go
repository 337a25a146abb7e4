package events

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/rs/zerolog"
)

var ours = Origin{Account: "123456789012", Region: "us-east-1"}

func TestParseBelievesOnlyFleetdsOwnAccountRegionAndAWSSources(t *testing.T) {
	edit := func(sample, from, to string) string {
		if !strings.Contains(sample, from) {
			t.Fatalf("sample lacks %q", from)
		}
		return strings.Replace(sample, from, to, 1)
	}
	for name, body := range map[string]string{
		"another account":           edit(stateSample, `"account": "123456789012"`, `"account": "999999999999"`),
		"another region":            edit(stateSample, `"region": "us-east-1"`, `"region": "eu-west-1"`),
		"no account":                edit(stateSample, `"account": "123456789012",`, ``),
		"forged state-change":       edit(stateSample, `"source": "aws.ec2"`, `"source": "my.app"`),
		"health with an ec2 source": edit(healthSample, `"source": "aws.health"`, `"source": "aws.ec2"`),
	} {
		_, err := Parse([]byte(body), now, ours)
		if !IsNotOurs(err) {
			t.Errorf("%s: err %v, want NotOurs", name, err)
		}
	}
	for name, body := range map[string]string{"health": healthSample, "state change": stateSample} {
		evs, err := Parse([]byte(body), now, ours)
		if err != nil || len(evs) != 1 {
			t.Errorf("genuine %s: %v %v", name, evs, err)
		}
	}
}

// fakeSQS serves one batch of messages and records deletions.
type fakeSQS struct {
	mu      sync.Mutex
	batch   []sqstypes.Message
	deleted []string
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	b := f.batch
	f.batch = nil
	f.mu.Unlock()
	if b == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &sqs.ReceiveMessageOutput{Messages: b}, nil
}

func (f *fakeSQS) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, aws.ToString(in.ReceiptHandle))
	return &sqs.DeleteMessageOutput{}, nil
}

// healthNaming is an AWS Health retirement naming n instances i-00000000000000000..
func healthNaming(n int) string {
	var ents []map[string]string
	for i := range n {
		ents = append(ents, map[string]string{"entityValue": fmt.Sprintf("i-%017d", i)})
	}
	b, _ := json.Marshal(map[string]any{"version": "0", "id": "big", "detail-type": "AWS Health Event", "source": "aws.health",
		"account": ours.Account, "region": ours.Region, "time": now,
		"detail": map[string]any{"eventArn": "arn:big", "service": "EC2", "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", "affectedEntities": ents}})
	return string(b)
}

func TestConsumerDeletesForeignMessagesAndLooksUpInstancesOncePerMessage(t *testing.T) {
	api := &fakeSQS{}
	msg := func(id, body string) sqstypes.Message {
		return sqstypes.Message{MessageId: aws.String(id), ReceiptHandle: aws.String(id), Body: aws.String(body)}
	}
	api.batch = []sqstypes.Message{
		msg("forged", strings.Replace(stateSample, `"source": "aws.ec2"`, `"source": "evil"`, 1)),
		msg("foreign", strings.Replace(stateSample, `"account": "123456789012"`, `"account": "999999999999"`, 1)),
		msg("big", healthNaming(2000)),
		msg("malformed", `{"not": "an event"`),
	}
	var lookups, asked int
	var handled []string
	var outcomes []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // bound: the 4th outcome cancels sooner
	defer cancel()
	c := &Consumer{API: api, QueueURL: "q", Origin: ours, Log: zerolog.Nop(),
		Members: func(_ context.Context, ids []string) (map[string]bool, error) {
			lookups++
			asked += len(ids)
			return map[string]bool{"i-00000000000000007": true}, nil
		},
		Dispatcher: &Dispatcher{Log: zerolog.Nop(), Handler: func(_ context.Context, ev Event) error {
			handled = append(handled, ev.InstanceID)
			return nil
		}},
		OnMessage: func(id, o string) {
			outcomes = append(outcomes, id+"="+o)
			if len(outcomes) == 4 {
				cancel()
			}
		},
	}
	c.Run(ctx)
	if got, want := strings.Join(outcomes, " "), "forged=not-ours foreign=not-ours big=deleted malformed=malformed"; got != want {
		t.Errorf("outcomes %q, want %q", got, want)
	}
	if lookups != 1 || asked != 2000 {
		t.Errorf("%d lookups for %d ids, want one lookup for the message's 2000", lookups, asked)
	}
	if len(handled) != 1 || handled[0] != "i-00000000000000007" {
		t.Errorf("handled %v, want only the cluster's instance", handled)
	}
	if got := strings.Join(api.deleted, " "); got != "forged foreign big" {
		t.Errorf("deleted %q; the malformed message must stay for the dead-letter queue", got)
	}
}

func TestSeenEventsAppendOneLineEachAndCompact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seen")
	clock := now
	d := &Dispatcher{Path: path, Keep: time.Hour, Log: zerolog.Nop(), Now: func() time.Time { return clock },
		Handler: func(context.Context, Event) error { return nil }}
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3000 {
		if i%100 == 0 {
			clock = clock.Add(10 * time.Minute) // ids expire after an hour
		}
		if err := d.Dispatch(ctx, Event{ID: fmt.Sprint(i), Kind: KindInstanceLost}); err != nil {
			t.Fatal(err)
		}
	}
	_ = d.Dispatch(ctx, Event{ID: "nothing-to-act-on", Kind: KindUnknown})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(string(b), "\n")
	if lines > 1200 {
		t.Errorf("%d lines for ~600 live ids: expired ids are never compacted away", lines)
	}
	if strings.Contains(string(b), "nothing-to-act-on") {
		t.Error("an event fleetd did not act on was remembered")
	}
	// A torn last line (a crash mid-append) is dropped, the rest kept.
	if err := os.WriteFile(path, append(b, []byte(`{"id":"torn","at":"2026-`)...), 0o640); err != nil {
		t.Fatal(err)
	}
	d2 := &Dispatcher{Path: path, Keep: time.Hour, Log: zerolog.Nop(), Now: func() time.Time { return clock }}
	if err := d2.Load(); err != nil {
		t.Fatal(err)
	}
	if _, ok := d2.seen["2999"]; !ok || len(d2.seen) < 500 {
		t.Errorf("after reload: %d ids, 2999 known %v", len(d2.seen), ok)
	}
}

func TestSeenEventsReadTheEarlierWholeMapFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seen")
	if err := os.WriteFile(path, []byte(`{"old-event":"2026-11-24T10:00:00Z"}`), 0o640); err != nil {
		t.Fatal(err)
	}
	d := &Dispatcher{Path: path, Log: zerolog.Nop(), Now: func() time.Time { return now }}
	if err := d.Load(); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.seen["old-event"]; !ok {
		t.Fatal("the earlier format's id was lost")
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), `{"id":"old-event"`) {
		t.Errorf("not rewritten as lines: %s", b)
	}
}

// FuzzParse: any SQS message body is refused (malformed or not ours) or
// yields events that name a kind, an id and, for the kinds fleetd acts on,
// an instance. Never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(healthSample))
	f.Add([]byte(stateSample))
	f.Add([]byte(healthNaming(3)))
	f.Add([]byte(`{"id":"x","detail-type":"AWS Health Event","source":"aws.health","account":"123456789012","region":"us-east-1","detail":{}}`))
	f.Add([]byte(`{"this is": "not an event"`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := Parse(body, now, ours)
		if err != nil {
			return
		}
		for _, ev := range evs {
			if ev.ID == "" || ev.Kind == "" {
				t.Fatalf("event without id or kind: %+v", ev)
			}
			if ev.Kind != KindUnknown && ev.InstanceID == "" {
				t.Fatalf("actionable event without an instance: %+v", ev)
			}
		}
	})
}

// BenchmarkDispatch500Events: 500 distinct events acted on, each remembered
// durably (an fsynced line each), as a burst of state changes would be.
// Issue 12 measured 17-19 s for 500 when the whole file was rewritten per
// event.
func BenchmarkDispatch500Events(b *testing.B) {
	for range b.N {
		d := &Dispatcher{Path: filepath.Join(b.TempDir(), "seen"), Log: zerolog.Nop(), Handler: func(context.Context, Event) error { return nil }}
		if err := d.Load(); err != nil {
			b.Fatal(err)
		}
		for i := range 500 {
			if err := d.Dispatch(context.Background(), Event{ID: fmt.Sprintf("state-change/%d", i), Kind: KindInstanceLost}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
