package awsactions

import (
	"reflect"
	"slices"
	"testing"

	"github.com/fleetd/fleetd/internal/ec2"
	"github.com/fleetd/fleetd/internal/events"
	"github.com/fleetd/fleetd/internal/lease"
)

// The list equals the methods of the client interfaces fleetd uses (plus
// iam:PassRole, which RunInstances needs and no client method shows).
func TestActionsMatchTheClientInterfaces(t *testing.T) {
	var fromCode []string
	for service, iface := range map[string]reflect.Type{
		"ec2":      reflect.TypeFor[ec2.API](),
		"sqs":      reflect.TypeFor[events.SQSAPI](),
		"dynamodb": reflect.TypeFor[lease.DynamoDBAPI](),
	} {
		for i := range iface.NumMethod() {
			fromCode = append(fromCode, service+":"+iface.Method(i).Name)
		}
	}
	fromCode = append(fromCode, "iam:PassRole")
	listed := slices.Clone(Actions)
	slices.Sort(fromCode)
	slices.Sort(listed)
	if !slices.Equal(fromCode, listed) {
		t.Fatalf("awsactions.Actions %v\nclient interfaces %v\nkeep them equal: the IAM policy is checked against this list", listed, fromCode)
	}
}
