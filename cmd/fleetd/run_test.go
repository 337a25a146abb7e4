package main

import (
	"bytes"
	"encoding/json"
	stdlog "log"
	"testing"

	"github.com/rs/zerolog"
)

// What libraries print through Go's standard logger under `fleetd run` comes
// out as one of fleetd's JSON lines.
func TestStdlibLogBecomesJSON(t *testing.T) {
	flags, out := stdlog.Flags(), stdlog.Writer()
	t.Cleanup(func() { stdlog.SetFlags(flags); stdlog.SetOutput(out) })
	var buf bytes.Buffer
	captureStdlibLog(zerolog.New(&buf))
	stdlog.Printf("http: TLS handshake error from %s: EOF", "10.0.0.7:51234")
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %q", buf.String())
	}
	if got["component"] != "stdlib" || got["message"] != "http: TLS handshake error from 10.0.0.7:51234: EOF" {
		t.Fatalf("logged as %v", got)
	}
}
