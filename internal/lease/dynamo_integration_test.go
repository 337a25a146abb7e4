//go:build integration

package lease

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fleetd/fleetd/internal/testbed"
)

// clock is a hand-moved clock: each lease has its own, so the test decides
// what every process believes the time is (the lease compares expiry on the
// caller's clock, not DynamoDB's).
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func motoDynamo(t *testing.T, table string) *dynamodb.Client {
	t.Helper()
	cfg, _ := testbed.MotoAWS(t)
	ctx := testbed.Context(t)
	c := dynamodb.NewFromConfig(cfg)
	if table != "" {
		_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:            aws.String(table),
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(Key), AttributeType: types.ScalarAttributeTypeS}},
			KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(Key), KeyType: types.KeyTypeHash}},
			BillingMode:          types.BillingModePayPerRequest,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestDynamoDBLeaseConditionalWrites(t *testing.T) {
	ctx := testbed.Context(t)
	c := motoDynamo(t, "fleetd-leases")
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	ca, cb := &clock{start}, &clock{start}
	a := &DynamoDB{Client: c, Table: "fleetd-leases", Name: "prod-east", Holder: "host-a:1", TTL: 30 * time.Second, Now: ca.now}
	b := &DynamoDB{Client: c, Table: "fleetd-leases", Name: "prod-east", Holder: "host-b:2", TTL: 30 * time.Second, Now: cb.now}
	other := &DynamoDB{Client: c, Table: "fleetd-leases", Name: "other-cluster", Holder: "host-b:2", TTL: 30 * time.Second, Now: cb.now}

	if err := a.TryAcquire(ctx); err != nil {
		t.Fatalf("a acquires a free lease: %v", err)
	}
	err := b.TryAcquire(ctx)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "host-a:1") {
		t.Fatalf("b while a holds: %v, want ErrHeld naming host-a:1", err)
	}
	if err := other.TryAcquire(ctx); err != nil {
		t.Fatalf("a lease on another cluster is independent: %v", err)
	}

	// a renews every TTL/3; b, 25 s later by its clock, still finds it held
	// because a's renewal moved the expiry.
	ca.advance(15 * time.Second)
	if held, err := a.Held(ctx); !held || err != nil {
		t.Fatalf("a renews: held=%v err=%v", held, err)
	}
	cb.advance(40 * time.Second) // past a's first expiry, before the renewed one
	if err := b.TryAcquire(ctx); !errors.Is(err, ErrHeld) {
		t.Fatalf("b after a renewed: %v, want ErrHeld", err)
	}

	// a stops renewing (cut off). By its own clock it gives up Margin before
	// the expiry it wrote; only after that expiry can b take over.
	ca.advance(40 * time.Second) // 55 s: renewed at 15 s, valid till 15+30-6 = 39 s
	if held, err := a.Held(ctx); held || err == nil {
		t.Fatalf("a past its own validity: held=%v err=%v, want lost with a reason", held, err)
	}
	cb.advance(6 * time.Second) // 46 s > 45 s expiry
	if err := b.TryAcquire(ctx); err != nil {
		t.Fatalf("b after a's expiry: %v", err)
	}
	if held, err := b.Held(ctx); !held || err != nil {
		t.Fatalf("b holds: %v %v", held, err)
	}

	// a, back, must not renew over b: the condition names the holder.
	a.validTill, a.renewed = ca.now().Add(time.Minute), ca.now().Add(-time.Minute) // pretend it still believed
	if held, err := a.Held(ctx); held || err == nil || !strings.Contains(err.Error(), "host-b:2") {
		t.Fatalf("a renewing over b: held=%v err=%v, want lost naming host-b:2", held, err)
	}
	if err := a.TryAcquire(ctx); !errors.Is(err, ErrHeld) {
		t.Fatalf("a re-acquiring while b holds: %v", err)
	}
	// a's release must not delete b's item.
	a.validTill = ca.now().Add(time.Minute)
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.TryAcquire(ctx); !errors.Is(err, ErrHeld) {
		t.Fatalf("after a's stale release: %v, want b still holding", err)
	}

	// b releases: a takes over at once, without waiting for an expiry.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.TryAcquire(ctx); err != nil {
		t.Fatalf("a after b released: %v", err)
	}
}

func TestDynamoDBLeaseMissingTableNamesTheFix(t *testing.T) {
	c := motoDynamo(t, "")
	l := &DynamoDB{Client: c, Table: "no-such-table", Name: "x", Holder: "h:1"}
	ctx, cancel := context.WithTimeout(testbed.Context(t), 30*time.Second)
	defer cancel()
	err := l.TryAcquire(ctx)
	if err == nil || errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "create-table") || !strings.Contains(err.Error(), "no-such-table") {
		t.Fatalf("missing table: %v, want an error naming the table and how to create it", err)
	}
}

// The holder renews in the background: a caller that does not ask for a
// while (its loop busy) keeps the lease.
func TestDynamoDBLeaseRenewsInTheBackground(t *testing.T) {
	ctx := testbed.Context(t)
	c := motoDynamo(t, "leases")
	a := &DynamoDB{Client: c, Table: "leases", Name: "c", Holder: "a:1", TTL: 1500 * time.Millisecond}
	b := &DynamoDB{Client: c, Table: "leases", Name: "c", Holder: "b:2", TTL: 1500 * time.Millisecond}
	if err := a.TryAcquire(ctx); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		time.Sleep(time.Second) // never calling a.Held
		if err := b.TryAcquire(ctx); !errors.Is(err, ErrHeld) {
			t.Fatalf("b took a's lease while a was alive: %v", err)
		}
	}
	if held, err := a.Held(ctx); !held || err != nil {
		t.Fatalf("a after 4 s without asking: held=%v err=%v", held, err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the renewal loop has stopped: nothing re-creates the item
	if err := b.TryAcquire(ctx); err != nil {
		t.Fatalf("b after a released: %v", err)
	}
}
