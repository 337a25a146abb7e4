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
	"github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"
)

// ConfigOptions overrides parts of the standard AWS configuration chain
// (environment, shared config files, instance role).
type ConfigOptions struct {
	Region string
	// Endpoint replaces every service endpoint (moto in tests). The standard
	// AWS_ENDPOINT_URL variable does the same without code.
	Endpoint string
	// Log receives the SDK's own warnings (a response body it could not
	// drain, a checksum mismatch), so that every line fleetd writes stays
	// JSON. Nil: zerolog's global logger.
	Log *zerolog.Logger
}

// sdkLogger hands the AWS SDK's log lines to zerolog, tagged component=aws-sdk.
func sdkLogger(l zerolog.Logger) logging.Logger {
	l = l.With().Str("component", "aws-sdk").Logger()
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		ev := l.Info()
		if c == logging.Warn {
			ev = l.Warn()
		}
		ev.Msgf(format, v...)
	})
}

// LoadConfig loads the standard AWS configuration with adaptive retries, which
// back off on throttling as well as on errors: fleetd must be a polite API
// client on accounts shared with other automation.
func LoadConfig(ctx context.Context, o ConfigOptions) (aws.Config, error) {
	log := zlog.Logger
	if o.Log != nil {
		log = *o.Log
	}
	opts := []func(*config.LoadOptions) error{config.WithRetryMode(aws.RetryModeAdaptive), config.WithLogger(sdkLogger(log))}
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
