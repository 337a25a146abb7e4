package replace

import (
	"encoding/json"
	"testing"
)

func TestThrottleParsesPrintsAndRoundTrips(t *testing.T) {
	for in, want := range map[string]Throttle{
		"none": NoThrottle(), "NONE": NoThrottle(), "50MiB": Rate(50 << 20), "50 MiB/s": Rate(50 << 20), "100MB": Rate(100e6),
	} {
		got, err := ParseThrottle(in)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
		// What String prints (a flag's default, a log line) parses back.
		if again, err := ParseThrottle(got.String()); err != nil || again != got {
			t.Errorf("%q printed as %q parses to %v %v", in, got.String(), again, err)
		}
		b, _ := json.Marshal(got)
		var back Throttle
		if err := json.Unmarshal(b, &back); err != nil || back != got {
			t.Errorf("%q as JSON %s reads back as %v %v", in, b, back, err)
		}
	}
	for _, bad := range []string{"0", "0MiB", "fast", "-5MiB", ""} {
		if got, err := ParseThrottle(bad); err == nil {
			t.Errorf("%q parsed as %v", bad, got)
		}
	}
	var unset Throttle
	if unset.IsSet() || unset.Or(Rate(1)) != Rate(1) || NoThrottle().Or(Rate(1)) != NoThrottle() {
		t.Error("unset must take the default, none must not")
	}
	for _, bad := range []string{`0`, `-1`, `"0"`, `true`} {
		var th Throttle
		if err := json.Unmarshal([]byte(bad), &th); err == nil {
			t.Errorf("JSON %s read as %v", bad, th)
		}
	}
	if b, _ := json.Marshal(struct {
		T Throttle `json:"t,omitzero"`
	}{}); string(b) != `{}` {
		t.Errorf("an unset throttle is written as %s", b)
	}
}
