package lease

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDBAPI is the part of the DynamoDB client the lease uses.
type DynamoDBAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Key is the table's partition key attribute (a string): one item per
// cluster. The Terraform module creates the table with it.
const Key = "lease"

// DynamoDB is a lease for processes on different hosts: one item per cluster,
// changed only by conditional writes. The item records its holder and the
// instant it expires, written and compared by fleetd itself (DynamoDB's TTL
// deletion is hours late and must not be relied on):
//
//   - acquire succeeds only if there is no item, it has expired by the
//     acquirer's clock, or it is already ours;
//   - renewal succeeds only while the item still names us;
//   - the holder counts the lease as lost Margin before the expiry it wrote,
//     measured from when it sent the write, so a holder cut off from DynamoDB
//     stops before anyone else can take over (clock skew up to Margin is safe).
type DynamoDB struct {
	Client DynamoDBAPI
	Table  string
	// Name is the item's key: the cluster name.
	Name string
	// Holder identifies this process ("host:pid"); it must be unique.
	Holder string
	// TTL is how long a write keeps the lease (default 30 s). It is renewed
	// every TTL/3.
	TTL time.Duration
	// Margin is subtracted from TTL when the holder judges its own lease
	// (default TTL/5).
	Margin time.Duration
	Now    func() time.Time

	mu        sync.Mutex
	validTill time.Time // zero: not held
	renewed   time.Time
	lastErr   error
	gen       int // acquisitions so far: a renewal loop stops when it changes
}

func (l *DynamoDB) defaults() {
	if l.TTL <= 0 {
		l.TTL = 30 * time.Second
	}
	if l.Margin <= 0 {
		l.Margin = l.TTL / 5
	}
	if l.Now == nil {
		l.Now = time.Now
	}
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func (l *DynamoDB) key() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{Key: &types.AttributeValueMemberS{Value: l.Name}}
}

// TryAcquire takes the lease if it is free or expired, or returns ErrHeld
// naming the holder and when its lease runs out.
func (l *DynamoDB) TryAcquire(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.defaults()
	sent := l.Now()
	_, err := l.Client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(l.Table),
		Item: map[string]types.AttributeValue{
			Key:          &types.AttributeValueMemberS{Value: l.Name},
			"holder":     &types.AttributeValueMemberS{Value: l.Holder},
			"expires_ms": &types.AttributeValueMemberN{Value: ms(sent.Add(l.TTL))},
			"acquired":   &types.AttributeValueMemberS{Value: sent.UTC().Format(time.RFC3339)},
		},
		ConditionExpression:       aws.String("attribute_not_exists(#k) OR #e < :now OR #h = :me"),
		ExpressionAttributeNames:  map[string]string{"#k": Key, "#e": "expires_ms", "#h": "holder"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: ms(sent)}, ":me": &types.AttributeValueMemberS{Value: l.Holder}},
	})
	if err != nil {
		l.validTill = time.Time{}
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return fmt.Errorf("%w (%s)", ErrHeld, l.describeHolder(ctx))
		}
		return l.explain(err)
	}
	l.validTill, l.renewed = sent.Add(l.TTL-l.Margin), sent
	l.gen++
	go l.keep(ctx, l.gen)
	return nil
}

// keep renews the lease every TTL/3 in the background, so that renewal
// never waits for the caller's loop (which may be busy). It stops when ctx
// ends or the lease is lost, released or acquired anew.
func (l *DynamoDB) keep(ctx context.Context, gen int) {
	t := time.NewTicker(l.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		if l.gen != gen || l.validTill.IsZero() {
			l.mu.Unlock()
			return
		}
		_, _ = l.heldLocked(ctx)
		l.mu.Unlock()
	}
}

// Held renews the lease when a third of its TTL has passed and reports
// whether this process still holds it. A renewal that fails transiently
// keeps the lease until its own expiry; a renewal refused because the item
// names someone else, or an expiry passed, loses it.
func (l *DynamoDB) Held(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.heldLocked(ctx)
}

func (l *DynamoDB) heldLocked(ctx context.Context) (bool, error) {
	l.defaults()
	now := l.Now()
	if l.validTill.IsZero() {
		return false, nil
	}
	if !now.Before(l.validTill) {
		till := l.validTill
		l.validTill = time.Time{}
		return false, fmt.Errorf("lease lapsed at %s without a successful renewal (last error: %v)", till.UTC().Format(time.RFC3339), l.lastErr)
	}
	if now.Sub(l.renewed) < l.TTL/3 {
		return true, nil
	}
	rctx, cancel := context.WithTimeout(ctx, l.TTL/3)
	defer cancel()
	_, err := l.Client.UpdateItem(rctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.Table),
		Key:                       l.key(),
		UpdateExpression:          aws.String("SET #e = :exp"),
		ConditionExpression:       aws.String("#h = :me"),
		ExpressionAttributeNames:  map[string]string{"#e": "expires_ms", "#h": "holder"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":exp": &types.AttributeValueMemberN{Value: ms(now.Add(l.TTL))}, ":me": &types.AttributeValueMemberS{Value: l.Holder}},
	})
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			l.validTill = time.Time{}
			return false, fmt.Errorf("lease taken over (%s)", l.describeHolder(ctx))
		}
		l.lastErr = err
		return true, nil // still ours until validTill; the next tick retries
	}
	l.validTill, l.renewed, l.lastErr = now.Add(l.TTL-l.Margin), now, nil
	return true, nil
}

// Release deletes the item if it still names this process. Idempotent.
func (l *DynamoDB) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.validTill.IsZero() {
		return nil
	}
	l.validTill = time.Time{}
	_, err := l.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(l.Table),
		Key:                       l.key(),
		ConditionExpression:       aws.String("#h = :me"),
		ExpressionAttributeNames:  map[string]string{"#h": "holder"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": &types.AttributeValueMemberS{Value: l.Holder}},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return l.explain(err)
	}
	return nil
}

// describeHolder reads who holds the lease, for messages.
func (l *DynamoDB) describeHolder(ctx context.Context) string {
	out, err := l.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(l.Table), Key: l.key(), ConsistentRead: aws.Bool(true)})
	if err != nil || out.Item == nil {
		return "holder unknown"
	}
	holder, _ := out.Item["holder"].(*types.AttributeValueMemberS)
	exp, _ := out.Item["expires_ms"].(*types.AttributeValueMemberN)
	if holder == nil || exp == nil {
		return "holder unknown"
	}
	n, _ := strconv.ParseInt(exp.Value, 10, 64)
	return fmt.Sprintf("holder: %s, expires %s", holder.Value, time.UnixMilli(n).UTC().Format(time.RFC3339))
}

func (l *DynamoDB) explain(err error) error {
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fmt.Errorf("lease table %q not found: create it (the terraform module does, or: aws dynamodb create-table --table-name %s --attribute-definitions AttributeName=%s,AttributeType=S --key-schema AttributeName=%s,KeyType=HASH --billing-mode PAY_PER_REQUEST): %w", l.Table, l.Table, Key, Key, err)
	}
	return fmt.Errorf("lease table %q: %w", l.Table, err)
}
