// Package ec2 is fleetd's edge to AWS: the EC2 Provider, and the event
// sources (EventBridge via SQS, DescribeInstanceStatus). It translates AWS
// responses into fleetd's own types at once and must never act on an
// instance that does not carry this cluster's tag.
package ec2

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// ConfigOptions overrides parts of the standard AWS configuration chain
// (environment, shared config files, instance role).
type ConfigOptions struct {
	Region string
	// Endpoint replaces every service endpoint (moto in tests). The standard
	// AWS_ENDPOINT_URL variable does the same without code.
	Endpoint string
}

// LoadConfig loads the standard AWS configuration with adaptive retries, which
// back off on throttling as well as on errors: fleetd must be a polite API
// client on accounts shared with other automation.
func LoadConfig(ctx context.Context, o ConfigOptions) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{config.WithRetryMode(aws.RetryModeAdaptive)}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(o.Endpoint))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("no AWS region configured: set AWS_REGION or the region in fleetd's config")
	}
	return cfg, nil
}
