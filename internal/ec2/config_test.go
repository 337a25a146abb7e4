package ec2

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"
)

// The SDK's own warnings (seen in a CI run: "SDK ... WARN failed to discard
// remaining HTTP response body") must come out as fleetd's JSON lines, not
// the SDK's plain-text default.
func TestSDKWarningsAreJSON(t *testing.T) {
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	var buf bytes.Buffer
	l := zerolog.New(&buf)
	cfg, err := LoadConfig(t.Context(), ConfigOptions{Region: "us-east-1", Log: &l})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger.Logf(logging.Warn, "failed to discard remaining HTTP response body: %s", "boom")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("SDK log line is not JSON: %q", buf.String())
	}
	if line["level"] != "warn" || line["component"] != "aws-sdk" || line["message"] != "failed to discard remaining HTTP response body: boom" {
		t.Fatalf("SDK log line %v", line)
	}
}
